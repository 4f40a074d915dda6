"""Validated instance: pydantic v2 models of the data contract (docs/donnees.md).

`load_instance(path)` reads the files (flux_opt.input.read), validates every row and every
cross-reference, and either returns an `Instance` or raises `InvalidInput`
listing *all* problems, each with its file, line and field, in French.
"""

from __future__ import annotations

import functools
import operator
import re
import typing
import unicodedata
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter,
                      ValidationError, model_validator)
from pydantic.json_schema import SkipJsonSchema

from flux_opt.errors import InvalidInput, InputProblem
from flux_opt.input.raw import REQUIRED_TABLES, UNDERSCORED, RawInstance, RawTable, closest
from flux_opt.input.read import read_instance
from flux_opt.input.validation import check_references, implausible
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


# Plausible bounds, per row: the largest bailleurs own a few hundred thousand dwellings.
MAX_LOGEMENTS = 1_000_000
MAX_ANNEES = 100
_SPACES = str.maketrans("", "", " \u00a0\u202f")


def _decimal(value: Any) -> Any:
    """Accept French decimal commas ("0,08") and thousands spaces ("1 234", as French Excel shows them)."""
    if isinstance(value, str):
        value = value.strip().translate(_SPACES)
        return value if "," in value and "." in value else value.replace(",", ".")
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
Count = Annotated[float, Field(ge=0, le=MAX_LOGEMENTS), BeforeValidator(_decimal)]
OptCount = Annotated[float | None, Field(ge=0, le=MAX_LOGEMENTS), BeforeValidator(_decimal),
                     BeforeValidator(_blank_to_none)]
Weight = Annotated[float, Field(ge=0, le=1e6)]
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

# Days a réservataire has to propose candidates when its convention says nothing (reservataires.csv
# delai_jours; the year's follow-up uses it for a réservataire the plan's instance does not describe).
DELAI_JOURS_DEFAUT = 30

class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def doc(description: str, example: Any = None, unit: str | None = None, default: Any = ...) -> Any:
    """A field of the data contract with its French description, example and unit: the JSON
    Schema (`flux-opt schema`) and the data dictionary (docs/donnees.md) are written from them."""
    extra = {"unite": unit} if unit else None
    examples = None if example is None else [example]
    return Field(default, description=description, examples=examples, json_schema_extra=extra)


class InstanceInfo(_Section):
    """Section [instance] : l'instance et son bailleur."""

    nom: Text = doc("Nom de l'instance, repris dans les rapports.", "Exemple Nord 2027")
    bailleur: Text = doc("Nom du bailleur.", "Habitat Flandre Métropole")
    departement: Departement = doc("Code du département, toujours entre guillemets.", "59")
    annee: Annotated[int, Field(ge=2000, le=2100)] = doc("Année du plan.", 2027, "année")


class Regles(_Section):
    """Section [regles] : règles légales (CCH R.441-5 et R.441-5-2), modifiables par la convention."""

    prefet_taux: Rate = doc("Part maximale du préfet (agents compris) dans le flux annuel.", 0.30, "part (0 à 1)", 0.30)
    prefet_agents_taux: Rate = doc("Part maximale des agents civils et militaires de l'État, incluse dans celle "
                                   "du préfet.", 0.05, "part (0 à 1)", 0.05)
    prefet_hors_qpv_min: Rate = doc("Part minimale hors QPV du contingent préfectoral.", 0.30, "part (0 à 1)", 0.30)
    prefet_hors_qpv_lecture: Literal["taux", "part"] = doc(
        "Lecture de la règle hors QPV : « taux » (taux du préfet sur le flux hors QPV) ou « part » (part hors "
        "QPV de ses logements).", "taux", None, "taux")
    prefet_uniformite_tolerance: Annotated[float, Field(ge=0, le=MAX_LOGEMENTS)] = doc(
        "Écart admis, par commune, autour de taux du préfet × flux communal.", 1, "logements", 1.0)
    collectivite_plafond: Rate = doc("Plafond d'une collectivité (garantie d'emprunt) sans financement apporté.",
                                     0.20, "part (0 à 1)", 0.20)
    prioritaires_min: Rate = doc("Part minimale d'attributions aux publics prioritaires (hors préfet).",
                                 0.25, "part (0 à 1)", 0.25)
    prefet_prioritaires: Rate = doc("Part minimale des attributions du préfet (hors agents) aux publics "
                                    "prioritaires (CCH R.441-5) ; la convention peut l'abaisser.",
                                    1.0, "part (0 à 1)", 1.0)
    hors_cadre_legal: bool = doc(
        "Explorer des taux au-delà des maxima légaux (préfet 30 %, agents 5 %, collectivités 20 %) : sans cette "
        "clé ils sont ramenés à la loi ; avec elle, chaque sortie indique que le plan n'est pas un plan légal.",
        False, None, False)


