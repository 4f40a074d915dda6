"""Solve the orientation model with HiGHS and read back values, statuses, duals, timings."""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import numpy as np

from flux_opt.model.build import OrientationModel
from flux_opt.model.linear import LinearProgram
from flux_opt.model.highs_backend import RawSolution, SolverOptions, WarmRelaxation, relaxes_first, solve_highs
from flux_opt.model.session import fixed_lp_duals
from flux_opt.model.split import whole_split


@dataclass
class Solution:
    raw: RawSolution
    values: np.ndarray  # column values (x rounded to integers)
    row_activity: np.ndarray  # A v per row, elastic slacks included
    row_duals: np.ndarray | None  # duals of the LP with integers fixed (None if unavailable)
    moteur: str
    integer_columns: np.ndarray  # True for integer columns (x)
    elastic_columns: np.ndarray  # True for elastic slack columns


class NoSolutionFound(Exception):
    """HiGHS found no plan at all (e.g. time limit hit before the first feasible plan)."""


def solver_options(model: OrientationModel) -> SolverOptions:
    s = model.data.instance.parametres.solveur
    # The composition demand model is a generalised flow (lettings = coefficient × dwellings):
    # its LP is fractional (~0.1–0.4 % above the best plan) and HiGHS's heuristics are slow to
    # find plans; starting from the rounded relaxation finds them at once, and a plan within
    # 0.5 % of the flux in expected lettings of the bound is accepted (models/orientation.md §2).
    composition = model.data.composition
    absolu = s.ecart_absolu if s.ecart_absolu is not None else (
        COMPOSITION_GAP * model.data.flux.total if composition else 0.0)
    return SolverOptions(s.temps_max_s, s.ecart_relatif, s.threads, s.graine, absolu, relaxer_d_abord=composition,
                         voisinage=composition)


COMPOSITION_GAP = 0.005  # default [solveur] ecart_absolu of the composition model, per dwelling of flux


def solve(model: OrientationModel, options: SolverOptions | None = None, moteur: str = "highs",
          duals: bool = True, start: np.ndarray | None = None) -> Solution:
    """Solve with HiGHS, directly (`highs`, default) or through Pyomo (`pyomo`). `start` (HiGHS
    only): a plan known to be feasible; the solve never returns a worse one."""
    options = options or solver_options(model)
    if moteur == "pyomo":
        from flux_opt.model.pyomo_backend import solve_pyomo  # lazy: Pyomo takes seconds to import, only for --moteur pyomo

        raw = solve_pyomo(model.lp, options)
    else:
        raw = solve_highs(model.lp, options, start)
    return solution_of(model, raw, options, moteur, duals)


def solution_of(model: OrientationModel, raw: RawSolution, options: SolverOptions, moteur: str = "highs",
                duals: bool = True) -> Solution:
    """What the solver returned, as the rest reads it: the split by financement made whole (composition
    model), whole dwellings, row activity, duals. Every solve of a plan ends here (`solve`, the
    re-solves of a ReusableModel)."""
    if raw.has_solution and model.vars.split is not None:
        raw = whole_split(model, raw, options)
    lp = model.lp
    if not raw.has_solution:
        raise NoSolutionFound(raw.status)
    values = raw.values.copy()
    values[lp.integer] = np.round(values[lp.integer])
    row_duals = fixed_lp_duals(lp, values, options) if duals else None
    return Solution(raw, values, lp.matrix() @ values, row_duals, moteur, lp.integer, lp.elastic)


class Variants:
    """Solves of one model with the bounds of some rows replaced (a rule relaxed by one point, or
    removed), each the solve of `plan`; the model itself is left unchanged. The relaxation stays
    in one HiGHS object across them (WarmRelaxation): each variant's is re-solved from the last
    basis instead of from scratch."""

    def __init__(self, model: OrientationModel):
        self.model = model
        self._relaxation: WarmRelaxation | None = None

    def solve(self, rows: np.ndarray, lower: np.ndarray, upper: np.ndarray, options: SolverOptions | None = None,
              start: np.ndarray | None = None) -> Solution:
        options = options or solver_options(self.model)
        lp = copy.copy(self.model.lp)
        lp.constraints = [replace(b, lower=b.lower.copy(), upper=b.upper.copy()) for b in self.model.lp.constraints]
        for block in lp.constraints:
            mine = (rows >= block.start) & (rows < block.start + block.size)
            block.lower[rows[mine] - block.start] = lower[mine]
            block.upper[rows[mine] - block.start] = upper[mine]
        if self._relaxation is None and relaxes_first(lp, options):
            self._relaxation = WarmRelaxation(self.model.lp, options)
        raw = solve_highs(lp, options, start, self._relaxation)
        return solution_of(replace(self.model, lp=lp), raw, options, duals=False)
