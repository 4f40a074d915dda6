"""Plain-French explanations of the plan's rules: one sentence per line of contraintes.csv.

A sentence names the rule (its stable name and legal source), the place, the real
figures (not the linearised row: "18,8 attributions prioritaires sur 75 logements, soit
25,1 %", never "valeur 18,8 pour au moins 0"), the status, the marginal value and, for a
violated rule, the cause found in the data (flux_opt.explanation.shortfalls.violation_causes).

The figures come from the result tables only (plan, attributions, rows), so a sentence
can be checked against plan.csv and attributions.csv.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from flux_opt.model.registry import CONSERVATION, PLAFOND_PREFET, RULE, RULES, label
from flux_opt.plan.result import Result, contraintes_table, detail_mask, published_mask
from flux_opt.vocabulary import PREFET_GROUP

# Statuses as a person reads them (contraintes.csv keeps saturee / lache / violee / ecretee).
STATUS = {"saturee": "tenue, sans marge", "lache": "tenue, avec marge", "violee": "NON TENUE",
          "ecretee": "écrêtée"}
CRITERE = {"q1": "au 1er quartile", "q234": "aux quartiles 2 à 4", "prioritaire": "à des publics prioritaires",
           "travailleur_essentiel": "à des travailleurs essentiels"}
ZONE = {"qpv": "en QPV", "hors_qpv": "hors QPV", "tout": ""}


# ----------------------------------------------------------------------------- formatting

def fr_number(v) -> str:
    """French number: 1 234,5 (integers without decimals, one decimal otherwise); missing as —."""
    try:
        v = float(v)
    except (TypeError, ValueError):  # None, pd.NA
        return "—"
    if not math.isfinite(v):
        return "—"
    if abs(v - round(v)) < 0.05:
        return f"{int(round(v)):,}".replace(",", " ").replace("-", "−")
    return f"{v:,.1f}".replace(",", " ").replace(".", ",").replace("-", "−")


SOLVER_STATUS = {"Optimal": "optimal : aucun plan ne fait mieux",
                 "Time limit reached": "limite de temps atteinte : meilleur plan trouvé, sans preuve qu'il est optimal"}


def plan_quality(resume: dict) -> str:
    """The solver's status in words, with the optimality gap when there is one."""
    status = resume.get("statut_solveur")
    gap = resume.get("ecart_optimalite")
    if status == "Optimal" and gap is not None and gap > 0:
        return f"optimal à {fr_percent_fine(gap)} près : aucun plan ne fait mieux de plus de {fr_percent_fine(gap)}"
    text = SOLVER_STATUS.get(status, status)
    if gap is not None and gap > 0:
        text += f" (écart d'optimalité au plus {fr_percent_fine(gap)})"
    return text


def fr_percent_fine(share: float) -> str:
    """Small shares: 0,0056 % rather than 0,0 %."""
    return f"{100 * share:.2g}".replace(".", ",") + " %"


def fr_percent(share) -> str:
    """A share as a French percentage with one decimal: 0.2513 → 25,1 %."""
    if share is None or not math.isfinite(share):
        return "—"
    return f"{100 * share:.1f}".replace(".", ",").replace("-", "−") + " %"


def _plural(n: float, word: str) -> str:
    return word if abs(n) < 2 - 1e-9 else word + "s"


def _cap_words(rate, base) -> str:
    """How a legal cap was set: "(30,0 % de 379, arrondi à l'entier inférieur)" (never rounded up)."""
    return f"({fr_percent(rate)} de {fr_number(base)}, arrondi à l'entier inférieur)"


def _share(num: float, den: float) -> float:
    return num / den if den else float("nan")


# ----------------------------------------------------------------------------- context

