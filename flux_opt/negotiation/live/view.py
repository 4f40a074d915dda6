"""What the results panel of the page shows, as plain values for the template.

Every figure comes from the comparison tables (`negotiation.compare.comparison_tables`) and the
two plans' rule sentences (`explanation.sentences`), so the page says what `comparer` writes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from flux_opt.explanation.sentences import fr_number, fr_percent
from flux_opt.input.schema import Instance
from flux_opt.model.registry import RULE
from flux_opt.negotiation.compare import BASE, RULE_FAMILIES, Comparison
from flux_opt.negotiation.live.chart import bars_svg


@dataclass
class Cell:
    value: int
    delta: int


@dataclass
class Matrix:
    """Réservataires × categories (communes, QPV / hors QPV, typologies): the scenario's dwellings
    and their gap to the base."""

    title: str
    columns: list[str]
    rows: list[tuple[str, list[Cell]]]


def results_context(c: Comparison, instance: Instance, year: dict[str, pd.DataFrame]) -> dict:
    name = c.noms[1]
    labels = {r.id: r.nom for r in instance.reservataires}
    communes = {r.commune: r.commune_nom or r.commune for r in instance.parc}
    logements = c.logements.set_index("reservataire")
    mine = c.gains.loc[c.gains["scenario"] == name]
    why = dict(zip(mine["reservataire"], mine["raison"]))  # the rule or rounding that moved each one
    return {
        "scenario": name,
        "cards": _cards(c, name),
        "chart": bars_svg([labels.get(r, r) for r in logements.index], logements[BASE].tolist(),
                          logements[name].tolist(), BASE, name),
        "gains": [(labels.get(r, r), int(row[BASE]), int(row[name]), int(row[f"Δ {name}"]), why.get(r, ""))
                  for r, row in logements.iterrows()],
        "matrices": [
            _matrix("Par commune", c.par_commune, "commune", name, labels, communes),
            _matrix("QPV / hors QPV", c.par_qpv, "qpv", name, labels),
            _matrix("Par typologie", c.par_typologie, "typologie", name, labels),
        ],
        "rules": [(RULE[row["regle"]].label, RULE[row["regle"]].source, row[BASE], row[name])
                  for _, row in c.regles.iterrows()],
        "sentences": _changed_sentences(c, name),
        "year": {n: year[n].to_dict("records") for n in (BASE, name) if n in year} if year else None,
        **legal_context(c, name),
    }


def legal_context(c: Comparison, name: str) -> dict:
    """What the page says about rates above the law: the warnings `verifier` shows for the base
    and the scenario, and the banner of a scenario explored outside the law."""
    warnings = list(dict.fromkeys(w for n in (BASE, name) for w in c.resultats[n].resume.get("avertissements", [])))
    scen = c.resultats[name].resume
    return {"avertissements": warnings,
            "hors_cadre": scen.get("cadre_legal") if scen.get("hors_cadre_legal") else None}


def _cards(c: Comparison, name: str) -> list[tuple[str, str, str, bool]]:
    """(indicator, base, scenario, worse) for the headline figures."""
    base, scen = c.resultats[BASE].resume, c.resultats[name].resume
    violated = len(scen["regles_violees"]), len(base["regles_violees"])
    return [
        ("Flux annuel (logements)", fr_number(base["flux"]), fr_number(scen["flux"]), False),
        ("Logements pourvus", fr_percent(base["adequation"]), fr_percent(scen["adequation"]),
         scen["adequation"] < base["adequation"] - 1e-9),
        ("Attributions prévues (environ)", fr_number(round(base["attributions_prevues"])),
         fr_number(round(scen["attributions_prevues"])),
         scen["attributions_prevues"] < base["attributions_prevues"] - 1e-9),
        ("Règles non tenues", str(violated[1]), str(violated[0]), violated[0] > violated[1]),
    ]


def _matrix(title: str, frame: pd.DataFrame, column: str, name: str, labels: dict,
            column_labels: dict | None = None) -> Matrix:
    columns = list(dict.fromkeys(frame[column]))
    cells: dict[str, dict] = {}
    for _, row in frame.iterrows():
        cells.setdefault(row["reservataire"], {})[row[column]] = Cell(int(row[name]), int(row[name] - row[BASE]))
    rows = [(labels.get(r, r), [by.get(k, Cell(0, 0)) for k in columns]) for r, by in cells.items()]
    shown = [(column_labels or {}).get(k, k) for k in columns]
    return Matrix(title, shown, rows)


def _changed_sentences(c: Comparison, name: str) -> list[tuple[str, str]]:
    """(status, sentence) for every line of a negotiable rule (the rules table's) that the scenario
    violates, or that binds or fails where the base did not: what the change does to the rules."""
    keys = ["contrainte", "portee"]
    base = c.resultats[BASE].contraintes.set_index(keys)["statut"]
    scen = c.resultats[name].contraintes
    scen = scen.loc[scen["contrainte"].isin(RULE_FAMILIES)]
    before = scen.set_index(keys).index.map(lambda k: base.get(k, "lache"))
    changed = scen.loc[(scen["statut"] == "violee") | ((scen["statut"] != before) & (scen["statut"] != "lache"))]
    order = {"violee": 0, "saturee": 1}
    changed = changed.sort_values("statut", key=lambda s: s.map(order), kind="stable")
    return list(zip(changed["statut"], changed["explication"]))
