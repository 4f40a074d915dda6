"""Lissage: spread each réservataire's owed volume over the negotiated years (models/lissage.md).

The Hauts-de-France regional framework (2021, §2) and the Île-de-France consultation (2021, thème 3): the volume of droits uniques converted from the
stock is spread over a negotiated number of years, with new rights from newly
financed programmes added in their own years, without overloading any year, so that
the yearly targets stay stable (a view over at least 3 years). Small réservataires
may be given explicit years.

Solved as a small integer program (Pyomo + HiGHS); the formulation, with the
constraint names used below, is in `models/lissage.md`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd
import pyomo.environ as pyo
from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import SolutionStatus

from flux_opt.stock.conversion import arrondi, lire_nombre

HORIZON_MIN = 3  # Hauts-de-France framework §2: "une vision stabilisée des objectifs [...] au moins sur 3 ans"

# Objective weights: overload first, then the largest yearly change of each
# réservataire, then the sum of changes, then closeness to an even spread.
PENALITE_DEPASSEMENT = 10_000.0
POIDS_VARIATION_MAX = 1.0
POIDS_VARIATION = 0.1
POIDS_ECART_REGULIER = 0.01
# Proving the last 0.1 % of stability costs far more than it is worth (measured: 40
# réservataires × 10 years, 3.5 s at 1e-3 against > 20 s at 1e-6).
ECART_RELATIF = 1e-3


@dataclass(frozen=True)
class Lissage:
    """Multi-year targets of the réservataires and how they fit each year's flux."""

    annees: list[int]
    objectifs: pd.DataFrame  # index reservataire, one int column per year: stock + new rights
    detail: pd.DataFrame  # reservataire, source ("stock" or programme), annee, logements
    annuel: pd.DataFrame  # annee, flux_prevu, capacite, logements, marge, depassement
    volumes: pd.DataFrame  # reservataire, volume_du, volume_entier, annees
    statut: str  # "optimal" or "non optimal (limite de temps)"
    part_max: float
    notes: list[str] = field(default_factory=list)

    @property
    def realisable(self) -> bool:
        """True when every year's targets fit within part_max × flux prévu."""
        return bool((self.annuel["depassement"] == 0).all())

    def objectifs_annee(self, annee: int | None = None) -> dict[str, int]:
        """Targets of one year (default: the first) as réservataire → logements."""
        annee = self.annees[0] if annee is None else annee
        if annee not in self.objectifs.columns:
            raise ValueError(f"L'année {annee} n'est pas dans le lissage ({self.annees[0]}–{self.annees[-1]}).")
        return {str(r): int(v) for r, v in self.objectifs[annee].items()}


@dataclass(frozen=True)
class _Probleme:
    annees: list[int]
    flux: dict[int, float]
    capacite: dict[int, int]
    stock: dict[str, tuple[int, list[int]]]  # réservataire → (volume entier, années)
    programmes: list[tuple[str, str, int, list[int]]]  # (réservataire, programme, logements, années)

    @property
    def reservataires(self) -> list[str]:
        return sorted(set(self.stock) | {p[0] for p in self.programmes})

    def annees_actives(self, reservataire: str) -> list[int]:
        actives = set(self.stock.get(reservataire, (0, []))[1])
        for r, _, _, annees in self.programmes:
            if r == reservataire:
                actives |= set(annees)
        return sorted(actives)

    def cible_reguliere(self, reservataire: str, annee: int) -> float:
        """Even spread of the stock and of each programme over their own years."""
        cible = 0.0
        volume, annees = self.stock.get(reservataire, (0, []))
        if annee in annees:
            cible += volume / len(annees)
        for r, _, logements, annees_p in self.programmes:
            if r == reservataire and annee in annees_p:
                cible += logements / len(annees_p)
        return cible


