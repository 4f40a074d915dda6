"""Re-optimisation of the rest of the year, pré-orientation and suivi on the example instance.

Expected figures (flux per segment, dwellings already oriented, bilan totals) are
recomputed here from the raw CSV files with the csv module, not with flux_opt's
journal or plan readers, so that a bug there cannot hide itself.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from flux_opt.year.bilan import bilan
from flux_opt.cli.main import app
from flux_opt.year.journal.storage import append_events, read_journal
from flux_opt.model.linear import LinearProgram
from flux_opt.year.preorientation import rank_reservataires, should_reoptimise, gap_to_plan
from flux_opt.pipeline import plan_instance
from flux_opt.year.reorientation import year_journal, reoptimise_rest_of_year
from flux_opt.report.exports import write_plan
from flux_opt.input.schema import load_instance
from flux_opt.year.simulation import simulate_year

from conftest import EXEMPLE

runner = CliRunner()
MI_ANNEE = date(2027, 6, 30)
FIN_SEPTEMBRE = date(2027, 9, 30)


# --------------------------------------------------------------------------- independent readers

def _segment(ligne: dict[str, str]) -> tuple[str, str, bool, str]:
    return ligne["commune"], ligne["typologie"], ligne["qpv"] == "oui", ligne["financement"]


def _plan_par_segment(plan_dir: Path) -> tuple[Counter, Counter]:
    """(flux per segment, dwellings per (réservataire, segment)) from plan.csv."""
    flux, x = Counter(), Counter()
    with open(plan_dir / "plan.csv", encoding="utf-8") as f:
        for ligne in csv.DictReader(f):
            flux[_segment(ligne)] += int(ligne["logements"])
            x[ligne["reservataire"], _segment(ligne)] += int(ligne["logements"])
    return flux, x


def _etat_independant(journal: Path, jour: date) -> tuple[Counter, Counter]:
    """Replay the raw CSV up to `jour`: releases kept in the flux per segment, and dwellings
    oriented (proposal in progress or lease signed) per (réservataire, segment)."""
    etats: dict[str, dict] = {}
    with open(journal, encoding="utf-8") as f:
        for ligne in csv.DictReader(f):
            if ligne["horodatage"][:10] > jour.isoformat():
                continue
            lid, quoi = ligne["logement_id"], ligne["evenement"]
            if quoi == "liberation":
                etats[lid] = {"segment": _segment(ligne), "r": None, "retire": False}
            elif quoi == "proposition":
                etats[lid]["r"] = ligne["reservataire"]
            elif quoi == "refus":
                etats[lid]["r"] = None
            elif quoi == "retrait":
                etats[lid]["retire"] = True
    liberes = Counter(e["segment"] for e in etats.values() if not e["retire"])
    orientes = Counter((e["r"], e["segment"]) for e in etats.values() if e["r"] and not e["retire"])
    return liberes, orientes


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def exemple():
    return load_instance(EXEMPLE)


@pytest.fixture(scope="module")
def plan(exemple, tmp_path_factory):
    dossier = tmp_path_factory.mktemp("plan")
    write_plan(plan_instance(exemple, duals=False), dossier)
    return dossier


@pytest.fixture(scope="module")
def fidele(plan, tmp_path_factory):
    chemin = tmp_path_factory.mktemp("fidele") / "journal.csv"
    simulate_year(plan, chemin, 2027, graine=4, derive=0.0)
    return chemin


@pytest.fixture(scope="module")
def derive(plan, tmp_path_factory):
    chemin = tmp_path_factory.mktemp("derive") / "journal.csv"
    simulate_year(plan, chemin, 2027, graine=1, derive=0.5)
    return chemin


@pytest.fixture(scope="module")
def reoptimise(exemple, plan, derive):
    df = read_journal(derive)
    return reoptimise_rest_of_year(exemple, plan, df, FIN_SEPTEMBRE, duals=False).result


# --------------------------------------------------------------------------- the re-solve

def test_set_column_bounds_replaces_one_block_only():
    lp = LinearProgram()
    lp.add_variables("a", pd.DataFrame({"i": range(2)}), 0.0, 5.0)
    lp.add_variables("x", pd.DataFrame({"i": range(3)}), 0.0, 9.0)
    lp.set_column_bounds("x", lower=[1, 2, 3])
    assert lp.col_lower.tolist() == [0, 0, 1, 2, 3]
    assert lp.col_upper.tolist() == [5, 5, 9, 9, 9]
    lp.set_column_bounds("a", upper=4)
    assert lp.col_upper.tolist() == [4, 4, 9, 9, 9]


def test_faithful_half_year_does_not_reoptimise_and_ranking_follows_the_plan(plan, fidele):
    df = year_journal(read_journal(fidele), 2027, MI_ANNEE)
    assert gap_to_plan(plan, df) == 0.0
    assert not should_reoptimise(plan, df)
    _, x = _plan_par_segment(plan)
    _, orientes = _etat_independant(fidele, MI_ANNEE)
    restants = sorted({s for (r, s), n in x.items() if n > orientes[r, s]})
    assert len(restants) > 20
    for segment in restants[::6]:  # a sample keeps the test fast
        commune, typologie, qpv, financement = segment
        classement = rank_reservataires(plan, df, dict(commune=commune, typologie=typologie, qpv=qpv,
                                                           financement=financement))
        premier = classement.iloc[0]
        assert premier["niveau"] == "segment", segment
        assert x[premier["reservataire"], segment] > orientes[premier["reservataire"], segment], segment


def test_drift_asks_for_a_reoptimisation(plan, derive):
    df = year_journal(read_journal(derive), 2027, FIN_SEPTEMBRE)
    assert should_reoptimise(plan, df)


def test_reoptimised_plan_keeps_every_dwelling_already_oriented(reoptimise, derive, tmp_path):
    _, orientes = _etat_independant(derive, FIN_SEPTEMBRE)
    write_plan(reoptimise, tmp_path)
    _, x = _plan_par_segment(tmp_path)
    assert sum(orientes.values()) > 200
    manquants = {cle: (n, x[cle]) for cle, n in orientes.items() if x[cle] < n}
    assert manquants == {}
    assert reoptimise.resume["reoptimisation"]["orientes_fixes"] == sum(orientes.values())


def test_reoptimised_plan_conserves_the_raised_flux(reoptimise, plan, derive, tmp_path):
    prevus, _ = _plan_par_segment(plan)
    liberes, _ = _etat_independant(derive, FIN_SEPTEMBRE)
    attendu = {s: max(prevus[s], liberes[s]) for s in set(prevus) | set(liberes)}
    attendu = {s: n for s, n in attendu.items() if n > 0}
    write_plan(reoptimise, tmp_path)
    flux, _ = _plan_par_segment(tmp_path)
    assert dict(flux) == attendu
    assert sum(attendu.values()) > sum(prevus.values())  # the drifted T2s raised the flux
    assert reoptimise.resume["flux"] == sum(attendu.values())
    assert reoptimise.resume["reoptimisation"]["flux_initial"] == sum(prevus.values())
    assert reoptimise.resume["regles_violees"] == []


def test_reoptimised_targets_follow_the_new_total(reoptimise, plan):
    """The préfet's 30 % is taken of the new flux, not of the forecast."""
    objectifs = pd.read_csv(plan / "objectifs.csv").set_index("reservataire")["cible"]
    nouveaux = reoptimise.objectifs.set_index("reservataire")["cible"]
    assert int(nouveaux.sum()) == reoptimise.resume["flux"]
    assert nouveaux["prefet"] + nouveaux["prefet_agents"] > objectifs["prefet"] + objectifs["prefet_agents"]