class PlanFigures:
    """Sums over plan.csv and attributions.csv that the sentences quote (computed once)."""

    def __init__(self, result: Result):
        plan = result.plan.copy()
        plan["hors_qpv"] = plan["qpv"] != "oui"
        self.plan = plan
        att = result.attributions.copy()
        att["hors_qpv"] = att["qpv"] != "oui"
        self.att = att
        self.flux = int(result.resume.get("flux", plan["logements"].sum()))
        self.by_r = plan.groupby("reservataire")["logements"].sum()
        self.noms = result.noms
        self.prio_by_r = att.loc[att["prioritaire"] == "oui"].groupby("reservataire")["attributions_prevues"].sum()
        # each réservataire's attributions, summed as a pandas mask and sum does (one mask per row was dearer)
        self._att_r, self._att_ids = pd.factorize(att["reservataire"])
        self._att_values = att["attributions_prevues"].to_numpy(dtype=float)

    def prioritaires(self, row) -> tuple[float, float, str]:
        """(count, base, its unit) of a publics_prioritaires row: of the réservataire's expected
        attributions in the composition model (the law's reading), else of its dwellings (the row
        is then Σ prio − t·Σx ≥ 0)."""
        rid = row["reservataire"]
        if row.get("base_taux") == "attributions":
            code = self._att_ids.get_indexer([rid])[0]
            base = float(np.nansum(self._att_values[self._att_r == code])) if code >= 0 else 0.0
            return float(self.prio_by_r.get(rid, 0.0)), base, "attributions"
        base = float(self.by_r.get(rid, 0))
        return row["valeur"] + float(row["taux"]) * base, base, "logements"

    def dwellings(self, reservataire=None, epci=None, zone="tout", group=None) -> float:
        p = self.plan
        if reservataire is not None:
            p = p.loc[p["reservataire"] == reservataire]
        if group is not None:
            p = p.loc[p["reservataire"].isin(group)]
        if epci is not None:
            p = p.loc[p["epci"] == epci]
        if zone == "qpv":
            p = p.loc[~p["hors_qpv"]]
        elif zone == "hors_qpv":
            p = p.loc[p["hors_qpv"]]
        return float(p["logements"].sum())


# ----------------------------------------------------------------------------- bodies

def _flow_body(row, fig: PlanFigures) -> str:
    v, up = row["valeur"], row["borne_sup"]
    return (f"{fr_number(v)} {_plural(v, 'logement')} {_plural(v, 'orienté')} sur les {fr_number(up)} libérés : "
            "chaque logement libéré va à un seul réservataire")


def _state_cap_body(row, fig: PlanFigures) -> str:
    v, up, n = row["valeur"], row["borne_sup"], fr_number
    who = "le préfet (agents compris) reçoit" if row["contrainte"] == PLAFOND_PREFET \
        else "les agents de l'État reçoivent"
    return (f"{who} {n(v)} {_plural(v, 'logement')}, soit {fr_percent(_share(v, fig.flux))} du flux annuel "
            f"de {n(fig.flux)}, pour un plafond de {n(up)} {_cap_words(row.get('taux'), fig.flux)}")


def _uniformity_body(row, fig: PlanFigures) -> str:
    v, fc, n = row["valeur"], row.get("flux_commune"), fr_number
    return (f"le préfet (agents compris) reçoit {n(v)} des {n(fc)} logements du flux communal, "
            f"soit {fr_percent(_share(v, fc))}, pour un taux départemental de {fr_percent(row.get('taux'))} : "
            f"attendu entre {n(row['borne_inf'])} et {n(row['borne_sup'])} logements")


def _outside_qpv_body(row, fig: PlanFigures) -> str:
    v, base, n = row["valeur"], row.get("base"), fr_number
    if isinstance(base, (int, float)) and math.isfinite(base):  # reading "taux"
        return (f"le préfet (agents compris) reçoit {n(v)} logements hors QPV sur un flux hors QPV de "
                f"{n(base)}, soit {fr_percent(_share(v, base))}, pour un minimum de {n(row['borne_inf'])} logements")
    hq = fig.dwellings(zone="hors_qpv", group=PREFET_GROUP)
    total = fig.dwellings(group=PREFET_GROUP)
    return (f"{n(hq)} des {n(total)} logements du préfet (agents compris) sont hors QPV, "
            f"soit {fr_percent(_share(hq, total))} (lecture « part »)")


def _territory_cap_body(row, fig: PlanFigures) -> str:
    v, up, base, n = row["valeur"], row["borne_sup"], row.get("base"), fr_number
    return (f"sur le territoire de {fig.noms.reservataire(row['reservataire'])}, les collectivités sans "
            f"financement apporté reçoivent ensemble {n(v)} logements sur un flux de {n(base)}, soit "
            f"{fr_percent(_share(v, base))}, pour un plafond de {n(up)} logements {_cap_words(row.get('taux'), base)}")


def _target_body(row, fig: PlanFigures) -> str:
    return (f"{fig.noms.reservataire(row['reservataire'])} reçoit {fr_number(row['valeur'])} logements pour un "
            f"objectif de {fr_number(row['borne_inf'])} (convention)")


