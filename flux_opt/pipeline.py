"""The one pipeline every command calls, in named stages:

    load → assiette/targets → model → solve → result → explanation → simulated year → outputs

`run` chains the stages for one instance, with options for what to skip; `Planner` keeps one
built model and re-plans variants of an instance on it (sweeps, negotiation). The outputs stage
(plan files, report, explication.json) sits one floor up, in flux_opt/report/outputs.py: the
pipeline computes, the report writes. `plan`, `lot`, `comparer`, the sweep and the
re-orientation of the year all go through here, so a plan means the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from flux_opt.assiette.carryover import BilanPrecedent, apply_carry_over, read_previous_bilan, phrases_report
from flux_opt.assiette.flux import Flux, compute_flux
from flux_opt.assiette.legal import convention_warnings, legal_sentence, outside_the_law
from flux_opt.assiette.targets import Targets, compute_targets
from flux_opt.explanation.analysis import Explanation, analyse
from flux_opt.explanation.sentences import explain
from flux_opt.conformity.check import conformity, from_result
from flux_opt.errors import InputProblem, InvalidInput
from flux_opt.input.raw import REQUIRED_TABLES
from flux_opt.input.schema import Instance, load_instance
from flux_opt.input.validation import targets_without_conversion
from flux_opt.model.build import OrientationModel, build_model
from flux_opt.model.reusable import ReusableModel
from flux_opt.model.solve import Solution, solve
from flux_opt.phases import Phases
from flux_opt.plan.evaluation import Evaluation, evaluate
from flux_opt.plan.result import Result, make_result
from flux_opt.stock.instance import REQUIRED_FOR_CONVERSION, convert_instance, state_conventions_apart, year_targets


@dataclass(frozen=True)
class PlanOptions:
    engine: str = "highs"  # "highs" (direct) or "pyomo" (the same program through Pyomo): --moteur
    from_conversion: bool = False  # this year's targets from the stock conversion's lissage: --depuis-conversion
    duals: bool = True  # fixed-LP duals on the result rows (the analysis replaces them by probes)
    analysis: bool = False  # the explanation layer: marginal values, causes, shortfalls
    rule_costs: bool = True  # with `analysis`: rule costs by exact re-solves (--sans-analyse: off)
    k: int = 3  # with `rule_costs`: how many violated and binding families to cost
    previous_bilan: str | Path | None = None  # folder written by `flux-opt bilan`: carry-over (--bilan-precedent)
    conformity: bool = False  # re-check the plan against the law from its tables alone (flux_opt/conformity)
    draws: int = 0  # years of the plan simulated after the solve (flux_opt/plan/evaluation.py); 0: none (--tirages)
    seed: int = 0  # seed of those draws (--graine)
    outside_the_law: bool = False  # explore rates above the law (--hors-cadre-legal): not a legal plan


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

def load(path: str | Path, from_conversion: bool = False, phases: Phases | None = None, *,
         required: tuple[str, ...] = REQUIRED_TABLES, targets: bool = True) -> Instance:
    """The load stage every command enters by: one read of the instance with its consistency checks
    (flux_opt.input), then this year's targets — from the stock conversion's lissage when asked
    (on the same read), else checked present. `targets=False` for a command that makes no plan of
    this instance (the stock conversion itself; the year's follow-up, which reads conventions and
    exclusions); `required`: the tables the command needs (a conversion needs no demand)."""
    if from_conversion:
        required = tuple(dict.fromkeys(required + REQUIRED_FOR_CONVERSION))
    with (phases or Phases())("lecture"):
        instance = load_instance(path, required)
        if from_conversion:
            planned = with_targets(instance, lissage_targets(instance))
            _, refused = state_conventions_apart(instance, instance.table("conventions"))
            notes = [InputProblem(instance.source_of("conventions"), None, "reservataire", s) for s in refused]
            return planned.model_copy(update={"avertissements": [*instance.avertissements, *notes]})
        missing = targets_without_conversion(instance.reservataires, instance.source_of("reservataires"))
        if targets and missing:
            raise InvalidInput(missing)
        return instance


def assiette(instance: Instance, flux: Flux | None = None) -> tuple[Flux, Targets]:
    """The assiette stage: the annual flux C = A − B (or the one given: the rest of a year) and each
    réservataire's target on it."""
    flux = flux if flux is not None else compute_flux(instance)
    return flux, compute_targets(instance, flux)


@dataclass
class Checked:
    """`flux-opt verifier`: the load stage and the assiette, stopped before the model."""

    instance: Instance
    flux: Flux
    targets: Targets
    warnings: list[InputProblem]  # convention entries above a legal cap (rule and figures)


def check(path: str | Path, from_conversion: bool = False) -> Checked:
    instance = load(path, from_conversion)
    flux, targets = assiette(instance)
    return Checked(instance, flux, targets, convention_warnings(instance, flux, targets))


