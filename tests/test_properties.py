"""Property tests: every plan of `flux-opt plan` satisfies the hard rules it claims.

Written against the CLI contract (FORMAT.md): `flux-opt plan INSTANCE --sortie DIR`
exits 0 when every hard rule holds, 3 when some row of contraintes.csv is `violee`.
The independent checker (tests/checker.py) recomputes the rules from the files.

(a) ample-demand instances: exit 0 and the checker finds nothing;
(b) any random valid instance: exit 0 or 3, the families the checker finds violated
    are among those reported `violee`, and conservation/territoire/demande never are;
(c) exit 3 exactly when some row is `violee` (checked in both tests).

`flux_opt` is imported inside the helper so that test_checker.py runs without it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checker import check_plan, violated_rows
from strategies import instance_dirs

PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
OUTPUT_FILES = ("plan.csv", "attributions.csv", "objectifs.csv", "contraintes.csv", "resume.json")
NEVER_VIOLATED = {"conservation", "territoire", "demande", "integrite"}


def run_plan(instance: Path, out: Path) -> int:
    """Run `flux-opt plan` in-process; return its exit code (fail loudly on a crash)."""
    from typer.testing import CliRunner

    from flux_opt.cli.main import app

    result = CliRunner().invoke(app, ["plan", str(instance), "--sortie", str(out)])
    assert result.exit_code in (0, 3), (
        f"code {result.exit_code} sur {instance}\n{result.output}\n{result.exception!r}"
    )
    missing = [name for name in OUTPUT_FILES if not (out / name).exists()]
    assert not missing, f"fichiers absents {missing} pour {instance}"
    return result.exit_code


def assert_exit_code_matches_rows(code: int, out: Path, instance: Path) -> list[tuple[str, str]]:
    rows = violated_rows(out)
    assert (code == 3) == bool(rows), f"code {code} mais lignes violées {rows} ({instance})"
    return rows


@PROPERTY_SETTINGS
@given(data=st.data())
def test_ample_demand_instances_hold_every_rule(tmp_path, data):
    instance = data.draw(instance_dirs(tmp_path / "instances", ample=True), label="instance")
    out = tmp_path / "sorties" / instance.name
    code = run_plan(instance, out)
    rows = assert_exit_code_matches_rows(code, out, instance)
    assert code == 0, f"règles violées sur une instance à demande ample: {rows} ({instance})"
    assert check_plan(instance, out) == []


@PROPERTY_SETTINGS
@given(data=st.data())
def test_violations_found_by_the_checker_are_reported(tmp_path, data):
    instance = data.draw(instance_dirs(tmp_path / "instances"), label="instance")
    out = tmp_path / "sorties" / instance.name
    code = run_plan(instance, out)
    reported = {famille for famille, _ in assert_exit_code_matches_rows(code, out, instance)}
    found = check_plan(instance, out)
    never = [v for v in found if v.famille in NEVER_VIOLATED]
    assert not never, f"règles absolues violées: {never} ({instance})"
    unreported = [v for v in found if v.famille not in reported]
    assert not unreported, f"violations non déclarées dans contraintes.csv: {unreported} ({instance})"


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(logements=st.integers(min_value=150, max_value=700), graine=st.integers(min_value=0, max_value=10_000))
def test_evaluer_never_ends_in_an_internal_error_on_generated_instances(tmp_path_factory, logements, graine):
    """`flux-opt generer` → `plan` → `evaluer` (with its plots) on small generated instances of any
    seed: exit 0, never « Erreur interne » (a skewed spread put a mean below its 5 % quantile and
    the share plot's error bar ended in « xerr »)."""
    from typer.testing import CliRunner

    from flux_opt.cli.main import app
    from flux_opt.scale.generate import generate_instance

    root = tmp_path_factory.mktemp("generer")
    generate_instance(root / "instance", logements, graine=graine)
    runner = CliRunner()
    done = runner.invoke(app, ["plan", str(root / "instance"), "--sortie", str(root / "plan"), "--sans-analyse"])
    assert done.exit_code in (0, 3), done.output
    lived = runner.invoke(app, ["evaluer", str(root / "plan"), "--instance", str(root / "instance"), "--tirages", "8",
                                "--graine", str(graine)])
    assert lived.exit_code == 0 and "Erreur interne" not in lived.output, lived.output


def test_a_mean_below_its_5_percent_quantile_draws_a_bar(tmp_path):
    """96 draws at 100 %, 4 at 0 %: the mean (96 %) is below p05 (100 %); the plot is drawn."""
    from flux_opt.report.evaluation import shares_plot
    from flux_opt.plan.evaluation import Evaluation

    table = pd.DataFrame([{"indicateur": "part publics_prioritaires", "portee": "prefet", "cible": 1.0, "prevu": 1.0,
                           "moyenne": 0.96, "ecart_type": 0.2, "p05": 1.0, "p95": 1.0}])
    assert shares_plot(Evaluation(table, 100, 0, {})) is not None


def test_the_spread_is_drawn_from_its_5_to_its_95_percent_quantile_even_beside_the_mean():
    """The plots draw the quantiles as they are (models/orientation.md §9): a mean of 0,96 below
    p05 = 1 keeps a spread from 1 to 1, not a bar stretched or cut at the mean; NaN draws nothing."""
    import matplotlib.pyplot as plt
    import numpy as np

    from flux_opt.report.evaluation import _spread

    table = pd.DataFrame({"moyenne": [0.96, 0.5, np.nan], "p05": [1.0, 0.3, np.nan], "p95": [1.0, 0.8, np.nan]})
    fig, ax = plt.subplots()
    _spread(ax, np.arange(3.0), table, 100)
    (segments,) = [c.get_segments() for c in ax.collections if hasattr(c, "get_segments")]
    plt.close(fig)
    assert [s.tolist() for s in segments] == [[[100.0, 0.0], [100.0, 0.0]], [[30.0, 1.0], [80.0, 1.0]]]
