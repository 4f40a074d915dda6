"""Pass the LinearProgram to HiGHS directly (highspy.passModel): the fast path."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass

import highspy
import numpy as np

from flux_opt.model.diving import dive
from flux_opt.model.linear import LinearProgram


@dataclass
class SolverOptions:
    temps_max_s: float = 60.0
    ecart_relatif: float = 1e-4
    threads: int = 1
    graine: int = 0
    ecart_absolu: float = 0.0  # objective units (≈ expected lettings); 0 = HiGHS's default
    relaxer_d_abord: bool = False  # relaxation then fixing whatever the size (see solve_highs)
    # After the relaxation, keep each fractional integer between its floor and ceiling (the RENS
    # neighbourhood) instead of its full range: a far smaller MIP (see _relax_and_fix).
    voisinage: bool = False


@dataclass
class RawSolution:
    values: np.ndarray
    row_activity: np.ndarray
    status: str  # HiGHS model status text
    optimal: bool
    has_solution: bool
    objective: float
    bound: float
    gap: float
    seconds: float
    translate_seconds: float
    methode: str = "branch-and-cut"  # or "relaxation-fixation" (see solve_highs)


def highs_infinity(a) -> np.ndarray:
    """Bounds as HiGHS reads them: ±inf become ±kHighsInf."""
    a = np.asarray(a, dtype=float)
    return np.where(a == np.inf, highspy.kHighsInf, np.where(a == -np.inf, -highspy.kHighsInf, a))


@contextlib.contextmanager
def _silenced_stdout():
    """HiGHS prints its banner from C++ when constructed, before output_flag can be set."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def new_highs(options: SolverOptions) -> highspy.Highs:
    with _silenced_stdout():
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(options.temps_max_s))
    h.setOptionValue("mip_rel_gap", float(options.ecart_relatif))
    if options.ecart_absolu > 0:
        h.setOptionValue("mip_abs_gap", float(options.ecart_absolu))
    h.setOptionValue("random_seed", int(options.graine))
    if options.threads:
        h.setOptionValue("threads", int(options.threads))
    return h


def pass_program(h: highspy.Highs, lp: LinearProgram, integer: np.ndarray | None = None,
                 col_lower: np.ndarray | None = None, col_upper: np.ndarray | None = None) -> None:
    a = lp.matrix()
    a.sort_indices()
    integrality = (lp.integer if integer is None else integer).astype(np.int32)
    h.passModel(lp.num_cols, lp.num_rows, a.nnz, int(highspy.MatrixFormat.kColwise),
                int(highspy.ObjSense.kMaximize), 0.0, lp.cost,
                highs_infinity(lp.col_lower if col_lower is None else col_lower),
                highs_infinity(lp.col_upper if col_upper is None else col_upper),
                highs_infinity(lp.row_lower), highs_infinity(lp.row_upper),
                a.indptr.astype(np.int32), a.indices.astype(np.int32), a.data.astype(float), integrality)


LARGE_MODEL_COLUMNS = 20_000


def solve_highs(lp: LinearProgram, options: SolverOptions, start: np.ndarray | None = None,
                relaxation: "WarmRelaxation | None" = None) -> RawSolution:
    """`start`: a plan known to be feasible (e.g. the plan before a rule was relaxed): the solve
    never returns a worse one. `relaxation`: the relaxation of a program that differs from `lp` in
    row bounds only, already in HiGHS (a variant of a plan, see WarmRelaxation)."""
    if relaxes_first(lp, options):
        return _relax_and_fix(lp, options, start, relaxation.load(lp, options) if relaxation is not None else None)
    return _branch_and_cut(lp, options, start)


class WarmRelaxation:
    """The relaxation of one program kept in one HiGHS object across variants that change only row
    bounds (rule costs: a rule relaxed by one point, or removed). Each variant's relaxation is then
    re-solved from the last basis by the dual simplex, a few pivots, instead of from scratch; the
    rest of its solve is unchanged, so a variant's plan is the one a fresh solve finds from that
    relaxation."""

    def __init__(self, lp: LinearProgram, options: SolverOptions):
        self._h = _relaxation(lp, options)
        self._integer = np.flatnonzero(lp.integer).astype(np.int32)

    def load(self, variant: LinearProgram, options: SolverOptions) -> highspy.Highs:
        """HiGHS holding `variant`'s relaxation: its row bounds, and the program's column bounds
        back (a dive fixes columns); `options`' time limit."""
        self._h.setOptionValue("solver", "simplex")
        self._h.setOptionValue("time_limit", float(options.temps_max_s))
        self._h.changeRowsBounds(variant.num_rows, np.arange(variant.num_rows, dtype=np.int32),
                                 highs_infinity(variant.row_lower), highs_infinity(variant.row_upper))
        self._h.changeColsBounds(len(self._integer), self._integer, highs_infinity(variant.col_lower[self._integer]),
                                 highs_infinity(variant.col_upper[self._integer]))
        return self._h


