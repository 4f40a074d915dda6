"""Bilan annuel (CCH R.441-5-1; models/journal.md) computed from the events journal.

Definitions (also in models/journal.md):
- logements proposés: distinct releases (logement_id, cycle) with at least one
  `proposition` event to the réservataire during the year;
- logements attribués: `bail_signe` events of the year;
- retraits: `retrait` events of the year, by exclusion category;
- prévision des retraits for the new year: per category, the mean of the yearly
  withdrawals over the last three years (annee−2..annee) that have events in the
  journal (only the year itself when the journal covers one year).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from flux_opt.year.journal.events import CATEGORIES_RETRAIT
from flux_opt.year.journal.views import with_cycles
from flux_opt.plan.folder import read_objectifs, read_plan
from flux_opt.year.conventions import Contexte
from flux_opt.year.obligations import (mixite_cia, targets_and_done, forecast_from_exclusions,
                                      refusals_with_reasons, returns_to_bailleur)
from flux_opt.year.suivi import CountingRules, count_points, epci_depuis_plan, counting_rules_of

DIMENSIONS: dict[str, str] = {
    "typologie": "Typologie",
    "financement": "Financement",
    "qpv": "QPV / hors QPV",
    "commune": "Commune",
    "periode_construction": "Période de construction",
}
SEGMENT = ("commune", "qpv", "typologie", "financement")
LIBELLES: dict[str, str] = {
    "reservataire": "Réservataire",
    "logements_proposes": "Logements proposés",
    "logements_attribues": "Logements attribués",
    "logements_decomptes": "Logements décomptés",
    "categorie": "Catégorie",
    "libelle": "Usage",
    "logements": "Logements",
    "logements_prevus": "Logements prévus",
    "objectif": "Objectif",
    "nom": "Nom",
    "ecart": "Écart (décomptés − objectif)",
    "baux_menage_connu": "Baux (ménage connu)",
    "part_prioritaires": "Part publics prioritaires (dont DALO)",
    "part_prioritaires_due": "Part due aux publics prioritaires",
    "baux_dalo": "Baux DALO",
    "part_dalo": "Part DALO (information)",
    "obligation_prioritaires": "Obligation légale (publics prioritaires, DALO)",
    "prioritaires_tenue": "Part due atteinte",
    "part_q1_hors_qpv": "Part Q1 hors QPV",
    "refus": "Refus",
    "retours_bailleur": "Logements rendus au bailleur",
    "motif": "Motif",
    "logement_id": "Logement",
    "date": "Date",
    "decompte": "Décompte (convention)",
    "epci": "EPCI",
    "baux_hors_qpv": "Baux hors QPV (ménage connu)",
    "part_q1_exigee": "Part Q1 exigée (CIA)",
    "baux_qpv": "Baux en QPV (ménage connu)",
    "part_q234_qpv": "Part Q2-Q4 en QPV",
    "part_q234_exigee": "Part Q2-Q4 exigée (CIA)",
    **DIMENSIONS,
}


@dataclass(frozen=True)
class Bilan:
    annee: int
    synthese: pd.DataFrame  # per réservataire: proposed, attributed, counted
    par_dimension: dict[str, pd.DataFrame] = field(default_factory=dict)
    retraits: pd.DataFrame = field(default_factory=pd.DataFrame)
    retraits_detail: pd.DataFrame = field(default_factory=pd.DataFrame)
    prevision_retraits: pd.DataFrame = field(default_factory=pd.DataFrame)
    targets: pd.DataFrame = field(default_factory=pd.DataFrame)  # objective vs realised (needs the plan)
    refus: pd.DataFrame = field(default_factory=pd.DataFrame)
    retours: pd.DataFrame = field(default_factory=pd.DataFrame)
    mixite_cia: pd.DataFrame = field(default_factory=pd.DataFrame)
    # leases of the year per réservataire × commune × qpv × typologie × financement (the annexes' grid)
    par_segment: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def reservataires(self) -> list[str]:
        """Réservataires of the plan when it is known (even with no event), else of the journal."""
        source = self.targets if "reservataire" in self.targets.columns else self.synthese
        return list(source["reservataire"])

    def for_reservataire(self, reservataire: str) -> Bilan:
        """The same bilan restricted to one réservataire (withdrawals stay bailleur-wide)."""
        def garde(df: pd.DataFrame) -> pd.DataFrame:
            if "reservataire" not in df.columns:
                return df
            return df[df["reservataire"] == reservataire].reset_index(drop=True)
        return Bilan(self.annee, garde(self.synthese), {d: garde(t) for d, t in self.par_dimension.items()},
                     self.retraits, self.retraits_detail, self.prevision_retraits, garde(self.targets),
                     garde(self.refus), garde(self.retours), pd.DataFrame(), garde(self.par_segment))


def bilan(journal_df: pd.DataFrame, annee: int, regles: CountingRules | None = None,
          targets: pd.DataFrame | None = None, contexte: Contexte | None = None,
          exclusions_suivantes: pd.DataFrame | None = None) -> Bilan:
    """Legal tables of year `annee`: proposed and attributed per réservataire and by
    typologie, financement, QPV, commune and construction period; withdrawals; forecast.

    With `targets` (reservataire, objectif: the plan's targets) and `contexte` (the
    plan's instance), each réservataire's objective vs what it got and its obligations;
    `exclusions_suivantes` (next instance's exclusions.csv) gives next year's forecast."""
    df = with_cycles(journal_df)
    df["periode_construction"] = df["periode_construction"].replace("", "non renseignée")
    df["qpv"] = df["qpv"].map({True: "QPV", False: "hors QPV"})
    de_l_annee = df[df["horodatage"].dt.year == annee]
    proposes = de_l_annee[de_l_annee["evenement"] == "proposition"].drop_duplicates(
        ["logement_id", "cycle", "reservataire"])
    attribues = de_l_annee[de_l_annee["evenement"] == "bail_signe"]
    regles = regles or counting_rules_of(contexte)
    synthese = _count(proposes, attribues, [])
    compte = count_points(de_l_annee, regles)
    if regles is not None and (regles.ponderations or regles.retours_decomptes):
        points = compte.groupby("reservataire", as_index=False)["points"].sum()
        synthese = synthese.merge(points.rename(columns={"points": "logements_decomptes"}),
                                  on="reservataire", how="left").fillna({"logements_decomptes": 0.0})
    retraits_annee = de_l_annee[de_l_annee["evenement"] == "retrait"]
    prevision = (_forecast(df, annee) if exclusions_suivantes is None
                 else forecast_from_exclusions(exclusions_suivantes, annee, CATEGORIES_RETRAIT))
    return Bilan(
        annee=annee,
        synthese=synthese,
        par_dimension={d: _count(proposes, attribues, [d]) for d in DIMENSIONS},
        retraits=_retraits(retraits_annee),
        retraits_detail=_withdrawals_detail(retraits_annee),
        prevision_retraits=prevision,
        targets=(targets_and_done(targets, _count(proposes, attribues, []), compte, de_l_annee, contexte)
                   if targets is not None else pd.DataFrame()),
        refus=refusals_with_reasons(de_l_annee),
        retours=returns_to_bailleur(de_l_annee, contexte),
        mixite_cia=mixite_cia(attribues, contexte),
        par_segment=_count(proposes, attribues, list(SEGMENT)),
    )


def bilan_du_plan(plan_dir: str | Path, journal_df: pd.DataFrame, annee: int, contexte: Contexte | None = None,
                  exclusions_suivantes: pd.DataFrame | None = None) -> tuple[Bilan, dict[str, Bilan]]:
    """The bilan of `annee` against the plan's objectives, and one per EPCI with a CIA
    (objectives there: the dwellings the plan gave each réservataire in the EPCI)."""
    annees = sorted(journal_df["horodatage"].dt.year.unique()) if len(journal_df) else []
    if annee not in annees:
        presentes = ", ".join(str(a) for a in annees) or "aucune, le journal est vide"
        raise ValueError(f"aucun événement daté de {annee} dans le journal (années présentes : {presentes}) : "
                         "pas de bilan à dresser pour cette année")
    plan = read_plan(plan_dir)
    journal = epci_depuis_plan(journal_df, plan)
    targets = read_objectifs(plan_dir)[["reservataire", "cible"]].rename(columns={"cible": "objectif"})
    consolide = bilan(journal, annee, targets=targets, contexte=contexte, exclusions_suivantes=exclusions_suivantes)
    par_epci = {}
    for epci in sorted(contexte.cia_epci) if contexte else []:
        du_plan = plan[plan["epci"] == epci]
        prevus = du_plan.groupby("reservataire", as_index=False)["logements"].sum()
        par_epci[epci] = bilan(journal[journal["epci"] == epci], annee,
                               targets=prevus.rename(columns={"logements": "objectif"}),
                               contexte=replace(contexte, cia_epci=frozenset({epci})))
    return consolide, par_epci


def _count(proposes: pd.DataFrame, attribues: pd.DataFrame, dimensions: list[str]) -> pd.DataFrame:
    cles = ["reservataire", *dimensions]
    p = proposes.groupby(cles, as_index=False).size().rename(columns={"size": "logements_proposes"})
    a = attribues.groupby(cles, as_index=False).size().rename(columns={"size": "logements_attribues"})
    table = p.merge(a, on=cles, how="outer")
    table[["logements_proposes", "logements_attribues"]] = (
        table[["logements_proposes", "logements_attribues"]].fillna(0).astype(int))
    return table.sort_values(cles, kind="stable").reset_index(drop=True)


def _retraits(retraits: pd.DataFrame) -> pd.DataFrame:
    comptes = retraits.groupby("categorie").size()
    table = pd.DataFrame({"categorie": list(CATEGORIES_RETRAIT)})
    table["libelle"] = table["categorie"].map(CATEGORIES_RETRAIT)
    table["logements"] = table["categorie"].map(comptes).fillna(0).astype(int)
    return table


def _withdrawals_detail(retraits: pd.DataFrame) -> pd.DataFrame:
    cles = ["categorie", "commune", "typologie", "qpv", "financement"]
    return (retraits.groupby(cles, as_index=False).size().rename(columns={"size": "logements"})
            .sort_values(cles, kind="stable").reset_index(drop=True))


def _forecast(df: pd.DataFrame, annee: int) -> pd.DataFrame:
    annees = sorted(a for a in df["horodatage"].dt.year.unique() if annee - 2 <= a <= annee) or [annee]
    retraits = df[(df["evenement"] == "retrait") & df["horodatage"].dt.year.isin(annees)]
    comptes = retraits.groupby("categorie").size()
    table = pd.DataFrame({"categorie": list(CATEGORIES_RETRAIT)})
    table["libelle"] = table["categorie"].map(CATEGORIES_RETRAIT)
    table["logements_prevus"] = (table["categorie"].map(comptes).fillna(0) / len(annees)).round(1)
    table["annees_de_reference"] = ", ".join(str(a) for a in annees)
    return table
