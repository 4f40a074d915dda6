"""The year after the plan: `suivi`, `orienter`, `bilan`, `simuler`, `evaluer` — parse, call year/ (the
orienter workflow is year/orienter.orient, usable from Python), print; exit 2 with a French message."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.markup import escape

from flux_opt.cli.app import app, console, err, fail_on_invalid, guard_outputs, hold_output
from flux_opt.errors import InvalidInput


PLAN = Annotated[Path, typer.Argument(help="Dossier d'un plan (sortie de flux-opt plan).")]
JOURNAL = Annotated[Path, typer.Argument(help="Journal des événements de l'année (CSV : flux-opt journal ajouter).")]


INSTANCE_OPTION = Annotated[Path | None, typer.Option(
    "--instance", "-i", help="Instance du plan : conventions des réservataires (délais, candidats), CIA "
                             "(défaut : celle notée dans resume.json).")]
DATE = Annotated[str | None, typer.Option("--date", help="Date AAAA-MM-JJ ou JJ/MM/AAAA (défaut : date du dernier "
                                                         "événement du journal).")]


def refuse(message: object) -> NoReturn:
    err.print(f"[red]{message}[/red]")
    err.print("[red]Rien n'a été écrit.[/red]")
    raise typer.Exit(2)


def read_inputs(plan: Path, journal: Path | None = None, instance: Path | None = None, **others: Path | None) -> dict:
    """What a year command reads, for guard_outputs: the plan folder, the journal, the instance
    (given, or the one recorded in resume.json)."""
    from flux_opt.year.conventions import instance_du_plan

    try:
        instance = instance_du_plan(plan, instance)
    except (ValueError, OSError, InvalidInput):  # an unreadable resume.json is reported by the command itself
        pass
    return {"le plan": plan, "le journal": journal, "l'instance": instance, **others}


def instance_and_context(plan: Path, instance: Path | None):
    """The plan's instance and the conventions behind it (None, None when not at hand); exit 2 on
    invalid data."""
    from flux_opt.year.conventions import plan_instance

    try:
        return plan_instance(plan, instance)
    except InvalidInput as exc:
        fail_on_invalid(exc)
    except FileNotFoundError as exc:
        err.print(f"[red]Instance {instance or plan} : {exc}[/red]")
        raise typer.Exit(2)


def plan_journal(plan: Path, journal: Path, contexte):
    """The journal re-validated against the plan's réservataires and delays; exit 2 naming the line."""
    from flux_opt.year.orienter import Refus, plan_journal

    try:
        return plan_journal(plan, journal, contexte)
    except Refus as exc:
        refuse(exc)  # the message names the file (and the line)


def reservataires_du_plan(plan: Path) -> list[str]:
    from flux_opt.year.journal.against_plan import reservataires_du_plan

    try:
        return reservataires_du_plan(plan)
    except ValueError as exc:
        refuse(exc)


def _jour(texte: str | None, df) -> date:
    from flux_opt.year.orienter import Refus, day_of

    try:
        return day_of(texte, df)
    except Refus as exc:
        refuse(exc)


