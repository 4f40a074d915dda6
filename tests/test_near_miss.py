"""Near misses are never silent, damaged workbooks are refused in French: an unknown file or sheet
gets the closest expected name (an error when the plan would change), formulas without a
computed value, duplicate parameter keys and numbers written 1_0 are refused with file, line and
field; a corrupt sheet or shared string is named, never « Erreur interne »."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from conftest import EXEMPLE
from flux_opt.errors import InvalidInput
from flux_opt.input.schema import load_instance

WORKBOOK = EXEMPLE.with_suffix(".xlsx")


def refusal(path: Path) -> str:
    with pytest.raises(InvalidInput) as caught:
        load_instance(path)
    return " | ".join(str(p) for p in caught.value.problems)


@pytest.mark.parametrize("name", ["Exclusions.csv", "exclusion.csv", "exclusions .csv", "EXCLUSIONS.CSV"])
def test_a_near_miss_of_a_missing_table_file_is_an_error(tmp_path, name):
    folder = shutil.copytree(EXEMPLE, tmp_path / "i")
    (folder / "exclusions.csv").rename(folder / name)
    assert f"fichier inconnu : « {name} » → exclusions.csv ?" in refusal(folder)


def test_an_unknown_file_beside_its_table_is_a_warning(tmp_path):
    folder = shutil.copytree(EXEMPLE, tmp_path / "i")
    shutil.copy(folder / "exclusions.csv", folder / "exclusion.csv")
    (folder / "notes.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (folder / "rotation.csv").write_text("commune\n59350\n", encoding="utf-8")  # written by importer rpls
    warnings = [str(w) for w in load_instance(folder).avertissements]
    assert "exclusion.csv : fichier inconnu, ignoré (« exclusion.csv » → exclusions.csv ?)" in warnings
    assert "notes.csv : fichier inconnu, ignoré" in warnings
    assert not [w for w in warnings if "rotation.csv" in w]


def _edit_workbook(tmp_path: Path, change) -> Path:
    book = openpyxl.load_workbook(WORKBOOK)
    change(book)
    path = tmp_path / "classeur.xlsx"
    book.save(path)
    return path


def test_a_near_miss_sheet_is_an_error_an_unknown_one_a_warning(tmp_path):
    path = _edit_workbook(tmp_path, lambda b: setattr(b["exclusions"], "title", "exclusion"))
    assert "classeur.xlsx, feuille exclusion : feuille inconnue : « exclusion » → exclusions ?" in refusal(path)
    path = _edit_workbook(tmp_path, lambda b: b.create_sheet("Notes"))
    assert "classeur.xlsx, feuille Notes : feuille inconnue, ignorée" in [str(w) for w in load_instance(path).avertissements]


def test_a_formula_without_its_computed_value_is_refused_with_its_cell(tmp_path):
    def formula(book):
        book["parc"]["I2"] = "=2*2"  # logements, saved by a script: no cached value
        book["parametres"]["B2"] = '="Exemple"'
    text = refusal(_edit_workbook(tmp_path, formula))
    assert "classeur.xlsx, feuille parc, ligne 2, champ « I2 » : formule sans valeur calculée (=2*2)" in text
    assert "feuille parametres, ligne 2, champ « B2 »" in text


def test_a_duplicate_parameter_key_in_the_sheet_is_refused(tmp_path):
    def duplicate(book):
        sheet = book["parametres"]
        sheet.append(["regles.prefet_taux", 0.10])
        sheet.append(["regles.prefet_taux", 0.20])
    text = refusal(_edit_workbook(tmp_path, duplicate))
    assert re.search(r"feuille parametres, ligne \d+, champ « regles.prefet_taux » : clé « regles.prefet_taux » "
                     r"en double \(déjà ligne \d+\)", text), text


@pytest.mark.parametrize("value", ["1_0", "1_000", " 2_5,5"])
def test_a_number_written_with_an_underscore_is_refused(tmp_path, value):
    folder = shutil.copytree(EXEMPLE, tmp_path / "i")
    lines = (folder / "parc.csv").read_text(encoding="utf-8").splitlines()
    cells = lines[1].split(",")
    cells[8] = f'"{value}"'  # logements
    lines[1] = ",".join(cells)
    (folder / "parc.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert f"parc.csv, ligne 2, champ « logements » : nombre mal écrit « {value.strip()} »" in refusal(folder)
    def tolerance(book):
        row = next(r for r in book["parametres"].iter_rows() if r[0].value == "regles.prefet_uniformite_tolerance")
        row[1].value = value
    assert "champ « regles.prefet_uniformite_tolerance » : nombre mal écrit" in refusal(_edit_workbook(tmp_path, tolerance))


def _damage(tmp_path: Path, change) -> Path:
    """A copy of a workbook saved with shared strings, one of its parts rewritten by `change`."""
    import xlsxwriter

    source = tmp_path / "partage.xlsx"  # xlsxwriter stores text as shared strings, as Excel does
    book = xlsxwriter.Workbook(source)
    for sheet in openpyxl.load_workbook(WORKBOOK):
        out = book.add_worksheet(sheet.title)
        for i, row in enumerate(sheet.iter_rows(values_only=True)):
            out.write_row(i, 0, row)
    book.close()
    target = tmp_path / "abime.xlsx"
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            new.writestr(item, change(item.filename, old.read(item.filename)))
    return target


def test_a_corrupt_sheet_or_shared_string_is_named_in_french(tmp_path):
    sheet = _damage(tmp_path, lambda n, data: data[: len(data) // 2] if n == "xl/worksheets/sheet2.xml" else data)
    assert "abime.xlsx, feuille parc : feuille endommagée, illisible" in refusal(sheet)
    strings = _damage(tmp_path, lambda n, data: re.sub(rb'(t="s"[^>]*><v>)\d+', rb"\g<1>999999", data, count=1)
                      if n == "xl/worksheets/sheet2.xml" else data)
    assert "abime.xlsx, feuille parc : feuille endommagée" in refusal(strings)
    (tmp_path / "vide.xlsx").write_bytes(b"PK\x03\x04 pas un classeur")
    assert "vide.xlsx : classeur illisible (pas un .xlsx valide" in refusal(tmp_path / "vide.xlsx")


def test_a_key_given_twice_to_orienter_is_refused():
    from flux_opt.year.journal.events import EvenementRefuse
    from flux_opt.year.preorientation import read_logement

    with pytest.raises(EvenementRefuse, match=r"« commune » donné deux fois \(59350 puis 59512\)"):
        read_logement("commune=59350,typologie=T3,qpv=non,financement=PLUS,commune=59512")


def test_a_journal_event_in_a_commune_outside_the_plan_is_refused(tmp_path):
    from typer.testing import CliRunner

    from flux_opt.cli.main import app
    from journal_fixtures import ecrire_plan

    plan, journal = ecrire_plan(tmp_path / "plan"), tmp_path / "j.csv"
    common = ["journal", "ajouter", str(journal), "liberation", "--plan", str(plan), "--logement-id", "L1",
              "--date", "07/01/2027", "--qpv", "non", "--typologie", "T3", "--financement", "PLUS", "--commune"]
    refused = CliRunner().invoke(app, [*common, "59999"])
    assert refused.exit_code == 2 and "commune 59999 inconnue du plan et du parc" in " ".join(refused.output.split())
    assert not journal.exists()
    assert CliRunner().invoke(app, [*common, "59350"]).exit_code == 0


@pytest.mark.parametrize("damage", [None, ("logements", "-3"), ("typologie", "T9"), ("commune", "5935"),
                                    ("taux_rotation", "nan"), ("qpv", "peut-être"), ("sans", "liberations")])
def test_large_tables_checked_by_column_say_exactly_what_rows_say(tmp_path, monkeypatch, damage):
    """The column-wise check of large tables gives the same rows, or the same messages, as pydantic."""
    from flux_opt.input import schema

    folder = shutil.copytree(EXEMPLE, tmp_path / "i")
    if damage and damage[0] == "sans":  # an optional column left out: its default
        parc = pd.read_csv(folder / "parc.csv", dtype=str, keep_default_na=False)
        parc.drop(columns=[damage[1], "commune_nom"]).to_csv(folder / "parc.csv", index=False)
    elif damage:
        text = (folder / "parc.csv").read_text(encoding="utf-8").splitlines()
        header = text[0].split(",")
        for k in (3, 40):
            cells = text[k].split(",")
            cells[header.index(damage[0])] = damage[1]
            text[k] = ",".join(cells)
        (folder / "parc.csv").write_text("\n".join(text) + "\n", encoding="utf-8")

    def outcome():
        try:
            instance = load_instance(folder)
            frames = [instance.table(t) for t in ("parc", "demande", "reservataires", "objectifs")]
            return [f.astype(object).where(f.notna(), None).to_dict("records") for f in frames]
        except InvalidInput as exc:
            return [str(p) for p in exc.problems]

    monkeypatch.setattr(schema, "FAST_FROM", 10**9)
    by_row = outcome()
    monkeypatch.setattr(schema, "FAST_FROM", 0)
    assert outcome() == by_row
