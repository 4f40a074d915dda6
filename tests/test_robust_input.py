"""Hostile but realistic input (issue 14): what a French Excel writes is read; anything else is a
French refusal (exit 2) naming file, line and field — never a crash, a signal or a silent misreading."""

from __future__ import annotations

import csv
import fcntl
import os
import shutil
import signal
import sys

import pytest
from typer.testing import CliRunner

from flux_opt.cli.main import app, main
from flux_opt.errors import InvalidInput
from flux_opt.input.schema import load_instance

from conftest import EXEMPLE, MINI

TABLES = ("parc", "exclusions", "reservataires", "demande", "objectifs", "mixite", "conventions")


@pytest.fixture
def mini(tmp_path):
    shutil.copytree(MINI, tmp_path / "mini")
    return tmp_path / "mini"


def rewrite(folder, name, encoding="utf-8", delimiter=",", decimal=".", extra_rows=()):
    """Save `name` as another tool would (encoding, separator, decimal mark, added rows)."""
    path = folder / name
    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    number = lambda c: c.replace(".", decimal) if c.replace(".", "", 1).isdigit() else c  # noqa: E731
    with open(path, "w", encoding=encoding, newline="") as f:
        csv.writer(f, delimiter=delimiter, lineterminator="\r\n").writerows(
            [rows[0]] + [[number(c) for c in r] for r in rows[1:]] + list(extra_rows))


def problems(folder):
    with pytest.raises(InvalidInput) as error:
        load_instance(folder)
    return [str(p) for p in error.value.problems]


@pytest.mark.parametrize("encoding,delimiter,decimal", [
    ("utf-8-sig", ",", "."), ("cp1252", ";", ","), ("utf-8", ";", ","), ("cp1252", ",", ".")])
def test_french_excel_exports_read_as_the_original(tmp_path, encoding, delimiter, decimal):
    folder = tmp_path / "exemple"
    shutil.copytree(EXEMPLE, folder)
    for name in TABLES:
        width = len((folder / f"{name}.csv").read_text(encoding="utf-8").splitlines()[0].split(","))
        rewrite(folder, f"{name}.csv", encoding, delimiter, decimal, extra_rows=[[""] * width, [""] * width])
    original, exported = load_instance(EXEMPLE), load_instance(folder)
    for name in TABLES:
        assert getattr(exported, name) == getattr(original, name), name


def test_blank_rows_are_skipped_and_lines_stay_true(mini):
    text = (mini / "parc.csv").read_text(encoding="utf-8").splitlines()
    text[2:2] = [",,,,,,", "   ", ""]  # three blank lines before the second segment
    (mini / "parc.csv").write_text("\n".join(text).replace("59350,200093201,non,T3,PLUS,300", "59350,200093201,non,T3,PLUS,-3")
                                   + "\n", encoding="utf-8")
    assert [p for p in problems(mini) if "ligne 6, champ « logements »" in p], problems(mini)


@pytest.mark.parametrize("content,words", [
    ("commune,epci\n".encode("utf-16"), "UTF-16"),
    (b"commune\tepci\tqpv\n59350\t200093201\tnon\n", "tabulation"),
    (b"\x81\x8d\x8f\x90\x9d", "ni UTF-8 ni Windows-1252"),
    (b"", "fichier vide"),
    (b'commune,epci\n"59350,200093201\n', "ligne illisible"),
])
def test_unreadable_csv_is_a_french_refusal(mini, content, words):
    (mini / "parc.csv").write_bytes(content)
    assert any(p.startswith("parc.csv") and words in p for p in problems(mini)), problems(mini)


def test_unquoted_decimal_comma_in_a_comma_file_is_refused_not_shifted(mini):
    text = (mini / "parc.csv").read_text(encoding="utf-8")
    (mini / "parc.csv").write_text(text + "59350,200093201,oui,T4,PLUS,10,0,5\n", encoding="utf-8")
    assert any("cellules pour" in p and "ligne" in p for p in problems(mini)), problems(mini)


@pytest.mark.parametrize("value,words", [("inf", "reçu : « inf »"), ("nan", "valeurs admises"),
                                          ("1e20", "de 0 à 1\u202f000\u202f000"), ("-1", "valeurs admises")])
def test_every_number_is_finite_and_plausible(mini, value, words):
    text = (mini / "parc.csv").read_text(encoding="utf-8")
    (mini / "parc.csv").write_text(text.replace("59350,200093201,non,T3,PLUS,300", f"59350,200093201,non,T3,PLUS,{value}", 1),
                                   encoding="utf-8")
    assert any("champ « logements »" in p and words in p for p in problems(mini)), problems(mini)


