"""The spreadsheet baseline: conserves the flux, and its fit is measured like the optimiser's."""

import pytest

from flux_opt.assiette.flux import compute_flux
from flux_opt.plan.baseline import baseline_fit, baseline_plan
from flux_opt.model.build import build_model
from flux_opt.pipeline import plan_instance
from flux_opt.input.schema import load_instance
from flux_opt.assiette.targets import compute_targets

from conftest import EXEMPLE, UNIFORMITY

TOML = UNIFORMITY["toml"]  # same parameters: priority share off, to isolate the rule tested


def prepared(path):
    instance = load_instance(path)
    flux = compute_flux(instance)
    targets = compute_targets(instance, flux)
    return instance, flux, targets


def test_baseline_conserves_every_segment_and_respects_territories():
    instance, flux, targets = prepared(EXEMPLE)
    plan = baseline_plan(instance, flux, targets)
    per_segment = plan.groupby(["commune", "typologie", "qpv", "financement"])["logements"].sum()
    expected = flux.segments.loc[flux.segments["flux"] > 0].set_index(
        ["commune", "typologie", "qpv", "financement"])["flux"]
    assert per_segment.sort_index().to_dict() == expected.sort_index().to_dict()
    assert plan["logements"].sum() == flux.total
    for rid, communes in targets.territoires.items():
        assert set(plan.loc[plan["reservataire"] == rid, "commune"]) <= set(communes)


def test_baseline_shares_follow_each_rate_with_the_remainder_to_the_bailleur(make_instance):
    # One segment of 10: préfet 30 % → 3, Action Logement 0.15 × 10 = 1.5, employeur 0.05 × 10 = 0.5;
    # bailleur the remainder 5. Largest remainder: one unit for the two halves, tie by id → action_logement.
    folder = make_instance(
        toml=TOML,
        parc="""
        commune,epci,qpv,typologie,financement,logements,liberations
        59350,200093201,non,T2,PLUS,100,10
        """,
        reservataires="""
        id,nom,type,taux
        prefet,Préfet,prefet,
        action_logement,AL,action_logement,0.15
        employeur,E,employeur,0.05
        bailleur,Bailleur,bailleur,
        """,
        demande="""
        reservataire,commune,epci,typologie,quartile,prioritaire,demandeurs
        bailleur,59350,,T2,q234,non,100
        """)
    plan = baseline_plan(*prepared(folder)).set_index("reservataire")["logements"].to_dict()
    assert plan == {"prefet": 3, "action_logement": 2, "bailleur": 5}


def test_optimum_fits_better_than_the_baseline_by_the_known_amount(make_instance):
    # Two communes of 10; préfet 30 % (6), candidates only in Lille. The spreadsheet gives it 3 + 3:
    # 3 préfet matches (×1.2) + 14 bailleur = 17 (17.6 weighted). The optimum puts 4 in Lille,
    # 2 in Roubaix (uniformity ±1): 4 + 14 = 18 (18.8 weighted), see test_model.
    folder = make_instance(**UNIFORMITY)
    instance, flux, targets = prepared(folder)
    plan = baseline_plan(instance, flux, targets)
    assert plan.loc[plan["reservataire"] == "prefet", "logements"].tolist() == [3, 3]
    fit = baseline_fit(build_model(instance, flux, targets), plan)
    assert fit.attributions_prevues == pytest.approx(17)
    assert fit.adequation_ponderee == pytest.approx(17.6)
    assert fit.regles_violees == []
    assert fit.ecart_objectifs == 0
    optimum = plan_instance(instance, duals=False).resume
    assert optimum["adequation_ponderee"] - fit.adequation_ponderee == pytest.approx(1.2)
    assert optimum["attributions_prevues"] - fit.attributions_prevues == pytest.approx(1)


def test_baseline_fit_of_the_optimal_plan_is_the_optimiser_fit():
    instance, flux, targets = prepared(EXEMPLE)
    model = build_model(instance, flux, targets)
    result = plan_instance(instance, duals=False)
    again = baseline_fit(model, result.plan)  # plan.csv form: qpv as oui/non
    assert again.adequation_ponderee == pytest.approx(result.resume["adequation_ponderee"], abs=1e-6)
    assert again.objectif == pytest.approx(result.resume["objectif"], abs=1e-4)
    spreadsheet = baseline_fit(model, baseline_plan(instance, flux, targets))
    assert spreadsheet.adequation_ponderee < result.resume["adequation_ponderee"]
    assert spreadsheet.objectif < result.resume["objectif"]
