"""The tables of a report, independent of how they are shown (HTML page, Excel sheet, terminal)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import pandas as pd
from rich import box
from rich.console import Group
from rich.text import Text
from rich.table import Table as RichTable

from flux_opt.explanation.sentences import fr_number

# Columns holding shares (0.251): shown as 25,1 % on the page, stored as numbers with a % format in Excel.
# The rate at which a réservataire's pools accept a proposal of each financement (explanation/pools.py).
POOL_ACCEPTANCE = {"PLAI": "Acceptation d'un PLAI", "PLUS": "Acceptation d'un PLUS", "PLS": "Acceptation d'un PLS",
                   "autre": "Acceptation d'un ancien"}
PERCENT = ("Adéquation", "Part prévue", "Part minimale", "Part hors QPV", "Part du 1er quartile",
           "Part des publics prioritaires", "% du flux", *POOL_ACCEPTANCE.values(),
           "Part de l'État", "Taux hors QPV", "Part des instances")  # the batch's pages (report/lot.py)


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


def frame_table(frame: pd.DataFrame, title: str, max_rows: int = 40) -> Group:
    """A DataFrame as rich tables for the terminal, every figure whole at 80 columns (French headings
    are the caller's)."""
    figures = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    cells = pd.DataFrame({c: [fr_number(v) if c in figures else str(v) for v in frame[c].head(max_rows)]
                          for c in frame.columns}, columns=frame.columns)
    parts: list = fitted_tables(cells, title, figures)
    if len(frame) > max_rows:
        parts.append(Text(f"{len(frame) - max_rows} lignes de plus non affichées", style="dim"))
    return Group(*parts)


WIDTH = 80  # the terminal the tables are laid out for


def _min_width(column: str, cells: pd.Series, figure: bool) -> int:
    """A figure column is as wide as its longest figure or heading word; a text column can wrap to 12."""
    longest = max([len(str(v)) for v in cells] or [1])
    word = max((len(w) for w in str(column).split()), default=1)
    return max(longest, word) if figure else min(12, max(longest, word))


def fitted_tables(cells: pd.DataFrame, title: str, figures: list[str], width: int = WIDTH) -> list[RichTable]:
    """A table of already formatted cells for the terminal, readable at `width` columns: figures never
    wrap nor get cut (headings wrap above them), names wrap; when the figures do not fit side by side,
    the table comes in parts (« (1 sur 2) »), its text columns repeated in each."""
    keys = [c for c in cells.columns if c not in figures]
    widths = {c: _min_width(c, cells[c], c in figures) + 2 for c in cells.columns}  # + the gap
    room = width - sum(widths[k] for k in keys)
    parts, current = [], []
    for c in [c for c in cells.columns if c in figures]:
        if current and sum(widths[x] for x in current) + widths[c] > room:
            parts.append(current)
            current = []
        current.append(c)
    parts.append(current)
    out = []
    for i, part in enumerate(parts, start=1):
        table = RichTable(title=title + (f" ({i} sur {len(parts)})" if len(parts) > 1 else ""), title_justify="left",
                          box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True)
        shown = [c for c in cells.columns if c in keys or c in part]  # the table's own order
        for c in shown:
            w = widths[c] - 2
            if c in figures:
                table.add_column("\n".join(textwrap.wrap(str(c), w)), justify="right", no_wrap=True, min_width=w)
            else:
                table.add_column(str(c), justify="left", overflow="fold", ratio=1, min_width=w)
        for row in cells[shown].itertuples(index=False):
            table.add_row(*[str(v) for v in row])
        out.append(table)
    return out
