"""Batch planning: every instance once, resumable without losing or repeating a result."""

import json
import re
import shutil

import pandas as pd
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from flux_opt.scale.batch import SYNTHESE, find_instances, national_summary, read_synthese, run_batch
from flux_opt.cli.main import app
from flux_opt.scale.generate import generate_instance

NAMES = ["i0", "i1", "i2"]
COMPARED = ["instance", "bailleur", "departement", "flux", "adequation", "statut", "code"]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lot")
    for graine, (name, logements) in enumerate(zip(NAMES, (300, 450, 600))):
        generate_instance(folder / name, logements, graine=graine, departement="59" if graine < 2 else "62")
    return folder


@pytest.fixture(scope="module")
def reference(source, tmp_path_factory):
    """One full sequential run, the reference for the other tests."""
    out = tmp_path_factory.mktemp("reference")
    report = run_batch(source, out, processes=1)
    return out, report


def stamps(out):
    return {n: (out / n / "resume.json").stat().st_mtime_ns for n in NAMES if (out / n / "resume.json").exists()}


def test_plans_every_instance_once_with_a_national_summary(source, reference):
    out, report = reference
    assert [r.nom for r in find_instances(source)] == NAMES
    assert sorted(report.planifiees) == NAMES and report.reprises == []
    synthese = read_synthese(out)
    assert sorted(synthese["instance"]) == NAMES
    assert synthese["departement"].tolist().count("62") == 1  # read as a string code
    assert set(synthese["code"]) <= {"0", "3"}
    for name in NAMES:
        for report in ("rapport.html", "rapport.xlsx", "explication.json"):  # what `flux-opt plan` writes
            assert (out / name / report).exists(), (name, report)
        line = json.loads((out / name / "synthese.json").read_text(encoding="utf-8"))
        assert set(line["phases"]) == {"lecture", "assiette", "construction", "resolution", "analyse", "controle",
                                       "rapport", "ecriture"}
        assert (out / name / "conformite.csv").exists()  # every plan of the batch re-checked against the law
        assert sum(line["phases"].values()) <= line["secondes"] + 0.01  # the whole instance, writing included
        plan = pd.read_csv(out / name / "plan.csv", dtype=str, keep_default_na=False)
        assert plan["logements"].astype(int).sum() == int(synthese.set_index("instance").at[name, "flux"])
    nationale = pd.read_csv(out / "synthese_nationale.csv", dtype=str, keep_default_na=False)
    assert nationale["departement"].tolist() == ["59", "62", "ensemble"]
    assert nationale.set_index("departement").at["ensemble", "instances"] == "3"
    flux = synthese["flux"].astype(int)
    assert int(nationale.set_index("departement").at["ensemble", "flux"]) == flux.sum()


def test_resume_reruns_only_the_missing_instance(source, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference[0], out)
    shutil.rmtree(out / "i1")  # its result was lost
    before = stamps(out)
    report = run_batch(source, out, processes=1)  # same options as the reference: the others are reused
    assert report.planifiees == ["i1"]
    assert sorted(report.reprises) == ["i0", "i2"]
    after = stamps(out)
    assert after["i0"] == before["i0"] and after["i2"] == before["i2"]
    assert sorted(read_synthese(out)["instance"]) == NAMES  # exactly one line each


def test_interrupted_batch_loses_nothing_and_repeats_nothing(source, tmp_path):
    out = tmp_path / "out"
    first = run_batch(source, out, analyse=False, processes=1, limit=1)  # stopped after one instance
    assert first.planifiees == ["i0"]
    assert read_synthese(out)["instance"].tolist() == ["i0"]
    # Crash between the plan files and the synthese line: the finished plan is kept, not re-run.
    second = run_batch(source, out, analyse=False, processes=1, limit=1)
    assert second.planifiees == ["i1"]
    (out / SYNTHESE).write_text((out / SYNTHESE).read_text().splitlines()[0] + "\n")
    third = run_batch(source, out, analyse=False, processes=1)
    assert third.planifiees == ["i2"]
    assert sorted(third.reprises) == ["i0", "i1"]
    assert sorted(read_synthese(out)["instance"]) == NAMES
    # Without resuming, everything runs again and the synthese starts afresh.
    fresh = run_batch(source, out, analyse=False, processes=1, resume_finished=False)
    assert sorted(fresh.planifiees) == NAMES
    assert len(read_synthese(out)) == 3


