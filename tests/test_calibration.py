"""`flux-opt calibrer`: rates recovered from a journal simulated in a known world, the plan made with them
realising at least as many lettings there as the plan made with the defaults, the files and hostile journals."""

import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from flux_opt.calibration.check import check_calibration
from flux_opt.calibration.journal import calibrate
from flux_opt.calibration.shrinkage import posterior, prior_strength
from flux_opt.cli.main import app
from flux_opt.errors import InvalidInput
from flux_opt.input.schema import load_instance

runner = CliRunner()
EXEMPLE = "instances/exemple"
# The world differs from the defaults (q1 PLUS 70 %, q1 autre 80 %, q234 PLAI 55 %, q234 PLS 70 %, q1 PLS 20 %).
WORLD = {("q1", "PLS"): 0.55, ("q1", "PLUS"): 0.5, ("q234", "PLAI"): 0.3, ("q1", "autre"): 0.5, ("q234", "PLS"): 0.85}


@pytest.fixture(scope="module")
def checked():
    return check_calibration(load_instance(EXEMPLE), WORLD, graine=0, years=2, tirages=60)


def test_calibrer_recovers_the_world_rates(checked):
    instance = load_instance(EXEMPLE)
    truth = {**instance.acceptance(), **WORLD}
    rows = checked.calibration.rows("acceptation")
    enough = rows[rows["effectif"] >= 30]
    assert len(enough) >= 6
    for r in enough.itertuples():
        q, f = r.portee.split(" ")
        assert r.borne_basse <= truth[(q, f)] <= r.borne_haute, r
    moved = rows.set_index("portee")
    assert moved.loc["q1 PLUS", "estime"] < 0.6  # the default said 70 %: the journal says about 50 %
    assert moved.loc["q234 PLAI", "estime"] < 0.45


def test_plan_with_calibrated_rates_lets_at_least_as_many(checked):
    assert checked.lettings_calibrated >= checked.lettings_defaults
    assert checked.lettings_world >= checked.lettings_defaults


def test_calibrer_writes_files_the_instance_reads(tmp_path, checked):
    from flux_opt.calibration.world import bailleur_of, simulate_world, world_of
    from flux_opt.calibration.check import with_acceptance, write_plan

    instance = load_instance(EXEMPLE)
    write_plan(checked.plan_defaults, tmp_path)
    simulate_world(tmp_path, tmp_path / "j.csv", world_of(with_acceptance(instance, WORLD)), bailleur_of(instance),
                   2026, 5)
    result = runner.invoke(app, ["calibrer", str(tmp_path / "j.csv"), "--sortie", str(tmp_path / "cal"),
                                 "--instance", EXEMPLE])
    assert result.exit_code == 0, result.output
    assert "q1 PLS" in result.output
    copy = tmp_path / "inst"
    shutil.copytree(EXEMPLE, copy)
    shutil.copy(tmp_path / "cal" / "acceptation.csv", copy / "acceptation.csv")
    rates = load_instance(copy).acceptance()
    written = pd.read_csv(tmp_path / "cal" / "acceptation.csv")
    assert len(written) == 8 and rates[("q1", "PLUS")] == pytest.approx(
        written.set_index(["quartile", "financement"]).loc[("q1", "PLUS"), "taux_acceptation"])
    per = pd.read_csv(tmp_path / "cal" / "reservataires_calibres.csv")
    assert list(per.columns) == ["id", "candidats", "delai_jours"]
    assert per.set_index("id").loc["action_logement", "candidats"] == 3  # gestion directe: 3 presented
    page = (tmp_path / "cal" / "calibration.html").read_text()
    assert page.count("<img") >= 4 and "Motifs de refus" in page and "intervalle à 95 %" in page


