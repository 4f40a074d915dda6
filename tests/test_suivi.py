"""Counting rules, follow-up and pré-orientation (data part)."""

from __future__ import annotations

import csv
from datetime import date

import pandas as pd
import pytest
from pydantic import ValidationError

from flux_opt.year.journal.events import EvenementRefuse
from flux_opt.year.journal.storage import append_events, read_journal
from flux_opt.year.preorientation import (
    SEUIL_REOPTIMISATION,
    rank_reservataires,
    should_reoptimise,
    gap_to_plan,
    read_logement,
    done_by_segment,
)
from flux_opt.year.simulation import simulate_year
from flux_opt.year.suivi import Ponderation, CountingRules, count_points, elapsed_fraction, suivi
from journal_fixtures import SEGMENTS, ecrire_plan


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    return ecrire_plan(tmp_path_factory.mktemp("plan"))


@pytest.fixture(scope="module")
def annee_simulee(plan, tmp_path_factory):
    chemin = tmp_path_factory.mktemp("j") / "journal.csv"
    simulate_year(plan, chemin, 2027, graine=7)
    return chemin


def _propose_examine(lid, reservataire, refus=True, jour=10):
    evs = [
        {"horodatage": f"2027-03-{jour:02d}", "evenement": "liberation", "logement_id": lid, "commune": "59350",
         "qpv": "non", "typologie": "T3", "financement": "PLUS"},
        {"horodatage": f"2027-03-{jour:02d}", "evenement": "proposition", "logement_id": lid,
         "reservataire": reservataire},
        {"horodatage": f"2027-03-{jour + 1:02d}", "evenement": "candidats", "logement_id": lid, "candidats": 3},
        {"horodatage": f"2027-03-{jour + 2:02d}", "evenement": "examen_caleol", "logement_id": lid},
    ]
    fin = "refus" if refus else "bail_signe"
    return evs + [{"horodatage": f"2027-03-{jour + 3:02d}", "evenement": fin, "logement_id": lid}]


# --------------------------------------------------------------------------- counting rules

def test_weighting_never_gives_more_for_a_proposal_than_for_an_attribution():
    with pytest.raises(ValidationError, match="ne peut pas dépasser"):
        Ponderation(points_attribution=1.0, points_proposition=1.5)
    assert Ponderation(points_attribution=1.0, points_proposition=1.0).points_proposition == 1.0


def test_weighting_is_refused_for_gestion_deleguee():
    with pytest.raises(ValidationError, match="gestion directe"):
        CountingRules(ponderations={"action_logement": Ponderation(points_proposition=0.5)},
                       gestion={"action_logement": "deleguee"})
    CountingRules(ponderations={"prefet": Ponderation(points_proposition=0.5)}, gestion={"prefet": "directe"})


def test_default_counting_is_one_point_per_signed_lease(annee_simulee):
    with open(annee_simulee, encoding="utf-8", newline="") as f:
        baux = [l for l in csv.DictReader(f) if l["evenement"] == "bail_signe"]
    compte = count_points(read_journal(annee_simulee))
    assert len(compte) == len(baux) > 0
    assert set(compte["nature"]) == {"attribution"} and (compte["points"] == 1.0).all()


def test_proposals_examined_in_caleol_count_with_weighting_and_cap(tmp_path):
    chemin = tmp_path / "j.csv"
    append_events(chemin, _propose_examine("P1", "prefet", refus=True, jour=1)
                       + _propose_examine("P2", "prefet", refus=False, jour=5)
                       + _propose_examine("P3", "action_logement", refus=True, jour=9))
    df = read_journal(chemin)
    regles = CountingRules(ponderations={"prefet": Ponderation(points_proposition=0.5)})
    points = count_points(df, regles).groupby(["reservataire", "nature"])["points"].sum()
    assert points[("prefet", "attribution")] == 1.0
    assert points[("prefet", "proposition_examinee")] == 0.5  # P1 only: P2 ended in a lease
    assert ("action_logement", "proposition_examinee") not in points.index  # no weighting: lease only
    # three refused proposals for one lease: 1.5 points capped at the lease's 1.0 (seed 001)
    append_events(chemin, _propose_examine("P4", "prefet", jour=13) + _propose_examine("P5", "prefet", jour=17))
    compte = count_points(read_journal(chemin), regles)
    props = compte[(compte["reservataire"] == "prefet") & (compte["nature"] == "proposition_examinee")]
    assert len(props) == 3 and props["points"].sum() == pytest.approx(1.0)
    sans_plafond = CountingRules(ponderations={"prefet": Ponderation(points_proposition=0.5, plafonner=False)})
    compte = count_points(read_journal(chemin), sans_plafond)
    assert compte.loc[compte["nature"] == "proposition_examinee", "points"].sum() == pytest.approx(1.5)


