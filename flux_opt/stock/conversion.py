"""Conversion of old stock conventions into a volume of relogements owed (models/lissage.md).

The Hauts-de-France regional framework with Action Logement (2021) gives two methods that turn *droits de suite*
(DS) into a number of *droits uniques* (relogements to perform):

- méthode globale: Σ DS × (average remaining duration of the conventions) × rate,
  the average duration being unweighted (sum of durations / number of conventions);
- méthode par convention: Σ_i DS_i × remaining duration_i × rate_i.

The turnover rate is the bailleur's average of the last three years, or a rate per
typologie when the parties agreed one (Île-de-France consultation, thème 3). Pure functions on pandas
DataFrames; nothing here prints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import pandas as pd

from flux_opt.assiette.apportion import largest_remainder, round_half_up

Methode = Literal["globale", "convention"]
METHODES: tuple[str, ...] = ("globale", "convention")

# Columns of conventions.csv (docs/donnees.md) plus the optional extensions handled here.
COLONNES_OBLIGATOIRES = ("reservataire", "convention", "droits_de_suite")

# Absorbs binary noise such as 1000 × 15 × 0.1 drifting away from 1 500.
_DECIMALES = 9


def taux_rotation_moyen(taux_par_annee: Mapping[int, float], nb_annees: int = 3) -> float:
    """Average turnover rate of the last `nb_annees` years given (Hauts-de-France framework: last three).

    With fewer years available, the average of those given is returned.
    """
    if not taux_par_annee:
        raise ValueError("Aucun taux de rotation annuel fourni pour calculer la moyenne.")
    annees = sorted((int(a) for a in taux_par_annee), reverse=True)[:nb_annees]
    valeurs = [float(taux_par_annee[a]) for a in annees]
    for annee, taux in zip(annees, valeurs):
        _check_rate(taux, f"taux de rotation {annee}")
    return round(sum(valeurs) / len(valeurs), _DECIMALES)


def taux_article5(logements_reserves: float, parc_total: float) -> float:
    """Article-5 default rate (decree of 20 Feb 2020): reserved dwellings ÷ total parc.

    Applies when the parties agree nothing else (instruction §4.4).
    """
    if parc_total <= 0:
        raise ValueError("Le parc total du bailleur doit être strictement positif.")
    if logements_reserves < 0 or logements_reserves > parc_total:
        raise ValueError(
            f"Logements réservés ({logements_reserves}) hors de l'intervalle [0, parc total = {parc_total}]."
        )
    return logements_reserves / parc_total


def detail_conventions(
    conventions: pd.DataFrame,
    taux_rotation: float,
    annee: int,
    taux_par_typologie: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """One row per convention with its remaining duration, rate and DS × duration × rate.

    Remaining duration: `duree_restante` when given, else `annee_fin − annee` (never
    negative: an expired convention owes nothing). Rate, in this order: the row's
    `taux_rotation`, the rate of its `typologie` in `taux_par_typologie`, `taux_rotation`.
    """
    _check_columns(conventions)
    _check_rate(taux_rotation, "taux de rotation du bailleur")
    lignes = []
    for position, ligne in enumerate(conventions.to_dict("records")):
        numero = position + 2  # CSV line number (header is line 1)
        droits = read_number(ligne.get("droits_de_suite"), "droits_de_suite", numero)
        if droits is None or droits < 0:
            raise ValueError(f"conventions.csv, ligne {numero} : droits_de_suite manquant ou négatif.")
        duree = _duree_restante(ligne, annee, numero)
        taux = _taux_convention(ligne, taux_rotation, taux_par_typologie, numero)
        lignes.append(
            {
                "reservataire": str(ligne["reservataire"]).strip(),
                "convention": str(ligne["convention"]).strip(),
                "typologie": str(ligne.get("typologie", "") or "").strip(),
                "droits_de_suite": droits,
                "duree_restante": duree,
                "taux_rotation": taux,
                "volume_du": round(droits * duree * taux, _DECIMALES),
            }
        )
    colonnes = ["reservataire", "convention", "typologie", "droits_de_suite",
                "duree_restante", "taux_rotation", "volume_du"]
    return pd.DataFrame(lignes, columns=colonnes)


def convert(
    conventions: pd.DataFrame,
    taux_rotation: float,
    methode: Methode,
    annee: int,
    taux_par_typologie: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Volume owed per réservataire (one row each, sorted by réservataire).

    Columns: reservataire, conventions, droits_de_suite, duree_moyenne, taux_rotation,
    volume_du, methode. `duree_moyenne` is the unweighted mean of the remaining
    durations (Hauts-de-France framework). `taux_rotation` is the rate used by the méthode globale: the
    DS-weighted mean of the conventions' rates (the bailleur's rate when they share it).
    """
    if methode not in METHODES:
        raise ValueError(f"Méthode de conversion inconnue « {methode} » (attendu : globale ou convention).")
    return owed_volumes(detail_conventions(conventions, taux_rotation, annee, taux_par_typologie), taux_rotation, methode)


