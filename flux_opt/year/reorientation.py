"""Re-optimisation of the rest of the year when reality drifts from the forecast.

The year is solved again with the normal model (`build_model`) on a modified
assiette: each segment's flux becomes max(F_s, L_s) where L_s counts the dwellings
already released in s and kept in the flux (method `maximum`, the default), or
L_s + (1 − f)·F_s with f the elapsed fraction of the year (method `prorata`).
What is already oriented is then fixed as lower bounds x[r,s] ≥ dwellings already
proposed to or attributed to r in s. Targets are recomputed on the new total, so
rates keep their meaning. See models/journal.md, section « Ré-optimisation ».
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from flux_opt.assiette.apportion import largest_remainder, round_half_up
from flux_opt.assiette.flux import SEGMENT, Flux, compute_flux
from flux_opt.year.journal.views import with_cycles, cycle_states
from flux_opt.model.data import with_bool_qpv, x_positions
from flux_opt.year.preorientation import SEUIL_REOPTIMISATION, gap_to_plan, done_by_segment
from flux_opt.pipeline import PlanOptions, PlanRun, run
from flux_opt.input.schema import Instance
from flux_opt.year.suivi import elapsed_fraction

METHODES = ("maximum", "prorata")


@dataclass(frozen=True)
class FluxReoptimise:
    """The assiette of the re-solve and what it is built from."""

    flux: Flux  # segments carry the new flux F'_s; total = Σ F'_s
    detail: pd.DataFrame  # per segment: SEGMENT, epci, prevus (F_s), liberes (L_s), flux (F'_s), nouveau
    orientes: pd.DataFrame  # lower bounds: SEGMENT, reservataire, logements


def year_journal(journal_df: pd.DataFrame, annee: int, jour: date) -> pd.DataFrame:
    """Events dated up to the end of `jour`, of the releases (cycles) opened in `annee`.

    Whole cycles are kept or dropped, so that the replay never sees a proposal whose
    release was cut off (a dwelling released in December of the year before)."""
    if not len(journal_df):
        return journal_df
    jusqu_a = journal_df[journal_df["horodatage"] <= pd.Timestamp(datetime.combine(jour, datetime.max.time()))]
    df = with_cycles(jusqu_a)  # positional index, row for row with `jusqu_a`
    liberation = df.loc[df["evenement"] == "liberation"].set_index(["logement_id", "cycle"])["horodatage"]
    debut = pd.Series(df.set_index(["logement_id", "cycle"]).index.map(liberation.to_dict()))
    return jusqu_a[(debut >= pd.Timestamp(date(annee, 1, 1))).to_numpy()]


def released_by_segment(journal_df: pd.DataFrame) -> pd.DataFrame:
    """Releases kept in the flux (withdrawn ones excluded) per segment, with the journal's EPCI."""
    colonnes = [*SEGMENT, "epci_journal", "liberes"]
    if not len(journal_df):
        return pd.DataFrame(columns=colonnes)
    etat = cycle_states(journal_df)
    etat = etat[etat["statut"] != "retire"]
    table = etat.groupby(SEGMENT, as_index=False).agg(epci_journal=("epci", "max"), liberes=("statut", "size"))
    return table[colonnes]


def reoptimised_flux(instance: Instance, journal_df: pd.DataFrame, jour: date,
                    methode: str = "maximum") -> FluxReoptimise:
    """The assiette of the re-solve: forecast flux raised to the releases already seen."""
    if methode not in METHODES:
        raise ValueError(f"méthode de ré-optimisation inconnue « {methode} » : {' ou '.join(METHODES)}")
    flux = compute_flux(instance)
    annee = instance.parametres.instance.annee
    journal = year_journal(journal_df, annee, jour)
    segments = flux.segments.merge(released_by_segment(journal), on=SEGMENT, how="outer", indicator=True)
    nouveau = (segments["_merge"] == "right_only").to_numpy()
    segments = segments.drop(columns="_merge")
    segments["liberes"] = segments["liberes"].fillna(0).astype(int)
    prevus = segments["flux"].fillna(0).astype(int).to_numpy()
    liberes = segments["liberes"].to_numpy()
    if methode == "maximum":
        nouveau_flux = np.maximum(prevus, liberes)
    else:  # prorata: releases seen + the forecast of the days left, apportioned to keep the total
        reste = (1.0 - elapsed_fraction(jour)) * prevus
        nouveau_flux = liberes + largest_remainder(reste, round_half_up(float(reste.sum())))
    segments = _completer_nouveaux(segments, nouveau, instance)
    segments["flux"] = nouveau_flux.astype(int)
    segments = segments.sort_values(SEGMENT, kind="stable").reset_index(drop=True)
    detail = segments[[*SEGMENT, "epci"]].assign(prevus=prevus, liberes=liberes, flux=nouveau_flux, nouveau=nouveau)
    detail = detail.sort_values(SEGMENT, kind="stable").reset_index(drop=True)
    segments = segments.drop(columns=["liberes", "epci_journal"])
    ajout = float(nouveau_flux.sum() - prevus.sum())
    nouveau_total = dataclasses.replace(flux, segments=segments, total=int(nouveau_flux.sum()),
                                        liberations=flux.liberations + ajout)
    orientes = done_by_segment(journal)
    orientes = (orientes.groupby([*SEGMENT, "reservataire"], as_index=False)["logements"].sum()
                if len(orientes) else pd.DataFrame(columns=[*SEGMENT, "reservataire", "logements"]))
    return FluxReoptimise(nouveau_total, detail, orientes)


