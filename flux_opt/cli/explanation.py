"""`flux-opt expliquer DIR`: print the top reasons of a saved plan."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flux_opt.cli.app import app, console, err


@app.command("expliquer")
def expliquer_command(
    dossier: Annotated[Path, typer.Argument(help="Dossier d'un plan (sortie de flux-opt plan).")],
    nombre: Annotated[int, typer.Option("--nombre", "-n", help="Nombre de raisons affichées.")] = 10,
):
    """Expliquer un plan enregistré : règles non tenues, règles qui coûtent, manques (sans recalcul)."""
    from flux_opt.report.explanation_terminal import explanation_view

    try:
        view = explanation_view(dossier, nombre)
    except FileNotFoundError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2)
    console.print(view)