class Rotation(_Section):
    """Section [rotation]."""

    defaut: Rate = doc("Taux de rotation des lignes de parc.csv sans taux_rotation.", 0.08, "part (0 à 1)", 0.08)


class Cia(_Section):
    """Section [cia] : EPCI dotés d'une convention intercommunale d'attribution."""

    epci: list[Epci] = doc("Codes SIREN des EPCI dotés d'une CIA (objectifs légaux de mixité).",
                           ["200093201"], None, [])
    q1_hors_qpv: Rate = doc("Part minimale des attributions hors QPV au premier quartile.", 0.25, "part (0 à 1)", 0.25)
    q234_qpv: Rate = doc("Part minimale des attributions en QPV aux quartiles 2 à 4.", 0.50, "part (0 à 1)", 0.50)


class Solveur(_Section):
    """Section [solveur]."""

    temps_max_s: Annotated[float, Field(gt=0, le=7 * 86400)] = doc("Durée maximale de résolution.", 60, "secondes", 60.0)
    ecart_relatif: Annotated[float, Field(ge=0, le=1)] = doc("Écart d'optimalité relatif accepté.", 0.0001,
                                                             "part (0 à 1)", 1e-4)
    threads: Annotated[int, Field(ge=0, le=1024)] = doc("Nombre de fils de calcul (1 : résultat reproductible).", 1,
                                                        None, 1)
    graine: Annotated[int, Field(ge=0, le=2**31 - 1)] = doc("Graine aléatoire du solveur.", 1, None, 0)
    ecart_absolu: Annotated[float | None, Field(ge=0)] = doc(
        "Écart d'optimalité absolu accepté, en attributions attendues (vide : 0,5 % du flux avec le modèle de "
        "demande « composition », sinon celui de HiGHS).", 2.0, "attributions", None)


class Objectif(_Section):
    """Section [objectif] : poids de l'objectif (models/orientation.md §4)."""

    prime_prioritaire: Weight = doc("Prime par attribution à un public prioritaire.", 0.2, "poids", 0.2)
    penalite_indicatif: Weight = doc("Pénalité par logement d'écart à un objectif indicatif.", 1, "poids", 1.0)
    penalite_violation: Annotated[float, Field(gt=0, le=1e6)] = doc(
        "Pénalité par logement d'une règle qui ne peut pas être tenue.", 10, "poids", 10.0)
    stabilisation: Weight = doc("Petit poids qui départage les plans équivalents.", 0.001, "poids", 1e-3)


class Analyse(_Section):
    """Section [analyse]."""

    # One budget for the re-solves of the explanation (flux_opt.explanation.analysis.analysis_budget):
    # marginal values, then rule costs; the report says when they were cut short.
    temps_max_s: Annotated[float | None, Field(gt=0)] = doc(
        "Durée maximale des nouvelles résolutions de l'analyse (valeurs marginales, coût des règles) ; vide : "
        "40 % de la durée de résolution du plan, au moins 5 s.", 30, "secondes", None)


