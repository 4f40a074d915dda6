"""From one year to the next on the bundled example: a simulated year with a known
shortfall carried into next year's targets exactly, a bilan whose figures match an
independent count of the journal, orienter's eligibility, convertir from a bilan."""

from __future__ import annotations

import csv
import math
import shutil
from collections import Counter

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import EXEMPLE
from flux_opt.assiette.carryover import apply_carry_over, read_previous_bilan
from flux_opt.assiette.flux import compute_flux
from flux_opt.assiette.targets import compute_targets
from flux_opt.cli.main import app
from flux_opt.input.schema import load_instance
from flux_opt.pipeline import plan_instance
from flux_opt.report.exports import write_plan
from flux_opt.year.bilan import bilan_du_plan
from flux_opt.year.conventions import contexte
from flux_opt.year.journal.storage import append_events, read_journal
from flux_opt.year.simulation import generate_events
from flux_opt.vocabulary import PREFET_GROUP

runner = CliRunner()
MANQUANTS = 9  # leases of action_logement removed from the simulated year: a known shortfall


@pytest.fixture(scope="module")
def exemple():
    return load_instance(EXEMPLE)


@pytest.fixture(scope="module")
def annee(exemple, tmp_path_factory):
    """The example's plan, and its 2027 simulated with every lease of action_logement
    after the first ones dropped (the dwelling stays proposed)."""
    dossier = tmp_path_factory.mktemp("revoyure")
    plan = dossier / "plan"
    write_plan(plan_instance(exemple, duals=False), plan)
    evenements = generate_events(plan, 2027, graine=5)
    reservataire_de, baux_al = {}, [e for e in evenements if e["evenement"] == "bail_signe"]
    for e in evenements:
        if e["evenement"] == "proposition":
            reservataire_de[e["logement_id"]] = e["reservataire"]
    retires = [e for e in baux_al if reservataire_de[e["logement_id"]] == "action_logement"][-MANQUANTS:]
    journal = dossier / "journal.csv"
    append_events(journal, [e for e in evenements if not any(e is r for r in retires)])
    sortie = runner.invoke(app, ["bilan", str(plan), str(journal), "--annee", "2027", "--sortie", str(dossier / "bilan")])
    assert sortie.exit_code == 0, sortie.output
    return plan, journal, dossier / "bilan"


def compter_baux(journal):
    """Leases per réservataire, read from the CSV by hand."""
    proposee_a, baux = {}, Counter()
    with open(journal, encoding="utf-8", newline="") as f:
        for ligne in csv.DictReader(f):
            if ligne["evenement"] == "proposition":
                proposee_a[ligne["logement_id"]] = ligne["reservataire"]
            elif ligne["evenement"] == "bail_signe":
                baux[proposee_a[ligne["logement_id"]]] += 1
    return baux


def instance_2028(exemple, report_max):
    parametres = exemple.parametres.model_copy(update={
        "instance": exemple.parametres.instance.model_copy(update={"annee": 2028}),
        "revoyure": exemple.parametres.revoyure.model_copy(update={"report_max": report_max})})
    return exemple.model_copy(update={"parametres": parametres})


