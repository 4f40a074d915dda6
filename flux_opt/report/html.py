"""HTML pages from jinja2 templates: one base layout and one stylesheet for every report.

Python computes the tables (already French-formatted cells); the templates in
`report/templates/` only lay them out. Pages stay one self-contained file: the
stylesheet is inlined, bar charts are HTML (`BarChart`) and other plots are embedded as base64 PNG.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import ClassVar
from datetime import datetime
from functools import cache
from importlib.metadata import PackageNotFoundError, version

import jinja2
from markupsafe import Markup, escape
import pandas as pd


@dataclass(frozen=True)
class Cell:
    text: str
    css: str = ""  # class of the <td>: "num" (right-aligned), "pos"/"neg" (signed gaps)


# The parts of a section, in reading order; `kind` tells the template which macro lays it out.

@dataclass(frozen=True)
class HtmlTable:
    columns: list[str]
    rows: list[list[Cell]]
    caption: str = ""
    more: str = ""  # a note under the table (rows left out…)
    kind: ClassVar[str] = "table"

    def numeric(self, i: int) -> bool:
        """A column of figures gets a right-aligned heading, like its cells."""
        return bool(self.rows) and all(row[i].css for row in self.rows)

    def body(self) -> Markup:
        """The rows, escaped: `<tr><td class="num">1 234</td>…</tr>`, one line each (written here
        rather than by a loop in the template: a national batch lays out millions of cells)."""
        return Markup("".join([
            "<tr>" + "".join([f'<td class="{escape(c.css)}">{escape(c.text)}</td>' if c.css else f"<td>{escape(c.text)}</td>"
                              for c in row]) + "</tr>\n" for row in self.rows]))


@dataclass(frozen=True)
class Figure:
    png: str  # base64
    alt: str
    kind: ClassVar[str] = "figure"


@dataclass(frozen=True)
class Bar:
    """One row of a bar chart: its bars (one per line, each a list of (start, width, colour) in %
    of the scale; colour: a class of style.css), the figure written beside, an optional mark."""
    label: str
    lines: list[list[tuple[float, float, str]]]
    text: str = ""
    marker: float | None = None  # % of the scale: a minimum
    alert: bool = False  # the figure in red (a gap, a rule not held): a bar of width 0 still shows it


@dataclass(frozen=True)
class BarChart:
    """Horizontal bars drawn by the page (HTML and CSS): sharp in print, no image to render."""
    title: str
    bars: list[Bar]
    legend: list[tuple[str, str]]  # (colour, what it means)
    axis: str  # the unit of the scale
    ticks: list[tuple[float, str]]  # (% of the scale, label)
    kind: ClassVar[str] = "bars"


@dataclass(frozen=True)
class Paragraph:
    text: str
    css: str = ""  # "note": a muted remark
    kind: ClassVar[str] = "paragraph"


@dataclass(frozen=True)
class Bullets:
    items: list[tuple[str, str]]  # (text, css of the <li>: "" or "bad")
    css: str = ""  # class of the <ul>: "alertes" for warnings
    kind: ClassVar[str] = "bullets"


@dataclass(frozen=True)
class Cards:
    cards: list[tuple[str, str, str]]  # (figure, label, css: "" / "good" / "bad")
    kind: ClassVar[str] = "cards"


@dataclass(frozen=True)
class Folded:
    summary: str  # shown; the table unfolds on a click
    table: HtmlTable
    kind: ClassVar[str] = "folded"


@dataclass(frozen=True)
class Section:
    title: str
    parts: list = field(default_factory=list)
    id: str = ""


def bullets(texts: Iterable[str], css: str = "") -> Bullets:
    return Bullets([(str(t), "") for t in texts], css)


def html_table(frame: pd.DataFrame, cell: Callable[[str, object], Cell], caption: str = "",
               more: str = "") -> HtmlTable:
    """Lay a DataFrame out as cells; `cell(column, value)` does the French formatting."""
    columns = [str(c) for c in frame.columns]
    rows = [[cell(c, v) for c, v in zip(columns, row)] for row in frame.itertuples(index=False, name=None)]
    return HtmlTable(columns, rows, caption, more)


def figure(png: bytes | str, alt: str) -> Figure:
    """A plot to embed; accepts raw PNG bytes or its base64 text."""
    return Figure(png if isinstance(png, str) else base64.b64encode(png).decode("ascii"), alt)


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("flux_opt.report", "templates"),
                              autoescape=jinja2.select_autoescape(["html"], default=True),
                              trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)


@cache
def _release() -> str:
    """The installed version, read once per process (every page's footer shows it)."""
    try:
        return version("flux-opt")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "?"


def _footer() -> str:
    return f"flux-opt {_release()} — généré le {datetime.now().strftime('%d/%m/%Y à %H:%M')}"


def render(template: str, banner: str | None = None, **context) -> str:
    """Render one page of `report/templates/` with the shared footer (version, date of the run);
    `banner` (a plan outside the law) is shown at the top of the page."""
    return _environment().get_template(template).render(footer=_footer(), banner=banner, **context)

