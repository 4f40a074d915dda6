"""Journal events: the file's columns, one pydantic model per event type, validation
with French messages naming the field (format in models/journal.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from flux_opt.input.schema import parse_bool
from flux_opt.vocabulary import CategorieExclusion, Financement, Quartile, Typologie

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
    "dalo",
    "commentaire",
)
# The header before the `dalo` column: such journals are still read (DALO unknown) and
# appended to in their own format.
COLONNES_SANS_DALO: tuple[str, ...] = tuple(c for c in COLONNES if c != "dalo")
ENTETES: tuple[tuple[str, ...], ...] = (COLONNES, COLONNES_SANS_DALO)
SEGMENT: tuple[str, ...] = ("commune", "epci", "qpv", "typologie", "financement", "periode_construction")
EVENEMENTS: tuple[str, ...] = (
    "liberation",
    "proposition",
    "candidats",
    "examen_caleol",
    "refus",
    "bail_signe",
    "retrait",
    "retour_bailleur",
)
CATEGORIES_RETRAIT: dict[str, str] = {
    "mutation": "mutation interne",
    "anru": "relogement ANRU / NPNRU",
    "orcod": "relogement ORCOD",
    "lhi": "relogement lutte contre l'habitat indigne (LHI)",
    "vente": "relogement lié à une vente",
    "urgence": "relogement d'urgence décidé avec le préfet",
}


DATE_ATTENDUE = "date invalide (attendu AAAA-MM-JJ, JJ/MM/AAAA ou AAAA-MM-JJTHH:MM:SS)"
_DATE_FR = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


def date_francaise(valeur: Any) -> Any:
    """A French date `JJ/MM/AAAA` (optionally ` HH:MM[:SS]`), as a spreadsheet writes it,
    to ISO; anything else is left to the ISO parser. Day first, never month first."""
    if not isinstance(valeur, str):
        return valeur
    trouve = _DATE_FR.match(valeur.strip())
    if trouve is None:
        return valeur
    jour, mois, annee, heure, minute, seconde = trouve.groups()
    texte = f"{annee}-{int(mois):02d}-{int(jour):02d}"
    if heure is not None:
        texte += f"T{int(heure):02d}:{minute}:{seconde or '00'}"
    return texte


class EvenementRefuse(ValueError):
    """A user-facing refusal: French message naming the offending field."""

    def __init__(self, champ: str, message: str):
        self.champ = champ
        super().__init__(f"événement refusé — champ « {champ} » : {message}")


class JournalInvalide(ValueError):
    """The journal file itself is malformed or its history is contradictory."""



# --------------------------------------------------------------------------- models

class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    horodatage: datetime
    logement_id: Annotated[str, Field(min_length=1)] | None = None  # generated for a release without one
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
        return None if v is None else parse_bool(v)

    @field_validator("horodatage", mode="before")
    @classmethod
    def _date_francaise(cls, v: Any) -> Any:
        return date_francaise(v)


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
    quartile: Quartile | None = None  # the household that refused, when known: acceptance by quartile (calibrer)


class RetourBailleur(_Base):
    evenement: Literal["retour_bailleur"] = "retour_bailleur"


class BailSigne(_Base):
    evenement: Literal["bail_signe"] = "bail_signe"
    quartile: Quartile | None = None
    prioritaire: bool | None = None
    dalo: bool | None = None  # household recognised DALO (CCH L.441-2-3): a public prioritaire

    @field_validator("prioritaire", "dalo", mode="before")
    @classmethod
    def _oui_non(cls, v: Any) -> Any:
        return None if v is None else parse_bool(v)


class Retrait(_Base):
    evenement: Literal["retrait"] = "retrait"
    categorie: CategorieExclusion


Evenement = Annotated[
    Union[Liberation, Proposition, Candidats, ExamenCaleol, Refus, BailSigne, Retrait, RetourBailleur],
    Field(discriminator="evenement"),
]
_ADAPTATEUR: TypeAdapter = TypeAdapter(Evenement)

_MESSAGES = {
    "missing": "champ obligatoire manquant",
    "extra_forbidden": "champ non autorisé pour ce type d'événement",
    "string_pattern_mismatch": "format invalide",
    "string_too_short": "valeur vide",
    "literal_error": "valeur non reconnue",
    "datetime_from_date_parsing": DATE_ATTENDUE,
    "datetime_parsing": DATE_ATTENDUE,
    "int_parsing": "nombre entier attendu",
    "greater_than_equal": "valeur trop petite",
    "less_than_equal": "valeur trop grande",
    "union_tag_invalid": "type d'événement inconnu (attendu : " + ", ".join(EVENEMENTS) + ")",
    "union_tag_not_found": "type d'événement manquant",
}


def validate_event(donnees: Mapping[str, Any] | BaseModel) -> BaseModel:
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

