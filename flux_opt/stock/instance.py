"""Stock conversion and lissage of an instance (for `flux-opt convertir`).

The instance is read and validated by the one instance reader (`flux_opt.input.schema`):
`conventions.csv` and `parc.csv` are required, `exclusions.csv`, `reservataires.csv`,
`lissage.csv` and `nouveaux_droits.csv` are optional, and the `[conversion]` table of
`instance.toml` (every key optional) sets the method and the lissage:

    methode = "globale" | "convention"        (default "convention")
    taux_rotation = 0.10                      (the bailleur's rate)
    taux_rotation_annees = {"2022" = 0.09, "2023" = 0.10, "2024" = 0.11}   (average of the last 3)
    taux_par_typologie = {T1 = 0.12, T2 = 0.10}  (used with a `typologie` column)
    horizon = 3                               (years shown, ≥ 3)
    duree_lissage = 6                         (default years per réservataire)
    part_max = 0.70                           (default: what the rate-based contingents leave, see part_disponible)
    flux_prevu = {"2026" = 640}               (default: this year's flux C every year)
    mode_departements = "departement" | "region"
    parc_departements = {"59" = 12000, "62" = 8000}   (mode "region")
    temps_max_s = 20                          (default [solveur] temps_max_s)

The flux C is the assiette's (`flux_opt.assiette.flux.compute_flux`), the same as the plan's.
Nothing here prints; invalid data is InvalidInput (file, row, field), a conversion that
cannot be made is a ValueError with a French message naming the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from flux_opt.assiette.flux import compute_flux
from flux_opt.input.csvfile import read_csv
from flux_opt.input.schema import Instance
from flux_opt.stock.conversion import (
    Methode,
    convert,
    convert_by_departement,
    detail_conventions,
    read_number,
    taux_rotation_moyen,
)
from flux_opt.stock.lissage import HORIZON_MIN, Lissage, spread_lissage
from flux_opt.vocabulary import PREFET_GROUP

REQUIRED_FOR_CONVERSION = ("parc", "conventions")
ANNEES_FLUX_MAX = 50  # no stock convention runs longer than this


@dataclass(frozen=True)
class ConversionResult:
    """What `flux-opt convertir` prints and writes."""

    conversion: pd.DataFrame  # one row per réservataire (flux_opt.stock.conversion.convert)
    detail: pd.DataFrame  # one row per convention
    lissage: Lissage
    parametres: dict[str, object] = field(default_factory=dict)  # values actually used, for the report


def convert_instance(
    instance: Instance,
    methode: Methode | None = None,
    annees: int | None = None,
    part_max: float | None = None,
    flux_prevu: float | Mapping[int, float] | None = None,
    droits_utilises: Mapping[str, float] | None = None,
    annee_debut: int | None = None,
) -> ConversionResult:
    """Convert the stock conventions of an instance and spread them over the years.

    `instance` comes from the load stage (flux_opt.pipeline.load, with REQUIRED_FOR_CONVERSION
    among its required tables): the conversion never reads the folder again. Arguments override `[conversion]` of instance.toml. `annees` is the default
    lissage duration per réservataire (also the horizon when larger than it).
    `flux_prevu` lets the caller pass the flux: a number (this year's C, assumed
    constant) or a forecast per year; by default the assiette's C. `droits_utilises`
    (réservataire → dwellings counted in past bilans) is deducted from what is owed
    and the rest spread from `annee_debut` (the year after the last bilan).
    """
    parametres = instance.parametres
    annee = parametres.instance.annee
    options = parametres.conversion.model_dump(exclude_none=True)
    methode = methode or parametres.conversion.methode
    conventions, refused = state_conventions_apart(instance, _frame(instance, "conventions"))
    parc = _frame(instance, "parc")
    taux = taux_bailleur(options, parc, parametres.rotation.defaut)
    par_typologie = options.get("taux_par_typologie")
    conversion, conventions_dep = _convert_departement(conventions, taux, methode, annee, options,
                                                         parametres.instance.departement)
    reservataires = _frame(instance, "reservataires") if instance.reservataires else None
    _check_reservataires(conversion, reservataires)
    detail = detail_conventions(conventions_dep, taux, annee, par_typologie)

    duree = annees or options.get("duree_lissage")
    horizon = max(int(options.get("horizon", HORIZON_MIN)), int(duree or 0))
    if annees is not None:  # the years asked, exactly: no empty year shown after them
        if annees < HORIZON_MIN:
            _erreur(f"--annees {annees} : le lissage donne une vision stabilisée des objectifs sur au moins "
                    f"{HORIZON_MIN} ans ; demander {HORIZON_MIN} années ou plus.")
        horizon = annees
    if annee_debut is not None and annee_debut > annee:  # re-plan only the years the lissage has left
        duree = max(1, int(duree or horizon) - (annee_debut - annee))
    if flux_prevu is None:
        flux = _flux_prevu(instance, options, annee)
    elif isinstance(flux_prevu, Mapping):
        flux = {int(a): float(v) for a, v in flux_prevu.items()}
    else:
        flux = {a: float(flux_prevu) for a in range(annee, annee + ANNEES_FLUX_MAX)}
    if part_max is None:
        part_max = float(options.get("part_max", available_share(reservataires, set(conversion["reservataire"]),
                                                                 instance.regles.prefet_taux)))
    volumes = _volumes_to_spread(conversion, _frame(instance, "lissage") if instance.lissage else None)
    if droits_utilises:  # clause de revoyure: rights already used are no longer owed
        deja = volumes["reservataire"].map(droits_utilises).fillna(0.0)
        volumes["volume_du"] = (volumes["volume_du"] - deja).clip(lower=0)
    temps_max_s = float(options.get("temps_max_s", parametres.solveur.temps_max_s))
    nouveaux = _frame(instance, "nouveaux_droits") if instance.nouveaux_droits else None
    lissage = spread_lissage(
        volumes, flux, nouveaux, horizon=horizon,
        part_max=part_max, annee_debut=annee_debut or annee, duree_defaut=duree, temps_max_s=temps_max_s,
    )
    utilises = {"etat_non_converti": refused, "annee": annee, "methode": methode, "taux_rotation": taux, "part_max": part_max,
                "horizon": horizon, "duree_lissage": duree,
                "flux_prevu": {a: flux[a] for a in lissage.annees}, "droits_utilises": dict(droits_utilises or {})}
    return ConversionResult(conversion, detail, lissage, utilises)


def state_conventions_apart(instance: Instance, conventions: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The conventions to convert, and one French sentence per State convention set aside.

    The instruction of 28 March 2022 (§4.2) excludes any historical turnover rate for the State
    contingent: the préfet's share is its rate on the flux annuel (CCH R.441-5-2, 30 % au plus,
    agents compris), not droits de suite × duration × rotation. A préfet (or agents) convention is
    therefore not converted: its réservataire keeps the rate of reservataires.csv / [regles]."""
    state = {r.id for r in instance.reservataires if r.type in PREFET_GROUP}
    if conventions.empty or "reservataire" not in conventions.columns:
        return conventions, []
    mine = conventions["reservataire"].astype(str).str.strip().isin(state)
    rate = f"{100 * min(instance.regles.prefet_taux, 0.30):g} %".replace(".", ",")
    refused = [f"convention « {row['convention']} » de {row['reservataire']} (conventions.csv, ligne {i + 2}) "
               f"non convertie : pas de taux de rotation historique pour le contingent de l'État (instruction du "
               f"28 mars 2022, §4.2) ; sa part est son taux sur le flux annuel, {rate} agents compris "
               f"(CCH R.441-5-2)" for i, row in zip(np.flatnonzero(mine.to_numpy()), conventions.loc[mine].to_dict("records"))]
    return conventions.loc[~mine].reset_index(drop=True), refused


