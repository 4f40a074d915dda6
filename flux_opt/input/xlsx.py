"""Read an instance stored as one .xlsx workbook (one sheet per CSV file, sheet `parametres`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flux_opt.errors import InvalidInput, InputProblem
from flux_opt.input.raw import REQUIRED_TABLES, TABLES, RawInstance, RawTable


def _cell_text(value) -> str:
    """Render a cell as the string a CSV export would hold (1.0 → "1")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value).strip()


CODE_WIDTHS = {"commune": 5, "epci": 9, "departement": 2}


def _code_text(column: str, value) -> str:
    """Excel stores 01001 typed as a number as 1001: give a code column its leading zeros back."""
    width = CODE_WIDTHS.get(column)
    if width and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(int(value)).zfill(width)
    return _cell_text(value)


def read_workbook(path: Path, required: tuple[str, ...] = REQUIRED_TABLES):
    from openpyxl import load_workbook  # lazy: openpyxl only for a .xlsx instance


    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a corrupt file
        raise InvalidInput([InputProblem(path.name, None, None, f"classeur illisible ({exc})")]) from exc
    problems: list[InputProblem] = []
    tables: dict[str, RawTable] = {}
    for name in TABLES:
        if name not in workbook.sheetnames:
            if name in required:
                problems.append(InputProblem(f"{path.name}, feuille {name}", None, None, "feuille obligatoire manquante"))
            continue
        rows = list(workbook[name].iter_rows(values_only=True))
        columns = [_cell_text(c) for c in rows[0]] if rows else []
        table = RawTable(f"{path.name}, feuille {name}", columns=[c for c in columns if c])
        for number, row in enumerate(rows[1:], start=2):
            cells = [_code_text(columns[i] if i < len(columns) else "", v) for i, v in enumerate(row)]
            if not any(cells):
                continue
            table.rows.append({col: cells[i] if i < len(cells) else "" for i, col in enumerate(columns) if col})
            table.lines.append(number)
        tables[name] = table
    parametres: dict = {}
    if "parametres" not in workbook.sheetnames:
        problems.append(InputProblem(f"{path.name}, feuille parametres", None, None, "feuille obligatoire manquante"))
    else:
        rows = list(workbook["parametres"].iter_rows(values_only=True))
        for number, row in enumerate(rows[1:], start=2):
            key, value = (_cell_text(row[0]), row[1] if len(row) > 1 else None) if row else ("", None)
            if not key:
                continue
            if "." not in key:
                problems.append(InputProblem(f"{path.name}, feuille parametres", number, "cle",
                                         f"clé « {key} » sans section (attendu section.cle, ex. regles.prefet_taux)"))
                continue
            section, name = key.split(".", 1)
            parametres.setdefault(section, {})[name] = _param_value(section, name, value)
    workbook.close()
    if problems:
        raise InvalidInput(problems)
    return RawInstance(path, parametres, f"{path.name}, feuille parametres", tables)


def _param_value(section: str, name: str, value):
    """TOML lists are written `a;b` in the sheet; codes stay strings."""
    if section == "cia" and name == "epci":
        return [v.strip() for v in _cell_text(value).split(";") if v.strip()]
    if isinstance(value, float) and value.is_integer() and section in ("instance",):
        return str(int(value)) if name == "departement" else int(value)
    if section == "instance" and name == "departement":
        return _cell_text(value)
    return value
