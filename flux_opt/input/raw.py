"""Raw tables of an instance: every cell a string, with the name shown to users (no interpretation)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

TABLES = ("parc", "exclusions", "reservataires", "demande", "objectifs", "mixite", "conventions", "lissage",
          "nouveaux_droits", "acceptation")
REQUIRED_TABLES = ("parc", "reservataires", "demande")


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
