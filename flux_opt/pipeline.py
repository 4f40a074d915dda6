"""The main job in one call: files → instance → assiette/targets → model → solve → result."""

from __future__ import annotations

from pathlib import Path

from flux_opt.assiette.flux import compute_flux
from flux_opt.explanation.sentences import explain
from flux_opt.model.build import build_model
from flux_opt.model.solve import solve
from flux_opt.phases import Phases
from flux_opt.plan.result import Result, make_result
from flux_opt.input.schema import Instance, load_instance
from flux_opt.assiette.targets import compute_targets


def solve_instance(instance: Instance, moteur: str = "highs", duals: bool = True, phases: Phases | None = None):
    """Assiette, targets, model, solve: (model, solution, result without sentences)."""
    phases = phases or Phases()
    with phases("assiette"):
        flux = compute_flux(instance)
        targets = compute_targets(instance, flux)
    with phases("construction"):
        model = build_model(instance, flux, targets)
    with phases("resolution"):
        solution = solve(model, moteur=moteur, duals=duals)
        return model, solution, make_result(model, solution)


def plan_instance(instance: Instance, moteur: str = "highs", duals: bool = True) -> Result:
    return explain(solve_instance(instance, moteur, duals)[2])


def with_targets(instance: Instance, logements: dict[str, int]) -> Instance:
    """The instance with some réservataires' `logements` for the year replaced (e.g. the lissage's)."""
    rows = [r.model_copy(update={"logements": float(logements[r.id])}) if r.id in logements else r
            for r in instance.reservataires]
    return instance.model_copy(update={"reservataires": rows})


def lissage_targets(path: str | Path, instance: Instance) -> dict[str, int]:
    """This year's targets from the stock conversion and lissage of the instance (models/lissage.md)."""
    from flux_opt.stock.instance import convertir_instance, objectifs_annee

    annee = instance.parametres.instance.annee
    result = convertir_instance(Path(path))
    years = list(result.lissage.objectifs.columns)
    return objectifs_annee(result, annee if annee in years else None)


def load_for_plan(path: str | Path, depuis_conversion: bool = False, phases: Phases | None = None) -> Instance:
    """The validated instance, with this year's targets from the lissage if asked."""
    with (phases or Phases())("lecture"):
        instance = load_instance(path)
        if depuis_conversion:
            instance = with_targets(instance, lissage_targets(path, instance))
        return instance


def plan_path(path: str | Path, moteur: str = "highs", depuis_conversion: bool = False) -> Result:
    return plan_instance(load_for_plan(path, depuis_conversion), moteur=moteur)