# --------------------------------------------------------------------------- follow-up

def test_follow_up_matches_the_journal_at_a_date(plan, annee_simulee):
    jour = date(2027, 7, 15)
    s = suivi(plan, read_journal(annee_simulee), jour)
    with open(annee_simulee, encoding="utf-8", newline="") as f:
        lignes = [l for l in csv.DictReader(f) if l["horodatage"][:10] <= jour.isoformat()]
    baux = pd.Series([l["reservataire"] for l in lignes if l["evenement"] == "bail_signe"]).value_counts()
    dernier = {l["logement_id"]: l for l in lignes}  # last event of each dwelling at the date
    en_cours = pd.Series([l["reservataire"] for l in dernier.values()
                          if l["evenement"] in ("proposition", "candidats", "examen_caleol")]).value_counts()
    table = s.reservataires.set_index("reservataire")
    f = elapsed_fraction(jour)
    for reservataire, ligne in table.iterrows():
        assert ligne["realise"] == baux.get(reservataire, 0)
        assert ligne["en_cours"] == en_cours.get(reservataire, 0)
        assert ligne["reste"] == max(ligne["cible"] - ligne["realise"] - ligne["en_cours"], 0)
        # dwellings under way count: oriented at the pace so far, minus those still under way at year end
        oriente = baux.get(reservataire, 0) + en_cours.get(reservataire, 0)
        assert ligne["projection"] == pytest.approx(oriente / f - en_cours.get(reservataire, 0))
    assert table["cible"].to_dict() == {"action_logement": 21, "bailleur": 18, "prefet": 19, "ville_lille": 5}
    for detail in (s.par_typologie, s.par_qpv, s.par_commune):
        assert detail.groupby("reservataire")["realise"].sum().to_dict() == table["realise"].to_dict()
        assert detail.groupby("reservataire")["cible"].sum().to_dict() == table["cible"].to_dict()
    assert s.mixite["attributions"].sum() == table["realise"].sum()
    assert ((s.mixite["part_q1"] >= 0) & (s.mixite["part_q1"] <= 1)).all()
    assert s.mixite["part_q1_prevue"].round(6).eq(round(0.3 / 0.9, 6)).all()


def test_fraction_of_year_is_linear_in_days():
    assert elapsed_fraction(date(2027, 12, 31)) == 1.0
    assert elapsed_fraction(date(2027, 1, 1)) == pytest.approx(1 / 365)
    assert elapsed_fraction(date(2028, 7, 1)) == pytest.approx(183 / 366)


# --------------------------------------------------------------------------- pré-orientation

