"""The bilan against what was owed: each réservataire's objective vs what it was
proposed, attributed and counted; its publics prioritaires share vs its obligation,
with the DALO share beside it (the law gives DALO households priority inside that
share, not a rate of their own), and its Q1 share; refusals with their reasons;
dwellings returned to the bailleur; the CIA mixity targets per EPCI (CCH L.441-1, R.441-5-1; models/journal.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from flux_opt.year.conventions import Contexte, Convention

COLONNES_OBJECTIFS = ["reservataire", "nom", "objectif", "logements_proposes", "logements_attribues",
                      "logements_decomptes", "ecart", "baux_menage_connu", "part_prioritaires",
                      "part_prioritaires_due", "baux_dalo", "part_dalo", "obligation_prioritaires",
                      "part_q1_hors_qpv", "refus", "retours_bailleur"]


def targets_and_done(targets: pd.DataFrame, synthese: pd.DataFrame, compte: pd.DataFrame,
                         de_l_annee: pd.DataFrame, contexte: Contexte | None) -> pd.DataFrame:
    """One row per réservataire of the plan (and any other one of the journal).

    `objectifs`: reservataire, objectif. `compte`: counted units of the year
    (`count_points`). `ecart` = counted − objective (negative: still owed)."""
    table = targets.merge(synthese, on="reservataire", how="outer")
    points = compte.groupby("reservataire")["points"].sum()
    table["logements_decomptes"] = table["reservataire"].map(points).fillna(0.0)
    table[["objectif", "logements_proposes", "logements_attribues"]] = (
        table[["objectif", "logements_proposes", "logements_attribues"]].fillna(0))
    table["ecart"] = table["logements_decomptes"] - table["objectif"]
    baux = compte[compte["nature"] == "attribution"]
    connus = baux[baux["prioritaire"].notna()]
    table["baux_menage_connu"] = table["reservataire"].map(connus.groupby("reservataire").size()).fillna(0).astype(int)
    prio = connus.assign(p=connus["prioritaire"].astype(bool)).groupby("reservataire")["p"].mean()
    table["part_prioritaires"] = table["reservataire"].map(prio)
    conventions = contexte.conventions if contexte else {}
    table["nom"] = table["reservataire"].map(lambda r: conventions[r].nom if r in conventions else r)
    table["part_prioritaires_due"] = table["reservataire"].map(
        lambda r: conventions[r].prioritaires_min if r in conventions else np.nan)
    table["baux_dalo"], table["part_dalo"] = _dalo(table["reservataire"], connus)
    table["obligation_prioritaires"] = table["reservataire"].map(
        lambda r: priority_obligation(conventions[r]) if r in conventions else "")
    hors_qpv = baux[(baux["qpv"] == "hors QPV") & (baux["quartile"] != "")]
    q1 = hors_qpv.assign(q1=hors_qpv["quartile"] == "q1").groupby("reservataire")["q1"].mean()
    table["part_q1_hors_qpv"] = table["reservataire"].map(q1)
    evenements = de_l_annee.groupby(["reservataire", "evenement"]).size()
    for colonne, evenement in (("refus", "refus"), ("retours_bailleur", "retour_bailleur")):
        table[colonne] = [int(evenements.get((r, evenement), 0)) for r in table["reservataire"]]
    for colonne in ("objectif", "logements_proposes", "logements_attribues"):
        table[colonne] = table[colonne].astype(int)
    return table[COLONNES_OBJECTIFS].reset_index(drop=True)


def _dalo(reservataires: pd.Series, connus: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Leases to DALO households, and their share of the leases whose household is known.

    The share is left blank when a prioritaire lease of the réservataire does not say whether
    the household is DALO (e.g. a journal from before the `dalo` column): it would be a guess."""
    dalo = connus["dalo"].fillna(False).astype(bool)
    nombre = reservataires.map(dalo.groupby(connus["reservataire"]).sum()).fillna(0).astype(int)
    inconnu = connus["dalo"].isna() & connus["prioritaire"].fillna(False).astype(bool)
    douteux = set(connus.loc[inconnu, "reservataire"])
    base = reservataires.map(connus.groupby("reservataire").size())
    part = [np.nan if r in douteux or pd.isna(n) else k / n for r, k, n in zip(reservataires, nombre, base)]
    return nombre, pd.Series(part, index=reservataires.index, dtype=float)


