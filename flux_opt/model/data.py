"""Plain tables the model is built from: segments, (réservataire, segment) pairs, cells, pools.

Everything is computed once, vectorised, from the validated instance, the assiette and
the targets; the family functions only read these tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from flux_opt.assiette.flux import Flux
from flux_opt.input.schema import Instance, parse_bool
from flux_opt.assiette.targets import Targets
from flux_opt.model.lettings import letting_coefficients

CELL = ["commune", "typologie", "qpv"]
CATEGORY = ["quartile", "prioritaire", "travailleur_essentiel"]


@dataclass
class ModelData:
    instance: Instance
    flux: Flux
    targets: Targets
    segments: pd.DataFrame  # s: commune, epci, qpv, typologie, financement, flux (> 0 only)
    reservataires: pd.DataFrame  # r: id, type, cible, base, plafond
    pairs: pd.DataFrame  # x index (units): r, reservataire, commune, epci, qpv, typologie, financement
    #                      (None for a cell unit), flux, cell, s (-1 for a cell unit), link
    links: pd.DataFrame  # link groups (r, zone, typologie, qpv): r, niveau, zone, epci, typologie, qpv
    pools: pd.DataFrame  # p: r, reservataire, zone, niveau, typologie, category, demandeurs, poids
    flows: pd.DataFrame  # y index: p, link, r, cell attributes, category (+ coefficients, see lettings)
    split: pd.DataFrame | None = None  # composition model where financement matters: see _split

    @property
    def composition(self) -> bool:
        """True for the demand model where the pools' composition decides who is housed."""
        return self.instance.parametres.demande.modele == "composition"


def prepare(instance: Instance, flux: Flux, targets: Targets) -> ModelData:
    segments = flux.segments.loc[flux.segments["flux"] > 0,
                                 ["commune", "epci", "qpv", "typologie", "financement", "flux"]].reset_index(drop=True)
    segments["cell"] = segments.groupby(CELL, sort=True).ngroup()
    reservataires = targets.table.reset_index(drop=True)

    composition = instance.parametres.demande.modele == "composition"
    pairs = _units(instance, segments, reservataires, targets)
    pools = _pools(instance, reservataires)
    split = None
    if composition and _split_by_financement(instance, pairs, segments):
        # Financement matters: each unit's dwellings are split by segment (w, see families) and
        # the link groups are per financement.
        split = _split(pairs, segments, pools)
        split["link"] = _link_groups(split, pools, by_financement=True)
        pairs["link"] = -1  # a cell unit feeds several groups, through its split
        grouped = split
    else:
        pairs["link"] = _link_groups(pairs, pools)
        grouped = pairs
    links = (grouped.drop_duplicates("link").sort_values("link")
             [["link", "r", "niveau", "zone", "epci", "typologie", "qpv", "financement", "reservataire"]]
             .reset_index(drop=True))
    if split is None:
        links["financement"] = None
    flows = _flows(pools, links)
    if composition:

        flows = letting_coefficients(instance, reservataires, flows, None if split is not None else _mix(pairs, segments))
    return ModelData(instance, flux, targets, segments, reservataires, pairs, links, pools, flows, split)


