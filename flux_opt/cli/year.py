"""The year after the plan: `suivi`, `orienter`, `bilan`, `simuler`."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from flux_opt.cli.app import app, console, err


PLAN = Annotated[Path, typer.Argument(help="Dossier d'un plan (sortie de flux-opt plan).")]
JOURNAL = Annotated[Path, typer.Argument(help="Journal des événements (CSV, voir models/journal.md).")]


def _journal(path: Path):
    from flux_opt.year.journal import JournalInvalide, lire_journal

    try:
        return lire_journal(path)
    except (JournalInvalide, FileNotFoundError) as exc:
        err.print(f"[red]Journal {path} : {exc}[/red]")
        raise typer.Exit(2)


def _jour(texte: str | None, df) -> date:
    """--date, else the day of the journal's last event (a simulated year is not today)."""
    if texte:
        try:
            return date.fromisoformat(texte)
        except ValueError:
            err.print(f"[red]Date invalide « {texte} » : attendu AAAA-MM-JJ.[/red]")
            raise typer.Exit(2)
    return df["horodatage"].max().date() if len(df) else date.today()


DATE = Annotated[str | None, typer.Option("--date", help="Date du suivi AAAA-MM-JJ (défaut : date du dernier "
                                                         "événement du journal).")]


def _instance_du_plan(plan: Path, instance: Path | None) -> Path | None:
    """--instance, else the instance path recorded in the plan's resume.json (if it is a path)."""
    import json

    if instance is not None:
        return instance
    resume = plan / "resume.json"
    if resume.exists():
        data = json.loads(resume.read_text(encoding="utf-8"))
        for chemin in (data.get("chemin_instance"), data.get("instance")):
            if isinstance(chemin, str) and chemin and Path(chemin).exists():
                return Path(chemin)
    return None


@app.command("suivi")
def suivi_command(plan: PLAN, journal: JOURNAL, jour: DATE = None,
                  sortie: Annotated[Path | None, typer.Option("--sortie", "-s", help="Dossier où écrire suivi.xlsx et suivi.html.")] = None):
    """Suivi de l'année : objectif, réalisé, en cours, reste et projection par réservataire,
    par typologie, QPV / hors QPV et commune, et mixité à date."""
    from flux_opt.year.preorientation import SEUIL_REOPTIMISATION, ecart_au_plan
    from flux_opt.year.reorientation import journal_de_l_annee
    from flux_opt.year.suivi import suivi
    from flux_opt.report.exports import write_atomically
    from flux_opt.report.suivi import ecrire_suivi_excel, page_suivi, rendu_suivi

    df = _journal(journal)
    day = _jour(jour, df)
    try:
        s = suivi(plan, df, day)
        drift = ecart_au_plan(plan, journal_de_l_annee(df, day.year, day))
    except (ValueError, FileNotFoundError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2)
    console.print(rendu_suivi(s, ecart=drift, seuil=SEUIL_REOPTIMISATION))
    if sortie:
        page = page_suivi(s, ecart=drift, seuil=SEUIL_REOPTIMISATION)
        write_atomically(sortie, {"suivi.xlsx": lambda p: ecrire_suivi_excel(s, p),
                                  "suivi.html": lambda p: p.write_text(page, encoding="utf-8")})
        console.print(f"Suivi écrit dans [bold]{sortie / 'suivi.xlsx'}[/bold] et [bold]suivi.html[/bold].")


@app.command("orienter")
def orienter_command(
    plan: PLAN, journal: JOURNAL,
    logement: Annotated[str, typer.Option(help="commune=59350,typologie=T3,qpv=non,financement=PLUS")],
    instance: Annotated[Path | None, typer.Option(
        "--instance", "-i", help="Instance du plan, pour ré-optimiser (défaut : celle notée dans resume.json).")] = None,
    jour: DATE = None,
    sortie: Annotated[Path | None, typer.Option(
        "--sortie", "-s", help="Dossier où garder le plan ré-optimisé (sinon il n'est pas écrit).")] = None,
):
    """Proposer le réservataire d'un logement libéré, avec la raison ; ré-optimiser le reste
    de l'année si les libérations s'écartent de la prévision."""
    import tempfile

    from flux_opt.year.preorientation import classer_reservataires, doit_reoptimiser, lire_logement
    from flux_opt.year.reorientation import journal_de_l_annee
    from flux_opt.report.tables import frame_table

    try:
        wanted = lire_logement(logement)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2)
    df = _journal(journal)
    day = _jour(jour, df)
    df = journal_de_l_annee(df, day.year, day)
    chemin_instance = _instance_du_plan(plan, instance)
    data = _charger_instance(chemin_instance) if chemin_instance else None
    territoires = ({r.id: set(t) for r, t in zip(data.reservataires, _territoires(data))} if data else None)
    noms = {r.id: r.nom for r in data.reservataires} if data else None
    with tempfile.TemporaryDirectory(prefix="flux-opt-") as temporaire:
        suivi_de = plan
        try:
            reoptimiser_ = doit_reoptimiser(plan, df)
        except (ValueError, FileNotFoundError) as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2)
        if reoptimiser_:
            if data is None:
                err.print("[red]Les libérations s'écartent de la prévision : le reste de l'année doit être "
                          "ré-optimisé. Indiquer l'instance du plan avec --instance.[/red]")
                raise typer.Exit(2)
            suivi_de = sortie or Path(temporaire)
            mode = _reoptimiser(data, plan, df, day, suivi_de)
        else:
            mode = "suit le plan (les libérations restent dans la prévision)"
        ranking = classer_reservataires(suivi_de, df, wanted, territoires=territoires, noms=noms)
    console.print(f"Mode : {mode}")
    if len(ranking):
        console.print(f"Proposition : [bold]{ranking.iloc[0].reservataire}[/bold] — {ranking.iloc[0].raison}.")
    console.print(frame_table(_classement_fr(ranking), "Pré-orientation : classement des réservataires"))
    if sortie:
        console.print(f"Plan ré-optimisé écrit dans [bold]{sortie}[/bold]." if reoptimiser_ else
                      f"Pas de ré-optimisation : rien n'est écrit dans {sortie}.")


