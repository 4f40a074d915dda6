"""Commands end to end: files, exit codes, determinism, atomic writes."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from flux_opt.cli.main import app
from flux_opt.report import exports

from conftest import EXEMPLE, SURCONTRAINT, transport_copy

runner = CliRunner()
TIMINGS = ("temps_construction_s", "temps_transmission_s", "temps_resolution_s")


def plan(instance, out, *extra):
    return runner.invoke(app, ["plan", str(instance), "--sortie", str(out), *extra])


def test_plan_writes_the_contract_files(tmp_path):
    result = plan(EXEMPLE, tmp_path)
    assert result.exit_code == 0, result.output
    assert "Toutes les règles sont respectées" in result.output
    for name in exports.PLAN_FILES:
        assert (tmp_path / name).is_file(), name
    plan_csv = pd.read_csv(tmp_path / "plan.csv", dtype={"commune": str, "epci": str})
    assert list(plan_csv.columns) == ["commune", "epci", "qpv", "typologie", "financement", "reservataire", "logements"]
    resume = json.loads((tmp_path / "resume.json").read_text(encoding="utf-8"))
    assert resume["flux"] == plan_csv["logements"].sum() == 379
    assert resume["optimal"] is True and resume["code_sortie"] == 0
    objectifs = pd.read_csv(tmp_path / "objectifs.csv")
    assert list(objectifs.columns) == ["reservataire", "cible", "report", "logements", "ecart", "adequation"]
    assert (objectifs["report"] == 0).all()  # no --bilan-precedent: nothing carried over
    contraintes = pd.read_csv(tmp_path / "contraintes.csv")
    assert list(contraintes.columns) == ["contrainte", "portee", "statut", "marge", "valeur_marginale", "explication"]
    assert set(contraintes["statut"]) <= {"saturee", "lache", "violee"}


def test_same_input_twice_gives_identical_files(tmp_path):
    assert plan(EXEMPLE, tmp_path / "a").exit_code == 0
    assert plan(EXEMPLE, tmp_path / "b").exit_code == 0
    for name in ("plan.csv", "attributions.csv", "objectifs.csv", "contraintes.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    a, b = (json.loads((tmp_path / d / "resume.json").read_text(encoding="utf-8")) for d in "ab")
    for key in TIMINGS:  # wall-clock figures are the only thing allowed to differ
        a.pop(key), b.pop(key)
    assert a == b


def test_pyomo_engine_reaches_the_same_optimum(tmp_path):
    # Same families, rendered through Pyomo: same optimal value and the same dwellings per
    # réservataire. (Alternative optima within 1e-9 may still differ segment by segment.)
    # The transport demand model: the composition model's HiGHS path (relaxation first, stopped
    # within `ecart_absolu` of the bound) is not the Pyomo one (plain branch-and-cut).
    example = transport_copy(EXEMPLE, tmp_path / "exemple")
    assert plan(example, tmp_path / "highs").exit_code == 0
    assert plan(example, tmp_path / "pyomo", "--moteur", "pyomo").exit_code == 0
    a, b = (json.loads((tmp_path / d / "resume.json").read_text(encoding="utf-8")) for d in ("highs", "pyomo"))
    assert a["objectif"] == pytest.approx(b["objectif"], abs=1e-6)
    assert a["moteur"] == "highs" and b["moteur"] == "pyomo"
    assert (tmp_path / "highs" / "objectifs.csv").read_bytes() == (tmp_path / "pyomo" / "objectifs.csv").read_bytes()


def test_overconstrained_instance_exits_3_and_names_the_rules(tmp_path):
    result = plan(SURCONTRAINT, tmp_path)
    assert result.exit_code == 3
    assert "CIA : 1er quartile hors QPV" in result.output  # the rule as a person names it
    contraintes = pd.read_csv(tmp_path / "contraintes.csv")
    assert set(contraintes.loc[contraintes["statut"] == "violee", "contrainte"]) == {"cia_hors_qpv_q1"}
    # the commune's 25 % above its legal 20 % is held to the law, and said (legal caps prevail)
    assert "Ville de Dunkerque" not in set(contraintes.loc[contraintes["statut"] == "violee", "portee"])
    assert "ramenés à la loi" in " ".join(result.output.split())


def test_interrupted_write_leaves_the_previous_plan_intact(tmp_path, monkeypatch):
    assert plan(EXEMPLE, tmp_path).exit_code == 0
    before = {n: (tmp_path / n).read_bytes() for n in exports.PLAN_FILES}

    def crash(frame, path):
        if path.name == "contraintes.csv":
            raise KeyboardInterrupt  # the user presses Ctrl-C while files are being written
        frame.to_csv(path, index=False)

    monkeypatch.setattr(exports, "write_csv", crash)
    with pytest.raises(KeyboardInterrupt):
        exports.write_plan(__import__("flux_opt.pipeline").pipeline.plan_path(SURCONTRAINT), tmp_path)
    assert {n: (tmp_path / n).read_bytes() for n in exports.PLAN_FILES} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".flux-opt-")]


def test_verifier_checks_input_only(tmp_path):
    result = runner.invoke(app, ["verifier", str(EXEMPLE)])
    assert result.exit_code == 0
    assert "flux annuel C = 379" in " ".join(result.output.split())
    bad = runner.invoke(app, ["verifier", str(tmp_path)])
    assert bad.exit_code == 2
    assert "instance.toml" in bad.output


def test_simuler_twice_into_the_same_journal_is_a_french_refusal(tmp_path):
    """The second simulated year of the same dates cannot follow the first: exit 2, journal unchanged."""
    from conftest import EXEMPLE

    runner = CliRunner()
    plan, journal = tmp_path / "plan", tmp_path / "journal.csv"
    assert runner.invoke(app, ["plan", str(EXEMPLE), "--sortie", str(plan), "--sans-analyse"]).exit_code == 0
    assert runner.invoke(app, ["simuler", str(plan), "--journal", str(journal), "--annee", "2027"]).exit_code == 0
    before = journal.read_bytes()
    again = runner.invoke(app, ["simuler", str(plan), "--journal", str(journal), "--annee", "2027"])
    assert again.exit_code == 2 and "Erreur interne" not in again.output and "inchangé" in again.output
    assert journal.read_bytes() == before
