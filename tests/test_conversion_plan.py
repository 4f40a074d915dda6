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


def test_a_prefet_convention_is_never_converted_with_a_turnover_rate(tmp_path):
    """A préfet convention (900 droits de suite, 10 % rotation) in conventions.csv: `convertir`
    sets it aside with the reason (instruction of 28 March 2022 §4.2, CCH R.441-5-2) instead of
    owing 900 × duration × 10 % relogements, and `plan --depuis-conversion` keeps the State at
    its legal rate (⌊0,30 × 379⌋ = 113 with the agents)."""
    folder = tmp_path / "instance"
    shutil.copytree(EXEMPLE, folder)
    with (folder / "conventions.csv").open("a", encoding="utf-8") as f:
        f.write("prefet,PREF-1990-LILLE,900,2040,,0.10\n")
    result = convert_instance(stock_of(folder))
    assert "prefet" not in set(result.conversion["reservataire"]) and "prefet" not in set(result.detail["reservataire"])
    assert len(result.parametres["etat_non_converti"]) == 1
    runner = CliRunner()
    done = runner.invoke(app, ["convertir", str(folder)], terminal_width=300)
    flat = " ".join(done.output.split())
    assert "PREF-1990-LILLE" in flat and "instruction du 28 mars 2022, §4.2" in flat and "CCH R.441-5-2" in flat
    out = tmp_path / "plan"
    planned = runner.invoke(app, ["plan", str(folder), "--depuis-conversion", "--sortie", str(out), "--sans-analyse"])
    assert planned.exit_code in (0, 3), planned.output
    plan = pd.read_csv(out / "plan.csv")
    assert plan.loc[plan["reservataire"].isin(["prefet", "prefet_agents"]), "logements"].sum() == 113
    assert "non convertie" in " ".join(planned.output.split())