@app.command("suivi")
def suivi_command(plan: PLAN, journal: JOURNAL, jour: DATE = None, instance: INSTANCE_OPTION = None,
                  sortie: Annotated[Path | None, typer.Option("--sortie", "-s", help="Dossier où écrire suivi.xlsx et suivi.html.")] = None):
    """Suivi de l'année : objectif, réalisé, en cours, reste et projection par réservataire,
    par typologie, QPV / hors QPV et commune ; mixité face aux objectifs légaux et de la CIA ;
    délais des propositions ; alertes."""
    from flux_opt.year.preorientation import SEUIL_REOPTIMISATION, gap_to_plan
    from flux_opt.year.reorientation import year_journal
    from flux_opt.year.suivi import suivi
    from flux_opt.report.exports import write_atomically
    from flux_opt.plan.names import Names
    from flux_opt.report.suivi import write_suivi_excel, suivi_page, suivi_view

    with ExitStack() as held:
        hold_output(held, sortie, inputs=read_inputs(plan, journal, instance))  # checked before the work
        data, contexte = instance_and_context(plan, instance)
        lieux = Names.of(data) if data is not None else None  # communes and EPCI by name
        df = plan_journal(plan, journal, contexte)
        day = _jour(jour, df)
        try:
            s = suivi(plan, df, day, contexte=contexte)
            drift = gap_to_plan(plan, year_journal(df, day.year, day))
        except (ValueError, FileNotFoundError, InvalidInput) as exc:
            refuse(exc)
        console.print(suivi_view(s, ecart=drift, seuil=SEUIL_REOPTIMISATION, lieux=lieux))
        if contexte is None:
            console.print("[dim]Instance du plan introuvable : délais de 30 jours, sans objectifs de la CIA ni parts "
                          "de publics prioritaires dues (indiquer --instance).[/dim]")
        if sortie:
            page = suivi_page(s, ecart=drift, seuil=SEUIL_REOPTIMISATION, lieux=lieux)
            write_atomically(sortie, {"suivi.xlsx": lambda p: write_suivi_excel(s, p, lieux=lieux),
                                      "suivi.html": lambda p: p.write_text(page, encoding="utf-8")})
            console.print(f"Suivi écrit dans [bold]{sortie / 'suivi.xlsx'}[/bold] et [bold]suivi.html[/bold].")


LOGEMENT = Annotated[str | None, typer.Option(
    help="Logement libéré : commune=59350,typologie=T3,qpv=non,financement=PLUS (inutile si --logement-id "
         "désigne un logement déjà libéré dans le journal).")]
LOGEMENT_ID = Annotated[str | None, typer.Option(
    "--logement-id", help="Identifiant du logement (numéro RPLS ou du bailleur), pour le suivre dans le journal.")]


@app.command("orienter")
def orienter_command(
    plan: PLAN, journal: JOURNAL, logement: LOGEMENT = None, logement_id: LOGEMENT_ID = None,
    instance: INSTANCE_OPTION = None, jour: DATE = None,
    sortie: Annotated[Path | None, typer.Option(
        "--sortie", "-s", help="Dossier où garder le plan ré-optimisé (sinon il n'est pas écrit).")] = None,
    enregistrer: Annotated[bool, typer.Option(
        "--enregistrer", help="Enregistrer dans le journal la proposition au premier réservataire (et la "
                              "libération du logement si elle n'y est pas).")] = False,
):
    """Proposer le réservataire d'un logement libéré, avec la raison ; ré-optimiser le reste
    de l'année si les libérations s'écartent de la prévision."""
    with ExitStack() as held:
        hold_output(held, sortie, inputs=read_inputs(plan, journal, instance))  # checked before any re-solve
        _orienter(plan, journal, logement, logement_id, instance, jour, sortie, enregistrer)


def _orienter(plan, journal, logement, logement_id, instance, jour, sortie, enregistrer) -> None:
    from flux_opt.errors import InvalidInput
    from flux_opt.model.solve import NoSolutionFound
    from flux_opt.year.orienter import Refus, orient

    try:
        done = orient(plan, journal, logement, logement_id, instance, jour, sortie, enregistrer, status=console.status)
    except InvalidInput as exc:
        fail_on_invalid(exc)
    except Refus as exc:
        refuse(exc)
    except FileNotFoundError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2)
    except ValueError as exc:  # the re-solve cannot be made (e.g. not the plan's instance)
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2)
    except NoSolutionFound as exc:
        err.print(f"[red]Le solveur n'a trouvé aucun plan ({exc}).[/red]")
        raise typer.Exit(4)
    if done.reused is not None:
        console.print(f"Logement {done.reused} : déjà libéré dans le journal, en attente d'un réservataire.")
    console.print(f"Mode : {done.mode}")
    noms = {r: c.nom for r, c in done.contexte.conventions.items()} if done.contexte else {}
    _show_ranking(done.ranking, noms)
    if done.contexte is None:
        console.print("[dim]Instance du plan introuvable : les territoires des réservataires ne sont pas "
                      "vérifiés (indiquer --instance).[/dim]")
    if sortie:
        console.print(f"Plan ré-optimisé écrit dans [bold]{sortie}[/bold]." if done.reoptimise else
                      f"Pas de ré-optimisation : rien n'est écrit dans {sortie}.")
    if done.recorded is not None:
        first = done.ranking.iloc[0].reservataire
        console.print(f"Enregistré dans {journal} : logement {done.recorded} proposé à "
                      f"[bold]{noms.get(first, first)}[/bold] le {done.day.strftime('%d/%m/%Y')}.")


