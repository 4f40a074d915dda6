"""`flux-opt plan`, `verifier`, `schema`: the year's plan and its input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from flux_opt.cli.app import (INSTANCE, app, console, err, fail_on_invalid, guard_outputs, phase_progress,
                              show_warnings)
from flux_opt.errors import InvalidInput


@app.command("plan")
def plan_command(
    instance: INSTANCE,
    sortie: Annotated[Path, typer.Option("--sortie", "-s", help="Dossier où écrire le plan.")] = Path("sortie"),
    moteur: Annotated[str, typer.Option(help="highs (direct, rapide) ou pyomo (même modèle via Pyomo).")] = "highs",
    depuis_conversion: Annotated[bool, typer.Option(
        "--depuis-conversion", help="Objectifs de l'année pris dans le lissage du stock converti (conventions.csv).")] = False,
    analyse: Annotated[bool, typer.Option(
        "--analyse/--sans-analyse",
        help="Calculer le coût exact des règles les plus contraignantes (nouvelles résolutions) ; "
             "--sans-analyse pour les grandes instances.")] = True,
    evaluer: Annotated[bool, typer.Option(
        "--evaluer", help="Simuler ensuite l'année du plan (evaluation.csv, section du rapport).")] = False,
    tirages: Annotated[int, typer.Option("--tirages", min=1, max=100_000, help="Années simulées avec --evaluer.")] = 200,
    graine: Annotated[int, typer.Option("--graine", min=0, help="Graine des tirages de --evaluer : même graine, "
                                                                "mêmes chiffres.")] = 0,
    bilan_precedent: Annotated[Path | None, typer.Option(
        "--bilan-precedent", help="Dossier écrit par flux-opt bilan l'an dernier : ce qui était dû et non obtenu "
                                  "(ou obtenu au-delà) est reporté sur les objectifs (\\[revoyure] report_max).")] = None,
    hors_cadre_legal: Annotated[bool, typer.Option(
        "--hors-cadre-legal", help="Explorer des taux au-delà des maxima légaux au lieu de les ramener à la loi : "
                                   "chaque sortie indique alors que le plan n'est pas un plan légal.")] = False,
):
    """Calculer le plan d'orientation optimal de l'année et l'écrire dans SORTIE (avec rapport.html et rapport.xlsx)."""
    from flux_opt import pipeline
    from flux_opt.model.solve import NoSolutionFound
    from flux_opt.report.exports import claimed_folder
    from flux_opt.report.outputs import write_run
    from flux_opt.report.terminal import conformity_table, plan_summary

    if moteur not in ("highs", "pyomo"):
        err.print(f"[red]Moteur inconnu « {moteur} » : choisir highs ou pyomo.[/red]")
        raise typer.Exit(2)
    guard_outputs({"--sortie": sortie}, {"l'instance": instance, "le bilan précédent": bilan_precedent})
    try:
        with claimed_folder(sortie):
            with phase_progress() as phases:
                done = pipeline.run_path(instance, pipeline.PlanOptions(
                    engine=moteur, from_conversion=depuis_conversion, analysis=True, rule_costs=analyse,
                    previous_bilan=bilan_precedent, conformity=True, draws=tirages if evaluer else 0,
                    seed=graine, outside_the_law=hors_cadre_legal), phases=phases)
                write_run(done, sortie, phases=phases)
    except InvalidInput as exc:
        fail_on_invalid(exc)
    except NoSolutionFound as exc:
        err.print(f"[red]Le solveur n'a trouvé aucun plan ({exc}). Augmentez \\[solveur] temps_max_s.[/red]")
        raise typer.Exit(4)
    result = done.result
    show_warnings(result.resume["avertissements"])
    console.print(plan_summary(result))
    console.print(conformity_table(done.conformite, noms=result.noms))
    console.print(f"Fichiers écrits dans [bold]{sortie}[/bold] (rapport : rapport.html, rapport.xlsx ; une "
                  f"annexe par réservataire : annexes/ ; note pour l'État : note_etat.html ; raisons : "
                  f"flux-opt expliquer {sortie}).")
    if done.evaluation is not None:
        from flux_opt.report.evaluation import evaluation_view

        console.print(evaluation_view(done.evaluation))
    raise typer.Exit(result.exit_code)


