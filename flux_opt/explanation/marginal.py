"""Marginal values of the rules and the honest cost of a rule by re-solving (models/explication.md).

Marginal value of a binding rule = gain of objective when its bound is relaxed by one unit
(one dwelling, one attribution, one candidate), measured by re-solving an LP (warm-started,
so each probe costs a few simplex iterations). Which LP:
- rules on dwellings only (caps, uniformity, hors-QPV, targets, indicative targets): the LP
  relaxation of the MIP with the elastic slacks fixed at their optimal values. With x fixed
  these rows would have no room at all: their dual there is 0, which says nothing. It starts
  from the optimal basis of the relaxation the solve itself solved (RawSolution.relaxation_basis):
  fixing the elastics costs a few pivots, not a solve from scratch (national sample: the same
  measured values; an LP dual standing for a row beyond the probes is then the dual of that
  basis, another optimal dual of this degenerate LP, an upper bound of the gain all the same).
- rules that count attributions (demand pools, CIA, mixité, publics prioritaires): the LP with
  the orientation x (and the elastics) fixed: the exact sensitivity of the attributions at this plan.
A one-unit probe rather than the row dual because the orientation LP is highly degenerate
(a réservataire's cap and target bind on the same dwellings: the dual splits arbitrarily between
them). The row dual is kept beside it (`dual`) for reference. It still bounds the probe: by weak
duality, the optimal duals y stay feasible when a bound moves, so relaxing row i by one unit gains
at most |y_i| (and never less than 0). Where that bound is below the noise threshold the
probe could only say 0: it is not run (about half of the probes of the national set).

Both remain local, LP figures. `rule_costs` re-solves the MIP with one family relaxed by one
point of rate (or one dwelling of tolerance) or removed, and reports the exact change of fit.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pandas as pd

from flux_opt.model.build import OrientationModel
from flux_opt.model.registry import RULE
from flux_opt.model.highs_backend import LARGE_MODEL_COLUMNS, SolverOptions
from flux_opt.model.session import SolverSession
from flux_opt.model.solve import Solution, NoSolutionFound, Variants, solver_options

RELAXATION, FIXED_X, NOT_APPLICABLE = "relaxation continue", "orientation fixée", "sans objet"


class _ProbedLP:
    """One LP kept in a solver session; bounds are moved, re-solved from the last basis, and moved back."""

    def __init__(self, model: OrientationModel, values: np.ndarray, fixed: np.ndarray, options: SolverOptions,
                 basis: tuple[np.ndarray, np.ndarray] | None = None):
        lp = model.lp
        lower, upper = lp.col_lower.copy(), lp.col_upper.copy()
        lower[fixed], upper[fixed] = values[fixed], values[fixed]
        self.session = SolverSession(lp, options, relaxed=True, col_lower=lower, col_upper=upper)
        # An optimal basis of the same LP with fewer columns fixed (the solve's relaxation): a few pivots.
        warm = basis is not None and self.session.set_basis(basis)
        if not warm and lp.num_cols > LARGE_MODEL_COLUMNS:  # degenerate for the simplex; crossover leaves a basis
            self.session.use_interior_point()
        first = self.session.run_objective()  # the duals are the only vectors read
        self.session.use_interior_point(False)  # the probes re-solve from that basis
        self.session.without_cost_perturbation()
        self.ok = first is not None
        self.base = first if self.ok else float("nan")
        self.duals = self.session.row_duals() if self.ok else None
        self.row_lower, self.row_upper = lp.row_lower, lp.row_upper

    def gain(self, moves: list[tuple[int, float, float]]) -> float:
        """Objective gain when rows get new (lower, upper) bounds; NaN if the LP is not optimal."""
        if not self.ok:
            return float("nan")
        self._set(moves)
        objective = self.session.run_objective()
        value = objective - self.base if objective is not None else float("nan")
        self._set([(i, self.row_lower[i], self.row_upper[i]) for i, _, _ in moves])
        return value

    def _set(self, moves) -> None:
        for i, lo, up in moves:
            self.session.set_row_bounds([i], [lo], [up])


def _relax_move(i: int, lo: float, up: float, value: float) -> tuple[int, float, float]:
    """One unit of room on the binding side of row i."""
    if np.isfinite(up) and (not np.isfinite(lo) or abs(value - up) <= abs(value - lo)):
        return i, lo, up + 1
    return i, lo - 1, up


MAX_PROBES = 60
NOISE = 1e-3  # below the stabilising weight (1e-3 per dwelling) a gain is tie-breaking noise, not fit
SURELY_NOISE = NOISE / 10  # a dual bound below this: the probe's gain is reported 0 (margin for tolerances)


def marginal_values(model: OrientationModel, solution: Solution, rows: pd.DataFrame,
                    options: SolverOptions | None = None, budget_s: float = float("inf"),
                    max_probes: float = MAX_PROBES) -> pd.DataFrame:
    """valeur_marginale (≥ 0), sens (which way), lp_marginal and the raw dual for every row.

    `rows` is result.rows (statut, valeur, bounds), in model row order. Only binding or violated
    rows are probed; slack rows have marginal value 0. Beyond `max_probes` rows examined or after
    `budget_s` seconds, rows not yet probed take their LP dual (sens « dual », an upper bound of the
    gain, not measured: `dual_estimates` counts them for the report)."""
    options = options or solver_options(model)
    deadline = time.perf_counter() + budget_s
    lp = model.lp
    values = solution.values
    relaxed = _ProbedLP(model, values, lp.elastic, _until(options, deadline), solution.raw.relaxation_basis)
    fixed = _ProbedLP(model, values, lp.integer | lp.elastic | lp.mask("repartition"), _until(options, deadline))
    n = lp.num_rows
    bailleur_row = _bailleur_target_row(model)
    status = rows["statut"].to_numpy()
    published = rows["publie"].to_numpy(dtype=bool)
    lower, upper = rows["borne_inf"].to_numpy(dtype=float), rows["borne_sup"].to_numpy(dtype=float)
    value = rows["valeur"].to_numpy(dtype=float)
    marginal, sens = np.zeros(n), np.full(n, "", dtype=object)
    source, dual = np.full(n, NOT_APPLICABLE, dtype=object), np.full(n, np.nan)
    probes_left = max_probes  # each probe is an LP re-solve: bounded, so a large parc stays fast
    for block in lp.constraints:
        kind = RULE[block.famille].probe
        if kind is None:
            continue  # the flux is a fact (models/explication.md); stabilisation is not a rule
        probe = fixed if RULE[block.famille].on_attributions else relaxed
        idx = np.arange(block.start, block.start + block.size)
        source[idx] = FIXED_X if probe is fixed else RELAXATION
        if probe.duals is not None:
            dual[idx] = probe.duals[idx]
        for i in idx[(status[idx] != "lache") & published[idx]]:
            if kind != "dual" and (time.perf_counter() > deadline or (probes_left <= 0 and kind == "unit")):
                # beyond the budget: the LP dual, flagged as such
                gain, way = abs(dual[i]) if np.isfinite(dual[i]) else np.nan, "dual"
            else:
                probes_left -= kind == "unit"  # rows examined, by a probe or by its bound: as many as before
                gain, way = PROBES[kind](probe, i, lower[i], upper[i], value[i], bailleur_row,
                                         _surely_noise(probe, dual, i, kind, bailleur_row))
            marginal[i] = (round(gain, 4) if gain >= NOISE else 0.0) if np.isfinite(gain) else np.nan
            sens[i] = way
    return pd.DataFrame({"valeur_marginale": marginal, "sens": sens, "lp_marginal": source,
                         "dual": np.round(dual, 6)})


def dual_estimates(marginal: pd.DataFrame, rows: pd.DataFrame) -> int:
    """Published rows whose marginal value is the LP dual (beyond the probes), not a measured gain."""
    return int(((marginal["sens"].to_numpy() == "dual") & rows["publie"].to_numpy(dtype=bool)).sum())


def _surely_noise(probe: _ProbedLP, dual: np.ndarray, i: int, kind: str, bailleur: int | None) -> bool:
    """True when the duals bound row i's probe below SURELY_NOISE: it would report 0 (see above)."""
    if probe.duals is None or kind == "dual":
        return False
    rows = [i] if kind == "unit" or bailleur is None else [i, bailleur]  # a target moves against the bailleur's
    bound = float(np.abs(dual[rows]).sum())
    return bool(np.isfinite(bound) and bound < SURELY_NOISE)