class Demande(_Section):
    """Section [demande] : la demande vécue dans l'année (models/orientation.md §2) — qui choisit les
    ménages, à quel point ils acceptent un niveau de loyer, ce que coûte un logement rendu au bailleur."""

    # "composition" is the model of the year as lived: the default of every command, whose
    # re-solving paths (sweeps, rule costs, Planner) solve it as `plan` does. "transport" (the first
    # model: the optimiser picks the households) stays selectable (models/orientation.md §2).
    modele: Literal["composition", "transport"] = doc(
        "Modèle de demande : « composition » (les viviers des réservataires décident qui est logé, défaut) "
        "ou « transport » (l'optimiseur choisit les ménages).", "transport", None, "composition")
    financement: Literal["auto", "exact", "moyen"] = doc(
        "Le financement dans l'orientation (modèle composition) : « exact », « moyen » (panachage du groupe) "
        "ou « auto ».", "auto", None, "auto")
    cout_retour: Annotated[float, Field(ge=0)] = doc(
        "Coût, dans l'objectif, d'un logement attendu rendu au bailleur (risque de vacance).", 0.5,
        "attribution", 0.5)
    q1_plai: Rate = doc("Taux d'acceptation d'un PLAI par un ménage du 1er quartile.", 0.85, "part (0 à 1)", 0.85)
    q1_plus: Rate = doc("Taux d'acceptation d'un PLUS par un ménage du 1er quartile.", 0.70, "part (0 à 1)", 0.70)
    q1_pls: Rate = doc("Taux d'acceptation d'un PLS par un ménage du 1er quartile.", 0.20, "part (0 à 1)", 0.20)
    q1_autre: Rate = doc("Taux d'acceptation d'un financement ancien (autre) par un ménage du 1er quartile.",
                         0.80, "part (0 à 1)", 0.80)
    q234_plai: Rate = doc("Taux d'acceptation d'un PLAI par un ménage des quartiles 2 à 4.", 0.55,
                          "part (0 à 1)", 0.55)
    q234_plus: Rate = doc("Taux d'acceptation d'un PLUS par un ménage des quartiles 2 à 4.", 0.75,
                          "part (0 à 1)", 0.75)
    q234_pls: Rate = doc("Taux d'acceptation d'un PLS par un ménage des quartiles 2 à 4.", 0.70,
                         "part (0 à 1)", 0.70)
    q234_autre: Rate = doc("Taux d'acceptation d'un financement ancien (autre) par un ménage des quartiles 2 à 4.",
                           0.60, "part (0 à 1)", 0.60)

    def taux(self) -> dict[tuple[str, str], float]:
        """Acceptance per (quartile, financement) from this section."""
        return {(q, f): getattr(self, f"{q}_{f.lower()}") for q in vocabulary.QUARTILES
                for f in vocabulary.FINANCEMENTS}


class Conversion(_Section):
    """Section [conversion] : conversion du stock en flux et lissage (flux-opt convertir, models/lissage.md)."""

    methode: Literal["globale", "convention"] = doc(
        "Méthode de conversion : globale (taux moyen du bailleur) ou convention (taux propre à chacune).",
        "convention", None, "convention")
    taux_rotation: Rate | None = doc("Taux de rotation convenu avec le bailleur.", 0.09, "part (0 à 1)", None)
    taux_rotation_annees: dict[str, Rate] | None = doc(
        "Taux de rotation des années passées (leur moyenne est utilisée).", {"2023": 0.1}, "part (0 à 1)", None)
    taux_par_typologie: dict[str, Rate] | None = doc(
        "Taux par typologie (avec une colonne typologie dans conventions.csv).", {"T2": 0.1}, "part (0 à 1)", None)
    horizon: Annotated[int, Field(ge=1, le=50)] = doc("Nombre d'années du lissage présentées.", 3, "années", 3)
    duree_lissage: Annotated[int | None, Field(ge=1, le=50)] = doc(
        "Durée du lissage par défaut de chaque réservataire.", 6, "années", None)
    part_max: Rate | None = doc("Part du flux annuel ouverte aux droits convertis.", 0.4, "part (0 à 1)", None)
    flux_prevu: dict[str, Annotated[float, Field(ge=0)]] | None = doc(
        "Flux prévu par année (sinon le flux de l'année, constant).", {"2028": 380}, "logements", None)
    mode_departements: Literal["departement", "region"] = doc(
        "departement, ou region (conventions de plusieurs départements).", "departement", None, "departement")
    parc_departements: dict[str, Annotated[float, Field(ge=0)]] | None = doc(
        "Parc du bailleur par département (mode region).", {"59": 12000}, "logements", None)
    temps_max_s: Annotated[float | None, Field(gt=0)] = doc("Durée maximale du calcul du lissage.", 20,
                                                            "secondes", None)


class Revoyure(_Section):
    """Section [revoyure] : clause de revoyure, ce que le bilan de l'an dernier reporte sur les objectifs de l'année."""

    report_max: Rate = doc("Part d'un objectif qu'un report peut ajouter ou retirer ; 0 : pas de report.", 0.10,
                           "part (0 à 1)", 0.10)


class Parametres(_Section):
    """Le fichier instance.toml (ou la feuille parametres du classeur)."""

    instance: InstanceInfo
    regles: Regles = Regles()
    rotation: Rotation = Rotation()
    cia: Cia = Cia()
    solveur: Solveur = Solveur()
    objectif: Objectif = Objectif()
    demande: Demande = Demande()
    conversion: Conversion = Conversion()
    revoyure: Revoyure = Revoyure()
    analyse: Analyse = Analyse()


# --------------------------------------------------------------------------- table rows

class _Row(BaseModel):
    # Users may add columns: unknown ones are reported (_check_columns), then kept out.
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