@app.command("verifier")
def verifier_command(instance: INSTANCE, depuis_conversion: Annotated[bool, typer.Option(
        "--depuis-conversion", help="Objectifs de l'année tirés du lissage des conventions en stock (comme plan).")] = False):
    """Vérifier les données d'une instance sans calculer de plan."""
    from flux_opt.explanation.sentences import fr_number
    from flux_opt.pipeline import check
    from flux_opt.plan.result import clipping_rows
    from flux_opt.report.terminal import problems_table, targets_view

    try:
        checked = check(instance, depuis_conversion)
    except InvalidInput as exc:
        fail_on_invalid(exc)
    data, flux, targets, warnings = checked.instance, checked.flux, checked.targets, checked.warnings
    show_warnings(data.avertissements)
    clipped = flux.ecretements
    console.print(f"[green]Instance valide[/green] : {len(data.parc)} lignes de parc, "
                  f"{len(data.reservataires)} réservataires, {len(data.demande)} viviers ; "
                  f"flux annuel C = {fr_number(flux.total)} logements (libérations prévues A = "
                  f"{fr_number(flux.liberations)}, exclusions B = {fr_number(flux.exclus)}).")
    console.print(targets_view(data, targets, flux.total))
    for row in clipping_rows(clipped).itertuples():
        console.print(f"[yellow]Exclusion écrêtée[/yellow] ({row.portee}) : {row.explication}.")
    if warnings:
        console.print(problems_table(warnings, title="Avertissements (règles légales)"))


@app.command("controler")
def controler_command(
    plan: Annotated[Path, typer.Argument(help="Dossier du plan (plan.csv, et attributions.csv s'il existe), "
                                                   "ou son fichier plan.csv.")],
    instance: INSTANCE,
    sortie: Annotated[Path | None, typer.Option(
        "--sortie", "-s", help="Fichier CSV où écrire le tableau de conformité (défaut : PLAN/conformite.csv).")] = None,
):
    """Contrôler un plan (de flux-opt, d'un tableur ou d'une année passée) au regard des règles légales,
    à partir des fichiers seuls : code 0 si toutes sont respectées, 3 sinon."""
    from flux_opt.conformity.check import conformity, holds, read_plan_files
    from flux_opt.report.guard import files_of
    from flux_opt.pipeline import load
    from flux_opt.plan.names import Names
    from flux_opt.plan.folder import plan_folder
    from flux_opt.report.exports import write_atomically, write_csv
    from flux_opt.report.terminal import conformity_table

    folder = plan_folder(plan)  # a plan folder, or its plan.csv
    target = sortie or folder / "conformite.csv"  # beside the plan by default: never over what it reads
    guard_outputs({"--sortie": target},
                  {"l'instance": instance, **files_of(folder, "le plan", but=folder / "conformite.csv")})
    try:
        data = load(instance, targets=False)  # the law's rules only: the plan's targets are not checked
        files = read_plan_files(plan, data)
    except InvalidInput as exc:
        fail_on_invalid(exc)
    except (OSError, ValueError) as exc:
        err.print(f"[red]Plan illisible : {exc}[/red]")
        raise typer.Exit(2)
    table = conformity(data, files)
    write_atomically(target.parent, {target.name: lambda p: write_csv(table, p)})
    console.print(conformity_table(table, noms=Names.of(data)))
    console.print(f"Tableau écrit dans [bold]{target}[/bold].")
    raise typer.Exit(0 if holds(table) else 3)


@app.command("schema")
def schema_command(
    sortie: Annotated[Path | None, typer.Option("--sortie", "-s", help="Fichier à écrire (sinon écran).")] = None,
    dictionnaire: Annotated[bool, typer.Option(
        "--dictionnaire", help="Le dictionnaire des données en Markdown (docs/donnees.md) au lieu du JSON.")] = False,
):
    """Exporter le schéma des données d'entrée (JSON Schema) ou le dictionnaire des données."""
    from flux_opt.input.dictionary import dictionary_markdown
    from flux_opt.input.schema import json_schema
    from flux_opt.report.exports import write_file

    text = dictionary_markdown().rstrip("\n") if dictionnaire else json.dumps(json_schema(), ensure_ascii=False, indent=2)
    if sortie:
        try:
            write_file(sortie, lambda p: p.write_text(text + "\n", encoding="utf-8"))
        except InvalidInput as exc:
            fail_on_invalid(exc)
        console.print(f"Schéma écrit dans {sortie}.")
    else:
        typer.echo(text)
