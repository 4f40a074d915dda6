"""The spreadsheet method, as a baseline to measure what the optimiser gains.

Plan (``baseline_plan``), as a landlord's spreadsheet does it:

- each réservataire r other than the bailleur gets, in every segment s of its
  territory, the raw share ``N_r / base_r × F_s`` (its rate: target ÷ flux of
  its territory, the same in every segment);
- the bailleur gets the remainder ``F_s − Σ_{r≠bailleur} shares``. Summed over
  the segments this is exactly ``N_bailleur`` before rounding (its own rate
  ``N_b / C`` would not add up where collectivités hold rights on part of the
  département). If the other shares exceed ``F_s`` (contradictory targets),
  they are scaled down to ``F_s`` and the bailleur gets none;
- per segment, the raw shares are rounded by largest remainder so that
  ``Σ_r x[r,s] = F_s`` exactly (ties by réservataire id).

Fit (``baseline_fit``): the SAME measure as the optimiser. The plan's x are
fixed in the orientation model; the remaining LP (expected attributions y,
elastic slacks, deviations) is solved with HiGHS, so the attributions are the
best the fixed orientation allows under the same rules and penalties.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from flux_opt.assiette.flux import Flux
from flux_opt.model.data import segment_rows, x_positions
from flux_opt.model.build import OrientationModel
from flux_opt.model.session import SolverSession
from flux_opt.model.split import split_columns
from flux_opt.model.solve import solver_options
from flux_opt.input.schema import Instance
from flux_opt.assiette.targets import Targets
from flux_opt.model.registry import RULE
from flux_opt.vocabulary import missed

PLAN_KEYS = ["reservataire", "commune", "typologie", "qpv", "financement"]
TOL = 1e-6


@dataclass(frozen=True)
class BaselineFit:
    """Fit of a fixed plan, in the units of the optimiser's `resume.json`."""

    adequation_ponderee: float  # Σ w·y, as resume["adequation_ponderee"]
    attributions_prevues: float  # Σ y, as resume["attributions_prevues"]
    adequation: float  # Σ y / C, as resume["adequation"]
    objectif: float  # full objective (fit − penalties), comparable to resume["objectif"]
    regles_violees: list[str]  # hard families whose elastic slack is used
    ecart_objectifs: int  # Σ_r |dwellings oriented to r − N_r|
    statut: str


def baseline_plan(instance: Instance, flux: Flux, targets: Targets) -> pd.DataFrame:
    """Proportional plan: `commune, epci, qpv (bool), typologie, financement, reservataire, logements`."""
    segments = flux.segments.loc[flux.segments["flux"] > 0,
                                 ["commune", "epci", "qpv", "typologie", "financement", "flux"]].reset_index(drop=True)
    table = targets.table.reset_index(drop=True)
    pairs = _pairs(segments, table, targets)
    pairs["brut"] = _raw_shares(pairs, segments)
    pairs["logements"] = _round_per_segment(pairs, segments["flux"].to_numpy())
    plan = pairs.join(segments.drop(columns="flux"), on="s")
    plan = plan.loc[plan["logements"] > 0]
    plan = plan.sort_values(["commune", "typologie", "qpv", "financement", "reservataire"], kind="stable")
    return plan[["commune", "epci", "qpv", "typologie", "financement", "reservataire", "logements"]].reset_index(drop=True)


def _pairs(segments: pd.DataFrame, table: pd.DataFrame, targets: Targets) -> pd.DataFrame:
    """(réservataire, segment) pairs of the territories, with the réservataire's rate."""
    frames = []
    for row in table.itertuples():
        inside = np.flatnonzero(segments["commune"].isin(targets.territoires[row.id]).to_numpy())
        rate = row.cible / row.base if row.base > 0 else 0.0
        frames.append(pd.DataFrame({"s": inside, "reservataire": row.id,
                                    "bailleur": row.type == "bailleur", "taux": rate}))
    if not frames:
        return pd.DataFrame({"s": [], "reservataire": [], "bailleur": [], "taux": []})
    return pd.concat(frames, ignore_index=True)


