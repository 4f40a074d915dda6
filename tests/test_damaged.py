"""Every failure is French and named, exit 2: damaged plan folders (truncated resume.json or
explication.json, empty plan.csv), a bad scenario TOML, NaN in a sweep, oversized CSV fields and
a full disk — never « Erreur interne », never the English of a library."""

from __future__ import annotations

import contextlib
import errno
import io
import shutil
import sys
from pathlib import Path

import pytest

from conftest import EXEMPLE
from flux_opt.year.journal.storage import COLONNES
from journal_fixtures import ecrire_plan

ENGLISH = ("Erreur interne", "Traceback", "No columns", "Expected", "Unterminated", "field larger", "NaN",
           "JSONDecodeError", "No space")


def run(*args) -> tuple[int, str]:
    """A command through the real entry point (exit code, what it printed at 200 columns)."""
    from flux_opt.cli.main import main

    out, argv = io.StringIO(), sys.argv
    sys.argv = ["flux-opt", *map(str, args)]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            main()
    except SystemExit as exit_:
        return int(exit_.code or 0), " ".join(out.getvalue().split())
    finally:
        sys.argv = argv
    return 0, " ".join(out.getvalue().split())


def refused(*args, words: str | tuple[str, ...]) -> None:
    code, text = run(*args)
    assert code == 2 and all(w in text for w in ([words] if isinstance(words, str) else words)), text
    assert not any(english in text for english in ENGLISH), text


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one message, one line of the problems table


@pytest.fixture
def plan(tmp_path) -> Path:
    folder = ecrire_plan(tmp_path / "plan")
    (tmp_path / "journal.csv").write_text(",".join(COLONNES) + "\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize("name", ["resume.json", "explication.json"])
def test_a_truncated_json_of_a_plan_folder_is_named(plan, name):
    (plan / "explication.json").write_text('{"raisons": [], "couts": []}', encoding="utf-8")
    (plan / name).write_text('{"flux": 12, "statut": "opti', encoding="utf-8")
    words = (f"plan/{name} │ 1 │", "JSON illisible (fichier tronqué ou abîmé")
    refused("expliquer", plan, words=words)
    if name == "resume.json":
        journal = plan.parent / "journal.csv"
        refused("suivi", plan, journal, words=words)
        refused("evaluer", plan, "-n", 2, words=words)
        refused("journal", "ajouter", journal, "liberation", "--plan", plan, "--commune", "59350", "--qpv", "non",
                "--typologie", "T3", "--financement", "PLUS", words=words)


def test_an_empty_plan_csv_is_named(plan):
    (plan / "plan.csv").write_text("", encoding="utf-8")
    refused("suivi", plan, plan.parent / "journal.csv", "--date", "2027-06-30",
            words="plan.csv : fichier vide : l'en-tête manque")
    refused("evaluer", plan, "--instance", EXEMPLE, "-n", 2, words="plan.csv : fichier vide : l'en-tête manque")


def test_a_bad_scenario_toml_and_a_nan_sweep_are_french(tmp_path):
    bad = tmp_path / "s.toml"
    bad.write_text('nom = "x"\n[regles\n', encoding="utf-8")
    refused("comparer", EXEMPLE, bad, "--sortie", tmp_path / "c",
            words="TOML illisible : « ] » attendu à la fin du nom de section (ligne 2, colonne 8)")
    bad.write_bytes(b'nom = "\xff"\n')
    refused("comparer", EXEMPLE, bad, "--sortie", tmp_path / "c", words="fichier de scénario illisible")
    for value in ("nan:0.3:0.1", "0.2:inf:0.1", "0.2:0.3:nan"):
        refused("comparer", EXEMPLE, "--balayer", f"prefet_taux={value}", "--sortie", tmp_path / "c",
                words="nombres finis attendus (ni nan ni inf)")
    assert not (tmp_path / "c").exists()


def test_an_oversized_csv_field_is_named(tmp_path, plan):
    folder = shutil.copytree(EXEMPLE, tmp_path / "i")
    with open(folder / "parc.csv", "a", encoding="utf-8") as f:
        f.write('59350,"' + "x" * 200_000 + "\n")
    refused("verifier", folder, words=("│ parc.csv │ 397 │", "cellule de plus de 131 072 caractères"))
    journal = plan.parent / "journal.csv"
    journal.write_text(",".join(COLONNES) + '\n2027-01-02,liberation,"' + "x" * 200_000 + "\n", encoding="utf-8")
    refused("suivi", plan, journal, words="ligne 2 : cellule de plus de 131 072 caractères")


def test_a_full_disk_is_french_and_leaves_the_output_as_it_was(interrupted_write):
    out, interrupt = interrupted_write

    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    interrupt(full)
    refused("plan", "tests/data/mini", "--sortie", out, "--sans-analyse", words="Plus de place sur le disque : ")
    assert [p.name for p in out.iterdir()] == ["plan.csv"]  # no half-written file, no staging folder
    assert (out / "plan.csv").read_text(encoding="utf-8") == "ancien plan\n"


def test_a_flood_of_problems_shows_the_first_ones_and_counts_the_rest():
    from rich.console import Console

    from flux_opt.errors import InputProblem
    from flux_opt.report.terminal import MAX_PROBLEMS_SHOWN, problems_table

    problems = [InputProblem("parc.csv", k + 2, "commune", "segment en double") for k in range(100_000)]
    problems.append(InputProblem("demande.csv", 3, "typologie", "T9 inconnue"))
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(problems_table(problems))
    text = " ".join(console.export_text().split())
    assert "100 001 problème(s)" in text.replace("\u202f", " ")
    assert text.count("segment en double") == MAX_PROBLEMS_SHOWN
    assert "et 99 940 autre(s) problème(s) dans ce fichier" in text.replace("\u202f", " ")
    assert "demande.csv │ … │ │ et 1 autre(s) problème(s)" in text
