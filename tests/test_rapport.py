"""The report for people: rapport.html (self-contained, with its plots) and rapport.xlsx."""

from __future__ import annotations

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
    # targets, QPV, communes, mixity: bar charts drawn by the page (no image to render)
    assert page.count('<figure class="bars"') == 4 and "data:image/png" not in page
    assert not re.search(r'(src|href)="https?://', page)  # nothing fetched from the network
    assert page.count("<table>") >= 10
    assert "aucun demandeur du 1er quartile hors QPV dans l&#39;EPCI 245900428" in page  # jinja2 autoescape
    for rid in result.objectifs["reservataire"]:
        assert f"<td>{rid}</td>" in page


def test_html_tables_carry_the_plan_figures(surcontraint):
    result, explanation = surcontraint
    page = rapport_html(result, explanation)
    # ville_dunkerque asks 25 %, held to the collectivités' 20 % (CCH R.441-5): target 5, 5 dwellings, gap 0
    # (the row of the targets table), its name beside its code.
    assert re.search(r"<td>Ville de Dunkerque</td><td>ville_dunkerque</td><td class=\"num\">5</td>"
                     r"<td class=\"num\">5</td><td class=\"num\">0</td>", page)
    # CIA Q1 hors QPV: 0 of 30 hors-QPV dwellings, minimum 25 %.
    assert re.search(r"EPCI 245900428 hors QPV tous réservataires, 1er quartile</td><td class=\"num\">0</td>"
                     r"<td class=\"num\">30</td><td class=\"num\">0,0 %</td><td class=\"num\">25,0 %</td>", page)


def test_xlsx_has_one_sheet_per_table_with_french_headings(surcontraint, tmp_path):
    result, explanation = surcontraint
    path = tmp_path / "rapport.xlsx"
    rapport_xlsx(result, explanation, path)
    book = load_workbook(path, read_only=True)
    for sheet in ("Synthèse", "Raisons", "Objectifs", "Communes", "QPV", "Mixité", "Règles non tenues",
                  "Familles", "Par réservataire", "Coût des règles", "Vacance", "Demande non servie",
                  "Règles", "Glossaire", "Plan", "Attributions", "Diagnostics"):
        assert sheet in book.sheetnames, sheet
    assert not any(name.startswith("Annexe") for name in book.sheetnames)  # each one's own file: annexes/
    # the people's part first, the optimiser's diagnostics after it
    assert book.sheetnames.index("Glossaire") < book.sheetnames.index("Diagnostics") < \
        book.sheetnames.index("Coût des règles")
    objectifs = pd.read_excel(path, sheet_name="Objectifs", header=1)
    assert list(objectifs.columns) == ["Réservataire", "Code", "Objectif", "Logements orientés", "Écart",
                                       "Adéquation"]
    merged = objectifs.merge(result.objectifs, left_on="Code", right_on="reservataire")
    assert (merged["Logements orientés"] == merged["logements"]).all()
    rules = pd.read_excel(path, sheet_name="Règles", header=1)
    assert len(rules) == len(result.contraintes)
    assert (rules["Statut"] == "NON TENUE").sum() == 1  # the CIA's Q1 hors QPV only: no Q1 candidate there


def test_plan_command_writes_the_report_with_the_plan(tmp_path):
    out = tmp_path / "plan"
    run = CliRunner().invoke(app, ["plan", str(EXEMPLE), "--sortie", str(out), "--sans-analyse"])
    assert run.exit_code == 0, run.output
    for name in ("plan.csv", "contraintes.csv", "resume.json", "rapport.html", "rapport.xlsx", "explication.json"):
        assert (out / name).exists(), name
    page = (out / "rapport.html").read_text(encoding="utf-8")
    assert "Non calculé : flux-opt plan (sans --sans-analyse) ou flux-opt lot --couts le calcule." in page
    assert page.count('<figure class="bars"') == 4


def test_xlsx_can_be_sent_as_is_numbers_formats_filters_and_print_setup(surcontraint, tmp_path):
    result, explanation = surcontraint
    path = tmp_path / "rapport.xlsx"
    rapport_xlsx(result, explanation, path)
    book = load_workbook(path)
    objectifs = book["Objectifs"]
    assert objectifs.freeze_panes == "A3" and objectifs.auto_filter.ref.startswith("A2:")
    cible = objectifs["C3"]
    assert isinstance(cible.value, int) and cible.number_format == "#,##0"  # a number, not text
    assert objectifs["F3"].number_format == "0.0%" and isinstance(objectifs["F3"].value, (int, float))
    for sheet in book:  # every sheet prints on A4 landscape, fitted to the width, its header repeated
        assert sheet.page_setup.orientation == "landscape" and sheet.page_setup.fitToHeight == 0
        assert sheet.sheet_properties.pageSetUpPr.fitToPage and sheet.print_title_rows == "$2:$2"
    synthese = {r[0]: r[1] for r in book["Synthèse"].iter_rows(min_row=3, values_only=True)}
    assert synthese["Attributions prévues (espérance)"] == round(result.resume["attributions_prevues"])
    assert synthese["Adéquation (part des logements avec un candidat)"] == round(result.resume["adequation"], 4)
    assert "Écart d'optimalité" not in synthese  # in the technical annex (« Diagnostics »)


