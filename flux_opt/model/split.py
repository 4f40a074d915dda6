"""The model's split of each cell unit over the cell's segments, in whole dwellings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from flux_opt.model.highs_backend import RawSolution, new_highs, pass_program, read_solution

if TYPE_CHECKING:
    from flux_opt.model.build import OrientationModel


def disaggregate(model: "OrientationModel", x: np.ndarray, w: np.ndarray | None = None) -> pd.DataFrame:
    """Dwellings per (segment, réservataire) from the x units.

    Segment units are taken as they are. Each cell unit is split over its cell's segments in
    proportion to `w` (the model's split by financement, when it has one) or else to the flux
    they still have free (largest remainder, never above what is free), réservataires in id
    order: the totals match cell by cell, so the split always completes."""
    d = model.data
    weights = _split_weights(d, w)
    seg = d.segments
    pairs = d.pairs[["s", "r", "reservataire", "link", "cell"]].assign(x=np.round(x).astype(np.int64))
    fine = pairs.loc[(pairs["s"] >= 0) & (pairs["x"] > 0), ["s", "r", "reservataire", "link", "x"]]
    free = seg["flux"].to_numpy(dtype=np.int64) - np.bincount(
        fine["s"].to_numpy(dtype=np.int64), weights=fine["x"].to_numpy(), minlength=len(seg)).astype(np.int64)
    coarse = pairs.loc[(pairs["s"] < 0) & (pairs["x"] > 0)]
    # Units the model split by financement first, so that the others take what is left; then by
    # réservataire id (a stable sort on its sorted codes: the order of sorting the texts).
    first = np.zeros(len(coarse), dtype=bool) if weights is None else np.fromiter(
        ((c, r) in weights for c, r in zip(coarse["cell"], coarse["r"])), dtype=bool, count=len(coarse))
    ids = pd.factorize(coarse["reservataire"], sort=True)[0]
    coarse = coarse.iloc[np.lexsort((ids, ~first, coarse["cell"].to_numpy()))]
    required = _required_first(model, coarse, free)
    coarse_part = _split_cell_units(coarse, seg["cell"].to_numpy(), free, required, weights)
    both = pd.concat([fine, coarse_part], ignore_index=True).rename(columns={"x": "logements"})
    both = both.join(seg[["commune", "epci", "qpv", "typologie", "financement"]], on="s")
    if d.split is not None:  # link groups are per segment: read them from the split, keyed by (s, r)
        n = len(d.reservataires)
        link_of = pd.Series(d.split["link"].to_numpy(), index=d.split["s"].to_numpy() * n + d.split["r"].to_numpy())
        both["link"] = link_of.reindex(both["s"].to_numpy() * n + both["r"].to_numpy()).to_numpy(dtype=float)
    both["logements"] = both["logements"].astype(int)
    return both


def _split_cell_units(coarse: pd.DataFrame, cell_of: np.ndarray, free: np.ndarray, required: dict,
                      weights: dict | None) -> pd.DataFrame:
    """Dwellings per (segment, réservataire) of the cell units `coarse` (in their order), each split
    over its cell's segments by `_split`, taking from `free`. A cell with one segment takes its
    units whole, at once (two thirds of the units of the national set: the loop was most of the
    result's time); the others go one by one, since each takes what the previous ones left."""
    segments_of = pd.Series(np.arange(len(cell_of))).groupby(cell_of, sort=True).indices
    cells = coarse["cell"].to_numpy()
    first, count = np.unique(cell_of, return_index=True)[1], np.bincount(cell_of)
    single = count[cells] == 1
    position, out_s, out_r, out_id, out_link, out_x = [], [], [], [], [], []
    if single.any():
        chosen = np.flatnonzero(single)
        position.append(chosen)
        out_s.append(first[cells[chosen]])
        for out, column in ((out_r, "r"), (out_id, "reservataire"), (out_link, "link"), (out_x, "x")):
            out.append(coarse[column].to_numpy()[chosen])
    several = np.flatnonzero(~single)
    for i, cell, r, rid, link, n in zip(several, cells[several], coarse["r"].to_numpy()[several],
                                        coarse["reservataire"].to_numpy()[several],
                                        coarse["link"].to_numpy()[several], coarse["x"].to_numpy()[several]):
        ss = segments_of[cell]
        key = (int(cell), int(r))
        base = required[key][ss] if key in required else np.zeros(len(ss), dtype=np.int64)
        mine = weights.get(key) if weights is not None else None
        alloc = _split(n - int(base.sum()), free[ss], mine, ss)
        free[ss] -= alloc
        alloc = alloc + base
        keep = alloc > 0
        position.append(np.full(keep.sum(), i))
        out_s.append(ss[keep])
        out_x.append(alloc[keep])
        out_r.append(np.full(keep.sum(), r))
        out_id.append(np.full(keep.sum(), rid, dtype=object))
        out_link.append(np.full(keep.sum(), link))
    # back in the units' order (a unit's segments stay in segment order: the sort is stable)
    order = np.argsort(np.concatenate(position), kind="stable") if position else np.zeros(0, dtype=np.int64)

    def column(parts: list, dtype) -> np.ndarray:
        return np.concatenate(parts)[order] if parts else np.zeros(0, dtype=dtype)

    return pd.DataFrame({"s": column(out_s, np.int64), "r": column(out_r, np.int64),
                         "reservataire": column(out_id, object), "link": column(out_link, np.int64),
                         "x": column(out_x, np.int64)})


def _required_first(model: "OrientationModel", coarse: pd.DataFrame, free: np.ndarray) -> dict:
    """Dwellings that must stay in their segment (model.minimums) are placed first: per (cell, r),
    the dwellings required in each segment; `free` loses them."""
    required: dict[tuple[int, int], np.ndarray] = {}
    if model.minimums is None or not len(model.minimums):
        return required
    seg = model.data.segments
    minimums = model.minimums.loc[model.minimums["r"].isin(set(coarse["r"].to_numpy().tolist()))]
    minimums = minimums.groupby(["s", "r"], as_index=False)["logements"].sum()
    cell_of = seg["cell"].to_numpy()
    for s_, r_, n_ in minimums.itertuples(index=False):
        required.setdefault((int(cell_of[s_]), int(r_)), np.zeros(len(seg), dtype=np.int64))[s_] += n_
        free[s_] -= n_
    return required


def _split(n: int, capacity: np.ndarray, mine: dict[int, float] | None, ss: np.ndarray) -> np.ndarray:
    """n dwellings over a cell's segments `ss`, in proportion to the model's split `mine` when it has
    one, else to their free `capacity`; largest remainder first (ties: segment order), never above
    a segment's capacity."""
    if n == 0:
        return np.zeros(len(ss), dtype=np.int64)
    if len(ss) == 1:
        return np.array([n])
    wanted = np.array([mine.get(int(s_), 0.0) for s_ in ss]) if mine is not None else capacity
    wanted = wanted if wanted.sum() > 0 else capacity
    raw = n * wanted / wanted.sum()
    alloc = np.minimum(np.floor(raw + 1e-9).astype(np.int64), capacity)
    missing = n - alloc.sum()
    while missing > 0:  # one pass suffices unless the split asks for more than is free
        for i in np.lexsort((np.arange(len(ss)), -(raw - alloc))):
            if missing == 0:
                break
            if alloc[i] < capacity[i]:
                alloc[i] += 1
                missing -= 1
    return alloc


def _split_weights(d, w: np.ndarray | None) -> dict[tuple[int, int], dict[int, float]] | None:
    """(cell, r) → {segment: the model's w}, or None without a split."""
    if d.split is None or w is None:
        return None
    coarse = d.split.loc[d.split["w"] >= 0]
    cells = d.segments["cell"].to_numpy()[coarse["s"].to_numpy()]
    out: dict[tuple[int, int], dict[int, float]] = {}
    for cell, r, s, value in zip(cells, coarse["r"].to_numpy(), coarse["s"].to_numpy(), w[coarse["w"].to_numpy()]):
        out.setdefault((int(cell), int(r)), {})[int(s)] = max(float(value), 0.0)
    return out


def split_columns(model: "OrientationModel", per_segment: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The split columns w (`repartition`) and their values for a plan given in dwellings per
    (s, r) (`logements`; 0 where the plan has none)."""
    split = model.data.split
    coarse = split["w"].to_numpy() >= 0
    n = len(model.data.reservataires)
    key = split["s"].to_numpy()[coarse] * n + split["r"].to_numpy()[coarse]  # (s, r) as one number
    # whole dwellings summed per (s, r) by numpy: a pandas group-by and merge cost more than the re-solve
    planned = np.bincount(per_segment["s"].to_numpy(dtype=np.int64) * n + per_segment["r"].to_numpy(dtype=np.int64),
                          weights=per_segment["logements"].to_numpy(dtype=float),
                          minlength=int(key.max()) + 1 if len(key) else 0)
    return model.vars.split.start + split["w"].to_numpy()[coarse], planned[key]


def whole_split(model: "OrientationModel", raw, options):
    """The MIP keeps the split w by financement continuous (its x are whole per cell, which keeps
    it as easy as the cell model). Make w whole (disaggregate along w), fix x and w, and re-solve
    the LP left (expected lettings y, slacks): the plan reported is whole and its lettings are
    exact for it. The MIP's bound still bounds every plan, so the gap stays a certificate."""

    v = model.vars
    x = np.round(raw.values[v.x.columns])
    per_segment = disaggregate(model, x, raw.values[v.split.columns])
    lower, upper = model.lp.col_lower.copy(), model.lp.col_upper.copy()
    fixed_w, whole = split_columns(model, per_segment)
    lower[fixed_w] = upper[fixed_w] = whole
    lower[v.x.columns] = upper[v.x.columns] = x
    h = new_highs(options)
    pass_program(h, model.lp, integer=np.zeros(model.lp.num_cols, dtype=bool), col_lower=lower, col_upper=upper)
    h.run()
    lp = read_solution(h, False, 0.0, 0.0)
    if not lp.has_solution:
        return raw
    bounded = np.isfinite(raw.bound)
    gap = max(raw.bound - lp.objective, 0.0) / max(abs(lp.objective), 1e-9) if bounded else raw.gap
    # Proven as the solve proves it: within the relative gap or within the absolute one.
    within = gap <= options.ecart_relatif + 1e-12 or (bounded and raw.bound - lp.objective <= options.ecart_absolu)
    return RawSolution(lp.values, lp.row_activity, raw.status, raw.optimal and within,
                       True, lp.objective, raw.bound, gap, raw.seconds + lp.seconds, raw.translate_seconds,
                       raw.methode, raw.relaxation_basis)
