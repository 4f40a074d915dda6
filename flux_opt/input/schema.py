"""Validated instance: pydantic v2 models of the data contract (docs/donnees.md).

`load_instance(path)` reads the files (flux_opt.input.read), validates every row and every
cross-reference, and either returns an `Instance` or raises `DonneesInvalides`
listing *all* problems, each with its file, line and field, in French.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter,
                      ValidationError, model_validator)

from flux_opt.errors import DonneesInvalides, Probleme
from flux_opt.input.raw import REQUIRED_TABLES, RawInstance, RawTable
from flux_opt.input.read import read_instance
from flux_opt.input.validation import check_references
from flux_opt import vocabulary


_TRUE = {"oui", "true", "1", "vrai", "o", "yes"}
_FALSE = {"non", "false", "0", "faux", "n", "no"}


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and value.strip() == "":
        return None
    return value


def parse_bool(value: Any) -> Any:
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError("oui/non attendu (ou true/false, 1/0)")
    return value


def _decimal(value: Any) -> Any:
    """Accept French decimal commas ("0,08") as well as points."""
    if isinstance(value, str):
        return value.strip().replace(",", ".")
    return value


def _code(width: int):
    """Codes are strings; a number (from a spreadsheet cell) is padded back: 1001 → "01001"."""

    def convert(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("code attendu")
        if isinstance(value, (int, float)):
            value = str(int(value)).zfill(width)
        if isinstance(value, str):
            value = value.strip()
        return value

    return convert


def _code_list(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(";") if v.strip()]
    return value


def _typologie(value: Any) -> Any:
    if isinstance(value, str):
        v = value.strip().upper()
        return {"T6": "T6+", "T6 ET PLUS": "T6+"}.get(v, v)
    return value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _financement(value: Any) -> Any:
    if isinstance(value, str):
        v = value.strip()
        return "autre" if v.lower() == "autre" else v.upper()
    return value


Opt = lambda t: Annotated[t | None, BeforeValidator(_blank_to_none)]  # noqa: E731
Bool = Annotated[bool, BeforeValidator(parse_bool), BeforeValidator(_blank_to_none)]
# A flag left blank means "non" (optional columns of the data contract).
Flag = Annotated[bool, BeforeValidator(parse_bool), BeforeValidator(lambda v: "non" if _blank_to_none(v) is None else v)]
OptBool = Annotated[bool | None, BeforeValidator(parse_bool), BeforeValidator(_blank_to_none)]
Rate = Annotated[float, Field(ge=0, le=1), BeforeValidator(_decimal)]
OptRate = Annotated[float | None, Field(ge=0, le=1), BeforeValidator(_decimal), BeforeValidator(_blank_to_none)]
Count = Annotated[float, Field(ge=0), BeforeValidator(_decimal)]
OptCount = Annotated[float | None, Field(ge=0), BeforeValidator(_decimal), BeforeValidator(_blank_to_none)]
Commune = Annotated[str, Field(pattern=r"^(\d{5}|2[AB]\d{3})$"), BeforeValidator(_code(5))]
OptCommune = Annotated[Commune | None, BeforeValidator(_blank_to_none)]
Epci = Annotated[str, Field(pattern=r"^\d{9}$"), BeforeValidator(_code(9))]
OptEpci = Annotated[Epci | None, BeforeValidator(_blank_to_none)]
Departement = Annotated[str, Field(pattern=r"^(\d{2,3}|2[AB])$"), BeforeValidator(_code(2))]
Typologie = Annotated[vocabulary.Typologie, BeforeValidator(_typologie)]
OptTypologie = Annotated[Typologie | None, BeforeValidator(_blank_to_none)]
Financement = Annotated[vocabulary.Financement, BeforeValidator(_financement)]
OptFinancement = Annotated[Financement | None, BeforeValidator(_blank_to_none)]
Text = Annotated[str, Field(min_length=1)]
OptText = Annotated[str | None, BeforeValidator(_blank_to_none)]


# --------------------------------------------------------------------------- parameters

class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InstanceInfo(_Section):
    nom: Text
    bailleur: Text
    departement: Departement
    annee: Annotated[int, Field(ge=2000, le=2100)]


class Regles(_Section):
    prefet_taux: Rate = 0.30
    prefet_agents_taux: Rate = 0.05
    prefet_hors_qpv_min: Rate = 0.30
    prefet_hors_qpv_lecture: Literal["taux", "part"] = "taux"
    prefet_uniformite_tolerance: Annotated[float, Field(ge=0)] = 1.0
    collectivite_plafond: Rate = 0.20
    prioritaires_min: Rate = 0.25


class Rotation(_Section):
    defaut: Rate = 0.08


class Cia(_Section):
    epci: list[Epci] = []
    q1_hors_qpv: Rate = 0.25
    q234_qpv: Rate = 0.50


class Solveur(_Section):
    temps_max_s: Annotated[float, Field(gt=0)] = 60.0
    ecart_relatif: Annotated[float, Field(ge=0, le=1)] = 1e-4
    threads: Annotated[int, Field(ge=0)] = 1
    graine: Annotated[int, Field(ge=0)] = 0
    # Objective units (≈ expected lettings); blank: 0.5 % of the flux with the composition demand
    # model (its LP is fractional, models/orientation.md §2), HiGHS's default otherwise.
    ecart_absolu: Annotated[float | None, Field(ge=0)] = None


class Objectif(_Section):
    """Weights of the objective (models/orientation.md §4)."""

    prime_prioritaire: Annotated[float, Field(ge=0)] = 0.2
    penalite_indicatif: Annotated[float, Field(ge=0)] = 1.0
    penalite_violation: Annotated[float, Field(gt=0)] = 10.0
    stabilisation: Annotated[float, Field(ge=0)] = 1e-3


class Demande(_Section):
    """How the year is lived (models/orientation.md §2, « Demande »): who selects the households,
    how often they accept a rent level, what a dwelling returned to the bailleur costs.

    Acceptance defaults (share of proposals a household accepts), rationale in models/orientation.md:
    a Q1 household takes a PLAI or an old low-rent dwelling (`autre`) most often, a PLS rarely."""

    # "composition" is the model of the year as lived; "transport" (the first model: the optimiser
    # picks the households) stays the default until the re-solving paths (negotiation sweeps, rule
    # costs) solve the composition model as `plan` does (models/orientation.md §2).
    modele: Literal["composition", "transport"] = "transport"
    financement: Literal["auto", "exact", "moyen"] = "auto"
    cout_retour: Annotated[float, Field(ge=0)] = 0.5
    q1_plai: Rate = 0.85
    q1_plus: Rate = 0.70
    q1_pls: Rate = 0.20
    q1_autre: Rate = 0.80
    q234_plai: Rate = 0.55
    q234_plus: Rate = 0.75
    q234_pls: Rate = 0.70
    q234_autre: Rate = 0.60

    def taux(self) -> dict[tuple[str, str], float]:
        """Acceptance per (quartile, financement) from this section."""
        return {(q, f): getattr(self, f"{q}_{f.lower()}") for q in vocabulary.QUARTILES
                for f in vocabulary.FINANCEMENTS}
class Conversion(_Section):
    """Stock conversion and lissage (`flux-opt convertir`, models/lissage.md)."""

    methode: Literal["globale", "convention"] = "convention"
    taux_rotation: Rate | None = None  # the bailleur's agreed rate
    taux_rotation_annees: dict[str, Rate] | None = None  # rate per past year: their average is used
    taux_par_typologie: dict[str, Rate] | None = None  # with a `typologie` column in conventions.csv
    horizon: Annotated[int, Field(ge=1, le=50)] = 3
    duree_lissage: Annotated[int | None, Field(ge=1, le=50)] = None
    part_max: Rate | None = None
    flux_prevu: dict[str, Annotated[float, Field(ge=0)]] | None = None  # forecast flux per year
    mode_departements: Literal["departement", "region"] = "departement"
    parc_departements: dict[str, Annotated[float, Field(ge=0)]] | None = None  # mode "region"
    temps_max_s: Annotated[float | None, Field(gt=0)] = None


class Revoyure(_Section):
    """Clause de revoyure: what last year's bilan carries into this year's targets."""

    report_max: Rate = 0.10  # share of a target a carry-over may add or take back; 0 = off


class Parametres(_Section):
    instance: InstanceInfo
    regles: Regles = Regles()
    rotation: Rotation = Rotation()
    cia: Cia = Cia()
    solveur: Solveur = Solveur()
    objectif: Objectif = Objectif()
    demande: Demande = Demande()
    conversion: Conversion = Conversion()
    revoyure: Revoyure = Revoyure()


# --------------------------------------------------------------------------- table rows

class _Row(BaseModel):
    # The data contract lets users add columns: extra columns are kept out, not refused.
    model_config = ConfigDict(extra="ignore")


class ParcRow(_Row):
    commune: Commune
    commune_nom: OptText = None
    epci: Epci
    qpv: Bool
    typologie: Typologie
    financement: Financement
    periode_construction: OptText = None
    logements: Count
    taux_rotation: OptRate = None
    premieres_mises_en_location: OptCount = None
    liberations: OptCount = None


class ExclusionRow(_Row):
    categorie: Annotated[vocabulary.CategorieExclusion, BeforeValidator(_lower)]
    commune: OptCommune = None
    typologie: OptTypologie = None
    qpv: OptBool = None
    financement: OptFinancement = None
    logements: Count


class ReservataireRow(_Row):
    id: Text
    nom: Text
    type: Annotated[Literal["prefet", "prefet_agents", "collectivite", "action_logement",
                            "employeur", "autre", "bailleur"], BeforeValidator(_lower)]
    territoire: Annotated[list[str], BeforeValidator(_code_list), BeforeValidator(_blank_to_none)] = []
    taux: OptRate = None
    logements: OptCount = None
    logements_reserves: OptCount = None
    gestion: Annotated[vocabulary.Gestion, BeforeValidator(lambda v: _lower(v) or "deleguee"),
                       BeforeValidator(_blank_to_none)] = "deleguee"
    financement_apporte: Flag = False
    taux_prioritaires: OptRate = None
    # Delays of the convention (models/journal.md): days to propose candidates after a
    # proposal, candidates expected, whether a dwelling returned to the bailleur counts.
    delai_jours: Annotated[int, Field(ge=1, le=366), BeforeValidator(lambda v: _blank_to_none(v) or 30)] = 30
    candidats: Annotated[int | None, Field(ge=1, le=20), BeforeValidator(_blank_to_none)] = None
    decompte_retour: Flag = False

    @property
    def candidats_attendus(self) -> int:
        """Three candidates in gestion directe, one in gestion déléguée, unless the convention says."""
        if self.candidats is not None:
            return self.candidats
        return 3 if self.gestion == "directe" else 1


class DemandeRow(_Row):
    reservataire: Text
    commune: OptCommune = None
    epci: OptEpci = None
    typologie: Typologie
    quartile: Annotated[vocabulary.Quartile, BeforeValidator(_lower)]
    prioritaire: Flag = False
    travailleur_essentiel: Flag = False
    demandeurs: Count

    @model_validator(mode="after")
    def _one_area(self):
        if (self.commune is None) == (self.epci is None):
            raise ValueError("renseigner exactement une zone : la commune ou l'EPCI")
        return self


class ObjectifRow(_Row):
    reservataire: Text
    epci: OptEpci = None
    commune: OptCommune = None
    typologie: OptTypologie = None
    financement: OptFinancement = None
    qpv: OptBool = None
    logements: OptCount = None
    part: OptRate = None
    poids: Annotated[float, Field(ge=0), BeforeValidator(_decimal), BeforeValidator(lambda v: _blank_to_none(v) or 1.0)] = 1.0

    @model_validator(mode="after")
    def _one_target(self):
        if (self.logements is None) == (self.part is None):
            raise ValueError("renseigner exactement une cible : logements ou part")
        return self


class MixiteRow(_Row):
    epci: Epci
    zone: Annotated[vocabulary.Zone, BeforeValidator(_lower)]
    reservataire: OptText = None
    critere: Annotated[vocabulary.Critere, BeforeValidator(_lower)]
    part_min: Rate


class AcceptationRow(_Row):
    quartile: Annotated[vocabulary.Quartile, BeforeValidator(_lower)]
    financement: Financement
    taux_acceptation: Rate


class ConventionRow(_Row):
    reservataire: Text
    convention: Text
    droits_de_suite: Count
    annee_fin: Annotated[int | None, BeforeValidator(_blank_to_none)] = None
    duree_restante: OptCount = None
    taux_rotation: OptRate = None
    typologie: OptTypologie = None
    departement: Annotated[Departement | None, BeforeValidator(_blank_to_none)] = None

    @model_validator(mode="after")
    def _one_duration(self):
        if self.annee_fin is None and self.duree_restante is None:
            raise ValueError("renseigner annee_fin ou duree_restante")
        return self


class LissageRow(_Row):
    """lissage.csv (optional): the years over which a réservataire's owed volume is spread."""

    reservataire: Text
    annees: OptCount = None
    annee_fin: Annotated[int | None, BeforeValidator(_blank_to_none)] = None
    annees_explicites: OptText = None  # e.g. "2026;2027"