def _split(pairs: pd.DataFrame, segments: pd.DataFrame, pools: pd.DataFrame) -> pd.DataFrame:
    """One row per (unit, segment of the unit) where the split by financement matters: a cell unit
    of a cell with several segments, whose réservataire has candidates there, gets one row per
    segment (`w` ≥ 0 numbers its split column); a segment unit, or a cell unit of a one-segment
    cell, maps to its segment (w = −1, the unit itself). Cell units without candidates get no row:
    their dwellings take what the others leave (the cell rows of `conservation` hold)."""
    units = pairs.reset_index().rename(columns={"index": "unit"})
    segs = segments.reset_index().rename(columns={"index": "s"})
    per_cell = segs.groupby("cell").size()
    served = set(zip(pools["r"], pools["zone"], pools["typologie"]))
    coarse = units.loc[units["s"] < 0]
    has_pool = np.fromiter(((r, c, t) in served or (r, e, t) in served for r, c, e, t in
                            zip(coarse["r"], coarse["commune"], coarse["epci"], coarse["typologie"])),
                           dtype=bool, count=len(coarse))
    several = coarse["cell"].map(per_cell).to_numpy() > 1
    split = _with_segments(coarse.loc[has_pool & several, ["unit", "r", "reservataire", "cell"]], segs)
    split["w"] = np.arange(len(split))
    single = _with_segments(coarse.loc[has_pool & ~several, ["unit", "r", "reservataire", "cell"]], segs)
    fine = units.loc[units["s"] >= 0]
    columns = ["unit", "s", "w", "r", "reservataire", "commune", "epci", "qpv", "typologie", "financement", "flux"]
    return pd.concat([split[columns], single.assign(w=-1)[columns], fine.assign(w=-1)[columns]], ignore_index=True)


def _with_segments(units: pd.DataFrame, segs: pd.DataFrame) -> pd.DataFrame:
    """`units.merge(segs, on="cell")`: each unit once per segment of its cell, units in their order and
    a cell's segments in theirs, by index arithmetic (a pandas merge per call cost more)."""
    cell_of = segs["cell"].to_numpy()
    order = np.argsort(cell_of, kind="stable")
    first = np.searchsorted(cell_of[order], units["cell"].to_numpy(), side="left")
    count = np.searchsorted(cell_of[order], units["cell"].to_numpy(), side="right") - first
    left = np.repeat(np.arange(len(units)), count)
    right = order[np.repeat(first - np.cumsum(count) + count, count) + np.arange(count.sum())]
    out = units.take(left).reset_index(drop=True)
    others = segs.drop(columns="cell").take(right).reset_index(drop=True)
    for column in others.columns:
        out[column] = others[column]
    return out


# Beyond this many split columns (cells with several financements × réservataires), the model
# prices financement through each link group's mix instead (models/orientation.md §2).
MAX_SPLIT_COLUMNS = 20_000


def _split_by_financement(instance: Instance, pairs: pd.DataFrame, segments: pd.DataFrame) -> bool:
    """`[demande] financement`: "exact" splits every unit by financement, "moyen" prices the
    cell's mix, "auto" splits when it matters and the model stays small."""
    mode = instance.parametres.demande.financement
    if mode != "auto":
        return mode == "exact"
    if not financement_matters(instance):
        return False
    per_cell = segments.groupby("cell").size()
    return int(pairs.loc[pairs["s"] < 0, "cell"].map(per_cell).sum()) <= MAX_SPLIT_COLUMNS


def _mix(pairs: pd.DataFrame, segments: pd.DataFrame) -> pd.DataFrame:
    """(link, financement, part): the financement mix of the cells of each link group."""
    cells = pairs.loc[pairs["link"] >= 0, ["link", "cell"]].drop_duplicates()
    by_f = cells.merge(segments[["cell", "financement", "flux"]], on="cell").groupby(
        ["link", "financement"], as_index=False)["flux"].sum()
    by_f["part"] = by_f["flux"] / by_f.groupby("link")["flux"].transform("sum")
    return by_f[["link", "financement", "part"]]


def financement_matters(instance: Instance) -> bool:
    """True when some quartile accepts the financements at different rates: the orientation must
    then say which financement goes where (segment units) instead of only which cell."""
    rates = instance.acceptance()
    return any(len({rates[(q, f)] for (q2, f) in rates if q2 == q}) > 1 for q in {q for q, _ in rates})


