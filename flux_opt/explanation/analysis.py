"""Why the plan is what it is: binding rules, marginal values, rule costs, shortfalls, causes.

`analyse(model, solution, result)` fills the result's marginal values and sentences and returns
an `Explanation` (plain tables, JSON round-trip) that the report and `flux-opt expliquer` read.
See models/explication.md for the choice of LPs.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from flux_opt.explanation.sentences import explain, fr_number, fr_number_fine
from flux_opt.explanation.marginal import MAX_PROBES, cut_short, dual_estimates, marginal_values, rule_costs
from flux_opt.model.registry import CONSERVATION, RULE, label, names, source
from flux_opt.model.build import OrientationModel
from flux_opt.model.solve import Solution
from flux_opt.errors import InputProblem, InvalidInput
from flux_opt.plan import folder as plan_folder
from flux_opt.plan.result import Result, published_mask
from flux_opt.explanation.pools import pool_sentences, pool_table
from flux_opt.explanation.shortfalls import unmet_demand, vacancy_risk, violation_causes

NEGOTIABLE = names(negotiable=True)  # families a negotiation can change
TABLES = ("familles", "reservataires", "couts", "violations", "saturees", "vacance", "demande_non_servie", "viviers")
EXPLICATION_JSON = "explication.json"


@dataclass
class Explanation:
    familles: pd.DataFrame  # per family: rows, saturées, violées, impact (Σ marginal values), violation
    reservataires: pd.DataFrame  # per réservataire: same, ranked by impact
    couts: pd.DataFrame  # re-solves: family relaxed by a point / removed, exact gains
    violations: pd.DataFrame  # violated rows: contrainte, portee, violation, cause, explication
    saturees: pd.DataFrame  # binding rows of negotiable families, by marginal value
    vacance: pd.DataFrame  # dwellings without candidate (risk of vacance commerciale)
    demande_non_servie: pd.DataFrame  # candidates without dwelling
    viviers: pd.DataFrame = field(default_factory=pd.DataFrame)  # dwellings by financement beside the pools (pools.py)
    raisons: list[str] = field(default_factory=list)  # the top reasons, in French
    temps_s: dict = field(default_factory=dict)
    instance: str | None = None  # path of the instance, to rebuild the analysis

    def to_dict(self) -> dict:
        out = {name: _records(getattr(self, name)) for name in TABLES}
        out.update(raisons=self.raisons, temps_s=self.temps_s, instance=self.instance)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Explanation:
        tables = {name: pd.DataFrame(data.get(name, [])) for name in TABLES}
        return cls(**tables, raisons=list(data.get("raisons", [])), temps_s=dict(data.get("temps_s", {})),
                   instance=data.get("instance"))

    def write_json(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def read_json(cls, path: Path) -> Explanation:
        try:
            return cls.from_dict(plan_folder.read_json(path))
        except (KeyError, TypeError, ValueError, AttributeError):  # valid JSON, not an explanation
            raise InvalidInput([InputProblem(str(path), None, None,
                                             f"contenu inattendu ; {plan_folder.DAMAGED}")]) from None


def _records(frame: pd.DataFrame) -> list[dict]:
    clean = frame.astype(object).where(frame.notna(), None)
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in clean.to_dict(orient="records")]


# ----------------------------------------------------------------------------- entry point

def analyse(model: OrientationModel, solution: Solution, result: Result, couts: bool = True,
            k: int = 3, instance: str | None = None) -> Explanation:
    """Marginal values, sentences with causes, aggregations, rule costs (top k), shortfalls."""
    t0 = time.perf_counter()
    budget = analysis_budget(model, solution)
    rows = result.rows
    # Beyond MAX_PROBES rows the LP dual stands for the gain; a budget chosen in instance.toml
    # ([analyse] temps_max_s) measures every row it leaves time for.
    chosen = model.data.instance.parametres.analyse.temps_max_s is not None
    marginal = marginal_values(model, solution, rows, budget_s=MARGINAL_SHARE * budget,
                               max_probes=float("inf") if chosen else MAX_PROBES)
    for column in ("valeur_marginale", "sens", "lp_marginal", "dual"):
        rows[column] = marginal[column].to_numpy()
    rows["point_logements"] = point_of_rate(rows, result)
    t_duals = time.perf_counter() - t0
    causes = violation_causes(model, result)
    explain(result, model, causes)
    familles = family_table(rows)
    chosen = families_to_cost(familles, k) if couts else []
    t1 = time.perf_counter()
    cost_table = rule_costs(model, solution, rows, chosen, budget_s=max(0.0, budget - (t1 - t0)))
    t_costs = time.perf_counter() - t1
    published = rows.loc[published_mask(rows)]
    violations = published.loc[published["statut"] == "violee"].assign(
        cause=[causes.get(i, "") for i in published.index[published["statut"] == "violee"]])
    violations = violations.sort_values("violation", ascending=False, kind="stable")  # largest gap first
    explanation = Explanation(
        familles=familles,
        reservataires=reservataire_table(rows),
        couts=cost_table,
        violations=violations[["contrainte", "portee", "violation", "cause", "explication"]].reset_index(drop=True),
        saturees=binding_table(rows),
        vacance=vacancy_risk(result),
        demande_non_servie=unmet_demand(result),
        viviers=pool_table(model, result),
        instance=instance,
    )
    explanation.temps_s = {"valeurs_marginales": round(t_duals, 3), "couts_des_regles": round(t_costs, 3),
                           "valeurs_duales": dual_estimates(marginal, rows),
                           "budget_s": round(budget, 3), "couts_interrompus": cut_short(cost_table),
                           "total": round(time.perf_counter() - t0, 3)}
    explanation.raisons = top_reasons(explanation, result) + pool_sentences(explanation.viviers, result.noms)
    return explanation


def analysis_budget(model: OrientationModel, solution: Solution) -> float:
    """Seconds of re-solves for the analysis (marginal values first, at most MARGINAL_SHARE of it, then
    the rule costs): `[analyse] temps_max_s`, else SOLVE_SHARE of the plan's solve time (at least
    MIN_BUDGET_S), so that the whole `flux-opt plan` stays within twice its solve time."""
    chosen = model.data.instance.parametres.analyse.temps_max_s
    return float(chosen) if chosen is not None else max(MIN_BUDGET_S, SOLVE_SHARE * solution.raw.seconds)


MIN_BUDGET_S, SOLVE_SHARE, MARGINAL_SHARE = 5.0, 0.4, 0.5


def point_of_rate(rows: pd.DataFrame, result: Result) -> np.ndarray:
    """One point of the rule's rate, in units of its bound (NaN where the rule has no rate)."""
    flux = float(result.resume["flux"])
    plan = result.plan
    by_r = plan.groupby("reservataire")["logements"].sum()
    family = rows["contrainte"].to_numpy()
    out = np.full(len(rows), np.nan)
    out[np.isin(family, names(rate_base="flux"))] = 0.01 * flux
    base = pd.to_numeric(rows.get("base", pd.Series(np.nan, index=rows.index)), errors="coerce").to_numpy(dtype=float)
    on_base = np.isin(family, names(rate_base="base"))
    out[on_base] = 0.01 * base[on_base]
    part = pd.to_numeric(rows.get("part_min", pd.Series(np.nan, index=rows.index)), errors="coerce").to_numpy(dtype=float)
    lower = rows["borne_inf"].to_numpy(dtype=float)
    mix = np.isin(family, names(rate_base="part")) & (lower > 0) & (part > 0)
    out[mix] = 0.01 * lower[mix] / part[mix]
    prio = np.isin(family, names(rate_base="reservataire"))
    if prio.any():  # a point of its dwellings, or of its expected attributions (composition model)
        lettings = result.attributions.groupby("reservataire")["attributions_prevues"].sum()
        on_lettings = rows.get("base_taux", pd.Series("", index=rows.index)).to_numpy() == "attributions"
        who = rows["reservataire"]
        out[prio] = 0.01 * np.where(on_lettings[prio], who[prio].map(lettings).fillna(0).to_numpy(dtype=float),
                                    who[prio].map(by_r).fillna(0).to_numpy(dtype=float))
    return np.round(out, 6)


