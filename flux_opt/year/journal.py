"""Append-only events journal of the year (CSV, one row per event).

The file format is documented in French in ``models/journal.md``. Every append is
validated against the file's history (a lease needs a released and proposed
dwelling, a withdrawn dwelling cannot be proposed, dates never go backwards per
dwelling...). A refused event raises ``EvenementRefuse`` and writes nothing.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from flux_opt.vocabulary import CategorieExclusion, Financement, Quartile, Typologie

try:  # advisory lock so two writers never interleave; Unix only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

COLONNES: tuple[str, ...] = (
    "horodatage",
    "evenement",
    "logement_id",
    "commune",
    "epci",
    "qpv",
    "typologie",
    "financement",
    "periode_construction",
    "reservataire",
    "candidats",
    "categorie",
    "quartile",
    "prioritaire",
    "commentaire",
)
SEGMENT: tuple[str, ...] = ("commune", "epci", "qpv", "typologie", "financement", "periode_construction")
EVENEMENTS: tuple[str, ...] = (
    "liberation",
    "proposition",
    "candidats",
    "examen_caleol",
    "refus",
    "bail_signe",
    "retrait",
)
CATEGORIES_RETRAIT: dict[str, str] = {
    "mutation": "mutation interne",
    "anru": "relogement ANRU / NPNRU",
    "orcod": "relogement ORCOD",
    "lhi": "relogement lutte contre l'habitat indigne (LHI)",
    "vente": "relogement lié à une vente",
    "urgence": "relogement d'urgence décidé avec le préfet",
}

_VRAI = {"oui", "true", "1", "vrai", "o"}
_FAUX = {"non", "false", "0", "faux", "n"}


class EvenementRefuse(ValueError):
    """A user-facing refusal: French message naming the offending field."""

    def __init__(self, champ: str, message: str):
        self.champ = champ
        super().__init__(f"événement refusé — champ « {champ} » : {message}")


class JournalInvalide(ValueError):
    """The journal file itself is malformed or its history is contradictory."""


def en_booleen(valeur: Any) -> bool:
    """Parse contract booleans (oui/non, true/false, 1/0)."""
    if isinstance(valeur, bool):
        return valeur
    texte = str(valeur).strip().lower()
    if texte in _VRAI:
        return True
    if texte in _FAUX:
        return False
    raise ValueError(f"booléen attendu (oui/non), reçu « {valeur} »")


# --------------------------------------------------------------------------- models

class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    horodatage: datetime
    logement_id: Annotated[str, Field(min_length=1)]
    commune: Annotated[str, Field(pattern=r"^(\d{5}|2[AB]\d{3})$")] | None = None
    epci: Annotated[str, Field(pattern=r"^\d{9}$")] | None = None
    qpv: bool | None = None
    typologie: Typologie | None = None
    financement: Financement | None = None
    periode_construction: str | None = None
    reservataire: Annotated[str, Field(min_length=1)] | None = None
    commentaire: str | None = None

    @field_validator("qpv", mode="before")
    @classmethod
    def _qpv(cls, v: Any) -> Any:
        return None if v is None else en_booleen(v)


class Liberation(_Base):
    evenement: Literal["liberation"] = "liberation"
    commune: Annotated[str, Field(pattern=r"^(\d{5}|2[AB]\d{3})$")]
    qpv: bool
    typologie: Typologie
    financement: Financement


class Proposition(_Base):
    evenement: Literal["proposition"] = "proposition"
    reservataire: Annotated[str, Field(min_length=1)]


class Candidats(_Base):
    evenement: Literal["candidats"] = "candidats"
    candidats: Annotated[int, Field(ge=1, le=20)]


class ExamenCaleol(_Base):
    evenement: Literal["examen_caleol"] = "examen_caleol"


class Refus(_Base):
    evenement: Literal["refus"] = "refus"


class BailSigne(_Base):
    evenement: Literal["bail_signe"] = "bail_signe"
    quartile: Quartile | None = None
    prioritaire: bool | None = None

    @field_validator("prioritaire", mode="before")
    @classmethod
    def _prioritaire(cls, v: Any) -> Any:
        return None if v is None else en_booleen(v)


class Retrait(_Base):
    evenement: Literal["retrait"] = "retrait"
    categorie: CategorieExclusion


Evenement = Annotated[
    Union[Liberation, Proposition, Candidats, ExamenCaleol, Refus, BailSigne, Retrait],
    Field(discriminator="evenement"),
]
_ADAPTATEUR: TypeAdapter = TypeAdapter(Evenement)

_MESSAGES = {
    "missing": "champ obligatoire manquant",
    "extra_forbidden": "champ non autorisé pour ce type d'événement",
    "string_pattern_mismatch": "format invalide",
    "string_too_short": "valeur vide",
    "literal_error": "valeur non reconnue",
    "datetime_from_date_parsing": "date invalide (attendu AAAA-MM-JJ ou AAAA-MM-JJTHH:MM:SS)",
    "datetime_parsing": "date invalide (attendu AAAA-MM-JJ ou AAAA-MM-JJTHH:MM:SS)",
    "int_parsing": "nombre entier attendu",
    "greater_than_equal": "valeur trop petite",
    "less_than_equal": "valeur trop grande",
    "union_tag_invalid": "type d'événement inconnu (attendu : " + ", ".join(EVENEMENTS) + ")",
    "union_tag_not_found": "type d'événement manquant",
}


def valider_evenement(donnees: Mapping[str, Any] | BaseModel) -> BaseModel:
    """Validate one event (dict or model); blank strings count as absent."""
    if isinstance(donnees, BaseModel):
        donnees = donnees.model_dump(exclude_none=True)
    propres = {k: v for k, v in donnees.items() if v is not None and not (isinstance(v, str) and v.strip() == "")}
    try:
        return _ADAPTATEUR.validate_python(propres)
    except ValidationError as erreur:
        premiere = erreur.errors()[0]
        loc = [str(p) for p in premiere["loc"]]
        if len(loc) >= 2 and loc[0] in EVENEMENTS:  # first element is the union tag
            loc = loc[1:]
        champ = loc[-1] if loc else "evenement"
        message = _MESSAGES.get(premiere["type"])
        if message is None:
            message = str(premiere["msg"]).removeprefix("Value error, ")
        if premiere["type"] == "literal_error":
            message += f" (attendu : {premiere['ctx']['expected'].replace(' or ', ' ou ')})"
        valeur = premiere.get("input")
        if premiere["type"] != "missing" and isinstance(valeur, (str, int, float)):
            message += f", reçu « {valeur} »"
        raise EvenementRefuse(champ, message) from None


# --------------------------------------------------------------------------- history

@dataclass
class Cycle:
    """One release of a dwelling, from `liberation` to `bail_signe` or `retrait`."""

    numero: int
    liberation: dict[str, str]
    date_liberation: datetime
    reservataire_actif: str | None = None
    avec_candidats: bool = False
    ferme_par: str | None = None
    date_fermeture: datetime | None = None
    reservataire_final: str | None = None
    categorie: str | None = None
    propositions: int = 0


@dataclass
class Historique:
    """Replayed state of the journal: latest cycle and last date per dwelling."""

    cycles: dict[str, Cycle] = field(default_factory=dict)
    derniere_date: dict[str, datetime] = field(default_factory=dict)
    tous: list[Cycle] = field(default_factory=list)

    def appliquer(self, ev: BaseModel) -> dict[str, str]:
        """Check `ev` against the history, update it, return the completed CSV row."""
        lid = ev.logement_id
        derniere = self.derniere_date.get(lid)
        if derniere is not None and ev.horodatage < derniere:
            raise EvenementRefuse(
                "horodatage",
                f"le {_date_txt(ev.horodatage)} est antérieur au dernier événement du logement "
                f"{lid} ({_date_txt(derniere)})",
            )
        cycle = self.cycles.get(lid)
        if ev.evenement == "liberation":
            if cycle is not None and cycle.ferme_par is None:
                raise EvenementRefuse(
                    "logement_id",
                    f"le logement {lid} est déjà libéré depuis le {_date_txt(cycle.date_liberation)} "
                    "et n'a ni bail signé ni retrait",
                )
            ligne = _ligne(ev)
            nouveau = Cycle(numero=(cycle.numero + 1 if cycle else 1), liberation=ligne,
                            date_liberation=ev.horodatage)
            self.cycles[lid] = nouveau
            self.tous.append(nouveau)
            self.derniere_date[lid] = ev.horodatage
            return ligne
        cycle = self._cycle_ouvert(lid, cycle, ev.evenement)
        ligne = _ligne(ev)
        _completer_segment(ligne, cycle.liberation)
        self._transition(cycle, ev, ligne)
        self.derniere_date[lid] = ev.horodatage
        return ligne

    @staticmethod
    def _cycle_ouvert(lid: str, cycle: Cycle | None, evenement: str) -> Cycle:
        if cycle is None:
            raise EvenementRefuse(
                "logement_id",
                f"le logement {lid} n'a jamais été libéré : enregistrer d'abord un événement "
                f"« liberation » avant « {evenement} »",
            )
        if cycle.ferme_par == "bail_signe":
            raise EvenementRefuse(
                "logement_id",
                f"le logement {lid} a déjà un bail signé le {_date_txt(cycle.date_fermeture)} "
                f"(réservataire {cycle.reservataire_final}) : « {evenement} » exige une nouvelle libération",
            )
        if cycle.ferme_par == "retrait":
            raise EvenementRefuse(
                "logement_id",
                f"le logement {lid} a été retiré du flux le {_date_txt(cycle.date_fermeture)} "
                f"(catégorie {cycle.categorie}) : il ne peut plus être proposé ni attribué",
            )
        return cycle

    @staticmethod
    def _transition(cycle: Cycle, ev: BaseModel, ligne: dict[str, str]) -> None:
        lid, quoi = ev.logement_id, ev.evenement
        if quoi == "retrait":
            cycle.ferme_par, cycle.date_fermeture, cycle.categorie = "retrait", ev.horodatage, ev.categorie
            cycle.reservataire_actif = None
            return
        if quoi == "proposition":
            if cycle.reservataire_actif is not None:
                raise EvenementRefuse(
                    "reservataire",
                    f"le logement {lid} est déjà proposé à {cycle.reservataire_actif} : "
                    "enregistrer un refus avant une nouvelle proposition",
                )
            cycle.reservataire_actif, cycle.avec_candidats = ev.reservataire, False
            cycle.propositions += 1
            return
        if cycle.reservataire_actif is None:
            raise EvenementRefuse(
                "logement_id", f"le logement {lid} n'est proposé à aucun réservataire : « {quoi} » impossible"
            )
        if ev.reservataire is not None and ev.reservataire != cycle.reservataire_actif:
            raise EvenementRefuse(
                "reservataire",
                f"« {ev.reservataire} » contredit la proposition en cours du logement {lid} "
                f"à {cycle.reservataire_actif}",
            )
        ligne["reservataire"] = cycle.reservataire_actif
        if quoi == "candidats":
            cycle.avec_candidats = True
        elif quoi == "examen_caleol" and not cycle.avec_candidats:
            raise EvenementRefuse(
                "evenement", f"aucun candidat n'a été présenté pour le logement {lid} : examen en CALEOL impossible"
            )
        elif quoi == "refus":
            cycle.reservataire_actif, cycle.avec_candidats = None, False
        elif quoi == "bail_signe":
            cycle.ferme_par, cycle.date_fermeture = "bail_signe", ev.horodatage
            cycle.reservataire_final, cycle.reservataire_actif = cycle.reservataire_actif, None


def _date_txt(moment: datetime | None) -> str:
    if moment is None:
        return "?"
    return moment.strftime("%d/%m/%Y") if moment.time() == datetime.min.time() else moment.strftime("%d/%m/%Y %H:%M")


def _format(valeur: Any) -> str:
    if valeur is None:
        return ""
    if isinstance(valeur, bool):
        return "oui" if valeur else "non"
    if isinstance(valeur, datetime):
        if valeur.time() == datetime.min.time():
            return valeur.date().isoformat()
        return valeur.isoformat(timespec="seconds")
    return str(valeur)


def _ligne(ev: BaseModel) -> dict[str, str]:
    donnees = ev.model_dump()
    return {col: _format(donnees.get(col)) for col in COLONNES}


def _completer_segment(ligne: dict[str, str], liberation: dict[str, str]) -> None:
    """Fill the segment from the release; a differing value is a contradiction."""
    for col in SEGMENT:
        if ligne[col] and liberation[col] and ligne[col] != liberation[col]:
            raise EvenementRefuse(
                col,
                f"« {ligne[col]} » contredit la libération du logement {ligne['logement_id']} "
                f"(« {liberation[col]} »)",
            )
        ligne[col] = liberation[col] or ligne[col]


def rejouer(lignes: Iterable[Mapping[str, str]], premiere_ligne: int = 2) -> Historique:
    """Replay rows of a journal; raise JournalInvalide naming the line on contradiction."""
    historique = Historique()
    for numero, ligne in enumerate(lignes, start=premiere_ligne):
        try:
            historique.appliquer(valider_evenement(ligne))
        except EvenementRefuse as erreur:
            raise JournalInvalide(f"journal incohérent à la ligne {numero} : {erreur}") from None
    return historique


# --------------------------------------------------------------------------- file I/O

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
    df["qpv"] = df["qpv"].map(lambda v: en_booleen(v) if v else False).astype(bool)
    df["prioritaire"] = pd.array([en_booleen(v) if v else pd.NA for v in df["prioritaire"]], dtype="boolean")
    df["candidats"] = pd.array([int(v) if v else pd.NA for v in df["candidats"]], dtype="Int64")
    return df


# --------------------------------------------------------------------------- derived views

def etat_cycles(journal_df: pd.DataFrame) -> pd.DataFrame:
    """One row per release (logement_id, cycle) with its current status.

    statut: `libere` (released, not proposed or proposal refused), `propose`
    (proposal in progress), `attribue` (lease signed), `retire` (withdrawn).
    `reservataire` is the réservataire of the proposal in progress or of the lease.
    """
    historique = rejouer(_lignes_depuis_df(journal_df))
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
        })
    colonnes = ["logement_id", "cycle", *SEGMENT, "date_liberation", "statut", "reservataire", "categorie",
                "propositions"]
    etat = pd.DataFrame(lignes, columns=colonnes)
    etat["qpv"] = etat["qpv"].map(en_booleen).astype(bool) if len(etat) else etat["qpv"].astype(bool)
    etat["date_liberation"] = pd.to_datetime(etat["date_liberation"])
    return etat


def _lignes_depuis_df(journal_df: pd.DataFrame) -> Iterator[dict[str, str]]:
    for enregistrement in journal_df[list(COLONNES)].to_dict("records"):
        yield {c: ("" if _vide(v) else _format(v.to_pydatetime() if isinstance(v, pd.Timestamp) else v))
               for c, v in enregistrement.items()}


def _vide(valeur: Any) -> bool:
    return valeur is None or valeur is pd.NA or (isinstance(valeur, float) and valeur != valeur) or valeur is pd.NaT


def avec_cycles(journal_df: pd.DataFrame) -> pd.DataFrame:
    """Add `cycle` (release number of the dwelling) and `rang_proposition`
    (proposal number inside the cycle, 0 before the first proposal) to each event row."""
    df = journal_df.reset_index(drop=True).copy()
    est_liberation = (df["evenement"] == "liberation").astype(int)
    df["cycle"] = est_liberation.groupby(df["logement_id"]).cumsum()
    est_proposition = (df["evenement"] == "proposition").astype(int)
    df["rang_proposition"] = est_proposition.groupby([df["logement_id"], df["cycle"]]).cumsum()
    return df
