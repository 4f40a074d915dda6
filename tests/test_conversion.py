"""Stock-to-flux conversion (DOMAIN.md §5): seed 000 figures, article-5 rate, département split."""

import pandas as pd
import pytest

from flux_opt.assiette.apportion import round_half_up
from flux_opt.stock.conversion import (
    convert,
    convert_by_departement,
    detail_conventions,
    split_by_departement,
    taux_article5,
    taux_rotation_moyen,
)


def _conventions(lignes: list[dict]) -> pd.DataFrame:
    """As read from conventions.csv: every cell a string, blanks empty."""
    table = pd.DataFrame(lignes).fillna("")
    return table.astype(str)


SEED_DEUX_CONVENTIONS = _conventions([
    {"reservataire": "als", "convention": "C1", "droits_de_suite": "600", "duree_restante": "6"},
    {"reservataire": "als", "convention": "C2", "droits_de_suite": "400", "duree_restante": "15"},
])


def test_methode_globale_seed_000_donne_1500():
    conventions = _conventions([
        {"reservataire": "als", "convention": "toutes", "droits_de_suite": "1000", "duree_restante": "15"},
    ])
    resultat = convert(conventions, 0.10, "globale", 2025)
    assert resultat.loc[0, "volume_du"] == 1500
    assert resultat.loc[0, "duree_moyenne"] == 15
    assert resultat.loc[0, "methode"] == "globale"


def test_methode_par_convention_seed_000_donne_360_plus_600():
    detail = detail_conventions(SEED_DEUX_CONVENTIONS, 0.10, 2025)
    assert list(detail["volume_du"]) == [360, 600]
    resultat = convert(SEED_DEUX_CONVENTIONS, 0.10, "convention", 2025)
    assert resultat.loc[0, "volume_du"] == 960
    assert resultat.loc[0, "droits_de_suite"] == 1000


def test_methode_globale_sur_les_deux_conventions_moyenne_non_ponderee():
    # Seed 000: average duration = sum of durations / number of conventions = 10.5.
    resultat = convert(SEED_DEUX_CONVENTIONS, 0.10, "globale", 2025)
    assert resultat.loc[0, "duree_moyenne"] == 10.5
    assert resultat.loc[0, "volume_du"] == 1050


def test_duree_restante_calculee_depuis_annee_fin_et_convention_expiree():
    conventions = _conventions([
        {"reservataire": "als", "convention": "C1", "droits_de_suite": "600", "annee_fin": "2031"},
        {"reservataire": "als", "convention": "C2", "droits_de_suite": "400", "annee_fin": "2040"},
        {"reservataire": "ville", "convention": "V1", "droits_de_suite": "50", "annee_fin": "2020"},
    ])
    detail = detail_conventions(conventions, 0.10, 2025)
    assert list(detail["duree_restante"]) == [6, 15, 0]
    resultat = convert(conventions, 0.10, "convention", 2025).set_index("reservataire")
    assert resultat.loc["als", "volume_du"] == 960
    assert resultat.loc["ville", "volume_du"] == 0


def test_taux_de_la_ligne_puis_typologie_puis_bailleur():
    conventions = _conventions([
        {"reservataire": "als", "convention": "C1", "droits_de_suite": "100", "duree_restante": "10",
         "typologie": "T2", "taux_rotation": "0,05"},
        {"reservataire": "als", "convention": "C2", "droits_de_suite": "100", "duree_restante": "10",
         "typologie": "T4", "taux_rotation": ""},
        {"reservataire": "als", "convention": "C3", "droits_de_suite": "100", "duree_restante": "10",
         "typologie": "", "taux_rotation": ""},
    ])
    detail = detail_conventions(conventions, 0.10, 2025, taux_par_typologie={"T2": 0.2, "T4": 0.08})
    assert list(detail["taux_rotation"]) == [0.05, 0.08, 0.10]
    assert list(detail["volume_du"]) == [50, 80, 100]
    globale = convert(conventions, 0.10, "globale", 2025, {"T2": 0.2, "T4": 0.08})
    # Global method: one DS-weighted rate (0.05 + 0.08 + 0.10) / 3 applied to 300 DS × 10 years.
    assert globale.loc[0, "taux_rotation"] == pytest.approx(0.23 / 3)
    assert globale.loc[0, "volume_du"] == pytest.approx(230)


