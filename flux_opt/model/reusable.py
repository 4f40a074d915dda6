"""A built orientation model re-solved for variants of its instance (parameter sweeps, negotiation).

The model is built once. For a variant only the numbers a rule parameter can change are
recomputed: the rows of the parameter-dependent families (every family that is not structural in
the registry), rendered by the same family functions as `build_model` into a scratch program, and
written into the built program. When the structure differs (a family appears or vanishes, a bound
becomes infinite…) the model is rebuilt. A fresh start solves the updated program with
`flux_opt.model.solve.solve`, the very solve of `plan` (relaxation first and the split by
financement made whole in the composition model), so each variant gives the same plan as a separate
build (tested). A warm start (branch-and-cut models only) keeps the program in one solver session
instead: changed rows are sent to it and it re-solves from its last basis (faster, but not the
path of `plan`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import sparse

from flux_opt.assiette.flux import Flux
from flux_opt.assiette.targets import Targets
from flux_opt.input.schema import Instance
from flux_opt.model.build import OrientationModel, add_families, build_model, penalties
from flux_opt.model.highs_backend import relaxes_first
from flux_opt.model.linear import LinearProgram
from flux_opt.model.registry import names, structural_builders
from flux_opt.model.session import SolverSession
from flux_opt.model.solve import Solution, solution_of, solve, solver_options


class ReusableModel:
    """One built model and one solver session, re-solved for variants of the same instance
    (same parc, exclusions, demand, indicative targets and rotation; other rules and targets)."""

    def __init__(self, instance: Instance, flux: Flux, targets: Targets, fresh_start: bool = True):
        self.base = instance
        self.flux = flux
        self.fresh_start = fresh_start
        self.rebuilds = 0
        self._build(instance, targets)

    def _build(self, instance: Instance, targets: Targets) -> None:
        self.model: OrientationModel = build_model(instance, self.flux, targets)
        self.options = solver_options(self.model)
        # A warm start keeps a basis between variants; a model solved by relaxation first has none
        # to keep (fresh solver objects each time), so it takes the solve of `plan`.
        warm = not self.fresh_start and not relaxes_first(self.model.lp, self.options)
        self.session = SolverSession(self.model.lp, self.options) if warm else None

    def accepts(self, instance: Instance) -> bool:
        """Whether `instance` is a variant this model can be re-solved for."""
        old = self.base
        return (instance.parc == old.parc and instance.exclusions == old.exclusions
                and instance.demande == old.demande and instance.objectifs == old.objectifs
                and instance.parametres.rotation == old.parametres.rotation)

    def solve(self, instance: Instance, targets: Targets, duals: bool = False) -> tuple[OrientationModel, Solution]:
        """The model of `instance` (a variant, see `accepts`) solved: changed rows sent, or rebuilt."""
        if not self.accepts(instance):
            raise ValueError("variante incompatible : seules les règles, la CIA, la mixité et les objectifs "
                             "des réservataires peuvent changer entre deux résolutions")
        if not self._update(instance, targets):
            self._build(instance, targets)
            self.rebuilds += 1
        if self.session is None:  # the solve of `plan`, hence the same plan as a fresh run
            return self.model, solve(self.model, self.options, duals=duals)
        return self.model, solution_of(self.model, self.session.run(), self.options, "highs", duals)

    def _update(self, instance: Instance, targets: Targets) -> bool:
        """Send the changed rows to the solver; False when the structure changed (rebuild)."""
        old_d = self.model.data
        if (targets.territoires != old_d.targets.territoires
                or instance.parametres.objectif != old_d.instance.parametres.objectif
                or instance.parametres.solveur != old_d.instance.parametres.solveur):
            return False
        d = refreshed_data(self.model, instance, targets)
        lp = self.model.lp
        structural = names(structural=True)
        old_blocks = [b for b in lp.constraints if b.famille not in structural]
        scratch = parametric_rows(self.model, d)
        aux = self.model.vars.end
        if ([(b.famille, b.size) for b in old_blocks] != [(b.famille, b.size) for b in scratch.constraints]
                or scratch.num_cols != lp.num_cols
                or not np.array_equal(scratch.cost, lp.cost[aux:])):
            return False
        if not all(_same_pattern(old, new) for old, new in zip(old_blocks, scratch.constraints)):
            return False
        for old, new in zip(old_blocks, scratch.constraints):
            if self.session is not None:
                changed = np.flatnonzero((old.lower != new.lower) | (old.upper != new.upper))
                self.session.set_row_bounds(old.start + changed, new.lower[changed], new.upper[changed])
                for row, col, value in _changed_coefficients(old, new):
                    self.session.set_coefficient(old.start + row, col, value)
            old.lower, old.upper, old.vals, old.labels = new.lower, new.upper, new.vals, new.labels
        self.model = replace(self.model, data=d)
        return True


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
    add_families(scratch, d, v, penalties(d.instance), skip=structural_builders(), like=model)
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
