"""The journal file: reading (strict, French refusals naming the line), appending
under an advisory lock in one durable write, all or nothing."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel

from flux_opt.input.schema import parse_bool
from flux_opt.year.journal.events import COLONNES, EvenementRefuse, JournalInvalide, valider_evenement
from flux_opt.year.journal.history import Historique, rejouer


try:  # advisory lock so two writers never interleave; Unix only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


def _lire_lignes(texte: str, chemin: Path) -> Iterator[dict[str, str]]:
    if texte and not texte.endswith("\n"):
        raise JournalInvalide(
            f"{chemin} : la dernière ligne est incomplète (écriture interrompue ?) ; corriger le fichier avant d'ajouter"
        )
    lecteur = csv.reader(io.StringIO(texte))
    entete = next(lecteur, None)
    if entete is None:
        return
    if tuple(entete) != COLONNES:
        raise JournalInvalide(f"{chemin} : en-tête inattendu ; attendu : {','.join(COLONNES)}")
    for numero, valeurs in enumerate(lecteur, start=2):
        if len(valeurs) != len(COLONNES):
            raise JournalInvalide(f"{chemin}, ligne {numero} : {len(valeurs)} colonnes au lieu de {len(COLONNES)}")
        yield dict(zip(COLONNES, valeurs))


def _csv(lignes: Iterable[Mapping[str, str]], entete: bool) -> str:
    tampon = io.StringIO()
    ecrivain = csv.writer(tampon, lineterminator="\n")
    if entete:
        ecrivain.writerow(COLONNES)
    for ligne in lignes:
        ecrivain.writerow([ligne[c] for c in COLONNES])
    return tampon.getvalue()


def ajouter_evenement(chemin: str | Path, evenement: Mapping[str, Any] | BaseModel) -> dict[str, str]:
    """Validate one event against the journal's history and append it durably.

    Returns the row written (segment and réservataire completed from the history).
    Raises EvenementRefuse (nothing written) or JournalInvalide.
    """
    return ajouter_evenements(chemin, [evenement])[0]


def ajouter_evenements(chemin: str | Path, evenements: Iterable[Mapping[str, Any] | BaseModel]) -> list[dict[str, str]]:
    """Append a batch of events: all are validated first, then written at once, or none."""
    chemin = Path(chemin)
    modeles = [valider_evenement(ev) for ev in evenements]
    if not chemin.exists():
        lignes = _valider_sur(Historique(), modeles)
        _creer(chemin, _csv(lignes, entete=True))
        return lignes
    with open(chemin, "r+", encoding="utf-8", newline="") as fichier:
        if fcntl is not None:
            fcntl.flock(fichier, fcntl.LOCK_EX)
        try:
            texte = fichier.read()
            historique = rejouer(_lire_lignes(texte, chemin))
            lignes = _valider_sur(historique, modeles)
            fichier.seek(0, os.SEEK_END)
            fichier.write(_csv(lignes, entete=not texte))
            fichier.flush()
            os.fsync(fichier.fileno())
        finally:
            if fcntl is not None:
                fcntl.flock(fichier, fcntl.LOCK_UN)
    return lignes


def _valider_sur(historique: Historique, modeles: list[BaseModel]) -> list[dict[str, str]]:
    lignes = []
    for rang, modele in enumerate(modeles, start=1):
        try:
            lignes.append(historique.appliquer(modele))
        except EvenementRefuse as erreur:
            if len(modeles) > 1:
                erreur.args = (f"{erreur.args[0]} (événement n° {rang} du lot ; aucun événement du lot n'est écrit)",)
            raise
    return lignes


def _creer(chemin: Path, contenu: str) -> None:
    chemin.parent.mkdir(parents=True, exist_ok=True)
    with open(chemin, "x", encoding="utf-8", newline="") as fichier:
        fichier.write(contenu)
        fichier.flush()
        os.fsync(fichier.fileno())


def verifier_journal(chemin: str | Path) -> Historique:
    """Re-validate a whole journal file (e.g. after a manual edit)."""
    chemin = Path(chemin)
    return rejouer(_lire_lignes(chemin.read_text(encoding="utf-8"), chemin))


def journal_vide() -> pd.DataFrame:
    """An empty journal frame with the typed columns of `lire_journal`."""
    return _typer(pd.DataFrame({c: pd.Series([], dtype=str) for c in COLONNES}))


def lire_journal(chemin: str | Path) -> pd.DataFrame:
    """Read the journal: codes as strings, horodatage as datetime, qpv as bool,
    prioritaire as nullable boolean, candidats as nullable integer."""
    chemin = Path(chemin)
    if not chemin.exists():
        raise FileNotFoundError(f"journal introuvable : {chemin}")
    brut = pd.read_csv(chemin, dtype=str, keep_default_na=False)
    if tuple(brut.columns) != COLONNES:
        raise JournalInvalide(f"{chemin} : en-tête inattendu ; attendu : {','.join(COLONNES)}")
    return _typer(brut)


def _typer(brut: pd.DataFrame) -> pd.DataFrame:
    df = brut.copy()
    df["horodatage"] = pd.to_datetime(df["horodatage"], format="ISO8601")
    df["qpv"] = df["qpv"].map(lambda v: parse_bool(v) if v else False).astype(bool)
    df["prioritaire"] = pd.array([parse_bool(v) if v else pd.NA for v in df["prioritaire"]], dtype="boolean")
    df["candidats"] = pd.array([int(v) if v else pd.NA for v in df["candidats"]], dtype="Int64")
    return df

