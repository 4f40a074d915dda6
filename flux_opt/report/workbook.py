"""An Excel workbook that can be sent as is: one sheet per table, figures stored as numbers with a
number format (Excel shows them in the reader's locale: 1 234,5 and 25,1 % in French), rounded when
written (no 4.898572000000001), a bold frozen header row with filters, readable column widths, a bold
total line when the table has one, and every sheet set up to print: A4 landscape, fitted to the page
width, the header row repeated on every page, page numbers in the footer.

Written with xlsxwriter: it streams cells straight to the file, about ten times faster than openpyxl
on the plan and attribution sheets of a large parc.

**Every workbook the project writes is opened here** — `new_workbook` (xlsxwriter) or `excel_writer`
(pandas `to_excel`) — never with `xlsxwriter.Workbook`, `openpyxl.Workbook` or `pd.ExcelWriter` directly.
Both pass `SAFE_OPTIONS`: text from the partners' files (a réservataire named `=cmd|' /C calc'!A0`, a
commune `=HYPERLINK(…)`, a scenario `+1`) is stored as text, never as a formula, a link or a number —
the file a bailleur opens or sends never runs what a data file held (tests/test_injection.py).
"""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import xlsxwriter

from flux_opt.report.tables import PERCENT, Share, Table

INTEGER, DECIMAL, SHARE = "#,##0", "#,##0.0#", "0.0%"
DIGITS = {INTEGER: 0, DECIMAL: 2, SHARE: 4}  # decimals kept when writing a value of each format
MAX_WIDTH, SAMPLE = 60, 300  # widest column (characters); rows read to size a column
SHEET_MAX = 31  # Excel's limit on a sheet name
A4 = 9  # xlsxwriter's paper code


# Text stays text: no formula (=…), no link (http://…), no number read from a string; NaN/inf as #N/A
SAFE_OPTIONS = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False,
                "nan_inf_to_errors": True}


def new_workbook(target) -> xlsxwriter.Workbook:
    """An xlsxwriter workbook on a path or a BytesIO, with SAFE_OPTIONS (the only way to open one)."""
    options = dict(SAFE_OPTIONS, in_memory=isinstance(target, io.BytesIO))
    return xlsxwriter.Workbook(target, options)


def excel_writer(path) -> pd.ExcelWriter:
    """A pandas ExcelWriter (xlsxwriter engine) with SAFE_OPTIONS, for `frame.to_excel(writer, …)`;
    `writer.sheets[name]` are xlsxwriter worksheets (`set_column(j, j, width, writer.book.add_format(…))`)."""
    return pd.ExcelWriter(path, engine="xlsxwriter", engine_kwargs={"options": dict(SAFE_OPTIONS)})


def workbook_bytes(tables: list[Table], banner: str | None = None) -> bytes:
    """The .xlsx file of the tables, in memory (the caller writes it atomically with the plan).
    `banner` (a plan outside the law) opens the title of every sheet."""
    buffer = io.BytesIO()
    book = new_workbook(buffer)
    styles = _styles(book)
    for table, name in zip(tables, sheet_names([t.sheet for t in tables])):
        _write_sheet(book.add_worksheet(name), table, styles, banner)
    book.close()
    return buffer.getvalue()


def _styles(book) -> dict:
    head = {"bold": True, "bg_color": "#E6ECF2", "text_wrap": True, "valign": "top", "border": 1}
    return {
        "title": book.add_format({"bold": True, "font_size": 13, "text_wrap": True, "valign": "top"}),
        "preamble": book.add_format({"valign": "top", "text_wrap": True}),
        "head": book.add_format(head),
        "text": book.add_format({"valign": "top"}),
        INTEGER: book.add_format({"num_format": INTEGER}),
        DECIMAL: book.add_format({"num_format": DECIMAL}),
        SHARE: book.add_format({"num_format": SHARE}),
        "total": book.add_format({"bold": True, "top": 1, "num_format": INTEGER}),
        "total " + SHARE: book.add_format({"bold": True, "top": 1, "num_format": SHARE}),
        "total " + DECIMAL: book.add_format({"bold": True, "top": 1, "num_format": DECIMAL}),
    }


# Words a sheet name can lose first, then long words shortened, so that a name stays readable.
_SMALL_WORDS = {"de", "du", "des", "la", "le", "les", "un", "une", "et", "à", "au", "aux", "en", "par", "pour",
                "sur", "dans", "-", "–", "—"}


