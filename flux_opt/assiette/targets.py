"""Each réservataire's target N_r for the year (CCH R.441-5, R.441-5-2; models/orientation.md §1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from flux_opt.assiette.apportion import largest_remainder, round_half_up
from flux_opt.assiette.flux import Flux
from flux_opt.input.schema import Instance
from flux_opt.vocabulary import PREFET_GROUP



@dataclass(frozen=True)
class Targets:
    """One row per réservataire (in the order of reservataires.csv)."""

    table: pd.DataFrame  # id, nom, type, base, source, brut, cible, plafond (NaN = none)
    territoires: dict[str, frozenset[str]]  # réservataire → communes it may receive dwellings in
    plafond_prefet: int | None  # préfet + agents cap (dwellings), None without a préfet
    plafond_agents: int | None

    def cible(self, rid: str) -> int:
        return int(self.table.set_index("id").at[rid, "cible"])

    def ids_of_type(self, *types: str) -> list[str]:
        return self.table.loc[self.table["type"].isin(types), "id"].tolist()


def territory_communes(codes: list[str], epci_of: pd.Series) -> frozenset[str]:
    """Communes of a territory given as commune and/or EPCI codes; blank = every commune."""
    if not codes:
        return frozenset(epci_of.index)
    wanted = set(codes)
    return frozenset(c for c, e in epci_of.items() if c in wanted or e in wanted)


def compute_targets(instance: Instance, flux: Flux) -> Targets:
    regles = instance.regles
    segments = flux.segments
    total = flux.total
    epci_of = segments.groupby("commune")["epci"].first()
    flux_of_commune = segments.groupby("commune")["flux"].sum()
    parc_total = float(sum(r.logements for r in instance.parc))

    rows = []
    territoires = {}
    for r in instance.reservataires:
        communes = territory_communes(r.territoire, epci_of)
        territoires[r.id] = communes
        base = int(flux_of_commune.reindex(list(communes)).fillna(0).sum())
        rows.append({"id": r.id, "nom": r.nom, "type": r.type, "base": base})
    table = pd.DataFrame(rows)

    agents = [r for r in instance.reservataires if r.type == "prefet_agents"]
    agents_raw = _explicit_raw(agents[0], table.at[_index(instance, agents[0].id), "base"]) if agents else None
    if agents and agents_raw is None:
        agents_raw = regles.prefet_agents_taux * total

    brut, source = [], []
    for r, base in zip(instance.reservataires, table["base"]):
        raw = _explicit_raw(r, base)
        how = "logements" if r.logements is not None else "taux" if r.taux is not None else None
        if raw is None and r.type == "prefet":
            raw, how = max(0.0, regles.prefet_taux * total - (agents_raw or 0.0)), "taux_prefet_par_defaut"
        elif raw is None and r.type == "prefet_agents":
            raw, how = agents_raw, "taux_agents_par_defaut"
        elif raw is None and r.logements_reserves is not None:
            raw = r.logements_reserves / parc_total * base if parc_total > 0 else 0.0
            how = "article_5"
        elif raw is None:
            raw, how = 0.0, "reste"
        brut.append(raw)
        source.append(how)
    table["source"] = source
    table["brut"] = np.array(brut, dtype=float)
    is_bailleur = (table["type"] == "bailleur").to_numpy()
    others = table.loc[~is_bailleur, "brut"].sum()
    table.loc[is_bailleur, "brut"] = max(0.0, total - others)

    plafond_prefet = round_half_up(regles.prefet_taux * total) if table["type"].isin(PREFET_GROUP).any() else None
    plafond_agents = round_half_up(regles.prefet_agents_taux * total) if agents else None
    caps = np.full(len(table), np.inf)
    for i, r in enumerate(instance.reservataires):
        if r.type == "collectivite" and not r.financement_apporte:
            caps[i] = round_half_up(regles.collectivite_plafond * table.at[i, "base"])
        elif r.type == "prefet_agents":
            caps[i] = plafond_agents
    table["plafond"] = np.where(np.isfinite(caps), caps, np.nan)
    group = table["type"].isin(PREFET_GROUP).to_numpy()

    def may_round_up(i: int, current: np.ndarray) -> bool:
        if current[i] + 1 > caps[i]:
            return False
        if group[i] and plafond_prefet is not None and current[group].sum() + 1 > plafond_prefet:
            return False
        return True

    raw = table["brut"].to_numpy()
    if raw.sum() <= total + 1e-9:
        # ties between equal remainders go by réservataire id (orientation.md §1), not file order
        order = np.argsort(table["id"].to_numpy(), kind="stable")
        by_id = largest_remainder(raw[order], total, lambda i, cur: may_round_up(order[i], _unsort(cur, order)))
        table["cible"] = _unsort(by_id, order)
    else:  # targets exceed the flux: round each, the conflict is reported by the model
        table["cible"] = [round_half_up(v) for v in raw]
    table["cible"] = table["cible"].astype(int)
    return Targets(table=table, territoires=territoires,
                   plafond_prefet=plafond_prefet, plafond_agents=plafond_agents)


def _unsort(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Values given in `order` back to the table's order."""
    out = np.empty_like(values)
    out[order] = values
    return out


def _index(instance: Instance, rid: str) -> int:
    return next(i for i, r in enumerate(instance.reservataires) if r.id == rid)


def _explicit_raw(r, base: int) -> float | None:
    """Target given by the réservataire's row: `logements`, else `taux` × its territory's flux."""
    if r.logements is not None:
        return float(r.logements)
    if r.taux is not None:
        return r.taux * base
    return None
