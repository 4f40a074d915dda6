"""Read an instance as raw strings: a CSV folder + instance.toml, or one .xlsx workbook.

No interpretation happens here: every cell is returned as a string (codes such as
`59350` or `2A004` must never become numbers); validation is `flux_opt.schema`'s job.
"""

from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from flux_opt.errors import DonneesInvalides, Probleme

TABLES = ("parc", "exclusions", "reservataires", "demande", "objectifs", "mixite", "conventions")
REQUIRED_TABLES = ("parc", "reservataires", "demande")


@dataclass
class RawTable:
    """Rows of one input table as dicts of strings, with the name shown to users."""

    source: str  # e.g. "parc.csv" or "exemple.xlsx, feuille parc"
    rows: list[dict[str, str]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)


@dataclass
class RawInstance:
    path: Path
    parametres: dict
    parametres_source: str
    tables: dict[str, RawTable]


def read_instance(path: str | Path) -> RawInstance:
    """Read a CSV folder or an .xlsx workbook; raise DonneesInvalides if unreadable."""
    path = Path(path)
    if path.is_dir():
        return _read_folder(path)
    if path.suffix.lower() == ".xlsx" and path.is_file():
        from flux_opt.io.xlsx import read_workbook

        return read_workbook(path)
    raise DonneesInvalides([Probleme(str(path), None, None,
                                     "instance introuvable : donner un dossier (CSV + instance.toml) ou un classeur .xlsx")])


def _read_folder(folder: Path) -> RawInstance:
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
            if name in REQUIRED_TABLES:
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
