"""Expected lettings of a plan, recomputed from its dwellings and the instance's demand and
acceptance, so that the conformity check never reads them from attributions.csv
(models/orientation.md §2 « Demande », §8).

Written again on purpose instead of reusing flux_opt.model.lettings (a second opinion). For each
réservataire r and segment s (commune, typologie, QPV, financement) with X dwellings in plan.csv,
the pools of r that can fill s are its pools for the commune and for its EPCI, same typologie;
pool p has D_p candidates (π_p = D_p / Σ D) and accepts a dwelling of financement f with
a_p = a(quartile, f); r proposes n = `candidats` households per dwelling.

- Gestion directe: r proposes in proportion to its pools; a proposal is accepted with
  ā = Σ π_p a_p, a dwelling is let with P̄ = 1 − (1 − ā)^n and goes to pool p with
  π_p a_p / ā: y_p = π_p a_p P̄ / ā × X. Nothing of it is read from attributions.csv.
- Gestion déléguée: the bailleur aims z_k dwellings at category k (a choice the plan records in
  attributions.csv only: z_k = y_k / P_k, P_k = 1 − (1 − a_k)^n, for categories r has candidates
  for); aims beyond the dwellings (Σ z_k > X) are brought back to X in their proportions, and the
  dwellings aimed at nobody are proposed like in gestion directe:
  y_k = P_k z_k + (X − Σ z) × π_k a_k P̄ / ā. Without attributions.csv every dwelling is
  proposed like in gestion directe (what the simulated year does, §9).
- A pool never lets more than its candidates: where Σ y_p > D_p, the lettings of every segment
  it feeds are scaled down by D_p / Σ y_p (all categories of the segment together, as one dwelling
  lets one household of the mix).

The base of r's publics prioritaires is what its dwellings are expected to let: Σ y of r.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pandas as pd

from flux_opt.input.schema import Instance, parse_bool

CATEGORY = ("quartile", "prioritaire", "travailleur_essentiel")
COLUMNS = ["reservataire", "commune", "qpv", "typologie", "financement", *CATEGORY, "attributions_prevues"]
Segment = tuple[str, str, str, bool, str]  # réservataire, commune, typologie, qpv, financement
PLAN_COLUMNS = ["reservataire", "commune", "typologie", "qpv", "financement", "logements"]
# attributions.csv has 4 decimals: aims summing to X plus their rounding still fit X dwellings
AIM_SLACK = 0.01


@dataclass
class Recomputed:
    attributions: pd.DataFrame  # COLUMNS: the expected lettings per segment and household category
    base: dict[str, float]  # réservataire → its expected lettings (base of its publics prioritaires)
    aims_refused: dict[str, float]  # réservataire → dwellings aimed in attributions.csv beyond its own


def _flag(value) -> bool:
    return parse_bool(value) if isinstance(value, str) else bool(value)


def _pools(instance: Instance) -> dict[tuple[str, str, str], dict[tuple, float]]:
    """(réservataire, commune or EPCI, typologie) → category → candidates."""
    pools: dict = defaultdict(lambda: defaultdict(float))
    for p in instance.demande:
        zone = p.commune if p.commune else p.epci
        category = (p.quartile, bool(p.prioritaire), bool(p.travailleur_essentiel))
        pools[(p.reservataire, zone, p.typologie)][category] += float(p.demandeurs)
    return pools


def _aims(attributions: pd.DataFrame | None) -> dict[Segment, dict[tuple, float]]:
    """Segment → category → lettings read from attributions.csv (the déléguée aims are y / P_k)."""
    aims: dict = defaultdict(lambda: defaultdict(float))
    if attributions is None:
        return aims
    workers = (attributions["travailleur_essentiel"].tolist() if "travailleur_essentiel" in attributions
               else [False] * len(attributions))
    for rid, commune, typologie, qpv, financement, quartile, prioritaire, worker, value in zip(
            *_columns(attributions, ["reservataire", "commune", "typologie", "qpv", "financement", "quartile",
                                     "prioritaire"]), workers, attributions["attributions_prevues"].tolist()):
        key = (rid, str(commune), typologie, _flag(qpv), financement)
        aims[key][(quartile, _flag(prioritaire), _flag(worker))] += float(value)
    return aims


def _columns(table: pd.DataFrame, names: list[str]) -> list[list]:
    """Columns as Python lists, the values itertuples gives, at a fraction of its cost."""
    return [table[name].tolist() for name in names]


def recompute(instance: Instance, plan: pd.DataFrame, attributions: pd.DataFrame | None = None) -> Recomputed:
    """The expected lettings of `plan` (plan.csv, qpv boolean or oui/non) under the composition
    model; `attributions` (attributions.csv) only gives the déléguée aims, checked against X."""
    rows = {r.id: r for r in instance.reservataires}
    rates = instance.acceptance()
    epci_of = {p.commune: p.epci for p in instance.parc}
    pools = _pools(instance)
    aims = _aims(attributions)
    dwellings: dict[Segment, float] = defaultdict(float)
    for rid, commune, typologie, qpv, financement, x in zip(*_columns(plan, PLAN_COLUMNS)):
        dwellings[(rid, str(commune), typologie, _flag(qpv), financement)] += float(x)
    lets: dict[Segment, dict[tuple, float]] = {}  # segment → (zone, category) → lettings
    refused: dict[str, float] = defaultdict(float)
    for key, x in dwellings.items():
        rid, commune, typologie, _, financement = key
        r = rows.get(rid)
        if r is None or x <= 0:
            continue
        n = r.candidats_attendus
        mix = {(zone, k): d for zone in (commune, epci_of.get(commune))
               for k, d in pools.get((rid, zone, typologie), {}).items() if d > 0}
        total = sum(mix.values())
        if not total:
            continue
        accept = {zk: rates[(zk[1][0], financement)] for zk in mix}
        mean = sum(mix[zk] / total * accept[zk] for zk in mix)
        p_bar = 1 - (1 - mean) ** n
        proposed = x
        y: dict[tuple, float] = defaultdict(float)
        if r.gestion != "directe" and aims.get(key):
            by_k: dict[tuple, float] = defaultdict(float)  # the categories' pools, for P_k
            for (zone, k), d in mix.items():
                by_k[k] += d
            p_k = {k: 1 - (1 - rates[(k[0], financement)]) ** n for k in aims[key]}
            # a category r has no candidate for, or that never accepts, cannot be aimed at
            wanted = {k: v for k, v in aims[key].items() if v > 0 and k in by_k and p_k[k] > 0}
            aimed = sum(v / p_k[k] for k, v in wanted.items())
            scale = 1.0
            if aimed > x + AIM_SLACK:  # aims beyond the dwellings: kept in their proportions, on X
                refused[rid] += aimed - x
                scale = x / aimed
            for k, v in wanted.items():  # aimed at category k: spread over its pools by candidates
                for (zone, kk), d in mix.items():
                    if kk == k:
                        y[(zone, k)] += scale * v * d / by_k[k]
            proposed = max(0.0, x - scale * aimed)
        if mean > 0:
            for zk, d in mix.items():
                y[zk] += d / total * accept[zk] * p_bar / mean * proposed
        lets[key] = y
    # a pool never lets more than its candidates
    used: dict[tuple, float] = defaultdict(float)
    for (rid, _, typologie, _, _), y in lets.items():
        for (zone, k), v in y.items():
            used[(rid, zone, typologie, k)] += v
    out, base = [], defaultdict(float)
    for key, y in lets.items():
        rid, commune, typologie, qpv, financement = key
        factor = min([1.0] + [pools[(rid, zone, typologie)][k] / used[(rid, zone, typologie, k)]
                              for (zone, k), v in y.items() if v > 0 and used[(rid, zone, typologie, k)] > 0])
        by_k = defaultdict(float)
        for (_, k), v in y.items():
            by_k[k] += v * factor
        for k, v in by_k.items():
            out.append((rid, commune, qpv, typologie, financement, *k, v))
            base[rid] += v
    table = pd.DataFrame(out, columns=COLUMNS)
    return Recomputed(table, dict(base), dict(refused))


def differences(read: pd.DataFrame, recomputed: pd.DataFrame) -> dict[str, float]:
    """réservataire → Σ |attributions read − recomputed| over its segments and categories."""
    keys = COLUMNS[:-1]

    def summed(table: pd.DataFrame) -> pd.Series:
        t = table.copy()
        for c in ("qpv", "prioritaire", "travailleur_essentiel"):
            t[c] = t[c].map(_flag) if c in t.columns else False
        t["commune"] = t["commune"].astype(str)
        return t.groupby(keys)["attributions_prevues"].sum().astype(float)

    a, b = summed(read), summed(recomputed)
    gap = (a.reindex(a.index.union(b.index), fill_value=0.0) - b.reindex(a.index.union(b.index), fill_value=0.0)).abs()
    return gap.groupby(level="reservataire").sum().to_dict()


def capped(instance: Instance, plan: pd.DataFrame, attributions: pd.DataFrame) -> pd.DataFrame:
    """Transport model (`[demande] modele = "transport"`: any household of r's pools takes a
    dwelling, the plan chooses which): the attributions read, cut back to one household per
    dwelling of each réservataire and segment."""
    dwellings: dict[Segment, float] = defaultdict(float)
    for row in plan.itertuples(index=False):
        dwellings[(row.reservataire, str(row.commune), row.typologie, _flag(row.qpv), row.financement)] += float(
            row.logements)
    att = attributions.copy()
    key = pd.Series(list(zip(att["reservataire"], att["commune"].astype(str), att["typologie"],
                             att["qpv"].map(_flag), att["financement"])), index=att.index)
    total = att["attributions_prevues"].astype(float).groupby(key).transform("sum")
    room = key.map(lambda k: dwellings.get(k, 0.0))
    factor = (room / total.where(total > 0, 1.0)).clip(upper=1.0)
    att["attributions_prevues"] = att["attributions_prevues"].astype(float) * factor
    return att
