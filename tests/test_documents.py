"""Documents a bailleur sends as they are: one annex per réservataire (annexes/), the note for the
State (note_etat.html and the sheet « Note État »), workbooks that print (A4 landscape, fitted width,
header repeated), values rounded at writing, sheet names shortened by meaning."""

from __future__ import annotations

import html
import re

import pandas as pd
import pytest
from openpyxl import load_workbook

from flux_opt import pipeline
from flux_opt.report.outputs import write_run
from flux_opt.report.annexes import file_names, slug
from flux_opt.report.tables import Share, Table
from flux_opt.report.workbook import sheet_names, workbook_bytes

from conftest import EXEMPLE


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The example's plan written by the pipeline, as `flux-opt plan` does (analysis without rule costs)."""
    out = tmp_path_factory.mktemp("plan")
    done = pipeline.run_path(EXEMPLE, pipeline.PlanOptions(analysis=True, rule_costs=False, conformity=True))
    write_run(done, out)
    return done, out


def _texts(path) -> list[str]:
    book = load_workbook(path)
    return [str(c) for sheet in book for row in sheet.iter_rows(values_only=True) for c in row if c is not None]


def test_one_annex_per_reservataire_named_by_its_name(written):
    done, out = written
    noms = done.result.noms
    files = sorted(p.name for p in (out / "annexes").iterdir())
    expected = file_names({rid: noms.reservataire(rid) for rid in done.result.objectifs["reservataire"]})
    assert files == sorted([f"{n}.html" for n in expected.values()] + [f"{n}.xlsx" for n in expected.values()])
    assert expected["prefet_agents"] == "prefet-du-nord-agents-civils-et-militaires-de-l-etat"
    assert expected["mel"] == "metropole-europeenne-de-lille"
    assert all(re.fullmatch(r"[a-z0-9-]+\.(html|xlsx)", f) for f in files)


def test_an_annex_holds_only_its_reservataire(written):
    done, out = written
    noms, plan = done.result.noms, done.result.plan
    names = {rid: noms.reservataire(rid) for rid in done.result.objectifs["reservataire"]}
    files = file_names(names)
    for rid, name in names.items():
        page = html.unescape((out / "annexes" / f"{files[rid]}.html").read_text(encoding="utf-8"))
        cells = _texts(out / "annexes" / f"{files[rid]}.xlsx")
        book_text = "\n".join(cells)
        for other, other_name in names.items():
            if other == rid or other_name in name:
                continue
            assert other_name not in page, (rid, other_name)
            assert other_name not in book_text, (rid, other_name)
        assert name in page and name in book_text
        for word in ("adéquation", "solveur", "optimal", "score", "vivier"):  # nothing about the optimiser
            assert word not in page.lower() and word not in book_text.lower(), (rid, word)
        # its objective, the year, the bailleur, the legal basis
        target = int(done.result.objectifs.set_index("reservataire").at[rid, "cible"])
        assert f"Objectif de l'année : {target} logements" in cells
        assert "Année : 2027" in cells and "Bailleur : Habitat Flandre Métropole (fictif)" in cells
        assert any(c.startswith("Base légale : ") and "CCH" in c for c in cells)