def lisser(
    volumes: pd.DataFrame,
    flux_prevu: Mapping[int, float],
    nouveaux_droits: pd.DataFrame | None = None,
    horizon: int | None = None,
    part_max: float = 1.0,
    annee_debut: int | None = None,
    duree_defaut: int | None = None,
    temps_max_s: float = 20.0,
) -> Lissage:
    """Spread the owed volumes over the years, within part_max × the forecast flux.

    volumes: reservataire, volume_du and, to set a réservataire's years, one of
    `annees_explicites` ("2025;2027"), `annee_fin` (last year) or `annees` (number of
    years from `annee_debut`); otherwise `duree_defaut` years, otherwise the horizon.
    flux_prevu: forecast flux C per year. nouveaux_droits: reservataire, programme,
    logements, annee_debut, duree (rights of new programmes, spread over their years).
    horizon: years shown (default: the years of flux_prevu from annee_debut), ≥ 3;
    the table extends further when a réservataire's years do.
    """
    probleme = _preparer(volumes, flux_prevu, nouveaux_droits, horizon, part_max, annee_debut, duree_defaut)
    modele = construire_modele(probleme)
    statut = _resoudre(modele, temps_max_s)
    return _lire_resultat(modele, probleme, volumes, statut, part_max)


def construire_modele(probleme: _Probleme) -> pyo.ConcreteModel:
    """The lissage integer program (models/lissage.md)."""
    m = pyo.ConcreteModel(name="lissage")
    reservataires = probleme.reservataires
    m.ANNEES = pyo.Set(initialize=probleme.annees, ordered=True)
    m.R = pyo.Set(initialize=reservataires, ordered=True)
    m.STOCK = pyo.Set(initialize=[(r, a) for r, (_, ans) in probleme.stock.items() for a in ans], dimen=2)
    m.P = pyo.RangeSet(0, len(probleme.programmes) - 1) if probleme.programmes else pyo.Set(initialize=[])
    m.NOUVEAU = pyo.Set(initialize=[(p, a) for p, (_, _, _, ans) in enumerate(probleme.programmes) for a in ans], dimen=2)
    actives = {r: probleme.annees_actives(r) for r in reservataires}
    m.ACTIF = pyo.Set(initialize=[(r, a) for r in reservataires for a in actives[r]], dimen=2)
    m.SUCCESSION = pyo.Set(initialize=[(r, a) for r in reservataires for a in actives[r][1:]], dimen=2)

    m.stock = pyo.Var(m.STOCK, domain=pyo.NonNegativeIntegers)
    m.nouveau = pyo.Var(m.NOUVEAU, domain=pyo.NonNegativeIntegers)
    m.depassement = pyo.Var(m.ANNEES, domain=pyo.NonNegativeReals)
    m.variation_hausse = pyo.Var(m.SUCCESSION, domain=pyo.NonNegativeReals)
    m.variation_baisse = pyo.Var(m.SUCCESSION, domain=pyo.NonNegativeReals)
    m.variation_max = pyo.Var(m.R, domain=pyo.NonNegativeReals)
    m.ecart_plus = pyo.Var(m.ACTIF, domain=pyo.NonNegativeReals)
    m.ecart_moins = pyo.Var(m.ACTIF, domain=pyo.NonNegativeReals)

    def total(r: str, a: int):
        termes = [m.stock[r, a]] if (r, a) in m.STOCK else []
        termes += [m.nouveau[p, a] for p, prog in enumerate(probleme.programmes) if prog[0] == r and (p, a) in m.NOUVEAU]
        return sum(termes)

    m.ecoulement_stock = pyo.Constraint(
        list(probleme.stock),
        rule=lambda m, r: sum(m.stock[r, a] for a in probleme.stock[r][1]) == probleme.stock[r][0],
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
        rule=lambda m, r, a: total(r, a) - probleme.cible_reguliere(r, a) == m.ecart_plus[r, a] - m.ecart_moins[r, a],
    )
    m.objectif = pyo.Objective(
        expr=PENALITE_DEPASSEMENT * sum(m.depassement.values())
        + POIDS_VARIATION_MAX * sum(m.variation_max.values())
        + POIDS_VARIATION * sum(m.variation_hausse[k] + m.variation_baisse[k] for k in m.SUCCESSION)
        + POIDS_ECART_REGULIER * sum(m.ecart_plus[k] + m.ecart_moins[k] for k in m.ACTIF),
        sense=pyo.minimize,
    )
    return m


# ---------------------------------------------------------------- data preparation