def relaxes_first(lp: LinearProgram, options: SolverOptions) -> bool:
    """Whether `solve_highs` solves the relaxation first (large models, the composition model)."""
    return bool((lp.num_cols > LARGE_MODEL_COLUMNS or options.relaxer_d_abord) and lp.integer.any())


def _branch_and_cut(lp: LinearProgram, options: SolverOptions, start_values: np.ndarray | None = None,
                    time_limit: float | None = None) -> RawSolution:
    h = new_highs(options)
    if time_limit is not None:
        h.setOptionValue("time_limit", max(1.0, float(time_limit)))
    if lp.num_cols > LARGE_MODEL_COLUMNS:
        # The root LP of a large parc is highly degenerate for the simplex: the interior point
        # method solves it ~3× faster (grand instance: 10.6 s instead of 30.8 s).
        h.setOptionValue("mip_lp_solver", "ipm")
    if options.voisinage and lp.num_cols <= LARGE_MODEL_COLUMNS:
        # Composition model, started from the restricted MIP's plan: as there, the root "reduced
        # cost" heuristic costs more than it finds (national set, 35 instances of up to 10 000
        # columns: 14.9 s → 13.3 s of CPU, same plan values; 1.39 s → 0.70 s on 1 942 columns).
        h.setOptionValue("mip_heuristic_run_root_reduced_cost", False)
    start = time.perf_counter()
    pass_program(h, lp)
    if start_values is not None:
        solution = highspy.HighsSolution()
        solution.col_value = list(start_values)
        solution.value_valid = True
        h.setSolution(solution)
    translate = time.perf_counter() - start
    start = time.perf_counter()
    h.run()
    seconds = time.perf_counter() - start
    return read_solution(h, lp.integer.any(), seconds, translate)


def _relax_and_fix(lp: LinearProgram, options: SolverOptions, start: np.ndarray | None = None,
                   relaxation: highspy.Highs | None = None) -> RawSolution:
    """Large models: solve the LP relaxation; on the largest composition models, dive from it to a
    plan (flux_opt/model/diving.py); else, or when the dive's plan is not within the accepted gap,
    fix the integer columns the relaxation already makes integral and solve the small MIP left.
    `relaxation`: HiGHS already holding the relaxation (a variant's, WarmRelaxation). The LP optimum
    bounds the MIP optimum, so when the plan found is within the accepted gap of it, the plan is
    proven optimal within that gap, as HiGHS's own branch-and-cut would report it. Otherwise
    branch-and-cut runs on the whole model, started from that plan. (grand instance: 7.7 s instead
    of 98 s, same optimum within 3e-5.)"""
    begin = time.perf_counter()
    if relaxation is None:
        relaxation = _relaxation(lp, options)
    translate = time.perf_counter() - begin
    relaxation.run()
    if relaxation.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return _branch_and_cut(lp, options, start)
    bound = relaxation.getInfo().objective_function_value
    values = np.asarray(relaxation.getSolution().col_value)
    if start is not None:
        kept = _proven(start.copy(), lp.matrix() @ start, float(lp.cost @ start), bound, options, begin, translate,
                       "relaxation-depart")
        if kept is not None:  # the known plan is already proven within the accepted gap: no MIP to solve
            return kept
    if options.voisinage and lp.num_cols > DIVE_COLUMNS:
        dived = _dived(relaxation, lp, options, bound, begin, translate)
        if dived is not None:
            return dived
    integral = lp.integer & (np.abs(values - np.round(values)) <= 1e-6)
    lower, upper = lp.col_lower.copy(), lp.col_upper.copy()
    lower[integral] = upper[integral] = np.round(values[integral])
    if options.voisinage:
        # composition model, grand: 4.1 s instead of 7.8 s for the restricted MIP, 4.6 expected
        # lettings lower (its gap to the relaxation, 0.15 %, is checked below as before)
        fractional = lp.integer & ~integral
        lower[fractional], upper[fractional] = np.floor(values[fractional]), np.ceil(values[fractional])
    restricted = new_highs(options)
    restricted.setOptionValue("time_limit", max(1.0, options.temps_max_s - (time.perf_counter() - begin)))
    if options.voisinage:  # stop at the first plan the gap test below accepts
        restricted.setOptionValue("objective_target", bound - max(options.ecart_absolu, options.ecart_relatif * abs(bound)))
    if options.voisinage and lp.num_cols <= LARGE_MODEL_COLUMNS:
        # Up to LARGE_MODEL_COLUMNS its root "reduced cost" heuristic is most of the restricted MIP's
        # time and finds nothing the sub-MIPs do not (national set, CPU: 2.4 s → 1.2 s on 13 572
        # columns, same plan value); on larger models it finds the good plans: kept there.
        restricted.setOptionValue("mip_heuristic_run_root_reduced_cost", False)
    pass_program(restricted, lp, col_lower=lower, col_upper=upper)
    restricted.run()
    found = read_solution(restricted, True, 0.0, translate)
    elapsed = time.perf_counter() - begin
    # A better known plan goes to branch-and-cut as its start (within the gap, it stops at the root).
    better_start = start is not None and (not found.has_solution or float(lp.cost @ start) > found.objective + 1e-9)
    proven = _proven(found.values, found.row_activity, found.objective, bound, options, begin, translate,
                     "relaxation-fixation") if found.has_solution and not better_start else None
    if proven is not None:
        return proven
    rest = options.temps_max_s - elapsed
    full = _branch_and_cut(lp, options, start if better_start else found.values if found.has_solution else None,
                           rest)
    full.seconds += elapsed
    return full


