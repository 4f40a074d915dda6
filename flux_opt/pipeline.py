"""The main job in one call: files → instance → assiette/targets → model → solve → result."""

from __future__ import annotations

from pathlib import Path

from flux_opt.assiette import compute_flux
from flux_opt.explain import explain
from flux_opt.model.build import build_model
from flux_opt.model.solve import solve
from flux_opt.result import Result, make_result
from flux_opt.schema import Instance, load_instance
from flux_opt.targets import compute_targets


def plan_instance(instance: Instance, moteur: str = "highs", duals: bool = True) -> Result:
    flux = compute_flux(instance)
    targets = compute_targets(instance, flux)
    model = build_model(instance, flux, targets)
    solution = solve(model, moteur=moteur, duals=duals)
    return explain(make_result(model, solution))


def plan_path(path: str | Path, moteur: str = "highs") -> Result:
    return plan_instance(load_instance(path), moteur=moteur)