def test_misspelt_data_column_is_an_error_with_the_closest_name(tmp_path):
    folder = tmp_path / "exemple"
    shutil.copytree(EXEMPLE, folder)
    text = (folder / "parc.csv").read_text(encoding="utf-8")
    (folder / "parc.csv").write_text(text.replace("taux_rotation", "Taux rotation", 1), encoding="utf-8")
    assert any("« Taux rotation » → taux_rotation ?" in p for p in problems(folder)), problems(folder)


def test_unrelated_extra_column_is_a_warning_and_the_plan_goes_on(mini, tmp_path):
    text = (mini / "parc.csv").read_text(encoding="utf-8").splitlines()
    (mini / "parc.csv").write_text("\n".join([text[0] + ",gardien"] + [t + ",M. X" for t in text[1:]]) + "\n",
                                   encoding="utf-8")
    instance = load_instance(mini)
    assert [str(w) for w in instance.avertissements] == ["parc.csv, ligne 1, champ « gardien » : colonne inconnue, ignorée"]
    result = CliRunner().invoke(app, ["plan", str(mini), "--sortie", str(tmp_path / "out")])
    assert result.exit_code in (0, 3) and "Avertissement" in result.output


def test_implausible_values_are_warnings(mini):
    text = (mini / "parc.csv").read_text(encoding="utf-8")
    (mini / "parc.csv").write_text(text.replace("59350,200093201,non,T3,PLUS,300,30", "59350,200093201,non,T3,PLUS,300,900", 1),
                                   encoding="utf-8")
    warnings = [str(w) for w in load_instance(mini).avertissements]
    assert warnings == ["parc.csv, ligne 3, champ « liberations » : 900 libérations prévues pour 300 logements : à vérifier"]


def test_toml_errors_are_in_french(mini):
    (mini / "instance.toml").write_text('[instance]\nnom = "x\n', encoding="utf-8")
    assert problems(mini) == ["instance.toml : TOML illisible : guillemet non fermé avant la fin de ligne (ligne 2, colonne 9)"]


def test_value_lists_are_in_french(mini):
    text = (mini / "parc.csv").read_text(encoding="utf-8")
    (mini / "parc.csv").write_text(text.replace(",T3,", ",T9,", 1), encoding="utf-8")
    assert any("'T6+' ou " not in p and "T6+' ou " in p or " ou 'T6+'" in p for p in problems(mini)), problems(mini)


def test_zero_flux_is_a_clear_refusal(mini):
    text = (mini / "parc.csv").read_text(encoding="utf-8").splitlines()
    head = text[0].split(",")
    rows = [r.split(",") for r in text[1:]]
    for r in rows:
        r[head.index("liberations")] = "0"
    (mini / "parc.csv").write_text("\n".join([text[0]] + [",".join(r) for r in rows]) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["verifier", str(mini)])
    assert result.exit_code == 2 and "flux annuel nul" in result.output


# ----------------------------------------------------------------------------- --sortie


def test_sortie_that_is_a_file_is_refused_before_the_solve(mini, tmp_path, monkeypatch):
    import flux_opt.pipeline as pipeline

    monkeypatch.setattr(pipeline, "run_path", lambda *a, **k: pytest.fail("résolu avant la vérification"))
    (tmp_path / "fichier").write_text("x", encoding="utf-8")
    for sortie in (tmp_path / "fichier", tmp_path / "fichier" / "sous-dossier"):
        result = CliRunner().invoke(app, ["plan", str(mini), "--sortie", str(sortie)], env={"COLUMNS": "250"})
        assert result.exit_code == 2 and "doit désigner un dossier" in result.output


def test_two_runs_on_one_folder_cannot_both_succeed(mini, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    handle = os.open(out, os.O_RDONLY)
    fcntl.flock(handle, fcntl.LOCK_EX)  # another run holds the folder
    try:
        result = CliRunner().invoke(app, ["plan", str(mini), "--sortie", str(out)], env={"COLUMNS": "250"})
    finally:
        os.close(handle)
    assert result.exit_code == 2 and "un autre calcul flux-opt" in result.output
    assert list(out.iterdir()) == []


def test_sigterm_while_writing_leaves_the_folder_as_it_was(mini, interrupted_write, monkeypatch):
    out, interrupt = interrupted_write
    interrupt(lambda path: os.kill(os.getpid(), signal.SIGTERM))
    monkeypatch.setattr(sys, "argv", ["flux-opt", "plan", str(mini), "--sortie", str(out)])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 128 + signal.SIGTERM
    assert [p.name for p in out.iterdir()] == ["plan.csv"]
    assert (out / "plan.csv").read_text(encoding="utf-8") == "ancien plan\n"
    assert signal.getsignal(signal.SIGTERM) is not main  # the handler is given back
