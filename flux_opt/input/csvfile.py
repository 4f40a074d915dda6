"""Read one CSV file as a French Excel or an ERP writes it.

Accepted: UTF-8 (with or without BOM) or Windows-1252; `,` or `;` between cells; a decimal
point or comma (the schema reads both). Anything else is refused with a French message
naming the file — never a codec traceback. Blank rows (`;;;;` as Excel leaves them) are skipped;
a row with more cells than the header is refused (an unquoted decimal comma in a `,` file
would otherwise shift every following cell silently).
"""

from __future__ import annotations

import csv
import io
from sys import intern
from pathlib import Path

from flux_opt.errors import InvalidInput, InputProblem
from flux_opt.input.raw import RawTable

ENCODINGS = ("utf-8-sig", "cp1252")
SEPARATORS = (",", ";")
_SAVE_AS = "enregistrer depuis Excel en « CSV UTF-8 » ou « CSV (séparateur : point-virgule) »"


def decode(data: bytes, name: str) -> str:
    """The text of a CSV file in UTF-8 or Windows-1252, else a French refusal."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InvalidInput([InputProblem(name, None, None, f"encodage UTF-16 non pris en charge : {_SAVE_AS}")])
    if b"\x00" in data:
        raise InvalidInput([InputProblem(name, None, None, f"fichier binaire, pas un CSV : {_SAVE_AS}")])
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInput([InputProblem(name, None, None, f"encodage non reconnu (ni UTF-8 ni Windows-1252) : {_SAVE_AS}")])


def separator(header: str, name: str) -> str:
    """`;` or `,`, read from the header line (column names contain neither)."""
    counts = {sep: header.count(sep) for sep in SEPARATORS}
    if max(counts.values()) == 0:
        found = "la tabulation" if "\t" in header else "aucun séparateur"
        raise InvalidInput([InputProblem(name, 1, None, f"en-tête illisible ({found}) : les colonnes doivent être "
                                                        "séparées par une virgule ou un point-virgule")])
    return max(SEPARATORS, key=lambda sep: counts[sep])


def parse_csv(text: str, name: str) -> RawTable:
    """Rows of a decoded CSV as dicts of stripped strings, each with its line number."""
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise InvalidInput([InputProblem(name, None, None, "fichier vide : l'en-tête manque")])
    reader = csv.reader(io.StringIO("\n".join(lines[first:])), delimiter=separator(lines[first], name), strict=True)
    try:
        return _records(reader, name, offset=first)
    except csv.Error as exc:
        raise InvalidInput([InputProblem(name, first + reader.line_num, None, csv_error_text(exc))]) from exc


def csv_error_text(exc: csv.Error) -> str:
    """The csv module's error in French (it says "field larger than field limit (131072)"…)."""
    text = str(exc)
    if "field larger than field limit" in text:
        return (f"cellule de plus de {csv.field_size_limit():,} caractères".replace(",", "\u202f")
                + " : guillemet non fermé ?")
    if "new-line character seen in unquoted field" in text:
        return "retour à la ligne au milieu d'une cellule sans guillemets"
    if "NUL" in text or "line contains NUL" in text:
        return "caractère NUL : fichier binaire, pas un CSV"
    return "ligne illisible (guillemet non fermé ?)"


def _records(reader, name: str, offset: int) -> RawTable:
    header = [c.strip() for c in next(reader)]
    problems = [InputProblem(name, offset + 1, c, "colonne en double dans l'en-tête")
                for i, c in enumerate(header) if c and c in header[:i]]
    width = max((i + 1 for i, c in enumerate(header) if c), default=0)
    table = RawTable(name, columns=[c for c in header if c])
    named = [(i, c) for i, c in enumerate(header) if c]
    plain = len(named) == len(header)  # no blank heading: cells zip with the header
    previous_end = reader.line_num
    for cells in reader:
        line, previous_end = offset + previous_end + 1, reader.line_num
        cells = list(map(str.strip, cells))
        if not any(cells):
            continue  # blank row, e.g. ",,,,," left by Excel
        if len(cells) > width and any(cells[width:]):
            problems.append(InputProblem(name, line, None, f"{len(cells)} cellules pour {width} colonnes : vérifier "
                                     "le séparateur (une virgule décimale doit être entre guillemets "
                                     "dans un fichier séparé par des virgules)"))
            continue
        if len(cells) < len(header):
            cells += [""] * (len(header) - len(cells))
        # interned: a large parc repeats the same few texts (codes, oui/non, T3) thousands of times
        table.rows.append(dict(zip(header, map(intern, cells))) if plain else {c: intern(cells[i]) for i, c in named})
        table.lines.append(line)
    if problems:
        raise InvalidInput(problems)
    return table


def read_csv(file: Path) -> RawTable:
    """Read a CSV file (see the module docstring for what is accepted)."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InvalidInput([InputProblem(file.name, None, None, f"fichier illisible ({exc.strerror})")]) from exc
    return parse_csv(decode(data, file.name), file.name)
