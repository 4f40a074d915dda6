"""Views derived from the journal: the state of each release, cycle numbers per event."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd

from flux_opt.input.schema import parse_bool
from flux_opt.year.journal.events import COLONNES, SEGMENT
from flux_opt.year.journal.history import format_valeur, rejouer


def cycle_states(journal_df: pd.DataFrame) -> pd.DataFrame:
    """One row per release (logement_id, cycle) with its current status.

    statut: `libere` (released, not proposed or proposal refused), `propose`
    (proposal in progress), `attribue` (lease signed), `retire` (withdrawn).
    `reservataire` is the réservataire of the proposal in progress or of the lease.
    """
    historique = rejouer(enumerate(_lignes_depuis_df(journal_df), start=2))
    lignes = []
    for cycle in historique.tous:
        statut = {"bail_signe": "attribue", "retrait": "retire"}.get(cycle.ferme_par or "", "libere")
        if statut == "libere" and cycle.reservataire_actif is not None:
            statut = "propose"
        lignes.append({
            "logement_id": cycle.liberation["logement_id"],
            "cycle": cycle.numero,
            **{c: cycle.liberation[c] for c in SEGMENT},
            "date_liberation": cycle.date_liberation,
            "statut": statut,
            "reservataire": cycle.reservataire_final or cycle.reservataire_actif or "",
            "categorie": cycle.categorie or "",
            "propositions": cycle.propositions,
            "date_proposition": cycle.date_proposition,
            "candidats_presentes": cycle.candidats_presentes,
            "retours": ";".join(cycle.retours),
        })
    colonnes = ["logement_id", "cycle", *SEGMENT, "date_liberation", "statut", "reservataire", "categorie",
                "propositions", "date_proposition", "candidats_presentes", "retours"]
    etat = pd.DataFrame(lignes, columns=colonnes)
    etat["qpv"] = etat["qpv"].map(parse_bool).astype(bool) if len(etat) else etat["qpv"].astype(bool)
    etat["date_liberation"] = pd.to_datetime(etat["date_liberation"])
    etat["date_proposition"] = pd.to_datetime(etat["date_proposition"])
    return etat


def _lignes_depuis_df(journal_df: pd.DataFrame) -> Iterator[dict[str, str]]:
    for enregistrement in journal_df[list(COLONNES)].to_dict("records"):
        yield {c: ("" if _vide(v) else format_valeur(v.to_pydatetime() if isinstance(v, pd.Timestamp) else v))
               for c, v in enregistrement.items()}


def _vide(valeur: Any) -> bool:
    return valeur is None or valeur is pd.NA or (isinstance(valeur, float) and valeur != valeur) or valeur is pd.NaT


def with_cycles(journal_df: pd.DataFrame) -> pd.DataFrame:
    """Add `cycle` (release number of the dwelling) and `rang_proposition`
    (proposal number inside the cycle, 0 before the first proposal) to each event row."""
    df = journal_df.reset_index(drop=True).copy()
    est_liberation = (df["evenement"] == "liberation").astype(int)
    df["cycle"] = est_liberation.groupby(df["logement_id"]).cumsum()
    est_proposition = (df["evenement"] == "proposition").astype(int)
    df["rang_proposition"] = est_proposition.groupby([df["logement_id"], df["cycle"]]).cumsum()
    return df
