"""Counting rules and in-year follow-up of the plan (models/journal.md).

Counting (`count_points`): by default one point per signed lease (`bail_signe`).
A réservataire in gestion directe may also earn points for proposals examined in
CALEOL that did not end in a lease, with a weighting whose points for a proposal
never exceed the points for an attribution (Île-de-France consultation); by default the total of
proposal points is also capped at the total of attribution points.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from flux_opt.plan.folder import read_attributions, read_objectifs, read_plan
from flux_opt.year.conventions import Contexte
from flux_opt.year.journal.views import with_cycles, cycle_states

SEGMENT_JOURNAL = ["commune", "epci", "qpv", "typologie", "financement", "periode_construction"]


class Ponderation(BaseModel):
    """Mixed counting for one réservataire in gestion directe."""

    model_config = ConfigDict(extra="forbid")

    points_attribution: float = Field(1.0, gt=0)
    points_proposition: float = Field(0.0, ge=0)
    plafonner: bool = True  # cap Σ proposal points at Σ attribution points (Île-de-France consultation)

    @model_validator(mode="after")
    def _proposals_at_most_leases(self) -> Ponderation:
        if self.points_proposition > self.points_attribution:
            raise ValueError(
                f"points_proposition ({self.points_proposition}) ne peut pas dépasser "
                f"points_attribution ({self.points_attribution}) : une proposition ne vaut jamais "
                "plus qu'une attribution"
            )
        return self


class CountingRules(BaseModel):
    """Counting rules: signed lease by default; weighting per réservataire in gestion directe.

    `gestion` (optional, id -> directe/deleguee) lets the validation refuse a weighting
    for a réservataire in gestion déléguée, which always counts at the signed lease.
    """

    model_config = ConfigDict(extra="forbid")

    ponderations: dict[str, Ponderation] = Field(default_factory=dict)
    gestion: dict[str, str] = Field(default_factory=dict)
    # réservataires whose convention counts a dwelling returned to the bailleur as used
    retours_decomptes: set[str] = Field(default_factory=set)

    @model_validator(mode="after")
    def _gestion_directe_seulement(self) -> CountingRules:
        for reservataire in self.ponderations:
            mode = self.gestion.get(reservataire)
            if mode is not None and mode != "directe":
                raise ValueError(
                    f"réservataire « {reservataire} » en gestion {mode} : le décompte des propositions "
                    "examinées en CALEOL n'est possible qu'en gestion directe"
                )
        return self


COLONNES_DECOMPTE = ["logement_id", "cycle", "reservataire", "nature", "horodatage", *SEGMENT_JOURNAL,
                     "quartile", "prioritaire", "dalo", "points"]


def count_points(journal_df: pd.DataFrame, regles: CountingRules | None = None) -> pd.DataFrame:
    """One row per counted unit: `nature` is `attribution` (signed lease) or
    `proposition_examinee` (weighted proposal examined in CALEOL without a lease)."""
    regles = regles or CountingRules()
    df = with_cycles(journal_df)
    baux = df[df["evenement"] == "bail_signe"].copy()
    baux["nature"] = "attribution"
    baux["points"] = baux["reservataire"].map(
        lambda r: regles.ponderations[r].points_attribution if r in regles.ponderations else 1.0
    ).astype(float)
    retours = df[(df["evenement"] == "retour_bailleur") & df["reservataire"].isin(regles.retours_decomptes)].copy()
    retours = retours.drop_duplicates(["logement_id", "cycle"])
    retours["nature"], retours["points"] = "retour_decompte", 1.0
    # a returned dwelling counted for its réservataire is not counted again when the bailleur lets it
    deja = baux.set_index(["logement_id", "cycle"]).index.isin(retours.set_index(["logement_id", "cycle"]).index)
    baux.loc[deja, "points"] = 0.0
    propositions = _examined_proposals(df, regles)
    compte = pd.concat([baux, retours, propositions], ignore_index=True)
    compte = _plafonner(compte, regles)
    return compte[COLONNES_DECOMPTE].sort_values(["horodatage", "logement_id"], kind="stable").reset_index(drop=True)


def _examined_proposals(df: pd.DataFrame, regles: CountingRules) -> pd.DataFrame:
    concernes = df[df["reservataire"].isin(list(regles.ponderations))]
    cle = ["logement_id", "cycle", "rang_proposition"]
    examens = concernes[concernes["evenement"] == "examen_caleol"].drop_duplicates(cle)
    signees = concernes.loc[concernes["evenement"] == "bail_signe", cle]
    examens = examens.merge(signees, on=cle, how="left", indicator=True)
    examens = examens[examens["_merge"] == "left_only"].drop(columns="_merge")
    examens["nature"] = "proposition_examinee"
    examens["points"] = examens["reservataire"].map(lambda r: regles.ponderations[r].points_proposition).astype(float)
    return examens


def _plafonner(compte: pd.DataFrame, regles: CountingRules) -> pd.DataFrame:
    """Scale proposal points down so they never exceed attribution points (Île-de-France consultation)."""
    compte = compte.copy()
    for reservataire, ponderation in regles.ponderations.items():
        if not ponderation.plafonner:
            continue
        du_reservataire = compte["reservataire"] == reservataire
        props = du_reservataire & (compte["nature"] == "proposition_examinee")
        total_props = compte.loc[props, "points"].sum()
        total_attr = compte.loc[du_reservataire & (compte["nature"] == "attribution"), "points"].sum()
        if total_props > total_attr:
            compte.loc[props, "points"] *= total_attr / total_props
    return compte


# --------------------------------------------------------------------------- follow-up

@dataclass(frozen=True)
class Suivi:
    """Follow-up tables at `date` (projection: see `project_to_year_end`)."""

    date: date
    fraction_annee: float
    reservataires: pd.DataFrame
    par_typologie: pd.DataFrame
    par_qpv: pd.DataFrame
    par_commune: pd.DataFrame
    mixite: pd.DataFrame
    prioritaires: pd.DataFrame
    delais: pd.DataFrame = field(default_factory=pd.DataFrame)
    noms: dict[str, str] = field(default_factory=dict)


def elapsed_fraction(jour: date) -> float:
    """Share of the calendar year elapsed at the end of `jour` (1 Jan -> 1/365)."""
    jours = 366 if calendar.isleap(jour.year) else 365
    return (jour.timetuple().tm_yday) / jours


def project_to_year_end(realise, en_cours, fraction: float):
    """Counted by 31 December: dwellings under way become leases, orientations go on at
    the pace so far ((realise + en_cours) / fraction by year end), and about as many
    dwellings as today are still under way on 31 December (not counted yet)."""
    return (realise + en_cours) / fraction - en_cours


def counting_rules_of(contexte: Contexte | None) -> CountingRules | None:
    if contexte is None:
        return None
    return CountingRules(gestion={r: c.gestion for r, c in contexte.conventions.items()},
                          retours_decomptes={r for r, c in contexte.conventions.items() if c.decompte_retour})


def suivi(plan_dir: str | Path, journal_df: pd.DataFrame, jour: date,
          regles: CountingRules | None = None, contexte: Contexte | None = None) -> Suivi:
    """Target, done, in progress, remaining and projection per réservataire and by
    typologie / QPV / commune, the mixity achieved against its legal and CIA targets,
    and the proposals whose delay runs out (`contexte`: the plan's instance rules)."""
    plan = read_plan(plan_dir)
    journal = epci_depuis_plan(_journal_until(journal_df, jour), plan)
    compte = count_points(journal, regles or counting_rules_of(contexte))
    etat = cycle_states(journal) if len(journal) else None
    en_cours = etat[etat["statut"] == "propose"] if etat is not None else None
    fraction = elapsed_fraction(jour)
    targets = read_objectifs(plan_dir)[["reservataire", "cible"]]
    return Suivi(
        date=jour,
        fraction_annee=fraction,
        reservataires=_table_of(targets, compte, en_cours, [], fraction),
        par_typologie=_table_of(_plan_targets(plan, "typologie"), compte, en_cours, ["typologie"], fraction),
        par_qpv=_table_of(_plan_targets(plan, "qpv"), compte, en_cours, ["qpv"], fraction),
        par_commune=_table_of(_plan_targets(plan, "commune"), compte, en_cours, ["commune"], fraction),
        mixite=_mixity(compte, read_attributions(plan_dir), contexte),
        prioritaires=_prioritaires(compte, contexte),
        delais=delais_a_surveiller(en_cours, jour, contexte),
        noms={r: c.nom for r, c in contexte.conventions.items()} if contexte else {},
    )


# A proposal whose delay ends within this many days is listed as running out.
JOURS_ALERTE = 7
COLONNES_DELAIS = ["logement_id", "commune", "typologie", "qpv", "reservataire", "date_proposition", "echeance",
                   "jours_restants", "candidats_presentes", "candidats_attendus", "situation"]


def delais_a_surveiller(en_cours: pd.DataFrame | None, jour: date, contexte: Contexte | None) -> pd.DataFrame:
    """Proposals in progress still short of the convention's candidates whose delay runs
    out within JOURS_ALERTE days (`proche`) or is past (`depasse`: may go back to the bailleur)."""
    if en_cours is None or not len(en_cours):
        return pd.DataFrame(columns=COLONNES_DELAIS)
    conventions = contexte.conventions if contexte else {}
    # the bailleur's own dwellings have no convention delay
    table = en_cours[[conventions[r].type != "bailleur" if r in conventions else r != "bailleur"
                      for r in en_cours["reservataire"]]].copy()
    table["delai"] = table["reservataire"].map(lambda r: conventions[r].delai_jours if r in conventions else 30)
    table["candidats_attendus"] = table["reservataire"].map(
        lambda r: conventions[r].candidats if r in conventions else 1)
    table["echeance"] = table["date_proposition"] + pd.to_timedelta(table["delai"], unit="D")
    table["jours_restants"] = (table["echeance"] - pd.Timestamp(jour)).dt.days
    courts = table["candidats_presentes"] < table["candidats_attendus"]
    table["situation"] = np.where(table["jours_restants"] < 0, "depasse", "proche")
    table = table[courts & (table["jours_restants"] <= JOURS_ALERTE)]
    return table.sort_values(["jours_restants", "logement_id"], kind="stable")[COLONNES_DELAIS].reset_index(drop=True)


def _journal_until(journal_df: pd.DataFrame, jour: date) -> pd.DataFrame:
    if not len(journal_df):
        return journal_df
    limite = pd.Timestamp(datetime.combine(jour, datetime.max.time()))
    debut = pd.Timestamp(date(jour.year, 1, 1))
    garde = (journal_df["horodatage"] <= limite) & (journal_df["horodatage"] >= debut)
    return journal_df[garde]


def epci_depuis_plan(journal: pd.DataFrame, plan: pd.DataFrame) -> pd.DataFrame:
    """The journal may leave `epci` blank: take it from the plan's commune."""
    epci = plan.drop_duplicates("commune").set_index("commune")["epci"]
    journal = journal.copy()
    vides = journal["epci"] == ""
    journal.loc[vides, "epci"] = journal.loc[vides, "commune"].map(epci).fillna("")
    return journal


def _plan_targets(plan: pd.DataFrame, dimension: str) -> pd.DataFrame:
    targets = plan.groupby(["reservataire", dimension], as_index=False)["logements"].sum()
    return targets.rename(columns={"logements": "cible"})


def _table_of(targets: pd.DataFrame, compte: pd.DataFrame, en_cours: pd.DataFrame | None,
             dimensions: list[str], fraction: float) -> pd.DataFrame:
    cles = ["reservataire", *dimensions]
    realise = compte.groupby(cles, as_index=False)["points"].sum().rename(columns={"points": "realise"})
    table = targets.merge(realise, on=cles, how="outer")
    if en_cours is not None and len(en_cours):
        courant = en_cours.groupby(cles, as_index=False).size().rename(columns={"size": "en_cours"})
        table = table.merge(courant, on=cles, how="outer")
    else:
        table["en_cours"] = 0
    table[["cible", "realise", "en_cours"]] = table[["cible", "realise", "en_cours"]].fillna(0)
    table["en_cours"] = table["en_cours"].astype(int)
    table["reste"] = (table["cible"] - table["realise"] - table["en_cours"]).clip(lower=0)
    table["taux_realisation"] = (table["realise"] / table["cible"]).where(table["cible"] > 0)
    table["projection"] = project_to_year_end(table["realise"], table["en_cours"], fraction)
    table["ecart_projete"] = table["projection"] - table["cible"]
    return table.sort_values(cles, kind="stable").reset_index(drop=True)


def _mixity(compte: pd.DataFrame, attributions: pd.DataFrame | None, contexte: Contexte | None) -> pd.DataFrame:
    """Per EPCI and zone (qpv / hors_qpv): shares of leases to Q1, Q2–Q4 and publics
    prioritaires among leases whose household category is known, vs the plan's forecast
    and, in an EPCI with a CIA, vs the legal targets (CCH L.441-1: Q1 hors QPV, Q2–Q4 in QPV)."""
    baux = compte[compte["nature"] == "attribution"].copy()
    baux["zone"] = baux["qpv"].map({True: "qpv", False: "hors_qpv"})
    connus = baux[baux["quartile"] != ""]
    table = baux.groupby(["epci", "zone"], as_index=False).size().rename(columns={"size": "attributions"})
    parts = connus.groupby(["epci", "zone"]).agg(
        quartile_connu=("quartile", "size"),
        q1=("quartile", lambda q: int((q == "q1").sum())),
        prioritaires=("prioritaire", lambda p: int(p.fillna(False).sum())),
    ).reset_index()
    table = table.merge(parts, on=["epci", "zone"], how="left").fillna({"quartile_connu": 0, "q1": 0, "prioritaires": 0})
    base = table["quartile_connu"].where(table["quartile_connu"] > 0)
    table["part_q1"] = table["q1"] / base
    table["part_q234"] = 1 - table["part_q1"]
    table["part_prioritaires"] = table["prioritaires"] / base
    if attributions is not None:
        table = table.merge(_planned_mixite(attributions), on=["epci", "zone"], how="left")
    cia = table["epci"].isin(contexte.cia_epci) if contexte else pd.Series(False, index=table.index)
    table["part_q1_exigee"] = np.where(cia & (table["zone"] == "hors_qpv"), contexte.q1_hors_qpv if contexte else 0, np.nan)
    table["part_q234_exigee"] = np.where(cia & (table["zone"] == "qpv"), contexte.q234_qpv if contexte else 0, np.nan)
    return table


def _planned_mixite(attributions: pd.DataFrame) -> pd.DataFrame:
    a = attributions.assign(zone=attributions["qpv"].map({True: "qpv", False: "hors_qpv"}))
    a = a.assign(q1=a["attributions_prevues"].where(a["quartile"] == "q1", 0),
                 prio=a["attributions_prevues"].where(a["prioritaire"], 0))
    g = a.groupby(["epci", "zone"], as_index=False)[["attributions_prevues", "q1", "prio"]].sum()
    total = g["attributions_prevues"].where(g["attributions_prevues"] > 0)
    return pd.DataFrame({"epci": g["epci"], "zone": g["zone"], "part_q1_prevue": g["q1"] / total,
                         "part_prioritaires_prevue": g["prio"] / total})


def _prioritaires(compte: pd.DataFrame, contexte: Contexte | None = None) -> pd.DataFrame:
    """Share of each réservataire's leases to publics prioritaires (known category only),
    with the share it owes (CCH L.441-1) when the instance is known."""
    baux = compte[(compte["nature"] == "attribution")]
    connus = baux[baux["prioritaire"].notna()]
    table = connus.groupby("reservataire").agg(
        attributions=("prioritaire", "size"), prioritaires=("prioritaire", lambda p: int(p.sum()))
    ).reset_index()
    table["part_prioritaires"] = table["prioritaires"] / table["attributions"]
    conventions = contexte.conventions if contexte else {}
    table["part_due"] = table["reservataire"].map(
        lambda r: conventions[r].prioritaires_min if r in conventions else np.nan).astype(float)
    return table
