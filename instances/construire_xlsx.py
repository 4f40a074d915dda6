"""Build the one-workbook form of an instance from its CSV folder (docs/donnees.md).

Usage: python instances/construire_xlsx.py instances/exemple instances/exemple.xlsx

One sheet per CSV file (sheet name = file name without ``.csv``, same columns)
plus a ``parametres`` sheet with ``cle``/``valeur`` rows, one per TOML key,
written ``section.cle``; lists are joined with ``;``. Code columns (commune,
epci, departement, territoire) are always written as TEXT cells so that
``59009`` or ``2A004`` never become numbers.
"""

from __future__ import annotations

import csv
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

PARAMETERS_SHEET = "parametres"
TEXT_FORMAT = "@"
CODE_COLUMNS = frozenset({"commune", "epci", "departement", "territoire"})
# Columns that hold identifiers or labels: never converted, even when they look numeric.
LABEL_COLUMNS = frozenset({"id", "reservataire", "nom", "commune_nom", "convention", "cle"})
SHEET_ORDER = ("parc", "exclusions", "reservataires", "demande", "objectifs", "mixite", "conventions")
_NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?")


def flatten_toml(table: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Return (``section.cle``, value) pairs for every leaf key, in file order."""
    pairs: list[tuple[str, Any]] = []
    for key, value in table.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            pairs.extend(flatten_toml(value, name))
        else:
            pairs.append((name, value))
    return pairs


def parameter_cell_value(key: str, value: Any) -> Any:
    """Value written in the ``valeur`` column; codes and lists stay text."""
    if isinstance(value, list):
        return ";".join(str(item) for item in value)
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if key.rsplit(".", 1)[-1] in CODE_COLUMNS:
        return str(value)
    return value


def csv_cell_value(column: str, raw: str) -> Any:
    """Typed value of one CSV cell: None when blank, numbers for plain numbers, else text."""
    if raw == "":
        return None
    if column in CODE_COLUMNS or column in LABEL_COLUMNS or not _NUMBER.fullmatch(raw):
        return raw
    number = float(raw)
    return int(number) if number.is_integer() and "." not in raw and "e" not in raw.lower() else number


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a UTF-8 CSV file (a BOM written by Excel is accepted)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def ordered_csv_files(folder: Path) -> list[Path]:
    """CSV files of the instance, the contract's files first, then any extra file."""
    files = {path.stem: path for path in folder.glob("*.csv")}
    known = [files.pop(name) for name in SHEET_ORDER if name in files]
    return known + [files[name] for name in sorted(files)]


def write_sheet(workbook: Workbook, title: str, header: list[str], rows: list[list[Any]]) -> None:
    """Append one sheet; text cells get the text number format so Excel keeps them as typed."""
    sheet = workbook.create_sheet(title)
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for values in rows:
        sheet.append(values)
    for column_cells in sheet.iter_cols(min_row=2):
        for cell in column_cells:
            if isinstance(cell.value, str):
                cell.number_format = TEXT_FORMAT
    for index, name in enumerate(header, start=1):
        longest = max([len(name)] + [len(str(row[index - 1] or "")) for row in rows])
        sheet.column_dimensions[get_column_letter(index)].width = min(60, longest + 2)
    sheet.freeze_panes = "A2"


def build_workbook(folder: Path) -> Workbook:
    """Workbook holding the instance of ``folder`` (CSV files + instance.toml)."""
    config = tomllib.loads((folder / "instance.toml").read_text(encoding="utf-8"))
    workbook = Workbook()
    workbook.remove(workbook.active)
    parameters = [[key, parameter_cell_value(key, value)] for key, value in flatten_toml(config)]
    write_sheet(workbook, PARAMETERS_SHEET, ["cle", "valeur"], parameters)
    for path in ordered_csv_files(folder):
        header, records = read_csv(path)
        rows = [[csv_cell_value(column, record.get(column) or "") for column in header] for record in records]
        write_sheet(workbook, path.stem, header, rows)
    return workbook


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("Usage : python instances/construire_xlsx.py DOSSIER_INSTANCE CLASSEUR.xlsx", file=sys.stderr)
        return 2
    folder, target = Path(argv[0]), Path(argv[1])
    if not (folder / "instance.toml").is_file():
        print(f"Erreur : {folder / 'instance.toml'} est introuvable.", file=sys.stderr)
        return 2
    build_workbook(folder).save(target)
    print(f"Classeur écrit : {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
