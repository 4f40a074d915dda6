"""A plausible simulated year of events from a plan, to test follow-up and bilan.

Every planned dwelling is released once at a uniformly random date, proposed to
its planned réservataire, gets candidates, goes to CALEOL, is sometimes refused
and re-proposed, and ends with a signed lease to a household (quartile, publics
prioritaires, DALO) or is still in progress on 31 December. Some extra releases
are withdrawn from the flux (retraits). With `derive > 0`, that share of the
dwellings of the most common typology (T3 when planned) is released one room
smaller instead, so reality drifts from the forecast.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flux_opt.plan.folder import read_attributions, read_plan
from flux_opt.year.journal.storage import append_events
from flux_opt.vocabulary import TYPOLOGIES

PERIODES = ["avant 1949", "1949-1974", "1975-1989", "1990-2005", "après 2005"]
# Households of the signed leases: the mix of the réservataire's expected attributions
# (attributions.csv of the plan), else 30 % Q1 and 35 % publics prioritaires; 30 % of the
# prioritaires are recognised DALO (drawn from the same number as the prioritaire flag).
Q1, PRIORITAIRES, DALO = 0.30, 0.35, 0.30
CATEGORIES = {"mutation": 0.40, "anru": 0.20, "urgence": 0.15, "vente": 0.10, "lhi": 0.10, "orcod": 0.05}


def generate_events(plan_dir: str | Path, annee: int, graine: int, derive: float = 0.0,
                       taux_retrait: float = 0.08, taux_refus: float = 0.2) -> list[dict[str, Any]]:
    """Events of a simulated year, in chronological order (not written)."""
    if not 0.0 <= derive <= 1.0:
        raise ValueError(f"derive doit être comprise entre 0 et 1, reçu {derive}")
    rng = np.random.default_rng(graine)
    plan = read_plan(plan_dir)
    logements = _plan_dwellings(plan, rng, derive)
    mix = _household_mix(read_attributions(plan_dir))
    for logement in logements:
        logement["menage"] = mix.get(logement["reservataire"], (Q1, PRIORITAIRES))
    fin = datetime(annee, 12, 31)
    evenements: list[tuple[datetime, int, int, dict[str, Any]]] = []
    for rang, logement in enumerate(logements):
        suite = _parcours(logement, f"S{annee}-{rang + 1:05d}", _date(rng, annee), rng, taux_refus)
        evenements += [(ev["horodatage"], rang, etape, ev) for etape, ev in enumerate(suite) if ev["horodatage"] <= fin]
    decalage = len(logements)
    for rang, logement in enumerate(_retraits(plan, rng, taux_retrait)):
        suite = _retrait(logement, f"R{annee}-{rang + 1:05d}", _date(rng, annee), rng)
        evenements += [(ev["horodatage"], decalage + rang, etape, ev)
                       for etape, ev in enumerate(suite) if ev["horodatage"] <= fin]
    evenements.sort(key=lambda e: e[:3])
    return [ev for *_, ev in evenements]


def simulate_year(plan_dir: str | Path, journal_path: str | Path, annee: int, graine: int,
                  derive: float = 0.0) -> int:
    """Generate a simulated year and append it (validated, all or nothing) to the
    journal; returns the number of events written."""
    evenements = generate_events(plan_dir, annee, graine, derive)
    return len(append_events(journal_path, evenements))


def _date(rng: np.random.Generator, annee: int) -> datetime:
    jours = (datetime(annee + 1, 1, 1) - datetime(annee, 1, 1)).days
    return datetime(annee, 1, 1) + timedelta(days=int(rng.integers(0, jours)))


def _plan_dwellings(plan: pd.DataFrame, rng: np.random.Generator, derive: float) -> list[dict[str, Any]]:
    """One dict per planned dwelling; `derive` moves some of the main typology one room down."""
    source = "T3" if (plan.loc[plan["typologie"] == "T3", "logements"].sum() > 0) else (
        plan.groupby("typologie")["logements"].sum().idxmax() if len(plan) else "T3")
    cible = TYPOLOGIES[max(TYPOLOGIES.index(source) - 1, 0)] if source != "T1" else "T2"
    logements = []
    for ligne in plan.to_dict("records"):
        for _ in range(int(ligne["logements"])):
            logement = {k: ligne[k] for k in ("commune", "epci", "qpv", "typologie", "financement", "reservataire")}
            if logement["typologie"] == source and rng.random() < derive:
                logement["typologie"] = cible
            logement["periode_construction"] = PERIODES[int(rng.integers(len(PERIODES)))]
            logements.append(logement)
    return logements


def _liberation(logement: dict[str, Any], lid: str, jour: datetime) -> dict[str, Any]:
    return {"horodatage": jour, "evenement": "liberation", "logement_id": lid,
            **{k: logement[k] for k in ("commune", "epci", "qpv", "typologie", "financement",
                                        "periode_construction")}}


def _parcours(logement: dict[str, Any], lid: str, jour: datetime, rng: np.random.Generator,
              taux_refus: float) -> list[dict[str, Any]]:
    def apres(mini: int, maxi: int) -> datetime:
        nonlocal jour
        jour = jour + timedelta(days=int(rng.integers(mini, maxi + 1)))
        return jour

    suite = [_liberation(logement, lid, jour)]
    r = logement["reservataire"]
    for tentative in range(3):
        suite.append({"horodatage": apres(0, 3), "evenement": "proposition", "logement_id": lid, "reservataire": r})
        suite.append({"horodatage": apres(3, 30), "evenement": "candidats", "logement_id": lid,
                      "candidats": int(rng.integers(1, 4))})
        suite.append({"horodatage": apres(5, 20), "evenement": "examen_caleol", "logement_id": lid})
        if tentative < 2 and rng.random() < taux_refus:
            suite.append({"horodatage": apres(2, 10), "evenement": "refus", "logement_id": lid,
                          "commentaire": "refus du candidat"})
            continue
        break
    jour_du_bail = apres(7, 30)  # drawn first, as before the DALO flag
    q1, prioritaires = logement["menage"]
    quartile, menage = "q1" if rng.random() < q1 else "q234", rng.random()
    suite.append({"horodatage": jour_du_bail, "evenement": "bail_signe", "logement_id": lid, "quartile": quartile,
                  "prioritaire": bool(menage < prioritaires), "dalo": bool(menage < prioritaires * DALO)})
    return suite


def _household_mix(attributions: pd.DataFrame | None) -> dict[str, tuple[float, float]]:
    """Per réservataire, the shares of Q1 and of publics prioritaires among its expected attributions."""
    if attributions is None or attributions.empty:
        return {}
    a = attributions.assign(q1=attributions["attributions_prevues"] * (attributions["quartile"] == "q1"),
                            prio=attributions["attributions_prevues"] * attributions["prioritaire"])
    sums = a.groupby("reservataire")[["attributions_prevues", "q1", "prio"]].sum()
    sums = sums.loc[sums["attributions_prevues"] > 0]
    return {rid: (row.q1 / row.attributions_prevues, row.prio / row.attributions_prevues)
            for rid, row in sums.iterrows()}


def _retraits(plan: pd.DataFrame, rng: np.random.Generator, taux_retrait: float) -> list[dict[str, Any]]:
    """Extra releases withdrawn from the flux, on segments drawn pro rata of the plan."""
    segments = plan.groupby(["commune", "epci", "qpv", "typologie", "financement"], as_index=False)["logements"].sum()
    total = int(segments["logements"].sum())
    nombre = int(round(taux_retrait * total))
    if nombre == 0 or total == 0:
        return []
    tirages = rng.choice(len(segments), size=nombre, p=segments["logements"].to_numpy() / total)
    categories = rng.choice(list(CATEGORIES), size=nombre, p=list(CATEGORIES.values()))
    retraits = []
    for indice, categorie in zip(tirages, categories):
        logement = segments.iloc[int(indice)].to_dict()
        logement["periode_construction"] = PERIODES[int(rng.integers(len(PERIODES)))]
        logement["categorie"] = str(categorie)
        retraits.append(logement)
    return retraits


def _retrait(logement: dict[str, Any], lid: str, jour: datetime, rng: np.random.Generator) -> list[dict[str, Any]]:
    retrait = jour + timedelta(days=int(rng.integers(0, 6)))
    return [_liberation(logement, lid, jour),
            {"horodatage": retrait, "evenement": "retrait", "logement_id": lid, "categorie": logement["categorie"]}]
