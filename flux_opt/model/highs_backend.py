"""Pass the LinearProgram to HiGHS directly (highspy.passModel): the fast path."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass

import highspy
import numpy as np

from flux_opt.model.linear import LinearProgram


@dataclass
class SolverOptions:
    temps_max_s: float = 60.0
    ecart_relatif: float = 1e-4
    threads: int = 1
    graine: int = 0


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


def _infinite(a: np.ndarray) -> np.ndarray:
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
                _infinite(lp.col_lower if col_lower is None else col_lower),
                _infinite(lp.col_upper if col_upper is None else col_upper),
                _infinite(lp.row_lower), _infinite(lp.row_upper),
                a.indptr.astype(np.int32), a.indices.astype(np.int32), a.data.astype(float), integrality)


LARGE_MODEL_COLUMNS = 20_000


def solve_highs(lp: LinearProgram, options: SolverOptions) -> RawSolution:
    h = new_highs(options)
    if lp.num_cols > LARGE_MODEL_COLUMNS:
        # On large parcs the root LP is highly degenerate for the simplex: the interior point
        # method solves it ~3× faster (grand instance: 10.6 s instead of 30.8 s).
        h.setOptionValue("mip_lp_solver", "ipm")
    start = time.perf_counter()
    pass_program(h, lp)
    translate = time.perf_counter() - start
    start = time.perf_counter()
    h.run()
    seconds = time.perf_counter() - start
    return _read(h, lp.integer.any(), seconds, translate)


def _read(h: highspy.Highs, is_mip: bool, seconds: float, translate: float) -> RawSolution:
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


def fixed_lp_duals(lp: LinearProgram, values: np.ndarray, options: SolverOptions) -> np.ndarray | None:
    """Fix the integer columns (and the elastic slacks, so a rule's dual is not just its penalty)
    at their optimal values, solve the remaining LP in the attributions y, return row duals."""
    fixed = lp.integer | lp.elastic
    lower, upper = lp.col_lower.copy(), lp.col_upper.copy()
    lower[fixed] = values[fixed]
    upper[fixed] = values[fixed]
    h = new_highs(options)
    pass_program(h, lp, integer=np.zeros(lp.num_cols, dtype=bool), col_lower=lower, col_upper=upper)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    return np.asarray(h.getSolution().row_dual)
