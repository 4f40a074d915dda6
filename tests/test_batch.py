"""Batch planning: every instance once, resumable without losing or repeating a result."""

import json
import re
import shutil

import pandas as pd
import pytest
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


def test_dask_cluster_gives_the_same_synthese_as_local_processes(source, reference, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        report = run_batch(source, tmp_path / "dask", cluster=cluster.scheduler_address, analyse=False)
    assert sorted(report.planifiees) == NAMES
    ours = read_synthese(tmp_path / "dask").sort_values("instance")[COMPARED].reset_index(drop=True)
    local = read_synthese(reference[0]).sort_values("instance")[COMPARED].reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, local)
    for name in NAMES:
        assert (tmp_path / "dask" / name / "plan.csv").read_text() == (reference[0] / name / "plan.csv").read_text()


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
