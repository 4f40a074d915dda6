"""DALO households in the journal and the bilan: a hand-counted journal gives known DALO
leases and shares beside the publics prioritaires obligation; a journal written before the
`dalo` column is still read, appended to in its own format, and still gives a bilan."""

from __future__ import annotations

import csv
import io
import math

import pandas as pd
import pytest
from typer.testing import CliRunner

from flux_opt.cli.main import app
from flux_opt.report.bilan import priorities, write_bilan
from flux_opt.year.bilan import bilan_du_plan
from flux_opt.year.conventions import Contexte, Convention
from flux_opt.year.journal.events import COLONNES, COLONNES_SANS_DALO, EvenementRefuse
from flux_opt.year.journal.storage import append_event, append_events, read_journal
from flux_opt.year.simulation import generate_events
from journal_fixtures import ecrire_plan

runner = CliRunner()

# réservataire, prioritaire, dalo of each signed lease ("" = not given)
MENAGES = [
    ("prefet", "oui", "oui"), ("prefet", "", "oui"), ("prefet", "oui", "non"), ("prefet", "non", ""),
    ("action_logement", "oui", "oui"), ("action_logement", "non", ""), ("action_logement", "non", "non"),
    ("action_logement", "", ""),
    ("ville_lille", "oui", ""), ("ville_lille", "oui", "oui"),
]
# solved by hand: leases with a known household, to prioritaires, to DALO, DALO share (nan: unknown)
ATTENDU = {
    "prefet": (4, 3, 2, 2 / 4),  # "" + dalo oui is a prioritaire; prioritaire non is not DALO
    "action_logement": (3, 1, 1, 1 / 3),  # the lease with nothing said is not counted
    "ville_lille": (2, 2, 1, math.nan),  # a prioritaire lease without the DALO flag: no share
    "bailleur": (0, 0, 0, math.nan),
}


def evenements(menages=MENAGES, avec_dalo=True):
    lignes = []
    for rang, (reservataire, prioritaire, dalo) in enumerate(menages, start=1):
        lid, jour = f"L{rang}", f"2027-03-{rang:02d}"
        lignes += [{"horodatage": jour, "evenement": "liberation", "logement_id": lid, "commune": "59350",
                    "qpv": "non", "typologie": "T3", "financement": "PLUS"},
                   {"horodatage": jour, "evenement": "proposition", "logement_id": lid, "reservataire": reservataire},
                   {"horodatage": jour, "evenement": "bail_signe", "logement_id": lid, "quartile": "q234",
                    "prioritaire": prioritaire, "dalo": dalo if avec_dalo else ""}]
    return lignes


def contexte() -> Contexte:
    def convention(rid, type_, part):
        return Convention(rid, rid, type_, "directe", 30, 3, False, part)
    conventions = {"prefet": convention("prefet", "prefet", 1.0),
                   "action_logement": convention("action_logement", "action_logement", 0.25),
                   "ville_lille": convention("ville_lille", "collectivite", 0.25),
                   "bailleur": convention("bailleur", "bailleur", 0.25)}
    return Contexte(2027, conventions, frozenset(), 0.25, 0.5, {})


@pytest.fixture
def plan(tmp_path):
    return ecrire_plan(tmp_path / "plan")


def sans_colonne_dalo(texte: str) -> str:
    """The same journal as a version from before the `dalo` column would have written it."""
    lignes = list(csv.reader(io.StringIO(texte)))
    rang = lignes[0].index("dalo")
    tampon = io.StringIO()
    csv.writer(tampon, lineterminator="\n").writerows([l[:rang] + l[rang + 1:] for l in lignes])
    return tampon.getvalue()


def test_bilan_dalo_figures_equal_a_hand_count(tmp_path, plan):
    chemin = tmp_path / "journal.csv"
    append_events(chemin, evenements())
    consolide, _ = bilan_du_plan(plan, read_journal(chemin), 2027, contexte())
    table = consolide.targets.set_index("reservataire")
    for r, (connus, prioritaires, dalo, part_dalo) in ATTENDU.items():
        assert table.at[r, "baux_menage_connu"] == connus, r
        assert table.at[r, "baux_dalo"] == dalo, r
        if connus:
            assert table.at[r, "part_prioritaires"] == pytest.approx(prioritaires / connus), r
        assert (math.isnan(part_dalo) and math.isnan(table.at[r, "part_dalo"])) or \
            table.at[r, "part_dalo"] == pytest.approx(part_dalo), r
    # the law's sentence beside the share due: DALO first, no rate of its own
    assert "(CCH L.313-26-2)" in table.at["action_logement", "obligation_prioritaires"]
    assert "DALO en priorité" in table.at["prefet", "obligation_prioritaires"]
    tenue = priorities(consolide.targets).set_index("reservataire")["prioritaires_tenue"].to_dict()
    assert tenue == {"prefet": "non", "action_logement": "oui", "ville_lille": "oui", "bailleur": ""}
    # the written files: the CSV read by plan --bilan-precedent, the HTML a person reads
    write_bilan(consolide, tmp_path / "bilan")
    ecrit = pd.read_csv(tmp_path / "bilan" / "bilan_2027.csv").set_index("reservataire")
    assert ecrit.at["prefet", "baux_dalo"] == 2 and ecrit.at["prefet", "part_dalo"] == pytest.approx(0.5)
    assert pd.isna(ecrit.at["ville_lille", "part_dalo"])
    page = (tmp_path / "bilan" / "bilan_2027_prefet.html").read_text(encoding="utf-8")
    assert "Part DALO (information)" in page and "50,0 %" in page and "ne fixe pas de taux propre aux ménages reconnus DALO" in page