_COMMUNE = "Code INSEE de la commune (5 caractères, texte : 59350, 2A004)."
_EPCI = "Code SIREN de l'EPCI (9 chiffres, texte)."
_TYPOLOGIE = "Typologie du logement : T1, T2, T3, T4, T5 ou T6+."
_FINANCEMENT = "Financement : PLAI, PLUS, PLS ou autre."
_RESERVATAIRE = "Identifiant du réservataire (colonne id de reservataires.csv)."


class ParcRow(_Row):
    """parc.csv : une ligne par segment du parc (commune × QPV × typologie × financement, période facultative)."""

    commune: Commune = doc(_COMMUNE, "59350")
    commune_nom: OptText = doc("Nom de la commune, pour les rapports.", "Lille", None, None)
    epci: Epci = doc(_EPCI + " Une seule par commune.", "200093201")
    epci_nom: OptText = doc("Nom de l'EPCI, pour les rapports (à côté de son SIREN).", "Métropole européenne de Lille",
                            None, None)
    qpv: Bool = doc("Logements situés en quartier prioritaire de la politique de la ville : oui ou non.", "non")
    typologie: Typologie = doc(_TYPOLOGIE, "T3")
    financement: Financement = doc(_FINANCEMENT, "PLUS")
    periode_construction: OptText = doc("Période de construction (facultative : sépare des lignes d'un même "
                                        "segment).", "2000-2014", None, None)
    logements: Count = doc("Nombre de logements du segment.", 120, "logements")
    taux_rotation: OptRate = doc("Taux de rotation annuel ; vide : [rotation] defaut.", 0.08, "part (0 à 1)", None)
    premieres_mises_en_location: OptCount = doc("Logements neufs mis en location dans l'année.", 0,
                                                "logements", None)
    liberations: OptCount = doc("Libérations prévues dans l'année ; remplace logements × taux_rotation + "
                                "premières mises en location.", 10, "logements", None)


class ExclusionRow(_Row):
    """exclusions.csv (facultatif) : logements libérés retirés du flux (B) ; un périmètre vide est réparti
    au prorata des segments."""

    categorie: Annotated[vocabulary.CategorieExclusion, BeforeValidator(_lower)] = doc(
        "Motif : mutation, anru, orcod, lhi, vente ou urgence.", "mutation")
    commune: OptCommune = doc(_COMMUNE + " Vide : toutes.", "59183", None, None)
    typologie: OptTypologie = doc(_TYPOLOGIE + " Vide : toutes.", "T3", None, None)
    qpv: OptBool = doc("oui, non ; vide : les deux.", "non", None, None)
    financement: OptFinancement = doc(_FINANCEMENT + " Vide : tous.", "PLAI", None, None)
    logements: Count = doc("Logements exclus du flux.", 4, "logements")


class ReservataireRow(_Row):
    """reservataires.csv : les réservataires et leurs droits."""

    id: Text = doc("Identifiant court, repris dans les autres fichiers.", "action_logement")
    nom: Text = doc("Nom affiché dans les rapports.", "Action Logement Services")
    type: Annotated[Literal["prefet", "prefet_agents", "collectivite", "action_logement",
                            "employeur", "autre", "bailleur"], BeforeValidator(_lower)] = doc(
        "prefet, prefet_agents, collectivite, action_logement, employeur, autre ou bailleur (une seule ligne "
        "bailleur : il prend le reste).", "action_logement")
    territoire: Annotated[list[str], BeforeValidator(_code_list), BeforeValidator(_blank_to_none)] = doc(
        "Codes de communes ou d'EPCI séparés par « ; » ; vide : tout le département.", "59350;59512", None, [])
    taux: OptRate = doc("Part du flux de son territoire.", 0.10, "part (0 à 1)", None)
    logements: OptCount = doc("Logements dus cette année (prioritaire sur taux), ex. issus de la conversion du "
                              "stock.", 25, "logements", None)
    logements_reserves: OptCount = doc("Logements réservés en stock (défaut de l'article 5 : rapportés au parc du "
                                       "bailleur).", 300, "logements", None)
    gestion: Annotated[vocabulary.Gestion, BeforeValidator(lambda v: _lower(v) or "deleguee"),
                       BeforeValidator(_blank_to_none)] = doc("directe ou deleguee.", "deleguee", None, "deleguee")
    financement_apporte: Flag = doc("Collectivité ayant apporté un financement (au-delà du plafond) : oui ou "
                                    "non.", "non", None, False)
    taux_prioritaires: OptRate = doc("Part minimale de publics prioritaires propre à ce réservataire.", 0.25,
                                     "part (0 à 1)", None)
    # Delays of the convention (models/journal.md): days to propose candidates after a
    # proposal, candidates expected, whether a dwelling returned to the bailleur counts.
    delai_jours: Annotated[int, Field(ge=1, le=366),
                           BeforeValidator(lambda v: _blank_to_none(v) or DELAI_JOURS_DEFAUT)] = doc(
        "Délai de la convention pour proposer des candidats après l'avis de vacance.", 30, "jours",
        DELAI_JOURS_DEFAUT)
    candidats: Annotated[int | None, Field(ge=1, le=20), BeforeValidator(_blank_to_none)] = doc(
        "Candidats attendus par logement ; vide : 3 en gestion directe, 1 en gestion déléguée.", 3, "candidats",
        None)
    decompte_retour: Flag = doc("Un logement rendu au bailleur faute de candidat compte pour le réservataire : "
                                "oui ou non.", "non", None, False)

    @property
    def candidats_attendus(self) -> int:
        """Three candidates in gestion directe, one in gestion déléguée, unless the convention says."""
        if self.candidats is not None:
            return self.candidats
        return 3 if self.gestion == "directe" else 1