class NouveauDroitRow(_Row):
    """nouveaux_droits.csv (optional): rights from newly financed programmes (ANRU, new builds…)."""

    reservataire: Text
    programme: Text
    logements: Count
    annee_debut: Annotated[int, Field(ge=2000, le=2100)]
    duree: Annotated[int, Field(ge=1, le=50)]


ROW_MODELS: dict[str, type[_Row]] = {
    "parc": ParcRow, "exclusions": ExclusionRow, "reservataires": ReservataireRow,
    "demande": DemandeRow, "objectifs": ObjectifRow, "mixite": MixiteRow, "conventions": ConventionRow,
    "acceptation": AcceptationRow,
    "lissage": LissageRow, "nouveaux_droits": NouveauDroitRow,
}


class Instance(BaseModel):
    """A validated instance: parameters and every table, cross-checked."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    source: str = ""
    sources: dict[str, str] = {}  # table → the name users see ("parc.csv", "exemple.xlsx, feuille parc")
    parametres: Parametres
    parc: list[ParcRow]
    exclusions: list[ExclusionRow] = []
    reservataires: list[ReservataireRow]
    demande: list[DemandeRow]
    objectifs: list[ObjectifRow] = []
    mixite: list[MixiteRow] = []
    conventions: list[ConventionRow] = []
    acceptation: list[AcceptationRow] = []
    lissage: list[LissageRow] = []
    nouveaux_droits: list[NouveauDroitRow] = []

    def table(self, name: str) -> pd.DataFrame:
        """The rows of a table as a DataFrame with the contract's columns."""
        rows = getattr(self, name)
        model = ROW_MODELS[name]
        columns = list(model.model_fields)
        if not rows:
            return pd.DataFrame(columns=columns)
        return pd.DataFrame([r.__dict__ for r in rows], columns=columns)

    def source_of(self, table: str) -> str:
        return self.sources.get(table, f"{table}.csv")

    @property
    def regles(self) -> Regles:
        return self.parametres.regles

    def reservataire(self, rid: str) -> ReservataireRow:
        return next(r for r in self.reservataires if r.id == rid)

    def acceptance(self) -> dict[tuple[str, str], float]:
        """Acceptance per (quartile, financement): `[demande]`, then acceptation.csv over it."""
        rates = self.parametres.demande.taux()
        rates.update({(a.quartile, a.financement): a.taux_acceptation for a in self.acceptation})
        return rates