def test_a_refusal_carries_the_household_quartile(tmp_path):
    from flux_opt.year.journal.storage import append_events, read_journal

    append_events(tmp_path / "j.csv", [
        {"horodatage": "2026-01-02", "evenement": "liberation", "logement_id": "L1", "commune": "59350",
         "qpv": "non", "typologie": "T3", "financement": "PLS"},
        {"horodatage": "2026-01-03", "evenement": "proposition", "logement_id": "L1", "reservataire": "prefet"},
        {"horodatage": "2026-01-09", "evenement": "candidats", "logement_id": "L1", "candidats": 2},
        {"horodatage": "2026-01-20", "evenement": "refus", "logement_id": "L1", "quartile": "q1",
         "commentaire": "logement trop cher"},
        {"horodatage": "2026-01-21", "evenement": "proposition", "logement_id": "L1", "reservataire": "prefet"},
        {"horodatage": "2026-02-01", "evenement": "bail_signe", "logement_id": "L1", "quartile": "q234"},
        {"horodatage": "2026-03-01", "evenement": "liberation", "logement_id": "L2", "commune": "59350",
         "qpv": "non", "typologie": "T2", "financement": "PLUS"},
        {"horodatage": "2026-03-02", "evenement": "proposition", "logement_id": "L2", "reservataire": "prefet"},
        {"horodatage": "2026-03-20", "evenement": "refus", "logement_id": "L2"},
        {"horodatage": "2026-04-01", "evenement": "liberation", "logement_id": "L3", "commune": "59350",
         "qpv": "oui", "typologie": "T4", "financement": "PLUS"},
        {"horodatage": "2026-04-02", "evenement": "proposition", "logement_id": "L3", "reservataire": "action_logement"},
        {"horodatage": "2026-05-15", "evenement": "retour_bailleur", "logement_id": "L3"},
    ])
    assert list(read_journal(tmp_path / "j.csv")["quartile"])[3] == "q1"
    c = calibrate([tmp_path / "j.csv"])
    rows = c.rows("acceptation").set_index("portee")
    assert rows.loc["q1 PLS", ["effectif", "evenements"]].tolist() == [1, 0]
    assert rows.loc["q234 PLS", ["effectif", "evenements"]].tolist() == [1, 1]
    assert any("sans quartile" in n for n in c.notes)  # L2's refusal: counted nowhere, and said
    motifs = c.rows("motif de refus").set_index("portee")
    assert motifs.loc["logement trop cher", "evenements"] == 1 and motifs.loc["(sans motif)", "evenements"] == 1
    delay = c.rows("délai des candidats (jours)").set_index("portee").loc["prefet"]
    assert delay["effectif"] == 1 and delay["brut"] == pytest.approx(6 + 18)  # L2 waited 18 days, no candidate
    returned = c.rows("part rendue au bailleur").set_index("portee")
    assert returned.loc["action_logement", ["effectif", "evenements"]].tolist() == [1, 1]
    assert returned.loc["prefet", ["effectif", "evenements"]].tolist() == [2, 0]
    assert c.rows("candidats par logement").set_index("portee").loc["action_logement", "effectif"] == 1  # 0 presented


def test_shrinkage_formula_by_hand():
    post = posterior([3], [9], [0.2], 10.0)
    assert post["estimate"][0] == pytest.approx((3 + 10 * 0.2) / (9 + 10))
    assert post["weight"][0] == pytest.approx(10 / 19)
    assert post["low"][0] < post["estimate"][0] < post["high"][0]
    # cells spread exactly as binomial noise around their parent: the parent is trusted (large m)
    assert prior_strength([10, 10, 10], [100, 100, 100], [0.1, 0.1, 0.1]) > 1000
    assert prior_strength([0, 50, 100], [100, 100, 100], [0.5, 0.5, 0.5]) < 1


@pytest.mark.parametrize("content", [None, "", "horodatage,evenement\n", "pas,un,journal\n1,2,3\n"])
def test_hostile_journals_exit_2(tmp_path, content):
    path = tmp_path / "j.csv"
    if content is not None:
        path.write_text(content)
    result = runner.invoke(app, ["calibrer", str(path), "--sortie", str(tmp_path / "cal")])
    assert result.exit_code == 2, result.output
    assert "Erreur interne" not in result.output
    assert not (tmp_path / "cal").exists()


def test_a_simuler_journal_without_refusal_quartiles_is_not_read_as_all_accepted(tmp_path, checked):
    from flux_opt.calibration.check import write_plan
    from flux_opt.year.simulation import simulate_year

    write_plan(checked.plan_defaults, tmp_path)
    simulate_year(tmp_path, tmp_path / "j.csv", 2026, graine=3)  # flat 20 % refusals, no quartile on them
    c = calibrate([tmp_path / "j.csv"], load_instance(EXEMPLE))
    assert any("répartis entre quartiles" in n for n in c.notes)
    rows = c.rows("acceptation")
    per_answer = rows["evenements"].sum() / rows["effectif"].sum()
    assert 0.7 < per_answer < 0.9  # leases over leases and refusals, whatever the quartile
    assert (rows["estime"] < 0.95).all()