def _completer_nouveaux(segments: pd.DataFrame, nouveau: np.ndarray, instance: Instance) -> pd.DataFrame:
    """A segment released but absent from the forecast: EPCI and name from the parc
    (or the journal for a commune outside the parc), no forecast, flux = releases."""
    segments = segments.copy()
    parc = instance.table("parc").drop_duplicates("commune").set_index("commune")
    communes = segments.loc[nouveau, "commune"]
    epci = communes.map(parc["epci"]).fillna(segments.loc[nouveau, "epci_journal"]).fillna("")
    segments.loc[nouveau, "epci"] = epci
    segments.loc[nouveau, "commune_nom"] = communes.map(parc["commune_nom"]).fillna(communes)
    for colonne in ("logements", "exclusions"):
        segments.loc[nouveau, colonne] = 0.0
    for colonne in ("liberations", "flux_prevu"):
        segments.loc[nouveau, colonne] = segments.loc[nouveau, "liberes"].astype(float)
    return segments


def lower_bounds(model, orientes: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Lower bounds aligned with the x units (dwellings already oriented, summed per unit), and
    the oriented dwellings no x can hold (réservataire outside its territory or unknown)."""
    bornes = x_positions(model.data, orientes)
    d = model.data
    known = set(zip(d.pairs["reservataire"], d.pairs["commune"], d.pairs["typologie"], d.pairs["qpv"]))
    qpv = with_bool_qpv(orientes)["qpv"]
    held = np.fromiter((k in known for k in zip(orientes["reservataire"], orientes["commune"],
                                                 orientes["typologie"], qpv)), dtype=bool, count=len(orientes))
    cles = ["reservataire", *SEGMENT]
    return bornes, orientes.loc[~held, [*cles, "logements"]].reset_index(drop=True)


def flux_initial_du_plan(plan_dir: str | Path) -> int | None:
    """The forecast flux the plan was computed for (that of the first plan if it was re-optimised)."""
    chemin = Path(plan_dir) / "resume.json"
    if not chemin.exists():
        return None
    resume = json.loads(chemin.read_text(encoding="utf-8"))
    valeur = resume.get("reoptimisation", {}).get("flux_initial", resume.get("flux"))
    return int(valeur) if valeur is not None else None


def reoptimise_rest_of_year(instance: Instance, plan_dir: str | Path, journal_df: pd.DataFrame, jour: date,
                methode: str = "maximum", engine: str = "highs", duals: bool = True) -> PlanRun:
    """Re-solve the year with what is already done fixed (see the module docstring); the run, to
    write through the one writer (report/outputs.py).

    `result.resume["reoptimisation"]` records the date, the method, the drift that led to it,
    the flux before and after, the dwellings kept and the time taken."""
    debut = time.perf_counter()
    attendu = flux_initial_du_plan(plan_dir)
    nouveau = reoptimised_flux(instance, journal_df, jour, methode)
    initial = int(nouveau.detail["prevus"].sum())
    if attendu is not None and attendu != initial:
        raise ValueError(f"le plan {plan_dir} a été calculé pour un flux de {attendu} logements, l'instance "
                         f"en prévoit {initial} : ce n'est pas l'instance du plan (vérifier --instance)")
    done = run(instance, PlanOptions(engine=engine, duals=duals), flux=nouveau.flux, require=nouveau.orientes)
    result = done.result
    bornes, hors_plan = lower_bounds(done.model, nouveau.orientes)
    journal = year_journal(journal_df, instance.parametres.instance.annee, jour)
    result.resume["reoptimisation"] = {
        "date": jour.isoformat(),
        "methode": methode,
        "ecart_au_plan": round(gap_to_plan(plan_dir, journal), 6),
        "seuil": SEUIL_REOPTIMISATION,
        "flux_initial": initial,
        "flux": nouveau.flux.total,
        "liberes": int(nouveau.detail["liberes"].sum()),
        "segments_nouveaux": int(nouveau.detail["nouveau"].sum()),
        "orientes": int(nouveau.orientes["logements"].sum()),
        "orientes_fixes": int(bornes.sum()),
        "orientes_hors_modele": hors_plan.to_dict("records"),
        "temps_s": round(time.perf_counter() - debut, 4),
    }
    return done


def reoptimisation_sentence(resume: dict) -> str:
    """One French sentence saying why and how the plan was re-optimised."""
    r = resume["reoptimisation"]
    phrase = (f"{_pct(r['ecart_au_plan'])} du flux libéré hors prévision au {_date_fr(r['date'])} "
              f"(seuil {_pct(r['seuil'])}) ; flux porté de {r['flux_initial']} à {r['flux']} logements, "
              f"{r['orientes_fixes']} logements déjà orientés conservés")
    if r["segments_nouveaux"]:
        phrase += f", {r['segments_nouveaux']} segment(s) absent(s) de la prévision ajouté(s)"
    if r["orientes_hors_modele"]:
        phrase += (f" ; {sum(o['logements'] for o in r['orientes_hors_modele'])} logement(s) orienté(s) "
                   "hors du territoire de leur réservataire non repris")
    return phrase + "."


def _pct(valeur: float) -> str:
    return f"{100 * valeur:.1f} %".replace(".", ",")


def _date_fr(iso: str) -> str:
    return date.fromisoformat(iso).strftime("%d/%m/%Y")
