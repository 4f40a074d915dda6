"""What-if scenarios: a small TOML of overrides on a base instance (no copy of the base data).

A scenario file (instances/scenarios/*.toml) holds:

    nom = "Préfet à 25 %"                  # required
    description = "…"
    base = "../exemple"                    # optional: the instance it was written for
    [regles]  [cia]  [solveur]  [objectif]  [rotation]   # keys of instance.toml to override
    [reservataires.<id>]                   # taux, logements, logements_reserves,
                                           # taux_prioritaires, financement_apporte, territoire
    [[mixite]]                             # a mixite.csv line; same (epci, zone, reservataire,
                                           # critere) replaces the base line, `supprimer = true` drops it
    [conversion]                           # targets from the stock conversion and its lissage
    methode = "convention"                 # or "globale"
    annees = 6                             # lissage duration

`apply_scenario` is pure: it returns a new Instance and re-validates every merged value,
so a bad override is a InvalidInput naming the scenario file and the key, in French.
Setting a réservataire's `taux` clears its `logements` (its target then comes from the rate).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flux_opt.errors import InvalidInput, InputProblem
from flux_opt.input.schema import Instance, MixiteRow, Parametres, ReservataireRow
from flux_opt.input.schema import french_message as french_error
from flux_opt.vocabulary import DEFAULT_TARGET_TYPES
from flux_opt.pipeline import with_targets
from flux_opt.stock.instance import convert_instance, year_targets

SECTIONS = ("regles", "cia", "solveur", "objectif", "rotation")
MIXITE_KEY = ("epci", "zone", "reservataire", "critere")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReservataireOverride(_Strict):
    """Values are checked once merged into the réservataire's row (ReservataireRow)."""

    taux: Any = None
    logements: Any = None
    logements_reserves: Any = None
    taux_prioritaires: Any = None
    financement_apporte: Any = None
    territoire: Any = None


class ConversionOverride(_Strict):
    methode: Literal["globale", "convention"] = "convention"
    annees: int | None = Field(default=None, ge=1, le=50)


class Scenario(_Strict):
    nom: str = Field(min_length=1)
    description: str = ""
    base: str | None = None
    regles: dict[str, Any] = {}
    cia: dict[str, Any] = {}
    solveur: dict[str, Any] = {}
    objectif: dict[str, Any] = {}
    rotation: dict[str, Any] = {}
    reservataires: dict[str, ReservataireOverride] = {}
    mixite: list[dict[str, Any]] = []
    conversion: ConversionOverride | None = None
    source: str = Field(default="", exclude=True)  # the file it was read from (for messages)

    @property
    def fichier(self) -> str:
        return Path(self.source).name if self.source else f"scénario « {self.nom} »"

    def base_path(self) -> Path | None:
        """The `base` instance, relative to the scenario file."""
        if self.base is None:
            return None
        return (Path(self.source).parent / self.base) if self.source else Path(self.base)


