"""The typer application and what every command shares: consoles, argument types, the exit on invalid input."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from flux_opt.cli import french
from flux_opt.errors import DonneesInvalides

french.install()
app = typer.Typer(help="flux-opt : orientation annuelle du flux de logements sociaux vers les réservataires.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode="rich",
                  subcommand_metavar="COMMANDE [ARGUMENTS]...")
console = Console()
err = Console(stderr=True)

INSTANCE = Annotated[Path, typer.Argument(help="Dossier d'instance (CSV + instance.toml) ou classeur .xlsx.")]


def show_warnings(warnings: list) -> None:
    """Input problems that did not stop the work (e.g. an unknown column, ignored)."""
    for warning in warnings:
        err.print(f"[yellow]Avertissement : {warning}[/yellow]")


def fail_on_invalid(exc: DonneesInvalides) -> None:
    from flux_opt.report.terminal import problems_table

    err.print(problems_table(exc.problemes))
    err.print("[red]Rien n'a été écrit. Corrigez les données puis relancez.[/red]")
    raise typer.Exit(2)


def hold_output(stack: ExitStack, folder: Path | None, option: str = "--sortie") -> None:
    """Claim the output folder before the work (report.exports.claimed_folder: a writable folder,
    one run at a time, left as it was if the run stops); a refusal exits 2 in French."""
    from flux_opt.report.exports import claimed_folder

    if folder is None:
        return
    try:
        stack.enter_context(claimed_folder(folder, option))
    except DonneesInvalides as exc:
        fail_on_invalid(exc)
