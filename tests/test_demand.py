"""The composition demand model (models/orientation.md §2, « Demand as the year is lived») and
the simulated year (§8): hand-solved cases where the pools' composition, the rents or a thin
pool decide the orientation, and the simulator against the model where the model is exact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conftest import BASE_TOML
from flux_opt.cli.main import app
from flux_opt.input.schema import load_instance
from flux_opt.pipeline import PlanOptions, run
from flux_opt.plan.folder import read_attributions, read_plan
from flux_opt.report.exports import write_csv
from flux_opt.plan.evaluation import evaluate, evaluate_folder

TOML = BASE_TOML + """
[regles]
prioritaires_min = 0
[demande]
modele = "composition"
"""


def p_let(a: float, n: int) -> float:
    return 1 - (1 - a) ** n


def planned(result, rid: str, **where) -> int:
    plan = result.plan.loc[result.plan["reservataire"] == rid]
    for column, value in where.items():
        plan = plan.loc[plan[column] == value]
    return int(plan["logements"].sum())


def test_composition_sends_the_plai_to_the_q1_pool(make_instance):
    """One cell of 5 PLAI and 5 PLS hors QPV, two réservataires of 5 dwellings each, one with a
    Q1 pool, one with a Q2–Q4 pool (gestion directe, 3 candidates). Q1 households take a PLAI
    with 0.85 and a PLS with 0.20; Q2–Q4 a PLS with 0.70 and a PLAI with 0.55: the PLAI go to
    the Q1 pool, the PLS to the other, and 5 (1 − 0.15³) + 5 (1 − 0.3³) lettings are expected."""
    folder = make_instance(TOML, parc="""
        commune,epci,qpv,typologie,financement,logements,liberations
        59350,200093201,non,T2,PLAI,50,5
        59350,200093201,non,T2,PLS,50,5
        """, reservataires="""
        id,nom,type,logements,gestion
        pauvres,Vivier Q1,autre,5,directe
        salaries,Vivier Q234,autre,5,directe
        bailleur,Bailleur,bailleur,,directe
        """, demande="""
        reservataire,commune,epci,typologie,quartile,prioritaire,demandeurs
        pauvres,59350,,T2,q1,non,500
        salaries,59350,,T2,q234,non,500
        """)
    result = run(load_instance(folder), PlanOptions(duals=False)).result
    assert planned(result, "pauvres", financement="PLAI") == 5
    assert planned(result, "salaries", financement="PLS") == 5
    expected = 5 * p_let(0.85, 3) + 5 * p_let(0.70, 3)
    assert result.resume["attributions_prevues"] == pytest.approx(expected, abs=1e-3)
    assert result.resume["regles_violees"] == []


def test_a_pls_does_not_go_to_a_q1_only_pool(make_instance):
    """A PLS in Lille, a PLUS in Roubaix; the réservataire (one dwelling) has only Q1 households
    in both communes, the bailleur Q2–Q4 ones: the réservataire gets the PLUS, the bailleur the PLS."""
    folder = make_instance(TOML, parc="""
        commune,epci,qpv,typologie,financement,logements,liberations
        59350,200093201,non,T3,PLS,10,1
        59512,200093201,non,T3,PLUS,10,1
        """, reservataires="""
        id,nom,type,logements,gestion
        prefecture,Vivier Q1,autre,1,directe
        bailleur,Bailleur,bailleur,,directe
        """, demande="""
        reservataire,commune,epci,typologie,quartile,prioritaire,demandeurs
        prefecture,,200093201,T3,q1,oui,100
        bailleur,,200093201,T3,q234,non,100
        """)
    result = run(load_instance(folder), PlanOptions(duals=False)).result
    assert planned(result, "prefecture", financement="PLUS") == 1
    assert planned(result, "bailleur", financement="PLS") == 1
    assert result.resume["attributions_prevues"] == pytest.approx(p_let(0.70, 3) + p_let(0.70, 3), abs=1e-3)


THIN = dict(parc="""
    commune,epci,qpv,typologie,financement,logements,liberations
    59350,200093201,non,T4,PLUS,100,6
    """, reservataires="""
    id,nom,type,logements,gestion
    mairie,Commune,autre,5,directe
    bailleur,Bailleur,bailleur,,directe
    """, demande="""
    reservataire,commune,epci,typologie,quartile,prioritaire,demandeurs
    mairie,59350,,T4,q234,non,2
    bailleur,59350,,T4,q234,non,50
    """)


def test_a_thin_pool_sends_dwellings_back_to_the_bailleur(make_instance, tmp_path):
    """The commune gets its 5 T4 but has 2 candidates: at most 2 lettings are expected, and in
    every simulated year it lets at most 2, the other dwellings going back to the bailleur, whose
    own pool lets them."""
    folder = make_instance(TOML, **THIN)
    result = run(load_instance(folder), PlanOptions(duals=False)).result
    own = result.attributions.loc[result.attributions["reservataire"] == "mairie", "attributions_prevues"].sum()
    assert own == pytest.approx(2.0, abs=1e-6)  # 5 × (1 − 0.25³) = 4.92 > 2: the pool empties
    out = tmp_path / "plan"
    out.mkdir()
    write_csv(result.plan, out / "plan.csv")
    table = evaluate_folder(out, load_instance(folder), tirages=100, graine=3).table
    row = table.set_index(["indicateur", "portee"])
    assert row.loc[("attributions", "mairie"), "p95"] <= 2
    assert row.loc[("retours au bailleur", "mairie"), "p05"] >= 3
    assert row.loc[("relocations par le bailleur après retour", "ensemble"), "moyenne"] >= 2.9


EXACT = dict(parc="""
    commune,epci,qpv,typologie,financement,logements,liberations
    59350,200093201,non,T2,PLUS,400,20
    59350,200093201,non,T2,PLS,400,10
    59350,200093201,oui,T2,PLAI,400,10
    59512,200093201,oui,T3,autre,400,20
    """, reservataires="""
    id,nom,type,logements,gestion,candidats
    direct,Gestion directe,autre,24,directe,3
    delegue,Gestion déléguée,autre,16,deleguee,1
    bailleur,Bailleur,bailleur,,directe,
    """, demande="""
    reservataire,commune,epci,typologie,quartile,prioritaire,demandeurs
    direct,,200093201,T2,q1,oui,3000
    direct,,200093201,T2,q234,non,5000
    direct,,200093201,T3,q1,non,4000
    direct,,200093201,T3,q234,oui,2000
    delegue,,200093201,T2,q1,non,3000
    delegue,,200093201,T2,q234,oui,3000
    delegue,,200093201,T3,q1,oui,3000
    delegue,,200093201,T3,q234,non,1000
    bailleur,,200093201,T2,q234,non,9000
    bailleur,,200093201,T3,q1,non,9000
    """, toml=TOML.replace("[demande]", "[cia]\nepci = [\"200093201\"]\n[demande]"))


def test_simulated_year_matches_the_expected_lettings_where_the_model_is_exact(make_instance):
    """Pools far larger than the flux (their shares do not move), gestion directe and déléguée:
    the simulated mean of every réservataire's lettings and of the CIA shares is the model's
    expectation, within the sampling error."""
    folder = make_instance(**EXACT)
    instance = load_instance(folder)
    result = run(instance, PlanOptions(duals=False)).result
    plan = result.plan.assign(qpv=result.plan["qpv"] == "oui", logements=result.plan["logements"].astype(int))
    attributions = result.attributions.copy()
    for column in ("qpv", "prioritaire", "travailleur_essentiel"):
        attributions[column] = attributions[column] == "oui"
    tirages = 400
    table = evaluate(instance, plan, attributions, tirages=tirages, graine=11).table
    checked = table.loc[table["indicateur"].isin(["attributions", "part cia_hors_qpv_q1", "part cia_qpv_q234"])]
    assert len(checked) == 6
    for row in checked.itertuples():
        tolerance = 4 * row.ecart_type / np.sqrt(tirages) + 1e-3
        assert abs(row.moyenne - row.prevu) <= tolerance, row


def test_the_draws_are_seeded(make_instance, tmp_path):
    folder = make_instance(TOML, **THIN)
    instance = load_instance(folder)
    plan = pd.DataFrame({"commune": ["59350", "59350"], "epci": ["200093201"] * 2, "qpv": [False, False],
                         "typologie": ["T4", "T4"], "financement": ["PLUS", "PLUS"],
                         "reservataire": ["mairie", "bailleur"], "logements": [3, 3]})
    a = evaluate(instance, plan, tirages=30, graine=5).table
    b = evaluate(instance, plan, tirages=30, graine=5).table
    c = evaluate(instance, plan, tirages=30, graine=6).table
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_acceptance_from_acceptation_csv_wins_over_the_toml(make_instance):
    folder = make_instance(TOML + "q1_pls = 0.3\n", **{k: v for k, v in THIN.items()},
                           acceptation="quartile,financement,taux_acceptation\nq1,PLS,0.1\nq234,PLUS,0.9\n")
    rates = load_instance(folder).acceptance()
    assert rates[("q1", "PLS")] == 0.1 and rates[("q234", "PLUS")] == 0.9 and rates[("q1", "PLAI")] == 0.85


def test_evaluer_on_a_hand_written_plan(make_instance, tmp_path):
    """Any plan.csv: a hand-written one is simulated; an unknown réservataire is refused (exit 2)."""
    folder = make_instance(TOML, **THIN)
    plan_dir = tmp_path / "main"
    plan_dir.mkdir()
    (plan_dir / "plan.csv").write_text(
        "commune,epci,qpv,typologie,financement,reservataire,logements\n"
        "59350,200093201,non,T4,PLUS,mairie,2\n59350,200093201,non,T4,PLUS,bailleur,4\n", encoding="utf-8")
    runner = CliRunner()
    done = runner.invoke(app, ["evaluer", str(plan_dir), "--instance", str(folder), "--tirages", "20"])
    assert done.exit_code == 0, done.output
    table = pd.read_csv(plan_dir / "evaluation.csv")
    assert table.loc[table["portee"] == "mairie", "moyenne"].iloc[0] <= 2
    (plan_dir / "plan.csv").write_text(
        "commune,epci,qpv,typologie,financement,reservataire,logements\n"
        "59350,200093201,non,T4,PLUS,inconnu,2\n", encoding="utf-8")
    done = runner.invoke(app, ["evaluer", str(plan_dir), "--instance", str(folder)])
    assert done.exit_code == 2
    assert "inconnu" in done.output and "plan.csv" in done.output


def test_plan_evaluer_adds_the_section_to_the_report(make_instance, tmp_path):
    folder = make_instance(TOML, **THIN)
    out = tmp_path / "sortie"
    done = CliRunner().invoke(app, ["plan", str(folder), "--sortie", str(out), "--evaluer", "--tirages", "10",
                                    "--sans-analyse"])
    assert done.exit_code == 0, done.output
    assert (out / "evaluation.csv").exists()
    page = (out / "rapport.html").read_text(encoding="utf-8")
    assert page.count("<h2>Année simulée</h2>") == 1
    assert read_plan(out)["logements"].sum() == 6 and read_attributions(out) is not None
    # `flux-opt evaluer` on the written folder replaces the section instead of adding one
    again = CliRunner().invoke(app, ["evaluer", str(out), "--tirages", "5"])
    assert again.exit_code == 0, again.output
    assert (out / "rapport.html").read_text(encoding="utf-8").count("<h2>Année simulée</h2>") == 1
    # a new plan in the same folder without --evaluer leaves no evaluation of the old one behind
    done = CliRunner().invoke(app, ["plan", str(folder), "--sortie", str(out), "--sans-analyse"])
    assert done.exit_code == 0, done.output
    assert not (out / "evaluation.csv").exists()
    assert "Année simulée" not in (out / "rapport.html").read_text(encoding="utf-8")


def test_the_plan_s_own_shares_are_read_from_its_attributions_as_written(make_instance):
    """The pipeline's simulated year gets attributions.csv as written (oui/non flags): the plan's
    expected share of publics prioritaires is theirs, not 100 % (« non » read as true)."""
    folder = make_instance(TOML.replace("prioritaires_min = 0", "prioritaires_min = 0.1"), **MIXED_POOL)
    done = run(load_instance(folder), PlanOptions(duals=False, draws=20, seed=1))
    table = done.evaluation.table.set_index(["indicateur", "portee"])
    att = done.result.attributions.loc[done.result.attributions["reservataire"] == "asso"]
    share = att.loc[att["prioritaire"] == "oui", "attributions_prevues"].sum() / att["attributions_prevues"].sum()
    assert share == pytest.approx(0.5, abs=1e-3)
    assert table.loc[("part publics_prioritaires", "asso"), "prevu"] == pytest.approx(share, abs=1e-3)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_composition_plans_keep_every_absolute_rule_and_report_the_others(tmp_path, data):
    """Random instances solved with the composition model: the independent checker (tests/checker.py,
    which recomputes the composition bounds per réservataire and segment) finds no broken absolute
    rule (conservation, territoire, demande), and every rule it finds broken is reported violated."""
    from checker import check_plan, violated_rows
    from strategies import instance_dirs

    instance = data.draw(instance_dirs(tmp_path / "instances"), label="instance")
    with (instance / "instance.toml").open("a", encoding="utf-8") as toml:
        toml.write('\n[demande]\nmodele = "composition"\n')
    out = tmp_path / "sorties" / instance.name
    done = CliRunner().invoke(app, ["plan", str(instance), "--sortie", str(out), "--sans-analyse"])
    assert done.exit_code in (0, 3), f"{done.output}\n{done.exception!r}"
    reported = {famille for famille, _ in violated_rows(out)}
    assert (done.exit_code == 3) == bool(reported)
    found = check_plan(instance, out)
    assert not [v for v in found if v.famille in {"conservation", "territoire", "demande", "integrite"}], found
    assert not [v for v in found if v.famille not in reported], (found, reported)


MIXED_POOL = dict(parc="""
    commune,epci,qpv,typologie,financement,logements,liberations
    59350,200093201,non,T2,PLUS,100,10
    """, reservataires="""
    id,nom,type,logements,gestion,taux_prioritaires
    asso,Association,autre,4,directe,0.6
    bailleur,Bailleur,bailleur,,directe,0
    """, demande="""
    reservataire,commune,epci,typologie,quartile,prioritaire,demandeurs
    asso,59350,,T2,q1,oui,100
    asso,59350,,T2,q1,non,100
    bailleur,59350,,T2,q1,non,100
    """)


def test_in_gestion_directe_a_share_cannot_be_met_by_dropping_households(make_instance):
    """The association proposes its candidates: half of its pool is prioritaire, so half of its
    expected lettings are, whatever the plan. Its 60 % share of publics prioritaires cannot hold:
    the plan says so (violated by 10 % of its 8 × (1 − 0.3³) lettings, more than half an
    attribution) instead of leaving the non-priority households unhoused to reach 60 %."""
    folder = make_instance(TOML, **{**MIXED_POOL, "reservataires": MIXED_POOL["reservataires"].replace(
        "asso,Association,autre,4,", "asso,Association,autre,8,")})
    result = run(load_instance(folder), PlanOptions(duals=False)).result
    att = result.attributions.loc[result.attributions["reservataire"] == "asso"]
    prio = att.loc[att["prioritaire"] == "oui", "attributions_prevues"].sum()
    other = att.loc[att["prioritaire"] == "non", "attributions_prevues"].sum()
    lettings = 8 * p_let(0.70, 3)
    assert prio == pytest.approx(lettings / 2, abs=1e-4) and other == pytest.approx(lettings / 2, abs=1e-4)
    rows = result.contraintes.set_index(["contrainte", "portee"])
    assert rows.loc[("publics_prioritaires", "réservataire asso"), "statut"] == "violee"
    assert rows.loc[("publics_prioritaires", "réservataire asso"), "marge"] == pytest.approx(-0.1 * lettings, abs=1e-4)


def test_the_prefet_contingent_goes_to_priority_households_as_long_as_its_pools_hold_only_them(make_instance):
    """CCH R.441-5: the State's reservations go to publics prioritaires (`prefet_prioritaires` =
    100 %). With pools of priority households only, every expected letting of the préfet is one,
    though not every dwelling is let (1 − 0.3³ each): the rule holds on the attributions, and the
    independent conformity check agrees."""
    from flux_opt.conformity.check import conformity, from_result

    folder = make_instance(TOML.replace("prioritaires_min = 0", "prioritaires_min = 0\nprefet_prioritaires = 1.0"),
                           parc=MIXED_POOL["parc"], reservataires="""
        id,nom,type,logements,gestion
        prefet,Préfet,prefet,3,directe
        bailleur,Bailleur,bailleur,,directe
        """, demande="""
        reservataire,commune,epci,typologie,quartile,prioritaire,demandeurs
        prefet,59350,,T2,q1,oui,100
        bailleur,59350,,T2,q1,non,100
        """)
    instance = load_instance(folder)
    result = run(instance, PlanOptions(duals=False)).result
    assert planned(result, "prefet") == 3
    att = result.attributions.loc[result.attributions["reservataire"] == "prefet"]
    assert att["attributions_prevues"].sum() == pytest.approx(3 * p_let(0.70, 3), abs=1e-4)
    assert set(att["prioritaire"]) == {"oui"}
    assert result.resume["regles_violees"] == []
    table = conformity(instance, from_result(result.plan, result.attributions))
    line = table.loc[(table["regle"] == "publics_prioritaires") & (table["portee"] == "réservataire prefet")].iloc[0]
    assert line["respectee"] == "oui" and line["base"] == pytest.approx(3 * p_let(0.70, 3), abs=1e-3)


THIN_PRIORITY = dict(parc="""
    commune,epci,qpv,typologie,financement,logements,liberations
    59350,200093201,non,T3,PLUS,2000,200
    """, reservataires="""
    id,nom,type,logements,gestion,candidats
    action_logement,Action Logement,action_logement,61,deleguee,3
    bailleur,Bailleur,bailleur,,directe,3
    """, demande="""
    reservataire,commune,epci,typologie,quartile,prioritaire,demandeurs
    action_logement,59350,,T3,q1,oui,{prio}
    action_logement,59350,,T3,q234,non,148
    bailleur,59350,,T3,q1,oui,400
    bailleur,59350,,T3,q234,non,400
    """)


def thin_priority(prio: int) -> dict:
    return {**THIN_PRIORITY, "demande": THIN_PRIORITY["demande"].format(prio=prio)}


def test_a_delegated_share_is_not_met_by_leaving_dwellings_unlet(make_instance, tmp_path):
    """Action Logement in gestion déléguée, 61 dwellings, 6 priority candidates among 154, 25 %
    of its attributions to publics prioritaires. The base of the share is what its dwellings are
    expected to let, whether the bailleur aims them at a pool or not: 6 priority lettings carry
    at most 24 expected lettings, i.e. X = ⌊6 / (1 − 0.3³) + 18 / (1 − 0.25³)⌋ = ⌊24.45⌋ = 24
    dwellings, each aimed at a pool (lettings 6 + (24 − 6.17) × 0.984 = 23.55). The convention's
    61 cannot hold with the law and the plan says so (exit 3), instead of keeping 61 dwellings,
    expecting 24 lettings and sending 37 back « respectée ». The simulated year realises about
    the share the plan declares."""
    folder = make_instance(BASE_TOML + "[regles]\nprioritaires_min = 0.25\n", **thin_priority(6))
    result = run(load_instance(folder), PlanOptions(duals=False)).result
    assert planned(result, "action_logement") == 24
    att = result.attributions.loc[result.attributions["reservataire"] == "action_logement"]
    lettings = att["attributions_prevues"].sum()
    assert lettings == pytest.approx(6 + (24 - 6 / p_let(0.70, 3)) * p_let(0.75, 3), abs=1e-3)
    declared = att.loc[att["prioritaire"] == "oui", "attributions_prevues"].sum() / lettings
    assert declared == pytest.approx(6 / 23.555, abs=1e-3)
    violated = result.contraintes.loc[result.contraintes["statut"] == "violee"]
    assert set(violated["contrainte"]) == {"objectif_reservataire"} and result.exit_code == 3
    out = tmp_path / "plan"
    out.mkdir()
    write_csv(result.plan, out / "plan.csv")
    write_csv(result.attributions, out / "attributions.csv")
    table = evaluate_folder(out, load_instance(folder), tirages=200, graine=2).table.set_index(["indicateur", "portee"])
    simulated = table.loc[("part publics_prioritaires", "action_logement"), "moyenne"]
    assert abs(simulated - declared) <= 0.04


def test_a_delegated_reservataire_with_enough_priority_candidates_keeps_its_dwellings(make_instance):
    """The same with 20 priority candidates: 61 dwellings, all aimed at a pool (about 60 lettings
    expected, not fewer), the share held."""
    folder = make_instance(BASE_TOML + "[regles]\nprioritaires_min = 0.25\n", **thin_priority(20))
    result = run(load_instance(folder), PlanOptions(duals=False)).result
    assert planned(result, "action_logement") == 61
    att = result.attributions.loc[result.attributions["reservataire"] == "action_logement"]
    assert att["attributions_prevues"].sum() >= 61 * p_let(0.70, 3) - 1e-3
    assert result.exit_code == 0