def test_top_ranked_for_a_drifted_dwelling_comes_from_the_reoptimised_plan(exemple, plan, derive, tmp_path):
    prevus, x_initial = _plan_par_segment(plan)
    liberes, orientes = _etat_independant(derive, FIN_SEPTEMBRE)
    df = year_journal(read_journal(derive), 2027, FIN_SEPTEMBRE)
    # a drifted segment where the initial plan has nothing left for anyone at segment level
    epuises = [s for s in sorted(prevus) if liberes[s] > prevus[s]
               and all(orientes[r, s2] >= n for (r, s2), n in x_initial.items() if s2 == s)]
    assert epuises
    commune, typologie, qpv, financement = segment = epuises[0]
    journal = tmp_path / "journal.csv"
    shutil.copy(derive, journal)
    append_events(journal, [{"horodatage": FIN_SEPTEMBRE.isoformat(), "evenement": "liberation",
                                  "logement_id": "NOUVEAU-1", "commune": commune, "typologie": typologie,
                                  "qpv": qpv, "financement": financement, "periode_construction": "1975-1989"}])
    df = year_journal(read_journal(journal), 2027, FIN_SEPTEMBRE)
    logement = dict(commune=commune, typologie=typologie, qpv=qpv, financement=financement)
    assert rank_reservataires(plan, df, logement).iloc[0]["niveau"] != "segment"

    nouveau = tmp_path / "plan_reoptimise"
    write_plan(reoptimise_rest_of_year(exemple, plan, df, FIN_SEPTEMBRE, duals=False).result, nouveau)
    _, x = _plan_par_segment(nouveau)
    premier = rank_reservataires(nouveau, df, logement).iloc[0]
    assert premier["niveau"] == "segment"
    assert premier["prevus"] == x[premier["reservataire"], segment]
    assert x[premier["reservataire"], segment] > orientes[premier["reservataire"], segment]
    assert sum(n for (r, s), n in x.items() if s == segment) == liberes[segment] + 1  # F'_s = L_s
    assert gap_to_plan(nouveau, df) == 0.0  # the re-optimised plan absorbs the drift