# ----------------------------------------------------------------------------- aggregation

def family_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per rule family, ranked: violated families first, then by impact."""
    pub = rows.loc[published_mask(rows)]
    active = pub["statut"] != "lache"
    table = pd.DataFrame({
        "famille": pub["contrainte"], "saturee": pub["statut"] == "saturee", "violee": pub["statut"] == "violee",
        "impact": np.where(active, pub["valeur_marginale"].fillna(0), 0.0), "violation": pub["violation"],
        "lp_marginal": pub.get("lp_marginal", pd.Series("", index=pub.index)),
    })
    out = (table.groupby("famille", sort=False)
           .agg(lignes=("saturee", "size"), saturees=("saturee", "sum"), violees=("violee", "sum"),
                impact=("impact", "sum"), violation=("violation", "sum"), lp_marginal=("lp_marginal", "first"))
           .reset_index())
    out.insert(1, "regle", out["famille"].map(label))
    out.insert(2, "source", out["famille"].map(source))
    out["impact"] = out["impact"].round(4)
    out["violation"] = out["violation"].round(4)
    out["negociable"] = out["famille"].isin(NEGOTIABLE)
    return out.sort_values(["violees", "impact", "saturees"], ascending=False, kind="stable").reset_index(drop=True)


def families_to_cost(familles: pd.DataFrame, k: int) -> list[str]:
    """The violated families (at most k) and the k binding families of highest impact."""
    negotiable = familles.loc[familles["negociable"]]
    violated = negotiable.loc[negotiable["violees"] > 0, "famille"].head(k).tolist()
    binding = negotiable.loc[(negotiable["violees"] == 0) & (negotiable["saturees"] > 0)]
    binding = binding.sort_values(["impact", "saturees"], ascending=False, kind="stable")
    return violated + binding["famille"].head(k).tolist()


def _owner(rows: pd.DataFrame) -> pd.Series:
    """Réservataire a row is about: its label, the préfet for the State rules, else « tous »."""
    owner = rows.get("reservataire", pd.Series(None, index=rows.index, dtype=object))
    owner = owner.where(owner.map(lambda v: isinstance(v, str) and v != ""), None)
    family = rows["contrainte"]
    owner = owner.fillna(family.map(lambda f: RULE[f].owner))
    return owner.fillna("tous")


def reservataire_table(rows: pd.DataFrame) -> pd.DataFrame:
    pub = rows.loc[published_mask(rows) & rows["contrainte"].ne(CONSERVATION)]
    active = pub["statut"] != "lache"
    table = pd.DataFrame({"reservataire": _owner(pub), "famille": pub["contrainte"],
                          "saturee": pub["statut"] == "saturee", "violee": pub["statut"] == "violee",
                          "impact": np.where(active, pub["valeur_marginale"].fillna(0), 0.0),
                          "violation": pub["violation"]})
    binding = table.loc[table["saturee"] | table["violee"]]
    top = (binding.groupby(["reservataire", "famille"])["impact"].sum().reset_index()
           .sort_values(["reservataire", "impact"], ascending=[True, False], kind="stable")
           .groupby("reservataire")["famille"].apply(lambda f: ", ".join(f.head(3))))
    out = (table.groupby("reservataire")
           .agg(saturees=("saturee", "sum"), violees=("violee", "sum"), impact=("impact", "sum"),
                violation=("violation", "sum"))
           .reset_index())
    out["regles_contraignantes"] = out["reservataire"].map(top).fillna("")
    out["impact"] = out["impact"].round(4)
    out["violation"] = out["violation"].round(4)
    return out.sort_values(["violees", "impact"], ascending=False, kind="stable").reset_index(drop=True)


def binding_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Binding rows of negotiable families, highest marginal value first."""
    pub = rows.loc[published_mask(rows) & rows["contrainte"].isin(NEGOTIABLE) & (rows["statut"] == "saturee")]
    columns = ["contrainte", "portee", "valeur", "borne_inf", "borne_sup", "valeur_marginale", "lp_marginal",
               "point_logements", "explication"]
    pub = pub.reindex(columns=columns)
    return pub.sort_values("valeur_marginale", ascending=False, kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------- reasons

def top_reasons(e: Explanation, result: Result, n_binding: int = 5) -> list[str]:
    """The few sentences a user reads first: violations, costly rules, shortfalls."""
    reasons = [f"Règle non tenue — {row.explication}" for row in e.violations.itertuples()]
    costs = e.couts.dropna(subset=["gain_adequation_ponderee"])
    free = []
    for row in costs.itertuples():
        changes_violations = abs(row.violation_totale - row.violation_avant) > 1e-6
        if abs(row.gain_adequation_ponderee) > _noise(row) or changes_violations:
            reasons.append(cost_sentence(row))
        elif row.variante == "supprimée":
            free.append(f"« {label(row.famille)} »")
    if free:
        how = resolution_words(float(costs["precision"].max()) if "precision" in costs else 0.0)
        reasons.append(f"Sans effet mesurable sur l'adéquation ({how}) : supprimer " + ", ".join(free)
                       + " ne placerait pas plus de ménages ; ces règles sont tenues sans marge mais ne coûtent rien.")
    strong = e.saturees.loc[e.saturees["valeur_marginale"] > 1e-3].head(n_binding)
    reasons += [f"Règle tenue sans marge — {row.explication}" for row in strong.itertuples()]
    if len(e.vacance):
        total = e.vacance["sans_candidat"].sum()
        worst = e.vacance.iloc[0]
        reasons.append(f"Risque de vacance commerciale : {_about(total, 'logement orienté')} sans candidat "
                       f"dans le vivier de leur réservataire, dont {fr_number(worst['sans_candidat'])} {worst['typologie']} à "
                       f"{result.noms.commune(worst['commune'])} pour {result.noms.reservataire(worst['reservataire'])} "
                       f"({worst['cause']}).")
    if len(e.demande_non_servie):
        total = e.demande_non_servie["non_servis"].sum()
        none = e.demande_non_servie.loc[e.demande_non_servie["logements_du_flux"] == 0]
        text = f"Demande non servie : {_about(total, 'demandeur')} des viviers restent sans logement cette année"
        if len(none):
            text += (f", dont {_about(none['non_servis'].sum())} pour des typologies absentes du flux de "
                     "leur zone")
        reasons.append(text + ".")
    if e.temps_s.get("couts_interrompus"):
        reasons.append(f"Coût des règles incomplet : {e.temps_s['couts_interrompus']} nouvelle(s) résolution(s) "
                       f"arrêtée(s) ou non lancée(s), le budget de {fr_number_fine(e.temps_s['budget_s'])} s "
                       "de l'analyse étant épuisé (paramètre [analyse] temps_max_s de instance.toml).")
    if not e.violations.shape[0]:
        reasons.insert(0, f"Toutes les règles sont tenues ; {_about(result.resume['attributions_prevues'], 'attribution prévue')} "
                          f"sur {fr_number(result.resume['flux'])} logements.")
    return reasons


def _about(value: float, word: str = "") -> str:
    """An expected count as people read it: « environ 1 008 demandeurs », « moins d'une attribution »."""
    n = round(float(value))
    if n == 0 and value > 0:
        return f"moins d'un{'e' if word.startswith('attribution') else ''} {word}".rstrip()
    text = "environ " + fr_number(n) if abs(value - n) > 1e-6 else fr_number(n)
    words = " ".join(w + "s" for w in word.split()) if n > 1 else word
    return f"{text} {words}".rstrip()


PRECISE = 0.01  # a re-solve's accepted gap below which its gains read as exact


def resolution_words(precision: float, plural: bool = False) -> str:
    """How exact a re-solve's gain is: « nouvelle résolution exacte », or « …, à 1,9 près … »."""
    what = "nouvelles résolutions" if plural else "nouvelle résolution"
    if not (isinstance(precision, float) and math.isfinite(precision) and precision > PRECISE):
        return f"{what} {'exactes' if plural else 'exacte'}"
    return f"{what}, à {fr_number_fine(precision)} près au score d'adéquation"


def _noise(row) -> float:
    """A gain within the re-solves' accepted gap is not an effect of the rule."""
    precision = getattr(row, "precision", 0.0)
    return max(1e-3, precision if isinstance(precision, float) and math.isfinite(precision) else 0.0)


def cost_sentence(row) -> str:
    name = label(row.famille)
    gain, weighted = row.gain_attributions, row.gain_adequation_ponderee
    action = "la supprimer" if row.variante == "supprimée" else "la relâcher d'un point (ou d'un logement de tolérance)"
    if abs(weighted) < 1e-3:
        effect = "ne changerait pas l'adéquation"
    elif abs(gain) < 1e-3:
        effect = (f"donnerait le même nombre d'attributions prévues mais {fr_number_fine(weighted)} au score "
                  "d'adéquation (des ménages prioritaires à la place d'autres)")
    else:
        verb = "ferait gagner" if gain > 0 else "ferait perdre"
        effect = (f"{verb} {_about(abs(gain), 'attribution prévue')} "
                  f"({fr_number_fine(weighted)} au score d'adéquation)")
    moved = row.logements_deplaces
    tail = f", en déplaçant {fr_number(moved)} logement(s)" if isinstance(moved, float) and moved > 0 else ""
    viol = ""
    if isinstance(row.violation_avant, float) and row.violation_avant > 1e-6 and math.isfinite(row.violation_totale):
        viol = (f" ; écarts aux règles non tenues : {fr_number(row.violation_avant)} → "
                f"{fr_number(row.violation_totale)}")
    how = resolution_words(getattr(row, "precision", 0.0))
    return f"Coût de la règle « {name} » : {action} {effect}{tail}{viol} ({how})."


__all__ = ["Explanation", "analyse", "family_table", "reservataire_table", "EXPLICATION_JSON"]