def test_annex_totals_are_the_plan_and_print_on_a4_landscape(written):
    done, out = written
    noms, flux = done.result.noms, done.result.resume["flux"]
    files = file_names({rid: noms.reservataire(rid) for rid in done.result.objectifs["reservataire"]})
    per_reservataire = done.result.plan.groupby("reservataire")["logements"].sum()
    assert per_reservataire.sum() == flux
    for rid, n in per_reservataire.items():
        book = load_workbook(out / "annexes" / f"{files[rid]}.xlsx")
        sheet = book.worksheets[0]
        rows = list(sheet.iter_rows(values_only=True))
        head = next(i for i, r in enumerate(rows) if r[0] == "Commune")
        columns = list(rows[head])
        assert columns[:3] == ["Commune", "QPV", "Financement"] and columns[-2:] == ["Total", "% du flux"]
        lines, total = rows[head + 1:-1], rows[-1]
        assert total[0] == "Total" and total[columns.index("Total")] == n  # its plan.csv dwellings
        assert sum(r[columns.index("Total")] for r in lines) == n
        assert total[-1] == pytest.approx(round(n / flux, 4))  # « % du flux », stored as a share
        assert sheet.cell(len(rows), 1).font.b  # the bold total line
        typologies = columns[3:-2]
        for r in lines:  # integers, and each line's total is the sum of its typologies
            assert all(isinstance(v, int) for v in r[3:-1]) and sum(r[3:-2]) == r[-2]
            assert r[1] in ("QPV", "hors QPV") and not re.fullmatch(r"\d{5}", str(r[0]))  # names, not codes
        assert all(re.fullmatch(r"T\d\+?", t) for t in typologies)
        setup = sheet.page_setup
        assert setup.orientation == "landscape" and setup.paperSize == 9
        assert sheet.sheet_properties.pageSetUpPr.fitToPage and setup.fitToWidth in (None, 1) \
            and setup.fitToHeight == 0
        assert sheet.print_title_rows == f"${head + 1}:${head + 1}"  # the header row on every page
        page = (out / "annexes" / f"{files[rid]}.html").read_text(encoding="utf-8")
        assert "size:A4 landscape" in page and 'class="num total"' in page


def test_file_names_are_safe_and_unique_whatever_the_names():
    names = file_names({"a": "../../etc/passwd", "b": "Préfet", "c": "PRÉFET", "d": "***", "e": "", "f": "x" * 300})
    assert names["a"] == "etc-passwd"
    assert names["b"] == "prefet" and names["c"] == "prefet-2"
    assert names["d"] == "reservataire" and names["e"] == "reservataire-2"
    assert len(names["f"]) <= 80 and len(set(names.values())) == len(names)
    assert slug("Ville d'Œuvre / Saint-Étienne") == "ville-d-uvre-saint-etienne"


def test_note_for_the_state_shows_each_rule_its_figure_and_article(written):
    done, out = written
    page = (out / "note_etat.html").read_text(encoding="utf-8")
    conformite = done.conformite
    row = conformite.set_index("regle").loc["plafond_prefet"]
    assert "Plafond du contingent préfectoral" in page and row["limite"] in page  # ≤ 113 (30 % de 379, au plus)
    assert f"{int(row['valeur'])} logements" in page and "CCH R.441-5-2" in page
    agents = conformite.set_index("regle").loc["plafond_agents"]
    assert agents["limite"] in page and "Plafond des agents de l&#39;État" in page
    for words in ("Part préfectorale hors QPV", "Taux préfectoral uniforme par commune", "13 communes sur 13",
                  "Plafond des collectivités d&#39;un territoire", "CCH R.441-5",
                  "territoire de Métropole européenne de Lille (collectivités ensemble)",
                  "CIA : 1er quartile hors QPV", "CCH L.441-1 (CIA)", "Publics prioritaires",
                  "Mutations internes", "Total des exclusions (B)",
                  "Plan conforme : les 40 contrôles légaux sont respectés."):
        assert words in page, words
    assert "prefet_agents" not in page and "cia_hors_qpv_q1" not in page  # names, not codes
    # the same rules in the workbook's sheet « Note État », right after the synthesis
    book = load_workbook(out / "rapport.xlsx")
    assert book.sheetnames[:2] == ["Synthèse", "Note État"]
    cells = [c for r in book["Note État"].iter_rows(values_only=True) for c in r if c is not None]
    assert "Verdict : Plan conforme : les 40 contrôles légaux sont respectés." in cells
    assert row["limite"] in cells and "Plafond du contingent préfectoral" in cells