NIVEAUX_FR = {"segment": "segment", "commune_typologie_qpv": "commune × typologie × QPV",
              "commune_typologie": "commune × typologie", "commune": "commune", "ensemble": "ensemble du plan",
              "atteint": "objectif atteint"}


def _classement_fr(ranking):
    table = ranking.assign(niveau=ranking["niveau"].map(NIVEAUX_FR),
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
    evaluer_dossier(plan, instance, tirages, graine, sortie)


def evaluer_dossier(plan: Path, instance: Path | None, tirages: int, graine: int, sortie: Path | None = None) -> None:
    """Simulate the plan of `plan`, print the table, write evaluation.csv (and the report section)."""
    from flux_opt.report.evaluation import rendu_evaluation, write_evaluation
    from flux_opt.year.evaluation import evaluate_folder

    chemin = _instance_du_plan(plan, instance)
    if chemin is None:
        err.print(f"[red]Instance du plan introuvable (ni --instance, ni chemin valide dans {plan / 'resume.json'}) : "
                  "donner --instance.[/red]")
        raise typer.Exit(2)
    data = _charger_instance(chemin)
    try:
        with console.status(f"Simulation de {tirages} années…"):
            evaluation = evaluate_folder(plan, data, tirages, graine)
    except (ValueError, FileNotFoundError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2)
    console.print(rendu_evaluation(evaluation))
    write_evaluation(evaluation, sortie or plan)
    console.print(f"Évaluation écrite dans [bold]{(sortie or plan) / 'evaluation.csv'}[/bold].")


def _charger_instance(path: Path):
    from flux_opt.errors import DonneesInvalides
    from flux_opt.input.schema import load_instance

    from flux_opt.cli.app import fail_on_invalid

    try:
        return load_instance(path)
    except DonneesInvalides as exc:
        fail_on_invalid(exc)
    except FileNotFoundError as exc:
        err.print(f"[red]Instance {path} : {exc}[/red]")
        raise typer.Exit(2)


def _territoires(data) -> list[frozenset[str]]:
    from flux_opt.assiette.flux import compute_flux
    from flux_opt.assiette.targets import compute_targets

    targets = compute_targets(data, compute_flux(data))
    return [targets.territoires[r.id] for r in data.reservataires]


def _reoptimiser(data, plan: Path, df, day: date, dossier: Path) -> str:
    """Re-solve the rest of the year, write the new plan in `dossier`, return the mode sentence."""
    from flux_opt.model.solve import SolveurSansSolution
    from flux_opt.year.reorientation import phrase_reoptimisation, reoptimiser
    from flux_opt.report.exports import write_plan

    try:
        with console.status("Ré-optimisation du reste de l'année…"):
            result = reoptimiser(data, plan, df, day)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2)
    except SolveurSansSolution as exc:
        err.print(f"[red]Le solveur n'a trouvé aucun plan ({exc}).[/red]")
        raise typer.Exit(4)
    write_plan(result, dossier)
    return "plan ré-optimisé : " + phrase_reoptimisation(result.resume)


@app.command("bilan")
def bilan_command(journal: JOURNAL, annee: Annotated[int, typer.Option(help="Année du bilan.")],
                  sortie: Annotated[Path, typer.Option("--sortie", "-s", help="Dossier des fichiers.")] = Path("bilan")):
    """Bilan annuel (CCH R.441-5-1) : un fichier Excel et HTML consolidé et un par réservataire."""
    from flux_opt.year.bilan import bilan, ecrire_bilan

    written = ecrire_bilan(bilan(_journal(journal), annee), sortie)
    console.print(f"{len(written)} fichiers écrits dans [bold]{sortie}[/bold].")


@app.command("simuler")
def simuler_command(plan: PLAN, journal: Annotated[Path, typer.Option(help="Journal à écrire.")],
                    annee: Annotated[int, typer.Option(help="Année simulée.")],
                    graine: int = 0, derive: Annotated[float, typer.Option(help="Écart à la prévision (0 = fidèle).")] = 0.0):
    """Générer une année d'événements plausible à partir d'un plan (essais, démonstration)."""
    from flux_opt.year.simulation import simuler_annee

    count = simuler_annee(plan, journal, annee, graine, derive)
    console.print(f"{count} événements écrits dans {journal}.")
