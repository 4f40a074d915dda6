"""`flux-opt convertir`: the old stock turned into flux, and its lissage."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from flux_opt.cli.app import INSTANCE, app, console, err, fail_on_invalid, guard_outputs
from flux_opt.errors import InvalidInput

MAX_ANNEES_LISSAGE = 30  # a conversion spreads old stock rights over a few years, never decades


@app.command("convertir")
def convertir_command(
    instance: INSTANCE,
    methode: Annotated[str | None, typer.Option(
        help="globale ou convention (par défaut : \\[conversion] methode de instance.toml, sinon convention).")] = None,
    annees: Annotated[int | None, typer.Option(
        help="Nombre d'années du lissage (au moins 3) : le tableau montre exactement ces années, "
             "à partir de l'année de l'instance.")] = None,
    part_max: Annotated[float | None, typer.Option(
        help="Part du flux annuel (entre 0 et 1, ex. 0.3) ouverte à l'ensemble des droits convertis.")] = None,
    sortie: Annotated[Path | None, typer.Option("--sortie", "-s", help="Dossier des tableaux (CSV, Excel, HTML).")] = None,
    bilan: Annotated[Path | None, typer.Option(
        "--bilan", help="Dossier des bilans (flux-opt bilan) : les droits déjà utilisés sont déduits du stock "
                        "converti et les années restantes re-lissées à partir de l'année qui suit le dernier bilan.")] = None,
):
    """Convertir les conventions en stock en volume dû, puis le lisser sur plusieurs années."""
    from flux_opt.pipeline import load
    from flux_opt.stock.instance import REQUIRED_FOR_CONVERSION, convert_instance
    from flux_opt.report.conversion import write_outputs, console_view
    from flux_opt.report.exports import claimed_folder

    if methode not in (None, "globale", "convention"):
        err.print("[red]Méthode inconnue : choisir globale ou convention.[/red]")
        raise typer.Exit(2)
    if annees is not None and not 1 <= annees <= MAX_ANNEES_LISSAGE:
        err.print(f"[red]--annees {annees} : le lissage dure de 1 à {MAX_ANNEES_LISSAGE} ans.[/red]")
        raise typer.Exit(2)
    if part_max is not None and not 0 < part_max <= 1:
        err.print(f"[red]--part-max {part_max} : part du flux annuel attendue entre 0 (exclu) et 1.[/red]")
        raise typer.Exit(2)
    guard_outputs({"--sortie": sortie}, {"l'instance": instance, "le dossier des bilans": bilan})
    try:
        with claimed_folder(sortie) if sortie else nullcontext():
            data = load(instance, required=REQUIRED_FOR_CONVERSION, targets=False)  # targets come from here
            utilises, debut = _droits_utilises(data.parametres.instance.annee, bilan) if bilan else (None, None)
            result = convert_instance(data, methode=methode, annees=annees, part_max=part_max,
                                        droits_utilises=utilises, annee_debut=debut)
            noms = {r.id: r.nom for r in data.reservataires}
            console.print(console_view(result, noms))
            for sentence in result.parametres.get("etat_non_converti", []):
                console.print(f"[yellow]{escape(sentence[0].upper() + sentence[1:])}.[/yellow]")
            if sortie:
                written = write_outputs(sortie, result, noms)
                console.print(f"{len(written)} fichiers écrits dans [bold]{sortie}[/bold].")
    except InvalidInput as exc:
        fail_on_invalid(exc)
    except (ValueError, FileNotFoundError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2)
    raise typer.Exit(0 if result.lissage.realisable else 3)


def _droits_utilises(annee: int, dossier: Path) -> tuple[dict[str, float], int]:
    """Dwellings counted since the conversion's year, and the year to re-plan from."""
    from flux_opt.assiette.carryover import droits_utilises

    utilises, derniere = droits_utilises(dossier, annee)
    periode = f"du bilan {annee}" if derniere == annee else f"des bilans {annee} à {derniere}"
    console.print(f"Droits utilisés d'après les logements décomptés {periode} : "
                  + ", ".join(f"{r} {v:g}" for r, v in sorted(utilises.items())) + f" ; lissage à partir de {derniere + 1}.")
    return utilises, derniere + 1
