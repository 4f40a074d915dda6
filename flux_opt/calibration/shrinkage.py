"""Beta-binomial empirical Bayes: a rate measured on a small count, pulled towards its parent's rate.

A cell has k events out of n trials; its rate is drawn from Beta(m·p, m·(1−p)) around the parent rate p
(a wider area, or a default). The prior strength m (in pseudo-trials) is estimated by the method of
moments over the cells of a level; the posterior is Beta(k + m·p, n − k + m·(1−p)): mean
(k + m·p)/(n + m), interval from its quantiles (scipy.stats.beta.ppf). models/rpls.md §3.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import beta

LEVEL = 0.95  # two-sided interval
RHO_BOUNDS = (1e-4, 0.999)  # intra-cell correlation 1/(m+1): m between 0.001 and 9 999 pseudo-trials
FALLBACK = 10.0  # m when fewer than two cells (with a parent strictly between 0 and 1) can measure it


def prior_strength(k: np.ndarray, n: np.ndarray, parent: np.ndarray) -> float:
    """m by the method of moments: with r = k/n, E[(r − p)²] = p(1−p)·(1/n + (1 − 1/n)·ρ), ρ = 1/(m+1);
    ρ estimated with weights n over the cells with n ≥ 2, clipped to RHO_BOUNDS; FALLBACK when fewer than
    two cells can say."""
    k, n, p = (np.asarray(a, dtype=float) for a in (k, n, parent))
    use = (n >= 2) & (p > 0) & (p < 1)
    if use.sum() < 2:
        return FALLBACK  # nothing to measure the spread on
    k, n, p = k[use], n[use], p[use]
    var = p * (1 - p)
    excess = np.sum(n * ((k / n - p) ** 2 - var / n))
    scale = np.sum(n * var * (1 - 1 / n))
    rho = float(np.clip(excess / scale, *RHO_BOUNDS)) if scale > 0 else RHO_BOUNDS[0]
    return 1.0 / rho - 1.0


def posterior(k: np.ndarray, n: np.ndarray, parent: np.ndarray, m: float | np.ndarray,
              level: float = LEVEL, parent_variance: np.ndarray | float = 0.0) -> dict[str, np.ndarray]:
    """Posterior mean, interval, variance and the parent's weight w = m/(n+m) of every cell. When the parent
    rate is itself an estimate, its variance passes on as w²·Var(parent): the interval is that of the Beta law
    with the posterior mean and this total variance."""
    k, n, p = (np.asarray(a, dtype=float) for a in (k, n, parent))
    p = np.clip(p, 1e-6, 1 - 1e-6)
    a, b = k + m * p, n - k + m * (1 - p)
    mean, weight = a / (a + b), m / (n + m)
    variance = a * b / ((a + b) ** 2 * (a + b + 1)) + weight ** 2 * np.asarray(parent_variance, dtype=float)
    size = np.maximum(mean * (1 - mean) / np.maximum(variance, 1e-12) - 1, 1e-6)  # a + b of the matching Beta
    tail = (1 - level) / 2
    return {"estimate": mean, "low": beta.ppf(tail, mean * size, (1 - mean) * size),
            "high": beta.ppf(1 - tail, mean * size, (1 - mean) * size), "weight": weight, "variance": variance}
