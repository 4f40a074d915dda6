"""Each réservataire's target N_r for the year (CCH R.441-5, R.441-5-2; models/orientation.md §1)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from flux_opt.assiette.apportion import cap, largest_remainder, round_half_up
from flux_opt.assiette.flux import Flux
from flux_opt.input.schema import Instance
from flux_opt.vocabulary import PREFET_GROUP

# The law's maxima (CCH R.441-5-2: 30 % au plus, dont 5 % agents; R.441-5: 20 %): a convention may
# lower a cap, never raise it.
LEGAL_MAXIMA = {"prefet_taux": 0.30, "prefet_agents_taux": 0.05, "collectivite_plafond": 0.20}


def legal_rate(regles, key: str) -> float:
    """The rate a cap and a default target use: the instance's, held to the law's maximum (legal
    caps prevail over inputs), unless `hors_cadre_legal` explores rates beyond the law."""
    if getattr(regles, "hors_cadre_legal", False):
        return getattr(regles, key)
    return min(getattr(regles, key), LEGAL_MAXIMA[key])


def uniformity_band(rho: float, flux_c: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Per commune, the State's dwellings allowed by `uniformite_prefet` (CCH R.441-5-2 II): the
    whole numbers within ± tolerance of ρ × F_c; a tolerance below ½ dwelling that leaves no whole
    number keeps the nearest ones (floor and ceil of ρ × F_c), so the band is never empty."""
    center = rho * np.asarray(flux_c, dtype=float)
    lower = np.maximum(0.0, np.ceil(center - tolerance - 1e-9))
    upper = np.floor(center + tolerance + 1e-9)
    empty = lower > upper
    return np.where(empty, np.floor(center + 1e-9), lower), np.where(empty, np.ceil(center - 1e-9), upper)


@dataclass(frozen=True)
class HorsQpvFloor:
    """The préfet's hors-QPV floor as the model and the report read it (CCH R.441-5-2 II)."""

    lecture: str  # "taux": the State's rate on the hors-QPV flux; "part": share of its own dwellings
    taux: float  # the rate applied: min(prefet_hors_qpv_min, the State's rate) for "taux"
    base: int  # hors-QPV flux ("taux") or the State's target ("part")
    plancher: int  # hors-QPV dwellings required
    atteignable: int  # at most this many State dwellings can be hors QPV (target, uniformity)


def hors_qpv_floor(regles, flux_by_commune: pd.DataFrame, state_target: int, total: int) -> HorsQpvFloor:
    """The préfet's hors-QPV floor, never above what a plan at the State's target can give.

    « La part du flux annuel réservé par le préfet en dehors des QPV ne peut être inférieure à
    30 % » (CCH R.441-5-2 II). Reading `taux`: the State's rate on the hors-QPV flux is at least
    min(prefet_hors_qpv_min, ρ), ρ = its target ÷ C (a préfet at 25 % is held to 25 %, not 30 %,
    hors QPV), rounded down like every share of the flux. Reading `part`: at least
    prefet_hors_qpv_min of its own dwellings are hors QPV, rounded up. Either way the floor never
    exceeds the hors-QPV dwellings a plan at the target and within the uniformity band can hold
    (a parc without hors-QPV dwellings has a floor of 0). `flux_by_commune`: commune, qpv, flux."""
    flux = flux_by_commune.groupby(["commune", "qpv"])["flux"].sum().unstack(fill_value=0)
    hors = flux[False] if False in flux else pd.Series(0, index=flux.index)
    f_c = flux.sum(axis=1).to_numpy(dtype=float)
    rho = state_target / total if total else 0.0
    lower, upper = uniformity_band(rho, f_c, regles.prefet_uniformite_tolerance)
    hors_c = hors.to_numpy(dtype=float)
    reachable = int(max(0.0, min(np.minimum(upper, hors_c).sum(), state_target - np.maximum(0.0, lower - hors_c).sum())))
    minimum = regles.prefet_hors_qpv_min
    if regles.prefet_hors_qpv_lecture == "part":
        wanted, rate, base = math.ceil(minimum * state_target - 1e-9), minimum, int(state_target)
    else:
        rate, base = min(minimum, rho), int(hors.sum())
        wanted = cap(rate, base)
    return HorsQpvFloor(regles.prefet_hors_qpv_lecture, rate, base, min(wanted, reachable), reachable)