def test_segments_absent_from_the_forecast_enter_the_reoptimisation(exemple, plan, derive, tmp_path):
    journal = tmp_path / "journal.csv"
    shutil.copy(derive, journal)
    base = {"horodatage": "2027-09-20", "typologie": "T6+", "qpv": "non", "financement": "PLAI",
            "periode_construction": "après 2005"}
    append_events(journal, [
        {**base, "evenement": "liberation", "logement_id": "T6-1", "commune": "59350"},
        {**base, "evenement": "proposition", "logement_id": "T6-1", "reservataire": "bailleur"},
        # a commune outside the parc: its EPCI comes from the journal
        {**base, "evenement": "liberation", "logement_id": "HORS-1", "commune": "59360", "epci": "200093201"},
        {**base, "evenement": "proposition", "logement_id": "HORS-1", "reservataire": "prefet"},
    ])
    result = reoptimise_rest_of_year(exemple, plan, read_journal(journal), FIN_SEPTEMBRE, duals=False).result
    assert result.resume["reoptimisation"]["segments_nouveaux"] == 2
    lignes = result.plan.set_index(["commune", "typologie", "reservataire"])["logements"]
    assert lignes.loc[("59350", "T6+", "bailleur")] == 1
    assert lignes.loc[("59360", "T6+", "prefet")] == 1
    assert result.plan.loc[result.plan["commune"] == "59360", "epci"].unique().tolist() == ["200093201"]


def test_prorata_method_adds_the_forecast_of_the_days_left(exemple, plan, derive):
    df = read_journal(derive)
    prevus, _ = _plan_par_segment(plan)
    liberes, orientes = _etat_independant(derive, FIN_SEPTEMBRE)
    result = reoptimise_rest_of_year(exemple, plan, df, FIN_SEPTEMBRE, methode="prorata", duals=False).result
    reste = (1 - 273 / 365) * sum(prevus.values())  # 30 September is day 273
    assert result.resume["flux"] == sum(liberes.values()) + int(np.floor(reste + 0.5))
    x = result.plan.assign(qpv=result.plan["qpv"] == "oui").groupby(
        ["reservataire", "commune", "typologie", "qpv", "financement"])["logements"].sum()
    assert all(x.get((r, *s), 0) >= n for (r, s), n in orientes.items())


def test_a_plan_from_another_instance_is_refused(exemple, plan, derive):
    autre = exemple.model_copy(update={"exclusions": []})  # a bigger flux than the plan's
    with pytest.raises(ValueError, match="pas l'instance du plan"):
        reoptimise_rest_of_year(autre, plan, read_journal(derive), FIN_SEPTEMBRE, duals=False)


# --------------------------------------------------------------------------- commands

def test_orienter_follows_the_plan_when_reality_matches(plan, fidele):
    sortie = runner.invoke(app, ["orienter", str(plan), str(fidele), "--date", MI_ANNEE.isoformat(),
                                 "--logement", "commune=59350,typologie=T3,qpv=non,financement=PLUS"])
    assert sortie.exit_code == 0, sortie.output
    assert "Mode : suit le plan" in sortie.output
    assert "Proposition :" in sortie.output and "de son objectif" in sortie.output