def _frame(instance: Instance, name: str) -> pd.DataFrame:
    """A validated table as the conversion reads it: only the columns given somewhere."""
    return instance.table(name).dropna(axis=1, how="all")


def year_targets(resultat: ConversionResult | Lissage, annee: int | None = None) -> dict[str, int]:
    """Targets of one year (default: the first), réservataire → logements, for `flux-opt plan`."""
    lissage = resultat.lissage if isinstance(resultat, ConversionResult) else resultat
    return lissage.year_targets(annee)


def apply_targets(reservataires: pd.DataFrame, targets: Mapping[str, int]) -> pd.DataFrame:
    """reservataires.csv with `logements` overridden by the lissage targets (data dictionary order: logements first)."""
    inconnus = sorted(set(targets) - set(reservataires["id"].astype(str)))
    if inconnus:
        raise ValueError(f"reservataires.csv : réservataire(s) inconnu(s) : {', '.join(inconnus)}.")
    resultat = reservataires.copy()
    if "logements" not in resultat.columns:
        resultat["logements"] = ""
    texte = pd.api.types.is_string_dtype(resultat["logements"]) or resultat["logements"].dtype == object
    for rid, logements in targets.items():
        resultat.loc[resultat["id"].astype(str) == rid, "logements"] = str(int(logements)) if texte else int(logements)
    return resultat


def available_share(reservataires: pd.DataFrame | None, convertis: set[str], prefet_taux: float) -> float:
    """Share of the flux left to converted rights once the rate-based contingents are served.

    1 − the State's share (its rows' `taux` when the `prefet` row has one, else
    `prefet_taux`) − the `taux` of every other réservataire that is neither converted
    nor the bailleur. A collectivité's rate applies to its territory only, so this is
    on the safe side.
    """
    if reservataires is None or "type" not in reservataires.columns:
        return 1 - prefet_taux
    part_etat, part_autres, prefet_a_un_taux = 0.0, 0.0, False
    for position, ligne in enumerate(reservataires.to_dict("records")):
        taux = read_number(ligne.get("taux"), "taux", position + 2, "reservataires.csv")
        genre = str(ligne.get("type", "")).strip()
        if genre in PREFET_GROUP:
            part_etat += taux or 0.0
            prefet_a_un_taux |= genre == "prefet" and taux is not None
        elif genre != "bailleur" and str(ligne.get("id", "")).strip() not in convertis:
            part_autres += taux or 0.0
    part_etat = part_etat if prefet_a_un_taux else prefet_taux
    return max(1 - part_etat - part_autres, 0.0)