class DemandeRow(_Row):
    """demande.csv : les candidats de chaque vivier (réservataire × zone × typologie × catégorie)."""

    reservataire: Text = doc(_RESERVATAIRE, "prefet")
    commune: OptCommune = doc(_COMMUNE + " Renseigner la commune ou l'EPCI.", "59350", None, None)
    epci: OptEpci = doc(_EPCI + " Renseigner la commune ou l'EPCI.", "200093201", None, None)
    typologie: Typologie = doc(_TYPOLOGIE, "T2")
    quartile: Annotated[vocabulary.Quartile, BeforeValidator(_lower)] = doc(
        "Quartile de ressources : q1 (premier) ou q234.", "q1")
    prioritaire: Flag = doc("Public prioritaire : oui ou non.", "oui", None, False)
    travailleur_essentiel: Flag = doc("Travailleur essentiel : oui ou non.", "non", None, False)
    demandeurs: Count = doc("Nombre de demandeurs du vivier.", 12, "ménages")

    @model_validator(mode="after")
    def _one_area(self):
        if (self.commune is None) == (self.epci is None):
            raise ValueError("renseigner exactement une zone : la commune ou l'EPCI")
        return self


class ObjectifRow(_Row):
    """objectifs.csv (facultatif) : objectifs indicatifs (souples) d'un réservataire sur un périmètre."""

    reservataire: Text = doc(_RESERVATAIRE, "action_logement")
    epci: OptEpci = doc(_EPCI + " Vide : tous.", "200093201", None, None)
    commune: OptCommune = doc(_COMMUNE + " Vide : toutes.", "59183", None, None)
    typologie: OptTypologie = doc(_TYPOLOGIE + " Vide : toutes.", "T2", None, None)
    financement: OptFinancement = doc(_FINANCEMENT + " Vide : tous.", None, None, None)
    qpv: OptBool = doc("oui, non ; vide : les deux.", None, None, None)
    logements: OptCount = doc("Cible en logements (ou part).", 4, "logements", None)
    part: OptRate = doc("Cible en part de ses logements dans le périmètre (ou logements).", 0.65,
                        "part (0 à 1)", None)
    poids: Annotated[float, Field(ge=0, le=1e6), BeforeValidator(_decimal),
                     BeforeValidator(lambda v: _blank_to_none(v) or 1.0)] = doc(
        "Importance relative de l'objectif.", 1, "poids", 1.0)

    @model_validator(mode="after")
    def _one_target(self):
        if (self.logements is None) == (self.part is None):
            raise ValueError("renseigner exactement une cible : logements ou part")
        return self


class MixiteRow(_Row):
    """mixite.csv (facultatif) : objectifs de mixité par EPCI."""

    epci: Epci = doc(_EPCI, "245900428")
    zone: Annotated[vocabulary.Zone, BeforeValidator(_lower)] = doc(
        "Zone : qpv, hors_qpv ou tout.", "tout")
    reservataire: OptText = doc(_RESERVATAIRE + " Vide : toutes les attributions.", None, None, None)
    critere: Annotated[vocabulary.Critere, BeforeValidator(_lower)] = doc(
        "Critère : q1, q234, prioritaire ou travailleur_essentiel.", "prioritaire")
    part_min: Rate = doc("Part minimale des attributions de la zone.", 0.30, "part (0 à 1)")