@dataclass(frozen=True)
class Targets:
    """One row per réservataire (in the order of reservataires.csv)."""

    table: pd.DataFrame  # id, nom, type, base, source, brut, cible, plafond (NaN = none)
    territoires: dict[str, frozenset[str]]  # réservataire → communes it may receive dwellings in
    plafond_prefet: int | None  # préfet + agents cap (dwellings), None without a préfet
    plafond_agents: int | None
    # One row per distinct territory of a collectivité without financing (CCH R.441-5, "globalement"):
    # territoire (frozenset of communes), reservataires (ids holding exactly it), base F(T), plafond.
    collectivites: pd.DataFrame

    def of(self, rid: str) -> int:
        """The target of one réservataire (dwellings)."""
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
    table, territoires = _territories(instance, flux)
    _raw_targets(instance, table, territoires, flux.total)
    regles = instance.regles
    has_agents = (table["type"] == "prefet_agents").any()
    plafond_prefet = cap(legal_rate(regles, "prefet_taux"), flux.total) if table["type"].isin(PREFET_GROUP).any() else None
    plafond_agents = cap(legal_rate(regles, "prefet_agents_taux"), flux.total) if has_agents else None
    capped = (table["type"] == "collectivite").to_numpy() & ~np.array(
        [bool(r.financement_apporte) for r in instance.reservataires], dtype=bool)
    caps = np.full(len(table), np.inf)
    caps[capped] = [cap(legal_rate(regles, "collectivite_plafond"), b) for b in table.loc[capped, "base"]]
    if plafond_agents is not None:
        caps[(table["type"] == "prefet_agents").to_numpy()] = plafond_agents
    table["plafond"] = np.where(np.isfinite(caps), caps, np.nan)
    collectivites = _collectivite_territories(table, capped, territoires, legal_rate(regles, "collectivite_plafond"))
    groups = [(np.flatnonzero(capped & table["id"].map(lambda rid: territoires[rid] <= t).to_numpy()), c)
              for t, c in zip(collectivites["territoire"], collectivites["plafond"])]
    table["cible"] = _integer_targets(table, flux.total, caps, [(np.flatnonzero(
        table["type"].isin(PREFET_GROUP).to_numpy()), plafond_prefet)] + groups)
    _state_gets_its_whole_cap(table, plafond_prefet)
    return Targets(table=table, territoires=territoires, plafond_prefet=plafond_prefet,
                   plafond_agents=plafond_agents, collectivites=collectivites)


def _territories(instance: Instance, flux: Flux) -> tuple[pd.DataFrame, dict[str, frozenset[str]]]:
    """id, nom, type, base = F(T_r), parc = the bailleur's dwellings in T_r (article 5's denominator)."""
    segments = flux.segments
    epci_of = segments.groupby("commune")["epci"].first()
    # per commune, as dicts: one look-up per commune of a territory instead of a reindex per réservataire
    flux_of_commune = segments.groupby("commune")["flux"].sum().to_dict()
    parc_of_commune = segments.groupby("commune")["logements"].sum().to_dict()

    def total(of_commune: dict, communes: frozenset[str]) -> float:  # summed as pandas sums (numpy)
        return np.array([of_commune.get(c, 0.0) for c in communes], dtype=float).sum()

    rows, territories = [], {}
    for r in instance.reservataires:
        communes = territories[r.id] = territory_communes(r.territoire, epci_of)
        rows.append({"id": r.id, "nom": r.nom, "type": r.type, "base": int(total(flux_of_commune, communes)),
                     "parc": float(total(parc_of_commune, communes))})
    return pd.DataFrame(rows), territories


def _raw_targets(instance: Instance, table: pd.DataFrame, territoires: dict, total: int) -> None:
    """Columns `brut` (fractional n_r) and `source` (how it was set), in orientation.md §1's order."""
    regles = instance.regles
    agents = [(r, b) for r, b in zip(instance.reservataires, table["base"]) if r.type == "prefet_agents"]
    agents_raw = None
    if agents:
        agents_raw = _explicit_raw(*agents[0])
        agents_raw = legal_rate(regles, "prefet_agents_taux") * total if agents_raw is None else agents_raw
    brut, source = [], []
    for r, base, parc in zip(instance.reservataires, table["base"], table["parc"]):
        raw = _explicit_raw(r, base)
        how = "logements" if r.logements is not None else "taux" if r.taux is not None else None
        if raw is None and r.type == "prefet":
            raw, how = max(0.0, legal_rate(regles, "prefet_taux") * total - (agents_raw or 0.0)), "taux_prefet_par_defaut"
        elif raw is None and r.type == "prefet_agents":
            raw, how = agents_raw, "taux_agents_par_defaut"
        elif raw is None and r.logements_reserves is not None:
            # article 5: reserved ÷ the bailleur's dwellings of the same territory, × that territory's flux
            raw, how = (r.logements_reserves / parc * base if parc > 0 else 0.0), "article_5"
        elif raw is None:
            raw, how = 0.0, "reste"
        brut.append(raw)
        source.append(how)
    table["source"] = source
    table["demande"] = np.array(brut, dtype=float)  # as asked, before the law holds it (assiette/legal.py)
    table["brut"] = _held_to_the_law(instance, table, territoires, total)
    is_bailleur = (table["type"] == "bailleur").to_numpy()
    table.loc[is_bailleur, "brut"] = max(0.0, total - table.loc[~is_bailleur, "brut"].sum())


