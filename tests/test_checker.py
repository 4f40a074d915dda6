"""The checker must pass a correct plan and catch each kind of broken plan.

The tiny instance used throughout (figures worked out by hand):

    communes 59001 and 59002, both in EPCI 200000001, département 59
    segments (liberations given, no exclusion):
        59001 T2 hors QPV PLUS   40
        59001 T3 QPV      PLAI   20
        59002 T2 hors QPV PLUS   40          C = 100
    réservataires:
        PREF  prefet          n = 0.30 × 100 − 5 = 25
        AG    prefet_agents   n = 0.05 × 100     = 5
        COL   collectivite    territoire 59002, taux 0.20 → 0.20 × 40 = 8 (cap ⌊8⌋ = 8)
        BAIL  bailleur        remainder 100 − 38 = 62
    préfet (PREF + AG) 30 of 100: cap ⌊0.30 × 100⌋ = 30, agents cap 5
    ρ = 30 / 100; uniformity (τ = 1): 59001 F = 60 → [17, 19]; 59002 F = 40 → [11, 13]
    hors QPV (reading taux): préfet hors QPV ≥ ⌈0.30 × 80⌉ = 24
    CIA on 200000001: Q1 hors QPV ≥ 0.25 × 80 = 20; Q2–Q4 in QPV ≥ 0.50 × 20 = 10

The correct plan:
    59001 T2 hq PLUS: PREF 12, AG 3, BAIL 25        → préfet in 59001: 15 + 3 = 18
    59001 T3 qpv PLAI: PREF 3, BAIL 17
    59002 T2 hq PLUS: PREF 10, AG 2, COL 8, BAIL 20 → préfet in 59002: 12
    préfet hors QPV = 15 + 12 = 27 ≥ 24
and attributions (pool limits in brackets):
    PREF 59001 T2 q1 prio 6, 59002 T2 q1 prio 4     [PREF EPCI T2 q1 prio 10]
    PREF 59001 T2 q234 6, 59002 T2 q234 6           [PREF EPCI T2 q234 30]
    BAIL 59001 T3 qpv q234 17                       [17]
    BAIL 59001 T2 q1 prio 20                        [20]
    COL 59002 T2 q1 prio 5                          [5]
    Q1 hors QPV = 6 + 4 + 20 + 5 = 35 ≥ 20; Q234 QPV = 17 ≥ 10
    prioritaires: PREF 10/25, BAIL 20/37, COL 5/8, all ≥ 25 % (the préfet's share lowered to
    25 % by the instance: by default, 100 %)
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from checker import (
    Violation,
    build_reference,
    check_plan,
    integer_flux,
    largest_remainder,
    net_flux,
    rnd,
    violated_rows,
)
from strategies import write_csv, write_toml

EPCI = "200000001"
PLAN_COLUMNS = ["commune", "epci", "qpv", "typologie", "financement", "reservataire", "logements"]
ATTR_COLUMNS = PLAN_COLUMNS[:-1] + ["quartile", "prioritaire", "attributions_prevues"]

T2_1 = ("59001", "non", "T2", "PLUS")
T3_1 = ("59001", "oui", "T3", "PLAI")
T2_2 = ("59002", "non", "T2", "PLUS")

CORRECT_PLAN = {
    (T2_1, "PREF"): 12, (T2_1, "AG"): 3, (T2_1, "BAIL"): 25,
    (T3_1, "PREF"): 3, (T3_1, "BAIL"): 17,
    (T2_2, "PREF"): 10, (T2_2, "AG"): 2, (T2_2, "COL"): 8, (T2_2, "BAIL"): 20,
}
CORRECT_ATTRIBUTIONS = {
    (T2_1, "PREF", "q1", "oui"): 6, (T2_2, "PREF", "q1", "oui"): 4,
    (T2_1, "PREF", "q234", "non"): 6, (T2_2, "PREF", "q234", "non"): 6,
    (T3_1, "BAIL", "q234", "non"): 17, (T2_1, "BAIL", "q1", "oui"): 20,
    (T2_2, "COL", "q1", "oui"): 5,
}


def segment_row(seg) -> dict:
    commune, qpv, typologie, financement = seg
    return {"commune": commune, "epci": EPCI, "qpv": qpv, "typologie": typologie,
            "financement": financement}


def write_tiny_instance(folder: Path, **regles) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_toml(folder / "instance.toml", {
        "instance": {"nom": "mini", "bailleur": "OLS", "departement": "59", "annee": 2025},
        # the hand-made plan gives the préfet 10 priority attributions of 25: 25 % by convention
        "regles": {"prefet_prioritaires": 0.25, **regles},
        "rotation": {"defaut": 0.1},
        "cia": {"epci": [EPCI]},
        # the hand-made plan's attributions follow the transport model (any category, ≤ dwellings);
        # the checker's composition-model checks have their own tests (test_demand.py)
        "demande": {"modele": "transport"},
    })
    parc = [{**segment_row(seg), "logements": "400", "liberations": str(lib)}
            for seg, lib in ((T2_1, 40), (T3_1, 20), (T2_2, 40))]
    write_csv(folder / "parc.csv", ["commune", "epci", "qpv", "typologie", "financement",
                                    "logements", "liberations"], parc)
    write_csv(folder / "reservataires.csv", ["id", "nom", "type", "territoire", "taux", "gestion"], [
        {"id": "PREF", "nom": "Préfet", "type": "prefet", "gestion": "directe"},
        {"id": "AG", "nom": "Agents", "type": "prefet_agents", "gestion": "directe"},
        {"id": "COL", "nom": "Commune", "type": "collectivite", "territoire": "59002",
         "taux": "0.20", "gestion": "deleguee"},
        {"id": "BAIL", "nom": "Bailleur", "type": "bailleur", "gestion": "deleguee"},
    ])
    columns = ["reservataire", "commune", "epci", "typologie", "quartile", "prioritaire", "demandeurs"]
    write_csv(folder / "demande.csv", columns, [
        {"reservataire": "PREF", "epci": EPCI, "typologie": "T2", "quartile": "q1",
         "prioritaire": "oui", "demandeurs": "10"},
        {"reservataire": "PREF", "epci": EPCI, "typologie": "T2", "quartile": "q234",
         "prioritaire": "non", "demandeurs": "30"},
        {"reservataire": "BAIL", "commune": "59001", "typologie": "T3", "quartile": "q234",
         "prioritaire": "non", "demandeurs": "17"},
        {"reservataire": "BAIL", "commune": "59001", "typologie": "T2", "quartile": "q1",
         "prioritaire": "oui", "demandeurs": "20"},
        {"reservataire": "COL", "commune": "59002", "typologie": "T2", "quartile": "q1",
         "prioritaire": "oui", "demandeurs": "5"},
    ])
    return folder


def write_plan(folder: Path, plan: dict, attributions: dict, contraintes=()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(folder / "plan.csv", PLAN_COLUMNS,
              [{**segment_row(seg), "reservataire": r, "logements": str(v)} for (seg, r), v in plan.items()])
    write_csv(folder / "attributions.csv", ATTR_COLUMNS, [
        {**segment_row(seg), "reservataire": r, "quartile": q, "prioritaire": p,
         "attributions_prevues": f"{v:.4f}"}
        for (seg, r, q, p), v in attributions.items()
    ])
    write_csv(folder / "contraintes.csv",
              ["contrainte", "portee", "statut", "marge", "valeur_marginale", "explication"],
              [dict(zip(["contrainte", "portee", "statut"], row)) for row in contraintes])
    return folder


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    return write_tiny_instance(tmp_path / "instance")


def check(instance: Path, tmp_path: Path, plan=None, attributions=None, **kw) -> list[Violation]:
    out = write_plan(tmp_path / "plan", CORRECT_PLAN if plan is None else plan,
                     CORRECT_ATTRIBUTIONS if attributions is None else attributions)
    return check_plan(instance, out, **kw)


def families(violations) -> set[str]:
    return {v.famille for v in violations}


def test_reference_figures_match_the_hand_computation(instance):
    ref = build_reference(instance)
    assert ref.total == 100
    assert ref.targets == {"PREF": 25, "AG": 5, "COL": 8, "BAIL": 62}
    assert ref.cia == {EPCI: {"cia_hors_qpv_q1": 0.25, "cia_qpv_q234": 0.50}}


def test_correct_plan_passes(instance, tmp_path):
    assert check(instance, tmp_path) == []


def test_broken_conservation_is_detected(instance, tmp_path):
    # BAIL gets 21 instead of 20 in 59002 T2: the segment sums to 41 ≠ 40, BAIL 63 ≠ 62.
    found = check(instance, tmp_path, plan={**CORRECT_PLAN, (T2_2, "BAIL"): 21})
    assert Violation("conservation", "59002 T2 hors_qpv PLUS", 1.0) in found
    assert Violation("objectif_reservataire", "BAIL", 1.0) in found
    assert families(found) == {"conservation", "objectif_reservataire"}


def test_fractional_or_negative_dwellings_break_conservation(instance, tmp_path):
    plan = {**CORRECT_PLAN, (T2_2, "BAIL"): 20.5, (T2_2, "COL"): 7.5}
    found = [v for v in check(instance, tmp_path, plan=plan) if v.famille == "conservation"]
    assert sorted(v.ecart for v in found) == [0.5, 0.5]


def test_unknown_segment_is_detected(instance, tmp_path):
    plan = {**CORRECT_PLAN, (("59002", "oui", "T5", "PLS"), "BAIL"): 2}
    found = check(instance, tmp_path, plan=plan)
    assert [v.ecart for v in found if v.famille == "conservation"] == [2.0]


def test_prefet_over_its_cap_is_detected(instance, tmp_path):
    # PREF takes 2 of BAIL's dwellings in 59002: préfet 32 of 100 > cap 30 (excess 2);
    # 59002 then has 14 > 13 (excess 1); PREF 27 ≠ 25 and BAIL 60 ≠ 62.
    plan = {**CORRECT_PLAN, (T2_2, "PREF"): 12, (T2_2, "BAIL"): 18}
    found = check(instance, tmp_path, plan=plan)
    assert Violation("plafond_prefet", "prefet", 2.0) in found
    assert Violation("uniformite_prefet", "59002", 1.0) in found
    assert families(found) == {"plafond_prefet", "uniformite_prefet", "objectif_reservataire"}


def test_agents_over_their_cap_is_detected(instance, tmp_path):
    # AG takes 1 of PREF's dwellings: agents 6 > rnd(0.05 × 100) = 5, the préfet total stays 30.
    plan = {**CORRECT_PLAN, (T2_2, "AG"): 3, (T2_2, "PREF"): 9}
    found = check(instance, tmp_path, plan=plan)
    assert Violation("plafond_agents", "prefet_agents", 1.0) in found
    assert "plafond_prefet" not in families(found)


def test_uniformity_broken_in_a_commune_is_detected(instance, tmp_path):
    # PREF moves 3 dwellings from 59002 to 59001 (BAIL the other way): préfet 21 in 59001
    # (bound 19, excess 2) and 9 in 59002 (bound 11, shortfall 2). Totals unchanged, and the
    # attributions of PREF in 59002 shrink to 7 to stay within its dwellings there.
    plan = {**CORRECT_PLAN, (T2_1, "PREF"): 15, (T2_1, "BAIL"): 22,
            (T2_2, "PREF"): 7, (T2_2, "BAIL"): 23}
    attributions = {**CORRECT_ATTRIBUTIONS, (T2_2, "PREF", "q234", "non"): 3}
    found = check(instance, tmp_path, plan=plan, attributions=attributions)
    assert sorted(found, key=lambda v: v.portee) == [
        Violation("uniformite_prefet", "59001", 2.0),
        Violation("uniformite_prefet", "59002", 2.0),
    ]


def test_prefet_hors_qpv_in_both_readings(tmp_path):
    # PREF swaps 6 hors-QPV dwellings of 59001 T2 for 6 QPV ones of 59001 T3 (with BAIL):
    # préfet hors QPV = (6 + 3) + 12 = 21 < rnd(0.30 × 80) = 24 → shortfall 3 (reading taux);
    # reading part: 21 ≥ 0.30 × 30 = 9 holds. Attributions follow the dwellings: BAIL's QPV
    # ones shrink to 11 (Q234 in QPV 11 ≥ 10), PREF's in 59001 T2 to 3 + 3 ≤ 6.
    plan = {**CORRECT_PLAN, (T2_1, "PREF"): 6, (T2_1, "BAIL"): 31,
            (T3_1, "PREF"): 9, (T3_1, "BAIL"): 11}
    attributions = {**CORRECT_ATTRIBUTIONS, (T3_1, "BAIL", "q234", "non"): 11,
                    (T2_1, "PREF", "q1", "oui"): 3, (T2_1, "PREF", "q234", "non"): 3}
    taux = write_tiny_instance(tmp_path / "taux", prefet_hors_qpv_lecture="taux")
    part = write_tiny_instance(tmp_path / "part", prefet_hors_qpv_lecture="part",
                               prefet_hors_qpv_min=0.75)
    out = write_plan(tmp_path / "plan", plan, attributions)
    assert check_plan(taux, out) == [Violation("prefet_hors_qpv", "prefet", 3.0)]
    # part 0.75: 21 < 0.75 × 30 = 22.5 → shortfall 1.5
    assert check_plan(part, out) == [Violation("prefet_hors_qpv", "prefet", pytest.approx(1.5))]


def test_collectivite_over_its_cap_is_detected(instance, tmp_path):
    # COL gets 10 in 59002 instead of 8: cap rnd(0.20 × 40) = 8 → excess 2.
    plan = {**CORRECT_PLAN, (T2_2, "COL"): 10, (T2_2, "BAIL"): 18}
    found = check(instance, tmp_path, plan=plan)
    assert Violation("plafond_collectivite", "COL", 2.0) in found
    assert families(found) == {"plafond_collectivite", "objectif_reservataire"}


def test_dwellings_outside_the_territory_are_detected(instance, tmp_path):
    # COL gets 2 dwellings in 59001, outside its territory 59002.
    plan = {**CORRECT_PLAN, (T2_1, "COL"): 2, (T2_1, "BAIL"): 23,
            (T2_2, "COL"): 6, (T2_2, "BAIL"): 22}
    found = check(instance, tmp_path, plan=plan)
    assert found == [Violation("territoire", "COL", 2.0)]


def test_attributions_above_demand_are_detected(instance, tmp_path):
    # BAIL's pool 59001 T2 q1 prioritaire has 20 candidates; 22 attributions (≤ its 25 dwellings).
    found = check(instance, tmp_path, attributions={**CORRECT_ATTRIBUTIONS, (T2_1, "BAIL", "q1", "oui"): 22})
    assert [(v.famille, v.ecart) for v in found] == [("demande", pytest.approx(2.0))]


def test_attributions_above_dwellings_are_detected(instance, tmp_path):
    # PREF has 10 dwellings in 59002 T2 but 4 + 9 = 13 attributions there (pools allow it).
    found = check(instance, tmp_path, attributions={**CORRECT_ATTRIBUTIONS, (T2_2, "PREF", "q234", "non"): 9})
    assert [(v.famille, v.portee, v.ecart) for v in found] == [
        ("demande", "PREF 59002 T2 hors_qpv", pytest.approx(3.0))]


def test_attributions_without_a_pool_are_detected(instance, tmp_path):
    # AG has no pool at all: 2 attributions to it have no candidate behind them.
    found = check(instance, tmp_path, attributions={**CORRECT_ATTRIBUTIONS, (T2_1, "AG", "q1", "non"): 2})
    assert [(v.famille, v.ecart) for v in found] == [("demande", pytest.approx(2.0))]


def test_cia_and_prioritaires_shortfalls_are_detected(instance, tmp_path):
    # BAIL's QPV attributions drop from 17 to 8: Q234 in QPV 8 < 0.50 × 20 = 10 (shortfall 2).
    # PREF loses its prioritaires: 0 < 0.25 × its 25 planned dwellings = 6.25 (shortfall 6.25).
    attributions = {**CORRECT_ATTRIBUTIONS, (T3_1, "BAIL", "q234", "non"): 8}
    del attributions[(T2_1, "PREF", "q1", "oui")]
    del attributions[(T2_2, "PREF", "q1", "oui")]
    found = check(instance, tmp_path, attributions=attributions)
    assert sorted(found, key=lambda v: v.famille) == [
        Violation("cia_qpv_q234", EPCI, pytest.approx(2.0)),
        Violation("publics_prioritaires", "PREF", pytest.approx(6.25)),
    ]


def test_mixite_lines_legal_form_and_other(instance, tmp_path):
    # Legal-form line: Q1 hors QPV ≥ 0.50 × 80 = 40 replaces the 25 % default; 35 → shortfall 5.
    # Other line: BAIL prioritaires in QPV ≥ 0.10 × BAIL's 17 QPV dwellings = 1.7; 0 → 1.7.
    write_csv(instance / "mixite.csv", ["epci", "zone", "reservataire", "critere", "part_min"], [
        {"epci": EPCI, "zone": "hors_qpv", "critere": "q1", "part_min": "0.50"},
        {"epci": EPCI, "zone": "qpv", "reservataire": "BAIL", "critere": "prioritaire", "part_min": "0.10"},
    ])
    found = check(instance, tmp_path)
    assert sorted(found, key=lambda v: v.famille) == [
        Violation("cia_hors_qpv_q1", EPCI, pytest.approx(5.0)),
        Violation("mixite", "mixite.csv ligne 3", pytest.approx(1.7)),
    ]


def test_rounding_of_attributions_in_files_is_tolerated(instance, tmp_path):
    # 6 + 4 written as 6.0004 + 4.0004 against a pool of 10: within 1e-3 per line.
    attributions = {**CORRECT_ATTRIBUTIONS, (T2_1, "PREF", "q1", "oui"): 6.0004,
                    (T2_2, "PREF", "q1", "oui"): 4.0004}
    assert check(instance, tmp_path, attributions=attributions) == []


def test_missing_or_malformed_plan_is_integrite(instance, tmp_path):
    assert families(check_plan(instance, tmp_path / "absent")) == {"integrite"}
    out = write_plan(tmp_path / "plan", CORRECT_PLAN, CORRECT_ATTRIBUTIONS)
    (out / "plan.csv").write_text("commune,logements\n59001,3\n", encoding="utf-8")
    assert families(check_plan(instance, out)) == {"integrite"}


def test_unknown_reservataire_is_integrite(instance, tmp_path):
    plan = {**CORRECT_PLAN, (T2_2, "INCONNU"): 0}
    assert families(check(instance, tmp_path, plan=plan)) == {"integrite"}


def test_violated_rows_reads_contraintes(tmp_path):
    out = write_plan(tmp_path / "plan", CORRECT_PLAN, CORRECT_ATTRIBUTIONS, contraintes=[
        ("plafond_prefet", "prefet", "saturee"),
        ("uniformite_prefet", "59001", "violee"),
        ("demande", "x", "lache"),
    ])
    assert violated_rows(out) == [("uniformite_prefet", "59001")]


# ------------------------------------------------ the reference computations


def test_rnd_is_half_up_with_noise_tolerance():
    assert rnd(0.30 * 651) == 195  # 195.3
    assert rnd(2.5) == 3
    assert rnd(0.35 * 10) == 4  # 3.4999999999999996 in binary
    assert rnd(1.4999) == 1


def test_integer_flux_is_largest_remainder_with_ties_in_segment_order():
    a = ("59001", "T2", False, "PLUS")
    b = ("59001", "T3", False, "PLUS")
    c = ("59002", "T1", True, "PLAI")
    # rnd(1.5 + 1.5 + 1.2) = rnd(4.2) = 4: floors 1+1+1, one more to the tie 0.5/0.5 → a first.
    assert integer_flux({c: 1.2, b: 1.5, a: 1.5}) == {a: 2, b: 1, c: 1}
    # rnd(0.6 + 0.6 + 0.3) = rnd(1.5) = 2: both 0.6 get one.
    assert integer_flux({a: 0.6, b: 0.6, c: 0.3}) == {a: 1, b: 1, c: 0}


def test_exclusions_are_spread_pro_rata():
    a = ("59001", "T2", False, "PLUS")
    b = ("59001", "T3", True, "PLUS")
    c = ("59002", "T3", False, "PLUS")
    releases = {a: 30.0, b: 10.0, c: 20.0}
    # 8 withdrawn in commune 59001: 6 from a (30/40), 2 from b (10/40).
    net = net_flux(releases, [{"categorie": "anru", "commune": "59001", "logements": "8"}])
    assert net == pytest.approx({a: 24.0, b: 8.0, c: 20.0})


def test_targets_never_round_up_past_a_cap():
    # Two keys with equal fractional parts; the first in id order is capped at its floor.
    caps = {"A": 2}
    alloc = largest_remainder({"A": 2.5, "B": 2.5}, 5, lambda k, al: al[k] + 1 <= caps.get(k, 99))
    assert alloc == {"A": 2, "B": 3}


def test_targets_with_rates_and_remainder(tmp_path):
    # C = 651 (one segment): AG 0.05 × 651 = 32.55, PREF 0.30 × 651 − 32.55 = 162.75,
    # AL logements_reserves 100 / 1000 × 651 = 65.1, BAIL 651 − 260.4 = 390.6.
    # Floors 32 + 162 + 65 + 390 = 649; two more units: PREF (.75), BAIL (.6) — AG (.55) next.
    # Préfet cap rnd(195.3) = 195 = 32 + 163: not passed.
    folder = tmp_path / "i"
    folder.mkdir()
    write_toml(folder / "instance.toml", {"instance": {"departement": "59"}, "rotation": {"defaut": 0.1}})
    write_csv(folder / "parc.csv", ["commune", "epci", "qpv", "typologie", "financement", "logements",
                                    "liberations"],
              [{"commune": "59001", "epci": EPCI, "qpv": "non", "typologie": "T2", "financement": "PLUS",
                "logements": "1000", "liberations": "651"}])
    write_csv(folder / "reservataires.csv", ["id", "type", "logements_reserves"], [
        {"id": "PREF", "type": "prefet"}, {"id": "AG", "type": "prefet_agents"},
        {"id": "AL", "type": "action_logement", "logements_reserves": "100"},
        {"id": "BAIL", "type": "bailleur"}])
    write_csv(folder / "demande.csv", ["reservataire", "commune", "epci", "typologie", "quartile",
                                       "prioritaire", "demandeurs"], [])
    ref = build_reference(folder)
    assert ref.targets == {"AG": 32, "PREF": 163, "AL": 65, "BAIL": 391}


def test_random_instances_are_readable(tmp_path):
    import random

    from strategies import write_random_instance

    for seed in range(30):
        for ample in (False, True):
            folder = write_random_instance(random.Random(seed), tmp_path / f"{ample}-{seed}", ample)
            ref = build_reference(folder)
            assert sum(ref.flux.values()) == ref.total > 0 or not ample
            with (folder / "reservataires.csv").open(encoding="utf-8") as handle:
                types = [row["type"] for row in csv.DictReader(handle)]
            assert types.count("bailleur") == 1 and 3 <= len(types) <= 7