def test_known_shortfall_is_carried_into_next_years_targets_exactly(exemple, annee):
    plan, journal, dossier = annee
    objectifs = pd.read_csv(plan / "objectifs.csv").set_index("reservataire")["cible"]
    baux = compter_baux(journal)
    precedent = read_previous_bilan(dossier, 2028)
    assert precedent.annee == 2027
    instance = instance_2028(exemple, report_max=0.5)
    avant = compute_targets(instance, compute_flux(instance))
    apres = apply_carry_over(avant, instance, precedent).table.set_index("id")
    du_al = objectifs["action_logement"] - baux["action_logement"]
    assert du_al >= MANQUANTS
    assert apres.at["action_logement", "report"] == du_al
    assert apres.at["action_logement", "cible"] == avant.of("action_logement") + du_al
    # the bailleur balances, the flux is unchanged, the State stays within its cap
    autres = apres.loc[apres["type"] != "bailleur", "report"].sum()
    assert apres.at["bailleur", "report"] == -autres
    assert apres["cible"].sum() == avant.table["cible"].sum()
    assert apres.loc[apres["type"].isin(PREFET_GROUP), "cible"].sum() <= avant.plafond_prefet
    # report_max = 10 %: at most ⌊0.1 × target⌋, never rounded up
    limite = apply_carry_over(avant, instance_2028(exemple, 0.1), precedent).table.set_index("id")
    assert limite.at["action_logement", "report"] == min(du_al, math.floor(0.1 * avant.of("action_logement")))
    assert (apply_carry_over(avant, instance_2028(exemple, 0.0), precedent).table["report"] == 0).all()


def test_plan_with_the_previous_bilan_writes_the_report_column_and_its_sentences(exemple, annee, tmp_path):
    _, _, dossier = annee
    instance = tmp_path / "exemple_2028"
    shutil.copytree(EXEMPLE, instance)
    toml = instance / "instance.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("annee = 2027", "annee = 2028")
                    + "\n[revoyure]\nreport_max = 0.5\n", encoding="utf-8")
    sortie = runner.invoke(app, ["plan", str(instance), "--sortie", str(tmp_path / "p"), "--sans-analyse",
                                 "--bilan-precedent", str(dossier)])
    assert sortie.exit_code == 0, sortie.output
    objectifs = pd.read_csv(tmp_path / "p" / "objectifs.csv").set_index("reservataire")
    attendu = apply_carry_over(*_targets(instance_2028(exemple, 0.5)), read_previous_bilan(dossier, 2028))
    assert objectifs["report"].to_dict() == attendu.table.set_index("id")["report"].to_dict()
    assert objectifs.at["action_logement", "report"] > 0
    assert "Action Logement Services :" in sortie.output and "clause de revoyure" in sortie.output
    trop_recent = runner.invoke(app, ["plan", str(EXEMPLE), "--sortie", str(tmp_path / "q"), "--sans-analyse",
                                      "--bilan-precedent", str(dossier)])
    assert trop_recent.exit_code == 2 and "antérieur" in trop_recent.output  # a 2027 bilan for a 2027 plan


def _targets(instance):
    return compute_targets(instance, compute_flux(instance)), instance


def test_bilan_figures_match_an_independent_count_of_the_journal(exemple, annee):
    plan, journal, _ = annee
    consolide, par_epci = bilan_du_plan(plan, read_journal(journal), 2027, contexte(exemple))
    table = consolide.targets.set_index("reservataire")
    objectifs = pd.read_csv(plan / "objectifs.csv").set_index("reservataire")["cible"]
    baux, refus, prioritaires, connus = compter_baux(journal), Counter(), Counter(), Counter()
    dalo, dalo_epci = Counter(), Counter()
    proposee_a = {}
    with open(journal, encoding="utf-8", newline="") as f:
        for ligne in csv.DictReader(f):
            if ligne["evenement"] == "proposition":
                proposee_a[ligne["logement_id"]] = ligne["reservataire"]
            r = proposee_a.get(ligne["logement_id"])
            if ligne["evenement"] == "refus":
                refus[(r, ligne["commentaire"])] += 1
            if ligne["evenement"] == "bail_signe" and ligne["prioritaire"]:
                connus[r] += 1
                prioritaires[r] += ligne["prioritaire"] == "oui"
                dalo[r] += ligne["dalo"] == "oui"
                dalo_epci[r] += ligne["dalo"] == "oui" and ligne["epci"] == "200093201"
    for r, objectif in objectifs.items():
        assert table.at[r, "objectif"] == objectif
        assert table.at[r, "logements_attribues"] == baux[r]
        assert table.at[r, "ecart"] == baux[r] - objectif
        assert table.at[r, "part_prioritaires"] == pytest.approx(prioritaires[r] / connus[r])
        assert table.at[r, "baux_dalo"] == dalo[r]
        assert table.at[r, "part_dalo"] == pytest.approx(dalo[r] / connus[r])
    assert sum(dalo.values()) > 10
    assert table.at["prefet", "part_prioritaires_due"] == 1.0 and table.at["prefet_agents", "part_prioritaires_due"] == 0
    motifs = consolide.refus.set_index(["reservataire", "motif"])["refus"].to_dict()
    assert motifs == dict(refus)
    # one bilan for the EPCI with a CIA: objectives = dwellings the plan gave there
    assert set(par_epci) == {"200093201"}
    du_plan = pd.read_csv(plan / "plan.csv", dtype={"epci": str})
    dans_epci = du_plan[du_plan["epci"] == "200093201"].groupby("reservataire")["logements"].sum()
    assert par_epci["200093201"].targets.set_index("reservataire")["objectif"].to_dict() == dans_epci.to_dict()
    assert par_epci["200093201"].targets.set_index("reservataire")["baux_dalo"].to_dict() == {
        r: dalo_epci[r] for r in dans_epci.index}


