"""The assiette (models/orientation.md §1): forecast releases A, exclusions B, flux C = A − B,
and the integer flux F_s per segment (largest remainder, Σ F_s = round(C))."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from flux_opt.assiette.apportion import largest_remainder, round_half_up
from flux_opt.errors import InvalidInput, InputProblem
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
    # exclusions clipped to the releases of their scope: ligne (None: cumul on a segment), portee,
    # demandes, liberations, retenus, ecretes
    ecretements: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["ligne", "portee", "demandes", "liberations", "retenus", "ecretes"]))

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
    exclusions, excluded, ecretements = _spread_exclusions(instance, segments)
    segments["exclusions"] = excluded
    segments["flux_prevu"] = segments["liberations"] - segments["exclusions"]
    total = round_half_up(float(segments["flux_prevu"].sum()))
    if total <= 0:
        raise InvalidInput([InputProblem("parc.csv", None, "logements", (
            f"flux annuel nul (libérations prévues A = {segments['liberations'].sum():.1f}, exclusions "
            f"B = {segments['exclusions'].sum():.1f}) : aucun logement à orienter cette année ; vérifier "
            "logements, taux_rotation et liberations"))])
    segments["flux"] = largest_remainder(segments["flux_prevu"].to_numpy(), total)
    return Flux(segments=segments, exclusions=exclusions,
                liberations=float(segments["liberations"].sum()),
                exclus=float(segments["exclusions"].sum()), total=total, ecretements=ecretements)


def _spread_exclusions(instance: Instance, segments: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Spread each exclusion pro rata of the releases of the segments its scope matches.

    An exclusion is a forecast too: one larger than the releases of its scope is clipped to them,
    and a segment never loses more than its releases (a data conflict to report, not malformed data). Returns the exclusions, B per segment and the clippings (ecretements)."""
    releases = segments["liberations"].to_numpy()
    excluded = np.zeros(len(segments))
    records, clipped = [], []
    for i, row in enumerate(instance.exclusions):
        mask = np.ones(len(segments), dtype=bool)
        for column in SCOPE:
            value = getattr(row, column)
            if value is not None:
                mask = mask & (segments[column] == value).to_numpy()
        scope_releases = float(releases[mask].sum())
        kept = min(row.logements, scope_releases)
        if row.logements > scope_releases + 1e-9:
            clipped.append({"ligne": i + 2, "portee": f"{row.categorie} {_scope_words(row)}",
                            "demandes": row.logements, "liberations": scope_releases, "retenus": kept})
        if kept > 0:
            excluded[mask] += kept * releases[mask] / scope_releases
        records.append({"categorie": row.categorie, "logements": kept, "segments": int(mask.sum())})
    over = np.flatnonzero(excluded > releases + 1e-9)
    if (excluded[over] - releases[over]).sum() >= 0.05:  # below, rounding noise of the pro rata spread
        first = _segment_words(segments.iloc[over[0]])
        clipped.append({"ligne": None, "portee": f"cumul des exclusions sur {len(over)} segment(s) (dont {first})",
                        "demandes": excluded[over].sum(), "liberations": releases[over].sum(),
                        "retenus": releases[over].sum()})
    excluded = np.minimum(excluded, releases)
    ecretements = pd.DataFrame(clipped, columns=["ligne", "portee", "demandes", "liberations", "retenus"])
    ecretements["ecretes"] = ecretements["demandes"] - ecretements["retenus"]
    return pd.DataFrame(records, columns=["categorie", "logements", "segments"]), excluded, ecretements


def _scope_words(row) -> str:
    words = [w for w in (row.commune, row.typologie, row.financement) if w is not None]
    if row.qpv is not None:
        words.append("QPV" if row.qpv else "hors QPV")
    return " ".join(words) if words else "tout le parc"


def _segment_words(seg) -> str:
    return f"{seg.commune} {seg.typologie} {'QPV' if seg.qpv else 'hors QPV'} {seg.financement}"
