"""A journal simulated from known rates — the world a calibration must recover (tests, benchmarks).

Unlike `flux-opt simuler` (a plausible year for follow-up, one flat refusal rate), every planned dwelling
lives the demand model's year (models/orientation.md §9) with rates the caller chooses: proposed to its
réservataire, who presents `candidats` households after a delay; each household (1st quartile with the
share of the réservataire's pools) accepts with the world's rate a(quartile, financement) — a lease — or
refuses, with its quartile and a reason; when all refused, the dwelling goes to the bailleur, who presents
its own candidates the same way; nobody left: the dwelling stays vacant (no more event).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from flux_opt.input.schema import Instance
from flux_opt.plan.folder import read_plan
from flux_opt.year.journal.storage import append_events
from flux_opt.year.simulation import PERIODES, _date, _liberation

MOTIFS = {"logement trop cher": 0.35, "quartier ou localisation": 0.30, "taille ou état du logement": 0.20,
          "refus de la commission d'attribution": 0.15}


@dataclass
class World:
    acceptance: dict[tuple[str, str], float]  # (quartile, financement) -> a
    candidats: dict[str, int]  # réservataire -> households presented per dwelling
    delai_jours: dict[str, float]  # réservataire -> mean days before its candidates are presented
    q1_share: dict[str, float] = field(default_factory=dict)  # réservataire -> share of Q1 households


def world_of(instance: Instance, acceptance: dict[tuple[str, str], float] | None = None,
             candidats: dict[str, int] | None = None, delai_jours: dict[str, float] | None = None) -> World:
    """The instance's own rates, with the given ones over them; Q1 share from its demande.csv."""
    pools = instance.table("demande")
    q1 = (pools.assign(q1=pools["demandeurs"] * (pools["quartile"] == "q1"))
          .groupby("reservataire")[["q1", "demandeurs"]].sum())
    share = (q1["q1"] / q1["demandeurs"].where(q1["demandeurs"] > 0)).fillna(0.3).to_dict()
    rows = {r.id: r for r in instance.reservataires}
    return World({**instance.acceptance(), **(acceptance or {})},
                 {rid: r.candidats_attendus for rid, r in rows.items()} | (candidats or {}),
                 {rid: float(r.delai_jours) for rid, r in rows.items()} | (delai_jours or {}), share)


def world_events(plan_dir: str | Path, world: World, bailleur: str, annee: int, graine: int) -> list[dict[str, Any]]:
    """Events of the year, in chronological order (not written); events after 31 December are left out."""
    rng = np.random.default_rng(graine)
    plan = read_plan(plan_dir)
    fin = datetime(annee, 12, 31)
    timeline: list[tuple[datetime, int, int, dict[str, Any]]] = []
    rank = 0
    for row in plan.loc[plan["logements"] > 0].to_dict("records"):
        for _ in range(int(row["logements"])):
            rank += 1
            row["periode_construction"] = PERIODES[int(rng.integers(len(PERIODES)))]
            events = _dwelling(row, f"M{annee}-{rank:05d}", _date(rng, annee), world, bailleur, rng)
            timeline += [(e["horodatage"], rank, i, e) for i, e in enumerate(events) if e["horodatage"] <= fin]
    timeline.sort(key=lambda t: t[:3])
    return [e for *_, e in timeline]


def simulate_world(plan_dir: str | Path, journal: str | Path, world: World, bailleur: str, annee: int,
                   graine: int) -> int:
    """Append the world's year to a journal (validated, all or nothing); the number of events written."""
    return len(append_events(journal, world_events(plan_dir, world, bailleur, annee, graine)))


def _dwelling(row: dict, lid: str, day: datetime, world: World, bailleur: str, rng) -> list[dict[str, Any]]:
    events = [_liberation(row, lid, day)]
    clock = [day]

    def after(days: float) -> datetime:
        clock[0] = clock[0] + timedelta(days=int(round(days)))
        return clock[0]

    holders = [row["reservataire"]] + ([bailleur] if row["reservataire"] != bailleur else [])
    for rid in holders:
        n = max(int(world.candidats.get(rid, 1)), 1)
        for i in range(n):
            events.append({"horodatage": after(rng.integers(0, 4)), "evenement": "proposition", "logement_id": lid,
                           "reservataire": rid})
            if i == 0:  # the réservataire presents its candidates once, then they are examined in turn
                events.append({"horodatage": after(rng.exponential(world.delai_jours.get(rid, 30.0))),
                               "evenement": "candidats", "logement_id": lid, "candidats": n})
                events.append({"horodatage": after(rng.integers(5, 21)), "evenement": "examen_caleol",
                               "logement_id": lid})
            quartile = "q1" if rng.random() < world.q1_share.get(rid, 0.3) else "q234"
            if rng.random() < world.acceptance[(quartile, row["financement"])]:
                events.append({"horodatage": after(rng.integers(7, 31)), "evenement": "bail_signe",
                               "logement_id": lid, "quartile": quartile})
                return events
            motif = str(rng.choice(list(MOTIFS), p=list(MOTIFS.values())))
            events.append({"horodatage": after(rng.integers(2, 11)), "evenement": "refus", "logement_id": lid,
                           "quartile": quartile, "commentaire": motif})
    return events


def bailleur_of(instance: Instance) -> str:
    return next(r.id for r in instance.reservataires if r.type == "bailleur")