def test_orienter_proposes_only_eligible_reservataires_and_names_bad_fields(annee, tmp_path):
    plan, journal, _ = annee
    hors_roubaix = ["orienter", str(plan), str(journal), "--date", "2027-06-30",
                    "--logement", "commune=59350,typologie=T3,qpv=non,financement=PLUS"]
    sortie = runner.invoke(app, hors_roubaix)
    assert sortie.exit_code == 0, sortie.output
    assert "ville_roubaix" not in sortie.output  # Roubaix's territory is its own commune
    for logement, champ in (("commune=99999,typologie=T3,qpv=non,financement=PLUS", "commune"),
                            ("commune=59350,typologie=T9,qpv=non,financement=PLUS", "typologie")):
        refus = runner.invoke(app, [*hors_roubaix[:-1], logement])
        assert refus.exit_code == 2 and f"« {champ} »" in refus.output, refus.output
    copie = tmp_path / "journal.csv"
    shutil.copy(journal, copie)
    enregistre = runner.invoke(app, [*hors_roubaix[:2], str(copie), "--date", "2027-12-31", "--logement-id", "NEUF-1",
                                     "--logement", "commune=59350,typologie=T3,qpv=non,financement=PLUS",
                                     "--enregistrer"])
    assert enregistre.exit_code == 0, enregistre.output
    derniers = copie.read_text(encoding="utf-8").splitlines()[-2:]
    assert derniers[0].startswith("2027-12-31,liberation,NEUF-1,59350")
    assert derniers[1].startswith("2027-12-31,proposition,NEUF-1,59350")


def test_convertir_deducts_the_rights_used_and_replans_the_remaining_years(annee, tmp_path):
    _, _, dossier = annee
    avant = runner.invoke(app, ["convertir", str(EXEMPLE), "--sortie", str(tmp_path / "avant")])
    apres = runner.invoke(app, ["convertir", str(EXEMPLE), "--bilan", str(dossier), "--sortie", str(tmp_path / "apres")])
    assert avant.exit_code == 0 and apres.exit_code == 0, apres.output
    bilan = pd.read_csv(dossier / "bilan_2027.csv").set_index("reservataire")["logements_decomptes"]
    # the multi-year targets as the machine reads them (ids, one column per year)
    lisse_avant, lisse_apres = (pd.read_csv(tmp_path / d / "objectifs_pluriannuels.csv").set_index("reservataire")
                                for d in ("avant", "apres"))
    assert "2028" in lisse_apres.columns and "2027" not in lisse_apres.columns  # the remaining years only
    assert "2027" in lisse_avant.columns and bilan["action_logement"] > 0  # something to deduct
    assert (lisse_apres.loc["action_logement"].sum()
            == lisse_avant.loc["action_logement"].sum() - bilan["action_logement"])