def _problems(exc: ValidationError, fichier: str, prefix: str = "") -> list[InputProblem]:
    out = []
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"])
        out.append(InputProblem(fichier, None, f"{prefix}{key}" if key else prefix.rstrip(".") or None,
                            french_error(error)))
    return out


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file (structure and key names; values are checked on apply)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput([InputProblem(path.name, None, None, "fichier de scénario introuvable")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput([InputProblem(path.name, None, None, f"TOML illisible : {exc}")]) from None
    try:
        return Scenario.model_validate({**data, "source": str(path)})
    except ValidationError as exc:
        raise InvalidInput(_problems(exc, path.name)) from None


def apply_scenario(instance: Instance, scenario: Scenario) -> Instance:
    """The base instance with the scenario's overrides, every merged value validated again."""
    problems: list[InputProblem] = []
    parametres = _merged_parametres(instance, scenario, problems)
    reservataires = _merged_reservataires(instance, scenario, problems)
    mixite = _merged_mixite(instance, scenario, problems)
    if not problems:
        problems.extend(_check_references(instance, scenario, parametres, reservataires, mixite))
    if problems:
        raise InvalidInput(problems)
    result = instance.model_copy(update={"parametres": parametres, "reservataires": reservataires,
                                         "mixite": mixite})
    if scenario.conversion is not None:  # converted from the base's stock, as the base was read
        result = with_targets(result, conversion_targets(instance, scenario))
    return result


def _merged_parametres(instance: Instance, scenario: Scenario, problems: list[InputProblem]) -> Parametres | None:
    data = instance.parametres.model_dump()
    for section in SECTIONS:
        data[section] = {**data[section], **getattr(scenario, section)}
    try:
        return Parametres.model_validate(data)
    except ValidationError as exc:
        problems.extend(_problems(exc, scenario.fichier))
        return None


def _merged_reservataires(instance: Instance, scenario: Scenario, problems: list[InputProblem]) -> list:
    known = {r.id: r for r in instance.reservataires}
    for rid in scenario.reservataires:
        if rid not in known:
            problems.append(InputProblem(scenario.fichier, None, f"reservataires.{rid}",
                                     f"réservataire inconnu de l'instance de base (connus : {', '.join(known)})"))
    rows = []
    for row in instance.reservataires:
        override = scenario.reservataires.get(row.id)
        if override is None:
            rows.append(row)
            continue
        changes = override.model_dump(exclude_none=True)
        merged = row.model_dump() | changes
        if "taux" in changes and "logements" not in changes:
            merged["logements"] = None  # the rate now sets the target
        try:
            rows.append(ReservataireRow.model_validate(merged))
        except ValidationError as exc:
            problems.extend(_problems(exc, scenario.fichier, f"reservataires.{row.id}."))
    return rows


def _merged_mixite(instance: Instance, scenario: Scenario, problems: list[InputProblem]) -> list[MixiteRow]:
    lines = list(instance.mixite)
    for i, entry in enumerate(scenario.mixite):
        entry = dict(entry)
        drop = bool(entry.pop("supprimer", False))
        if drop:
            entry.setdefault("part_min", 0.0)  # only the key matters for a removal
        try:
            line = MixiteRow.model_validate(entry)
        except ValidationError as exc:
            problems.extend(_problems(exc, scenario.fichier, f"mixite[{i + 1}]."))
            continue
        key = tuple(getattr(line, k) for k in MIXITE_KEY)
        same = [j for j, m in enumerate(lines) if tuple(getattr(m, k) for k in MIXITE_KEY) == key]
        if drop and not same:
            problems.append(InputProblem(scenario.fichier, None, f"mixite[{i + 1}]",
                                     "aucune ligne de mixite.csv de la base ne correspond : rien à supprimer"))
        elif drop:
            lines = [m for j, m in enumerate(lines) if j not in same]
        elif same:
            lines[same[0]] = line
        else:
            lines.append(line)
    return lines


def _check_references(instance: Instance, scenario: Scenario, parametres: Parametres,
                      reservataires: list, mixite: list[MixiteRow]) -> list[InputProblem]:
    """The cross-table checks that an override can break (codes, réservataires, targets)."""
    communes = {r.commune for r in instance.parc}
    epcis = {r.epci for r in instance.parc}
    ids = {r.id for r in reservataires}
    out = []
    for row in reservataires:
        if row.id not in scenario.reservataires:
            continue
        key = f"reservataires.{row.id}"
        for code in row.territoire:
            if code not in communes and code not in epcis:
                out.append(InputProblem(scenario.fichier, None, f"{key}.territoire",
                                    f"code « {code} » absent du parc (ni commune ni EPCI du parc)"))
        if row.logements is None and row.taux is None and row.logements_reserves is None \
                and row.type not in DEFAULT_TARGET_TYPES:
            out.append(InputProblem(scenario.fichier, None, key, "aucun objectif : renseigner taux ou logements"))
    for i, entry in enumerate(scenario.mixite):
        code, rid = str(entry.get("epci", "")), entry.get("reservataire")
        if code not in epcis:
            out.append(InputProblem(scenario.fichier, None, f"mixite[{i + 1}].epci", f"EPCI « {code} » absent du parc"))
        if rid not in (None, "") and rid not in ids:
            out.append(InputProblem(scenario.fichier, None, f"mixite[{i + 1}].reservataire",
                                f"réservataire « {rid} » inconnu de l'instance de base"))
    for code in parametres.cia.epci:
        if code not in epcis:
            out.append(InputProblem(scenario.fichier, None, "cia.epci", f"EPCI « {code} » absent du parc"))
    return out


def conversion_targets(instance: Instance, scenario: Scenario) -> dict[str, int]:
    """Targets of the year from the stock conversion (method) spread over `annees` years."""
    if not instance.conventions:
        raise InvalidInput([InputProblem(scenario.fichier, None, "conversion",
                                         "l'instance de base n'a pas de conventions.csv : pas de stock à convertir")])
    options = scenario.conversion
    try:
        converted = convert_instance(instance, methode=options.methode, annees=options.annees)
    except ValueError as exc:
        raise InvalidInput([InputProblem(scenario.fichier, None, "conversion", str(exc))]) from None
    annee = instance.parametres.instance.annee
    years = list(converted.lissage.objectifs.columns)
    return year_targets(converted, annee if annee in years else None)


def parameter_scenario(parametre: str, valeur: float) -> Scenario:
    """A one-key scenario for a sweep parameter: `prefet_taux` (any [regles] key), `cia.q1_hors_qpv`
    (any `section.key`), or `<reservataire>.taux` / `<reservataire>.logements`."""
    nom = f"{parametre} = {valeur:g}"
    if "." not in parametre:
        return Scenario(nom=nom, regles={parametre: valeur})
    head, key = parametre.split(".", 1)
    if head in SECTIONS:
        return Scenario(nom=nom, **{head: {key: valeur}})
    return Scenario(nom=nom, reservataires={head: {key: valeur}})


# --------------------------------------------------------------------------- writing

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def _toml_table(header: str, values: dict[str, Any]) -> list[str]:
    lines = [f"\n{header}"]
    lines += [f"{key} = {_toml_value(v)}" for key, v in values.items() if v is not None]
    return lines


def dump_scenario(scenario: Scenario) -> str:
    """The scenario as the TOML `load_scenario` reads back (same overrides, same name)."""
    lines = ["# Scénario de négociation (flux-opt)."]
    lines += [f"{key} = {_toml_value(getattr(scenario, key))}" for key in ("nom", "description", "base")
              if getattr(scenario, key) not in (None, "")]
    for section in SECTIONS:
        if getattr(scenario, section):
            lines += _toml_table(f"[{section}]", getattr(scenario, section))
    for rid, override in scenario.reservataires.items():
        lines += _toml_table(f"[reservataires.{rid}]", override.model_dump(exclude_none=True))
    for entry in scenario.mixite:
        lines += _toml_table("[[mixite]]", entry)
    if scenario.conversion is not None:
        lines += _toml_table("[conversion]", scenario.conversion.model_dump())
    return "\n".join(lines) + "\n"