def _until(options: SolverOptions, deadline: float) -> SolverOptions:
    """The options with a time limit that ends at `deadline` (at least a tenth of a second)."""
    return replace(options, temps_max_s=min(options.temps_max_s, max(0.1, deadline - time.perf_counter())))


def _bailleur_target_row(model: OrientationModel) -> int | None:
    type_of = model.data.reservataires.set_index("id")["type"]
    for block in model.lp.constraints:
        if RULE[block.famille].probe == "target":
            hits = np.flatnonzero((block.labels["reservataire"].map(type_of) == "bailleur").to_numpy())
            return int(block.start + hits[0]) if len(hits) == 1 else None
    return None


def _unit_gain(probe: _ProbedLP, i: int, lower: float, upper: float, value: float,
               bailleur: int | None, noise: bool = False) -> tuple[float, str]:
    """One unit of room on the binding side of row i (`noise`: known to gain nothing, not solved)."""
    move = _relax_move(i, lower, upper, value)
    return 0.0 if noise else probe.gain([move]), ("plafond" if move[2] != upper else "minimum")


def _target_gain(probe: _ProbedLP, i: int, target: float, upper: float, value: float,
                 bailleur: int | None, noise: bool = False) -> tuple[float, str]:
    """The targets sum to the flux: one target moves only against the bailleur's remainder.
    Gain of the better of: one dwelling from the bailleur to r, or one from r to the bailleur
    (`noise`: both known to gain nothing, not solved).

    The LP value is concave in the bounds and the duals y are a supergradient: « plus » gains at
    most y_i − y_b, « moins » at most y_b − y_i. The way the duals favour is solved first; when its
    gain exceeds the other way's bound, it is the better one and the other is not solved (same
    answer as solving both, about one target probe in three spared)."""
    if bailleur is None or i == bailleur:
        return float("nan"), ""
    if noise:
        return 0.0, "plus"
    b = probe.row_lower[bailleur]

    def more() -> float:
        return probe.gain([(i, target + 1, target + 1), (bailleur, b - 1, b - 1)])

    def less() -> float:
        return probe.gain([(i, target - 1, target - 1), (bailleur, b + 1, b + 1)]) if target >= 1 else float("nan")

    bound_more = probe.duals[i] - probe.duals[bailleur] if probe.duals is not None and target >= 1 else np.nan
    if np.isfinite(bound_more) and bound_more >= 0:
        gained = more()
        if np.isfinite(gained) and gained > -bound_more + BOUND_MARGIN:
            return gained, "plus"
        return _better(less(), gained)
    if np.isfinite(bound_more):
        gained = less()
        if np.isfinite(gained) and gained > bound_more + BOUND_MARGIN:
            return gained, "moins"
        return _better(gained, more())
    return _better(less(), more())


