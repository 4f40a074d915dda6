"""Why each kind of dwelling goes where it goes (composition demand model): each réservataire's
dwellings by financement beside what its pools are made of and how they accept each rent.

In the composition model the réservataire's pools decide who is housed, so the plan sends a
dwelling where households likely to accept it are waiting: a PLAI to Q1-rich pools, a PLS to
pools of Q2–Q4 households (models/orientation.md §2). This table and its sentences show that.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from flux_opt.explanation.sentences import fr_number, fr_percent
from flux_opt.vocabulary import FINANCEMENTS

COLUMNS = ["reservataire", "gestion", "logements", *FINANCEMENTS, "part_hors_qpv", "demandeurs", "part_q1",
           "part_prioritaires", *(f"acceptation_{f}" for f in FINANCEMENTS), "attributions_prevues", "part_attribuee"]


def pool_table(model, result) -> pd.DataFrame:
    """One row per réservataire with dwellings (COLUMNS); empty for the transport model, where the
    optimiser, not the pools, chooses the households."""
    d = model.data
    if not d.composition or result.plan.empty:
        return pd.DataFrame(columns=COLUMNS)
    plan, att = result.plan, result.attributions
    by_f = plan.pivot_table(index="reservataire", columns="financement", values="logements", aggfunc="sum",
                            fill_value=0).reindex(columns=list(FINANCEMENTS), fill_value=0)
    table = by_f.assign(logements=by_f.sum(axis=1))
    table = table.loc[table["logements"] > 0]
    hors_qpv = plan.loc[plan["qpv"] != "oui"].groupby("reservataire")["logements"].sum()
    table["part_hors_qpv"] = hors_qpv.reindex(table.index).fillna(0) / table["logements"]
    pools = d.pools.assign(q1=lambda p: p["demandeurs"] * (p["quartile"] == "q1"),
                           prio=lambda p: p["demandeurs"] * p["prioritaire"].astype(bool))
    sums = pools.groupby("reservataire")[["demandeurs", "q1", "prio"]].sum().reindex(table.index).fillna(0)
    table["demandeurs"] = sums["demandeurs"]
    table["part_q1"] = _share(sums["q1"], sums["demandeurs"])
    table["part_prioritaires"] = _share(sums["prio"], sums["demandeurs"])
    rates = d.instance.acceptance()
    quartiles = pools["quartile"].unique()
    for f in FINANCEMENTS:  # the mean acceptance of a proposal of that rent by the réservataire's pools
        rate = pools["quartile"].map({q: rates.get((q, f), 0.0) for q in quartiles}).fillna(0.0)
        accept = pools["demandeurs"] * rate
        table[f"acceptation_{f}"] = _share(accept.groupby(pools["reservataire"]).sum().reindex(table.index).fillna(0),
                                           sums["demandeurs"])
    lettings = att.groupby("reservataire")["attributions_prevues"].sum().reindex(table.index).fillna(0)
    table["attributions_prevues"] = lettings.round(1)
    table["part_attribuee"] = lettings / table["logements"]
    gestion = {r.id: r.gestion for r in d.instance.reservataires}
    table = table.reset_index()
    table["gestion"] = table["reservataire"].map(gestion)
    order = {rid: i for i, rid in enumerate(result.objectifs["reservataire"])}
    table = table.sort_values("reservataire", key=lambda s: s.map(order), kind="stable")
    return table[COLUMNS].round({c: 4 for c in COLUMNS if c.startswith(("part_", "acceptation_"))}).reset_index(drop=True)


def _share(part: pd.Series, whole: pd.Series) -> pd.Series:
    return pd.Series(np.divide(part.to_numpy(dtype=float), whole.to_numpy(dtype=float),
                               out=np.full(len(part), np.nan), where=whole.to_numpy() > 0), index=part.index)


def pool_sentences(table: pd.DataFrame, noms) -> list[str]:
    """For each financement, who receives most of it and why, in the words of the pools."""
    out = []
    for f in FINANCEMENTS:
        total = float(table[f].sum()) if f in table else 0.0
        if total <= 0:
            continue
        top = table.loc[table[f].idxmax()]
        others = table.loc[table["reservataire"] != top["reservataire"]]
        weight = others["demandeurs"].to_numpy(dtype=float)
        rest = (float(np.nansum(others[f"acceptation_{f}"].to_numpy() * weight) / weight.sum())
                if weight.sum() > 0 else float("nan"))
        why = (f"ses demandeurs l'acceptent à {fr_percent(top[f'acceptation_{f}'])} en moyenne"
               + (f" (ceux des autres réservataires : {fr_percent(rest)})" if np.isfinite(rest) else "")
               + f" ; son vivier compte {fr_percent(top['part_q1'])} de ménages du 1er quartile")
        name = "logements de financement ancien" if f == "autre" else f
        out.append(f"Les {name} : {fr_number(top[f])} sur {fr_number(total)} vont à "
                   f"{noms.reservataire(top['reservataire'])} — {why}.")
    return out