def test_a_failed_rule_makes_the_note_say_non_conforme(written):
    from flux_opt.report.note_etat import note_document

    done, _ = written
    broken = done.conformite.copy()
    broken.loc[broken["regle"] == "plafond_prefet", ["valeur", "respectee"]] = [120.0, "non"]
    note = note_document(done.result, broken, done.flux.exclusions)
    assert dict(note.facts)["Verdict"] == "Plan NON conforme : 1 contrôle(s) sur 40 non respecté(s)."
    lines = note.tables[0].frame.set_index("Règle")
    assert lines.at["Plafond du contingent préfectoral", "Respectée"] == "NON"
    assert lines.at["Plafond du contingent préfectoral", "Chiffre du plan"] == "120 logements"


def test_workbook_rounds_at_writing_and_prints_every_sheet(tmp_path):
    noisy = pd.DataFrame({"Libellé": ["a", "b"], "Valeur": [4.898572000000001, 347.5609], "Adéquation": [0.436912, 1.0],
                          "Mixte": pd.Series([Share(0.917), 12.0], dtype=object)})
    path = tmp_path / "t.xlsx"
    path.write_bytes(workbook_bytes([Table("Feuille", "Titre", noisy), Table("Autre", "Autre", noisy)]))
    book = load_workbook(path)
    sheet = book["Feuille"]
    assert [c.value for c in sheet["B"]][2:] == [4.9, 347.56]  # title, header, then the values
    assert sheet["C3"].value == 0.4369 and sheet["C3"].number_format == "0.0%"
    assert sheet["D3"].number_format == "0.0%" and sheet["D3"].value == 0.917
    assert sheet["D4"].value == 12 and sheet["D4"].number_format == "#,##0"
    for s in book:
        assert s.page_setup.orientation == "landscape" and s.print_title_rows == "$2:$2"


def test_sheet_names_are_short_unique_and_meaningful():
    names = sheet_names(["Annexe Métropole européenne de Lille", "Mixité dans les EPCI dotés d'une CIA",
                         "Synthèse", "SYNTHÈSE", "x" * 40, "Règles: [a/b]*?", "  Espaces  "])
    assert all(len(n) <= 31 and n == n.strip() for n in names)
    assert len({n.lower() for n in names}) == len(names)
    assert names[0] == "Annexe Métropole europ. Lille" or names[0].startswith("Annexe Métropo")
    assert names[1] == "Mixité EPCI dotés CIA"
    assert names[2:4] == ["Synthèse", "SYNTHÈSE (2)"]
    assert not re.search(r"[\[\]:*?/\\]", names[5]) and names[6] == "Espaces"


def test_a_reservataire_without_dwellings_gets_an_annex_saying_none():
    from flux_opt.plan.names import Names
    from flux_opt.report.annexes import grid

    empty = pd.DataFrame(columns=["commune", "qpv", "typologie", "financement", "logements"])
    frame = grid(empty, "logements", Names(), 379)
    assert list(frame["Commune"]) == ["Total"] and frame["Total"].iloc[-1] == 0 and frame["% du flux"].iloc[-1] == 0
    assert workbook_bytes([Table("Logements", "Logements", frame, total=True)])[:2] == b"PK"  # a valid .xlsx


def test_a_new_plan_in_the_same_folder_replaces_the_annexes_whole(written, tmp_path):
    """An annex left by an earlier plan (a réservataire since renamed) would be sent by mistake."""
    done, _ = written
    out = tmp_path / "plan"
    (out / "annexes").mkdir(parents=True)
    (out / "annexes" / "ancien-reservataire.html").write_text("ancien", encoding="utf-8")
    write_run(done, out)
    assert not (out / "annexes" / "ancien-reservataire.html").exists()
    assert len(list((out / "annexes").iterdir())) == 2 * len(done.result.objectifs)
    assert not [p for p in out.iterdir() if p.name.startswith(".flux-opt-")]  # no staging left behind