BOUND_MARGIN = 1e-6  # above the solver's tolerances: a gain measured this far above a bound is above it


def _better(less: float, more: float) -> tuple[float, str]:
    """The better way of a target probe (a way the LP cannot take is NaN); « plus » on a tie."""
    if np.nan_to_num(less, nan=-np.inf) > np.nan_to_num(more, nan=-np.inf):
        return less, "moins"
    return more, "plus"


def _dual_gain(probe: _ProbedLP, i: int, lower: float, upper: float, value: float,
               bailleur: int | None, noise: bool = False) -> tuple[float, str]:
    """Many rows in a clean LP in y (demand pools): the row's dual is the probe."""
    return (abs(probe.duals[i]) if probe.duals is not None else np.nan), "plafond"


# The marginal-value probe of each family, by its registry facet `Rule.probe`
# (tests/test_registry.py checks that every negotiable family has one).
PROBES = {"unit": _unit_gain, "target": _target_gain, "dual": _dual_gain}


# ----------------------------------------------------------------------------- honest costs

def family_rows(model: OrientationModel, famille: str) -> np.ndarray:
    return np.concatenate([np.arange(b.start, b.start + b.size) for b in model.lp.constraints
                           if b.famille == famille] or [np.zeros(0, dtype=np.int64)])


def _fit(model: OrientationModel, values: np.ndarray) -> tuple[float, float]:
    y = values[model.vars.y.columns]
    return float(y @ model.data.flows["poids"].to_numpy(dtype=float)), float(y.sum())


