"""`flux-opt importer rpls` (the parc from the bailleur's RPLS extract) and `flux-opt calibrer` (the demand
model's inputs from the journal of past years)."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from flux_opt.cli.app import app, console, err, fail_on_invalid, hold_output
from flux_opt.errors import InvalidInput

importer_app = typer.Typer(help="Écrire une instance à partir d'un fichier de données réelles (RPLS).",
                           no_args_is_help=True)
app.add_typer(importer_app, name="importer")


@importer_app.command("rpls")
def rpls_command(
    fichier: Annotated[Path, typer.Argument(help="Extrait RPLS du bailleur, une ligne par logement (CSV ou .xlsx ; "
                                                 "colonnes du fichier ouvert depcom_code… ou de la déclaration DEPCOM…).")],
    sortie: Annotated[Path, typer.Option("--sortie", "-s", help="Dossier de l'instance à écrire.")],
    departement: Annotated[str | None, typer.Option(help="Département de l'instance (défaut : celui de la plupart "
                                                         "des logements) ; les autres logements sont écartés.")] = None,
    annee: Annotated[int | None, typer.Option(min=2000, max=2100, help="Année du plan (défaut : celle qui suit le "
                                                                       "bail le plus récent) ; la rotation est celle "
                                                                       "de l'année précédente.")] = None,
    remplacer: Annotated[bool, typer.Option("--remplacer", help="Remplacer parc.csv et rotation.csv d'un import "
                                                                "précédent (les autres fichiers sont gardés).")] = False,
):
    """Écrire parc.csv, rotation.csv et une instance de départ à partir du fichier RPLS du bailleur."""
    from flux_opt.rpls.write import import_rpls, report_lines

    with ExitStack() as stack:
        hold_output(stack, sortie)
        present = [n for n in ("parc.csv", "rotation.csv") if (sortie / n).exists()]
        if present and not remplacer:
            err.print(f"[red]{escape(str(sortie))} contient déjà {' et '.join(present)} : --remplacer pour les "
                      "remplacer, ou choisir un autre dossier. Rien n'a été écrit.[/red]")
            raise typer.Exit(2)
        try:
            result = import_rpls(fichier, sortie, departement, annee)
        except InvalidInput as exc:
            fail_on_invalid(exc)
        lines = report_lines(result)
        (sortie / "rapport_import.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for line in lines:
        console.print(escape(line), highlight=False)
    written = ", ".join(p.name for p in result.written)
    console.print(f"Écrit dans {escape(str(sortie))} : {written}, rapport_import.txt.", highlight=False)


@app.command("calibrer")
def calibrer_command(
    journaux: Annotated[list[Path], typer.Argument(metavar="JOURNAL...", help="Journal d'une ou plusieurs années "
                                                                                 "(journal.csv).")],
    sortie: Annotated[Path, typer.Option("--sortie", "-s", help="Dossier où écrire les estimations.")],
    instance: Annotated[Path | None, typer.Option(help="Instance dont les valeurs servent de défaut (taux "
                                                       "d'acceptation, candidats et délais des réservataires).")] = None,
):
    """Estimer l'acceptation, les candidats, les délais et les retours au bailleur sur le journal des années passées."""
    from flux_opt.calibration.journal import calibrate
    from flux_opt.calibration.write import write_calibration
    from flux_opt.pipeline import load

    with ExitStack() as stack:
        hold_output(stack, sortie)
        try:
            calibration = calibrate(list(journaux), load(instance) if instance is not None else None)
        except InvalidInput as exc:
            fail_on_invalid(exc)
        written = write_calibration(calibration, sortie)
    for note in calibration.notes:
        err.print(f"[yellow]{escape(note[0].upper() + note[1:])}.[/yellow]")
    _summary(calibration)
    console.print(f"Écrit dans {escape(str(sortie))} : {', '.join(p.name for p in written)}. Pour planifier avec "
                  "ces valeurs : copier acceptation.csv dans l'instance et reporter candidats et delai_jours de "
                  "reservataires_calibres.csv dans reservataires.csv.", highlight=False)


def _summary(calibration) -> None:
    from rich.table import Table

    from flux_opt.explanation.sentences import fr_percent

    table = Table(title="Acceptation par quartile et financement (intervalle à 95 %)")
    for heading in ("quartile × financement", "réponses", "mesuré", "défaut", "estimation", "intervalle"):
        table.add_column(heading, justify="left" if heading.startswith("quartile") else "right")
    for r in calibration.rows("acceptation").itertuples(index=False):
        table.add_row(r.portee, str(r.effectif), fr_percent(r.brut), fr_percent(r.defaut), fr_percent(r.estime),
                      f"{fr_percent(r.borne_basse)} – {fr_percent(r.borne_haute)}")
    console.print(table)
