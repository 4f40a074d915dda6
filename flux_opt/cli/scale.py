"""Scale: `flux-opt generer` (synthetic instances) and `flux-opt lot` (plan every instance of a folder, resumable)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from flux_opt.cli.app import app, console, err, fail_on_invalid
from flux_opt.errors import InvalidInput


@app.command("generer")
def generer_command(
    dossier: Annotated[Path, typer.Argument(help="Dossier où écrire l'instance (ou le jeu national).")],
    taille: Annotated[str, typer.Option(help="petit (~2 000 logements), moyen (~30 000), grand (~300 000).")] = "petit",
    logements: Annotated[int | None, typer.Option(help="Nombre de logements (remplace --taille).")] = None,
    graine: Annotated[int, typer.Option(help="Graine : même graine, mêmes fichiers.")] = 0,
    national: Annotated[bool, typer.Option("--national", help="Jeu national : un dossier par bailleur × département.")] = False,
    departements: Annotated[int | None, typer.Option(
        help="Avec --national : nombre de départements (défaut 100) ; avec --bailleurs et --logements, un petit "
             "jeu de plusieurs instances.")] = None,
    bailleurs: Annotated[int | None, typer.Option(help="Avec --national : nombre de bailleurs (défaut 350).")] = None,
):
    """Générer une instance synthétique reproductible."""
    from flux_opt.report.exports import claimed_folder

    try:
        with claimed_folder(dossier, "DOSSIER"):
            _generate(dossier, taille, logements, graine, national, departements, bailleurs)
    except InvalidInput as exc:
        fail_on_invalid(exc)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2)


def _generate(dossier: Path, taille: str, logements: int | None, graine: int, national: bool,
              departements: int | None = None, bailleurs: int | None = None) -> None:
    from flux_opt.scale.generate import TAILLES, generate_instance, generate_national, generate_size

    if not national and (departements is not None or bailleurs is not None):
        raise ValueError("--departements et --bailleurs ne valent qu'avec --national.")
    if national:
        sizes = {k: v for k, v in (("logements_total", logements), ("departements", departements),
                                   ("bailleurs", bailleurs)) if v is not None}
        paths = generate_national(dossier, graine=graine, **sizes)
        console.print(f"{len(paths)} instances écrites dans {dossier} (manifeste.csv).")
        return
    if logements is not None:
        generate_instance(dossier, logements, graine=graine)
    elif taille in TAILLES:
        generate_size(dossier, taille, graine=graine)
    else:
        raise ValueError(f"taille inconnue « {taille} » : petit, moyen ou grand")
    console.print(f"Instance écrite dans {dossier}.")


@app.command("lot")
def lot_command(
    dossier: Annotated[Path, typer.Argument(
        help="Dossier d'instances (sous-dossiers avec instance.toml, classeurs .xlsx) ou jeu national "
             "(manifeste.csv).")],
    sortie: Annotated[Path | None, typer.Option(
        "--sortie", "-s", help="Dossier des résultats (défaut : DOSSIER-resultats).")] = None,
    processus: Annotated[int, typer.Option(help="Nombre de processus locaux.")] = 2,
    cluster: Annotated[str | None, typer.Option(
        help="Adresse d'un ordonnanceur Dask (tcp://hôte:port) ; ses workers doivent voir SORTIE.")] = None,
    reprendre: Annotated[bool, typer.Option(
        "--reprendre/--pas-de-reprise",
        help="Sauter les instances déjà terminées dans SORTIE dont les fichiers et les options n'ont pas changé.")] = True,
    limite: Annotated[int | None, typer.Option(help="Au plus N nouvelles instances (échantillon).")] = None,
    moteur: Annotated[str, typer.Option(help="highs (direct) ou pyomo.")] = "highs",
    analyse: Annotated[bool, typer.Option(
        "--analyse/--sans-analyse",
        help="Écrire pour chaque instance le rapport (rapport.html, rapport.xlsx) et l'explication, comme "
             "flux-opt plan ; --sans-analyse : fichiers du plan seulement, plus rapide.")] = True,
    couts: Annotated[bool, typer.Option(
        "--couts/--sans-couts",
        help="Avec l'analyse : calculer aussi le coût des règles (le plan recalculé pour chaque règle "
             "relâchée, le plus long de l'analyse). Par défaut non : le rapport dit comment le demander.")] = False,
):
    """Planifier toutes les instances d'un dossier (reprise possible après interruption)."""
    from flux_opt.report.exports import claimed_folder
    from flux_opt.scale.batch import ClusterUnreachable, find_instances, run_batch

    if processus < 1 or (limite is not None and limite < 0) or moteur not in ("highs", "pyomo"):
        err.print("[red]Options invalides : --processus au moins 1, --limite positive, --moteur highs ou pyomo.[/red]")
        raise typer.Exit(2)
    if not dossier.is_dir() or not find_instances(dossier):
        err.print(f"[red]Aucune instance dans « {dossier} » (ni manifeste.csv, ni sous-dossier avec "
                  "instance.toml, ni classeur .xlsx).[/red]")
        raise typer.Exit(2)
    sortie = sortie or dossier.with_name(dossier.name + "-resultats")
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[derniere]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=console)
    task = progress.add_task("Plans", total=None, derniere="")

    def started(todo: int, skipped: int) -> None:
        progress.update(task, total=todo)
        if skipped:
            progress.console.print(f"{skipped} instance(s) déjà terminée(s) : reprise après celles-ci.")

    def finished(line: dict) -> None:
        mark = {0: "[green]✓[/green]", 3: "[yellow]règles non tenues[/yellow]", 2: "[red]invalide[/red]"}
        progress.update(task, advance=1, derniere=f"{line['instance']} {mark.get(line['code'], '[red]échec[/red]')}")

    try:
        with claimed_folder(sortie), progress:
            report = run_batch(dossier, sortie, processes=processus, cluster=cluster, resume_finished=reprendre,
                               limit=limite, moteur=moteur, analyse=analyse, couts=couts, on_start=started,
                               on_result=finished)
    except InvalidInput as exc:
        fail_on_invalid(exc)
    except ClusterUnreachable as exc:
        err.print(f"[red]--cluster : {escape(str(exc))}. Lancer « dask scheduler » puis « dask worker ADRESSE » "
                  "(voir le README) ; les instances déjà terminées sont gardées.[/red]")
        raise typer.Exit(2)
    console.print(_national_table(sortie))
    _print_broken_rules(sortie)
    console.print(f"{len(report.planifiees)} instance(s) planifiée(s), {len(report.reprises)} reprise(s) "
                  f"en {_french('secondes', report.secondes)} s. Résultats dans [bold]{sortie}[/bold] "
                  "(synthese.csv, synthese.html, synthese.xlsx ; departements/<code>/ : le contingent de l'État "
                  "de chaque département).")
    codes = set(report.codes.values())
    raise typer.Exit(next((c for c in (1, 4, 2, 3) if c in codes), 0))