def _show_ranking(ranking, noms: dict) -> None:
    from flux_opt.report.tables import frame_table

    if len(ranking):
        name, why = noms.get(ranking.iloc[0].reservataire, ranking.iloc[0].reservataire), ranking.iloc[0].raison
        console.print(f"Proposition : [bold]{name}[/bold]" + (why.removeprefix(name) if why.startswith(name)
                                                               else f" — {why}") + ".")
    else:
        console.print("[yellow]Aucun réservataire du plan n'a ce logement dans son territoire : il revient au "
                      "bailleur.[/yellow]")
    console.print(frame_table(_ranking_fr(ranking, noms), "Pré-orientation : classement des réservataires"))


NIVEAUX_FR = {"segment": "segment", "commune_typologie_qpv": "commune × typologie × QPV",
              "commune_typologie": "commune × typologie", "commune": "commune", "ensemble": "ensemble du plan",
              "atteint": "objectif atteint"}


def _ranking_fr(ranking, noms: dict):
    table = ranking.assign(niveau=ranking["niveau"].map(NIVEAUX_FR),
                           reservataire=ranking["reservataire"].map(lambda r: noms.get(r, r)),
                           taux=(100 * ranking["taux"]).round().astype(int).astype(str) + " %")
    return table[["rang", "reservataire", "niveau", "prevus", "orientes", "restants", "taux"]].rename(columns={
        "rang": "Rang", "reservataire": "Réservataire", "niveau": "Niveau comparé", "prevus": "Prévus",
        "orientes": "Orientés", "restants": "Restants", "taux": "Part orientée"})


@app.command("evaluer")
def evaluer_command(
    plan: PLAN,
    tirages: Annotated[int, typer.Option("--tirages", "-n", help="Nombre d'années simulées.")] = 200,
    graine: Annotated[int, typer.Option("--graine", help="Graine du tirage (même graine, même résultat).")] = 0,
    instance: Annotated[Path | None, typer.Option(
        "--instance", "-i", help="Instance du plan (défaut : celle notée dans resume.json).")] = None,
    sortie: Annotated[Path | None, typer.Option(
        "--sortie", "-s", help="Dossier où écrire evaluation.csv (défaut : le dossier du plan).")] = None,
):
    """Simuler l'année d'un plan (de flux-opt, du tableur ou écrit à la main au format plan.csv) :
    attributions réalisées, logements rendus au bailleur ou vacants, mixité et publics prioritaires,
    avec leur dispersion sur les tirages."""
    evaluate_plan_folder(plan, instance, tirages, graine, sortie)


def evaluate_plan_folder(plan: Path, instance: Path | None, tirages: int, graine: int, sortie: Path | None = None) -> None:
    """Simulate the plan of `plan`, print the table, write evaluation.csv (and the report section)."""
    from flux_opt.report.evaluation import evaluation_view, write_evaluation
    from flux_opt.report.guard import files_of
    from flux_opt.plan.evaluation import evaluate_folder
    from flux_opt.plan.folder import plan_folder
    from flux_opt.year.conventions import instance_du_plan

    plan = plan_folder(plan)  # a plan folder, or its plan.csv
    target = (sortie or plan) / "evaluation.csv"  # beside the plan by default: never over what it reads
    guard_outputs({"--sortie": target}, {"l'instance": instance_du_plan(plan, instance),
                                         **files_of(plan, "le plan", but=plan / "evaluation.csv")})
    data = instance_and_context(plan, instance)[0]
    if data is None:
        err.print(f"[red]Instance du plan introuvable (ni --instance, ni chemin valide dans {plan / 'resume.json'}) : "
                  "donner --instance.[/red]")
        raise typer.Exit(2)
    try:
        with console.status(f"Simulation de {tirages} années…"):
            evaluation = evaluate_folder(plan, data, tirages, graine)
    except (ValueError, FileNotFoundError, InvalidInput) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2)
    console.print(evaluation_view(evaluation))
    write_evaluation(evaluation, sortie or plan)
    console.print(f"Évaluation écrite dans [bold]{(sortie or plan) / 'evaluation.csv'}[/bold].")


