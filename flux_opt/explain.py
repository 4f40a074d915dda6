"""Plain-French explanations of the plan's rules (one sentence per line of contraintes.csv)."""

from __future__ import annotations

import math

from flux_opt.result import SOURCES, Result, contraintes_table, published_mask

NAMES = {
    "conservation": "Conservation du flux",
    "plafond_prefet": "Plafond du contingent préfectoral",
    "plafond_agents": "Plafond des agents de l'État",
    "uniformite_prefet": "Taux préfectoral uniforme par commune",
    "prefet_hors_qpv": "Part préfectorale hors QPV",
    "plafond_collectivite": "Plafond d'une collectivité",
    "objectif_reservataire": "Objectif du réservataire",
    "objectif_indicatif": "Objectif indicatif",
    "demande": "Vivier de demandeurs",
    "cia_hors_qpv_q1": "CIA : 1er quartile hors QPV",
    "cia_qpv_q234": "CIA : quartiles 2 à 4 en QPV",
    "mixite": "Objectif de mixité",
    "publics_prioritaires": "Publics prioritaires",
}
STATUS = {"saturee": "saturée", "lache": "lâche", "violee": "VIOLÉE"}


def _n(v: float) -> str:
    """French number: 1 234,5 (integers without decimals)."""
    if v is None or (isinstance(v, float) and (math.isnan(v) or math.isinf(v))):
        return "—"
    if abs(v - round(v)) < 1e-6:
        return f"{int(round(v)):,}".replace(",", " ")
    return f"{v:,.1f}".replace(",", " ").replace(".", ",")


def _bound(row) -> str:
    lo, up = row["borne_inf"], row["borne_sup"]
    if math.isfinite(lo) and math.isfinite(up):
        return f"{_n(lo)}" if lo == up else f"entre {_n(lo)} et {_n(up)}"
    if math.isfinite(up):
        return f"au plus {_n(up)}"
    return f"au moins {_n(lo)}"


def sentence(row) -> str:
    family = row["contrainte"]
    head = f"{NAMES.get(family, family)} ({SOURCES.get(family, '')}), {row['portee']} : "
    body = f"valeur {_n(row['valeur'])} pour {_bound(row)}"
    if family == "objectif_reservataire":
        body = f"{_n(row['valeur'])} logements orientés pour un objectif de {_n(row['borne_inf'])}"
    elif family == "demande":
        body = f"{_n(row['valeur'])} attributions prévues pour {_n(row['borne_sup'])} demandeurs"
    elif family in ("plafond_prefet", "plafond_agents", "plafond_collectivite"):
        body = f"{_n(row['valeur'])} logements pour un plafond de {_n(row['borne_sup'])}"
    elif family == "uniformite_prefet":
        body = (f"{_n(row['valeur'])} logements au préfet sur un flux communal de {_n(row.get('flux_commune'))}, "
                f"attendu {_bound(row)}")
    status = STATUS[row["statut"]]
    tail = f" — {status}"
    if row["statut"] == "violee":
        tail += f" de {_n(row['violation'])} : la règle ne peut pas être tenue avec ces données"
    elif row["statut"] == "saturee" and row.get("valeur_marginale", 0) and row["valeur_marginale"] > 1e-6:
        tail += f" ; relâcher d'une unité gagnerait {_n(row['valeur_marginale'])} en adéquation"
    return head + body + tail + "."


def explain(result: Result) -> Result:
    """Fill the `explication` column of every published rule row (contraintes.csv)."""
    rows = result.rows
    mask = published_mask(rows)
    if mask.any():
        rows.loc[mask, "explication"] = rows.loc[mask].apply(sentence, axis=1)
    result.contraintes = contraintes_table(rows)
    return result