def _held_to_the_law(instance: Instance, table: pd.DataFrame, territoires: dict, total: int) -> np.ndarray:
    """The raw targets within the legal maxima (legal caps prevail over inputs): the agents within
    5 % of C, the State (préfet and agents) within 30 % of C, the collectivités without financing
    of a territory together within 20 % of its flux (CCH R.441-5-2, R.441-5); a group above its
    maximum is scaled down to it, the rest goes to the bailleur. Unchanged with hors_cadre_legal."""
    raw = table["demande"].to_numpy(dtype=float).copy()
    regles = instance.regles
    if getattr(regles, "hors_cadre_legal", False):
        return raw
    types = table["type"].to_numpy()

    def hold(members: np.ndarray, limit: float) -> None:
        asked = raw[members].sum()
        if members.any() and asked > limit + 1e-9:
            raw[members] *= limit / asked

    hold(types == "prefet_agents", LEGAL_MAXIMA["prefet_agents_taux"] * total)
    hold(np.isin(types, PREFET_GROUP), LEGAL_MAXIMA["prefet_taux"] * total)
    capped = (types == "collectivite") & ~np.array([bool(r.financement_apporte) for r in instance.reservataires],
                                                   dtype=bool)
    ids = table["id"].to_numpy()
    for territory in sorted({territoires[rid] for rid in ids[capped]}, key=len, reverse=True):
        inside = capped & np.array([territoires[rid] <= territory for rid in ids], dtype=bool)
        base = int(table.loc[inside & (ids == next(i for i in ids[inside] if territoires[i] == territory)),
                             "base"].iloc[0])
        hold(inside, LEGAL_MAXIMA["collectivite_plafond"] * base)
    return raw


def _integer_targets(table: pd.DataFrame, total: int, caps: np.ndarray,
                     groups: list[tuple[np.ndarray, int | None]]) -> np.ndarray:
    """Largest remainder of the raw targets (sum = C), never rounding a unit up past a cap: a
    réservataire's own, or a group's (the State; the collectivités whose territories lie inside
    a collectivité's territory, CCH R.441-5)."""
    def may_round_up(i: int, current: np.ndarray) -> bool:
        if current[i] + 1 > caps[i]:
            return False
        return all(limit is None or i not in members or current[members].sum() + 1 <= limit
                   for members, limit in groups)

    raw = table["brut"].to_numpy()
    if raw.sum() > total + 1e-9:  # targets exceed the flux: round each, the conflict is reported by the model
        return np.array([round_half_up(v) for v in raw], dtype=int)
    # ties between equal remainders go by réservataire id (orientation.md §1), not file order
    order = np.argsort(table["id"].to_numpy(), kind="stable")
    by_id = largest_remainder(raw[order], total, lambda i, cur: may_round_up(order[i], _unsort(cur, order)))
    return _unsort(by_id, order).astype(int)


def _state_gets_its_whole_cap(table: pd.DataFrame, plafond_prefet: int | None) -> None:
    """A préfet at its default rate gets ⌊rate × C⌋ − the agents' integer target, the rest of the
    State's cap: rounding the agents' 10,85 down to 10 must not cost the State a dwelling that
    ⌊0,30 × 217⌋ = 65 allows (CCH R.441-5-2). The bailleur, who holds the remainder, gives or
    takes the difference."""
    default = (table["source"] == "taux_prefet_par_defaut").to_numpy()
    bailleur = (table["type"] == "bailleur").to_numpy()
    if plafond_prefet is None or default.sum() != 1 or bailleur.sum() != 1:
        return
    others = table["type"].isin(PREFET_GROUP).to_numpy() & ~default
    wanted = plafond_prefet - int(table.loc[others, "cible"].sum())
    delta = wanted - int(table.loc[default, "cible"].iloc[0])
    if wanted >= 0 and 0 <= table.loc[bailleur, "cible"].iloc[0] - delta:
        cible = table["cible"].to_numpy().copy()  # on the array: a masked .loc update costs 15× more
        cible[default] += delta
        cible[bailleur] -= delta
        table["cible"] = cible


def _collectivite_territories(table: pd.DataFrame, capped: np.ndarray, territoires: dict,
                              rate: float) -> pd.DataFrame:
    """The distinct territories of the collectivités without financing, each with its global cap."""
    rows: dict[frozenset, dict] = {}
    for rid, base in zip(table.loc[capped, "id"], table.loc[capped, "base"]):
        row = rows.setdefault(territoires[rid], {"territoire": territoires[rid], "reservataires": [],
                                                 "base": int(base), "plafond": cap(rate, base)})
        row["reservataires"].append(rid)
    return pd.DataFrame(list(rows.values()), columns=["territoire", "reservataires", "base", "plafond"])


def _unsort(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Values given in `order` back to the table's order."""
    out = np.empty_like(values)
    out[order] = values
    return out


def _explicit_raw(r, base: int) -> float | None:
    """Target given by the réservataire's row: `logements`, else `taux` × its territory's flux."""
    if r.logements is not None:
        return float(r.logements)
    if r.taux is not None:
        return r.taux * base
    return None
