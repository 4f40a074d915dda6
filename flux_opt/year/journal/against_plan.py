"""The journal read against the plan of its year: the plan's réservataires, their delays to propose
(their conventions', else the default), and the identifier of a dwelling released without one."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from flux_opt.plan.folder import read_objectifs
from flux_opt.year.conventions import Contexte, delais_par_defaut
from flux_opt.year.journal.history import rejouer
from flux_opt.year.journal.storage import check_journal, read_journal


def reservataires_du_plan(plan: str | Path) -> list[str]:
    """The réservataires of a plan folder (objectifs.csv); ValueError naming the plan."""
    try:
        return list(read_objectifs(plan)["reservataire"])
    except (ValueError, FileNotFoundError) as exc:
        raise ValueError(f"Plan {plan} : {exc}") from None


def read_plan_journal(plan: str | Path, journal: str | Path, contexte: Contexte | None) -> pd.DataFrame:
    """The journal re-validated against the plan's réservataires and delays (JournalInvalide or
    FileNotFoundError name the file and the line)."""
    reservataires = reservataires_du_plan(plan)
    return read_journal(journal, reservataires, delais_par_defaut(reservataires, contexte))


def next_logement_id(journal: str | Path) -> str:
    """The identifier of a dwelling released without one: the journal's next free `LOG-nnnnn`
    (`LOG-00001` for a journal not yet written)."""
    journal = Path(journal)
    return (check_journal(journal) if journal.exists() else rejouer([], str(journal))).prochain_identifiant()
