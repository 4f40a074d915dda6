"""A solver session: one program kept in one HiGHS object and re-solved after its bounds or
coefficients change.

This is how everything outside `flux_opt.model` re-solves — parameter sweeps, marginal-value
probes, rule costs, the spreadsheet baseline's fixed plan — so that nobody else imports highspy.
HiGHS re-solves a changed LP from its last basis; `clear_basis()` forgets it (same path, hence
the same plan, as a fresh run).
"""

from __future__ import annotations

import time

import highspy
import numpy as np

from flux_opt.model.highs_backend import (RawSolution, SolverOptions, highs_infinity, new_highs, pass_program,
                                         read_solution)
from flux_opt.model.linear import LinearProgram


# HiGHS's basis statuses indexed by their codes (RawSolution.relaxation_basis stores the codes)
_BASIS_STATUS = np.empty(max(int(m.value) for m in highspy.HighsBasisStatus.__members__.values()) + 1, dtype=object)
for _member in highspy.HighsBasisStatus.__members__.values():
    _BASIS_STATUS[int(_member.value)] = _member


class SolverSession:
    """`lp` in HiGHS. `relaxed` drops integrality; `col_lower`/`col_upper` replace the column
    bounds (e.g. columns fixed at a plan's values)."""

    def __init__(self, lp: LinearProgram, options: SolverOptions, *, relaxed: bool = False,
                 col_lower: np.ndarray | None = None, col_upper: np.ndarray | None = None):
        self.lp = lp
        self.is_mip = not relaxed and bool(lp.integer.any())
        self._h = new_highs(options)
        integer = np.zeros(lp.num_cols, dtype=bool) if relaxed else None
        pass_program(self._h, lp, integer=integer, col_lower=col_lower, col_upper=col_upper)

    def use_interior_point(self, on: bool = True) -> None:
        """Interior point for the next LP solves (degenerate large LPs), else the simplex."""
        self._h.setOptionValue("solver", "ipm" if on else "simplex")

    def set_row_bounds(self, rows, lower, upper) -> None:
        rows = np.asarray(rows, dtype=np.int32)
        if len(rows):
            self._h.changeRowsBounds(len(rows), rows, highs_infinity(lower), highs_infinity(upper))

    def without_cost_perturbation(self) -> None:
        """For re-solves of a few pivots from an optimal basis (marginal-value probes): the dual
        simplex without its cost perturbation, whose removal at the end of each solve costs more than
        the pivots themselves (national sample: a third fewer pivots, same objectives)."""
        self._h.setOptionValue("dual_simplex_cost_perturbation_multiplier", 0.0)

    def set_coefficient(self, row: int, col: int, value: float) -> None:
        self._h.changeCoeff(int(row), int(col), float(value))

    def warm_start(self, values: np.ndarray) -> None:
        """Start from a known plan (still feasible after a relaxation)."""
        start = highspy.HighsSolution()
        start.col_value = list(values)
        start.value_valid = True
        self._h.setSolution(start)

    def set_basis(self, basis: tuple[np.ndarray, np.ndarray]) -> bool:
        """Start the next solve from a basis (RawSolution.relaxation_basis: the status codes of the
        columns and rows of the same program), e.g. the relaxation's optimum: when only column bounds
        differ, a few dual simplex pivots instead of a solve from scratch. False, and the solve starts
        from scratch, when HiGHS does not take it (a basis of another program)."""
        if len(basis[0]) != self.lp.num_cols or len(basis[1]) != self.lp.num_rows:
            return False
        start = highspy.HighsBasis()
        start.col_status = _BASIS_STATUS[basis[0]].tolist()
        start.row_status = _BASIS_STATUS[basis[1]].tolist()
        start.valid = True
        return self._h.setBasis(start) == highspy.HighsStatus.kOk

    def clear_basis(self) -> None:
        self._h.clearSolver()

    def run(self) -> RawSolution:
        start = time.perf_counter()
        self._h.run()
        return read_solution(self._h, self.is_mip, time.perf_counter() - start, 0.0)

    def run_objective(self) -> float | None:
        """Re-solve and return only the objective (None unless optimal): a marginal-value probe
        needs no solution vectors, whose copy costs as much as a short warm re-solve."""
        self._h.run()
        if self._h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        return float(self._h.getInfo().objective_function_value)

    def row_duals(self) -> np.ndarray | None:
        """Row duals of the last LP solve, None unless it was optimal."""
        if self._h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        return np.asarray(self._h.getSolution().row_dual)


def fixed_lp_duals(lp: LinearProgram, values: np.ndarray, options: SolverOptions) -> np.ndarray | None:
    """Fix the integer columns (and the elastic slacks, so a rule's dual is not just its penalty)
    at their optimal values, solve the remaining LP in the attributions y, return row duals."""
    fixed = lp.integer | lp.elastic | lp.mask("repartition")  # the split by financement is part of the plan
    lower, upper = lp.col_lower.copy(), lp.col_upper.copy()
    lower[fixed] = values[fixed]
    upper[fixed] = values[fixed]
    session = SolverSession(lp, options, relaxed=True, col_lower=lower, col_upper=upper)
    session.run()
    return session.row_duals()