def one_point_bounds(famille: str, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """Row bounds of the family relaxed by one point of rate (or one dwelling of tolerance).

    `rows`: the family's lines of result.rows (borne_inf, borne_sup, point_logements).
    None when a point of rate is not a change of bounds (the rate is a coefficient)."""
    lower, upper = rows["borne_inf"].to_numpy(dtype=float), rows["borne_sup"].to_numpy(dtype=float)
    point = rows["point_logements"].to_numpy(dtype=float) if "point_logements" in rows else np.full(len(rows), np.nan)
    way = RULE[famille].one_point
    if way == "tolerance":
        return np.maximum(lower - 1, 0), upper + 1
    if way == "plafond":
        return lower, upper + point
    if way == "minimum":
        if np.isnan(point).any() or (lower == 0).any():  # reading "part" / scoped target: a coefficient
            return None
        return lower - point, upper
    return None


def _resolve(variants: Variants, solution: Solution, rows: np.ndarray, lower: np.ndarray,
             upper: np.ndarray, options: SolverOptions) -> dict:
    model = variants.model
    lp = model.lp
    # The solve of `plan` (relaxation first and the whole split in the composition model), started
    # from the current plan: it stays feasible when a rule is relaxed.
    begin = time.perf_counter()
    try:
        variant = variants.solve(rows, lower, upper, options, start=solution.values)
    except NoSolutionFound as stopped:
        return {"statut_solveur": str(stopped), "temps_s": round(time.perf_counter() - begin, 3)}
    raw, values = variant.raw, variant.values
    x_cols = model.vars.x.columns
    moved = float(np.abs(np.round(values[x_cols]) - solution.values[x_cols]).sum() / 2)
    fit, count = _fit(model, values)
    return {"adequation_ponderee": fit, "attributions": count, "logements_deplaces": moved,
            "violation_totale": float(values[lp.elastic].sum()), "optimal": bool(raw.optimal),
            "statut_solveur": raw.status, "temps_s": round(raw.seconds, 3)}


COST_COLUMNS = ["famille", "variante", "gain_attributions", "gain_adequation_ponderee", "attributions",
                "adequation_ponderee", "logements_deplaces", "violation_avant", "violation_totale",
                "statut_solveur", "temps_s", "precision"]


def rule_costs(model: OrientationModel, solution: Solution, rows: pd.DataFrame, familles: list[str],
               options: SolverOptions | None = None, budget_s: float = float("inf")) -> pd.DataFrame:
    """Re-solve the MIP with each family relaxed by one point and removed; exact gains in fit.

    `rows` is result.rows (with `point_logements`), aligned with the model's rows. The re-solves
    share `budget_s` seconds: one stopped by it has no gain (not exact), those that could not end in
    time are not run; both say so in `statut_solveur`. Each re-solve, like the plan's, stops within
    the solver's accepted gap: `precision` (weighted-fit units) is what a gain is exact to."""
    options = options or solver_options(model)
    precision = round(max(options.ecart_absolu, options.ecart_relatif * abs(solution.raw.objective)), 4)
    base_fit, base_count = _fit(model, solution.values)
    base_violation = float(solution.values[model.lp.elastic].sum())
    deadline = time.perf_counter() + budget_s
    # A re-solve takes about as long as the plan's own solve: not started when it cannot end in time.
    needed = max(0.05, RESOLVE_SHARE * solution.raw.seconds)
    out = []
    variants = Variants(model)  # one relaxation in HiGHS for all of them, re-solved warm
    for famille, variant, idx, (lower, upper) in _variants(model, rows, familles):
        left = deadline - time.perf_counter()
        if left <= needed:
            out.append({"famille": famille, "variante": variant, "statut_solveur": NOT_RUN})
            continue
        res = _resolve(variants, solution, idx, lower, upper, _until(options, deadline))
        line = {"famille": famille, "variante": variant, **res, "precision": precision}
        if res.get("optimal"):
            line["gain_adequation_ponderee"] = round(res["adequation_ponderee"] - base_fit, 4)
            line["gain_attributions"] = round(res["attributions"] - base_count, 4)
            line["violation_avant"] = round(base_violation, 4)
        else:
            # Stopped by the budget, or ended with a plan the bound does not prove within the
            # accepted gap (the split by financement made whole can cost a few lettings): not the same.
            stopped = "optimal" not in res or "limit" in str(res.get("statut_solveur", "")).lower()
            line = {"famille": famille, "variante": variant, "statut_solveur": CUT_SHORT if stopped else NOT_PROVEN,
                    "temps_s": res["temps_s"]}
        out.append(line)
    return pd.DataFrame(out, columns=COST_COLUMNS)


RESOLVE_SHARE = 0.5
NOT_RUN = "non calculé : budget de temps de l'analyse épuisé"
CUT_SHORT = "interrompu : budget de temps de l'analyse atteint (gain non exact, non publié)"
NOT_PROVEN = "plan hors de l'écart accepté de la borne (gain non exact, non publié)"


def _variants(model: OrientationModel, rows: pd.DataFrame, familles: list[str]):
    """(famille, variant, rows, (lower, upper)) of every re-solve: relaxed by one point when that is a
    change of bounds, then removed."""
    for famille in familles:
        idx = family_rows(model, famille)
        if len(idx) == 0:
            continue
        point = one_point_bounds(famille, rows.iloc[idx])
        if point is not None:
            yield famille, "relâchée d'un point", idx, point
        yield famille, "supprimée", idx, (np.full(len(idx), -np.inf), np.full(len(idx), np.inf))


def cut_short(costs: pd.DataFrame) -> int:
    """How many re-solves the time budget stopped or skipped."""
    return int(costs["statut_solveur"].isin([NOT_RUN, CUT_SHORT]).sum()) if len(costs) else 0
