"""The journal file: reading (strict, French refusals naming the line), appending
under an advisory lock in one durable write, all or nothing."""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel

from flux_opt.input.csvfile import csv_error_text
from flux_opt.input.schema import parse_bool
from flux_opt.year.journal.events import COLONNES, ENTETES, EvenementRefuse, JournalInvalide, validate_event
from flux_opt.year.journal.history import Historique, rejouer


try:  # advisory lock so two writers never interleave; Unix only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


@dataclass(frozen=True)
class Fichier:
    """A journal file as read: its events' text and how it is written, so that an
    append keeps the encoding, separator and line ends a spreadsheet gave it."""

    texte: str
    encodage: str = "utf-8"
    separateur: str = ","
    fin_de_ligne: str = "\n"
    colonnes: tuple[str, ...] = COLONNES  # the file's header: an older journal has no `dalo`


def decoder(octets: bytes, chemin: Path) -> Fichier:
    """UTF-8 (with or without BOM) or Windows-1252, `,` or `;` (what a French Excel writes)."""
    if octets.startswith(codecs.BOM_UTF8):
        octets = octets[len(codecs.BOM_UTF8):]
    try:
        texte, encodage = octets.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as erreur:
        try:
            texte, encodage = octets.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            ligne = octets[:erreur.start].count(b"\n") + 1
            raise JournalInvalide(f"{chemin}, ligne {ligne} : encodage non reconnu (UTF-8 ou Windows-1252 "
                                  "attendu)") from None
    premiere = texte.split("\n", 1)[0]
    separateur = ";" if premiere.count(";") > premiere.count(",") else ","
    return Fichier(texte, encodage, separateur, "\r\n" if "\r\n" in texte else "\n",
                   _header(csv.reader(io.StringIO(texte), delimiter=separateur)) or COLONNES)


def _header(lecteur: Iterator[list[str]]) -> tuple[str, ...] | None:
    """The first row that is not blank, stripped; None for an empty file."""
    for ligne in lecteur:
        if any(c.strip() for c in ligne):
            return tuple(c.strip() for c in ligne)
    return None


def read_journal_file(chemin: Path) -> Fichier:
    if not chemin.exists():
        raise FileNotFoundError(f"journal introuvable : {chemin}")
    if chemin.is_dir():
        raise JournalInvalide(f"{chemin} est un dossier : indiquer le fichier CSV du journal")
    return decoder(chemin.read_bytes(), chemin)