def _indicative_body(row, fig: PlanFigures) -> str:
    return (f"{fr_number(row['valeur'])} logements dans cette portée pour une cible indicative de "
            f"{fr_number(row['borne_inf'])} (écart pénalisé, jamais interdit)")


def _pool_body(row, fig: PlanFigures) -> str:
    v, up = row["valeur"], row["borne_sup"]
    return (f"{fr_number(v)} {_plural(v, 'attribution')} {_plural(v, 'prévue')} pour {fr_number(up)} "
            f"{_plural(up, 'demandeur')} du vivier ({fr_percent(_share(v, up))} servis)")


def _priority_body(row, fig: PlanFigures) -> str:
    rid, rate, n = row["reservataire"], float(row.get("taux")), fr_number
    prio, base, unit = fig.prioritaires(row)
    whose = (f"les {n(base)} attributions prévues de {fig.noms.reservataire(rid)}" if unit == "attributions"
             else f"les {n(base)} logements orientés à {fig.noms.reservataire(rid)}")
    return (f"{n(prio)} {_plural(prio, 'attribution')} {_plural(prio, 'prévue')} à des publics prioritaires "
            f"sur {whose}, soit {fr_percent(_share(prio, base))}, pour un minimum de {fr_percent(rate)} ({n(rate * base)})")


def _mixity_body(row, fig: PlanFigures) -> str:
    n = fr_number
    epci, zone, critere, part = row["epci"], row["zone"], row["critere"], float(row["part_min"])
    rid = row.get("reservataire")
    scoped = isinstance(rid, str) and rid != ""
    where = ZONE.get(zone, "")
    if scoped:  # row: Σ y − part·Σ x ≥ 0 on the réservataire's dwellings of the scope
        base = fig.dwellings(reservataire=rid, epci=epci, zone=zone)
        count = row["valeur"] + part * base
        whose = f"des logements orientés à {fig.noms.reservataire(rid)}"
    else:  # row: Σ y ≥ part × flux of the scope
        base = row["borne_inf"] / part if part else fig.dwellings(epci=epci, zone=zone)
        count = row["valeur"]
        whose = "du flux"
    place = f"dans l'EPCI {fig.noms.epci_label(epci)}" + (f" {where}" if where else "")
    return (f"{n(count)} {_plural(count, 'attribution')} {_plural(count, 'prévue')} {CRITERE.get(critere, critere)} "
            f"{place}, sur {n(base)} logements {whose} {where}".rstrip() +
            f", soit {fr_percent(_share(count, base))}, pour un minimum de {fr_percent(part)} ({n(part * base)})")


# The body of each family's sentence, by its registry facet `Rule.sentence` (tests/test_registry.py
# checks that every reported family has one).
BODIES = {
    "flow": _flow_body, "state_cap": _state_cap_body, "uniformity": _uniformity_body, "outside_qpv": _outside_qpv_body,
    "territory_cap": _territory_cap_body, "target": _target_body, "indicative": _indicative_body, "pool": _pool_body,
    "mixity": _mixity_body, "priority": _priority_body,
}


def _body(row, fig: PlanFigures) -> str:
    """The figures of the rule in the plan, in words (one function per kind of family)."""
    return BODIES[RULE[row["contrainte"]].sentence](row, fig)


# ----------------------------------------------------------------------------- tails

def _marginal_text(row) -> str:
    vm = row.get("valeur_marginale")
    if vm is None or not math.isfinite(vm) or vm < 1e-3 or row["contrainte"] == CONSERVATION:
        return ""
    rule = RULE[row["contrainte"]]
    unit = rule.unit
    lo, up = row["borne_inf"], row["borne_sup"]
    sens = row.get("sens", "")
    if rule.sentence == "target":
        change = (f"un logement de moins à cet objectif (rendu au reste du bailleur)" if sens == "moins"
                  else f"un logement de plus à cet objectif (pris sur le reste du bailleur)")
    elif rule.sentence == "indicative":  # a target, neither a cap nor a minimum
        change = ("un logement de plus à cette cible indicative" if sens == "plafond" or sens == "plus"
                  else "un logement de moins à cette cible indicative")
    elif sens == "plafond" or (sens != "minimum" and math.isfinite(up) and not math.isfinite(lo)):
        change = f"{_one(unit)} de plus au plafond" if rule.sentence != "pool" else "un demandeur de plus dans ce vivier"
    else:
        change = f"{_one(unit)} de moins au minimum"
    text = (f" ; gain possible : {change} permettrait ≈ {fr_number_fine(vm)} point(s) de plus au score "
            "d'adéquation")
    point = row.get("point_logements")
    if isinstance(point, float) and math.isfinite(point) and point > 0:
        text += (f" (un point de taux = {fr_number(point)} {_plural(point, unit)}, "
                 f"≈ {fr_number_fine(vm * point)} point(s) de score)")
    return text