def test_invalid_instance_is_recorded_with_code_2_and_does_not_stop_the_batch(source, tmp_path):
    folder = tmp_path / "src"
    shutil.copytree(source, folder)
    shutil.copytree(source / "i0", folder / "i9")
    reservataires = folder / "i9" / "reservataires.csv"
    reservataires.write_text(reservataires.read_text().replace(",prefet,", ",inconnu,", 1))
    out = tmp_path / "out"
    report = run_batch(folder, out, analyse=False, processes=2)
    assert report.codes["i9"] == 2
    assert all(report.codes[n] in (0, 3) for n in NAMES)
    line = read_synthese(out).set_index("instance").loc["i9"]
    assert line["code"] == "2" and line["statut"] == "donnees_invalides"
    assert "reservataires.csv" in line["message"] and line["departement"] == "59"
    assert not (out / "i9" / "plan.csv").exists()
    again = run_batch(folder, out, analyse=False, processes=1)  # recorded: not run again
    assert again.planifiees == []
    nationale = national_summary(read_synthese(out)).set_index("departement")
    assert nationale.at["ensemble", "invalides"] == 1


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A cluster started as its users start one: a `dask scheduler` process and a `dask worker`
    process (two single-threaded workers) on the loopback, stopped at the end whatever happens."""
    pytest.importorskip("dask.distributed")
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    folder = tmp_path_factory.mktemp("dask")
    dask = str(Path(sys.executable).parent / "dask")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                          os.environ.get("PYTHONPATH", "")])}
    scheduler_file = folder / "ordonnanceur.json"
    started = []
    try:
        started.append(subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--no-show",
             "--scheduler-file", str(scheduler_file)], env=env, cwd=folder,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        started.append(subprocess.Popen(
            [dask, "worker", address, "--nworkers", "2", "--nthreads", "1", "--host", "127.0.0.1",
             "--no-dashboard", "--local-directory", str(folder / "travail"), "--death-timeout", "60"],
            env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from dask.distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=90)
        yield address
    finally:
        for process in reversed(started):
            process.terminate()
        for process in reversed(started):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def test_lot_on_a_dask_cluster_gives_the_same_synthese_as_local_processes(source, reference, dask_cluster,
                                                                         tmp_path):
    out = tmp_path / "dask"
    result = CliRunner().invoke(app, ["lot", str(source), "--sortie", str(out), "--cluster", dask_cluster,
                                      "--sans-analyse"])
    assert result.exit_code in (0, 3), result.output
    ours = read_synthese(out).sort_values("instance")[COMPARED].reset_index(drop=True)
    local = read_synthese(reference[0]).sort_values("instance")[COMPARED].reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, local)
    for name in NAMES:
        assert (out / name / "plan.csv").read_text() == (reference[0] / name / "plan.csv").read_text()
    assert (out / "departements" / "59" / "bailleurs.csv").is_file()
    lines = [json.loads((out / n / "synthese.json").read_text(encoding="utf-8")) for n in NAMES]
    assert all(line["phases"]["resolution"] > 0 for line in lines)


def test_lot_with_an_unreachable_cluster_says_so_in_french(source, tmp_path, monkeypatch):
    import socket

    from flux_opt.scale import batch

    monkeypatch.setattr(batch, "CLUSTER_TIMEOUT_S", 2)
    with socket.socket() as free:  # a loopback port nobody listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    result = CliRunner().invoke(app, ["lot", str(source), "--sortie", str(tmp_path / "out"),
                                      "--cluster", f"tcp://127.0.0.1:{port}"])
    assert result.exit_code == 2
    assert "aucun ordonnanceur Dask ne répond" in result.output and "Traceback" not in result.output


def test_cli_lot_resumes_and_prints_the_national_table(source, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference[0], out)
    shutil.rmtree(out / "i2")
    result = CliRunner().invoke(app, ["lot", str(source), "--sortie", str(out), "--processus", "1"])
    assert result.exit_code in (0, 3), result.output
    assert "2 instance(s) déjà terminée(s)" in result.output
    assert "Synthèse nationale" in result.output and "ensemble" in result.output
    ensemble = next(line for line in result.output.splitlines() if "ensemble" in line)
    assert re.search(r"\d,\d %", ensemble) and not re.search(r"\d\.\d", ensemble)  # 95,6 %, not 0.956
    assert sorted(read_synthese(out)["instance"]) == NAMES
    empty = CliRunner().invoke(app, ["lot", str(tmp_path / "rien")])
    assert empty.exit_code == 2


def test_lot_fingerprint_xlsx_rules_and_crashed_instances(source, reference, tmp_path):
    """An instance is resumed only while its files and options are unchanged; .xlsx instances
    are planned; the summary names the rules broken; a crashed instance is not run again."""
    from flux_opt.scale.batch import crashed_line, fingerprint
    from flux_opt.scale.pool import Crash
    from conftest import EXEMPLE

    folder, out = tmp_path / "src", tmp_path / "out"
    shutil.copytree(source, folder)
    shutil.copy(EXEMPLE.parent / "exemple.xlsx", folder / "classeur.xlsx")
    shutil.copytree(reference[0], out)
    demande = folder / "i1" / "demande.csv"
    demande.write_text(demande.read_text() + "\n")  # i1's input changed: planned again
    report = run_batch(folder, out, processes=1)
    assert sorted(report.planifiees) == ["classeur", "i1"] and sorted(report.reprises) == ["i0", "i2"]
    lines = read_synthese(out).set_index("instance")
    assert lines.at["classeur", "departement"] == "59" and (out / "classeur" / "plan.csv").is_file()
    for name, line in lines.iterrows():  # the rules broken are listed exactly for code 3
        assert (line["code"] == "3") == bool(line["regles_violees"]), name
    assert run_batch(folder, out, processes=1, moteur="pyomo", limit=0).reprises == []  # other options
    assert run_batch(folder, out, processes=1, analyse=False, limit=0).reprises == []  # other outputs
    # A worker that died on i0 is recorded, and a rerun does not try it again.
    args = (str(folder / "i0"), str(out / "i0"), "highs", "", "59", fingerprint(folder / "i0", "highs"))
    shutil.rmtree(out / "i0")
    crashed_line(args, Crash())
    again = run_batch(folder, out, processes=1)
    assert again.planifiees == [] and again.codes["i0"] == 1
    assert read_synthese(out).set_index("instance").at["i0", "statut"] == "plantage"


def test_synthese_csv_reads_back_with_clean_rule_lists(source, reference):
    """A machine file: list fields joined by « ; » without spaces, rule ids exactly those of each
    instance's contraintes.csv, codes and numbers that parse."""
    from flux_opt.model.registry import RULE

    out, _ = reference
    raw = (out / SYNTHESE).read_text(encoding="utf-8")
    synthese = pd.read_csv(out / SYNTHESE, dtype=str, keep_default_na=False)
    assert list(synthese.columns[:4]) == ["instance", "bailleur", "bailleur_nom", "departement"]
    assert " ;" not in raw and "; " not in raw
    for line in synthese.itertuples():
        rules = line.regles_violees.split(";") if line.regles_violees else []
        assert all(r == r.strip() and r in RULE for r in rules), rules
        contraintes = pd.read_csv(out / line.instance / "contraintes.csv", dtype=str, keep_default_na=False)
        assert rules == sorted(set(contraintes.loc[contraintes["statut"] == "violee", "contrainte"]))
        assert 0 <= float(line.adequation) <= 1 and 0 < float(line.part_etat) <= 0.30
        assert int(line.flux) > 0 and line.code in ("0", "3") and line.bailleur_nom.startswith("Bailleur")