def priority_obligation(convention: Convention) -> str:
    """What the law asks of the réservataire's attributions, in a sentence with its article.

    CCH L.441-1 (collectivités, bailleur) and L.313-26-2 (Action Logement): at least 25 %
    to DALO households or, failing them, to the other publics prioritaires; the State's
    contingent (agents aside) to publics prioritaires, DALO first (L.441-1, R.441-5)."""
    part = f"{100 * convention.prioritaires_min:.4g} %".replace(".", ",")
    if convention.type == "prefet_agents":
        return "agents de l'État : pas de part de publics prioritaires (CCH R.441-5)"
    if convention.prioritaires_min <= 0:  # employeurs and others without a rate in reservataires.csv
        return "pas de part de publics prioritaires fixée (CCH L.441-1 ; reservataires.csv, taux_prioritaires)"
    if convention.type == "prefet":
        return f"{part} aux publics prioritaires, ménages reconnus DALO en priorité (CCH L.441-1, R.441-5)"
    article = "CCH L.313-26-2" if convention.type == "action_logement" else "CCH L.441-1"
    return f"{part} aux ménages reconnus DALO ou, à défaut, aux autres publics prioritaires ({article})"


def refusals_with_reasons(de_l_annee: pd.DataFrame) -> pd.DataFrame:
    """Refusals of the year per réservataire and reason (the event's comment)."""
    refus = de_l_annee[de_l_annee["evenement"] == "refus"].copy()
    refus["motif"] = refus["commentaire"].str.strip().replace("", "motif non renseigné")
    table = refus.groupby(["reservataire", "motif"], as_index=False).size().rename(columns={"size": "refus"})
    return table.sort_values(["reservataire", "refus"], ascending=[True, False], kind="stable").reset_index(drop=True)


def returns_to_bailleur(de_l_annee: pd.DataFrame, contexte: Contexte | None) -> pd.DataFrame:
    """Dwellings returned to the bailleur after the delay, and how the convention counts them."""
    retours = de_l_annee[de_l_annee["evenement"] == "retour_bailleur"]
    conventions = contexte.conventions if contexte else {}
    table = pd.DataFrame({
        "reservataire": retours["reservataire"], "logement_id": retours["logement_id"],
        "date": retours["horodatage"].dt.strftime("%d/%m/%Y"), "commune": retours["commune"],
        "typologie": retours["typologie"],
        "decompte": ["décompté pour le réservataire" if r in conventions and conventions[r].decompte_retour
                     else "non décompté (droit non utilisé)" for r in retours["reservataire"]],
    })
    return table.reset_index(drop=True)


def mixite_cia(baux: pd.DataFrame, contexte: Contexte | None) -> pd.DataFrame:
    """Per EPCI with a CIA: Q1 share of leases hors QPV and Q2–Q4 share in QPV vs the CIA's rates."""
    colonnes = ["epci", "baux_hors_qpv", "part_q1_hors_qpv", "part_q1_exigee", "baux_qpv", "part_q234_qpv",
                "part_q234_exigee"]
    if contexte is None or not contexte.cia_epci:
        return pd.DataFrame(columns=colonnes)
    lignes = []
    for epci in sorted(contexte.cia_epci):
        connus = baux[(baux["epci"] == epci) & (baux["quartile"] != "")]
        hors, dans = connus[connus["qpv"] == "hors QPV"], connus[connus["qpv"] == "QPV"]
        lignes.append({"epci": epci, "baux_hors_qpv": len(hors),
                       "part_q1_hors_qpv": (hors["quartile"] == "q1").mean() if len(hors) else np.nan,
                       "part_q1_exigee": contexte.q1_hors_qpv, "baux_qpv": len(dans),
                       "part_q234_qpv": (dans["quartile"] == "q234").mean() if len(dans) else np.nan,
                       "part_q234_exigee": contexte.q234_qpv})
    return pd.DataFrame(lignes, columns=colonnes)


def forecast_from_exclusions(exclusions: pd.DataFrame, annee: int, libelles: dict[str, str]) -> pd.DataFrame:
    """Next year's withdrawals as the next instance forecasts them (exclusions.csv)."""
    par_categorie = exclusions.groupby("categorie")["logements"].sum()
    table = pd.DataFrame({"categorie": list(libelles)})
    table["libelle"] = table["categorie"].map(libelles)
    table["logements_prevus"] = table["categorie"].map(par_categorie).fillna(0.0).round(1)
    table["annees_de_reference"] = f"exclusions.csv de l'instance {annee + 1}"
    return table
