"""Small plan folders (FORMAT.md output) for the journal / suivi / bilan tests."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

EPCI = "200093201"

# commune, qpv, typologie, financement, {reservataire: logements}
SEGMENTS = [
    ("59350", "non", "T2", "PLUS", {"prefet": 3, "action_logement": 4, "ville_lille": 2, "bailleur": 3}),
    ("59350", "non", "T3", "PLUS", {"prefet": 5, "action_logement": 3, "ville_lille": 2, "bailleur": 2}),
    ("59350", "oui", "T3", "PLAI", {"prefet": 2, "action_logement": 2, "ville_lille": 1, "bailleur": 3}),
    ("59350", "oui", "T4", "PLUS", {"prefet": 1, "action_logement": 2, "bailleur": 2}),
    ("59009", "non", "T2", "PLAI", {"prefet": 2, "action_logement": 3, "bailleur": 2}),
    ("59009", "non", "T3", "PLUS", {"prefet": 4, "action_logement": 4, "bailleur": 3}),
    ("59009", "oui", "T3", "PLUS", {"prefet": 1, "action_logement": 2, "bailleur": 2}),
    ("2A004", "non", "T3", "PLS", {"prefet": 1, "action_logement": 1, "bailleur": 1}),
]


def ecrire_plan(dossier: Path, segments=SEGMENTS) -> Path:
    dossier.mkdir(parents=True, exist_ok=True)
    lignes = [
        {"commune": c, "epci": EPCI if c != "2A004" else "242010056", "qpv": q, "typologie": t,
         "financement": f, "reservataire": r, "logements": n}
        for c, q, t, f, repartition in segments for r, n in repartition.items()
    ]
    plan = pd.DataFrame(lignes)
    plan.to_csv(dossier / "plan.csv", index=False)
    totaux = plan.groupby("reservataire", as_index=False)["logements"].sum()
    objectifs = totaux.assign(cible=totaux["logements"], ecart=0, adequation=0.9)
    objectifs[["reservataire", "cible", "logements", "ecart", "adequation"]].to_csv(dossier / "objectifs.csv", index=False)
    attributions = pd.concat([
        plan.assign(quartile="q1", prioritaire="oui", attributions_prevues=plan["logements"] * 0.3),
        plan.assign(quartile="q234", prioritaire="non", attributions_prevues=plan["logements"] * 0.6),
    ]).drop(columns="logements")
    attributions.to_csv(dossier / "attributions.csv", index=False)
    (dossier / "resume.json").write_text(json.dumps({"flux": int(plan["logements"].sum()), "statut": "optimal"}))
    return dossier