# Above this size the dive's plan is almost always within the accepted gap (national set: the 8
# largest of 40 sampled instances); below it the dive more often falls short and the MIP it then
# leaves to is cheap anyway.
DIVE_COLUMNS = 15_000


def _dived(relaxation: highspy.Highs, lp: LinearProgram, options: SolverOptions, bound: float, begin: float,
           translate: float) -> RawSolution | None:
    """The dive's plan (flux_opt/model/diving.py) when it is within the accepted gap of the
    relaxation's bound (a known start is not: it was tested first); None otherwise."""
    values = dive(relaxation, lp)
    if values is None:
        return None
    return _proven(values, np.asarray(relaxation.getSolution().row_value), float(lp.cost @ values), bound, options,
                   begin, translate, "relaxation-arrondi")


def _proven(values: np.ndarray, activity: np.ndarray, objective: float, bound: float, options: SolverOptions,
            begin: float, translate: float, methode: str) -> RawSolution | None:
    """A plan as the solve's answer when the relaxation's bound proves it within the accepted gap
    (`ecart_relatif`, or `ecart_absolu` expected lettings) of the optimum; None when it does not."""
    gap = (bound - objective) / max(abs(objective), 1e-9)
    if gap > options.ecart_relatif and bound - objective > options.ecart_absolu:
        return None
    elapsed = time.perf_counter() - begin
    return RawSolution(values, activity, "Optimal", True, True, objective, bound, max(gap, 0.0),
                       elapsed - translate, translate, methode)


def _relaxation(lp: LinearProgram, options: SolverOptions) -> highspy.Highs:
    relaxation = new_highs(options)
    # The composition model's relaxation: the dual simplex at every size (CPU, national set, 49 351
    # columns: 2.2 s instead of 4.1 s by the interior point; grand, 63 590: 7.4 s instead of 7.8 s),
    # and its basis is where a dive re-solves from. The transport model's is highly degenerate for
    # the simplex above LARGE_MODEL_COLUMNS: the interior point solves it ~3× faster.
    relaxation.setOptionValue("solver", "simplex" if options.voisinage or lp.num_cols <= LARGE_MODEL_COLUMNS
                              else "ipm")
    pass_program(relaxation, lp, integer=np.zeros(lp.num_cols, dtype=bool))
    return relaxation


def read_solution(h: highspy.Highs, is_mip: bool, seconds: float, translate: float) -> RawSolution:
    status = h.getModelStatus()
    info = h.getInfo()
    has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
    solution = h.getSolution()
    values = np.asarray(solution.col_value) if has_solution else np.zeros(0)
    activity = np.asarray(solution.row_value) if has_solution else np.zeros(0)
    objective = info.objective_function_value if has_solution else float("nan")
    bound = info.mip_dual_bound if is_mip else objective
    gap = info.mip_gap if is_mip else 0.0
    return RawSolution(values, activity, h.modelStatusToString(status),
                       status == highspy.HighsModelStatus.kOptimal, has_solution,
                       objective, bound, gap, seconds, translate)
