"""The inputs of the negotiation page, and how a filled-in form becomes a scenario.

A field's key is the scenario key it sets ("regles.prefet_taux", "cia.q1_hors_qpv",
"reservataires.mel.taux", "conversion.annees"…), so the form, the error messages and the saved
TOML speak the same names. Rates are typed in percent ("25", "25,5", "25 %"). Only the values that
differ from the base instance become overrides: an untouched form is the base itself.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from flux_opt.input.schema import Instance
from flux_opt.model.registry import (CIA_HORS_QPV_Q1, CIA_QPV_Q234, PLAFOND_AGENTS, PLAFOND_COLLECTIVITE, PLAFOND_PREFET,
                                     PREFET_HORS_QPV, PUBLICS_PRIORITAIRES, RULE)
from flux_opt.negotiation.scenarios import Scenario

NOM = "nom"
NOM_MAX = 120  # a scenario's name is a column heading and a file name
OUTSIDE = "regles.hors_cadre_legal"  # rates above the law explored: the plan is then not a legal plan
NO_CONVERSION = ""  # the targets of reservataires.csv, no stock conversion


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    kind: str  # "taux" (percent), "nombre" (dwellings), "annees" (whole years), "choix", "oui_non"
    base: object  # the base instance's value (a share for a rate; None when the base leaves it blank)
    maximum: float | None = None  # a legal ceiling, as a share
    source: str = ""  # where the ceiling or the rule comes from
    choices: tuple[tuple[str, str], ...] = ()  # (value, French label) for "choix"
    group: str = ""  # the heading it is shown under
    note: str = ""  # a hint shown under the label


def _rule_fields(instance: Instance) -> list[Field]:
    r, cia = instance.regles, instance.parametres.cia
    prefet, agents = RULE[PLAFOND_PREFET].source, RULE[PLAFOND_AGENTS].source
    hors_qpv, collectivite = RULE[PREFET_HORS_QPV].source, RULE[PLAFOND_COLLECTIVITE].source
    g = "Règles"
    own = [row.nom for row in instance.reservataires if row.type == "prefet_agents"
           and (row.taux is not None or row.logements is not None)]
    shadowed = f"sans effet ici : « {own[0]} » a son propre objectif (plus bas)" if own else ""
    return [
        Field("regles.prefet_taux", "Taux du préfet (agents compris)", "taux", r.prefet_taux, 0.30, prefet, group=g),
        Field("regles.prefet_agents_taux", "dont agents de l'État", "taux", r.prefet_agents_taux, 0.05, agents, group=g,
              note=shadowed),
        Field("regles.prefet_hors_qpv_min", "Part hors QPV du préfet, au moins", "taux", r.prefet_hors_qpv_min,
              source=hors_qpv, group=g),
        Field("regles.prefet_hors_qpv_lecture", "Lecture de la part hors QPV", "choix", r.prefet_hors_qpv_lecture,
              source=hors_qpv, group=g,
              choices=(("taux", "taux du préfet sur le flux hors QPV"), ("part", "part hors QPV de ses logements"))),
        Field("regles.collectivite_plafond", "Plafond des collectivités (garanties d'emprunt)", "taux",
              r.collectivite_plafond, 0.20, collectivite, group=g),
        Field("regles.prioritaires_min", "Publics prioritaires, au moins", "taux", r.prioritaires_min,
              source=RULE[PUBLICS_PRIORITAIRES].source, group=g),
        Field("cia.q1_hors_qpv", "CIA : 1er quartile hors QPV, au moins", "taux", cia.q1_hors_qpv,
              source=RULE[CIA_HORS_QPV_Q1].source, group="Convention intercommunale d'attribution"),
        Field("cia.q234_qpv", "CIA : quartiles 2 à 4 en QPV, au moins", "taux", cia.q234_qpv,
              source=RULE[CIA_QPV_Q234].source, group="Convention intercommunale d'attribution"),
        Field(OUTSIDE, "Explorer au-delà des maxima légaux", "oui_non", r.hors_cadre_legal, group=g,
              source=f"{prefet}, {collectivite}",
              note="le plan obtenu n'est alors pas un plan légal ; sans cette case, un taux au-delà de la loi est refusé"),
    ]


def _reservataire_fields(instance: Instance) -> list[Field]:
    out = []
    for row in instance.reservataires:
        if row.type == "prefet":
            continue  # its rate is regles.prefet_taux
        key, group = f"reservataires.{row.id}", f"Réservataires : {row.nom}"
        ceiling = (0.05, RULE[PLAFOND_AGENTS].source) if row.type == "prefet_agents" else (None, "")
        out.append(Field(f"{key}.taux", "Taux du flux", "taux", row.taux, *ceiling, group=group))
        out.append(Field(f"{key}.logements", "ou logements dans l'année", "nombre", row.logements, group=group))
        if row.type == "collectivite":
            out.append(Field(f"{key}.financement_apporte", "A apporté un financement (au-delà du plafond)",
                             "oui_non", row.financement_apporte, source=RULE[PLAFOND_COLLECTIVITE].source,
                             group=group))
    return out


def _conversion_fields(instance: Instance) -> list[Field]:
    if not instance.conventions:
        return []
    g = "Conversion du stock et lissage"
    methods = ((NO_CONVERSION, "aucune : objectifs de reservataires.csv"), ("convention", "convention par convention"),
               ("globale", "globale"))
    conversion = instance.parametres.conversion
    years = conversion.duree_lissage or conversion.horizon
    slow = "la première conversion d'une méthode et d'une durée prend quelques secondes, puis elle est gardée"
    return [Field("conversion.methode", "Méthode de conversion", "choix", NO_CONVERSION, choices=methods, group=g,
                  note=slow),
            Field("conversion.annees", "Années de lissage", "annees", years, group=g)]


def fields(instance: Instance) -> list[Field]:
    """Every input of the page, in display order."""
    return _rule_fields(instance) + _reservataire_fields(instance) + _conversion_fields(instance)


# --------------------------------------------------------------------------- parsing

_NUMBER = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")


def _number(text: str) -> float:
    cleaned = text.replace("\u202f", "").replace("\xa0", "").replace(" ", "").removesuffix("%")
    if not _NUMBER.match(cleaned):
        raise ValueError(f"nombre attendu (reçu : « {text} »)")
    return float(cleaned.replace(",", "."))


def _percent_text(share: float) -> str:
    return f"{100 * share:g}".replace(".", ",") + " %"


def parse(field: Field, text: str):
    """The value a typed text means for `field` (a share for a rate), or ValueError in French."""
    text = text.strip()
    if field.kind == "choix":
        if text not in {value for value, _ in field.choices}:
            raise ValueError(f"valeur attendue parmi : {', '.join(label for _, label in field.choices)}")
        return text
    if field.kind == "oui_non":
        return text in ("oui", "true", "on", "1")
    value = _number(text)
    if value < 0:
        raise ValueError("doit être positif ou nul")
    if field.kind == "taux":
        if value > 100:
            raise ValueError("un taux ne dépasse pas 100 %")
        value /= 100
        if field.maximum is not None and value > field.maximum + 1e-9:
            raise ValueError(f"au plus {_percent_text(field.maximum)} ({field.source})")
    if field.kind == "annees":
        if not value.is_integer() or not 1 <= value <= 50:
            raise ValueError("nombre entier d'années attendu, de 1 à 50")
        value = int(value)
    return value


def shown(field: Field) -> str:
    """The base value as the page shows it in the field."""
    if field.base is None:
        return ""
    if field.kind == "taux":
        return f"{100 * field.base:g}".replace(".", ",")
    if field.kind == "nombre":
        return f"{field.base:g}"
    if field.kind == "oui_non":
        return "oui" if field.base else "non"
    return str(field.base)


# --------------------------------------------------------------------------- form → scenario

def read_form(base: Instance, values: dict[str, str]) -> tuple[Scenario | None, dict[str, str]]:
    """The scenario a form describes and the French message of each wrong field (key → message).
    A blank field means the base value."""
    errors: dict[str, str] = {}
    read: dict[str, object] = {}
    outside = str(values.get(OUTSIDE, "")).strip() in ("oui", "true", "on", "1") or (
        str(values.get(OUTSIDE, "")).strip() == "" and base.regles.hors_cadre_legal)
    for field in fields(base):
        text = str(values.get(field.key, "")).strip()
        if outside and field.maximum is not None:  # exploring: no legal ceiling (the page says so)
            field = Field(field.key, field.label, field.kind, field.base, None, field.source, group=field.group)
        try:
            read[field.key] = field.base if text == "" else parse(field, text)
        except ValueError as exc:
            errors[field.key] = str(exc)
    agents, prefet = read.get("regles.prefet_agents_taux"), read.get("regles.prefet_taux")
    if agents is not None and prefet is not None and agents > prefet + 1e-9:
        errors["regles.prefet_agents_taux"] = f"inclus dans le taux du préfet : au plus {_percent_text(prefet)}"
    if errors:
        return None, errors
    nom = str(values.get(NOM, "")).strip() or "Scénario"
    if len(nom) > NOM_MAX:
        return None, {NOM: f"au plus {NOM_MAX} caractères (ici {len(nom)})"}
    if any(unicodedata.category(c) == "Cc" for c in nom):
        return None, {NOM: "caractère de contrôle interdit dans le nom (tabulation, retour à la ligne, NUL…)"}
    return Scenario.model_validate({"nom": nom, **_overrides(base, read)}), {}


def _overrides(base: Instance, read: dict[str, object]) -> dict:
    """The values that differ from the base, as scenario sections: {"regles": {"prefet_taux": 0.25}}.
    A conversion is always written with its years (the scenario then says the whole choice)."""
    out: dict = {}
    methode, annees = read.pop("conversion.methode", NO_CONVERSION), read.pop("conversion.annees", None)
    if methode != NO_CONVERSION:
        out["conversion"] = {"methode": methode, "annees": annees}
    for field in fields(base):
        if field.key not in read or read[field.key] == field.base:
            continue
        *path, last = field.key.split(".")
        node = out
        for part in path:
            node = node.setdefault(part, {})
        node[last] = read[field.key]
    return out