def test_every_kind_of_scope_reads_with_names():
    """Scopes are built from codes (contraintes.csv); people read names beside them."""
    from flux_opt.plan.names import Names

    noms = Names({"ville_roubaix": "Ville de Roubaix", "mel": "Métropole européenne de Lille", "prefet": "Préfet"},
                 {"59350": "Lille"}, {"200093201": "MEL"})
    assert noms.scope("territoire de ville_roubaix, mel") == \
        "territoire de Ville de Roubaix, Métropole européenne de Lille"
    assert noms.scope("territoire de ville_roubaix (collectivités ensemble)") == \
        "territoire de Ville de Roubaix (collectivités ensemble)"
    assert noms.scope("cellule 59350 T2 QPV") == "cellule Lille (59350) T2 QPV"
    assert noms.scope("logements prefet commune 59350 T2 hors QPV PLAI") == \
        "logements de Préfet, Lille (59350) T2 hors QPV PLAI"
    assert noms.scope("vivier prefet epci 200093201 T2 q1") == "vivier de Préfet, MEL (200093201) T2 q1"
    assert noms.scope("EPCI 200093201 hors QPV tous réservataires critère q1") == \
        "EPCI MEL (200093201) hors QPV tous réservataires, 1er quartile"


def test_bar_charts_carry_the_plan_figures_on_a_round_scale():
    """The report's charts are HTML bars: widths in % of a round scale, the figures beside them."""
    from flux_opt.report.bars import communes_chart, mixity_chart, qpv_chart, targets_chart

    targets = pd.DataFrame({"reservataire": ["Préfet", "Ville"], "cible": [188, 37], "logements": [188, 30],
                            "ecart": [0, -7]})
    chart = targets_chart(targets)
    assert [t for _, t in chart.ticks] == ["0", "40", "80", "120", "160", "200"]  # 188 → a scale of 200
    prefet, ville = chart.bars
    assert prefet.lines == [[(0.0, 94.0, "gris")], [(0.0, 94.0, "bleu")]] and prefet.text == "188 / 188"
    assert ville.lines == [[(0.0, 18.5, "gris")], [(0.0, 15.0, "rouge")]] and ville.text == "30 / 37"  # a gap: red
    assert ville.alert and not prefet.alert

    qpv = qpv_chart(pd.DataFrame({"reservataire": ["A", "B"], "hors_qpv": [3, 0], "qpv": [1, 0]}))
    assert qpv.bars[0].lines == [[(0.0, 75.0, "bleu"), (75.0, 25.0, "orange")]] and qpv.bars[0].text == "75 % hors QPV"
    assert qpv.bars[1].text == "aucun logement"

    # 40 rules: the 30 closest to their minimum, the violated one first whatever its room
    shares = pd.DataFrame({"libelle": [f"règle {k}" for k in range(40)], "part_prevue": [0.3 + k / 100 for k in range(40)],
                           "part_min": [0.25] * 40, "statut": ["tenue"] * 39 + ["violee"]})
    mix = mixity_chart(shares)
    assert len(mix.bars) == 30 and mix.bars[0].label == "règle 39" and mix.bars[0].lines[0][0][2] == "rouge"
    assert mix.bars[0].alert and not mix.bars[1].alert
    assert mix.bars[1].marker == 25.0 and mix.bars[1].text == "30 % (min. 25 %)" and "règle 30" not in \
        [b.label for b in mix.bars]

    communes = pd.DataFrame({"libelle": [f"C{k}" for k in range(35)], "logements": list(range(1, 36)),
                             "attributions_prevues": [k / 2 for k in range(1, 36)], "adequation": [0.5] * 35})
    com = communes_chart(communes)
    assert len(com.bars) == 30 and com.bars[0].label == "C34" and "30 communes au plus fort flux sur 35" in com.title


def test_the_page_draws_the_target_chart_of_the_plan(surcontraint):
    result, explanation = surcontraint
    page = rapport_html(result, explanation)
    row = re.search(r'<span class="bar-label">Ville de Dunkerque</span>(.*?)</div>', page).group(1)
    assert '<span class="bar-text">5 / 5</span>' in row and 'class="bleu"' in row
    # the CIA's Q1 hors QPV, not held: 0 % of 25 %, a bar of width 0 whose figure is in red
    q1 = re.search(r'<span class="bar-label">CIA : 1er quartile hors QPV[^<]*</span>(.*?)</div>', page).group(1)
    assert '<span class="bar-text alert">0 % (min. 25 %)</span>' in q1 and 'class="rouge" style="left:0.0%;width:0.0%"' in q1
