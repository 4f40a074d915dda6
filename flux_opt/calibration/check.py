"""Is a plan made with calibrated inputs better in the world they were measured in? (models/rpls.md §5)

The world has acceptance rates the defaults do not know. The plan made with the defaults is lived for
`years` years in that world (calibration/world.py) and written in a journal; `calibrer` estimates the rates
from it; a second plan is made with them. Both plans are then simulated in the world (plan/evaluation.py,
the instance with the world's rates): their realised lettings are compared, over the same draws.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from flux_opt.calibration.journal import Calibration, calibrate
from flux_opt.calibration.world import bailleur_of, simulate_world, world_of
from flux_opt.input.schema import AcceptationRow, Instance
from flux_opt.pipeline import plan_instance
from flux_opt.plan.evaluation import evaluate


@dataclass
class Check:
    calibration: Calibration
    lettings_defaults: float  # mean realised lettings of the plan made with the defaults, in the world
    lettings_calibrated: float
    lettings_world: float  # the plan made knowing the world's rates (the best one can hope for)
    draws: int
    plan_defaults: pd.DataFrame  # plan.csv of the plan made with the defaults


def with_acceptance(instance: Instance, rates: dict[tuple[str, str], float]) -> Instance:
    rows = [AcceptationRow(quartile=q, financement=f, taux_acceptation=a) for (q, f), a in rates.items()]
    return instance.model_copy(update={"acceptation": rows})


def check_calibration(instance: Instance, world_rates: dict[tuple[str, str], float], graine: int = 0,
                      years: int = 2, tirages: int = 100) -> Check:
    world = with_acceptance(instance, {**instance.acceptance(), **world_rates})
    plan_defaults = plan_instance(instance, duals=False)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_plan(plan_defaults.plan, folder)
        journals = []
        for year in range(years):
            journals.append(folder / f"journal_{year}.csv")
            simulate_world(folder, journals[-1], world_of(world), bailleur_of(instance), 2025 + year, graine + 97 * year)
        calibration = calibrate(journals, instance)
    rates = {(r.quartile, r.financement): r.taux_acceptation for r in calibration.acceptation.itertuples()}
    plan_calibrated = plan_instance(with_acceptance(instance, rates), duals=False)
    plan_world = plan_instance(world, duals=False)
    lived = [evaluate(world, p.plan, p.attributions, tirages, graine).table
             for p in (plan_defaults, plan_calibrated, plan_world)]
    total = [float(t.loc[(t["indicateur"] == "attributions") & (t["portee"] == "ensemble"), "moyenne"].iat[0])
             for t in lived]
    return Check(calibration, total[0], total[1], total[2], tirages, plan_defaults.plan)


def write_plan(plan: pd.DataFrame, folder: Path) -> None:
    out = plan.copy()
    out["qpv"] = np.where(out["qpv"].astype(bool), "oui", "non")
    out.to_csv(folder / "plan.csv", index=False)
