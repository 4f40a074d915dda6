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


def acceptance_of(instance: Instance, quartile: pd.Series, financement: pd.Series) -> np.ndarray:
    """a(q, f) per row; a blank financement (cell units: every financement alike) takes the
    quartile's rate, which is then the same for every financement."""
    rates = instance.acceptance()
    common = {q: rates[(q, "PLUS")] for q, _ in rates}
    return np.fromiter((rates[(q, f)] if isinstance(f, str) and f else common[q]
                        for q, f in zip(quartile, financement)), dtype=float, count=len(quartile))


def letting_coefficients(instance: Instance, reservataires: pd.DataFrame, flows: pd.DataFrame) -> pd.DataFrame:
    """The flows with `acceptation`, `directe`, `coef` (directe: y ≤ coef·X) and `inverse`
    (déléguée: Σ y·inverse ≤ X). Flows that can never be let (a = 0) are dropped."""
    flows = flows.copy()
    rows = {r.id: r for r in instance.reservataires}
    ids = reservataires["id"].to_numpy()[flows["r"].to_numpy()]
    flows["directe"] = np.array([rows[i].gestion == "directe" for i in ids], dtype=bool)
    n = np.array([rows[i].nombre_candidats for i in ids], dtype=float)
    a = acceptance_of(instance, flows["quartile"], flows["financement"])
    flows["acceptation"] = a
    demand = flows["demandeurs"].to_numpy(dtype=float)
    link_total = pd.Series(demand).groupby(flows["link"].to_numpy()).transform("sum").to_numpy()
    share = np.divide(demand, link_total, out=np.zeros(len(flows)), where=link_total > 0)
    mean = pd.Series(share * a).groupby(flows["link"].to_numpy()).transform("sum").to_numpy()
    per_proposal = np.divide(letting_probability(mean, n), mean, out=n.copy(), where=mean > 0)
    flows["coef"] = share * a * per_proposal
    p_let = letting_probability(a, n)
    flows["inverse"] = np.divide(1.0, p_let, out=np.zeros(len(flows)), where=p_let > 0)
    keep = a > 0
    return flows.loc[keep].reset_index(drop=True)

