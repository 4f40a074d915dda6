"""Input problems, reported in French with file, row and field."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InputProblem:
    """One problem found in the input. `ligne` is the 1-based line of the file
    (the header is line 1), or None for a file-level or parameter problem."""

    fichier: str
    ligne: int | None
    champ: str | None
    message: str

    def __str__(self) -> str:
        where = self.fichier
        if self.ligne is not None:
            where += f", ligne {self.ligne}"
        if self.champ:
            where += f", champ « {self.champ} »"
        return f"{where} : {self.message}"


class InvalidInput(Exception):
    """Raised when the input cannot be used; carries every problem found."""

    def __init__(self, problems: list[InputProblem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
