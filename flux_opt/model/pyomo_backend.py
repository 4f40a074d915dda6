"""Render the same LinearProgram as a Pyomo model (one Constraint component per family) and
solve it through Pyomo's HiGHS interface. Slower than the direct path, kept so the model can be
inspected, extended or sent to another solver with Pyomo's tools; both give the same plan."""

from __future__ import annotations

import time

import numpy as np
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression

from flux_opt.model.highs_backend import RawSolution, SolverOptions
from flux_opt.model.linear import LinearProgram


def to_pyomo(lp: LinearProgram) -> tuple[pyo.ConcreteModel, list]:
    """A ConcreteModel with one indexed Var per variable block and one indexed Constraint per
    family (named after the family). Returns the model and the list of columns in lp order."""
    m = pyo.ConcreteModel(name="orientation")
    lower, upper, integer, cost = lp.col_lower, lp.col_upper, lp.integer, lp.cost
    columns = []
    for block in lp.variables:
        idx = block.columns

        def bounds(_, i, idx=idx):
            j = idx[i]
            return (None if np.isinf(lower[j]) else lower[j], None if np.isinf(upper[j]) else upper[j])

        domain = pyo.Integers if block.size and integer[idx[0]] else pyo.Reals
        var = pyo.Var(range(block.size), domain=domain, bounds=bounds)
        m.add_component(block.name, var)
        columns.extend(var[i] for i in range(block.size))
    m.objective = pyo.Objective(expr=LinearExpression(
        constant=0.0, linear_coefs=[float(c) for c in cost[cost != 0]],
        linear_vars=[columns[j] for j in np.flatnonzero(cost)]), sense=pyo.maximize)
    matrix = lp.matrix().tocsr()
    seen: dict[str, int] = {}
    for block in lp.constraints:
        count = seen[block.famille] = seen.get(block.famille, 0) + 1
        name = block.famille if count == 1 else f"{block.famille}_{count}"

        def rule(_, i, block=block):
            row = block.start + i
            start, end = matrix.indptr[row], matrix.indptr[row + 1]
            expr = LinearExpression(constant=0.0, linear_coefs=matrix.data[start:end].tolist(),
                                    linear_vars=[columns[j] for j in matrix.indices[start:end]])
            lo, up = block.lower[i], block.upper[i]
            return (None if np.isinf(lo) else lo, expr, None if np.isinf(up) else up)

        m.add_component(name, pyo.Constraint(range(block.size), rule=rule))
    return m, columns


def solve_pyomo(lp: LinearProgram, options: SolverOptions) -> RawSolution:
    start = time.perf_counter()
    m, columns = to_pyomo(lp)
    build = time.perf_counter() - start
    solver = pyo.SolverFactory("appsi_highs")
    solver.config.time_limit = options.temps_max_s
    solver.config.mip_gap = options.ecart_relatif
    solver.highs_options = {"random_seed": options.graine, "threads": options.threads or 0,
                            "output_flag": False}
    start = time.perf_counter()
    results = solver.solve(m, load_solutions=False)
    seconds = time.perf_counter() - start
    condition = str(results.solver.termination_condition)
    has_solution = results.solver.status in (pyo.SolverStatus.ok, pyo.SolverStatus.warning) or \
        condition in ("optimal", "maxTimeLimit")
    try:
        m.solutions.load_from(results)
        values = np.array([v.value if v.value is not None else 0.0 for v in columns])
    except Exception:  # no solution to load
        values, has_solution = np.zeros(0), False
    activity = lp.matrix() @ values if has_solution else np.zeros(0)
    objective = float(lp.cost @ values) if has_solution else float("nan")
    bound = getattr(results.problem, "upper_bound", objective)
    gap = abs(bound - objective) / max(1e-10, abs(objective)) if has_solution and bound is not None else float("nan")
    return RawSolution(values, activity, "Optimal" if condition == "optimal" else condition,
                       condition == "optimal", has_solution, objective, bound, gap, seconds, build)
