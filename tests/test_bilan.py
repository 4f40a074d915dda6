"""Bilan annuel: totals equal the journal's counts, computed here independently."""

from __future__ import annotations

import csv
from collections import Counter

import pandas as pd
import pytest

from flux_opt.report.bilan import write_bilan
from flux_opt.year.bilan import DIMENSIONS, bilan
from flux_opt.year.journal.storage import read_journal
from flux_opt.year.simulation import generate_events, simulate_year
from flux_opt.year.suivi import Ponderation, CountingRules
from journal_fixtures import ecrire_plan


@pytest.fixture(scope="module")
def deux_annees(tmp_path_factory):
    """A journal holding a simulated 2026 then a simulated 2027."""
    dossier = tmp_path_factory.mktemp("bilan")
    plan = ecrire_plan(dossier / "plan")
    chemin = dossier / "journal.csv"
    simulate_year(plan, chemin, 2026, graine=3)
    simulate_year(plan, chemin, 2027, graine=4)
    return chemin


def lignes_de(chemin, annee):
    with open(chemin, encoding="utf-8", newline="") as f:
        return [l for l in csv.DictReader(f) if l["horodatage"].startswith(str(annee))]


def propositions_distinctes(chemin, annee):
    """(réservataire, logement, release number) of the year's proposals, counted by hand."""
    releases, vus = Counter(), set()
    with open(chemin, encoding="utf-8", newline="") as f:
        for l in csv.DictReader(f):
            if l["evenement"] == "liberation":
                releases[l["logement_id"]] += 1
            if l["evenement"] == "proposition" and l["horodatage"].startswith(str(annee)):
                vus.add((l["reservataire"], l["logement_id"], releases[l["logement_id"]], l["typologie"],
                         l["qpv"]))
    return vus


def test_bilan_totals_equal_the_journal_counts(deux_annees):
    b = bilan(read_journal(deux_annees), 2027)
    lignes = lignes_de(deux_annees, 2027)
    baux = Counter(l["reservataire"] for l in lignes if l["evenement"] == "bail_signe")
    proposes = Counter(r for r, *_ in propositions_distinctes(deux_annees, 2027))
    synthese = b.synthese.set_index("reservataire")
    assert synthese["logements_attribues"].to_dict() == dict(baux)
    assert synthese["logements_proposes"].to_dict() == dict(proposes)
    assert sum(baux.values()) > 50
    # every breakdown adds up to the same totals
    for dimension in DIMENSIONS:
        table = b.par_dimension[dimension]
        assert table.groupby("reservataire")["logements_attribues"].sum().to_dict() == dict(baux)
        assert table.groupby("reservataire")["logements_proposes"].sum().to_dict() == dict(proposes)
    # and each cell too, e.g. attributions by typologie and by QPV
    par_typo = Counter((l["reservataire"], l["typologie"]) for l in lignes if l["evenement"] == "bail_signe")
    obtenu = b.par_dimension["typologie"].set_index(["reservataire", "typologie"])["logements_attribues"]
    assert {k: v for k, v in obtenu.to_dict().items() if v} == dict(par_typo)
    prop_qpv = Counter((r, "QPV" if q == "oui" else "hors QPV")
                       for r, _, _, _, q in propositions_distinctes(deux_annees, 2027))
    obtenu = b.par_dimension["qpv"].set_index(["reservataire", "qpv"])["logements_proposes"]
    assert {k: v for k, v in obtenu.to_dict().items() if v} == dict(prop_qpv)
    par_periode = Counter(l["periode_construction"] for l in lignes if l["evenement"] == "bail_signe")
    obtenu = b.par_dimension["periode_construction"].groupby("periode_construction")["logements_attribues"].sum()
    assert {k: v for k, v in obtenu.to_dict().items() if v} == dict(par_periode)


def test_withdrawals_and_forecast_for_the_new_year(deux_annees):
    b = bilan(read_journal(deux_annees), 2027)
    retraits = Counter(l["categorie"] for l in lignes_de(deux_annees, 2027) if l["evenement"] == "retrait")
    retraits_2026 = Counter(l["categorie"] for l in lignes_de(deux_annees, 2026) if l["evenement"] == "retrait")
    obtenu = b.retraits.set_index("categorie")["logements"]
    assert {k: v for k, v in obtenu.to_dict().items() if v} == dict(retraits)
    assert set(obtenu.index) == {"mutation", "anru", "orcod", "lhi", "vente", "urgence"}
    assert b.retraits_detail["logements"].sum() == sum(retraits.values())
    prevision = b.prevision_retraits.set_index("categorie")["logements_prevus"]
    for categorie, valeur in prevision.items():
        assert valeur == pytest.approx(round((retraits[categorie] + retraits_2026[categorie]) / 2, 1))
    assert set(b.prevision_retraits["annees_de_reference"]) == {"2026, 2027"}


def test_bilan_of_2026_ignores_2027_events(deux_annees):
    b = bilan(read_journal(deux_annees), 2026)
    baux = Counter(l["reservataire"] for l in lignes_de(deux_annees, 2026) if l["evenement"] == "bail_signe")
    assert b.synthese.set_index("reservataire")["logements_attribues"].to_dict() == dict(baux)
    assert set(b.prevision_retraits["annees_de_reference"]) == {"2026"}


