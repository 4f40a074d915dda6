"""`flux-opt journal ajouter | verifier`: the year's journal kept by commands, not by hand."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from flux_opt.cli.app import app, console
from flux_opt.cli.year import DATE, INSTANCE_OPTION, JOURNAL, LOGEMENT_ID, instance_and_context, refuse, reservataires_du_plan

journal_app = typer.Typer(help="Journal des événements de l'année : enregistrer un événement, vérifier le fichier.",
                          no_args_is_help=True)
app.add_typer(journal_app, name="journal")

PLAN_OPTION = Annotated[Path, typer.Option("--plan", "-p", help="Dossier du plan de l'année (réservataires "
                                                                  "connus ; délais de leurs conventions).")]
Texte = Annotated[str | None, typer.Option()]


@journal_app.command("ajouter")
def ajouter_command(
    journal: JOURNAL,
    evenement: Annotated[str, typer.Argument(help="liberation, proposition, candidats, examen_caleol, refus, "
                                                  "bail_signe, retrait ou retour_bailleur.")],
    plan: PLAN_OPTION, instance: INSTANCE_OPTION = None, jour: DATE = None, logement_id: LOGEMENT_ID = None,
    commune: Texte = None, epci: Texte = None, qpv: Texte = None, typologie: Texte = None, financement: Texte = None,
    periode_construction: Texte = None, reservataire: Texte = None,
    candidats: Annotated[int | None, typer.Option(help="Nombre de candidats présentés (événement candidats).")] = None,
    categorie: Annotated[str | None, typer.Option(help="Catégorie du retrait : mutation, anru, orcod, lhi, "
                                                       "vente, urgence.")] = None,
    quartile: Annotated[str | None, typer.Option(help="Ménage signataire du bail, ou ménage qui refuse : q1 ou q234.")] = None,
    prioritaire: Annotated[str | None, typer.Option(help="Ménage public prioritaire (CCH L.441-1) : oui/non.")] = None,
    dalo: Annotated[str | None, typer.Option(help="Ménage reconnu prioritaire et urgent au titre du DALO "
                                                  "(CCH L.441-2-3) : oui/non ; oui vaut aussi prioritaire.")] = None,
    commentaire: Annotated[str | None, typer.Option("--commentaire", "--motif",
                                                    help="Commentaire ; pour un refus, son motif (obligatoire).")] = None,
):
    """Enregistrer un événement dans le journal, vérifié contre tout l'historique : un événement
    refusé laisse le journal identique, octet pour octet."""
    from flux_opt.year.conventions import delais_par_defaut
    from flux_opt.year.journal.events import EvenementRefuse, JournalInvalide
    from flux_opt.year.journal.storage import append_event

    if evenement == "refus" and not (commentaire or "").strip():
        refuse("événement refusé — champ « commentaire » : indiquer le motif du refus avec --motif")
    contexte = instance_and_context(plan, instance)[1]
    reservataires = reservataires_du_plan(plan)
    valeurs = dict(evenement=evenement, horodatage=jour or date.today().isoformat(), logement_id=logement_id,
                   commune=commune, epci=epci, qpv=qpv, typologie=typologie, financement=financement,
                   periode_construction=periode_construction, reservataire=reservataire, candidats=candidats,
                   categorie=categorie, quartile=quartile, prioritaire=prioritaire, dalo=dalo,
                   commentaire=commentaire)
    try:
        ligne = append_event(journal, valeurs, reservataires, delais_par_defaut(reservataires, contexte))
    except (EvenementRefuse, JournalInvalide) as exc:
        refuse(exc)
    qui = f" ({ligne['reservataire']})" if ligne["reservataire"] else ""
    console.print(f"Enregistré dans {journal} : {evenement} du logement [bold]{ligne['logement_id']}[/bold]{qui} "
                  f"le {ligne['horodatage']}.")


@journal_app.command("verifier")
def verifier_command(journal: JOURNAL, plan: Annotated[Path | None, typer.Option(
        "--plan", "-p", help="Plan de l'année : refuser aussi les réservataires qu'il ne connaît pas.")] = None,
        instance: INSTANCE_OPTION = None):
    """Revalider tout le journal (après une correction à la main) : la première ligne incohérente est nommée."""
    from flux_opt.year.conventions import delais_par_defaut
    from flux_opt.year.journal.events import JournalInvalide
    from flux_opt.year.journal.storage import check_journal

    reservataires = reservataires_du_plan(plan) if plan else None
    delais = delais_par_defaut(reservataires, instance_and_context(plan, instance)[1]) if plan else None
    try:
        historique = check_journal(journal, reservataires, delais)
    except (JournalInvalide, FileNotFoundError) as exc:
        refuse(exc)  # the message names the file (and the line)
    ouverts = sum(1 for c in historique.tous if c.ferme_par is None)
    console.print(f"[green]Journal valide[/green] : {len(historique.lignes)} événements, {len(historique.tous)} "
                  f"libérations dont {ouverts} encore ouverte{'s' if ouverts > 1 else ''} (ni bail signé ni retrait).")