def lignes_numerotees(fichier: Fichier, chemin: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number in the file, row) for every event; fully blank rows are skipped."""
    lecteur = csv.reader(io.StringIO(fichier.texte), delimiter=fichier.separateur)
    colonnes = _header(lecteur)
    if colonnes is None:
        return
    if colonnes not in ENTETES:
        raise JournalInvalide(f"{chemin}, ligne {lecteur.line_num} : en-tête inattendu ; attendu : "
                              f"{','.join(COLONNES)}")
    fin_precedente = lecteur.line_num
    try:
        for valeurs in lecteur:
            numero, fin_precedente = fin_precedente + 1, lecteur.line_num
            if not any(v.strip() for v in valeurs):
                continue
            if len(valeurs) != len(colonnes):
                raise JournalInvalide(f"{chemin}, ligne {numero} : {len(valeurs)} colonnes au lieu de {len(colonnes)}")
            yield numero, dict.fromkeys(COLONNES, "") | dict(zip(colonnes, valeurs))
    except csv.Error as exc:
        raise JournalInvalide(f"{chemin}, ligne {fin_precedente + 1} : {csv_error_text(exc)}") from None


def _csv(lignes: Iterable[Mapping[str, str]], entete: bool, fichier: Fichier = Fichier("")) -> str:
    tampon = io.StringIO()
    ecrivain = csv.writer(tampon, delimiter=fichier.separateur, lineterminator=fichier.fin_de_ligne)
    if entete:
        ecrivain.writerow(fichier.colonnes)
    for ligne in lignes:
        ecrivain.writerow([ligne[c] for c in fichier.colonnes])
    return tampon.getvalue()


def append_event(chemin: str | Path, evenement: Mapping[str, Any] | BaseModel,
                      reservataires: Iterable[str] | None = None,
                      delais: Mapping[str, int] | None = None) -> dict[str, str]:
    """Validate one event against the journal's history and append it durably.

    Returns the row written (segment and réservataire completed from the history).
    Raises EvenementRefuse (nothing written) or JournalInvalide.
    """
    return append_events(chemin, [evenement], reservataires, delais)[0]


def append_events(chemin: str | Path, evenements: Iterable[Mapping[str, Any] | BaseModel],
                       reservataires: Iterable[str] | None = None,
                       delais: Mapping[str, int] | None = None) -> list[dict[str, str]]:
    """Append a batch of events: all are validated first, then written at once, or none.

    `reservataires` (known ids) and `delais` (days to propose) make the checks of
    `Historique` stricter; the journal file is left byte-identical on any refusal."""
    chemin = Path(chemin)
    modeles = [validate_event(ev) for ev in evenements]
    contexte = dict(reservataires=None if reservataires is None else frozenset(reservataires),
                    delais=dict(delais or {}))
    if not chemin.exists():
        lignes = _validate_against(Historique(**contexte), modeles)
        _creer(chemin, _csv(lignes, entete=True))
        return lignes
    with open(chemin, "r+b") as flot:
        if fcntl is not None:
            fcntl.flock(flot, fcntl.LOCK_EX)
        try:
            fichier = decoder(flot.read(), chemin)
            if fichier.texte.strip() and not fichier.texte.endswith("\n"):
                raise JournalInvalide(f"{chemin} : la dernière ligne est incomplète (écriture interrompue ?) ; "
                                      "corriger le fichier avant d'ajouter")
            historique = rejouer(lignes_numerotees(fichier, chemin), str(chemin), **contexte)
            _check_dalo_column(fichier, modeles, chemin)
            lignes = _validate_against(historique, modeles)
            octets = _encoder(_csv(lignes, entete=not fichier.texte.strip(), fichier=fichier), fichier)
            flot.seek(0, os.SEEK_END)
            flot.write(octets)
            flot.flush()
            os.fsync(flot.fileno())
        finally:
            if fcntl is not None:
                fcntl.flock(flot, fcntl.LOCK_UN)
    return lignes


def _check_dalo_column(fichier: Fichier, modeles: list[BaseModel], chemin: Path) -> None:
    """A journal started before the `dalo` column is appended to in its own format: a DALO
    flag given for it would be lost, so it is refused rather than dropped."""
    if "dalo" in fichier.colonnes or not fichier.texte.strip():
        return
    if any(getattr(m, "dalo", None) is not None for m in modeles):
        raise EvenementRefuse("dalo", f"le journal {chemin} date d'avant la colonne « dalo » : y insérer une "
                                      "colonne « dalo » juste après « prioritaire » (dans un tableur : insérer "
                                      "une colonne, cellules vides), ou enregistrer le bail sans --dalo")


def _encoder(texte: str, fichier: Fichier) -> bytes:
    try:
        return texte.encode(fichier.encodage)
    except UnicodeEncodeError as erreur:
        raise EvenementRefuse("commentaire", f"le caractère « {erreur.object[erreur.start]} » ne peut pas "
                                             "s'écrire dans ce journal (encodé en Windows-1252)") from None


def _validate_against(historique: Historique, modeles: list[BaseModel]) -> list[dict[str, str]]:
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


def check_journal(chemin: str | Path, reservataires: Iterable[str] | None = None,
                     delais: Mapping[str, int] | None = None) -> Historique:
    """Re-validate a whole journal file (e.g. after a manual edit)."""
    chemin = Path(chemin)
    return rejouer(lignes_numerotees(read_journal_file(chemin), chemin), str(chemin),
                   reservataires=None if reservataires is None else frozenset(reservataires),
                   delais=dict(delais or {}))


def empty_journal() -> pd.DataFrame:
    """An empty journal frame with the typed columns of `read_journal`."""
    return _typer(pd.DataFrame({c: pd.Series([], dtype=str) for c in COLONNES}))


def read_journal(chemin: str | Path, reservataires: Iterable[str] | None = None,
                 delais: Mapping[str, int] | None = None) -> pd.DataFrame:
    """Read and re-validate the journal (its whole history, each refusal naming its line):
    codes as strings, horodatage as datetime, qpv as bool, prioritaire and dalo as
    nullable booleans, candidats as nullable integer; segments completed from the release."""
    historique = check_journal(chemin, reservataires, delais)
    if not historique.lignes:
        return empty_journal()
    return _typer(pd.DataFrame(historique.lignes, columns=list(COLONNES)))


def _typer(brut: pd.DataFrame) -> pd.DataFrame:
    df = brut.copy()
    df["horodatage"] = pd.to_datetime(df["horodatage"], format="ISO8601")
    df["qpv"] = df["qpv"].map(lambda v: parse_bool(v) if v else False).astype(bool)
    for colonne in ("prioritaire", "dalo"):
        df[colonne] = pd.array([parse_bool(v) if v else pd.NA for v in df[colonne]], dtype="boolean")
    df["candidats"] = pd.array([int(v) if v else pd.NA for v in df["candidats"]], dtype="Int64")
    return df
