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


# Hand-solved case shared by the model, explanation and baseline tests: two communes of 10
# hors-QPV T2; préfet target 30 % of 20 = 6 with candidates only in Lille; the uniformity rule
# (±1 around 3 per commune) forces ≥ 2 préfet dwellings in Roubaix, where nobody waits for them.
UNIFORMITY = dict(
    toml="""
    [instance]
    nom = "t"
    bailleur = "B"
    departement = "59"
    annee = 2027
    [regles]
    prioritaires_min = 0
    prefet_prioritaires = 0
    # Figures solved by hand with the transport demand model (every candidate accepts): these
    # tests are about the uniformity rule on dwellings, which does not depend on the demand model.
    [demande]
    modele = "transport"
    """,
    parc="""
    commune,epci,qpv,typologie,financement,logements,liberations
    59350,200093201,non,T2,PLUS,100,10
    59512,200093201,non,T2,PLUS,100,10
    """,
    reservataires="""
    id,nom,type
    prefet,Préfet,prefet
    bailleur,Bailleur,bailleur
    """,
    demande="""
    reservataire,commune,epci,typologie,quartile,prioritaire,demandeurs
    prefet,59350,,T2,q1,oui,100
    bailleur,,200093201,T2,q234,non,100
    """)


def transport_copy(source: Path, folder: Path) -> Path:
    """A copy of the instance folder `source` with the transport demand model (its instance.toml
    has one [demande] section)."""
    import shutil

    shutil.copytree(source, folder)
    toml = folder / "instance.toml"
    text = toml.read_text(encoding="utf-8")
    assert text.count("[demande]\n") == 1
    toml.write_text(text.replace("[demande]\n", '[demande]\nmodele = "transport"\n'), encoding="utf-8")
    return folder


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


def stock_of(path: Path):
    """An instance read as `flux-opt convertir` reads it (the pipeline's load stage, conversion tables)."""
    from flux_opt.pipeline import load
    from flux_opt.stock.instance import REQUIRED_FOR_CONVERSION

    return load(path, required=REQUIRED_FOR_CONVERSION, targets=False)


@pytest.fixture
def interrupted_write(tmp_path, monkeypatch):
    """An output folder holding an earlier plan, and a way to make the plan writer fail right after it
    wrote its first file: `out, interrupt = interrupted_write; interrupt(lambda path: ...)`. The tests of a
    full disk and of a SIGTERM check that the folder is then left as it was."""
    from flux_opt.report import exports

    out = tmp_path / "out"
    out.mkdir()
    (out / "plan.csv").write_text("ancien plan\n", encoding="utf-8")
    real = exports.write_csv

    def interrupt(failure):
        def failing(frame, path):
            real(frame, path)
            failure(path)

        monkeypatch.setattr(exports, "write_csv", failing)

    return out, interrupt
