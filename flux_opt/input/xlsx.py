"""Read an instance stored as one .xlsx workbook (one sheet per CSV file, sheet `parametres`)."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

from flux_opt.errors import InvalidInput, InputProblem
from flux_opt.input.raw import REQUIRED_TABLES, TABLES, UNDERSCORED, RawInstance, RawTable, unknown_tables

PARAMETRES = "parametres"
_DAMAGED = "réenregistrer le classeur depuis Excel ou LibreOffice"


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
        raise InvalidInput([InputProblem(path.name, None, None, f"classeur illisible (pas un .xlsx valide, ou "
                                         f"endommagé : {type(exc).__name__}) : {_DAMAGED}")]) from exc
    try:
        return _read_sheets(path, workbook, required)
    finally:
        workbook.close()


def _sheet_rows(path: Path, workbook, name: str) -> list[tuple]:
    """The values of a sheet; a damaged sheet (bad XML, a shared string that does not exist…) is
    refused in French, naming it."""
    try:
        return list(workbook[name].iter_rows(values_only=True))
    except Exception as exc:  # noqa: BLE001 - openpyxl and the XML parser raise many types
        raise InvalidInput([InputProblem(f"{path.name}, feuille {name}", None, None,
                                         f"feuille endommagée, illisible ({type(exc).__name__}) : {_DAMAGED}")]) from exc


def _read_sheets(path: Path, workbook, required: tuple[str, ...]) -> RawInstance:
    problems: list[InputProblem] = _uncached_formulas(path, workbook)
    tables: dict[str, RawTable] = {}
    for name in TABLES:
        if name not in workbook.sheetnames:
            if name in required:
                problems.append(InputProblem(f"{path.name}, feuille {name}", None, None, "feuille obligatoire manquante"))
            continue
        rows = _sheet_rows(path, workbook, name)
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
    source = f"{path.name}, feuille {PARAMETRES}"
    if PARAMETRES not in workbook.sheetnames:
        problems.append(InputProblem(source, None, None, "feuille obligatoire manquante"))
    else:
        seen: dict[str, int] = {}
        for number, row in enumerate(_sheet_rows(path, workbook, PARAMETRES)[1:], start=2):
            key, value = (_cell_text(row[0]), row[1] if len(row) > 1 else None) if row else ("", None)
            if not key:
                continue
            if "." not in key:
                problems.append(InputProblem(source, number, "cle",
                                         f"clé « {key} » sans section (attendu section.cle, ex. regles.prefet_taux)"))
                continue
            if key in seen:  # as TOML refuses it: the last one would win silently
                problems.append(InputProblem(source, number, key, f"clé « {key} » en double (déjà ligne {seen[key]})"))
                continue
            seen[key] = number
            if isinstance(value, str) and "_" in value and UNDERSCORED.fullmatch(value.strip()):
                problems.append(InputProblem(source, number, key, f"nombre mal écrit « {value} » : pas de « _ » "
                                                                  "dans un nombre"))
                continue
            section, name = key.split(".", 1)
            parametres.setdefault(section, {})[name] = _param_value(section, name, value)
    others = [s for s in workbook.sheetnames if s not in TABLES and s != PARAMETRES]
    errors, warnings = unknown_tables(others, set(tables), f"{path.name}, feuille ", sheets=True)
    problems += errors
    if problems:
        raise InvalidInput(problems)
    return RawInstance(path, parametres, source, tables, warnings)



def _uncached_formulas(path: Path, values) -> list[InputProblem]:
    """Formula cells saved without their computed value (written by a script, never opened in
    Excel) read as blank: refused, each with its sheet and cell. The zip is scanned first: a
    workbook without formulas is not read twice."""
    from openpyxl import load_workbook  # lazy: openpyxl only for a .xlsx instance

    try:
        with zipfile.ZipFile(path) as archive:
            if not any(b"<f" in archive.read(n) for n in archive.namelist() if n.startswith("xl/worksheets/")):
                return []
        formulas = load_workbook(path, read_only=True, data_only=False)
    except Exception:  # noqa: BLE001 - a damaged file is reported when its sheets are read
        return []
    problems = []
    try:
        for name in [s for s in formulas.sheetnames if s in TABLES or s == PARAMETRES]:
            for cells, shown in zip(formulas[name].iter_rows(), values[name].iter_rows(values_only=True)):
                for j, cell in enumerate(cells):
                    if getattr(cell, "data_type", None) == "f" and (j >= len(shown) or shown[j] is None):
                        problems.append(InputProblem(f"{path.name}, feuille {name}", cell.row, cell.coordinate,
                                                     f"formule sans valeur calculée ({cell.value}) : ouvrir le "
                                                     "classeur dans Excel ou LibreOffice et l'enregistrer, ou "
                                                     "remplacer la formule par sa valeur"))
    except Exception:  # noqa: BLE001 - idem
        return problems
    finally:
        formulas.close()
    return problems


def _param_value(section: str, name: str, value):
    """TOML lists are written `a;b` in the sheet; codes stay strings."""
    if section == "cia" and name == "epci":
        return [v.strip() for v in _cell_text(value).split(";") if v.strip()]
    if isinstance(value, float) and value.is_integer() and section in ("instance",):
        return str(int(value)) if name == "departement" else int(value)
    if section == "instance" and name == "departement":
        return _cell_text(value)
    return value
