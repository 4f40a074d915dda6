"""The one pipeline every command calls, in named stages:

    load → assiette/targets → model → solve → result → explanation → simulated year → outputs

`run` chains the stages for one instance, with options for what to skip; `Planner` keeps one
built model and re-plans variants of an instance on it (sweeps, negotiation); `write` is the
outputs stage (plan files, report, explication.json). `plan`, `lot`, `comparer`, the sweep and
the re-orientation of the year all go through here, so a plan means the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from flux_opt.assiette.carryover import BilanPrecedent, apply_carry_over, read_previous_bilan, phrases_report
from flux_opt.assiette.flux import Flux, compute_flux
from flux_opt.assiette.legal import convention_warnings, legal_sentence, outside_the_law
from flux_opt.assiette.targets import Targets, compute_targets
from flux_opt.explanation.analysis import Explanation, analyse
from flux_opt.explanation.sentences import explain
from flux_opt.conformity.check import conformity, from_result
from flux_opt.errors import InvalidInput
from flux_opt.input.schema import Instance, load_instance
from flux_opt.input.validation import targets_without_conversion
from flux_opt.model.build import OrientationModel, build_model
from flux_opt.model.reusable import ReusableModel
from flux_opt.model.solve import Solution, solve
from flux_opt.phases import Phases
from flux_opt.year.evaluation import Evaluation, evaluate
from flux_opt.plan.result import Result, make_result


@dataclass(frozen=True)
class PlanOptions:
    moteur: str = "highs"  # "highs" (direct) or "pyomo" (the same program through Pyomo)
    depuis_conversion: bool = False  # this year's targets from the stock conversion's lissage
    duals: bool = True  # fixed-LP duals on the result rows (the analysis replaces them by probes)
    analyse: bool = False  # the explanation layer: marginal values, causes, shortfalls
    couts: bool = True  # with `analyse`: rule costs by exact re-solves
    k: int = 3  # with `couts`: how many violated and binding families to cost
    bilan_precedent: str | Path | None = None  # folder written by `flux-opt bilan`: carry-over into the targets
    controle: bool = False  # re-check the plan against the law from its tables alone (flux_opt/conformity)
    tirages: int = 0  # years of the plan simulated after the solve (flux_opt/year/evaluation.py); 0: none
    graine: int = 0  # seed of those draws
    hors_cadre_legal: bool = False  # explore rates above the law (--hors-cadre-legal): not a legal plan


@dataclass
class PlanRun:
    """Everything one run produced, stage by stage."""

    instance: Instance
    flux: Flux
    targets: Targets
    model: OrientationModel
    solution: Solution
    result: Result
    explanation: Explanation | None = None
    evaluation: Evaluation | None = None  # the simulated year, when asked (PlanOptions.tirages)
    conformite: pd.DataFrame | None = None  # the conformity table, when asked (PlanOptions.controle)


# --------------------------------------------------------------------------- stages

def load(path: str | Path, depuis_conversion: bool = False, phases: Phases | None = None) -> Instance:
    """The validated instance, with this year's targets from the lissage if asked."""
    with (phases or Phases())("lecture"):
        instance = load_instance(path)
        if depuis_conversion:
            from flux_opt.errors import InputProblem
            from flux_opt.stock.instance import state_conventions_apart

            planned = with_targets(instance, lissage_targets(path, instance))
            _, refused = state_conventions_apart(instance, instance.table("conventions"))
            notes = [InputProblem(instance.source_of("conventions"), None, "reservataire", s) for s in refused]
            return planned.model_copy(update={"avertissements": [*instance.avertissements, *notes]})
        missing = targets_without_conversion(instance.reservataires, instance.source_of("reservataires"))
        if missing:
            raise InvalidInput(missing)
        return instance


def run(instance: Instance, options: PlanOptions = PlanOptions(), *, flux: Flux | None = None,
        require: pd.DataFrame | None = None, source: str | None = None, phases: Phases | None = None) -> PlanRun:
    """Assiette and targets, model, solve, result, explanation. `flux` replaces the computed flux
    (the rest of a year); `require` keeps dwellings already oriented (see OrientationModel.require);
    `source` names the instance in explication.json; `phases` times the stages and tells a listener."""
    phases = phases or Phases()
    with phases("assiette"):
        flux = flux if flux is not None else compute_flux(instance)
        targets = compute_targets(instance, flux)
        precedent = None
        if options.bilan_precedent is not None:  # clause de revoyure, after the targets, within their caps
            precedent = read_previous_bilan(options.bilan_precedent, instance.parametres.instance.annee)
            targets = apply_carry_over(targets, instance, precedent)
    with phases("construction"):
        model = build_model(instance, flux, targets)
        if require is not None:
            model.require(require)
    with phases("resolution"):
        solution = solve(model, moteur=options.moteur, duals=options.duals and not options.analyse)
        result = make_result(model, solution)
        result.resume["avertissements"] = [str(p) for p in instance.avertissements + convention_warnings(
            instance, flux, targets)]
        _note_the_law(result, instance, flux, targets)
        if precedent is not None:
            _note_carry_over(result, instance, targets, precedent)
    explanation = None
    with phases("analyse"):
        if options.analyse:
            explanation = analyse(model, solution, result, couts=options.couts, k=options.k, instance=source)
            explanation.raisons.extend(result.resume.get("revoyure", {}).get("phrases", []))
            if result.resume.get("cadre_legal"):
                explanation.raisons.insert(0, result.resume["cadre_legal"])
        else:
            explain(result)
    conformite = None
    if options.controle:  # the plan as written, re-checked independently of the model (flux-opt controler)
        with phases("controle"):
            conformite = conformity(instance, from_result(result.plan, result.attributions))
    evaluation = None
    if options.tirages > 0:
        with phases("evaluation"):
            evaluation = evaluate(instance, result.plan, result.attributions, options.tirages, options.graine)
    return PlanRun(instance, flux, targets, model, solution, result, explanation, evaluation, conformite)