def short_sheet_name(name: str, limit: int = SHEET_MAX) -> str:
    """A sheet name within Excel's rules, shortened by meaning, not cut mid-word:
    forbidden characters []:*?/\\ become spaces; past 31 characters, the small words go
    (« de », « du », « l' »…), then the longest words after the first are abbreviated
    (« européenne » → « europ. »), then whole words from the end; never a trailing space."""
    words = re.sub(r"[\[\]:*?/\\]", " ", name).replace("(", " ").replace(")", " ").split()
    text = " ".join(words)
    if len(text) <= limit:
        return text or "Feuille"
    words = [words[0]] + [w for w in (re.split(r"['’]", w)[-1] for w in words[1:]) if w.lower() not in _SMALL_WORDS]
    stems, cut = list(words), [False] * len(words)

    def text() -> str:
        return " ".join(w + ("." if c else "") for w, c in zip(stems, cut))

    while len(text()) > limit:  # the longest word after the first loses a letter, down to 4
        longest = max(range(1, len(stems)), key=lambda i: (len(stems[i]), i), default=None)
        if longest is None or len(stems[longest]) <= 4:
            break
        stems[longest], cut[longest] = stems[longest][:-1 if cut[longest] else -2], True
    words = text().split()
    while len(" ".join(words)) > limit and len(words) > 1:
        words.pop()
    return " ".join(words)[:limit].rstrip() or "Feuille"


def sheet_names(names: list[str]) -> list[str]:
    """One valid sheet name per table, unique whatever the case: a repeated short name gets « (2) »."""
    used: set[str] = set()
    out = []
    for name in names:
        base = short_sheet_name(name)
        candidate, k = base, 2
        while candidate.lower() in used:
            suffix = f" ({k})"
            candidate, k = short_sheet_name(name, SHEET_MAX - len(suffix)) + suffix, k + 1
        used.add(candidate.lower())
        out.append(candidate)
    return out


def number_format(heading: str, values: pd.Series, shares: tuple[str, ...] = ()) -> str | None:
    """The number format of a column: shares in %, whole numbers, decimals; None for text."""
    if heading in PERCENT or heading in shares:
        return SHARE
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return None
    if pd.api.types.is_integer_dtype(values):
        return INTEGER
    finite = values.dropna().to_numpy(dtype=float)
    return INTEGER if len(finite) and np.all(np.abs(finite - np.round(finite)) < 1e-6) \
        and np.all(np.abs(finite) < 1e15) else DECIMAL