def _units(instance: Instance, segments: pd.DataFrame, reservataires: pd.DataFrame,
           targets: Targets) -> pd.DataFrame:
    """The x index: one unit per (réservataire, cell) of its territory, or per (réservataire,
    segment) for a réservataire with an indicative target by financement.

    Nothing in the rules but those targets looks at financement, and any cell-level orientation
    can be split over the cell's segments in whole dwellings (a transportation problem whose
    totals match: result.disaggregate), so cell units are exact and halve the model.
    (With the composition demand model, cell units are split by segment by continuous variables,
    see _split.)"""
    by_financement = {o.reservataire for o in instance.objectifs if o.financement is not None}
    cells = (segments.groupby("cell", sort=True)
             .agg(commune=("commune", "first"), epci=("epci", "first"), qpv=("qpv", "first"),
                  typologie=("typologie", "first"), flux=("flux", "sum"))
             .reset_index())
    columns = ["r", "s", "cell", "commune", "epci", "qpv", "typologie", "financement", "flux"]
    if not by_financement:  # one take of the cells instead of one frame per réservataire, then a concat
        communes = cells["commune"].tolist()
        inside = [np.flatnonzero(np.fromiter((c in targets.territoires[rid] for c in communes), dtype=bool,
                                             count=len(communes))) for rid in reservataires["id"]]
        if sum(len(i) for i in inside):
            pairs = cells.take(np.concatenate(inside)).reset_index(drop=True).assign(
                r=np.repeat(np.arange(len(inside)), [len(i) for i in inside]), s=-1, financement=None)[columns]
            pairs["reservataire"] = reservataires["id"].to_numpy()[pairs["r"].to_numpy()]
            return pairs
    frames = []
    for r, rid in enumerate(reservataires["id"]):
        territory = targets.territoires[rid]
        if rid in by_financement:
            inside = segments.loc[segments["commune"].isin(territory)]
            frames.append(inside.assign(r=r, s=inside.index.to_numpy()))
        else:
            inside = cells.loc[cells["commune"].isin(territory)]
            frames.append(inside.assign(r=r, s=-1, financement=None))
    pairs = pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
    pairs["reservataire"] = reservataires["id"].to_numpy()[pairs["r"].to_numpy()]
    return pairs


def with_bool_flags(table: pd.DataFrame, columns: tuple[str, ...] = ("qpv", "prioritaire", "travailleur_essentiel")
                    ) -> pd.DataFrame:
    """A copy whose flag columns (those present) are boolean: plan files write oui/non."""
    table = table.copy()
    for column in columns:
        if column in table and table[column].dtype != bool:
            table[column] = table[column].map(parse_bool).astype(bool)
    return table


def with_bool_qpv(table: pd.DataFrame) -> pd.DataFrame:
    """A copy whose `qpv` column is boolean (plan files write oui/non)."""
    return with_bool_flags(table, ("qpv",))


def x_positions(d: "ModelData", table: pd.DataFrame, column: str = "logements") -> np.ndarray:
    """A segment-level table (reservataire, commune, typologie, qpv (bool), financement, column)
    summed onto the model's x units, in x column order; rows with no unit are ignored."""
    table = with_bool_qpv(table)
    per_segment = d.pairs.loc[d.pairs["s"] >= 0].reset_index().rename(columns={"index": "_col"})
    per_cell = d.pairs.loc[d.pairs["s"] < 0].reset_index().rename(columns={"index": "_col"})
    keys = ["reservataire", "commune", "typologie", "qpv"]
    a = table.merge(per_segment[keys + ["financement", "_col"]], on=keys + ["financement"])
    b = table.merge(per_cell[keys + ["_col"]], on=keys)
    both = pd.concat([a[["_col", column]], b[["_col", column]]])
    return np.bincount(both["_col"].to_numpy(dtype=np.int64), weights=both[column].to_numpy(dtype=float),
                       minlength=len(d.pairs))