def _note_the_law(result: Result, instance: Instance, flux: Flux, targets: Targets) -> None:
    """resume.json says, in one sentence, how rates above the law were treated (held to the law, or
    explored outside it: `hors_cadre_legal`, then the plan is not a legal plan)."""
    result.resume["hors_cadre_legal"] = outside_the_law(instance)
    sentence = legal_sentence(instance, flux, targets)
    if sentence:
        result.resume["cadre_legal"] = sentence


def _note_carry_over(result: Result, instance: Instance, targets: Targets, precedent: BilanPrecedent) -> None:
    """resume.json and the report say what last year's bilan carried, one sentence per réservataire."""
    taux = instance.parametres.revoyure.report_max
    result.resume["revoyure"] = {"bilan": precedent.source, "annee": precedent.annee, "report_max": taux,
                                 "phrases": phrases_report(targets.table, precedent.annee, taux)}


def run_path(path: str | Path, options: PlanOptions = PlanOptions(), phases: Phases | None = None) -> PlanRun:
    instance = load(path, options.depuis_conversion, phases)
    if options.hors_cadre_legal:
        instance = outside_the_law_copy(instance)
    return run(instance, options, source=str(Path(path).resolve()), phases=phases)


def outside_the_law_copy(instance: Instance) -> Instance:
    """The instance with `regles.hors_cadre_legal` set: its rates above the law are explored, not held."""
    regles = instance.regles.model_copy(update={"hors_cadre_legal": True})
    return instance.model_copy(update={"parametres": instance.parametres.model_copy(update={"regles": regles})})


def write(plan_run: PlanRun, sortie: str | Path, extra: dict[str, Callable[[Path], None]] | None = None,
          phases: Phases | None = None) -> None:
    """The outputs stage: plan files, and the report and explication.json when the run was analysed
    (rendered first, its own phase, then everything written atomically); with a conformity table
    (PlanOptions.controle), conformite.csv and its report section."""
    conformite = plan_run.conformite
    from flux_opt.report.exports import write_csv, write_plan
    from flux_opt.report.plan_report import report_writers

    phases = phases or Phases()
    writers = dict(extra or {})
    if plan_run.explanation is not None:
        with phases("rapport"):
            writers = {**report_writers(plan_run.result, plan_run.explanation, conformite, plan_run.evaluation),
                       **writers}
    if plan_run.evaluation is not None:
        writers["evaluation.csv"] = lambda p: write_csv(plan_run.evaluation.table, p)
    with phases("ecriture"):
        write_plan(plan_run.result, Path(sortie), extra=writers)


class Planner:
    """One built model re-planned for variants of an instance (other rates, CIA shares, targets),
    with the same result as a separate `run` of each variant."""

    def __init__(self, instance: Instance, fresh_start: bool = True):
        flux = compute_flux(instance)
        self._model = ReusableModel(instance, flux, compute_targets(instance, flux), fresh_start)

    @property
    def rebuilds(self) -> int:
        return self._model.rebuilds

    def plan(self, instance: Instance, duals: bool = False) -> Result:
        targets = compute_targets(instance, self._model.flux)
        model, solution = self._model.solve(instance, targets, duals)
        result = make_result(model, solution)
        result.resume["avertissements"] = [str(p) for p in convention_warnings(instance, self._model.flux, targets)]
        _note_the_law(result, instance, self._model.flux, targets)
        return explain(result)


# --------------------------------------------------------------------------- shortcuts

def plan_instance(instance: Instance, moteur: str = "highs", duals: bool = True) -> Result:
    return run(instance, PlanOptions(moteur=moteur, duals=duals)).result


def plan_path(path: str | Path, moteur: str = "highs", depuis_conversion: bool = False) -> Result:
    return run_path(path, PlanOptions(moteur=moteur, depuis_conversion=depuis_conversion)).result


def plan_and_explain(path: str | Path, moteur: str = "highs", depuis_conversion: bool = False,
                     couts: bool = True, k: int = 3,
                     bilan_precedent: str | Path | None = None) -> tuple[Result, Explanation]:
    done = run_path(path, PlanOptions(moteur, depuis_conversion, analyse=True, couts=couts, k=k,
                                      bilan_precedent=bilan_precedent))
    return done.result, done.explanation


# --------------------------------------------------------------------------- targets from the lissage

def with_targets(instance: Instance, logements: dict[str, int]) -> Instance:
    """The instance with some réservataires' `logements` for the year replaced (e.g. the lissage's)."""
    rows = [r.model_copy(update={"logements": float(logements[r.id])}) if r.id in logements else r
            for r in instance.reservataires]
    return instance.model_copy(update={"reservataires": rows})


def lissage_targets(path: str | Path, instance: Instance) -> dict[str, int]:
    """This year's targets from the stock conversion and lissage of the instance (models/lissage.md)."""
    from flux_opt.stock.instance import convert_instance, year_targets

    annee = instance.parametres.instance.annee
    result = convert_instance(Path(path))
    years = list(result.lissage.objectifs.columns)
    return year_targets(result, annee if annee in years else None)
