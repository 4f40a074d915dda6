"""What a plan's dwellings can let, recomputed from the instance (demand and acceptance), so that
the conformity check never trusts attributions.csv (models/orientation.md §8).

Written again on purpose instead of reusing flux_opt.model.lettings: for each réservataire r and
segment s (commune, typologie, QPV, financement) with X dwellings in plan.csv,

- lettings of all categories together ≤ X (one household per dwelling);
- gestion directe: category k gets at most coef_k × X, coef_k = π_k a_k (1 − (1 − ā)^n) / ā
  (π the shares of r's pools for the commune or its EPCI and the typologie, a the acceptance of
  the segment's financement, n the candidates per dwelling, ā = Σ π a);
- gestion déléguée: Σ_k y_k / (1 − (1 − a_k)^n) ≤ X (each dwelling aimed at one category);
- each category's lettings of r in an EPCI and typologie ≤ the candidates of r's pools there.

Attributions beyond these bounds are cut back to them before any share is computed, and the
lines « attributions possibles » say where they were. The base of r's publics prioritaires is
what its dwellings are expected to let: P̄ × X in gestion directe, Σ y + P̄ (X − Σ y / P) in
gestion déléguée (P̄ = 1 − (1 − ā)^n), never the lettings as read.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pandas as pd

from flux_opt.input.schema import Instance

Key = tuple[str, str, str, bool, str]  # réservataire, commune, typologie, qpv, financement


@dataclass
class Derived:
    attributions: pd.DataFrame  # attributions.csv with attributions_prevues cut back to the bounds
    excess: dict[str, float]  # réservataire → attributions read beyond what its dwellings and pools allow
    base: dict[str, float]  # réservataire → expected lettings of its dwellings (publics prioritaires base)


def _pools(instance: Instance) -> dict[tuple[str, str, str], dict[tuple[str, bool], float]]:
    """(réservataire, commune or EPCI, typologie) → (quartile, prioritaire) → candidates."""
    pools: dict = defaultdict(lambda: defaultdict(float))
    for p in instance.demande:
        zone = p.commune if p.commune else p.epci
        pools[(p.reservataire, zone, p.typologie)][(p.quartile, bool(p.prioritaire))] += p.demandeurs
    return pools


def derive(instance: Instance, plan: pd.DataFrame, attributions: pd.DataFrame, composition: bool = True) -> Derived:
    """The attributions cut back to what the plan's dwellings and r's pools allow (`composition`:
    the acceptance model of orientation.md §2; otherwise one household per dwelling)."""
    rows = {r.id: r for r in instance.reservataires}
    rates = instance.acceptance()
    epci_of = {p.commune: p.epci for p in instance.parc}
    pools = _pools(instance)
    dwellings: dict[Key, float] = defaultdict(float)
    for row in plan.itertuples(index=False):
        dwellings[(row.reservataire, row.commune, row.typologie, bool(row.qpv), row.financement)] += row.logements
    att = attributions.copy()
    att["_key"] = list(zip(att["reservataire"], att["commune"], att["typologie"], att["qpv"].astype(bool),
                           att["financement"]))
    att["_k"] = list(zip(att["quartile"], att["prioritaire"].astype(bool)))
    scale = pd.Series(1.0, index=att.index)
    base: dict[str, float] = defaultdict(float)
    for key in set(dwellings) | set(att["_key"]):
        rid, commune, typologie, _, financement = key
        x = dwellings.get(key, 0.0)
        mine = att.index[att["_key"] == key]
        r = rows.get(rid)
        if r is None:
            continue
        n = r.candidats_attendus
        mix: dict = defaultdict(float)
        for zone in (commune, epci_of.get(commune)):
            for k, d in pools.get((rid, zone, typologie), {}).items():
                mix[k] += d
        total = sum(mix.values())
        accept = {k: rates[(k[0], financement)] for k in mix}
        mean = sum(mix[k] / total * accept[k] for k in mix) if total else 0.0
        p_bar = 1 - (1 - mean) ** n
        y = att.loc[mine, "attributions_prevues"].astype(float) * scale[mine]
        cut = pd.Series(1.0, index=mine)
        if not composition:  # every candidate accepts: one household per dwelling
            if y.sum() > x + 1e-6:
                cut[:] = x / y.sum()
            base[rid] += x
        elif r.gestion == "directe":
            by_k = y.groupby(att.loc[mine, "_k"]).sum()
            for k, value in by_k.items():
                bound = mix.get(k, 0.0) / total * accept.get(k, 0.0) * p_bar / mean * x if total and mean else 0.0
                if value > bound + 1e-6:
                    cut[att.loc[mine, "_k"] == k] = bound / value
            base[rid] += p_bar * x
        else:
            def p_let(i) -> float:
                a = accept.get(att.at[i, "_k"], 0.0)
                return 1 - (1 - a) ** n

            used = sum(y[i] / p_let(i) if p_let(i) > 0 else (float("inf") if y[i] > 0 else 0.0) for i in mine)
            if used > x + 1e-6:
                cut[:] = x / used if used != float("inf") else 0.0
            kept = y * cut
            aimed = sum(kept[i] / p_let(i) for i in mine if kept[i] > 0)
            base[rid] += float(kept.sum()) + p_bar * max(0.0, x - aimed)
        scale[mine] = scale[mine] * cut
    # each category of r in an EPCI and typologie: at most the candidates of its pools there
    att["_epci"] = att["commune"].map(epci_of)
    for (rid, epci, typologie, k), group in att.groupby(["reservataire", "_epci", "typologie", "_k"]):
        communes = [c for c, e in epci_of.items() if e == epci]
        candidates = sum(pools.get((rid, z, typologie), {}).get(k, 0.0) for z in [*communes, epci])
        y = float((group["attributions_prevues"] * scale[group.index]).sum())
        if y > candidates + 1e-6:
            scale[group.index] *= candidates / y
    read = att["attributions_prevues"].astype(float)
    kept = read * scale
    excess = (read - kept).groupby(att["reservataire"]).sum().to_dict()
    out = attributions.copy()
    out["attributions_prevues"] = kept.to_numpy()
    return Derived(out, {r: float(v) for r, v in excess.items()}, dict(base))