def test_departement_view_adds_the_bailleurs_up(source, reference):
    """The State's contingent of département 59, recomputed here from each plan.csv and
    reservataires.csv: per bailleur, in total against ⌊30 %⌋ and ⌊5 %⌋, per commune."""
    import math

    out, _ = reference
    folder = out / "departements" / "59"
    bailleurs = pd.read_csv(folder / "bailleurs.csv", dtype={"instance": str}, keep_default_na=False)
    assert bailleurs["instance"].tolist() == ["i0", "i1", "ensemble"]
    expected_communes = []
    for name in ("i0", "i1"):
        plan = pd.read_csv(out / name / "plan.csv", dtype=str, keep_default_na=False)
        types = pd.read_csv(source / name / "reservataires.csv", dtype=str).set_index("id")["type"]
        plan["logements"] = plan["logements"].astype(int)
        plan["type"] = plan["reservataire"].map(types)
        row = bailleurs.set_index("instance").loc[name]
        assert row["flux"] == plan["logements"].sum()
        assert row["prefet"] == plan.loc[plan["type"] == "prefet", "logements"].sum()
        assert row["prefet_agents"] == plan.loc[plan["type"] == "prefet_agents", "logements"].sum()
        assert row["plafond_etat"] == math.floor(0.30 * row["flux"] + 1e-9)
        hors = plan.loc[plan["qpv"] == "non"]
        assert row["etat_hors_qpv"] == hors.loc[hors["type"].isin(["prefet", "prefet_agents"]), "logements"].sum()
        expected_communes.append(plan.assign(etat=plan["logements"].where(plan["type"].isin(["prefet", "prefet_agents"]), 0)))
    ensemble = bailleurs.set_index("instance").loc["ensemble"]
    assert ensemble["flux"] == bailleurs["flux"].iloc[:2].sum() and ensemble["etat"] == bailleurs["etat"].iloc[:2].sum()
    assert ensemble["plafond_etat"] == math.floor(0.30 * ensemble["flux"] + 1e-9)
    assert ensemble["plafond_agents"] == math.floor(0.05 * ensemble["flux"] + 1e-9)
    communes = pd.read_csv(folder / "communes.csv", dtype={"commune": str}, keep_default_na=False).set_index("commune")
    both = pd.concat(expected_communes).groupby("commune")[["logements", "etat"]].sum()
    assert communes["flux"].to_dict() == both["logements"].to_dict()
    assert communes["etat"].to_dict() == both["etat"].to_dict()
    assert (communes["commune_nom"] != "").all()
    collectivites = pd.read_csv(folder / "collectivites.csv", dtype={"territoire": str}, keep_default_na=False)
    assert (collectivites["plafond"] == [math.floor(0.20 * f + 1e-9) for f in collectivites["flux"]]).all()
    assert (out / "departements" / "62" / "bailleurs.csv").is_file()
    for page in ("contingent.html", "contingent.xlsx"):
        assert (folder / page).stat().st_size > 1000