def test_orienter_reoptimises_on_drift_and_needs_the_instance(plan, derive, tmp_path):
    logement = ["--logement", "commune=59009,typologie=T2,qpv=non,financement=PLUS"]
    deplace = tmp_path / "plan_sans_instance"  # a plan whose instance is no longer where it was read
    shutil.copytree(plan, deplace)
    resume = json.loads((deplace / "resume.json").read_text(encoding="utf-8"))
    (deplace / "resume.json").write_text(json.dumps({**resume, "chemin_instance": "/nulle/part"}), encoding="utf-8")
    sans_instance = runner.invoke(app, ["orienter", str(deplace), str(derive), "--date", FIN_SEPTEMBRE.isoformat(),
                                        *logement])
    assert sans_instance.exit_code == 2
    assert "--instance" in sans_instance.output
    commun = ["orienter", str(plan), str(derive), "--date", FIN_SEPTEMBRE.isoformat(), *logement]
    sortie = runner.invoke(app, [*commun, "--sortie", str(tmp_path / "nouveau")])  # instance noted in resume.json
    assert sortie.exit_code == 0, sortie.output
    assert "plan ré-optimisé" in sortie.output and "du flux libéré hors prévision" in sortie.output
    resume = json.loads((tmp_path / "nouveau" / "resume.json").read_text(encoding="utf-8"))
    assert resume["reoptimisation"]["date"] == FIN_SEPTEMBRE.isoformat()


def test_suivi_prints_french_tables_and_writes_the_workbook(plan, fidele, tmp_path):
    sortie = runner.invoke(app, ["suivi", str(plan), str(fidele), "--date", MI_ANNEE.isoformat(),
                                 "--sortie", str(tmp_path)])
    assert sortie.exit_code == 0, sortie.output
    for titre in ("Par réservataire", "Par typologie", "QPV / hors QPV", "Par commune", "Mixité à date",
                  "au 31 décembre", "Écart des libérations au plan : 0,0 %"):
        assert titre in sortie.output, titre
    classeur = load_workbook(tmp_path / "suivi.xlsx")
    feuille = classeur["Par réservataire"]
    lignes = {ligne[0]: ligne for ligne in feuille.iter_rows(min_row=2, values_only=True)}
    entetes = [c.value for c in feuille[1]]
    baux = sum(1 for ligne in csv.DictReader(open(fidele, encoding="utf-8"))
               if ligne["evenement"] == "bail_signe" and ligne["horodatage"][:10] <= MI_ANNEE.isoformat())
    assert lignes["Total"][entetes.index("Réalisé")] == baux
    assert lignes["Total"][entetes.index("Objectif")] == sum(_plan_par_segment(plan)[0].values())
    assert {"Par typologie et réservataire", "Par commune et réservataire"} <= set(classeur.sheetnames)
    page = (tmp_path / "suivi.html").read_text(encoding="utf-8")  # the same figures, as a page
    assert "<h2>Par réservataire</h2>" in page and "Écart des libérations au plan : 0,0 %" in page
    assert re.search(rf'<td>Total</td><td class="num">[^<]+</td><td class="num">{baux}</td>', page)


# --------------------------------------------------------------------------- acceptance: the bilan

def test_bilan_of_a_simulated_year_equals_the_journal_counts(fidele):
    b = bilan(read_journal(fidele), 2027)
    proposes, attribues, par_typologie, retraits = set(), Counter(), Counter(), Counter()
    cycles: Counter = Counter()
    with open(fidele, encoding="utf-8") as f:
        for ligne in csv.DictReader(f):
            lid = ligne["logement_id"]
            if ligne["evenement"] == "liberation":
                cycles[lid] += 1
            elif ligne["evenement"] == "proposition":
                proposes.add((lid, cycles[lid], ligne["reservataire"]))
            elif ligne["evenement"] == "bail_signe":
                attribues[ligne["reservataire"]] += 1
                par_typologie[ligne["typologie"]] += 1
            elif ligne["evenement"] == "retrait":
                retraits[ligne["categorie"]] += 1
    synthese = b.synthese.set_index("reservataire")
    assert synthese["logements_attribues"].to_dict() == dict(attribues)
    assert synthese["logements_proposes"].to_dict() == dict(Counter(r for *_, r in proposes))
    typologies = b.par_dimension["typologie"].groupby("typologie")["logements_attribues"].sum()
    assert typologies.to_dict() == dict(par_typologie)
    par_categorie = b.retraits.set_index("categorie")["logements"]
    assert par_categorie[par_categorie > 0].to_dict() == dict(retraits)
    assert sum(attribues.values()) > 300  # most of the year's 379 dwellings are let by 31 December