def _preparer(volumes, flux_prevu, nouveaux_droits, horizon, part_max, annee_debut, duree_defaut) -> _Probleme:
    if not flux_prevu:
        raise ValueError("Aucun flux prévu fourni pour le lissage.")
    if not 0 < part_max <= 1:
        raise ValueError(f"La part maximale du flux doit être comprise entre 0 et 1 (reçu : {part_max}).")
    flux = {int(a): float(v) for a, v in flux_prevu.items()}
    debut = min(flux) if annee_debut is None else int(annee_debut)
    if horizon is None:
        horizon = _annees_consecutives(flux, debut)
    if horizon < HORIZON_MIN:
        raise ValueError(f"Le lissage doit donner une vision sur au moins {HORIZON_MIN} ans (horizon : {horizon}).")
    annees_horizon = list(range(debut, debut + horizon))
    stock = _lire_volumes(volumes, annees_horizon, duree_defaut)
    programmes = _lire_programmes(nouveaux_droits, debut)
    fin = max([annees_horizon[-1]] + [a for _, ans in stock.values() for a in ans] + [a for *_, ans in programmes for a in ans])
    annees = list(range(debut, fin + 1))
    manquantes = [a for a in annees if a not in flux]
    if manquantes:
        raise ValueError(f"Flux prévu manquant pour l'année (les années) : {', '.join(map(str, manquantes))}.")
    capacite = {a: math.floor(part_max * flux[a] + 1e-9) for a in annees}
    return _Probleme(annees, {a: flux[a] for a in annees}, capacite, stock, programmes)


def _annees_consecutives(flux: Mapping[int, float], debut: int) -> int:
    n = 0
    while debut + n in flux:
        n += 1
    return n


def _lire_volumes(volumes: pd.DataFrame, annees_horizon: list[int], duree_defaut: int | None) -> dict:
    if "reservataire" not in volumes.columns or "volume_du" not in volumes.columns:
        raise ValueError("Volumes à lisser : colonnes reservataire et volume_du requises.")
    debut = annees_horizon[0]
    stock: dict[str, tuple[int, list[int]]] = {}
    for position, ligne in enumerate(volumes.to_dict("records")):
        numero = position + 2
        reservataire = str(ligne["reservataire"]).strip()
        if reservataire in stock:
            raise ValueError(f"lissage.csv, ligne {numero} : réservataire {reservataire} en double.")
        volume = lire_nombre(ligne["volume_du"], "volume_du", numero, "lissage.csv")
        if volume is None or volume < 0:
            raise ValueError(f"lissage.csv, ligne {numero} : volume_du manquant ou négatif.")
        annees = _annees_reservataire(ligne, debut, annees_horizon, duree_defaut, numero)
        stock[reservataire] = (arrondi(volume), annees)
    return stock


def _annees_reservataire(ligne: Mapping, debut: int, annees_horizon: list[int], duree_defaut, numero: int) -> list[int]:
    """Years of one réservataire: explicit list, else up to annee_fin, else a count of years."""
    explicites = str(ligne.get("annees_explicites", "") or "").strip()
    if explicites and explicites.lower() != "nan":
        try:
            annees = sorted({int(x) for x in explicites.replace(",", ";").split(";") if x.strip()})
        except ValueError:
            raise ValueError(f"lissage.csv, ligne {numero} : annees_explicites « {explicites} » illisible.") from None
    else:
        fin = lire_nombre(ligne.get("annee_fin"), "annee_fin", numero, "lissage.csv")
        nombre = lire_nombre(ligne.get("annees"), "annees", numero, "lissage.csv")
        if fin is not None:
            annees = list(range(debut, int(fin) + 1))
        elif nombre is not None:
            annees = list(range(debut, debut + int(nombre)))
        elif duree_defaut is not None:
            annees = list(range(debut, debut + int(duree_defaut)))
        else:
            annees = list(annees_horizon)
    if not annees or annees[0] < debut:
        raise ValueError(f"lissage.csv, ligne {numero} : années de lissage vides ou antérieures à {debut}.")
    return annees


