"""`flux-opt controler` re-derives the expected attributions it checks (issue 21 point 7):
publics prioritaires and CIA shares are recomputed from plan.csv and the instance's demand and
acceptance (flux_opt/conformity/lettings.py), attributions.csv is only compared to them."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from flux_opt.cli.main import app
from flux_opt.conformity.check import read_plan_files
from flux_opt.conformity.lettings import differences, recompute
from flux_opt.input.schema import load_instance
from flux_opt.vocabulary import ATTRIBUTION_TOLERANCE

from conftest import EXEMPLE

runner = CliRunner()
SHARES = ("publics_prioritaires", "cia_hors_qpv_q1", "cia_qpv_q234")
DIRECTE = ("réservataire ville_roubaix", "réservataire action_logement", "réservataire bailleur")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], terminal_width=200)


@pytest.fixture(scope="module")
def honest(tmp_path_factory):
    """The example planned once, and its conformity table as controler writes it."""
    out = tmp_path_factory.mktemp("rederive")
    result = invoke("plan", EXEMPLE, "--sortie", out, "--sans-analyse")
    assert result.exit_code == 0, result.output
    done = invoke("controler", out, EXEMPLE, "--sortie", out / "controle.csv")
    assert done.exit_code == 0, done.output
    return out, pd.read_csv(out / "controle.csv", dtype={"respectee": str}).set_index(["regle", "portee"])


def shares(table: pd.DataFrame) -> pd.DataFrame:
    return table.loc[table.index.get_level_values("regle").isin(SHARES)]


def copy_plan(out, tmp_path, with_attributions: bool = True):
    folder = tmp_path / "plan"
    folder.mkdir()
    shutil.copy(out / "plan.csv", folder / "plan.csv")
    if with_attributions:
        shutil.copy(out / "attributions.csv", folder / "attributions.csv")
    return folder


def test_the_recomputed_attributions_are_the_models_within_the_tolerance(honest):
    """Every réservataire's expected attributions, recomputed from its dwellings and pools, differ
    from the model's attributions.csv by less than the one tolerance (summed over its segments and
    categories), and so do the shares' numerators."""
    out, table = honest
    instance = load_instance(EXEMPLE)
    files = read_plan_files(out, instance)
    again = recompute(instance, files.plan, files.attributions)
    gaps = differences(files.attributions, again.attributions)
    assert set(gaps) >= {"prefet", "mel", "action_logement", "bailleur"}
    assert max(gaps.values()) <= ATTRIBUTION_TOLERANCE, gaps
    att = files.attributions
    read_prio = att.loc[att["prioritaire"]].groupby("reservataire")["attributions_prevues"].sum()
    for (regle, portee), row in shares(table).iterrows():
        if regle == "publics_prioritaires":
            rid = portee.split()[-1]
            assert abs(row["valeur"] - read_prio.get(rid, 0.0)) <= ATTRIBUTION_TOLERANCE, (portee, row["valeur"])
            total = att.loc[att["reservataire"] == rid, "attributions_prevues"].sum()
            assert abs(row["base"] - total) <= ATTRIBUTION_TOLERANCE  # every dwelling aimed: base = its lettings
    demand = table.loc["demande"]
    assert len(demand) == 7 and (demand["respectee"] == "oui").all()


def test_q1_lines_times_ten_change_no_share_verdict_but_are_reported(honest, tmp_path):
    """The Q1 lines of attributions.csv × 10: the shares are recomputed, so every verdict stays
    (gestion directe: the very same values); the file is reported as not matching the plan, exit 3."""
    out, before = honest
    folder = copy_plan(out, tmp_path)
    att = pd.read_csv(folder / "attributions.csv", dtype=str)
    q1 = att["quartile"] == "q1"
    att.loc[q1, "attributions_prevues"] = (att.loc[q1, "attributions_prevues"].astype(float) * 10).map(str)
    att.to_csv(folder / "attributions.csv", index=False)
    done = invoke("controler", folder, EXEMPLE)
    assert done.exit_code == 3, done.output
    after = pd.read_csv(folder / "conformite.csv", dtype={"respectee": str}).set_index(["regle", "portee"])
    assert (shares(after)["respectee"] == shares(before)["respectee"]).all()
    assert (shares(after)["respectee"] == "oui").all()
    for portee in DIRECTE:
        key = ("publics_prioritaires", portee)
        assert after.at[key, "valeur"] == before.at[key, "valeur"] and after.at[key, "base"] == before.at[key, "base"]
    demand = after.loc["demande"]
    wrong = demand.loc[demand["respectee"] == "non"]
    assert {"réservataire prefet (attributions.csv comparé au plan)",
            "réservataire bailleur (attributions.csv comparé au plan)"} <= set(wrong.index)
    assert wrong["limite"].str.contains("attributions.csv ne correspond pas au plan").all()
    assert "correspond" in done.output  # in the terminal table too (wrapped in its cell)


