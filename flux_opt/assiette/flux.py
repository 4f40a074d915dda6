"""The assiette (models/orientation.md §1): forecast releases A, exclusions B, flux C = A − B,
and the integer flux F_s per segment (largest remainder, Σ F_s = round(C))."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from flux_opt.assiette.apportion import largest_remainder, round_half_up
from flux_opt.errors import DonneesInvalides, Probleme
from flux_opt.input.schema import Instance

SEGMENT = ["commune", "typologie", "qpv", "financement"]
SCOPE = ["commune", "typologie", "qpv", "financement"]


@dataclass(frozen=True)
class Flux:
    """Segments (one row per commune × typologie × qpv × financement) and totals."""

    segments: pd.DataFrame  # SEGMENT + epci, commune_nom, logements, liberations, exclusions, flux_prevu, flux
    exclusions: pd.DataFrame  # per exclusion row: categorie, logements, segments touched
    liberations: float  # A
    exclus: float  # B
    total: int  # C, integer: Σ segments.flux

    @property
    def flux_prevu(self) -> float:
        """C before rounding (A − B)."""
        return self.liberations - self.exclus


def forecast_releases(parc: pd.DataFrame, default_rate: float) -> pd.Series:
    """A per parc row: `liberations` if given, else logements × taux_rotation + premières mises en location."""
    rate = parc["taux_rotation"].astype("float64").fillna(default_rate)
    first = parc["premieres_mises_en_location"].astype("float64").fillna(0.0)
    forecast = parc["logements"].astype("float64") * rate + first
    given = parc["liberations"].astype("float64")
    return given.where(given.notna(), forecast)


def compute_flux(instance: Instance) -> Flux:
    """Assiette of an instance: A, B, C per segment and the integer flux F_s."""
    parc = instance.table("parc")
    parc["A"] = forecast_releases(parc, instance.parametres.rotation.defaut)
    segments = (parc.groupby(SEGMENT, sort=True, observed=True)
                .agg(epci=("epci", "first"), commune_nom=("commune_nom", "first"),
                     logements=("logements", "sum"), liberations=("A", "sum"))
                .reset_index())
    exclusions, excluded = _spread_exclusions(instance, segments)
    segments["exclusions"] = excluded
    segments["flux_prevu"] = segments["liberations"] - segments["exclusions"]
    total = round_half_up(float(segments["flux_prevu"].sum()))
    if total <= 0:
        raise DonneesInvalides([Probleme("parc.csv", None, "logements", (
            f"flux annuel nul (libérations prévues A = {segments['liberations'].sum():.1f}, exclusions "
            f"B = {segments['exclusions'].sum():.1f}) : aucun logement à orienter cette année ; vérifier "
            "logements, taux_rotation et liberations"))])
    segments["flux"] = largest_remainder(segments["flux_prevu"].to_numpy(), total)
    return Flux(segments=segments, exclusions=exclusions,
                liberations=float(segments["liberations"].sum()),
                exclus=float(segments["exclusions"].sum()), total=total)


def _spread_exclusions(instance: Instance, segments: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Spread each exclusion pro rata of the releases of the segments its scope matches."""
    releases = segments["liberations"].to_numpy()
    excluded = np.zeros(len(segments))
    problems: list[Probleme] = []
    records = []
    for i, row in enumerate(instance.exclusions):
        mask = np.ones(len(segments), dtype=bool)
        for column in SCOPE:
            value = getattr(row, column)
            if value is not None:
                mask = mask & (segments[column] == value).to_numpy()
        scope_releases = releases[mask].sum()
        line = i + 2
        if row.logements > 0 and scope_releases <= 0:
            problems.append(Probleme("exclusions.csv", line, "logements",
                                     "aucune libération prévue dans ce périmètre : rien à exclure"))
            continue
        if row.logements > scope_releases + 1e-9:
            problems.append(Probleme("exclusions.csv", line, "logements",
                                     f"{row.logements:g} logements exclus pour {scope_releases:.1f} libérations "
                                     "prévues dans ce périmètre"))
            continue
        if row.logements > 0:
            excluded[mask] += row.logements * releases[mask] / scope_releases
        records.append({"categorie": row.categorie, "logements": row.logements, "segments": int(mask.sum())})
    over = np.flatnonzero(excluded > releases + 1e-9)
    for k in over[:20]:
        seg = segments.iloc[k]
        problems.append(Probleme("exclusions.csv", None, "logements",
                                 f"les exclusions cumulées ({excluded[k]:.1f}) dépassent les libérations prévues "
                                 f"({releases[k]:.1f}) du segment {seg.commune} {seg.typologie} "
                                 f"{'QPV' if seg.qpv else 'hors QPV'} {seg.financement}"))
    if problems:
        raise DonneesInvalides(problems)
    excluded = np.minimum(excluded, releases)
    return pd.DataFrame(records, columns=["categorie", "logements", "segments"]), excluded
