"""Read an instance as raw strings: a CSV folder + instance.toml, or one .xlsx workbook.

No interpretation happens here: every cell is returned as a string (codes such as
`59350` or `2A004` must never become numbers); validation is `flux_opt.input.schema`'s job.
"""

from __future__ import annotations

import csv
import tomllib
from pathlib import Path

from flux_opt.errors import DonneesInvalides, Probleme
from flux_opt.input.raw import REQUIRED_TABLES, TABLES, RawInstance, RawTable
from flux_opt.input.xlsx import read_workbook


def read_instance(path: str | Path, required: tuple[str, ...] = REQUIRED_TABLES) -> RawInstance:
    """Read a CSV folder or an .xlsx workbook; raise DonneesInvalides if unreadable."""
    path = Path(path)
    if path.is_dir():
        return _read_folder(path, required)
    if path.suffix.lower() == ".xlsx" and path.is_file():
        return read_workbook(path, required)
    raise DonneesInvalides([Probleme(str(path), None, None,
                                     "instance introuvable : donner un dossier (CSV + instance.toml) ou un classeur .xlsx")])


def _read_folder(folder: Path, required: tuple[str, ...]) -> RawInstance:
    problems: list[Probleme] = []
    toml_path = folder / "instance.toml"
    parametres: dict = {}
    if not toml_path.is_file():
        problems.append(Probleme("instance.toml", None, None, "fichier manquant"))
    else:
        try:
            parametres = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            problems.append(Probleme("instance.toml", None, None, f"TOML illisible ({exc})"))
    tables: dict[str, RawTable] = {}
    for name in TABLES:
        file = folder / f"{name}.csv"
        if not file.is_file():
            if name in required:
                problems.append(Probleme(f"{name}.csv", None, None, "fichier obligatoire manquant"))
            continue
        try:
            tables[name] = read_csv(file)
        except (UnicodeDecodeError, csv.Error) as exc:
            problems.append(Probleme(f"{name}.csv", None, None, f"CSV illisible ({exc})"))
    if problems:
        raise DonneesInvalides(problems)
    return RawInstance(folder, parametres, "instance.toml", tables)


def read_csv(file: Path) -> RawTable:
    """Read a CSV (comma or semicolon separated, UTF-8 with or without BOM) as strings."""
    text = file.read_text(encoding="utf-8-sig")
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    columns = [c.strip() for c in (reader.fieldnames or [])]
    rows = []
    for raw in reader:
        rows.append({k.strip(): (v or "").strip() for k, v in raw.items() if k is not None})
    return RawTable(file.name, rows, columns)
