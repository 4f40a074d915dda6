"""Plain tables the model is built from: segments, (réservataire, segment) pairs, cells, pools.

Everything is computed once, vectorised, from the validated instance, the assiette and
the targets; the family functions only read these tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from flux_opt.assiette import Flux
from flux_opt.schema import Instance
from flux_opt.targets import Targets

CELL = ["commune", "typologie", "qpv"]
CATEGORY = ["quartile", "prioritaire", "travailleur_essentiel"]


@dataclass
class ModelData:
    instance: Instance
    flux: Flux
    targets: Targets
    segments: pd.DataFrame  # s: commune, epci, qpv, typologie, financement, flux (> 0 only)
    reservataires: pd.DataFrame  # r: id, type, cible, base, plafond
    pairs: pd.DataFrame  # x index: r, s, reservataire, segment attributes, cell, link, part
    links: pd.DataFrame  # link groups (r, zone, typologie, qpv): r, niveau, zone, epci, typologie, qpv
    pools: pd.DataFrame  # p: r, reservataire, zone, niveau, typologie, category, demandeurs, poids
    flows: pd.DataFrame  # y index: p, link, r, cell attributes, category


def prepare(instance: Instance, flux: Flux, targets: Targets) -> ModelData:
    segments = flux.segments.loc[flux.segments["flux"] > 0,
                                 ["commune", "epci", "qpv", "typologie", "financement", "flux"]].reset_index(drop=True)
    segments["cell"] = segments.groupby(CELL, sort=True).ngroup()
    reservataires = targets.table.reset_index(drop=True)

    pairs = []
    for r, rid in enumerate(reservataires["id"]):
        inside = segments.loc[segments["commune"].isin(targets.territoires[rid])]
        pairs.append(pd.DataFrame({"r": r, "s": inside.index.to_numpy()}))
    pairs = pd.concat(pairs, ignore_index=True) if pairs else pd.DataFrame({"r": [], "s": []})
    pairs = pairs.join(segments, on="s")
    pairs["reservataire"] = reservataires["id"].to_numpy()[pairs["r"].to_numpy()]
    # Proportional share of r in s, used by the stabilising term (orientation.md §4).
    base = reservataires["base"].to_numpy(dtype=float)
    target = reservataires["cible"].to_numpy(dtype=float)
    rate = np.divide(target, base, out=np.zeros_like(target), where=base > 0)
    pairs["part"] = np.ceil(rate[pairs["r"].to_numpy()] * pairs["flux"].to_numpy() - 1e-9)

    pools = _pools(instance, reservataires)
    pairs["link"] = _link_groups(pairs, pools)
    links = (pairs.groupby("link", sort=True)
             .agg(r=("r", "first"), niveau=("niveau", "first"), zone=("zone", "first"),
                  epci=("epci", "first"), typologie=("typologie", "first"), qpv=("qpv", "first"),
                  reservataire=("reservataire", "first"))
             .reset_index())
    flows = _flows(pools, links)
    return ModelData(instance, flux, targets, segments, reservataires, pairs, links, pools, flows)


def _link_groups(pairs: pd.DataFrame, pools: pd.DataFrame) -> np.ndarray:
    """Group r's dwellings by (zone, typologie, qpv) for the link attributions ≤ dwellings.

    The zone is the EPCI when, in that EPCI, r has only EPCI-level pools for that typologie:
    the candidates then do not care which commune the dwelling is in, so one link row per
    (r, EPCI, typologie, qpv) is exact and replaces one per commune (far fewer y columns).
    Otherwise the zone is the commune."""
    commune_pools = pools.loc[pools["niveau"] == "commune", ["r", "typologie", "zone"]]
    epci_of = pairs.drop_duplicates("commune").set_index("commune")["epci"]
    fine = set(zip(commune_pools["r"], commune_pools["typologie"], commune_pools["zone"].map(epci_of)))
    is_fine = np.fromiter((k in fine for k in zip(pairs["r"], pairs["typologie"], pairs["epci"])),
                          dtype=bool, count=len(pairs))
    pairs["niveau"] = np.where(is_fine, "commune", "epci")
    pairs["zone"] = np.where(is_fine, pairs["commune"], pairs["epci"])
    return pairs.groupby(["r", "niveau", "zone", "typologie", "qpv"], sort=True).ngroup().to_numpy()


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
    columns = ["r", "typologie", "link", "epci", "qpv"]
    commune_links = links.loc[links["niveau"] == "commune", columns + ["zone"]].rename(columns={"zone": "commune"})
    by_commune = pools.loc[pools["niveau"] == "commune"].merge(
        commune_links, left_on=["r", "typologie", "zone"], right_on=["r", "typologie", "commune"])
    by_epci = pools.loc[pools["niveau"] == "epci"].merge(
        links[columns], left_on=["r", "typologie", "zone"], right_on=["r", "typologie", "epci"])
    by_epci["commune"] = None
    flows = pd.concat([by_commune, by_epci], ignore_index=True).sort_values(["p", "link"], kind="stable")
    return flows.reset_index(drop=True)