def test_departement_views_written_in_parallel_are_the_serial_ones(reference, tmp_path):
    """After a batch on several processes the départements are written in parallel: each view
    reads only its own bailleurs, so the files are those of a serial run (dates aside)."""
    from flux_opt.scale.batch import write_departements

    out, _ = reference
    copy = tmp_path / "lot"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "departements")
    assert write_departements(copy, read_synthese(copy), processes=2) == ["59", "62"]
    for code in ("59", "62"):
        for name in ("bailleurs.csv", "communes.csv", "collectivites.csv"):
            assert (copy / "departements" / code / name).read_bytes() == (out / "departements" / code / name).read_bytes()
        assert load_workbook(copy / "departements" / code / "contingent.xlsx").sheetnames == \
            load_workbook(out / "departements" / code / "contingent.xlsx").sheetnames


def test_national_summary_pages_name_rules_and_instances(source, reference):
    from flux_opt.model.registry import label

    out, _ = reference
    html = (out / "synthese.html").read_text(encoding="utf-8")
    synthese = read_synthese(out)
    assert "Instances par conformité" in html and "Instances les plus lentes" in html
    assert html.count("data:image/png;base64,") == 2  # the two distributions
    assert "Bailleur synthétique 59, département 59 (i0)" in html  # names, not folder ids only
    rules = {r for v in synthese["regles_violees"] for r in v.split(";") if r}
    for rule in rules:
        assert label(rule) in html and f">{rule}<" not in html
    book = load_workbook(out / "synthese.xlsx", read_only=True)
    assert book.sheetnames == ["Départements", "Règles non tenues", "Instances", "Plus lentes"]
    departements = list(book["Départements"].iter_rows(min_row=3, values_only=True))
    assert [r[0] for r in departements] == ["59", "62", "ensemble"]