# --------------------------------------------------------------------------- loading

_MESSAGES = {
    "missing": "valeur obligatoire manquante",
    "float_parsing": "nombre attendu",
    "float_type": "nombre attendu",
    "int_parsing": "nombre entier attendu",
    "int_type": "nombre entier attendu",
    "int_from_float": "nombre entier attendu",
    "bool_parsing": "oui/non attendu",
    "string_type": "texte attendu",
    "string_too_short": "valeur obligatoire manquante",
    "extra_forbidden": "clé inconnue",
    "list_type": "liste attendue",
}


def french_message(error: dict) -> str:
    """A pydantic error in French, with the value received."""
    kind = error["type"]
    ctx = error.get("ctx", {})
    received = error.get("input")
    shown = f" (reçu : « {received} »)" if isinstance(received, (str, int, float)) and received != "" else ""
    if kind == "greater_than_equal":
        return f"doit être supérieur ou égal à {ctx.get('ge')}{shown}"
    if kind == "greater_than":
        return f"doit être strictement supérieur à {ctx.get('gt')}{shown}"
    if kind == "less_than_equal":
        return f"doit être inférieur ou égal à {ctx.get('le')}{shown}"
    if kind == "literal_error":
        return f"valeur attendue parmi {ctx.get('expected', '')}{shown}"
    if kind == "string_pattern_mismatch":
        return f"code invalide{shown}"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ") + shown
    if kind == "missing" or received in ("", None):
        return _MESSAGES["missing"]
    return _MESSAGES.get(kind, error["msg"]) + shown


