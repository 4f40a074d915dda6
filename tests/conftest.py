"""Shared helpers: write small instances in a temporary folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXEMPLE = ROOT / "instances" / "exemple"
SURCONTRAINT = ROOT / "instances" / "surcontraint"
MINI = ROOT / "tests" / "data" / "mini"

BASE_TOML = """
[instance]
nom = "test"
bailleur = "Bailleur test"
departement = "59"
annee = 2027
"""


def write_instance(folder: Path, toml: str = BASE_TOML, **tables: str) -> Path:
    """Write instance.toml and `name.csv` for each keyword (dedented CSV text)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "instance.toml").write_text(textwrap.dedent(toml), encoding="utf-8")
    for name, text in tables.items():
        (folder / f"{name}.csv").write_text(textwrap.dedent(text).strip() + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def make_instance(tmp_path):
    counter = iter(range(1000))

    def make(toml: str = BASE_TOML, **tables: str) -> Path:
        return write_instance(tmp_path / f"instance_{next(counter)}", toml, **tables)

    return make