def test_top_ranked_is_the_one_with_planned_unused_dwellings_in_the_segment(plan, tmp_path):
    chemin = tmp_path / "j.csv"
    # 59350 / T3 / hors QPV / PLUS: prefet 5, action_logement 3, ville_lille 2, bailleur 2
    for i, reservataire in enumerate(["prefet", "prefet", "action_logement", "ville_lille", "ville_lille",
                                      "bailleur", "bailleur"]):
        lid = f"X{i}"
        append_events(chemin, [
            {"horodatage": "2027-02-01", "evenement": "liberation", "logement_id": lid, "commune": "59350",
             "qpv": "non", "typologie": "T3", "financement": "PLUS"},
            {"horodatage": "2027-02-02", "evenement": "proposition", "logement_id": lid,
             "reservataire": reservataire}])
    classement = rank_reservataires(plan, read_journal(chemin), read_logement(
        "commune=59350,typologie=T3,qpv=non,financement=PLUS"))
    premier = classement.iloc[0]
    assert premier["reservataire"] == "action_logement" and premier["niveau"] == "segment"
    assert premier["raison"] == ("Action Logement est à 33 % de son objectif T3 hors QPV PLUS dans cette commune "
                                 "(1 logement orienté sur 3 prévus)")
    assert classement.iloc[1]["reservataire"] == "prefet"
    # ville_lille and bailleur are done in the segment: ranked at coarser levels, after
    assert set(classement.iloc[2:]["niveau"]) <= {"commune_typologie_qpv", "commune_typologie", "commune", "ensemble"}
    hors_territoire = rank_reservataires(plan, read_journal(chemin),
                                            {"commune": "59009", "typologie": "T3", "qpv": "oui",
                                             "financement": "PLUS"},
                                            territoires={"ville_lille": {"59350"}})
    assert "ville_lille" not in set(hors_territoire["reservataire"])
    phrase = rank_reservataires(plan, read_journal(chemin), {"commune": "59350", "typologie": "T3",
                                                                "qpv": "non", "financement": "PLAI"})
    ligne_prefet = phrase.set_index("reservataire").loc["prefet"]
    assert ligne_prefet["raison"].startswith("le préfet est à 40 % de son objectif T3 hors QPV dans cette commune (2 logements orientés sur 5 prévus)")


def test_following_the_ranking_reproduces_the_plan_when_reality_matches_the_forecast(plan, tmp_path):
    chemin = tmp_path / "j.csv"
    releases = [(c, q, t, f) for c, q, t, f, rep in SEGMENTS for _ in range(sum(rep.values()))]
    releases = releases[::2] + releases[1::2]  # interleave segments, as in a real year
    for i, (c, q, t, f) in enumerate(releases):
        jour = f"2027-{1 + i * 11 // len(releases):02d}-15"
        logement = {"commune": c, "qpv": q, "typologie": t, "financement": f}
        journal = read_journal(chemin) if chemin.exists() else None
        haut = (rank_reservataires(plan, journal, logement).iloc[0]["reservataire"]
                if journal is not None else "prefet")
        append_events(chemin, [
            {"horodatage": jour, "evenement": "liberation", "logement_id": f"L{i}", **logement},
            {"horodatage": jour, "evenement": "proposition", "logement_id": f"L{i}", "reservataire": haut}])
        if journal is not None:
            assert gap_to_plan(plan, journal) == 0.0
    fait = done_by_segment(read_journal(chemin))
    prevu = pd.read_csv(plan / "plan.csv", dtype=str, keep_default_na=False)
    prevu["qpv"] = prevu["qpv"] == "oui"
    prevu["logements"] = prevu["logements"].astype(int)
    cles = ["commune", "qpv", "typologie", "financement", "reservataire"]
    compare = prevu.merge(fait, on=cles, how="outer", suffixes=("_plan", "_fait")).fillna(0)
    assert (compare["logements_plan"] == compare["logements_fait"]).all()


def test_drift_is_zero_on_forecast_and_triggers_reoptimisation_otherwise(plan, annee_simulee, tmp_path):
    assert gap_to_plan(plan, read_journal(annee_simulee)) == 0.0
    assert not should_reoptimise(plan, read_journal(annee_simulee))
    derive = tmp_path / "derive.csv"
    simulate_year(plan, derive, 2027, graine=7, derive=0.5)
    journal = read_journal(derive)
    assert gap_to_plan(plan, journal) > SEUIL_REOPTIMISATION
    assert should_reoptimise(plan, journal)
    # a T2 released where the plan's T2 slots are all used falls back to a coarser level
    t2 = journal[(journal["typologie"] == "T2") & (journal["commune"] == "59350") & ~journal["qpv"]]
    assert len(t2[t2["evenement"] == "liberation"]) > 12  # 12 planned hors-QPV T2 PLUS in 59350
    classement = rank_reservataires(plan, journal, {"commune": "59350", "typologie": "T2", "qpv": "non",
                                                       "financement": "PLUS"})
    assert "segment" not in set(classement["niveau"])


