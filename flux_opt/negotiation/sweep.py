"""Parameter sweeps (`--balayer prefet_taux=0.20:0.30:0.01`) that re-solve one built model.

The model is built once and handed to one HiGHS object. For each point only the numbers a
rule parameter can change are recomputed: the targets (`compute_targets`, cheap), then the
rows of the parameter-dependent families (every family but `conservation` and `demande`,
whose rows depend only on the flux and the demand), rendered by the same family functions
as `build_model` into a scratch program. Rows whose bounds or coefficients differ are sent
to HiGHS (`changeRowsBounds`, `changeCoeff`) and the model is re-run. When the structure
differs (a family appears or vanishes, a bound becomes infinite…) the model is rebuilt.
Each point gives the same Result as a separate `plan_instance` (tested).
"""

from __future__ import annotations

import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from queue import Empty
from typing import Callable
from dataclasses import dataclass, field, replace

import highspy
import numpy as np
import pandas as pd
from scipy import sparse

from flux_opt.assiette.flux import compute_flux
from flux_opt.explanation.sentences import explain
from flux_opt.model.build import STRUCTURAL, OrientationModel, add_families, build_model, penalties
from flux_opt.model.highs_backend import RawSolution, fixed_lp_duals, new_highs, pass_program
from flux_opt.model.linear import LinearProgram
from flux_opt.model.solve import Solution, SolveurSansSolution, solver_options
from flux_opt.plan.result import Result, make_result
from flux_opt.negotiation.scenarios import apply_scenario, parameter_scenario
from flux_opt.input.schema import Instance
from flux_opt.assiette.targets import Targets, compute_targets

STRUCTURAL_FAMILIES = ("conservation", "demande")  # rows independent of every rule parameter
PARAMETRES = ("prefet_taux", "prefet_agents_taux", "prefet_hors_qpv_min", "collectivite_plafond",
              "prioritaires_min", "cia.q1_hors_qpv", "cia.q234_qpv", "<reservataire>.taux")
MAX_POINTS = 201


@dataclass(frozen=True)
class Balayage:
    parametre: str
    valeurs: tuple[float, ...]


def parse_balayage(text: str) -> Balayage:
    """`param=debut:fin:pas` → the parameter and its values (fin included). French ValueError."""
    usage = "forme attendue : parametre=debut:fin:pas, par exemple prefet_taux=0.20:0.30:0.01"
    name, sep, spec = text.partition("=")
    parts = spec.split(":")
    if not sep or not name.strip() or len(parts) != 3:
        raise ValueError(f"balayage « {text} » illisible ({usage})")
    try:
        start, stop, step = (float(p.strip().replace(",", ".")) for p in parts)
    except ValueError:
        raise ValueError(f"balayage « {text} » : nombres attendus ({usage})") from None
    if step <= 0 or stop < start:
        raise ValueError(f"balayage « {text} » : il faut debut ≤ fin et un pas > 0")
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count > MAX_POINTS:
        raise ValueError(f"balayage « {text} » : {count} points, au plus {MAX_POINTS}")
    return Balayage(name.strip(), tuple(round(start + k * step, 10) for k in range(count)))


def instance_at(base: Instance, parametre: str, valeur: float) -> Instance:
    """The base with one parameter set (validated as a scenario: a bad name or value is a
    DonneesInvalides in French)."""
    return apply_scenario(base, parameter_scenario(parametre, valeur))


# --------------------------------------------------------------------------- model reuse