def _one(unit: str) -> str:
    """« un logement », « une attribution »."""
    return f"une {unit}" if unit in ("attribution",) else f"un {unit}"


def fr_number_fine(v: float) -> str:
    """Marginal values: two decimals when below 10 (0,2 and 1,2 must not read as 0 and 1)."""
    if abs(v) >= 10:
        return fr_number(v)
    if abs(v) < 0.005:  # never « -0 »
        return "0"
    return f"{v:.2f}".rstrip("0").rstrip(".").replace(".", ",")


def _tail(row, cause: str | None) -> str:
    status = row["statut"]
    if status == "violee":
        unit = RULE[row["contrainte"]].unit
        text = f" — règle NON TENUE, écart de {fr_number(row['violation'])} {_plural(row['violation'], unit)}"
        return text + (f" : {cause}" if cause else " : elle ne peut pas être tenue avec ces données")
    if status == "saturee":
        return " — règle tenue, sans marge" + _marginal_text(row)
    return f" — règle tenue (marge {fr_number(row['marge'])})"


def sentence(row, fig: PlanFigures, cause: str | None = None) -> str:
    family = row["contrainte"]
    scope, body = fig.noms.scope(row["portee"]), _body(row, fig)
    # « réservataire Ville de Roubaix : Ville de Roubaix reçoit… » says the name once
    where = "" if body.startswith(scope.removeprefix("réservataire ") + " ") else f", {scope}"
    return f"{label(family)} ({RULE[family].source}){where} : " + body + _tail(row, cause) + "."


def explain(result: Result, model=None, causes: dict[int, str] | None = None) -> Result:
    """Fill the `explication` column of every row listed in contraintes.csv (`detail_mask`).

    `causes` maps a row index of `result.rows` to the data-based cause of its violation
    (see flux_opt.explanation.analysis.analyse, which passes them). `model` is accepted for symmetry with
    the analysis; the sentences only need the result tables."""
    rows = result.rows
    mask = detail_mask(rows)
    if mask.any():
        fig = PlanFigures(result)
        causes = causes or {}
        listed = rows.loc[mask]
        rows.loc[mask, "explication"] = [sentence(row, fig, causes.get(i))
                                         for i, row in zip(listed.index, listed.to_dict(orient="records"))]
    result.contraintes = contraintes_table(rows, result.ecretements)
    return result


# Families whose rows are a share of attributions (mixity table of the report).
SHARE_FAMILIES = tuple(rule.name for rule in RULES if rule.sentence in ("mixity", "priority"))


def share_table(result: Result) -> pd.DataFrame:
    """Mixity targets versus plan: one line per CIA / mixité / publics prioritaires row, with the
    planned count, its base (dwellings; for publics prioritaires in the composition model, the
    réservataire's expected attributions, as the law counts them), the planned share and the minimum."""
    fig = PlanFigures(result)
    rows = result.rows.loc[published_mask(result.rows) & result.rows["contrainte"].isin(SHARE_FAMILIES)]
    out = []
    for _, row in rows.iterrows():
        if RULE[row["contrainte"]].sentence == "priority":
            part = float(row["taux"])
            count, base, _ = fig.prioritaires(row)
        else:
            part = float(row["part_min"])
            rid = row.get("reservataire")
            if isinstance(rid, str) and rid:
                base = fig.dwellings(reservataire=rid, epci=row["epci"], zone=row["zone"])
                count = row["valeur"] + part * base
            else:
                base = row["borne_inf"] / part if part else fig.dwellings(epci=row["epci"], zone=row["zone"])
                count = row["valeur"]
        out.append({"contrainte": row["contrainte"], "regle": label(row["contrainte"]), "portee": row["portee"],
                    "attributions": round(count, 4), "logements": round(base, 4),
                    "part_prevue": round(_share(count, base), 4), "part_min": part, "statut": row["statut"]})
    return pd.DataFrame(out, columns=["contrainte", "regle", "portee", "attributions", "logements", "part_prevue",
                                      "part_min", "statut"])