def owed_volumes(detail: pd.DataFrame, taux_rotation: float, methode: Methode) -> pd.DataFrame:
    """The volumes of `convertir` from the per-convention detail (`detail_conventions`)."""
    lignes = []
    for reservataire, groupe in detail.groupby("reservataire", sort=True):
        droits = float(groupe["droits_de_suite"].sum())
        duree_moyenne = float(groupe["duree_restante"].mean())
        taux = _taux_moyen_pondere(groupe, taux_rotation)
        if methode == "globale":
            volume = droits * duree_moyenne * taux
        else:
            volume = float(groupe["volume_du"].sum())
        lignes.append(
            {
                "reservataire": reservataire,
                "conventions": len(groupe),
                "droits_de_suite": droits,
                "duree_moyenne": round(duree_moyenne, _DECIMALES),
                "taux_rotation": round(taux, _DECIMALES),
                "volume_du": round(volume, _DECIMALES),
                "methode": methode,
            }
        )
    colonnes = ["reservataire", "conventions", "droits_de_suite", "duree_moyenne",
                "taux_rotation", "volume_du", "methode"]
    return pd.DataFrame(lignes, columns=colonnes)


def split_by_departement(
    volume_regional: float, parc_par_departement: Mapping[str, float] | pd.Series
) -> pd.Series:
    """Split a region-wide volume pro rata of the bailleur's parc per département (Hauts-de-France framework §3).

    The volume is rounded half up, then split by largest remainder so that the
    integers sum exactly to it. Index: département codes (strings), sorted.
    """
    parc = pd.Series(parc_par_departement, dtype=float)
    parc.index = parc.index.map(str)
    parc = parc.sort_index()
    if parc.empty:
        raise ValueError("Aucun département fourni pour répartir le volume.")
    total = round_half_up(volume_regional)
    if total < 0:
        raise ValueError("Le total à répartir doit être positif ou nul.")
    if (parc < 0).any() or (parc.sum() <= 0 and total > 0):
        raise ValueError("La clé de répartition doit être positive et non nulle.")
    parts = parc.to_numpy() * (total / parc.sum() if total else 0.0)  # largest remainder: the sum is exact
    return pd.Series(largest_remainder(parts, total), index=parc.index, dtype="int64", name="volume_du")