@app.command("bilan")
def bilan_command(
    plan: PLAN, journal: JOURNAL, annee: Annotated[int, typer.Option(help="Année du bilan.")],
    instance: INSTANCE_OPTION = None,
    instance_suivante: Annotated[Path | None, typer.Option(
        "--instance-suivante", help="Instance de l'année suivante : prévision des retraits prise dans son "
                                    "exclusions.csv (sinon moyenne des trois dernières années du journal).")] = None,
    sortie: Annotated[Path, typer.Option("--sortie", "-s", help="Dossier des fichiers.")] = Path("bilan"),
):
    """Bilan annuel (CCH R.441-5-1) face aux objectifs du plan : un fichier Excel et HTML consolidé,
    un par réservataire, un par EPCI doté d'une CIA, et bilan_ANNEE.csv (lu par plan --bilan-precedent)."""
    with ExitStack() as held:
        hold_output(held, sortie, inputs=read_inputs(plan, journal, instance,  # checked before the work
                                                     **{"l'instance suivante": instance_suivante}))
        _bilan(plan, journal, annee, instance, instance_suivante, sortie)


def _bilan(plan: Path, journal: Path, annee: int, instance, instance_suivante, sortie: Path) -> None:
    from flux_opt.report.bilan import priority_view, write_bilan
    from flux_opt.year.bilan import bilan_du_plan

    data, contexte = instance_and_context(plan, instance)
    df = plan_journal(plan, journal, contexte)
    exclusions = instance_and_context(plan, instance_suivante)[0].table("exclusions") if instance_suivante else None
    try:
        consolide, par_epci = bilan_du_plan(plan, df, annee, contexte, exclusions)
    except (ValueError, FileNotFoundError, InvalidInput) as exc:
        refuse(f"Bilan {annee} : {exc}")
    written = write_bilan(consolide, sortie, par_epci, data)
    console.print(f"{len(written)} fichiers écrits dans [bold]{sortie}[/bold] (bilan consolidé, "
                  f"{len(consolide.reservataires)} réservataires, {len(par_epci)} EPCI {'doté' if len(par_epci) < 2 else 'dotés'} d'une CIA).")
    console.print(priority_view(consolide))
    if contexte is None:
        console.print("[dim]Instance du plan introuvable : sans parts dues ni CIA (indiquer --instance).[/dim]")


@app.command("simuler")
def simuler_command(plan: PLAN, journal: Annotated[Path, typer.Option(help="Journal à écrire.")],
                    annee: Annotated[int, typer.Option(help="Année simulée.")],
                    graine: int = 0, derive: Annotated[float, typer.Option(help="Écart à la prévision (0 = fidèle).")] = 0.0):
    """Générer une année d'événements plausible à partir d'un plan (essais, démonstration)."""
    from flux_opt.explanation.sentences import fr_number
    from flux_opt.year.journal.events import EvenementRefuse, JournalInvalide
    from flux_opt.report.guard import files_of
    from flux_opt.year.simulation import simulate_year

    guard_outputs({"--journal": journal}, files_of(plan, "le plan"))
    try:
        count = simulate_year(plan, journal, annee, graine, derive)
    except (EvenementRefuse, JournalInvalide) as exc:  # e.g. the year is already in this journal
        err.print(f"[red]{escape(str(exc))}[/red] Le journal {journal} est inchangé ; pour une autre année "
                  "simulée, donner un autre --journal.")
        raise typer.Exit(2)
    console.print(f"{fr_number(count)} événements écrits dans {journal}.")
