"""The tables of a report, independent of how they are shown (HTML page, Excel sheet, terminal)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from rich.table import Table as RichTable

# Columns holding shares (0.251): shown as 25,1 % on the page, stored as numbers with a % format in Excel.
# The rate at which a réservataire's pools accept a proposal of each financement (explanation/pools.py).
POOL_ACCEPTANCE = {"PLAI": "Acceptation d'un PLAI", "PLUS": "Acceptation d'un PLUS", "PLS": "Acceptation d'un PLS",
                   "autre": "Acceptation d'un ancien"}
PERCENT = ("Adéquation", "Part prévue", "Part minimale", "Part hors QPV", "Part du 1er quartile",
           "Part des publics prioritaires", "% du flux", *POOL_ACCEPTANCE.values())


@dataclass
class Table:
    sheet: str  # Excel sheet name (made valid and unique when written)
    title: str
    frame: pd.DataFrame  # French headings
    note: str = ""
    total: bool = False  # the last line is a total (bold, outside the filter)
    preamble: tuple[str, ...] = ()  # lines above the title (an annex's réservataire, year, legal basis…)
    shares: tuple[str, ...] = ()  # headings of share columns besides PERCENT (0.25 read as 25,0 %)


class Share(float):
    """A share (0.917) in a column that mixes figures (the synthesis' « Valeur »): a percentage cell."""


def frame_table(frame: pd.DataFrame, title: str, max_rows: int = 40) -> RichTable:
    """A DataFrame as a rich table for the terminal (French headings are the caller's)."""
    table = RichTable(title=title)
    for column in frame.columns:
        table.add_column(str(column), justify="right" if pd.api.types.is_numeric_dtype(frame[column]) else "left")
    for row in frame.head(max_rows).itertuples(index=False):
        table.add_row(*[f"{v:.3g}" if isinstance(v, float) else str(v) for v in row])
    if len(frame) > max_rows:
        table.caption = f"{len(frame) - max_rows} lignes de plus non affichées"
    return table
