"""Read an instance as raw strings: a CSV folder + instance.toml, or one .xlsx workbook.

No interpretation happens here: every cell is returned as a string (codes such as
`59350` or `2A004` must never become numbers); validation is `flux_opt.input.schema`'s job.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from flux_opt.errors import InvalidInput, InputProblem
from flux_opt.input.csvfile import decode, read_csv
from flux_opt.input.raw import COMPANION_FILES, REQUIRED_TABLES, TABLES, RawInstance, RawTable, unknown_tables
from flux_opt.input.xlsx import read_workbook

# tomllib's messages, in French (the position is appended separately).
_TOML_MESSAGES = (
    ("Invalid value", "valeur invalide (texte entre guillemets, nombre avec un point décimal, true/false, [liste])"),
    ("Cannot overwrite a value", "clé définie deux fois"),
    ("Cannot declare", "section ou clé définie deux fois"),
    ("Unterminated string", "guillemet non fermé"),
    ("Illegal character '\\n'", "guillemet non fermé avant la fin de ligne"),
    ("Illegal character", "caractère interdit à cet endroit"),
    ("Expected newline or end of document after a statement",
     "une seule clé = valeur par ligne (décimales avec un point : 0.3)"),
    ("Expected '=' after a key", "« = » attendu après la clé"),
    ("Expected ']' at the end of a table declaration", "« ] » attendu à la fin du nom de section"),
    ("Invalid statement", "ligne invalide (attendu cle = valeur ou [section])"),
    ("Invalid initial character for a key part", "nom de clé invalide"),
)


def toml_message(exc: tomllib.TOMLDecodeError) -> str:
    """A tomllib error in French, with its line and column."""
    text = str(exc)
    found = re.search(r"\(at line (\d+), column (\d+)\)", text)
    where = f" (ligne {found[1]}, colonne {found[2]})" if found else " (fin du fichier)" if "end of document" in text else ""
    message = next((fr for en, fr in _TOML_MESSAGES if text.startswith(en)), "syntaxe TOML invalide")
    return f"TOML illisible : {message}{where}"


def read_instance(path: str | Path, required: tuple[str, ...] = REQUIRED_TABLES) -> RawInstance:
    """Read a CSV folder or an .xlsx workbook; raise InvalidInput if unreadable."""
    path = Path(path)
    if path.is_dir():
        return _read_folder(path, required)
    if path.suffix.lower() == ".xlsx" and path.is_file():
        return read_workbook(path, required)
    raise InvalidInput([InputProblem(str(path), None, None,
                                     "instance introuvable : donner un dossier (CSV + instance.toml) ou un classeur .xlsx")])


def _read_parametres(toml_path: Path, problems: list[InputProblem]) -> dict:
    if not toml_path.is_file():
        problems.append(InputProblem("instance.toml", None, None, "fichier manquant"))
        return {}
    try:
        return tomllib.loads(decode(toml_path.read_bytes(), "instance.toml"))
    except tomllib.TOMLDecodeError as exc:
        problems.append(InputProblem("instance.toml", None, None, toml_message(exc)))
    except InvalidInput as exc:
        problems.extend(exc.problems)
    return {}


def _read_folder(folder: Path, required: tuple[str, ...]) -> RawInstance:
    problems: list[InputProblem] = []
    parametres = _read_parametres(folder / "instance.toml", problems)
    tables: dict[str, RawTable] = {}
    for name in TABLES:
        file = folder / f"{name}.csv"
        if not file.is_file():
            if name in required:
                problems.append(InputProblem(f"{name}.csv", None, None, "fichier obligatoire manquant"))
            continue
        try:
            tables[name] = read_csv(file)
        except InvalidInput as exc:
            problems.extend(exc.problems)
    expected = {f"{name}.csv" for name in TABLES} | {"instance.toml", *COMPANION_FILES}
    others = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name not in expected
                    and p.suffix.lower() in (".csv", ".toml") and not p.name.startswith("."))
    errors, warnings = unknown_tables(others, set(tables), "")
    problems += errors
    if problems:
        raise InvalidInput(problems)
    return RawInstance(folder, parametres, "instance.toml", tables, warnings)