def _validate_table(table: RawTable, model: type[_Row], problems: list[Probleme]) -> list:
    """Validate every row; collect problems with the file's line number (header = 1)."""
    adapter = TypeAdapter(list[model])
    try:
        return adapter.validate_python(table.rows)
    except ValidationError as exc:
        for error in exc.errors():
            loc = error["loc"]
            line = loc[0] + 2 if loc and isinstance(loc[0], int) else None
            fields = [p for p in loc[1:] if p in model.model_fields]
            field = fields[0] if fields else None
            problems.append(Probleme(table.source, line, field, french_message(error)))
        return []


def _check_columns(table: RawTable, model: type[_Row], problems: list[Probleme]) -> None:
    required = [name for name, f in model.model_fields.items() if f.is_required()]
    optional_groups = {"demande": [("commune", "epci")], "objectifs": [("logements", "part")],
                       "conventions": [("annee_fin", "duree_restante")]}
    missing = [c for c in required if c not in table.columns]
    for name, group in optional_groups.items():
        if model is ROW_MODELS[name]:
            for alternatives in group:
                if not any(c in table.columns for c in alternatives):
                    missing.append(" ou ".join(alternatives))
    if missing and table.rows is not None:
        problems.append(Probleme(table.source, 1, ", ".join(missing), "colonne obligatoire absente de l'en-tête"))


