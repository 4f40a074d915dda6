"""Raw tables of an instance: every cell a string, with the name shown to users (no interpretation)."""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from flux_opt.errors import InputProblem

TABLES = ("parc", "exclusions", "reservataires", "demande", "objectifs", "mixite", "conventions", "lissage",
          "nouveaux_droits", "acceptation")
REQUIRED_TABLES = ("parc", "reservataires", "demande")
# Files flux-opt itself writes beside the tables, read by no command: never reported as unknown.
COMPANION_FILES = ("rotation.csv",)  # importer rpls: how each cell's rotation was estimated
UNDERSCORED = re.compile(r"[+-]?\d[\d\s]*(?:_[\d\s]*)+(?:[.,]\d*)?")  # 1_0 or 1_000,5: Python would read 10


@dataclass
class RawTable:
    """Rows of one input table as dicts of strings, with the name shown to users.
    `lines[i]` is the line (or sheet row) of `rows[i]` in the file, the header being line 1:
    blank rows are skipped, so the index alone does not give it."""

    source: str  # e.g. "parc.csv" or "exemple.xlsx, feuille parc"
    rows: list[dict[str, str]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    def line(self, index: int) -> int:
        return self.lines[index] if index < len(self.lines) else index + 2


@dataclass
class RawInstance:
    path: Path
    parametres: dict
    parametres_source: str
    tables: dict[str, RawTable]
    warnings: list[InputProblem] = field(default_factory=list)  # e.g. an unknown file, ignored


def _normal(name: str) -> str:
    """"Taux rotation", "taux-rotation", "Libérations" → "taux_rotation", "liberations"."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "_", plain).strip("_")


def closest(name: str, known: list[str]) -> str | None:
    """The known name closest to `name` (difflib), if any is close enough to be a slip."""
    normal = _normal(name)
    if normal in known:
        return normal
    found = difflib.get_close_matches(normal, known, n=1, cutoff=0.75)
    return found[0] if found else None


def unknown_tables(names: list[str], read: set[str], where: str, sheets: bool = False) -> tuple[list, list]:
    """(errors, warnings) for the files (or sheets) of an instance that are no table: one close to
    a table the instance lacks (« Exclusions.csv », « exclusion.csv », sheet « exclusion ») is an
    error — its rows would be silently left out of the plan —; any other one a warning."""
    errors, warnings = [], []
    kind, unknown, ignored, rename = (("feuille", "inconnue", "ignorée", "la renommer") if sheets else
                                      ("fichier", "inconnu", "ignoré", "le renommer"))
    for name in names:
        guess = closest(name if sheets else name.rsplit(".", 1)[0], list(TABLES))
        shown = guess if sheets or guess is None else f"{guess}.csv"
        if guess and guess not in read:
            errors.append(InputProblem(f"{where}{name}", None, None, f"{kind} {unknown} : « {name} » → {shown} ? "
                                       f"({rename}, sinon ses lignes seraient ignorées et le plan changerait)"))
        else:
            hint = f" (« {name} » → {shown} ?)" if guess else ""
            warnings.append(InputProblem(f"{where}{name}", None, None, f"{kind} {unknown}, {ignored}{hint}"))
    return errors, warnings