class AcceptationRow(_Row):
    """acceptation.csv (facultatif) : taux d'acceptation par quartile et financement ; remplace [demande]."""

    quartile: Annotated[vocabulary.Quartile, BeforeValidator(_lower)] = doc("Quartile de revenus du ménage.", "q1")
    financement: Financement = doc("Financement du logement proposé.", "PLS")
    taux_acceptation: Rate = doc("Part des propositions que ces ménages acceptent.", 0.2, "part (0 à 1)")


class ConventionRow(_Row):
    """conventions.csv (facultatif) : anciennes conventions de réservation en stock, à convertir en flux."""

    reservataire: Text = doc(_RESERVATAIRE, "action_logement")
    convention: Text = doc("Référence de la convention.", "AL-1998-ROUBAIX-01")
    droits_de_suite: Count = doc("Logements réservés restant dus.", 120, "logements")
    annee_fin: Annotated[int | None, Field(ge=2000, le=2200), BeforeValidator(_blank_to_none)] = doc(
        "Année de fin de la convention (ou duree_restante).", 2039, "année", None)
    duree_restante: Annotated[float | None, Field(ge=0, le=MAX_ANNEES), BeforeValidator(_decimal),
                              BeforeValidator(_blank_to_none)] = doc(
        "Années restantes (ou annee_fin).", 8, "années", None)
    taux_rotation: OptRate = doc("Taux de rotation propre aux logements de la convention.", 0.09,
                                 "part (0 à 1)", None)
    typologie: OptTypologie = doc(_TYPOLOGIE, None, None, None)
    departement: Annotated[Departement | None, BeforeValidator(_blank_to_none)] = doc(
        "Département de la convention (conversion en mode région) ; vide : celui de l'instance.", None, None, None)

    @model_validator(mode="after")
    def _one_duration(self):
        if self.annee_fin is None and self.duree_restante is None:
            raise ValueError("renseigner annee_fin ou duree_restante")
        return self


class LissageRow(_Row):
    """lissage.csv (facultatif) : années sur lesquelles le volume dû d'un réservataire est lissé."""

    reservataire: Text = doc(_RESERVATAIRE, "action_logement")
    annees: OptCount = doc("Durée du lissage.", 6, "années", None)
    annee_fin: Annotated[int | None, BeforeValidator(_blank_to_none)] = doc("Dernière année du lissage.", 2032,
                                                                           "année", None)
    annees_explicites: OptText = doc("Années du lissage séparées par « ; ».", "2027;2028", None, None)


class NouveauDroitRow(_Row):
    """nouveaux_droits.csv (facultatif) : droits nés de programmes nouvellement financés (ANRU, neuf…)."""

    reservataire: Text = doc(_RESERVATAIRE, "ville_roubaix")
    programme: Text = doc("Nom du programme.", "ANRU Roubaix 2026")
    logements: Count = doc("Logements réservés par le programme.", 12, "logements")
    annee_debut: Annotated[int, Field(ge=2000, le=2100)] = doc("Première année des droits.", 2027, "année")
    duree: Annotated[int, Field(ge=1, le=50)] = doc("Durée des droits.", 5, "années")


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
    # Problems that do not stop the plan (e.g. an unknown column, ignored), shown to the user.
    avertissements: SkipJsonSchema[list[InputProblem]] = Field(default_factory=list, exclude=True)
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
    "finite_number": "nombre fini attendu",
}


def _number(value: float) -> str:
    """1000000 → "1 000 000", 0.5 → "0,5": bounds as a French reader writes them."""
    if float(value).is_integer():
        return f"{int(value):,}".replace(",", "\u202f")
    return f"{value:g}".replace(".", ",")


def accepted_range(model: type[BaseModel] | None, field: str | None) -> str:
    """" (valeurs admises : de 0 à 1 000 000)" from the field's bounds, or ""."""
    info = model.model_fields.get(field) if model is not None and field else None
    bounds = {k: getattr(m, k) for m in (info.metadata if info else []) for k in ("ge", "gt", "le") if hasattr(m, k)}
    low = bounds.get("ge", bounds.get("gt"))
    if low is None or "le" not in bounds:
        return ""
    return f" (valeurs admises : de {_number(low)}{' exclu' if 'gt' in bounds else ''} à {_number(bounds['le'])})"