def convert_by_departement(
    conventions: pd.DataFrame,
    taux_rotation: float,
    methode: Methode,
    annee: int,
    mode: Literal["departement", "region"],
    parc_par_departement: Mapping[str, float] | pd.Series | None = None,
    taux_par_typologie: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Conversion for a bailleur present in several départements (Hauts-de-France framework §3).

    - mode "departement": conventions carry a `departement` column; each département
      is converted on its own conventions (real volumes).
    - mode "region": all conventions are converted together, then each réservataire's
      volume is split pro rata of `parc_par_departement` (integers summing exactly).

    Columns: reservataire, departement, volume_du, methode.
    """
    if mode == "departement":
        if "departement" not in conventions.columns:
            raise ValueError("conventions.csv : colonne « departement » requise pour une conversion par département.")
        morceaux = []
        codes = conventions["departement"].astype(str).str.strip()
        for code in sorted(codes.unique()):
            partie = convert(conventions[codes == code], taux_rotation, methode, annee, taux_par_typologie)
            morceaux.append(partie.assign(departement=code))
        resultat = pd.concat(morceaux, ignore_index=True)
    elif mode == "region":
        if parc_par_departement is None:
            raise ValueError("Le parc par département est requis pour répartir un volume régional.")
        regional = convert(conventions, taux_rotation, methode, annee, taux_par_typologie)
        morceaux = []
        for ligne in regional.itertuples():
            parts = split_by_departement(ligne.volume_du, parc_par_departement)
            morceaux.append(pd.DataFrame({
                "reservataire": ligne.reservataire,
                "departement": parts.index,
                "volume_du": parts.to_numpy(dtype=float),
                "methode": methode,
            }))
        resultat = pd.concat(morceaux, ignore_index=True)
    else:
        raise ValueError(f"Mode multi-département inconnu « {mode} » (attendu : departement ou region).")
    return resultat[["reservataire", "departement", "volume_du", "methode"]]


# ---------------------------------------------------------------- helpers


def _check_columns(conventions: pd.DataFrame) -> None:
    manquantes = [c for c in COLONNES_OBLIGATOIRES if c not in conventions.columns]
    if manquantes:
        raise ValueError(f"conventions.csv : colonne(s) manquante(s) : {', '.join(manquantes)}.")
    if "annee_fin" not in conventions.columns and "duree_restante" not in conventions.columns:
        raise ValueError("conventions.csv : il faut une colonne annee_fin ou duree_restante.")


def _check_rate(taux: float, libelle: str) -> None:
    if not (0 <= taux <= 1) or math.isnan(taux):
        raise ValueError(f"Le {libelle} doit être compris entre 0 et 1 (reçu : {taux}).")


def read_number(valeur: object, champ: str, numero: int, fichier: str = "conventions.csv") -> float | None:
    """Parse a number from a CSV cell (strings, French decimal comma); blank → None."""
    if valeur is None:
        return None
    if isinstance(valeur, (int, float)):
        return None if math.isnan(float(valeur)) else float(valeur)
    texte = str(valeur).strip().replace("\u202f", "").replace(" ", "").replace(",", ".")
    if texte == "" or texte.lower() == "nan":
        return None
    try:
        return float(texte)
    except ValueError:
        raise ValueError(f"{fichier}, ligne {numero}, champ {champ} : « {valeur} » n'est pas un nombre.") from None


def _duree_restante(ligne: Mapping, annee: int, numero: int) -> float:
    duree = read_number(ligne.get("duree_restante"), "duree_restante", numero)
    if duree is None:
        fin = read_number(ligne.get("annee_fin"), "annee_fin", numero)
        if fin is None:
            raise ValueError(f"conventions.csv, ligne {numero} : ni duree_restante ni annee_fin.")
        duree = fin - annee
    return max(duree, 0.0)


def _taux_convention(
    ligne: Mapping, taux_bailleur: float, taux_par_typologie: Mapping[str, float] | None, numero: int
) -> float:
    taux = read_number(ligne.get("taux_rotation"), "taux_rotation", numero)
    typologie = str(ligne.get("typologie", "") or "").strip()
    if taux is None and taux_par_typologie and typologie:
        if typologie not in taux_par_typologie:
            raise ValueError(f"conventions.csv, ligne {numero} : pas de taux de rotation pour la typologie {typologie}.")
        taux = float(taux_par_typologie[typologie])
    if taux is None:
        taux = taux_bailleur
    _check_rate(taux, f"taux de rotation (conventions.csv, ligne {numero})")
    return taux


def pourquoi_les_methodes_different(detail: pd.DataFrame, taux_rotation: float,
                                    noms: dict[str, str] | None = None) -> str:
    """Why the two methods give different totals, in French, with the figures (models/lissage.md §1): the
    global method gives all of a réservataire's rights the plain mean of its conventions' remaining
    durations; the per-convention method gives each convention its own duration and rate."""
    def fr(valeur: float) -> str:
        return f"{valeur:.1f}".replace(".", ",")

    globale = owed_volumes(detail, taux_rotation, "globale").set_index("reservataire")["volume_du"]
    convention = owed_volumes(detail, taux_rotation, "convention").set_index("reservataire")["volume_du"]
    ecart = (globale - convention).abs()
    if not (ecart > 0.05).any():
        return f"Les deux méthodes donnent le même total ({fr(globale.sum())} relogements)."
    principal = ecart.idxmax()
    return (f"Méthode globale : {fr(globale.sum())} relogements ; par convention : {fr(convention.sum())}. "
            "La méthode globale applique à tous les droits de suite d'un réservataire la durée restante moyenne "
            "de ses conventions (moyenne simple, sans pondérer par les droits) et leur taux moyen ; la méthode "
            "par convention applique à chaque convention sa propre durée et son propre taux. L'écart vient des "
            f"conventions dont la durée s'éloigne de la moyenne : surtout {(noms or {}).get(principal, principal)} "
            f"({fr(globale[principal])} contre {fr(convention[principal])}).")


def _taux_moyen_pondere(groupe: pd.DataFrame, taux_defaut: float) -> float:
    droits = float(groupe["droits_de_suite"].sum())
    if droits == 0:
        return taux_defaut
    return float((groupe["droits_de_suite"] * groupe["taux_rotation"]).sum()) / droits