def test_cause_kind_keeps_the_criterion_and_drops_the_place():
    from flux_opt.scale.departement import cause_kind

    assert cause_kind("aucun demandeur des quartiles 2 à 4 en QPV dans l'EPCI Tavil (208543794) ; 12 logements") \
        == "aucun demandeur des quartiles 2 à 4 en QPV"
    assert cause_kind("seulement 1 234 demandeurs du 1er quartile peuvent recevoir un logement hors QPV de l'EPCI X") \
        == "seulement N demandeurs du 1er quartile peuvent recevoir un logement hors QPV"


def test_generer_a_small_national_set_for_tests(tmp_path):
    result = CliRunner().invoke(app, ["generer", str(tmp_path / "jeu"), "--national", "--logements", "1500",
                                      "--departements", "2", "--bailleurs", "3", "--graine", "1"])
    assert result.exit_code == 0, result.output
    manifest = pd.read_csv(tmp_path / "jeu" / "manifeste.csv", dtype=str)
    assert manifest["bailleur"].nunique() == 3 and manifest["departement"].nunique() == 2
    assert 1000 < manifest["logements"].astype(int).sum() <= 1500
    assert [r.nom for r in find_instances(tmp_path / "jeu")] == manifest["instance"].tolist()
    alone = CliRunner().invoke(app, ["generer", str(tmp_path / "seul"), "--bailleurs", "3"])
    assert alone.exit_code == 2 and "--national" in alone.output


def test_rule_costs_only_when_asked_and_the_report_says_how(source, reference, tmp_path):
    out, _ = reference  # lot's default: no rule cost re-solves
    for name in NAMES:
        explication = json.loads((out / name / "explication.json").read_text(encoding="utf-8"))
        assert explication["couts"] == [] and explication["temps_s"]["couts_interrompus"] == 0
        assert "flux-opt lot --couts" in (out / name / "rapport.html").read_text(encoding="utf-8")
        title = load_workbook(out / name / "rapport.xlsx", read_only=True)["Coût des règles"]["A1"].value
        assert title.startswith("Ce que coûte une règle") and "Non calculé" in title and "flux-opt lot --couts" in title
    asked = run_batch(source, tmp_path / "couts", processes=1, couts=True, limit=1)
    assert asked.planifiees == ["i0"]
    explication = json.loads((tmp_path / "couts" / "i0" / "explication.json").read_text(encoding="utf-8"))
    assert explication["couts"] and {c["famille"] for c in explication["couts"]}
    # a result without the costs is not reused when they are asked, and the other way round
    assert run_batch(source, out, processes=1, couts=True, limit=0).reprises == []


def test_largest_instances_are_planned_first(tmp_path, monkeypatch):
    # The last instances to finish are the small ones: no process is left alone at the end with a
    # large instance started last. Sizes are the instances' bytes on disk, a workbook's included.
    from flux_opt.scale import batch

    refs = []
    for name, size in [("petite", 10), ("grande", 1000), ("moyenne", 100)]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "parc.csv").write_text("x" * size, encoding="utf-8")
        refs.append(batch.InstanceRef(name, tmp_path / name))
    (tmp_path / "classeur.xlsx").write_bytes(b"x" * 500)
    refs.append(batch.InstanceRef("classeur", tmp_path / "classeur.xlsx"))
    submitted = []
    monkeypatch.setattr(batch, "run_tasks", lambda function, args, processes: submitted.extend(args) or iter(()))
    list(batch._execute(refs, tmp_path / "sortie", 2, None, "highs", {r.nom: "" for r in refs}))
    assert [a[0].rsplit("/", 1)[-1] for a in submitted] == ["grande", "classeur.xlsx", "moyenne", "petite"]