def test_journal_of_the_year_keeps_whole_cycles_up_to_the_day(tmp_path):
    journal = tmp_path / "journal.csv"
    segment = {"commune": "59350", "typologie": "T3", "qpv": "non", "financement": "PLUS"}
    append_events(journal, [
        {"horodatage": "2026-12-20", "evenement": "liberation", "logement_id": "A", **segment},
        {"horodatage": "2027-03-02", "evenement": "liberation", "logement_id": "B", **segment},
        {"horodatage": "2027-03-05", "evenement": "proposition", "logement_id": "B", "reservataire": "prefet"},
        {"horodatage": "2027-01-03", "evenement": "proposition", "logement_id": "A", "reservataire": "prefet"},
        {"horodatage": "2027-02-01", "evenement": "liberation", "logement_id": "C", **segment},
        {"horodatage": "2027-04-01", "evenement": "proposition", "logement_id": "C", "reservataire": "mel"},
    ])
    garde = year_journal(read_journal(journal), 2027, date(2027, 3, 31))
    assert list(zip(garde["logement_id"], garde["evenement"])) == [
        ("B", "liberation"), ("B", "proposition"), ("C", "liberation")]


# --------------------------------------------------------------------------- the workflow from Python

def test_orient_from_python_reoptimises_writes_through_the_one_writer_and_records(plan, derive, tmp_path):
    """`orienter` without typer: the same decision, the re-optimised plan written in `sortie`, the
    proposal recorded under the journal's next free identifier."""
    from flux_opt.year.orienter import orient

    journal = tmp_path / "journal.csv"
    shutil.copy(derive, journal)
    lignes_avant = journal.read_text(encoding="utf-8").count("\n")
    sortie = tmp_path / "nouveau"
    done = orient(plan, journal, logement="commune=59009,typologie=T2,qpv=non,financement=PLUS",
                  instance=EXEMPLE, jour=FIN_SEPTEMBRE.isoformat(), sortie=sortie, enregistrer=True)
    assert done.reoptimise and done.mode.startswith("plan ré-optimisé : ")
    assert done.day == FIN_SEPTEMBRE and done.contexte is not None
    # the one writer: plan files as `plan` writes them, with the re-optimisation noted
    assert {"plan.csv", "attributions.csv", "objectifs.csv", "contraintes.csv", "resume.json"} <= {
        p.name for p in sortie.iterdir()}
    assert json.loads((sortie / "resume.json").read_text(encoding="utf-8"))["reoptimisation"]["date"] == "2027-09-30"
    # ranked on the re-optimised plan, recorded: a release and a proposal to the first réservataire
    assert gap_to_plan(sortie, year_journal(read_journal(derive), 2027, FIN_SEPTEMBRE)) == 0.0
    with open(journal, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert journal.read_text(encoding="utf-8").count("\n") == lignes_avant + 2
    assert [r["evenement"] for r in rows[-2:]] == ["liberation", "proposition"]
    assert rows[-1]["logement_id"] == done.recorded == rows[-2]["logement_id"]
    assert re.fullmatch(r"LOG-\d{5}", done.recorded) and rows[-1]["reservataire"] == done.ranking.iloc[0].reservataire


def test_orient_refuses_in_french_and_writes_nothing(plan, fidele, tmp_path):
    from flux_opt.year.orienter import Refus, orient

    journal = tmp_path / "journal.csv"
    shutil.copy(fidele, journal)
    before = journal.read_bytes()
    with pytest.raises(Refus, match="Indiquer le logement"):
        orient(plan, journal, jour=MI_ANNEE.isoformat(), enregistrer=True)
    with pytest.raises(Refus, match="Date invalide « 31/02/2027 »"):
        orient(plan, journal, logement="commune=59350,typologie=T3,qpv=non,financement=PLUS", jour="31/02/2027")
    assert journal.read_bytes() == before


def test_the_first_dwelling_of_a_new_journal_is_log_00001(tmp_path):
    from flux_opt.year.journal.against_plan import next_logement_id

    assert next_logement_id(tmp_path / "absent.csv") == "LOG-00001"


def test_default_delay_is_the_conventions_else_thirty_days_and_none_for_the_bailleur():
    from flux_opt.year.conventions import DELAI_PAR_DEFAUT, delais_par_defaut, plan_instance

    assert DELAI_PAR_DEFAUT == 30
    assert delais_par_defaut(["prefet", "bailleur", "x"], None) == {"prefet": 30, "x": 30}
    data, contexte = plan_instance(Path("."), EXEMPLE)
    own = {r.id: r.delai_jours for r in data.reservataires if r.type != "bailleur"}
    assert delais_par_defaut(list(own) + ["bailleur"], contexte) == own
