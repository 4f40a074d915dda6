"""One way in: every command reads its instance once, through the pipeline's load stage, and every
plan — a run or a re-plan of a Planner — is built by the same result stage."""

from __future__ import annotations

from flux_opt import pipeline

from flux_opt.stock.instance import convert_instance, year_targets

from conftest import EXEMPLE, stock_of


def test_from_conversion_reads_the_instance_once(monkeypatch):
    reads = []
    real = pipeline.load_instance
    monkeypatch.setattr(pipeline, "load_instance", lambda *a, **k: reads.append(a) or real(*a, **k))
    instance = pipeline.load(EXEMPLE, from_conversion=True)
    assert len(reads) == 1
    # the lissage's year-one targets, as a conversion of the stock read on its own gives them
    converted = year_targets(convert_instance(stock_of(EXEMPLE)))
    assert converted and {r.id: r.logements for r in instance.reservataires if r.id in converted} == converted


def test_verifier_is_the_load_stage_stopped_after_the_assiette():
    checked = pipeline.check(EXEMPLE)
    done = pipeline.run(pipeline.load(EXEMPLE), pipeline.PlanOptions(duals=False))
    assert checked.flux.total == done.flux.total == 379
    assert checked.targets.table.equals(done.targets.table)


def test_a_planner_builds_its_result_like_run():
    """The same result stage: the instance's warnings reach resume.json either way."""
    instance = pipeline.load(EXEMPLE)
    instance = instance.model_copy(update={"avertissements": ["avertissement de test"]})
    planned = pipeline.Planner(instance).plan(instance)
    ran = pipeline.run(instance, pipeline.PlanOptions(duals=False)).result
    assert planned.resume["avertissements"] == ran.resume["avertissements"] == ["avertissement de test"]
    assert planned.plan.equals(ran.plan)


def test_verifier_from_conversion_without_stock_names_the_missing_file(tmp_path):
    """Hostile: --depuis-conversion on an instance with no conventions.csv is a French data error
    (exit 2, file named), for verifier as for plan."""
    import shutil

    from typer.testing import CliRunner

    from flux_opt.cli.main import app

    folder = tmp_path / "sans_stock"
    shutil.copytree(EXEMPLE, folder)
    (folder / "conventions.csv").unlink()
    for command in (["verifier", str(folder), "--depuis-conversion"],
                    ["plan", str(folder), "--depuis-conversion", "--sortie", str(tmp_path / "sortie")]):
        out = CliRunner().invoke(app, command)
        assert out.exit_code == 2, out.output
        assert "conventions.csv" in out.output and "manquant" in out.output
    assert not (tmp_path / "sortie").exists() or not any((tmp_path / "sortie").iterdir())
