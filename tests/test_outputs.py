"""Nothing the user gave is ever overwritten: every command that writes refuses, before any work
and in French (exit 2), an output that is, lies inside or contains what it reads — the instance
(folder or workbook), the plan folder, the journal, the scenarios. `lot` gives every instance its
own results folder."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import EXEMPLE, MINI
from flux_opt.cli.main import app
from flux_opt.report.guard import overlap
from journal_fixtures import ecrire_plan


def digest(*roots: Path) -> dict[str, str]:
    out = {}
    for root in roots:
        for p in sorted([root] if root.is_file() else root.rglob("*")):
            if p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def given(tmp_path) -> dict[str, Path]:
    """An instance folder, a workbook instance, a plan folder, a journal and a scenario."""
    instance = shutil.copytree(EXEMPLE, tmp_path / "inst")
    workbook = shutil.copy(EXEMPLE.with_suffix(".xlsx"), tmp_path / "classeur.xlsx")
    plan = ecrire_plan(tmp_path / "plan")
    journal = tmp_path / "journal.csv"
    journal.write_text("horodatage,evenement,logement_id\n", encoding="utf-8")
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'nom = "S"\nbase = "{instance}"\n[regles]\nprefet_taux = 0.25\n', encoding="utf-8")
    return dict(instance=instance, workbook=Path(workbook), plan=plan, journal=journal, scenario=scenario,
                root=tmp_path)


CASES = [  # (command line with {placeholders}, what the refusal says)
    ("plan {instance} --sortie {instance}", "est l'instance"),
    ("plan {instance} --sortie {instance}/sortie", "est dans l'instance"),
    ("plan {instance} --sortie {root}", "contient l'instance"),
    ("plan {workbook} --sortie {workbook}", "est l'instance"),
    ("plan {instance} --sortie {lien}", "est l'instance"),  # another name for the same folder
    ("controler {plan} {instance} --sortie {instance}/parc.csv", "est dans l'instance"),
    ("controler {plan} {instance} --sortie {plan}/plan.csv", "est le plan (plan.csv)"),
    ("comparer {instance} {scenario} --sortie {instance}", "est la base"),
    ("comparer {instance} {scenario} --sortie {scenario}", "est le scénario s.toml"),
    ("evaluer {plan} --instance {instance} --sortie {instance}", "est dans l'instance"),
    ("suivi {plan} {journal} --sortie {plan}", "est le plan"),
    ("suivi {plan} {journal} --instance {instance} --sortie {instance}/suivi", "est dans l'instance"),
    ("bilan {plan} {journal} --annee 2027 --sortie {journal}", "est le journal"),
    ("bilan {plan} {journal} --annee 2027 --sortie {root}", "contient le plan"),
    ("convertir {instance} --sortie {instance}", "est l'instance"),
    ("lot {root} --sortie {root}/res", "est dans le dossier d'instances"),
    ("negocier {instance} --sortie {instance}/neg --sans-navigateur", "est dans l'instance"),
    ("simuler {plan} --journal {plan}/plan.csv --annee 2027", "est le plan (plan.csv)"),
    ("orienter {plan} {journal} --sortie {plan} --logement commune=59350,typologie=T3,qpv=non,financement=PLUS",
     "est le plan"),
    ("journal ajouter {plan}/objectifs.csv liberation --plan {plan} --commune 59350", "est le plan (objectifs.csv)"),
    ("importer rpls {journal} --sortie {root}", "contient le fichier RPLS"),
    ("calibrer {journal} --sortie {journal}", "est le journal journal.csv"),
    ("calibrer {journal} --instance {instance} --sortie {instance}/cal", "est dans l'instance"),
]


@pytest.mark.parametrize("line, words", CASES, ids=[c[0].split()[0] + str(i) for i, c in enumerate(CASES)])
def test_an_output_over_an_input_is_refused_before_any_work(given, line, words):
    (given["root"] / "lien").symlink_to(given["instance"])
    before = digest(given["root"])
    args = line.format(**given, lien=given["root"] / "lien").split()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert words in text and "rien n'a été écrit" in text, text
    assert "Traceback" not in text and "Erreur interne" not in text
    assert digest(given["root"]) == before  # nothing written, nothing created


def test_the_default_outputs_beside_the_plan_are_still_allowed(tmp_path):
    """controler and evaluer write one file beside the plan they read, by default (a real plan of the
    instance: controler refuses a plan naming communes its instance does not have)."""
    plan = tmp_path / "plan"
    assert CliRunner().invoke(app, ["plan", str(MINI), "--sortie", str(plan), "--sans-analyse"]).exit_code in (0, 3)
    (plan / "conformite.csv").unlink()
    assert overlap(plan / "conformite.csv", plan / "plan.csv") is None
    result = CliRunner().invoke(app, ["controler", str(plan), str(MINI)])
    assert result.exit_code in (0, 3) and (plan / "conformite.csv").exists(), result.output


def test_lot_gives_a_folder_and_a_workbook_of_the_same_name_their_own_results(tmp_path):
    source = tmp_path / "lot"
    shutil.copytree(MINI, source / "ex")
    shutil.copy(EXEMPLE.with_suffix(".xlsx"), source / "ex.xlsx")
    result = CliRunner().invoke(app, ["lot", str(source), "--sortie", str(tmp_path / "res"), "--processus", "1",
                                      "--sans-analyse"])
    assert result.exit_code in (0, 3), result.output
    assert "ex.xlsx : résultats dans « ex_xlsx »" in " ".join(result.output.split())
    synthese = pd.read_csv(tmp_path / "res" / "synthese.csv", dtype=str)
    assert sorted(synthese["instance"]) == ["ex", "ex_xlsx"]
    small = pd.read_csv(tmp_path / "res" / "ex" / "plan.csv")["logements"].sum()
    large = pd.read_csv(tmp_path / "res" / "ex_xlsx" / "plan.csv")["logements"].sum()
    assert small != large  # two plans, neither lost