def french_message(error: dict, model: type[BaseModel] | None = None, field: str | None = None) -> str:
    """A pydantic error in French, with the value received (and the accepted range if `model.field` has one)."""
    kind = error["type"]
    ctx = error.get("ctx", {})
    received = error.get("input")
    shown = f" (reçu : « {received} »)" if isinstance(received, (str, int, float)) and received != "" else ""
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "finite_number"):
        return "valeur hors limites" + (accepted_range(model, field) or _bound_text(kind, ctx)) + shown
    if kind == "literal_error":
        return f"valeur attendue parmi {str(ctx.get('expected', '')).replace(' or ', ' ou ')}{shown}"
    if kind == "string_pattern_mismatch":
        return f"code invalide{shown}"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ") + shown
    if kind == "missing" or received in ("", None):
        return _MESSAGES["missing"]
    return _MESSAGES.get(kind, error["msg"]) + shown


def _bound_text(kind: str, ctx: dict) -> str:
    if kind == "greater_than_equal":
        return f" : au moins {_number(ctx['ge'])}"
    if kind == "greater_than":
        return f" : strictement plus de {_number(ctx['gt'])}"
    if kind == "less_than_equal":
        return f" : au plus {_number(ctx['le'])}"
    return " : nombre fini attendu"


def _numeric_fields(model: type[_Row]) -> list[str]:
    def numeric(annotation) -> bool:
        return annotation in (int, float) or any(numeric(a) for a in typing.get_args(annotation))
    return [name for name, f in model.model_fields.items() if numeric(f.annotation)]


def _underscored_numbers(table: RawTable, model: type[_Row]) -> list[InputProblem]:
    """A number written with « _ » (1_0) is refused: Python and pydantic would read 10."""
    fields = [f for f in _numeric_fields(model) if f in table.columns]
    return [InputProblem(table.source, table.line(i), f, f"nombre mal écrit « {row[f]} » : pas de « _ » dans un nombre")
            for i, row in enumerate(table.rows) for f in fields if "_" in row[f] and UNDERSCORED.fullmatch(row[f].strip())]


FAST_FROM = 2_000  # rows: below, every row goes through pydantic (the example, the tests' instances)


def _validate_table(table: RawTable, model: type[_Row], problems: list[InputProblem]) -> list:
    """Validate every row; collect problems with the file's line number (header = 1)."""
    underscored = _underscored_numbers(table, model)
    if underscored:
        problems.extend(underscored)
        return []
    if len(table.rows) >= FAST_FROM and not model.__pydantic_decorators__.model_validators:
        return _validate_by_column(table, model, problems)
    return _validate_rows(table, model, table.rows, list(range(len(table.rows))), problems)


def _validate_rows(table: RawTable, model: type[_Row], rows: list[dict], indexes: list[int],
                   problems: list[InputProblem]) -> list:
    """Row by row with pydantic; `indexes` are the rows' places in the table (for their lines)."""
    try:
        return TypeAdapter(list[model]).validate_python(rows)
    except ValidationError as exc:
        for error in exc.errors():
            loc = error["loc"]
            line = table.line(indexes[loc[0]]) if loc and isinstance(loc[0], int) else None
            fields = [p for p in loc[1:] if p in model.model_fields]
            field = fields[0] if fields else None
            problems.append(InputProblem(table.source, line, field, french_message(error, model, field)))
        return []


@functools.cache
def _field_adapter(model: type[_Row], name: str) -> TypeAdapter:
    """The validator of one field of a row model: its type, constraints and validators, its config."""
    info = model.model_fields[name]
    return TypeAdapter(Annotated[(info.annotation, *info.metadata)], config=ConfigDict(allow_inf_nan=False))


def _validate_by_column(table: RawTable, model: type[_Row], problems: list[InputProblem]) -> list:
    """A large table (a parc of 500 000 lines) checked column by column: each distinct text of a
    column is validated once, by the very validator of its field, and the rows whose every cell is
    good are built without validating again (model_construct). A row with a bad cell goes through
    pydantic as a whole, so its message is exactly that of a small table."""
    names = [n for n in model.model_fields if n in table.columns]
    converted: dict[str, dict[str, object]] = {}
    wrong_texts: dict[str, set[str]] = {}
    for name in names:
        adapter, values = _field_adapter(model, name), {}
        for text in {row[name] for row in table.rows}:
            try:
                values[text] = adapter.validate_python(text)
            except ValidationError:
                wrong_texts.setdefault(name, set()).add(text)
        converted[name] = values
    if wrong_texts:
        wrong = [i for i, row in enumerate(table.rows) if any(row[n] in texts for n, texts in wrong_texts.items())]
        _validate_rows(table, model, [table.rows[i] for i in wrong], wrong, problems)
        return []
    defaults = {n: f.get_default(call_default_factory=True) for n, f in model.model_fields.items() if n not in names}
    if any(not isinstance(v, (str, int, float, bool, type(None))) for v in defaults.values()):
        return [model.model_construct(**{n: converted[n][row[n]] for n in names}) for row in table.rows]
    order, new, put = list(model.model_fields), model.__new__, object.__setattr__
    cells, maps, lookup = operator.itemgetter(*names), [converted[n] for n in names], dict.__getitem__
    same_order, given = names == order, set(names)  # one set for all rows: no row is ever assigned to
    out, rows = [], table.rows
    for i, row in enumerate(rows):  # what model_construct does, without its per-call overhead (5x faster)
        values = dict(zip(names, map(lookup, maps, cells(row) if len(names) > 1 else (cells(row),))))
        if not same_order:
            values.update(defaults)
            values = {n: values[n] for n in order}
        obj = new(model)
        put(obj, "__dict__", values)
        put(obj, "__pydantic_fields_set__", given)
        put(obj, "__pydantic_extra__", None)
        put(obj, "__pydantic_private__", None)
        out.append(obj)
        rows[i] = None  # the raw row is not needed any more: peak memory is one copy of the table, not two
    table.rows = []
    return out