def read_table(chemin: Path, obligatoire: bool = False) -> pd.DataFrame | None:
    """A CSV of the instance with every cell as a string, as the user wrote it (to rewrite it)."""
    if not chemin.exists():
        if obligatoire:
            raise ValueError(f"Fichier manquant : {chemin.name}.")
        return None
    table = read_csv(chemin)
    return pd.DataFrame(table.rows, columns=table.columns)


def taux_bailleur(options: Mapping, parc: pd.DataFrame, taux_defaut: float | None) -> float:
    """The bailleur's turnover rate: 3-year average, else agreed rate, else the parc's weighted rate."""
    if options.get("taux_rotation_annees"):
        return taux_rotation_moyen({int(a): float(t) for a, t in options["taux_rotation_annees"].items()})
    if options.get("taux_rotation") is not None:
        return float(options["taux_rotation"])
    return taux_rotation_parc(parc, taux_defaut)


def taux_rotation_parc(parc: pd.DataFrame, taux_defaut: float | None) -> float:
    """Dwelling-weighted turnover rate of parc.csv (blank rates take [rotation] defaut)."""
    logements, liberes = 0.0, 0.0
    for position, ligne in enumerate(parc.to_dict("records")):
        nombre = read_number(ligne.get("logements"), "logements", position + 2, "parc.csv") or 0.0
        taux = read_number(ligne.get("taux_rotation"), "taux_rotation", position + 2, "parc.csv")
        if taux is None:
            if taux_defaut is None:
                raise ValueError(f"parc.csv, ligne {position + 2} : taux_rotation vide et pas de [rotation] defaut.")
            taux = float(taux_defaut)
        logements += nombre
        liberes += nombre * taux
    if logements <= 0:
        raise ValueError("parc.csv : aucun logement, impossible de calculer le taux de rotation du bailleur.")
    return liberes / logements


# ---------------------------------------------------------------- helpers


def _erreur(message: str):
    raise ValueError(message)


def _convert_departement(conventions, taux, methode, annee, options, departement) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Conversion for the instance's département; returns it and the conventions it used."""
    par_typologie = options.get("taux_par_typologie")
    mode = options.get("mode_departements", "departement")
    if "departement" not in conventions.columns or not departement:
        return convert(conventions, taux, methode, annee, par_typologie), conventions
    if mode == "region":
        parc_dep = options.get("parc_departements") or _erreur(
            "instance.toml : [conversion] parc_departements requis en mode region.")
        reparti = convert_by_departement(conventions, taux, methode, annee, "region", parc_dep, par_typologie)
        regional = convert(conventions, taux, methode, annee, par_typologie)
        locale = reparti[reparti["departement"] == departement].set_index("reservataire")["volume_du"]
        regional["volume_du"] = regional["reservataire"].map(locale).fillna(0.0)
        return regional.assign(methode=f"{methode} (régionale, part du {departement})"), conventions
    locales = conventions[conventions["departement"].astype(str).str.strip() == departement]
    if locales.empty:
        raise ValueError(f"conventions.csv : aucune convention pour le département {departement}.")
    return convert(locales, taux, methode, annee, par_typologie), locales


def _check_reservataires(conversion: pd.DataFrame, reservataires: pd.DataFrame | None) -> None:
    if reservataires is None or "id" not in reservataires.columns:
        return
    inconnus = sorted(set(conversion["reservataire"]) - set(reservataires["id"].astype(str).str.strip()))
    if inconnus:
        raise ValueError(f"conventions.csv : réservataire(s) absent(s) de reservataires.csv : {', '.join(inconnus)}.")


def _flux_prevu(instance: Instance, options: Mapping, annee: int) -> dict[int, float]:
    """This year's flux C (the assiette's) assumed constant, unless [conversion] flux_prevu gives a year.

    Covers ANNEES_FLUX_MAX years so that any negotiated duration finds its forecast;
    the lissage only uses the years it needs.
    """
    flux_c = float(compute_flux(instance).total)
    donnes = {int(a): float(v) for a, v in (options.get("flux_prevu") or {}).items()}
    return {a: flux_c for a in range(annee, annee + ANNEES_FLUX_MAX)} | donnes


def _volumes_to_spread(conversion: pd.DataFrame, lissage_csv: pd.DataFrame | None) -> pd.DataFrame:
    """Owed volumes joined with the per-réservataire years of lissage.csv (optional)."""
    volumes = conversion[["reservataire", "volume_du"]].copy()
    if lissage_csv is None:
        return volumes
    inconnus = sorted(set(lissage_csv["reservataire"].str.strip()) - set(volumes["reservataire"]))
    if inconnus:
        raise ValueError(f"lissage.csv : réservataire(s) sans convention : {', '.join(inconnus)}.")
    colonnes = [c for c in ("reservataire", "annees", "annee_fin", "annees_explicites") if c in lissage_csv.columns]
    annees = lissage_csv[colonnes].assign(reservataire=lissage_csv["reservataire"].str.strip())
    return volumes.merge(annees, on="reservataire", how="left")