def _raw_shares(pairs: pd.DataFrame, segments: pd.DataFrame) -> np.ndarray:
    s = pairs["s"].to_numpy()
    flux = segments["flux"].to_numpy(dtype=float)
    is_bailleur = pairs["bailleur"].to_numpy(dtype=bool)
    raw = np.where(is_bailleur, 0.0, pairs["taux"].to_numpy(dtype=float) * flux[s])
    others = np.bincount(s, weights=raw, minlength=len(segments))
    has_bailleur = np.bincount(s, weights=is_bailleur.astype(float), minlength=len(segments)) > 0
    # Where the others' shares exceed the flux, or no bailleur takes the rest, scale them to F_s.
    scale = np.ones(len(segments))
    needs_scaling = (others > flux + 1e-9) | (~has_bailleur & (others > 0))
    scale[needs_scaling] = flux[needs_scaling] / others[needs_scaling]
    raw = raw * scale[s]
    remainder = np.maximum(flux - np.bincount(s, weights=raw, minlength=len(segments)), 0.0)
    return np.where(is_bailleur, remainder[s], raw)


def _round_per_segment(pairs: pd.DataFrame, flux: np.ndarray) -> np.ndarray:
    """Largest remainder inside every segment at once (vectorised), ties by réservataire id."""
    raw = pairs["brut"].to_numpy(dtype=float)
    s = pairs["s"].to_numpy()
    floors = np.floor(raw + 1e-9)
    missing = flux - np.bincount(s, weights=floors, minlength=len(flux))
    remainder = np.round(raw - floors, 12)
    id_rank = pd.factorize(pairs["reservataire"], sort=True)[0]
    order = np.lexsort((id_rank, -remainder, s))
    rank = np.empty(len(raw), dtype=np.int64)
    first_of_segment = np.searchsorted(s[order], np.arange(len(flux)))
    rank[order] = np.arange(len(raw)) - first_of_segment[s[order]]
    return (floors + (rank < missing[s])).astype(np.int64)


def baseline_fit(model: OrientationModel, plan: pd.DataFrame) -> BaselineFit:
    """Fix x at `plan` (columns reservataire, commune, typologie, qpv, financement, logements),
    solve the remaining LP of the orientation model and read the fit as the optimiser does."""
    lp = model.lp
    x_columns = model.vars.x.columns
    fixed = _x_values(model, plan)
    lower, upper = lp.col_lower.copy(), lp.col_upper.copy()
    lower[x_columns] = fixed
    upper[x_columns] = fixed
    if model.vars.split is not None:  # composition model: the plan's own split by financement
        w_columns, w = split_columns(model, segment_rows(model.data, plan))
        lower[w_columns] = upper[w_columns] = w
    raw = SolverSession(lp, solver_options(model), relaxed=True, col_lower=lower, col_upper=upper).run()
    status, values = raw.status, raw.values
    y = values[model.vars.y.columns]
    weights = model.data.flows["poids"].to_numpy(dtype=float)
    total = model.data.flux.total
    violated = set()
    for block in lp.variables:  # elastic slacks beyond the one tolerance (flux_opt/vocabulary.py)
        family = block.name.removeprefix("elastique_").rsplit("_", 1)[0]
        if block.name.startswith("elastique_") and np.any(missed(values[block.columns], _on_attributions(family))):
            violated.add(family)
    violated = sorted(violated)
    return BaselineFit(
        adequation_ponderee=round(float(y @ weights), 6),
        attributions_prevues=round(float(y.sum()), 4),
        adequation=round(float(y.sum()) / total, 6) if total else 0.0,
        objectif=round(float(lp.cost @ values), 6),
        regles_violees=violated,
        ecart_objectifs=_target_gap(model, fixed),
        statut=status,
    )


def _target_gap(model: OrientationModel, x: np.ndarray) -> int:
    d = model.data
    oriented = np.bincount(d.pairs["r"].to_numpy(), weights=x, minlength=len(d.reservataires))
    return int(round(np.abs(oriented - d.reservataires["cible"].to_numpy(dtype=float)).sum()))


def _x_values(model: OrientationModel, plan: pd.DataFrame) -> np.ndarray:
    """The plan's dwellings summed onto the model's x units (0 where the plan has none)."""
    values = x_positions(model.data, plan[PLAN_KEYS + ["logements"]])
    if values.sum() + 1e-9 < plan["logements"].sum():
        raise ValueError("Le plan oriente des logements hors du modèle "
                         f"({plan['logements'].sum() - values.sum():.0f} logements hors territoire).")
    return values


def _on_attributions(family: str) -> bool:
    rule = RULE.get(family)
    return bool(rule and rule.on_attributions)