def segment_rows(d: "ModelData", table: pd.DataFrame, column: str = "logements") -> pd.DataFrame:
    """A segment-level table as (s, r, logements) indices of the model (unknown rows dropped)."""
    table = with_bool_qpv(table)
    seg = d.segments.reset_index().rename(columns={"index": "s"})
    r_of = pd.Series(np.arange(len(d.reservataires)), index=d.reservataires["id"])
    out = table.merge(seg[["s", "commune", "typologie", "qpv", "financement"]],
                      on=["commune", "typologie", "qpv", "financement"])
    out["r"] = out["reservataire"].map(r_of)
    out = out.loc[out["r"].notna() & (out[column] > 0)]
    return pd.DataFrame({"s": out["s"].to_numpy(dtype=np.int64), "r": out["r"].to_numpy(dtype=np.int64),
                         "logements": out[column].to_numpy(dtype=np.int64)})


def _link_groups(pairs: pd.DataFrame, pools: pd.DataFrame, by_financement: bool = False) -> np.ndarray:
    """Group r's dwellings by (zone, typologie, qpv) for the link attributions ≤ dwellings.

    The zone is the EPCI when, in that EPCI, r has only EPCI-level pools for that typologie:
    the candidates then do not care which commune the dwelling is in, so one link row per
    (r, EPCI, typologie, qpv) is exact and replaces one per commune (far fewer y columns).
    Otherwise the zone is the commune. With the composition demand model the groups are also
    split by financement (acceptance depends on the rent; cell units carry financement "")."""
    commune_pools = pools.loc[pools["niveau"] == "commune", ["r", "typologie", "zone"]]
    epci_of = pairs.drop_duplicates("commune").set_index("commune")["epci"]
    fine = set(zip(commune_pools["r"], commune_pools["typologie"], commune_pools["zone"].map(epci_of)))
    is_fine = np.fromiter((k in fine for k in zip(pairs["r"], pairs["typologie"], pairs["epci"])),
                          dtype=bool, count=len(pairs))
    pairs["niveau"] = np.where(is_fine, "commune", "epci")
    pairs["zone"] = np.where(is_fine, pairs["commune"], pairs["epci"])
    keys = pairs[["r", "niveau", "zone", "typologie", "qpv"]]
    if by_financement:
        keys = keys.assign(financement=pairs["financement"].fillna(""))
    return keys.groupby(list(keys.columns), sort=True).ngroup().to_numpy()


def _pools(instance: Instance, reservataires: pd.DataFrame) -> pd.DataFrame:
    demand = instance.table("demande")
    r_of = {rid: i for i, rid in enumerate(reservataires["id"])}
    demand["r"] = demand["reservataire"].map(r_of)
    demand["niveau"] = np.where(demand["commune"].notna(), "commune", "epci")
    demand["zone"] = demand["commune"].where(demand["commune"].notna(), demand["epci"])
    prime = instance.parametres.objectif.prime_prioritaire
    demand["poids"] = 1.0 + prime * demand["prioritaire"].astype(float)
    demand = demand.loc[demand["demandeurs"] > 0].reset_index(drop=True)
    demand["p"] = np.arange(len(demand))
    return demand[["p", "r", "reservataire", "zone", "niveau", "typologie", *CATEGORY, "demandeurs", "poids"]]


def _flows(pools: pd.DataFrame, links: pd.DataFrame) -> pd.DataFrame:
    """y index: a pool may fill the links of its zone and typologie (a commune pool the links of
    its commune; an EPCI pool every link inside its EPCI)."""
    columns = ["r", "typologie", "link", "epci", "qpv", "financement"]
    commune_links = links.loc[links["niveau"] == "commune", columns + ["zone"]].rename(columns={"zone": "commune"})
    by_commune = pools.loc[pools["niveau"] == "commune"].merge(
        commune_links, left_on=["r", "typologie", "zone"], right_on=["r", "typologie", "commune"])
    by_epci = pools.loc[pools["niveau"] == "epci"].merge(
        links[columns], left_on=["r", "typologie", "zone"], right_on=["r", "typologie", "epci"])
    by_epci["commune"] = None
    flows = pd.concat([by_commune, by_epci], ignore_index=True).sort_values(["p", "link"], kind="stable")
    return flows.reset_index(drop=True)
