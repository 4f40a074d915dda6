"""The report for people: rapport.html (self-contained, with its plots) and rapport.xlsx."""

from __future__ import annotations

import base64
import re

import pandas as pd
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from flux_opt.pipeline import plan_and_explain
from flux_opt.cli.main import app
from flux_opt.report.plan_report import rapport_html, rapport_xlsx

from conftest import EXEMPLE, SURCONTRAINT


@pytest.fixture(scope="module")
def surcontraint():
    return plan_and_explain(SURCONTRAINT)


def test_html_is_self_contained_with_titles_tables_and_plots(surcontraint):
    result, explanation = surcontraint
    page = rapport_html(result, explanation)
    for title in ("Synthèse", "Les raisons principales", "Objectif et plan par réservataire",
                  "Règles qui ne peuvent pas être tenues, et pourquoi", "Ce que coûte une règle",
                  "Adéquation par commune", "Logements QPV / hors QPV par réservataire",
                  "Objectifs de mixité et publics prioritaires", "Risque de vacance commerciale",
                  "Demande sans logement cette année"):
        assert f"<h2>{title}" in page, title
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 4  # targets, communes, QPV, mixity
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert not re.search(r'(src|href)="https?://', page)  # nothing fetched from the network
    assert page.count("<table>") >= 10
    assert "aucun demandeur du 1er quartile hors QPV dans l&#39;EPCI 245900428" in page  # jinja2 autoescape
    for rid in result.objectifs["reservataire"]:
        assert f"<td>{rid}</td>" in page


def test_html_tables_carry_the_plan_figures(surcontraint):
    result, explanation = surcontraint
    page = rapport_html(result, explanation)
    # ville_dunkerque: target 6, 5 dwellings, gap −1 (the row of the targets table).
    assert re.search(r"<td>ville_dunkerque</td><td class=\"num\">6</td><td class=\"num\">5</td>"
                     r"<td class=\"num\">-1</td>", page)
    # CIA Q1 hors QPV: 0 of 30 hors-QPV dwellings, minimum 25 %.
    assert re.search(r"EPCI 245900428 hors QPV tous réservataires critère q1</td><td class=\"num\">0</td>"
                     r"<td class=\"num\">30</td><td class=\"num\">0,0 %</td><td class=\"num\">25,0 %</td>", page)


def test_xlsx_has_one_sheet_per_table_with_french_headings(surcontraint, tmp_path):
    result, explanation = surcontraint
    path = tmp_path / "rapport.xlsx"
    rapport_xlsx(result, explanation, path)
    book = load_workbook(path, read_only=True)
    for sheet in ("Synthèse", "Raisons", "Objectifs", "Communes", "QPV", "Mixité", "Règles non tenues",
                  "Familles", "Par réservataire", "Coût des règles", "Vacance", "Demande non servie",
                  "Contraintes", "Plan", "Attributions"):
        assert sheet in book.sheetnames, sheet
    objectifs = pd.read_excel(path, sheet_name="Objectifs", header=1)
    assert list(objectifs.columns) == ["Réservataire", "Objectif", "Logements orientés", "Écart", "Adéquation"]
    merged = objectifs.merge(result.objectifs, left_on="Réservataire", right_on="reservataire")
    assert (merged["Logements orientés"] == merged["logements"]).all()
    rules = pd.read_excel(path, sheet_name="Contraintes", header=1)
    assert len(rules) == len(result.contraintes)
    assert (rules["Statut"] == "VIOLÉE").sum() == 3


def test_plan_command_writes_the_report_with_the_plan(tmp_path):
    out = tmp_path / "plan"
    run = CliRunner().invoke(app, ["plan", str(EXEMPLE), "--sortie", str(out), "--sans-analyse"])
    assert run.exit_code == 0, run.output
    for name in ("plan.csv", "contraintes.csv", "resume.json", "rapport.html", "rapport.xlsx", "explication.json"):
        assert (out / name).exists(), name
    page = (out / "rapport.html").read_text(encoding="utf-8")
    assert "Non calculé (analyse désactivée)." in page  # no re-solve with --sans-analyse
    assert page.count("data:image/png;base64,") == 4