def validate(raw: RawInstance) -> Instance:
    """Turn raw strings into a validated Instance, or raise DonneesInvalides with every problem."""
    problems: list[Probleme] = []
    try:
        parametres = Parametres.model_validate(raw.parametres)
    except ValidationError as exc:
        parametres = None
        for error in exc.errors():
            key = ".".join(str(p) for p in error["loc"])
            problems.append(Probleme(raw.parametres_source, None, key, french_message(error)))
    rows: dict[str, list] = {}
    for name, model in ROW_MODELS.items():
        table = raw.tables.get(name)
        if table is None:
            rows[name] = []
            continue
        before = len(problems)
        _check_columns(table, model, problems)
        rows[name] = _validate_table(table, model, problems) if len(problems) == before else []
    if parametres is not None and not problems:
        sources = {n: t.source for n, t in raw.tables.items()} | {"parametres": raw.parametres_source}
        problems.extend(check_references(parametres, rows, sources))
    if problems:
        raise DonneesInvalides(problems)
    return Instance(source=str(raw.path), sources={n: t.source for n, t in raw.tables.items()},
                    parametres=parametres, **rows)


def load_instance(path: str | Path, required: tuple[str, ...] = REQUIRED_TABLES) -> Instance:
    """Read and validate an instance (CSV folder + instance.toml, or .xlsx workbook). `required`:
    the tables the command needs (a stock conversion needs no demand)."""
    return validate(read_instance(path, required))


def json_schema() -> dict:
    """JSON Schema of the validated instance (the data contract), for `flux-opt schema`."""
    schema = Instance.model_json_schema()
    schema["title"] = "Instance flux-opt"
    schema["description"] = ("Instance de gestion en flux : paramètres (instance.toml) et tables "
                             "(parc, exclusions, reservataires, demande, objectifs, mixite, conventions, acceptation).")
    return schema