def _lire_programmes(nouveaux_droits: pd.DataFrame | None, debut: int) -> list[tuple[str, str, int, list[int]]]:
    if nouveaux_droits is None or nouveaux_droits.empty:
        return []
    programmes = []
    for position, ligne in enumerate(nouveaux_droits.to_dict("records")):
        numero = position + 2
        valeurs = {
            champ: lire_nombre(ligne.get(champ), champ, numero, "nouveaux_droits.csv")
            for champ in ("logements", "annee_debut", "duree")
        }
        if any(v is None for v in valeurs.values()) or valeurs["duree"] < 1 or valeurs["logements"] < 0:
            raise ValueError(f"nouveaux_droits.csv, ligne {numero} : logements, annee_debut et duree (≥ 1) requis.")
        premiere = int(valeurs["annee_debut"])
        if premiere < debut:
            raise ValueError(f"nouveaux_droits.csv, ligne {numero} : annee_debut {premiere} antérieure au lissage ({debut}).")
        annees = list(range(premiere, premiere + int(valeurs["duree"])))
        programmes.append((str(ligne["reservataire"]).strip(), str(ligne["programme"]).strip(), arrondi(valeurs["logements"]), annees))
    return programmes


# ---------------------------------------------------------------- solving and reading


def _resoudre(modele: pyo.ConcreteModel, temps_max_s: float) -> str:
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


def _lire_resultat(modele, probleme: _Probleme, volumes: pd.DataFrame, statut: str, part_max: float) -> Lissage:
    lignes = [
        {"reservataire": r, "source": "stock", "annee": a, "logements": _entier(modele.stock[r, a])}
        for (r, a) in modele.STOCK
    ]
    lignes += [
        {"reservataire": probleme.programmes[p][0], "source": probleme.programmes[p][1], "annee": a,
         "logements": _entier(modele.nouveau[p, a])}
        for (p, a) in modele.NOUVEAU
    ]
    detail = pd.DataFrame(lignes, columns=["reservataire", "source", "annee", "logements"])
    objectifs = (
        detail.pivot_table(index="reservataire", columns="annee", values="logements", aggfunc="sum", fill_value=0)
        .reindex(index=probleme.reservataires, columns=probleme.annees, fill_value=0)
        .astype("int64")
    )
    objectifs.columns.name = None
    annuel = _bilan_annuel(objectifs, probleme)
    resume_volumes = pd.DataFrame(
        [
            {"reservataire": r, "volume_du": float(_volume_reel(volumes, r)), "volume_entier": v,
             "annees": ";".join(map(str, ans))}
            for r, (v, ans) in probleme.stock.items()
        ],
        columns=["reservataire", "volume_du", "volume_entier", "annees"],
    )
    return Lissage(probleme.annees, objectifs, detail, annuel, resume_volumes, statut, part_max, _notes(annuel, statut))


def _bilan_annuel(objectifs: pd.DataFrame, probleme: _Probleme) -> pd.DataFrame:
    totaux = objectifs.sum(axis=0)
    lignes = []
    for a in probleme.annees:
        logements = int(totaux[a])
        capacite = probleme.capacite[a]
        lignes.append({
            "annee": a,
            "flux_prevu": probleme.flux[a],
            "capacite": capacite,
            "logements": logements,
            "marge": max(capacite - logements, 0),
            "depassement": max(logements - capacite, 0),
        })
    return pd.DataFrame(lignes)


def _notes(annuel: pd.DataFrame, statut: str) -> list[str]:
    notes = []
    for ligne in annuel.itertuples():
        if ligne.depassement > 0:
            notes.append(
                f"Année {ligne.annee} : les objectifs ({ligne.logements}) dépassent la capacité "
                f"({ligne.capacite}) de {ligne.depassement} logement(s) ; allonger la durée de lissage "
                "ou relever la part maximale du flux."
            )
    if statut != "optimal":
        notes.append("Le lissage s'est arrêté à la limite de temps : la solution est valide mais peut-être pas la plus stable.")
    return notes


def _entier(variable) -> int:
    return int(round(pyo.value(variable)))


def _volume_reel(volumes: pd.DataFrame, reservataire: str) -> float:
    ligne = volumes[volumes["reservataire"].astype(str).str.strip() == reservataire].iloc[0]
    return lire_nombre(ligne["volume_du"], "volume_du", 0, "lissage.csv") or 0.0
