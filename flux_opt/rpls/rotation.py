"""Rotation of the bailleur's own parc, from the lease dates of its RPLS extract.

The SDES « taux de mobilité » (RPLS): move-ins during year N−1 in the dwellings offered for rent for at
least a year, over those dwellings. With the extract at 1 January N (N the plan's year), a dwelling is in
the base when it is offered for rent (MODE 1 or 2, when the column is there) and was first let before
N−1 (LOCAT ≤ N−2, when there); it counts a move-in when its current lease (BAIL) started during N−1.

Measured by commune × typologie × QPV, each cell pulled towards its EPCI × typologie rate, itself pulled
towards the département × typologie rate, itself towards the département's (calibration/shrinkage.py;
formula in models/rpls.md §2-3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from flux_opt.calibration.shrinkage import posterior, prior_strength
from flux_opt.rpls.columns import OFFERED

CELL = ["commune", "typologie", "qpv"]
LEVELS = (("département × typologie", ["typologie"]), ("EPCI × typologie", ["epci", "typologie"]),
          ("commune × typologie × QPV", ["epci"] + CELL))


@dataclass
class Rotation:
    cells: pd.DataFrame  # one row per commune × typologie × QPV (rotation.csv)
    strengths: dict[str, float]  # level -> prior strength m (pseudo-dwellings)
    departement_rate: float
    base: int  # dwellings in the mobility base
    move_ins: int
    future: int  # leases dated on or after 1 January N: out of the base, reported


def mobility_base(d: pd.DataFrame, annee: int) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Per dwelling: in the base, moved in during N−1, lease dated in year N or later (left out)."""
    base = ~d["bail_illisible"]
    if "mode" in d and (d["mode"] != "").any():
        base &= d["mode"].isin(OFFERED) | (d["mode"] == "")
    if "locat" in d:
        base &= ~(d["locat"] >= annee - 1)
    year = d["bail"].dt.year
    future = base & (year >= annee)
    base &= ~future
    return base, base & (year == annee - 1), future


def estimate_rotation(d: pd.DataFrame, annee: int) -> Rotation:
    """Rates by commune × typologie × QPV with their interval (see the module docstring)."""
    base, moved, future = mobility_base(d, annee)
    frame = d[["epci", *CELL]].assign(n=base.astype(int), k=moved.astype(int), logements=1)
    cells = frame.groupby(["epci", *CELL], as_index=False)[["logements", "n", "k"]].sum()
    total_n, total_k = int(cells["n"].sum()), int(cells["k"].sum())
    p0 = total_k / total_n if total_n else np.nan
    p0_variance = p0 * (1 - p0) / total_n if total_n else 0.0
    parent = pd.DataFrame({"p": p0, "parent_n": total_n, "parent_var": p0_variance}, index=cells.index)
    strengths = {}
    for name, keys in LEVELS:
        level = cells.groupby(keys, as_index=False)[["n", "k"]].sum()
        above = level[keys].merge(cells[keys].join(parent), on=keys, how="left").drop_duplicates(keys)
        parent_of_level = above["p"].to_numpy()
        m = prior_strength(level["k"], level["n"], parent_of_level)
        strengths[name] = m
        # a parent weighs at most what it was measured on (its dwellings and the weight of its own parent)
        used = np.minimum(m, above["parent_n"].to_numpy())
        post = posterior(level["k"], level["n"], parent_of_level, used, parent_variance=above["parent_var"].to_numpy())
        level = level.assign(parent=parent_of_level, effective=level["n"] + used, **post)
        merged = cells[keys].merge(level, on=keys, how="left")
        if keys == LEVELS[-1][1]:
            cells = cells.assign(taux_parent=merged["parent"].to_numpy(), taux_estime=merged["estimate"].to_numpy(),
                                 borne_basse=merged["low"].to_numpy(), borne_haute=merged["high"].to_numpy(),
                                 poids_parent=merged["weight"].to_numpy())
        parent = pd.DataFrame({"p": merged["estimate"].to_numpy(), "parent_n": merged["effective"].to_numpy(),
                               "parent_var": merged["variance"].to_numpy()}, index=cells.index)
    cells["taux_brut"] = np.where(cells["n"] > 0, cells["k"] / cells["n"].where(cells["n"] > 0, 1), np.nan)
    cells = cells.rename(columns={"n": "logements_observes", "k": "emmenagements"})
    return Rotation(cells, strengths, p0, total_n, total_k, int(future.sum()))


def most_shrunk(rotation: Rotation, count: int = 5) -> pd.DataFrame:
    """The cells whose estimate moved most from their raw rate (small cells far from their EPCI)."""
    c = rotation.cells.dropna(subset=["taux_brut"])
    gap = (c["taux_estime"] - c["taux_brut"]).abs()
    return c.assign(ecart=gap).sort_values("ecart", ascending=False).head(count)
