"""Turn a DataFrame into a rich Table (French headings are the caller's)."""

from __future__ import annotations

import pandas as pd
from rich.table import Table


def frame_table(frame: pd.DataFrame, title: str, max_rows: int = 40) -> Table:
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column), justify="right" if pd.api.types.is_numeric_dtype(frame[column]) else "left")
    for row in frame.head(max_rows).itertuples(index=False):
        table.add_row(*[f"{v:.3g}" if isinstance(v, float) else str(v) for v in row])
    if len(frame) > max_rows:
        table.caption = f"{len(frame) - max_rows} lignes de plus non affichées"
    return table