def run(instance: Instance, options: PlanOptions = PlanOptions(), *, flux: Flux | None = None,
        require: pd.DataFrame | None = None, source: str | None = None, phases: Phases | None = None) -> PlanRun:
    """Assiette and targets, model, solve, result, explanation. `flux` replaces the computed flux
    (the rest of a year); `require` keeps dwellings already oriented (see OrientationModel.require);
    `source` names the instance in explication.json; `phases` times the stages and tells a listener."""
    phases = phases or Phases()
    with phases("assiette"):
        flux, targets = assiette(instance, flux)
        precedent = None
        if options.previous_bilan is not None:  # clause de revoyure, after the targets, within their caps
            precedent = read_previous_bilan(options.previous_bilan, instance.parametres.instance.annee)
            targets = apply_carry_over(targets, instance, precedent)
    with phases("construction"):
        model = build_model(instance, flux, targets)
        if require is not None:
            model.require(require)
    with phases("resolution"):
        solution = solve(model, moteur=options.engine, duals=options.duals and not options.analysis)
        result = plan_result(instance, model, solution)
        if precedent is not None:
            _note_carry_over(result, instance, targets, precedent)
    explanation = None
    with phases("analyse"):
        if options.analysis:
            explanation = analyse(model, solution, result, couts=options.rule_costs, k=options.k, instance=source)
            explanation.raisons.extend(result.resume.get("revoyure", {}).get("phrases", []))
            if result.resume.get("cadre_legal"):
                explanation.raisons.insert(0, result.resume["cadre_legal"])
        else:
            explain(result)
    conformite = None
    if options.conformity:  # the plan as written, re-checked independently of the model (flux-opt controler)
        with phases("controle"):
            conformite = conformity(instance, from_result(result.plan, result.attributions))
    evaluation = None
    if options.draws > 0:
        with phases("evaluation"):
            evaluation = evaluate(instance, result.plan, result.attributions, options.draws, options.seed)
    return PlanRun(instance, flux, targets, model, solution, result, explanation, evaluation, conformite)


def _note_the_law(result: Result, instance: Instance, flux: Flux, targets: Targets) -> None:
    """resume.json says, in one sentence, how rates above the law were treated (held to the law, or
    explored outside it: `hors_cadre_legal`, then the plan is not a legal plan)."""
    result.resume["hors_cadre_legal"] = outside_the_law(instance)
    sentence = legal_sentence(instance, flux, targets)
    if sentence:
        result.resume["cadre_legal"] = sentence


def plan_result(instance: Instance, model: OrientationModel, solution: Solution) -> Result:
    """The result stage, the same for `run` and every re-plan of a `Planner`: the result tables, the
    instance's warnings and those `verifier` shows (rates above the law) in resume.json, and the
    sentence on the law."""
    result = make_result(model, solution)
    flux, targets = model.data.flux, model.data.targets
    result.resume["avertissements"] = [str(p) for p in instance.avertissements
                                       + convention_warnings(instance, flux, targets)]
    _note_the_law(result, instance, flux, targets)
    return result


def _note_carry_over(result: Result, instance: Instance, targets: Targets, precedent: BilanPrecedent) -> None:
    """resume.json and the report say what last year's bilan carried, one sentence per réservataire."""
    taux = instance.parametres.revoyure.report_max
    result.resume["revoyure"] = {"bilan": precedent.source, "annee": precedent.annee, "report_max": taux,
                                 "phrases": phrases_report(targets.table, precedent.annee, taux)}


def run_path(path: str | Path, options: PlanOptions = PlanOptions(), phases: Phases | None = None) -> PlanRun:
    instance = load(path, options.from_conversion, phases)
    if options.outside_the_law:
        instance = outside_the_law_copy(instance)
    return run(instance, options, source=str(Path(path).resolve()), phases=phases)


def outside_the_law_copy(instance: Instance) -> Instance:
    """The instance with `regles.hors_cadre_legal` set: its rates above the law are explored, not held."""
    regles = instance.regles.model_copy(update={"hors_cadre_legal": True})
    return instance.model_copy(update={"parametres": instance.parametres.model_copy(update={"regles": regles})})


class Planner:
    """One built model re-planned for variants of an instance (other rates, CIA shares, targets),
    with the same result as a separate `run` of each variant."""

    def __init__(self, instance: Instance, fresh_start: bool = True):
        flux, targets = assiette(instance)
        self._model = ReusableModel(instance, flux, targets, fresh_start)

    @property
    def rebuilds(self) -> int:
        return self._model.rebuilds

    def plan(self, instance: Instance, duals: bool = False) -> Result:
        model, solution = self._model.solve(instance, assiette(instance, self._model.flux)[1], duals)
        return explain(plan_result(instance, model, solution))


# --------------------------------------------------------------------------- shortcuts

def plan_instance(instance: Instance, engine: str = "highs", duals: bool = True) -> Result:
    return run(instance, PlanOptions(engine=engine, duals=duals)).result


def plan_path(path: str | Path, engine: str = "highs", from_conversion: bool = False) -> Result:
    return run_path(path, PlanOptions(engine=engine, from_conversion=from_conversion)).result


def plan_and_explain(path: str | Path, engine: str = "highs", from_conversion: bool = False,
                     rule_costs: bool = True, k: int = 3,
                     previous_bilan: str | Path | None = None) -> tuple[Result, Explanation]:
    done = run_path(path, PlanOptions(engine, from_conversion, analysis=True, rule_costs=rule_costs, k=k,
                                      previous_bilan=previous_bilan))
    return done.result, done.explanation


# --------------------------------------------------------------------------- targets from the lissage

def with_targets(instance: Instance, logements: dict[str, int]) -> Instance:
    """The instance with some réservataires' `logements` for the year replaced (e.g. the lissage's)."""
    rows = [r.model_copy(update={"logements": float(logements[r.id])}) if r.id in logements else r
            for r in instance.reservataires]
    return instance.model_copy(update={"reservataires": rows})


def lissage_targets(instance: Instance) -> dict[str, int]:
    """This year's targets from the stock conversion and lissage of the instance (models/lissage.md)."""
    annee = instance.parametres.instance.annee
    result = convert_instance(instance)
    years = list(result.lissage.objectifs.columns)
    return year_targets(result, annee if annee in years else None)
