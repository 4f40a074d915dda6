"""Issue 4 acceptance: the year-1 targets of the lissage, plugged into `plan`, give a valid plan."""

import shutil

import pandas as pd
from typer.testing import CliRunner

from checker import check_plan
from flux_opt.cli.main import app
from flux_opt.stock.instance import apply_targets, convert_instance, year_targets

from conftest import EXEMPLE, stock_of


def test_year_one_lissage_targets_feed_a_valid_plan(tmp_path):
    result = convert_instance(stock_of(EXEMPLE), methode="convention", annees=6)
    assert result.lissage.realisable
    targets = year_targets(result)
    instance = tmp_path / "exemple"
    shutil.copytree(EXEMPLE, instance)
    table = pd.read_csv(instance / "reservataires.csv", dtype=str, keep_default_na=False)
    apply_targets(table, targets).to_csv(instance / "reservataires.csv", index=False)
    out = tmp_path / "plan"
    run = CliRunner().invoke(app, ["plan", str(instance), "--sortie", str(out)])
    assert run.exit_code == 0, run.output
    objectifs = pd.read_csv(out / "objectifs.csv").set_index("reservataire")
    for rid, n in targets.items():
        assert objectifs.at[rid, "cible"] == n
    assert check_plan(instance, out) == []


def test_plan_option_takes_this_years_targets_from_the_lissage(tmp_path):
    targets = year_targets(convert_instance(stock_of(EXEMPLE)))
    run = CliRunner().invoke(app, ["plan", str(EXEMPLE), "--sortie", str(tmp_path), "--depuis-conversion"])
    assert run.exit_code == 0, run.output
    objectifs = pd.read_csv(tmp_path / "objectifs.csv").set_index("reservataire")
    assert {rid: objectifs.at[rid, "cible"] for rid in targets} == targets
    # The checker reads the instance's own reservataires.csv: only those targets differ.
    assert {(v.famille, v.portee) for v in check_plan(EXEMPLE, tmp_path)} <= {
        ("objectif_reservataire", rid) for rid in [*targets, "bailleur"]}