def test_realised_per_segment_counts_oriented_dwellings(annee_simulee):
    fait = done_by_segment(read_journal(annee_simulee))
    with open(annee_simulee, encoding="utf-8", newline="") as f:
        derniers = {l["logement_id"]: l for l in csv.DictReader(f)}  # one release per dwelling here
    orientes = [l for l in derniers.values()
                if l["evenement"] in ("proposition", "candidats", "examen_caleol", "bail_signe")]
    attendu = pd.DataFrame(orientes).groupby(["commune", "typologie", "reservataire"]).size()
    obtenu = fait.groupby(["commune", "typologie", "reservataire"])["logements"].sum()
    assert obtenu.to_dict() == attendu.to_dict()
    assert fait["dont_attribues"].sum() == sum(l["evenement"] == "bail_signe" for l in derniers.values())


def test_logement_argument_errors_are_french():
    with pytest.raises(EvenementRefuse, match="typologie"):
        read_logement("commune=59350,typologie=T9,qpv=non,financement=PLUS")
    with pytest.raises(EvenementRefuse, match="cle=valeur"):
        read_logement("commune=59350,T3")
    assert read_logement("commune=59350,typologie=T3,qpv=oui,financement=PLAI").qpv is True


def test_start_of_year_with_an_empty_journal(plan):
    from flux_opt.year.journal.storage import empty_journal

    vide = empty_journal()
    s = suivi(plan, vide, date(2027, 1, 2))
    assert (s.reservataires["realise"] == 0).all() and (s.reservataires["reste"] == s.reservataires["cible"]).all()
    assert gap_to_plan(plan, vide) == 0.0 and done_by_segment(vide).empty
    classement = rank_reservataires(plan, vide, {"commune": "59009", "typologie": "T2", "qpv": "non",
                                                    "financement": "PLAI"})
    assert classement.iloc[0]["reservataire"] == "action_logement"  # 3 planned, the most in that segment
    assert "ville_lille" in set(classement[classement["niveau"] == "ensemble"]["reservataire"])


def test_alerts_name_the_commune_and_the_epci_not_their_codes(plan, annee_simulee, tmp_path):
    """A manager reads « Villeneuve-d'Ascq », not « commune 59009 », in the terminal, suivi.html and suivi.xlsx."""
    from dataclasses import replace

    from openpyxl import load_workbook

    from flux_opt.plan.names import Names
    from flux_opt.report.suivi import suivi_page, write_suivi_excel
    from flux_opt.year.alerts import alerts

    s = suivi(plan, read_journal(annee_simulee), date(2027, 7, 15))
    assert s.delais["commune"].tolist() == ["59009"]  # S2027-00045, proposed to the préfet on 19/06
    mixite = s.mixite.copy()
    mixite.loc[(mixite["epci"] == "200093201") & (mixite["zone"] == "hors_qpv"), "part_q1_exigee"] = 0.6
    s = replace(s, mixite=mixite)
    lieux = Names(communes={"59009": "Villeneuve-d'Ascq", "59350": "Lille"},
                  epci={"200093201": "Métropole européenne de Lille"})
    delai, cia = [a for a in alerts(s, lieux) if a.startswith(("Logement", "Métropole"))]
    assert delai.startswith("Logement S2027-00045 (T3 hors QPV, Villeneuve-d'Ascq) proposé à prefet")
    assert cia.startswith("Métropole européenne de Lille (CIA) : 36 % des baux hors QPV")
    for alerte in (delai, cia):
        assert "59009" not in alerte and "200093201" not in alerte and "commune " not in alerte
    assert "commune 59009" in alerts(s)[0]  # without the instance, the code is all there is
    page = suivi_page(s, lieux=lieux)
    assert "Villeneuve-d&#39;Ascq) proposé" in page or "Villeneuve-d'Ascq) proposé" in page
    assert "commune 59009" not in page and "EPCI 200093201" not in page
    classeur = load_workbook(write_suivi_excel(s, tmp_path / "suivi.xlsx", lieux=lieux))
    lignes = [ligne[0] for ligne in classeur["Alertes"].iter_rows(min_row=2, values_only=True)]
    assert lignes[:1] == [delai] and cia in lignes
    assert not any("59009" in ligne or "200093201" in ligne for ligne in lignes)
