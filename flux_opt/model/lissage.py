"""The lissage program: spread owed volumes over the years within each year's capacity
(models/lissage.md; the data preparation and the reading of the result are in flux_opt.stock.lissage).

A small integer program written with Pyomo and solved by HiGHS; constraint names as in models/lissage.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyomo.environ as pyo
from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import SolutionStatus

# Objective weights: overload first, then the largest yearly change of each
# réservataire, then the sum of changes, then closeness to an even spread.
PENALITE_DEPASSEMENT = 10_000.0
# A dwelling moved past a réservataire's last year (into a later year of the table) costs less than
# an overload: no year is filled beyond its capacity while later years stay empty.
PENALITE_REPORT = 1_000.0
POIDS_VARIATION_MAX = 1.0
POIDS_VARIATION = 0.1
POIDS_ECART_REGULIER = 0.01
# Proving the last 0.1 % of stability costs far more than it is worth (measured: 40
# réservataires × 10 years, 3.5 s at 1e-3 against > 20 s at 1e-6).
ECART_RELATIF = 1e-3


@dataclass(frozen=True)
class LissageProblem:
    annees: list[int]
    flux: dict[int, float]
    capacite: dict[int, int]
    stock: dict[str, tuple[int, list[int]]]  # réservataire → (volume entier, années)
    programmes: list[tuple[str, str, int, list[int]]]  # (réservataire, programme, logements, années)

    @property
    def reservataires(self) -> list[str]:
        return sorted(set(self.stock) | {p[0] for p in self.programmes})

    def active_years(self, reservataire: str) -> list[int]:
        actives = set(self.stock.get(reservataire, (0, []))[1])
        for r, _, _, annees in self.programmes:
            if r == reservataire:
                actives |= set(annees)
        return sorted(actives)

    def carryover_years(self, reservataire: str) -> list[int]:
        """Years of the table after r's last stock year, where its stock may go rather than overload."""
        annees = self.stock.get(reservataire, (0, []))[1]
        return [a for a in self.annees if annees and a > max(annees)]

    def even_target(self, reservataire: str, annee: int) -> float:
        """Even spread of the stock and of each programme over their own years."""
        target = 0.0
        volume, annees = self.stock.get(reservataire, (0, []))
        if annee in annees:
            target += volume / len(annees)
        for r, _, logements, annees_p in self.programmes:
            if r == reservataire and annee in annees_p:
                target += logements / len(annees_p)
        return target