def rounded(value, fmt: str | None):
    """A value as written: numbers rounded to what their format shows (a share to 0.01 %), whole
    numbers as integers; text and missing values unchanged."""
    if value is None or isinstance(value, (bool, np.bool_, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return None
        if isinstance(value, Share) or fmt == SHARE:
            return round(float(value), 4)
        digits = DIGITS.get(fmt, 2)
        return int(round(value)) if digits == 0 else round(float(value), digits)
    return value


def _cell_format(value, fmt: str | None) -> str | None:
    """A mixed column (the synthesis' « Valeur ») gets each cell's own format."""
    if fmt is not None:
        return fmt
    if isinstance(value, Share):
        return SHARE
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return INTEGER
    if isinstance(value, (float, np.floating)):
        return INTEGER if float(value).is_integer() else DECIMAL
    return None


def _write_sheet(sheet, table: Table, styles: dict, banner: str | None = None) -> None:
    frame = table.frame
    preamble = ([banner] if banner else []) + list(table.preamble)  # a plan outside the law: first line
    top = len(preamble)
    head = top + 1
    rows = len(frame) - 1 if table.total and len(frame) else len(frame)  # the body: without the total line
    columns = [frame.iloc[:, j] for j in range(len(frame.columns))]
    widths = [_width(str(h), _first(column, SAMPLE).tolist()) for h, column in zip(frame.columns, columns)]
    for i, line in enumerate(preamble):
        _write_across(sheet, i, line, styles["preamble"], widths)
    _write_across(sheet, top, table.title + (f" — {table.note}" if table.note else ""), styles["title"], widths)
    formats = []
    for j, (heading, column) in enumerate(zip(frame.columns, columns)):
        values = _first(column, rows)
        fmt = number_format(str(heading), values, table.shares)
        formats.append(fmt)
        sheet.write_string(head, j, str(heading), styles["head"])
        if fmt is not None and pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            _write_numbers(sheet, head + 1, j, values, fmt, styles[fmt])
            sample = _cells(_first(values, SAMPLE))  # only the rows that size the column
        else:
            sample = _cells(values)
            _write_cells(sheet, head + 1, j, sample, fmt, styles)
        sheet.set_column(j, j, _width(str(heading), sample))
    last = head + len(frame)
    if table.total and len(frame):
        sheet.set_row(last, None, styles["total"])
        for j, fmt in enumerate(formats):
            value = frame.iloc[-1, j]
            if pd.notna(value):
                value = rounded(value.item() if hasattr(value, "item") else value, fmt or INTEGER)
                style = styles["total " + fmt] if fmt in (SHARE, DECIMAL) else styles["total"]
                sheet.write(last, j, value, style)
    sheet.freeze_panes(head + 1, 0)
    if len(frame.columns):
        sheet.autofilter(head, 0, head + rows, len(frame.columns) - 1)
    _print_setup(sheet, head, last, len(frame.columns))


def _first(values: pd.Series, n: int) -> pd.Series:
    """The first `n` values (the column itself when it has no more: a slice costs more than a small sheet)."""
    return values if len(values) <= n else values.iloc[:n]


def _cells(values: pd.Series) -> list:
    """A column's values as Python objects, a missing value (NaN, NA, None) as None."""
    cells = values.tolist()
    missing = values.isna().to_numpy()
    if missing.any():
        cells = [None if m else v for v, m in zip(cells, missing.tolist())]
    return cells


def _write_numbers(sheet, first_row: int, col: int, values: pd.Series, fmt: str, style) -> None:
    """A numeric column with one format: missing values skipped at once, then each figure rounded
    as `rounded` does (most cells of a report are in such columns: plan, attributions, demand)."""
    numbers = values.to_numpy(dtype=float, na_value=np.nan)
    keep = np.flatnonzero(np.isfinite(numbers)).tolist()
    digits = DIGITS[fmt]
    write = sheet.write_number
    if digits == 0:
        for i, value in zip(keep, np.round(numbers[keep]).tolist()):
            write(first_row + i, col, int(value), style)
    else:
        for i, value in zip(keep, numbers[keep].tolist()):
            write(first_row + i, col, round(value, digits), style)


def _write_cells(sheet, first_row: int, col: int, cells: list, fmt: str | None, styles: dict) -> None:
    """A column of text, or of mixed values (the synthesis' « Valeur »): each cell its own format."""
    text_style = styles[fmt] if fmt else styles["text"]
    for i, value in enumerate(cells, start=first_row):
        if isinstance(value, str):
            if value:
                sheet.write_string(i, col, value, text_style)
            else:
                sheet.write_blank(i, col, None, text_style)
            continue
        cell_fmt = _cell_format(value, fmt)
        value = rounded(value, cell_fmt)
        if value is not None:
            sheet.write(i, col, value, styles[cell_fmt] if cell_fmt else styles["text"])


def _write_across(sheet, row: int, text: str, style, widths: list[float]) -> None:
    """A line of text over the table's width (merged cells), wrapped when longer: it prints whole."""
    if len(widths) < 2 or not text:
        sheet.write_string(row, 0, text, style)
        return
    sheet.merge_range(row, 0, row, len(widths) - 1, text, style)
    lines = -(-len(text) // max(1, int(sum(widths))))
    if lines > 1:
        sheet.set_row(row, 15 * lines + 2)


def _print_setup(sheet, header_row: int, last_row: int, columns: int) -> None:
    """A4 landscape, the width of the table on one page (as many pages down as it takes), the header
    row repeated on each page, page numbers at the foot."""
    sheet.set_paper(A4)
    sheet.set_landscape()
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(header_row)
    sheet.set_margins(left=0.5, right=0.5, top=0.6, bottom=0.6)
    sheet.set_footer("&L&A&RPage &P / &N")
    sheet.print_area(0, 0, max(last_row, header_row), max(columns, 1) - 1)


def _width(heading: str, cells: list) -> float:
    sample = [len(heading) * 0.9] + [len(v) if isinstance(v, str) else len(_shown(v)) for v in cells[:SAMPLE]]
    return float(min(MAX_WIDTH, max(8, max(sample) + 2)))


def _shown(value) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    return "" if value is None else str(value)
