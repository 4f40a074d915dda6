"""Assemble the orientation MIP from the instance tables (models/orientation.md)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from flux_opt.assiette.flux import Flux
from flux_opt.model import families as fam
from flux_opt.model import registry
from flux_opt.model.data import ModelData, prepare, x_positions
from flux_opt.model.linear import INF, LinearProgram
from flux_opt.input.schema import Instance
from flux_opt.assiette.targets import Targets
from flux_opt.model.data import segment_rows


@dataclass
class OrientationModel:
    lp: LinearProgram
    data: ModelData
    vars: fam.Vars
    build_seconds: float
    # Dwellings that must stay in a given segment (columns s, r, logements), e.g. those already
    # oriented during the year: x units are bounded below by their sums, and the split of cell
    # units over segments honours them (result.disaggregate).
    minimums: pd.DataFrame | None = None
    # The columns each family builder added (start, end): a variant rendered without the structural
    # families keeps the same column numbering (flux_opt/model/reusable.py).
    family_columns: dict[str, tuple[int, int]] | None = None

    def require(self, table: pd.DataFrame) -> None:
        """Keep `table` (reservataire, commune, typologie, qpv, financement, logements) oriented:
        raise the x lower bounds and record the per-segment minimums."""

        self.lp.set_column_bounds("x", lower=x_positions(self.data, table))
        self.minimums = segment_rows(self.data, table)
        # Segment-level units must leave room for the dwellings cell units keep in that segment.
        coarse = set(self.data.pairs.loc[self.data.pairs["s"] < 0, "r"])
        kept = self.minimums.loc[self.minimums["r"].isin(coarse)].groupby("s")["logements"].sum()
        for block in self.lp.constraints:
            if block.famille == registry.CONSERVATION and "s" in block.labels:
                block.upper = block.upper - block.labels["s"].map(kept).fillna(0).to_numpy()
        if self.vars.split is not None:  # the split by financement keeps them in their segment
            split = self.data.split.loc[self.data.split["w"] >= 0, ["s", "r"]]
            kept = self.minimums.groupby(["s", "r"])["logements"].sum()
            lower = kept.reindex(pd.MultiIndex.from_frame(split)).fillna(0).to_numpy()
            self.lp.set_column_bounds("repartition", lower=lower)


def build_model(instance: Instance, flux: Flux, targets: Targets) -> OrientationModel:
    """Variables x (integer orientation) and y (expected attributions), then every family."""
    start = time.perf_counter()
    d = prepare(instance, flux, targets)
    weights = instance.parametres.objectif
    pen = penalties(instance)
    lp = LinearProgram()
    x_labels = d.pairs[["reservataire", "commune", "epci", "qpv", "typologie", "financement"]]
    x = lp.add_variables("x", x_labels, 0.0, d.pairs["flux"].to_numpy(dtype=float),
                         -tie_break(x_labels) * weights.stabilisation / 100, integer=True)
    y_labels = d.flows[["reservataire", "commune", "epci", "qpv", "typologie", "quartile", "prioritaire",
                        "travailleur_essentiel", "p", "link"]]
    retour = instance.parametres.demande.cout_retour if d.composition else 0.0
    y = lp.add_variables("y", y_labels, 0.0, INF, d.flows["poids"].to_numpy(dtype=float) + retour)
    # Composition model: X_ℓ, the dwellings of each link group; −cout_retour per dwelling and
    # +cout_retour per expected letting price the dwellings returned to the bailleur.
    link = (lp.add_variables("logements_lien", d.links[["reservataire", "niveau", "zone", "typologie", "qpv",
                                                        "financement"]], 0.0, INF, -retour)
            if d.composition else None)
    split = None
    if d.split is not None:
        # Composition model: how each cell unit's dwellings split by financement (continuous;
        # made whole after the solve, flux_opt/model/solve.py).
        rows = d.split.loc[d.split["w"] >= 0]
        w_labels = rows[["reservataire", "commune", "epci", "qpv", "typologie", "financement"]]
        split = lp.add_variables("repartition", w_labels, 0.0, rows["flux"].to_numpy(dtype=float),
                                 -tie_break(w_labels) * weights.stabilisation / 100)
    v = fam.Vars(x=x, y=y, link=link, split=split)

    columns = add_families(lp, d, v, pen)
    return OrientationModel(lp, d, v, time.perf_counter() - start, family_columns=columns)




def penalties(instance: Instance) -> fam.Penalties:
    weight = instance.parametres.objectif.penalite_violation
    return fam.Penalties(contractuelle=weight, legale=10 * weight)


def add_families(lp: LinearProgram, d: ModelData, v: fam.Vars, pen: fam.Penalties, skip=(),
                 like: OrientationModel | None = None) -> dict[str, tuple[int, int]]:
    """Add the rows of every family, in the registry's order, but those whose builder is in `skip`;
    return the columns (start, end) each builder added. A skipped builder's columns in the built
    model `like` (e.g. the lettings of the composition model's `demande`) are reserved, copied, so
    that later columns are numbered as in `like`."""
    columns = {}
    for builder in registry.builders():
        start = lp.num_cols
        if builder not in skip:
            getattr(fam, f"add_{builder}")(lp, d, v, pen)
        elif like is not None and like.family_columns[builder][1] > like.family_columns[builder][0]:
            a, b = like.family_columns[builder]
            lp.add_variables(f"reserve_{builder}", pd.DataFrame(index=range(b - a)), like.lp.col_lower[a:b],
                             like.lp.col_upper[a:b], like.lp.cost[a:b])
        columns[builder] = (start, lp.num_cols)
    return columns


def tie_break(labels: pd.DataFrame) -> np.ndarray:
    """A fixed pseudo-random number in [0, 1) per (réservataire, segment), from its labels only
    (not from row order): with it, equal-fit plans no longer tie, so the optimum is unique and
    the same whatever the engine or the order of the input rows."""
    keys = labels[["reservataire", "commune", "typologie", "qpv", "financement"]].astype(str)
    hashed = pd.util.hash_pandas_object(keys, index=False).to_numpy()
    return (hashed % np.uint64(1 << 20)).astype(float) / float(1 << 20)


def model_size(model: OrientationModel) -> dict:
    lp = model.lp
    return {"variables": lp.num_cols, "variables_entieres": int(lp.integer.sum()),
            "contraintes": lp.num_rows, "segments": len(model.data.segments)}