class ReusableModel:
    """One built model and one HiGHS object, re-solved for variants of the same instance."""

    def __init__(self, instance: Instance, fresh_start: bool = True):
        self.base = instance
        self.fresh_start = fresh_start
        self.flux = compute_flux(instance)
        self.reconstructions = 0
        self._build(instance, compute_targets(instance, self.flux))

    def _build(self, instance: Instance, targets: Targets) -> None:
        self.model: OrientationModel = build_model(instance, self.flux, targets)
        self.options = solver_options(self.model)
        self.h = new_highs(self.options)
        pass_program(self.h, self.model.lp)

    def solve(self, instance: Instance, duals: bool = False) -> Result:
        """The plan of `instance` (a variant of the base: same parc, demand and weights)."""
        if not self._same_data(instance):
            raise ValueError("variante incompatible : seules les règles, la CIA, la mixité et les objectifs "
                             "des réservataires peuvent changer entre deux résolutions")
        targets = compute_targets(instance, self.flux)
        if not self._update(instance, targets):
            self._build(instance, targets)
            self.reconstructions += 1
        start = time.perf_counter()
        if self.fresh_start:
            self.h.clearSolver()  # no basis carried over: the same path, hence the same plan, as a fresh run
        self.h.run()
        raw = _raw_solution(self.h, bool(self.model.lp.integer.any()), time.perf_counter() - start)
        return explain(make_result(self.model, self._solution(raw, duals)))

    def _same_data(self, instance: Instance) -> bool:
        old = self.base
        return (instance.parc == old.parc and instance.exclusions == old.exclusions
                and instance.demande == old.demande and instance.objectifs == old.objectifs
                and instance.parametres.rotation == old.parametres.rotation)

    def _update(self, instance: Instance, targets: Targets) -> bool:
        """Send the changed rows to HiGHS; False when the structure changed (rebuild)."""
        old_d = self.model.data
        if (targets.territoires != old_d.targets.territoires
                or instance.parametres.objectif != old_d.instance.parametres.objectif
                or instance.parametres.solveur != old_d.instance.parametres.solveur):
            return False
        d = refreshed_data(self.model, instance, targets)
        lp = self.model.lp
        old_blocks = [b for b in lp.constraints if b.famille not in STRUCTURAL_FAMILIES]
        scratch = parametric_rows(self.model, d)
        aux = self.model.vars.end
        if ([(b.famille, b.size) for b in old_blocks] != [(b.famille, b.size) for b in scratch.constraints]
                or scratch.num_cols != lp.num_cols
                or not np.array_equal(scratch.cost, lp.cost[aux:])):
            return False
        for old, new in zip(old_blocks, scratch.constraints):
            if not _same_pattern(old, new):
                return False
        bound_rows, bound_lower, bound_upper = [], [], []
        for old, new in zip(old_blocks, scratch.constraints):
            changed = np.flatnonzero((old.lower != new.lower) | (old.upper != new.upper))
            bound_rows.append(old.start + changed)
            bound_lower.append(new.lower[changed])
            bound_upper.append(new.upper[changed])
            for row, col, value in _changed_coefficients(old, new):
                self.h.changeCoeff(int(old.start + row), int(col), float(value))
            old.lower, old.upper, old.vals, old.labels = new.lower, new.upper, new.vals, new.labels
        rows = np.concatenate(bound_rows).astype(np.int32)
        if len(rows):
            self.h.changeRowsBounds(len(rows), rows, _highs_inf(np.concatenate(bound_lower)),
                                    _highs_inf(np.concatenate(bound_upper)))
        self.model = replace(self.model, data=d)
        return True

    def _solution(self, raw: RawSolution, duals: bool) -> Solution:
        """As model.solve.solve does after the solver: whole dwellings, activity, duals."""
        if not raw.has_solution:
            raise SolveurSansSolution(raw.status)
        lp = self.model.lp
        values = raw.values.copy()
        values[lp.integer] = np.round(values[lp.integer])
        row_duals = fixed_lp_duals(lp, values, self.options) if duals else None
        return Solution(raw, values, lp.matrix() @ values, row_duals, "highs", lp.integer, lp.elastic)


def refreshed_data(model: OrientationModel, instance: Instance, targets: Targets):
    """ModelData for new targets: only the réservataire table depends on them
    (the stabilising term reads its shares from it, see flux_opt.model.families)."""
    return replace(model.data, instance=instance, targets=targets,
                   reservataires=targets.table.reset_index(drop=True))


def parametric_rows(model: OrientationModel, d) -> LinearProgram:
    """The parameter-dependent families rendered as in build_model, in a scratch program whose
    extra columns (elastic slacks, deviations) are numbered as in the built model."""
    v = model.vars
    scratch = LinearProgram(num_cols=v.end)
    add_families(scratch, d, v, penalties(d.instance), skip=STRUCTURAL)
    return scratch


def _same_pattern(old, new) -> bool:
    """Same rows, same columns (the values may differ), same elastic slacks."""
    for side in ("elastic_lower", "elastic_upper"):
        a, b = getattr(old, side), getattr(new, side)
        if (a is None) != (b is None) or (a is not None and (a.start, a.size) != (b.start, b.size)):
            return False
    return (np.array_equal(old.rows, new.rows) and np.array_equal(old.cols, new.cols)
            and np.array_equal(np.isfinite(old.lower), np.isfinite(new.lower))
            and np.array_equal(np.isfinite(old.upper), np.isfinite(new.upper)))


def _changed_coefficients(old, new):
    """(local row, column, new value) of every coefficient that differs (duplicates summed)."""
    if np.array_equal(old.vals, new.vals):
        return []
    shape = (old.size, int(max(old.cols.max(), new.cols.max())) + 1)
    a = sparse.coo_matrix((old.vals, (old.rows, old.cols)), shape=shape).tocsr()
    b = sparse.coo_matrix((new.vals, (new.rows, new.cols)), shape=shape).tocsr()
    diff = (b - a).tocoo()
    keep = diff.data != 0
    rows, cols = diff.row[keep], diff.col[keep]
    return list(zip(rows, cols, np.asarray(b[rows, cols]).ravel()))


def _highs_inf(a: np.ndarray) -> np.ndarray:
    return np.where(np.isposinf(a), highspy.kHighsInf, np.where(np.isneginf(a), -highspy.kHighsInf, a))


