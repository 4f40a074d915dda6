"""Nothing the user gave is ever overwritten: an output is never an input, inside one, or around one.

Every command that writes calls `refuse_overlap` (through cli.app.hold_output or directly) BEFORE
any work, with what it writes (`--sortie`, `--journal`…) and what it reads (the instance folder or
workbook, the plan folder, the journal). `flux-opt plan E --sortie E` used to replace the
instance's own objectifs.csv; `controler O E --sortie E/parc.csv` its parc. Links are followed
(Path.resolve): another name for the same folder is the same folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from flux_opt.errors import InputProblem, InvalidInput


def overlap(output: Path, given: Path) -> str | None:
    """How `output` would touch `given` (« est », « est dans », « contient »), None when it does not."""
    out, inp = Path(output).resolve(), Path(given).resolve()
    if out == inp:
        return "est"
    if out.is_relative_to(inp):
        return "est dans"
    if inp.is_relative_to(out):
        return "contient"
    return None


def refuse_overlap(outputs: Mapping[str, Path | None], inputs: Mapping[str, Path | None]) -> None:
    """InvalidInput (one French line per clash) when an output is, lies inside or contains an
    input. Keys name them for the user: {"--sortie": …}, {"l'instance": …, "le plan": …}."""
    problems = []
    for option, output in outputs.items():
        for label, given in inputs.items():
            if output is None or given is None:
                continue
            how = overlap(output, given)
            if how:
                problems.append(InputProblem(
                    str(output), None, option,
                    f"{option} {output} {how} {label} {given} : un fichier donné serait remplacé ou "
                    "mêlé aux résultats. Choisir un dossier de sortie à part (rien n'a été écrit)."))
    if problems:
        raise InvalidInput(problems)


def files_of(folder: Path, label: str, but: Path | None = None) -> dict[str, Path]:
    """The files of a folder a command reads, one input each (« le plan (plan.csv) »…), for the
    commands that write one file beside them by default (controler: conformite.csv, evaluer:
    evaluation.csv): that file, `but`, is theirs to replace; none of the others may be the output.
    A path that is a file is its own only input."""
    folder = Path(folder)
    paths = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else [folder]
    skip = Path(but).resolve() if but is not None else None
    return {f"{label} ({p.name})": p for p in paths if p.resolve() != skip}