def test_typologie_sans_taux_est_une_erreur_francaise():
    conventions = _conventions([
        {"reservataire": "als", "convention": "C1", "droits_de_suite": "100", "duree_restante": "10", "typologie": "T6+"},
    ])
    with pytest.raises(ValueError, match="typologie T6\\+"):
        detail_conventions(conventions, 0.10, 2025, taux_par_typologie={"T2": 0.2})


@pytest.mark.parametrize(
    ("ligne", "message"),
    [
        ({"droits_de_suite": "beaucoup", "duree_restante": "5"}, "ligne 2, champ droits_de_suite"),
        ({"droits_de_suite": "10", "duree_restante": ""}, "ni duree_restante ni annee_fin"),
        ({"droits_de_suite": "-1", "duree_restante": "5"}, "négatif"),
        ({"droits_de_suite": "10", "duree_restante": "5", "taux_rotation": "12"}, "entre 0 et 1"),
    ],
)
def test_erreurs_de_saisie_nomment_fichier_et_ligne(ligne, message):
    conventions = _conventions([{"reservataire": "als", "convention": "C1", **ligne}])
    with pytest.raises(ValueError, match=message):
        convert(conventions, 0.10, "convention", 2025)


def test_methode_inconnue_refusee():
    with pytest.raises(ValueError, match="Méthode de conversion inconnue"):
        convert(SEED_DEUX_CONVENTIONS, 0.10, "moyenne", 2025)


def test_taux_rotation_moyen_des_trois_dernieres_annees():
    taux = {2017: 0.50, 2018: 0.09, 2019: 0.10, 2020: 0.11}
    assert taux_rotation_moyen(taux) == pytest.approx(0.10)
    assert taux_rotation_moyen({2020: 0.08, 2019: 0.12}) == pytest.approx(0.10)
    with pytest.raises(ValueError):
        taux_rotation_moyen({})


def test_taux_article5_logements_reserves_sur_parc():
    assert taux_article5(1_500, 20_000) == pytest.approx(0.075)
    with pytest.raises(ValueError):
        taux_article5(10, 0)
    with pytest.raises(ValueError):
        taux_article5(30_000, 20_000)


def test_arrondi_au_plus_proche_demi_vers_le_haut():
    assert [round_half_up(v) for v in (1500.0, 1500.5, 1500.4999, 2.5000000001, 0.49)] == [1500, 1501, 1500, 3, 0]


def test_repartition_regionale_somme_exacte_au_prorata_du_parc():
    parts = split_by_departement(1_000, {"59": 1, "62": 1, "80": 1})
    assert parts.sum() == 1_000
    assert parts.to_dict() == {"59": 334, "62": 333, "80": 333}
    parts = split_by_departement(960.4, {"62": 8_000, "59": 12_000, "02": 0})
    assert list(parts.index) == ["02", "59", "62"]  # codes stay strings, leading zero kept
    assert parts.to_dict() == {"02": 0, "59": 576, "62": 384}


def test_le_reste_va_aux_plus_grandes_parts():
    parts = split_by_departement(10, {"a": 1.0, "b": 2.0, "c": 3.0})
    # 1.667, 3.333, 5 → floors 1, 3, 5, remaining unit to a (0.667 > 0.333).
    assert parts.to_dict() == {"a": 2, "b": 3, "c": 5}


def test_conversion_multi_departements_deux_modes():
    conventions = SEED_DEUX_CONVENTIONS.assign(departement=["59", "62"])
    par_dep = convert_by_departement(conventions, 0.10, "convention", 2025, "departement")
    assert par_dep.set_index("departement")["volume_du"].to_dict() == {"59": 360, "62": 600}
    regional = convert_by_departement(
        conventions, 0.10, "convention", 2025, "region", {"59": 12_000, "62": 8_000}
    )
    assert regional.set_index("departement")["volume_du"].to_dict() == {"59": 576, "62": 384}
    assert regional["volume_du"].sum() == 960
    with pytest.raises(ValueError, match="parc par département"):
        convert_by_departement(conventions, 0.10, "convention", 2025, "region")