def test_without_attributions_csv_controler_still_checks_every_share(honest, tmp_path):
    """No attributions.csv: nothing is « non vérifiable », the shares are recomputed from the
    dwellings (gestion directe: the same figures; gestion déléguée: every dwelling proposed in
    proportion to the pools, the bailleur's aims being unknown) and no comparison line is written."""
    out, before = honest
    folder = copy_plan(out, tmp_path, with_attributions=False)
    done = invoke("controler", folder, EXEMPLE)
    assert done.exit_code in (0, 3), done.output
    after = pd.read_csv(folder / "conformite.csv", dtype={"respectee": str}).set_index(["regle", "portee"])
    assert "demande" not in after.index.get_level_values("regle")
    assert not after["respectee"].str.contains("vérifiable").any()
    assert len(shares(after)) == len(shares(before)) and shares(after)["valeur"].notna().all()
    for portee in DIRECTE:
        key = ("publics_prioritaires", portee)
        assert after.at[key, "valeur"] == before.at[key, "valeur"]


def test_the_recomputation_by_hand_directe_deleguee_and_a_pool_that_empties(make_instance):
    """59350 T2 PLUS hors QPV; every réservataire has a Q1 priority pool and a Q2–Q4 pool,
    accepting a PLUS with 0,70 and 0,75 (π = ¼, ¾: ā = 0,7375).
    - dir (directe, 3 candidates, 4 dwellings): P̄ = 1 − 0,2625³; Q1 gets 0,175 / 0,7375 of P̄ × 4.
    - del (déléguée, 1 candidate, 4 dwellings), attributions.csv aims 1,4 Q1 lettings, i.e.
      1,4 / 0,7 = 2 dwellings; the other 2 are proposed in proportion to the pools:
      Q1 1,4 + 2 × 0,175 = 1,75, Q2–Q4 2 × 0,5625 = 1,125. Aims × 10 (20 dwellings on 4): brought
      back to 4 dwellings aimed at Q1, 2,8 lettings, 16 dwellings of aims refused.
    - thin (directe, 3 candidates, 8 dwellings, pools of 1 and 3): 8 × P̄ would let 1,86 Q1 and 5,99
      Q2–Q4 households; the Q2–Q4 pool has 3, so the segment is scaled by 3 / 5,99: Q1 0,93, Q2–Q4 3."""
    pools = "".join(f"{r},59350,,T2,q1,oui,{q1}\n{r},59350,,T2,q234,non,{q234}\n"
                    for r, q1, q234 in (("dir", 10, 30), ("del", 10, 30), ("thin", 1, 3)))
    folder = make_instance(parc="""
        commune,epci,qpv,typologie,financement,logements,liberations
        59350,200093201,non,T2,PLUS,200,20
        """, reservataires="""
        id,nom,type,logements,gestion
        dir,Directe,autre,4,directe
        del,Déléguée,autre,4,deleguee
        thin,Vivier mince,autre,8,directe
        bailleur,Bailleur,bailleur,,directe
        """, demande="reservataire,commune,epci,typologie,quartile,prioritaire,demandeurs\n" + pools)
    instance = load_instance(folder)
    segment = {"commune": "59350", "qpv": False, "typologie": "T2", "financement": "PLUS"}
    plan = pd.DataFrame([{**segment, "reservataire": r, "logements": x}
                         for r, x in (("dir", 4), ("del", 4), ("thin", 8), ("bailleur", 4))])
    p_bar = 1 - 0.2625 ** 3

    def lettings(att):
        again = recompute(instance, plan, att)
        got = again.attributions.groupby(["reservataire", "quartile"])["attributions_prevues"].sum()
        return got, again

    aims = pd.DataFrame([{**segment, "reservataire": "del", "quartile": "q1", "prioritaire": True,
                          "travailleur_essentiel": False, "attributions_prevues": 1.4}])
    got, again = lettings(aims)
    assert got[("dir", "q1")] == pytest.approx(0.175 / 0.7375 * p_bar * 4)
    assert got[("dir", "q234")] == pytest.approx(0.5625 / 0.7375 * p_bar * 4)
    assert got[("del", "q1")] == pytest.approx(1.75) and got[("del", "q234")] == pytest.approx(1.125)
    assert again.base["del"] == pytest.approx(2.875) and again.aims_refused == {}
    factor = 3 / (0.5625 / 0.7375 * p_bar * 8)
    assert got[("thin", "q234")] == pytest.approx(3.0)
    assert got[("thin", "q1")] == pytest.approx(0.175 / 0.7375 * p_bar * 8 * factor)
    got, again = lettings(aims.assign(attributions_prevues=14.0))
    assert got[("del", "q1")] == pytest.approx(2.8) and got.get(("del", "q234"), 0.0) == pytest.approx(0.0)
    assert again.aims_refused == {"del": pytest.approx(16.0)}
    got, _ = lettings(None)  # no aims: déléguée proposed like directe, with its 1 candidate
    assert got[("del", "q1")] == pytest.approx(4 * 0.175) and got[("del", "q234")] == pytest.approx(4 * 0.5625)