def _raw_solution(h: highspy.Highs, is_mip: bool, seconds: float) -> RawSolution:
    info = h.getInfo()
    status = h.getModelStatus()
    has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
    solution = h.getSolution()
    objective = info.objective_function_value if has_solution else float("nan")
    return RawSolution(np.asarray(solution.col_value) if has_solution else np.zeros(0),
                       np.asarray(solution.row_value) if has_solution else np.zeros(0),
                       h.modelStatusToString(status), status == highspy.HighsModelStatus.kOptimal,
                       has_solution, objective, info.mip_dual_bound if is_mip else objective,
                       info.mip_gap if is_mip else 0.0, seconds, 0.0)


# --------------------------------------------------------------------------- the sweep

@dataclass
class ResultatBalayage:
    parametre: str
    points: pd.DataFrame  # one row per value: valeur, objectif, adequation, …, part_<id>, logements_<id>
    objectifs: pd.DataFrame  # valeur × réservataire: cible, logements, ecart, adequation
    secondes: float
    reconstructions: int
    resultats: list[Result] = field(repr=False, default_factory=list)


def sweep(base: Instance, balayage: Balayage, reuse: bool = True, processus: int = 1, duals: bool = False,
          on_done: Callable[[int], None] | None = None, a_chaud: bool = False) -> ResultatBalayage:
    """Plan every point of the sweep, re-solving one model per worker (`reuse`) or from scratch
    (`plan_instance` per point). With `processus` > 1 the points are split in contiguous chunks,
    one worker process each; `on_done(i)` after each point. `a_chaud` keeps HiGHS's basis between
    points: faster, same plan and objective in our runs, but a degenerate attribution split (y)
    may then differ from a separate run, so it is off by default."""
    for value in balayage.valeurs:  # every point is validated before any solve
        instance_at(base, balayage.parametre, value)
    start = time.perf_counter()
    chunks = [list(c) for c in np.array_split(np.arange(len(balayage.valeurs)), max(1, processus)) if len(c)]
    if len(chunks) == 1:
        results, rebuilds = _sweep_chunk(base, balayage.parametre, list(balayage.valeurs), reuse, duals, on_done,
                                         a_chaud=a_chaud)
    else:
        results, rebuilds = _parallel_sweep(base, balayage, chunks, reuse, duals, on_done, a_chaud)
    seconds = time.perf_counter() - start
    points, objectifs = sweep_tables(balayage, results)
    return ResultatBalayage(balayage.parametre, points, objectifs, seconds, rebuilds, results)


def _sweep_chunk(base: Instance, parametre: str, valeurs: list[float], reuse: bool, duals: bool,
                 on_done=None, offset: int = 0, a_chaud: bool = False) -> tuple[list[Result], int]:
    from flux_opt.pipeline import plan_instance

    reusable = ReusableModel(instance_at(base, parametre, valeurs[0]), fresh_start=not a_chaud) if reuse else None
    results = []
    for i, value in enumerate(valeurs):
        instance = instance_at(base, parametre, value)
        results.append(reusable.solve(instance, duals) if reuse else plan_instance(instance, duals=duals))
        if on_done:
            on_done(offset + i)
    return results, (reusable.reconstructions if reuse else len(results))


def _parallel_sweep(base, balayage, chunks, reuse, duals, on_done, a_chaud):
    context = multiprocessing.get_context("spawn")  # never fork a process that has run HiGHS
    with context.Manager() as manager, ProcessPoolExecutor(len(chunks), mp_context=context) as pool:
        queue = manager.Queue()
        futures = [pool.submit(_sweep_chunk, base, balayage.parametre, [balayage.valeurs[i] for i in c],
                               reuse, duals, queue.put, int(c[0]), a_chaud) for c in chunks]
        done = 0
        while done < len(balayage.valeurs):
            try:
                index = queue.get(timeout=0.2)
            except Empty:
                if any(f.done() and f.exception() for f in futures):
                    break  # a worker failed: its exception is raised below
                continue
            done += 1
            if on_done:
                on_done(index)
        outputs = [f.result() for f in futures]
    return [r for results, _ in outputs for r in results], sum(n for _, n in outputs)


def sweep_tables(balayage: Balayage, results: list[Result]) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, objectifs = [], []
    for value, r in zip(balayage.valeurs, results):
        row = {"valeur": value, "objectif": r.resume["objectif"], "adequation": r.resume["adequation"],
               "adequation_ponderee": r.resume["adequation_ponderee"],
               "attributions_prevues": r.resume["attributions_prevues"],
               "regles_violees": len(r.resume["regles_violees"])}
        flux = r.resume["flux"]
        for o in r.objectifs.itertuples():
            row[f"logements_{o.reservataire}"] = int(o.logements)
            row[f"part_{o.reservataire}"] = round(o.logements / flux, 6) if flux else 0.0
        rows.append(row)
        objectifs.append(r.objectifs.assign(valeur=value))
    table = pd.concat(objectifs, ignore_index=True)
    return pd.DataFrame(rows), table[["valeur", *[c for c in table.columns if c != "valeur"]]]