def build_lissage_model(probleme: LissageProblem) -> pyo.ConcreteModel:
    """The lissage integer program (models/lissage.md)."""
    m = pyo.ConcreteModel(name="lissage")
    reservataires = probleme.reservataires
    m.ANNEES = pyo.Set(initialize=probleme.annees, ordered=True)
    m.R = pyo.Set(initialize=reservataires, ordered=True)
    m.STOCK = pyo.Set(initialize=[(r, a) for r, (_, ans) in probleme.stock.items() for a in ans], dimen=2)
    m.REPORT = pyo.Set(initialize=[(r, a) for r in probleme.stock for a in probleme.carryover_years(r)], dimen=2)
    m.P = pyo.RangeSet(0, len(probleme.programmes) - 1) if probleme.programmes else pyo.Set(initialize=[])
    m.NOUVEAU = pyo.Set(initialize=[(p, a) for p, (_, _, _, ans) in enumerate(probleme.programmes) for a in ans], dimen=2)
    actives = {r: probleme.active_years(r) for r in reservataires}
    m.ACTIF = pyo.Set(initialize=[(r, a) for r in reservataires for a in actives[r]], dimen=2)
    m.SUCCESSION = pyo.Set(initialize=[(r, a) for r in reservataires for a in actives[r][1:]], dimen=2)

    m.stock = pyo.Var(m.STOCK, domain=pyo.NonNegativeIntegers)
    m.report = pyo.Var(m.REPORT, domain=pyo.NonNegativeIntegers)
    m.nouveau = pyo.Var(m.NOUVEAU, domain=pyo.NonNegativeIntegers)
    m.depassement = pyo.Var(m.ANNEES, domain=pyo.NonNegativeReals)
    m.variation_hausse = pyo.Var(m.SUCCESSION, domain=pyo.NonNegativeReals)
    m.variation_baisse = pyo.Var(m.SUCCESSION, domain=pyo.NonNegativeReals)
    m.variation_max = pyo.Var(m.R, domain=pyo.NonNegativeReals)
    m.ecart_plus = pyo.Var(m.ACTIF, domain=pyo.NonNegativeReals)
    m.ecart_moins = pyo.Var(m.ACTIF, domain=pyo.NonNegativeReals)

    def total(r: str, a: int):
        termes = [m.stock[r, a]] if (r, a) in m.STOCK else []
        termes += [m.report[r, a]] if (r, a) in m.REPORT else []
        termes += [m.nouveau[p, a] for p, prog in enumerate(probleme.programmes) if prog[0] == r and (p, a) in m.NOUVEAU]
        return sum(termes)

    m.ecoulement_stock = pyo.Constraint(
        list(probleme.stock),
        rule=lambda m, r: sum(m.stock[r, a] for a in probleme.stock[r][1])
        + sum(m.report[r, a] for a in probleme.carryover_years(r)) == probleme.stock[r][0],
    )
    m.droits_nouveaux = pyo.Constraint(
        m.P, rule=lambda m, p: sum(m.nouveau[p, a] for a in probleme.programmes[p][3]) == probleme.programmes[p][2]
    )
    m.capacite_annuelle = pyo.Constraint(
        m.ANNEES, rule=lambda m, a: sum(total(r, a) for r in m.R) <= probleme.capacite[a] + m.depassement[a]
    )

    def precedente(r: str, a: int) -> int:
        return actives[r][actives[r].index(a) - 1]

    m.stabilite = pyo.Constraint(
        m.SUCCESSION,
        rule=lambda m, r, a: total(r, a) - total(r, precedente(r, a)) == m.variation_hausse[r, a] - m.variation_baisse[r, a],
    )
    m.stabilite_max = pyo.Constraint(
        m.SUCCESSION, rule=lambda m, r, a: m.variation_hausse[r, a] + m.variation_baisse[r, a] <= m.variation_max[r]
    )
    m.repartition_reguliere = pyo.Constraint(
        m.ACTIF,
        rule=lambda m, r, a: total(r, a) - probleme.even_target(r, a) == m.ecart_plus[r, a] - m.ecart_moins[r, a],
    )
    m.objectif = pyo.Objective(
        expr=PENALITE_DEPASSEMENT * sum(m.depassement.values())
        + PENALITE_REPORT * sum(m.report.values())
        + POIDS_VARIATION_MAX * sum(m.variation_max.values())
        + POIDS_VARIATION * sum(m.variation_hausse[k] + m.variation_baisse[k] for k in m.SUCCESSION)
        + POIDS_ECART_REGULIER * sum(m.ecart_plus[k] + m.ecart_moins[k] for k in m.ACTIF),
        sense=pyo.minimize,
    )
    return m


def solve_lissage(modele: pyo.ConcreteModel, temps_max_s: float) -> str:
    solveur = SolverFactory("highs")
    resultat = solveur.solve(
        modele,
        time_limit=temps_max_s,
        load_solutions=False,
        raise_exception_on_nonoptimal_result=False,
        solver_options={"threads": 1, "random_seed": 0, "mip_rel_gap": ECART_RELATIF},
    )
    if resultat.solution_status == SolutionStatus.noSolution:
        # Cannot happen with the elastic capacity unless the data are broken.
        raise RuntimeError(f"Le lissage n'a pas trouvé de solution ({resultat.termination_condition.name}).")
    resultat.solution_loader.load_vars()
    return "optimal" if resultat.solution_status == SolutionStatus.optimal else "non optimal (limite de temps)"


def integer_value(variable) -> int:
    return int(round(pyo.value(variable)))