# Optional columns that only describe (names): a misspelt one is a warning, not an error.
DESCRIPTIVE_COLUMNS = {"commune_nom", "epci_nom"}
_ALTERNATIVES = {"demande": [("commune", "epci")], "objectifs": [("logements", "part")],
                 "conventions": [("annee_fin", "duree_restante")]}


def _check_columns(table: RawTable, model: type[_Row], problems: list[InputProblem], warnings: list[InputProblem]) -> None:
    """Missing required columns are errors; an unknown column close to a known one the header lacks
    is an error (its values would be silently ignored) unless that column only describes;
    any other unknown column is a warning (users may add their own columns)."""
    known = list(model.model_fields)
    table_name = next(n for n, m in ROW_MODELS.items() if m is model)
    missing = [c for c, f in model.model_fields.items() if f.is_required() and c not in table.columns]
    missing += [" ou ".join(group) for group in _ALTERNATIVES.get(table_name, [])
                if not any(c in table.columns for c in group)]
    if missing:
        problems.append(InputProblem(table.source, 1, ", ".join(missing), "colonne obligatoire absente de l'en-tête"))
    for column in table.columns:
        if column in known:
            continue
        guess = closest(column, known)
        if guess and guess not in table.columns and guess not in DESCRIPTIVE_COLUMNS:
            problems.append(InputProblem(table.source, 1, column, f"colonne inconnue : « {column} » → {guess} ? "
                                     "(renommer l'en-tête, sinon ses valeurs seraient ignorées)"))
        else:
            hint = f" (« {column} » → {guess} ?)" if guess and guess not in table.columns else ""
            warnings.append(InputProblem(table.source, 1, column, f"colonne inconnue, ignorée{hint}"))


def _parameter_problem(source: str, error: dict) -> InputProblem:
    """A parameter error in French; an unknown key gets the closest known key of its section."""
    loc = [str(p) for p in error["loc"]]
    section = Parametres.model_fields.get(loc[0]) if loc else None
    model = section.annotation if section is not None and len(loc) > 1 else Parametres
    field = loc[-1] if loc else None
    if error["type"] == "extra_forbidden":
        guess = closest(field, list(model.model_fields)) if isinstance(model, type) else None
        return InputProblem(source, None, ".".join(loc), "clé inconnue" + (f" : {guess} ?" if guess else ""))
    return InputProblem(source, None, ".".join(loc), french_message(error, model, field))


def validate(raw: RawInstance) -> Instance:
    """Turn raw strings into a validated Instance, or raise InvalidInput with every problem."""
    problems: list[InputProblem] = []
    warnings: list[InputProblem] = []
    try:
        parametres = Parametres.model_validate(raw.parametres)
    except ValidationError as exc:
        parametres = None
        problems.extend(_parameter_problem(raw.parametres_source, e) for e in exc.errors())
    rows: dict[str, list] = {}
    for name, model in ROW_MODELS.items():
        table = raw.tables.get(name)
        if table is None:
            rows[name] = []
            continue
        before = len(problems)
        _check_columns(table, model, problems, warnings)
        rows[name] = _validate_table(table, model, problems) if len(problems) == before else []
    if parametres is not None and not problems:
        problems.extend(check_references(parametres, rows, raw))
        warnings.extend(implausible(rows, raw))
    if problems:
        raise InvalidInput(problems)
    return Instance(source=str(raw.path), sources={n: t.source for n, t in raw.tables.items()},
                    parametres=parametres, avertissements=raw.warnings + warnings, **rows)


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
