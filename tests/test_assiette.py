"""Assiette: A − B = C, exclusions pro rata, integer flux by largest remainder (DOMAIN §3)."""

import numpy as np
import pytest

from flux_opt.assiette.apportion import largest_remainder, round_half_up
from flux_opt.assiette.flux import compute_flux
from flux_opt.input.schema import load_instance

RESERVATAIRES = """
id,nom,type
bailleur,Bailleur,bailleur
"""
DEMANDE = """
reservataire,commune,epci,typologie,quartile,prioritaire,demandeurs
bailleur,59350,,T3,q1,non,10
"""


def test_seed_instruction_1000_minus_350_is_650(make_instance):
    # Instruction of 28 March 2022 §4.1: A = 1 000 lettings, B = 350 exclusions → C = 650.
    folder = make_instance(
        parc="""
        commune,epci,qpv,typologie,financement,logements,liberations
        59350,200093201,non,T3,PLUS,6000,600
        59512,200093201,oui,T2,PLAI,4000,400
        """,
        exclusions="""
        categorie,commune,typologie,qpv,financement,logements
        mutation,,,,,200
        anru,59512,,,,100
        vente,,,,,50
        """,
        reservataires=RESERVATAIRES, demande=DEMANDE)
    flux = compute_flux(load_instance(folder))
    assert flux.liberations == pytest.approx(1000)
    assert flux.exclus == pytest.approx(350)
    assert flux.total == 650
    seg = flux.segments.set_index("commune")
    # mutation 200 and vente 50 spread 60/40; anru 100 only in Roubaix.
    assert seg.at["59350", "exclusions"] == pytest.approx(250 * 0.6)
    assert seg.at["59512", "exclusions"] == pytest.approx(250 * 0.4 + 100)
    assert seg["flux"].sum() == 650


def test_seed_hdf_20000_at_10_percent_minus_400_is_1600(make_instance):
    # HdF framework (seed 000): 20 000 dwellings × 10 % = 2 000 lettings, − 400 → 1 600.
    folder = make_instance(
        parc="""
        commune,epci,qpv,typologie,financement,logements,taux_rotation
        59350,200093201,non,T3,PLUS,12000,0.10
        59512,200093201,oui,T2,PLAI,8000,
        """,
        toml="""
        [instance]
        nom = "hdf"
        bailleur = "B"
        departement = "59"
        annee = 2027
        [rotation]
        defaut = 0.10
        """,
        exclusions="""
        categorie,logements
        mutation,400
        """,
        reservataires=RESERVATAIRES, demande=DEMANDE)
    flux = compute_flux(load_instance(folder))
    assert flux.liberations == pytest.approx(2000)
    assert flux.total == 1600


def test_first_lettings_add_to_turnover(make_instance):
    folder = make_instance(
        parc="""
        commune,epci,qpv,typologie,financement,logements,taux_rotation,premieres_mises_en_location
        59350,200093201,non,T3,PLUS,100,0.07,12
        """,
        reservataires=RESERVATAIRES, demande=DEMANDE)
    assert compute_flux(load_instance(folder)).total == 19  # 100 × 7 % + 12


def test_integer_flux_sums_exactly_to_rounded_total():
    values = np.array([0.4, 0.4, 0.4, 1.7, 2.6])  # Σ = 5.5 → 6 (half up)
    assert round_half_up(values.sum()) == 6
    result = largest_remainder(values, 6)
    assert result.sum() == 6
    assert list(result) == [1, 0, 0, 2, 3]  # floors 0,0,0,1,2; +1 to remainders .7, .6, then the first .4
    # independent rounding would have given 0+0+0+2+3 = 5: the total is not preserved
    assert np.round(values).sum() == 5


def test_largest_remainder_respects_caps():
    values = np.array([2.5, 2.5])
    assert list(largest_remainder(values, 5, lambda i, cur: not (i == 0 and cur[0] >= 2))) == [2, 3]


def test_exclusion_beyond_releases_is_clipped_and_reported_not_an_error(make_instance):
    # 15 excluded in 59512 where 10 are released: clipped to 10 (a segment's flux never goes below
    # 0); the flux is what 59350 releases, 10, and the clipping keeps its figures.
    folder = make_instance(
        parc="""
        commune,epci,qpv,typologie,financement,logements,liberations
        59350,200093201,non,T3,PLUS,100,10
        59512,200093201,non,T3,PLUS,100,10
        """,
        exclusions="""
        categorie,commune,logements
        anru,59512,15
        lhi,59350,0
        """,
        reservataires=RESERVATAIRES, demande=DEMANDE)
    flux = compute_flux(load_instance(folder))
    assert flux.total == 10 and flux.exclus == pytest.approx(10)
    [clip] = flux.ecretements.to_dict("records")
    assert (clip["ligne"], clip["demandes"], clip["liberations"], clip["retenus"], clip["ecretes"]) == (2, 15, 10, 10, 5)
    assert clip["portee"] == "anru 59512"
