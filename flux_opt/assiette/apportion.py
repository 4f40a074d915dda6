"""Largest-remainder apportionment: integers that sum exactly to a total."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np


NOISE = 1e-9  # binary noise: 0.3 × 650 = 194.99999999999997


def round_half_up(value: float) -> int:
    """Round to the nearest integer, halves up (1 500.5 → 1 501), tolerant to binary noise."""
    return int(math.floor(value + 0.5 + NOISE))


def cap(rate: float, base: float) -> int:
    """A legal cap "au plus rate × base" in whole dwellings: ⌊rate × base⌋, never rounded up
    (CCH R.441-5, R.441-5-2: 30 % of 379 = 113.7 allows 113)."""
    return int(math.floor(rate * base + NOISE))


def minimum(rate: float, base: float) -> int:
    """A legal minimum "au moins rate × base" in whole dwellings: ⌈rate × base⌉ (CCH R.441-5-2 II:
    the préfet's hors-QPV share "ne peut être inférieure à 30 %")."""
    return int(math.ceil(rate * base - NOISE))


def largest_remainder(values: np.ndarray, total: int,
                      may_round_up: Callable[[int, np.ndarray], bool] | None = None) -> np.ndarray:
    """Integers n_i with Σ n_i = total, n_i ∈ {⌊v_i⌋, ⌊v_i⌋ + 1}, the extra units to the largest
    fractional parts (ties: first index first). `may_round_up(i, current)` (optional) can refuse to
    round item i up (a cap); the unit then goes to the next largest remainder."""
    values = np.asarray(values, dtype=float)
    floors = np.floor(values + NOISE).astype(np.int64)
    result = floors.copy()
    missing = int(total - floors.sum())
    if missing <= 0:
        return result
    remainders = values - floors
    order = np.lexsort((np.arange(len(values)), -np.round(remainders, 12)))
    for i in order:
        if missing == 0:
            break
        if may_round_up is not None and not may_round_up(i, result):
            continue
        result[i] += 1
        missing -= 1
    if missing > 0:  # caps too tight: give the rest in remainder order regardless (conflict shown later)
        for i in order[:missing]:
            result[i] += 1
    return result