def test_dalo_completes_prioritaire_and_a_contradiction_is_refused_byte_identical(tmp_path):
    chemin = tmp_path / "journal.csv"
    append_events(chemin, evenements([("prefet", "", "oui")])[:2])
    avant = chemin.read_bytes()
    with pytest.raises(EvenementRefuse, match="dalo.*public prioritaire"):
        append_event(chemin, evenements([("prefet", "non", "oui")])[2])
    assert chemin.read_bytes() == avant
    ligne = append_event(chemin, evenements([("prefet", "", "oui")])[2])
    assert (ligne["prioritaire"], ligne["dalo"]) == ("oui", "oui")
    assert chemin.read_text(encoding="utf-8").splitlines()[0] == ",".join(COLONNES)


def test_old_journal_without_the_column_still_gives_a_bilan_and_keeps_its_format(tmp_path, plan):
    nouveau, ancien = tmp_path / "nouveau.csv", tmp_path / "ancien.csv"
    append_events(nouveau, evenements(avec_dalo=False))
    ancien.write_text(sans_colonne_dalo(nouveau.read_text(encoding="utf-8")), encoding="utf-8")
    assert ancien.read_text(encoding="utf-8").splitlines()[0] == ",".join(COLONNES_SANS_DALO)
    table = bilan_du_plan(plan, read_journal(ancien), 2027, contexte())[0].targets.set_index("reservataire")
    attendu = bilan_du_plan(plan, read_journal(nouveau), 2027, contexte())[0].targets.set_index("reservataire")
    pd.testing.assert_series_equal(table["part_prioritaires"], attendu["part_prioritaires"])
    assert (table["baux_dalo"] == 0).all()
    assert table["part_dalo"].isna().all()  # every réservataire with leases has a prioritaire one: DALO unknown
    # appended to in its own format; a DALO flag it cannot hold is refused, the file untouched
    avant = ancien.read_bytes()
    suite = evenements([("prefet", "oui", "oui")])
    for ev in suite:
        ev["logement_id"] = "L99"
    with pytest.raises(EvenementRefuse, match="dalo"):
        append_events(ancien, suite)
    assert ancien.read_bytes() == avant
    append_events(ancien, [*suite[:2], {**suite[2], "dalo": ""}])
    lignes = ancien.read_text(encoding="utf-8").splitlines()
    assert lignes[0] == ",".join(COLONNES_SANS_DALO) and len(next(csv.reader([lignes[-1]]))) == len(COLONNES_SANS_DALO)
    sortie = runner.invoke(app, ["bilan", str(plan), str(ancien), "--annee", "2027", "--sortie", str(tmp_path / "b")])
    assert sortie.exit_code == 0, sortie.output
    ligne_prefet = next(l for l in sortie.output.splitlines() if "│ prefet " in l)
    # 4 known households (one more lease appended above), DALO unknown; no instance at hand: no share due
    assert [c.strip() for c in ligne_prefet.split("│")[2:8]] == ["4", "75 %", "—", "", "0", "—"], ligne_prefet


def test_journal_ajouter_records_dalo_or_refuses_it(tmp_path, plan):
    chemin = tmp_path / "j.csv"
    append_events(chemin, evenements([("prefet", "", "")])[:2])
    avant = chemin.read_bytes()
    commun = ["journal", "ajouter", str(chemin), "bail_signe", "--plan", str(plan), "--logement-id", "L1",
              "--date", "2027-03-05"]
    for refuse in (["--dalo", "peut-être"], ["--dalo", "oui", "--prioritaire", "non"]):
        sortie = runner.invoke(app, [*commun, *refuse])
        assert sortie.exit_code == 2 and "« dalo »" in sortie.output and "Rien n'a été écrit" in sortie.output
        assert chemin.read_bytes() == avant
    assert runner.invoke(app, [*commun, "--dalo", "oui"]).exit_code == 0
    assert read_journal(chemin).iloc[-1][["prioritaire", "dalo"]].tolist() == [True, True]


def test_simulated_year_draws_dalo_among_prioritaires(plan):
    baux = [e for graine in range(4) for e in generate_events(plan, 2027, graine) if e["evenement"] == "bail_signe"]
    prioritaires = [e for e in baux if e["prioritaire"]]
    assert all(e["prioritaire"] for e in baux if e["dalo"])
    assert 0.15 < sum(e["dalo"] for e in prioritaires) / len(prioritaires) < 0.45


def test_the_bilan_owes_the_shares_the_plan_was_held_to():
    """One reading of CCH L.441-1 / R.441-5 for the plan and the bilan: the employer of the example
    (no taux_prioritaires) owes no share, the préfet 100 %, Action Logement and the bailleur 25 %,
    the State's agents none."""
    from conftest import EXEMPLE
    from flux_opt.input.schema import load_instance
    from flux_opt.year.conventions import contexte

    owed = {rid: c.prioritaires_min for rid, c in contexte(load_instance(EXEMPLE)).conventions.items()}
    assert owed == {"prefet": 1.0, "prefet_agents": 0.0, "ville_roubaix": 0.25, "mel": 0.25,
                    "action_logement": 0.25, "employeur_port": 0.0, "bailleur": 0.25}
