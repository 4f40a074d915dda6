"""Expected lettings of an oriented dwelling (models/orientation.md §2, « Demande »).

A dwelling of financement f oriented to réservataire r in link group ℓ is proposed to up to
n = `candidats` households of r's pools for ℓ; a household of quartile q accepts with
probability a(q, f); the dwelling is let at the first acceptance, else it returns to the bailleur.

- Gestion directe: r proposes, its candidates are drawn in proportion to its pools (π_p). Each
  proposal is accepted with ā = Σ_p π_p a_p, so P(let) = 1 − (1 − ā)^n and the letting goes to
  pool p with probability π_p a_p / ā: y[p,ℓ] ≤ coef_p · X_ℓ, coef_p = π_p a_p (1 − (1 − ā)^n) / ā.
- Gestion déléguée: the bailleur picks the households among r's candidates, so it may favour a
  pool: a dwelling offered to pool p is let with P_p = 1 − (1 − a_p)^n, hence Σ_p y[p,ℓ] / P_p ≤ X_ℓ.

Both are linear in X (the pools' shares are data); the only approximation is that the shares do
not move as the pools empty during the year (y ≤ candidates caps each pool instead).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from flux_opt.input.schema import Instance


def letting_probability(acceptance: np.ndarray, candidats: np.ndarray) -> np.ndarray:
    """P(one of n independent proposals is accepted) = 1 − (1 − a)^n."""
    return 1.0 - (1.0 - acceptance) ** candidats


def letting_coefficients(instance: Instance, reservataires: pd.DataFrame, flows: pd.DataFrame,
                         mix: pd.DataFrame | None = None) -> pd.DataFrame:
    """The flows with `directe`, `coef` (directe: y ≤ coef·X) and `inverse` (déléguée:
    Σ y·inverse ≤ X). Flows whose link has no financement (units not split by financement)
    average the coefficients over `mix` (link, financement, part: the link's dwellings by
    financement). Flows that can never be let are dropped."""
    flows = flows.copy()
    rows = {r.id: r for r in instance.reservataires}
    ids = reservataires["id"].to_numpy()[flows["r"].to_numpy()]
    flows["directe"] = np.array([rows[i].gestion == "directe" for i in ids], dtype=bool)
    flows["n"] = np.array([rows[i].candidats_attendus for i in ids], dtype=float)
    flows["_flow"] = np.arange(len(flows))
    exact = flows["financement"].map(lambda f: isinstance(f, str) and f != "")
    parts = [flows.loc[exact].assign(part=1.0)]
    if mix is not None and (~exact).any():
        parts.append(flows.loc[~exact].drop(columns="financement").merge(mix, on="link"))
    by_f = pd.concat(parts, ignore_index=True)
    rates = instance.acceptance()
    a = np.fromiter((rates[(q, f)] for q, f in zip(by_f["quartile"], by_f["financement"])), dtype=float,
                    count=len(by_f))
    n = by_f["n"].to_numpy()
    group = pd.MultiIndex.from_arrays([by_f["link"], by_f["financement"]])
    demand = by_f["demandeurs"].to_numpy(dtype=float)
    total = pd.Series(demand, index=group).groupby(level=[0, 1]).transform("sum").to_numpy()
    share = np.divide(demand, total, out=np.zeros(len(by_f)), where=total > 0)
    mean = pd.Series(share * a, index=group).groupby(level=[0, 1]).transform("sum").to_numpy()
    per_proposal = np.divide(letting_probability(mean, n), mean, out=n.copy(), where=mean > 0)
    part = by_f["part"].to_numpy(dtype=float)
    coef = np.bincount(by_f["_flow"], weights=part * share * a * per_proposal, minlength=len(flows))
    p_let = np.bincount(by_f["_flow"], weights=part * letting_probability(a, n), minlength=len(flows))
    flows["coef"] = coef
    flows["inverse"] = np.divide(1.0, p_let, out=np.zeros(len(flows)), where=p_let > 0)
    return flows.loc[p_let > 0].drop(columns=["n", "_flow"]).reset_index(drop=True)