def test_weighted_counting_appears_in_the_synthesis(deux_annees):
    regles = CountingRules(ponderations={"prefet": Ponderation(points_proposition=0.5)})
    b = bilan(read_journal(deux_annees), 2027, regles)
    synthese = b.synthese.set_index("reservataire")
    assert synthese.loc["prefet", "logements_decomptes"] >= synthese.loc["prefet", "logements_attribues"]
    assert synthese.loc["prefet", "logements_decomptes"] <= 2 * synthese.loc["prefet", "logements_attribues"]
    autres = synthese.drop(index="prefet")
    assert (autres["logements_decomptes"] == autres["logements_attribues"]).all()


def test_written_files_consolidated_and_per_reservataire(deux_annees, tmp_path):
    b = bilan(read_journal(deux_annees), 2027)
    ecrits = write_bilan(b, tmp_path / "sortie")
    noms = {p.name for p in ecrits}
    assert {"bilan_2027.xlsx", "bilan_2027.html"} <= noms
    for reservataire in ("prefet", "action-logement", "bailleur", "ville-lille"):  # names (here: ids) slugged
        assert {f"bilan_2027_{reservataire}.xlsx", f"bilan_2027_{reservataire}.html"} <= noms
    synthese = pd.read_excel(tmp_path / "sortie" / "bilan_2027.xlsx", sheet_name="Synthèse", header=1)
    assert list(synthese.columns) == ["Réservataire", "Logements proposés", "Logements attribués"]
    lignes = synthese[synthese["Réservataire"] != "Total"]
    assert lignes["Logements attribués"].sum() == b.synthese["logements_attribues"].sum()
    total = synthese.loc[synthese["Réservataire"] == "Total", "Logements attribués"]
    assert list(total) == [b.synthese["logements_attribues"].sum()]
    feuilles = pd.read_excel(tmp_path / "sortie" / "bilan_2027_prefet.xlsx", sheet_name=None, header=1)
    assert "Réservataire" not in feuilles["Par typologie"]  # its own file: no column repeating it
    assert feuilles["Par typologie"]["Logements attribués"].sum() == \
        b.synthese.set_index("reservataire").at["prefet", "logements_attribues"]
    # the annex layout: its leases by commune × QPV × typologie × financement, the total its own leases
    annexe = pd.read_excel(tmp_path / "sortie" / "bilan_2027_prefet.xlsx", sheet_name="Logements attribués", header=None)
    head = annexe.index[annexe[0] == "Commune"][0]
    grille = pd.read_excel(tmp_path / "sortie" / "bilan_2027_prefet.xlsx", sheet_name="Logements attribués",
                           header=head)
    baux = b.synthese.set_index("reservataire").at["prefet", "logements_attribues"]
    assert grille.iloc[-1]["Commune"] == "Total" and grille.iloc[-1]["Total"] == baux
    assert grille.iloc[-1]["% du flux"] == pytest.approx(round(baux / b.synthese["logements_attribues"].sum(), 4))
    assert "Synthèse" not in feuilles  # the other réservataires' figures stay out of its file
    assert feuilles["Retraits du flux"]["Logements"].sum() == b.retraits["logements"].sum()
    assert "Prévision des retraits 2028" in feuilles
    page = (tmp_path / "sortie" / "bilan_2027_prefet.html").read_text(encoding="utf-8")
    assert "<style>" in page and "Logements attribués" in page and "R.441-5-1" in page
    assert "http" not in page and "<script" not in page  # self-contained


def test_simulation_is_reproducible_and_drift_moves_t3_to_t2(deux_annees):
    plan = deux_annees.parent / "plan"
    assert generate_events(plan, 2027, 11) == generate_events(plan, 2027, 11)
    def typologies(derive):
        evs = generate_events(plan, 2027, 11, derive=derive)
        return Counter(e["typologie"] for e in evs if e["evenement"] == "liberation")
    base, derive = typologies(0.0), typologies(0.6)
    assert derive["T3"] < base["T3"] and derive["T2"] > base["T2"]
    assert sum(derive.values()) == sum(base.values())


def test_proposals_count_dwellings_per_release_not_events(tmp_path):
    from flux_opt.year.journal.storage import append_events

    def liberation(jour):
        return {"horodatage": jour, "evenement": "liberation", "logement_id": "L1", "commune": "59350",
                "qpv": "oui", "typologie": "T4", "financement": "PLAI"}

    def ev(quoi, jour, **autres):
        return {"horodatage": jour, "evenement": quoi, "logement_id": "L1", **autres}

    chemin = tmp_path / "j.csv"
    append_events(chemin, [
        liberation("2027-01-05"),
        ev("proposition", "2027-01-06", reservataire="prefet"), ev("refus", "2027-01-20"),
        ev("proposition", "2027-01-21", reservataire="prefet"),  # same release, same réservataire: 1 dwelling
        ev("bail_signe", "2027-02-10"),
        liberation("2027-09-01"),  # released again after the tenant left: a new dwelling to propose
        ev("proposition", "2027-09-02", reservataire="prefet"),
        ev("retrait", "2027-09-03", categorie="urgence"),
    ])
    b = bilan(read_journal(chemin), 2027)
    assert b.synthese.to_dict("records") == [
        {"reservataire": "prefet", "logements_proposes": 2, "logements_attribues": 1}]
    assert b.retraits.set_index("categorie").loc["urgence", "logements"] == 1
    assert b.par_dimension["periode_construction"]["periode_construction"].tolist() == ["non renseignée"]