STATUTS = {"donnees_invalides": "données invalides", "plantage": "plantage du calcul", "erreur": "erreur interne",
           "sans_solution": "aucun plan trouvé"}


def _print_broken_rules(sortie: Path) -> None:
    """Which rules each instance breaks (code 3), and which instances failed, by name."""
    from flux_opt.model.registry import label
    from flux_opt.scale.batch import read_synthese

    for line in read_synthese(sortie).itertuples():
        if line.code == "3" and line.regles_violees:
            rules = ", ".join(label(r.strip()) for r in line.regles_violees.split(";"))
            console.print(f"[yellow]{line.instance}[/yellow] : règles non tenues — {rules}")
        elif line.code not in ("0", "3"):
            statut = STATUTS.get(line.statut.split(" ")[0], line.statut or "échec")
            console.print(f"[red]{line.instance}[/red] : {statut} — {escape(line.message[:200])}")


HEADERS = {"departement": "Département", "instances": "Instances", "flux": "Flux", "attributions_prevues":
           "Attributions prévues", "adequation": "Adéquation", "conformes": "Conformes", "regles_violees":
           "Avec règles non tenues", "invalides": "Données invalides", "echecs": "Échecs", "secondes": "Durée (s)"}
NUMBERS = [c for c in HEADERS if c != "departement"]


def _national_table(sortie: Path):
    import pandas as pd

    from rich.console import Group

    from flux_opt.report.tables import fitted_tables
    from flux_opt.scale.batch import NATIONALE

    frame = pd.read_csv(sortie / NATIONALE, dtype=str, keep_default_na=False)
    for column in frame.columns.drop("departement"):  # French numbers: 1 234, 95,6 %
        frame[column] = [_french(column, value) for value in frame[column]]
    frame = frame.rename(columns=HEADERS)
    return Group(*fitted_tables(frame, "Synthèse nationale", [HEADERS.get(c, c) for c in NUMBERS if c in HEADERS]))


def _french(column: str, value: str) -> str:
    from flux_opt.explanation.sentences import fr_number, fr_percent

    if column == "attributions_prevues":  # an expected count: people read it whole
        return fr_number(round(float(value)))
    return fr_percent(float(value)) if column == "adequation" else fr_number(value)
