"""`flux-opt orienter`, usable from Python: propose the réservataire of a released dwelling, with the
reason, and re-optimise the rest of the year first when the releases drift from the forecast.

The workflow: read the plan's instance and journal (the load stage), find the dwelling, decide
whether to re-optimise (preorientation.should_reoptimise), re-solve the rest of the year
(reorientation) and write that plan through the one writer (report/outputs.py) — in `sortie`, or
a temporary folder —, rank the réservataires on the plan followed, record the proposal if asked.
It writes through the report, so it sits on the floor above it (tests/test_architecture.py).
"""

from __future__ import annotations

import tempfile
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable

import pandas as pd

from flux_opt.report.outputs import write_run
from flux_opt.year.conventions import Contexte, delais_par_defaut, plan_instance
from flux_opt.year.journal.against_plan import next_logement_id, read_plan_journal, reservataires_du_plan
from flux_opt.year.journal.events import EvenementRefuse, JournalInvalide, date_francaise
from flux_opt.year.journal.storage import append_events
from flux_opt.year.preorientation import (check_logement, logement_from_journal, open_release_of, rank_reservataires,
                                          read_logement, should_reoptimise)
from flux_opt.year.reorientation import reoptimisation_sentence, reoptimise_rest_of_year, year_journal

SUIT_LE_PLAN = "suit le plan (les libérations restent dans la prévision)"


class Refus(Exception):
    """The dwelling cannot be oriented as asked (French message; nothing is written)."""


@dataclass
class Orientation:
    ranking: pd.DataFrame  # réservataires, best first (preorientation.rank_reservataires)
    mode: str  # the plan followed, in words
    reoptimise: bool  # the rest of the year was re-solved (and written in `sortie` when given)
    day: date
    contexte: Contexte | None  # None: the plan's instance is not at hand (territories not checked)
    recorded: str | None = None  # the dwelling's identifier, when the proposal was recorded
    reused: str | None = None  # a release of the journal waiting for this dwelling, proposed rather than recorded anew


def day_of(texte: str | None, journal_df: pd.DataFrame) -> date:
    """--date (AAAA-MM-JJ or JJ/MM/AAAA), else the day of the journal's last event (a simulated
    year is not today)."""
    if texte:
        try:
            return date.fromisoformat(date_francaise(texte))
        except ValueError:
            raise Refus(f"Date invalide « {texte} » : attendu AAAA-MM-JJ ou JJ/MM/AAAA.") from None
    if not len(journal_df):
        raise Refus("Le journal ne contient aucun événement : indiquer la date voulue avec --date.")
    return journal_df["horodatage"].max().date()


def plan_journal(plan: Path, journal: Path, contexte: Contexte | None) -> pd.DataFrame:
    """The journal against the plan; Refus naming the file (and the line)."""
    try:
        return read_plan_journal(plan, journal, contexte)
    except (JournalInvalide, FileNotFoundError, ValueError) as exc:
        raise Refus(str(exc)) from None


def orient(plan: Path, journal: Path, logement: str | None = None, logement_id: str | None = None,
           instance: Path | None = None, jour: str | None = None, sortie: Path | None = None,
           enregistrer: bool = False,
           status: Callable[[str], AbstractContextManager] = lambda text: nullcontext()) -> Orientation:
    """The whole `orienter` workflow. Raises Refus (nothing written), ValueError (the re-solve cannot
    be made: not the plan's instance…) or NoSolutionFound. `status` shows a long step (the re-solve)."""
    data, contexte = plan_instance(plan, instance)
    complet = plan_journal(plan, journal, contexte)
    wanted, a_liberer = _dwelling(plan, complet, logement, logement_id, data)
    day = day_of(jour, complet) if jour or len(complet) else date.today()
    df = year_journal(complet, day.year, day)
    # the same dwelling already released by that day and still waiting: propose that release
    reused = open_release_of(df, wanted) if a_liberer and logement_id is None else None
    if reused is not None:
        logement_id, a_liberer = reused, False
    ranking, mode, reoptimise = _rank(plan, df, day, wanted, data, contexte, sortie, status)
    done = Orientation(ranking, mode, reoptimise, day, contexte, reused=reused)
    if enregistrer:
        done.recorded = _record_proposal(journal, plan, contexte, ranking, wanted, logement_id, a_liberer, day)
    return done


def _dwelling(plan: Path, journal_df: pd.DataFrame, logement: str | None, logement_id: str | None, data):
    """The dwelling to orient (validated against the plan), and whether its release is still to record."""
    try:
        if logement is None:
            if logement_id is None:
                raise Refus("Indiquer le logement à orienter : --logement commune=…,typologie=…,qpv=…,financement=… "
                            "ou --logement-id d'un logement libéré dans le journal.")
            return logement_from_journal(journal_df, logement_id), False
        wanted = read_logement(logement)
        check_logement(plan, wanted, data)
        deja = logement_id is not None and logement_id in set(journal_df["logement_id"])
        return wanted, not deja
    except EvenementRefuse as exc:
        raise Refus(str(exc)) from None


def _rank(plan: Path, df: pd.DataFrame, day: date, wanted, data, contexte: Contexte | None, sortie: Path | None,
          status) -> tuple[pd.DataFrame, str, bool]:
    """Rank the réservataires on the plan, or on the re-optimised plan when releases drift."""
    territoires = dict(contexte.territoires) if contexte else None
    noms = {r: c.nom for r, c in contexte.conventions.items()} if contexte else None
    with tempfile.TemporaryDirectory(prefix="flux-opt-") as temporaire:
        try:
            reoptimise = should_reoptimise(plan, df)
        except (ValueError, FileNotFoundError) as exc:
            raise Refus(str(exc)) from None
        suivi_de, mode = plan, SUIT_LE_PLAN
        if reoptimise:
            if data is None:
                raise Refus("Les libérations s'écartent de la prévision : le reste de l'année doit être "
                            "ré-optimisé. Indiquer l'instance du plan avec --instance.")
            suivi_de = sortie or Path(temporaire)
            with status("Ré-optimisation du reste de l'année…"):
                done = reoptimise_rest_of_year(data, plan, df, day)
            write_run(done, suivi_de)
            mode = "plan ré-optimisé : " + reoptimisation_sentence(done.result.resume)
        ranking = rank_reservataires(suivi_de, df, wanted, territoires=territoires, noms=noms)
    return ranking, mode, reoptimise


def _record_proposal(journal: Path, plan: Path, contexte: Contexte | None, ranking: pd.DataFrame, wanted,
                     logement_id: str | None, a_liberer: bool, day: date) -> str:
    """Record the release (if new) and the proposal to the first réservataire, all or nothing."""
    if not len(ranking):
        raise Refus("Aucun réservataire à qui proposer ce logement : rien n'est enregistré.")
    try:
        reservataires = reservataires_du_plan(plan)
        if logement_id is None:
            logement_id = next_logement_id(journal)
        evenements = [{"horodatage": day, "evenement": "liberation", "logement_id": logement_id,
                       **wanted.model_dump(exclude_none=True)}] if a_liberer else []
        evenements.append({"horodatage": day, "evenement": "proposition", "logement_id": logement_id,
                           "reservataire": ranking.iloc[0].reservataire})
        append_events(journal, evenements, reservataires, delais_par_defaut(reservataires, contexte))
    except (EvenementRefuse, JournalInvalide, ValueError) as exc:
        raise Refus(str(exc)) from None
    return logement_id
