"""Commands around the plan: stock conversion, instance generation, the year after the plan."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from flux_opt.cli import INSTANCE, app, console, err


@app.command("convertir")
def convertir_command(
    instance: INSTANCE,
    methode: Annotated[str | None, typer.Option(help="globale ou convention (sinon [conversion] methode).")] = None,
    annees: Annotated[int | None, typer.Option(help="Nombre d'années du lissage.")] = None,
    part_max: Annotated[float | None, typer.Option(help="Part du flux annuel ouverte aux droits convertis.")] = None,
    sortie: Annotated[Path | None, typer.Option("--sortie", "-s", help="Dossier des tableaux (CSV, Excel, HTML).")] = None,
):
    """Convertir les conventions en stock en volume dû, puis le lisser sur plusieurs années."""
    from flux_opt.conversion_instance import convertir_instance
    from flux_opt.conversion_rapport import ecrire_sorties, rendu_console

    if methode not in (None, "globale", "convention"):
        err.print("[red]Méthode inconnue : choisir globale ou convention.[/red]")
        raise typer.Exit(2)
    try:
        result = convertir_instance(instance, methode=methode, annees=annees, part_max=part_max)
    except (ValueError, FileNotFoundError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2)
    console.print(rendu_console(result))
    if sortie:
        written = ecrire_sorties(sortie, result)
        console.print(f"{len(written)} fichiers écrits dans [bold]{sortie}[/bold].")
    raise typer.Exit(0 if result.lissage.realisable else 3)


@app.command("generer")
def generer_command(
    dossier: Annotated[Path, typer.Argument(help="Dossier où écrire l'instance (ou le jeu national).")],
    taille: Annotated[str, typer.Option(help="petit (~2 000 logements), moyen (~30 000), grand (~300 000).")] = "petit",
    logements: Annotated[int | None, typer.Option(help="Nombre de logements (remplace --taille).")] = None,
    graine: Annotated[int, typer.Option(help="Graine : même graine, mêmes fichiers.")] = 0,
    national: Annotated[bool, typer.Option("--national", help="Jeu national : un dossier par bailleur × département.")] = False,
):
    """Générer une instance synthétique reproductible."""
    from flux_opt.generate import TAILLES, generer_instance, generer_national, generer_taille

    try:
        if national:
            paths = generer_national(dossier, graine=graine)
            console.print(f"{len(paths)} instances écrites dans {dossier} (manifeste.csv).")
            return
        if logements:
            generer_instance(dossier, logements, graine=graine)
        elif taille in TAILLES:
            generer_taille(dossier, taille, graine=graine)
        else:
            raise ValueError(f"taille inconnue « {taille} » : petit, moyen ou grand")
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2)
    console.print(f"Instance écrite dans {dossier}.")


PLAN = Annotated[Path, typer.Argument(help="Dossier d'un plan (sortie de flux-opt plan).")]
JOURNAL = Annotated[Path, typer.Argument(help="Journal des événements (CSV, voir models/journal.md).")]


def _journal(path: Path):
    from flux_opt.journal import JournalInvalide, lire_journal

    try:
        return lire_journal(path)
    except (JournalInvalide, FileNotFoundError) as exc:
        err.print(f"[red]Journal {path} : {exc}[/red]")
        raise typer.Exit(2)


@app.command("suivi")
def suivi_command(plan: PLAN, journal: JOURNAL,
                  jour: Annotated[str | None, typer.Option("--date", help="Date du suivi AAAA-MM-JJ (défaut : aujourd'hui).")] = None):
    """Suivi de l'année : objectif, réalisé, en cours, reste et projection par réservataire."""
    from flux_opt.orientation import doit_reoptimiser, ecart_au_plan
    from flux_opt.report.tables import frame_table
    from flux_opt.suivi import suivi

    df = _journal(journal)
    day = date.fromisoformat(jour) if jour else date.today()
    s = suivi(plan, df, day)
    console.print(frame_table(s.reservataires, f"Suivi au {day.isoformat()} par réservataire"))
    console.print(frame_table(s.par_typologie, "Par typologie"))
    console.print(frame_table(s.par_qpv, "QPV / hors QPV"))
    console.print(frame_table(s.mixite, "Mixité à date"))
    drift = ecart_au_plan(plan, df)
    console.print(f"Écart des libérations au plan : {100 * drift:.1f} %")
    if doit_reoptimiser(plan, df):
        console.print("[yellow]La réalité s'écarte de la prévision : ré-optimiser le reste de l'année.[/yellow]")


@app.command("orienter")
def orienter_command(plan: PLAN, journal: JOURNAL,
                     logement: Annotated[str, typer.Option(help="commune=59350,typologie=T3,qpv=non,financement=PLUS")]):
    """Proposer le réservataire d'un logement libéré, avec la raison."""
    from flux_opt.orientation import classer_reservataires, lire_logement
    from flux_opt.report.tables import frame_table

    try:
        wanted = lire_logement(logement)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2)
    ranking = classer_reservataires(plan, _journal(journal), wanted)
    console.print(frame_table(ranking, "Pré-orientation"))


@app.command("bilan")
def bilan_command(journal: JOURNAL, annee: Annotated[int, typer.Option(help="Année du bilan.")],
                  sortie: Annotated[Path, typer.Option("--sortie", "-s", help="Dossier des fichiers.")] = Path("bilan")):
    """Bilan annuel (CCH R.441-5-1) : un fichier Excel et HTML consolidé et un par réservataire."""
    from flux_opt.bilan import bilan, ecrire_bilan

    written = ecrire_bilan(bilan(_journal(journal), annee), sortie)
    console.print(f"{len(written)} fichiers écrits dans [bold]{sortie}[/bold].")


@app.command("simuler")
def simuler_command(plan: PLAN, journal: Annotated[Path, typer.Option(help="Journal à écrire.")],
                    annee: Annotated[int, typer.Option(help="Année simulée.")],
                    graine: int = 0, derive: Annotated[float, typer.Option(help="Écart à la prévision (0 = fidèle).")] = 0.0):
    """Générer une année d'événements plausible à partir d'un plan (essais, démonstration)."""
    from flux_opt.simulation import simuler_annee

    count = simuler_annee(plan, journal, annee, graine, derive)
    console.print(f"{count} événements écrits dans {journal}.")
