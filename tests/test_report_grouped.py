"""What the report computes once and reuses must stay each document's own: the annexes' grids
grouped once for all the réservataires, the footer's version read once per process, a table's
rows laid out in Python — hand-checked figures, two plans in one process, hostile names."""

from __future__ import annotations

import pandas as pd

from flux_opt.plan.names import Names
from flux_opt.report import html as report_html
from flux_opt.report.annexes import grid, grids, html_table_of
from flux_opt.report.html import Cell, HtmlTable, render
from flux_opt.report.tables import Table

NAMES = Names({"prefet": "Préfet", "al": "Action Logement", "agents": "Agents de l'État"},
              {"59350": "Lille", "59009": "Villeneuve-d'Ascq"})


def _plan(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["commune", "qpv", "typologie", "financement", "reservataire", "logements"])


PLAN = _plan([
    ("59350", "oui", "T2", "PLUS", "prefet", 3), ("59350", "non", "T3", "PLAI", "prefet", 2),
    ("59009", "non", "T2", "PLUS", "prefet", 1), ("59350", "oui", "T2", "PLUS", "prefet", 1),
    ("59350", "non", "T4", "PLS", "al", 4), ("59009", "non", "T3", "autre", "al", 0),
])


def test_grids_grouped_once_give_each_reservataire_its_own_hand_checked_grid():
    out = grids(PLAN, "logements", NAMES, 20, keys=["prefet", "al", "agents"])
    prefet = out["prefet"]
    # names sorted: Lille before Villeneuve-d'Ascq; hors QPV before QPV; only the prefet's typologies (T2, T3)
    assert prefet.columns.tolist() == ["Commune", "QPV", "Financement", "T2", "T3", "Total", "% du flux"]
    assert prefet[["Commune", "QPV", "Financement"]].values.tolist() == [
        ["Lille", "QPV", "PLUS"], ["Lille", "hors QPV", "PLAI"], ["Villeneuve-d'Ascq", "hors QPV", "PLUS"],
        ["Total", "", ""]]
    assert prefet["T2"].tolist() == [4, 0, 1, 5] and prefet["T3"].tolist() == [0, 2, 0, 2]
    assert prefet["Total"].tolist() == [4, 2, 1, 7]
    assert prefet["% du flux"].tolist() == [0.2, 0.1, 0.05, 0.35]
    al = out["al"]  # its line of 0 dwellings is not in its grid, nor the prefet's typologies
    assert al.columns.tolist() == ["Commune", "QPV", "Financement", "T4", "Total", "% du flux"]
    assert al["Total"].tolist() == [4, 4] and al["Commune"].tolist() == ["Lille", "Total"]
    agents = out["agents"]  # no dwelling: its Total line only
    assert agents.to_dict("records") == [{"Commune": "Total", "QPV": "", "Financement": "", "Total": 0,
                                          "% du flux": 0.0}]
    for rid in ("prefet", "al", "agents"):  # the same as one réservataire's grid on its own rows
        pd.testing.assert_frame_equal(out[rid], grid(PLAN.loc[PLAN["reservataire"] == rid], "logements", NAMES, 20),
                                      check_column_type=False)


def test_two_plans_in_one_process_each_get_their_own_grids():
    first = grids(PLAN, "logements", NAMES, 20, keys=["prefet"])["prefet"]
    other = _plan([("59009", "oui", "T5", "PLAI", "prefet", 6)])
    second = grids(other, "logements", NAMES, 6, keys=["prefet"])["prefet"]
    assert second["Commune"].tolist() == ["Villeneuve-d'Ascq", "Total"]
    assert second["T5"].tolist() == [6, 6] and "T2" not in second
    assert grids(PLAN, "logements", NAMES, 20, keys=["prefet"])["prefet"].equals(first)


def test_table_rows_laid_out_in_python_are_escaped_as_the_template_escapes():
    hostile = "<script>alert('x')</script> & \"Cie\""
    table = HtmlTable(["Nom", "Logements"], [[Cell(hostile), Cell("1 234", "num")], [Cell(""), Cell("0", "num pos")]])
    assert str(table.body()) == (
        "<tr><td>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;Cie&#34;</td>"
        "<td class=\"num\">1 234</td></tr>\n<tr><td></td><td class=\"num pos\">0</td></tr>\n")
    page = render("annexe.html", title="T", subtitle="S", facts=[], notes=[],
                  tables=[("Titre", table, "", False)])
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<tbody>\n<tr><td>&lt;script&gt;" in page and "</tr>\n</tbody></table>" in page


def test_an_annex_table_of_a_grid_reads_its_figures_in_french():
    table = html_table_of(Table("Logements", "Logements", grids(PLAN, "logements", NAMES, 20, keys=["prefet"])["prefet"],
                                total=True))
    assert [c.text for c in table.rows[-1]] == ["Total", "", "", "5", "2", "7", "35,0 %"]
    assert all("total" in c.css for c in table.rows[-1])


def test_the_footer_reads_the_version_once_but_the_time_at_each_page(monkeypatch):
    report_html._release.cache_clear()
    calls = []
    monkeypatch.setattr(report_html, "version", lambda name: calls.append(name) or "9.9")
    first, second = report_html._footer(), report_html._footer()
    assert calls == ["flux-opt"] and first.startswith("flux-opt 9.9 — généré le ")
    assert second.startswith("flux-opt 9.9 — généré le ")
    report_html._release.cache_clear()
