"""A small labelled linear program: variable blocks, named constraint families, sparse rows.

The family functions (families.py) describe each rule once, vectorised, as sparse
triplets; the backends render the same program for HiGHS (highs_backend.py, fast)
or as a Pyomo model (pyomo_backend.py). Elastic slacks are added here, the same
way for every hard family, so that "violée" means the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

INF = float("inf")


@dataclass
class VariableBlock:
    name: str
    start: int
    labels: pd.DataFrame  # one row per variable

    @property
    def size(self) -> int:
        return len(self.labels)

    @property
    def columns(self) -> np.ndarray:
        return np.arange(self.start, self.start + self.size)


@dataclass
class ConstraintBlock:
    """Rows of one constraint family (a family may have several blocks)."""

    famille: str
    labels: pd.DataFrame  # one row per constraint row: at least `portee`
    rows: np.ndarray  # triplets: local row index,
    cols: np.ndarray  # global column index,
    vals: np.ndarray  # coefficient
    lower: np.ndarray
    upper: np.ndarray
    nature: str  # "dure" (hard, elastic), "structurelle" (hard, always feasible), "souple" (soft)
    start: int = 0  # first global row index
    elastic_lower: VariableBlock | None = None  # slack added when the row is below its lower bound
    elastic_upper: VariableBlock | None = None  # slack removed when the row is above its upper bound

    @property
    def size(self) -> int:
        return len(self.lower)


@dataclass
class LinearProgram:
    """maximise cost·v subject to lower ≤ A v ≤ upper, bounds, integrality."""

    variables: list[VariableBlock] = field(default_factory=list)
    constraints: list[ConstraintBlock] = field(default_factory=list)
    _lb: list[np.ndarray] = field(default_factory=list)
    _ub: list[np.ndarray] = field(default_factory=list)
    _cost: list[np.ndarray] = field(default_factory=list)
    _integer: list[np.ndarray] = field(default_factory=list)
    num_cols: int = 0
    num_rows: int = 0

    def add_variables(self, name: str, labels: pd.DataFrame, lower=0.0, upper=INF, cost=0.0,
                      integer: bool = False) -> VariableBlock:
        n = len(labels)
        block = VariableBlock(name, self.num_cols, labels.reset_index(drop=True))
        self._lb.append(np.broadcast_to(np.asarray(lower, dtype=float), (n,)).copy())
        self._ub.append(np.broadcast_to(np.asarray(upper, dtype=float), (n,)).copy())
        self._cost.append(np.broadcast_to(np.asarray(cost, dtype=float), (n,)).copy())
        self._integer.append(np.full(n, integer))
        self.variables.append(block)
        self.num_cols += n
        return block

    def add_constraints(self, famille: str, labels: pd.DataFrame, rows, cols, vals, lower, upper,
                        nature: str = "dure", penalty: float | np.ndarray = 0.0) -> ConstraintBlock:
        """Add rows `lower ≤ Σ vals·v[cols] ≤ upper`. A hard (`dure`) family gets one elastic
        variable per violable side, with cost −penalty in the (maximised) objective."""
        n = len(labels)
        lower = np.broadcast_to(np.asarray(lower, dtype=float), (n,)).copy()
        upper = np.broadcast_to(np.asarray(upper, dtype=float), (n,)).copy()
        block = ConstraintBlock(famille, labels.reset_index(drop=True), np.asarray(rows, dtype=np.int64),
                                np.asarray(cols, dtype=np.int64), np.asarray(vals, dtype=float),
                                lower, upper, nature, start=self.num_rows)
        self.constraints.append(block)
        self.num_rows += n
        if nature == "dure":
            self._add_elastic(block, penalty)
        return block

    def _add_elastic(self, block: ConstraintBlock, penalty: float) -> None:
        extra_rows, extra_cols, extra_vals = [], [], []
        for side, sign in (("lower", 1.0), ("upper", -1.0)):
            bound = block.lower if side == "lower" else block.upper
            rows = np.flatnonzero(np.isfinite(bound))
            if len(rows) == 0:
                continue
            labels = block.labels.iloc[rows].assign(famille=block.famille, cote=side)
            cost = -np.broadcast_to(np.asarray(penalty, dtype=float), (block.size,))[rows]
            slack = self.add_variables(f"elastique_{block.famille}_{side}", labels, 0.0, INF, cost)
            setattr(block, f"elastic_{side}", slack)
            slack.labels["ligne"] = rows
            extra_rows.append(rows)
            extra_cols.append(slack.columns)
            extra_vals.append(np.full(len(rows), sign))
        if extra_rows:
            block.rows = np.concatenate([block.rows, *extra_rows])
            block.cols = np.concatenate([block.cols, *extra_cols])
            block.vals = np.concatenate([block.vals, *extra_vals])

    # ------------------------------------------------------------------ assembled arrays

    @property
    def col_lower(self) -> np.ndarray:
        return np.concatenate(self._lb) if self._lb else np.zeros(0)

    @property
    def col_upper(self) -> np.ndarray:
        return np.concatenate(self._ub) if self._ub else np.zeros(0)

    @property
    def cost(self) -> np.ndarray:
        return np.concatenate(self._cost) if self._cost else np.zeros(0)

    @property
    def integer(self) -> np.ndarray:
        return np.concatenate(self._integer) if self._integer else np.zeros(0, dtype=bool)

    @property
    def elastic(self) -> np.ndarray:
        """True for the elastic slack columns of hard families."""
        return np.concatenate([np.full(b.size, b.name.startswith("elastique_")) for b in self.variables]) \
            if self.variables else np.zeros(0, dtype=bool)

    @property
    def row_lower(self) -> np.ndarray:
        return np.concatenate([b.lower for b in self.constraints]) if self.constraints else np.zeros(0)

    @property
    def row_upper(self) -> np.ndarray:
        return np.concatenate([b.upper for b in self.constraints]) if self.constraints else np.zeros(0)

    def matrix(self) -> sparse.csc_matrix:
        """The constraint matrix, rows in family order (duplicate triplets are summed)."""
        if not self.constraints:
            return sparse.csc_matrix((0, self.num_cols))
        rows = np.concatenate([b.rows + b.start for b in self.constraints])
        cols = np.concatenate([b.cols for b in self.constraints])
        vals = np.concatenate([b.vals for b in self.constraints])
        return sparse.csc_matrix((vals, (rows, cols)), shape=(self.num_rows, self.num_cols))

    def mask(self, name: str) -> np.ndarray:
        """True for the columns of block `name` (all False if there is none)."""
        out = np.zeros(self.num_cols, dtype=bool)
        for b in self.variables:
            if b.name == name:
                out[b.columns] = True
        return out

    def block(self, name: str) -> VariableBlock:
        return next(b for b in self.variables if b.name == name)

    def set_column_bounds(self, block_name: str, lower=None, upper=None) -> None:
        """Replace the bounds of one variable block (scalar or one value per variable), e.g. the
        re-optimisation's x ≥ dwellings already oriented. None keeps the current bound."""
        i = next(k for k, b in enumerate(self.variables) if b.name == block_name)
        n = self.variables[i].size
        if lower is not None:
            self._lb[i] = np.broadcast_to(np.asarray(lower, dtype=float), (n,)).copy()
        if upper is not None:
            self._ub[i] = np.broadcast_to(np.asarray(upper, dtype=float), (n,)).copy()

    def families(self) -> list[str]:
        return list(dict.fromkeys(b.famille for b in self.constraints))
