"""Lissage of the owed volumes (DOMAIN.md §5), instance reading and report outputs."""

import math
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from flux_opt.errors import InvalidInput

from flux_opt.stock.instance import (
    apply_targets,
    convert_instance,
    read_table,
    year_targets,
    available_share,
)
from flux_opt.report.conversion import (
    TITRE_SECTION,
    write_excel,
    write_outputs,
    console_view,
    conversion_section,
    lissage_table,
)
from flux_opt.stock.lissage import spread_lissage

from conftest import stock_of


def _flux(valeur: float, debut: int = 2025, annees: int = 3) -> dict[int, float]:
    return {debut + k: valeur for k in range(annees)}


def test_volume_reparti_egalement_quand_la_capacite_suffit():
    lissage = spread_lissage(pd.DataFrame({"reservataire": ["als"], "volume_du": [900.0]}), _flux(1_000))
    assert lissage.objectifs.loc["als"].to_dict() == {2025: 300, 2026: 300, 2027: 300}
    assert lissage.realisable and lissage.statut == "optimal" and lissage.notes == []


def test_capacite_contraignante_donne_la_trajectoire_la_plus_stable():
    # Year 1 can take 200 only; the most stable full spread of 900 is 200/300/400
    # (largest yearly change 100; 200/350/350 would jump by 150).
    lissage = spread_lissage(pd.DataFrame({"reservataire": ["als"], "volume_du": [900]}),
                     {2025: 200, 2026: 1_000, 2027: 1_000})
    assert list(lissage.objectifs.loc["als"]) == [200, 300, 400]
    assert lissage.realisable


def test_chaque_volume_entierement_lisse_et_capacite_respectee_chaque_annee():
    volumes = pd.DataFrame({
        "reservataire": ["als", "ville", "employeur"],
        "volume_du": ["1050", "960,4", "37.5"],  # CSV strings, French comma accepted
        "annees": ["6", "4", ""],
    })
    flux = {2025: 600.0, 2026: 640.5, 2027: 580.0, 2028: 620.0, 2029: 600.0, 2030: 610.0}
    lissage = spread_lissage(volumes, flux, part_max=0.7, duree_defaut=5)
    sommes = lissage.objectifs.sum(axis=1).to_dict()
    assert sommes == {"als": 1050, "employeur": 38, "ville": 960}  # rounded half up
    for annee, valeur in flux.items():
        assert lissage.objectifs[annee].sum() <= math.floor(0.7 * valeur)
    assert lissage.objectifs.loc["ville", [2029, 2030]].sum() == 0
    assert lissage.objectifs.loc["employeur", 2030] == 0
    assert (lissage.objectifs.dtypes == "int64").all()
    assert lissage.realisable


def test_annees_explicites_des_petits_reservataires():
    volumes = pd.DataFrame({
        "reservataire": ["als", "petit"],
        "volume_du": [600, 15],
        "annees_explicites": ["", "2026;2028"],
    })
    lissage = spread_lissage(volumes, _flux(500, annees=4), horizon=4)
    petit = lissage.objectifs.loc["petit"]
    assert petit[2025] == 0 and petit[2027] == 0
    assert sorted([petit[2026], petit[2028]]) == [7, 8]
    assert lissage.objectifs.loc["als"].sum() == 600


def test_nouveaux_droits_ajoutes_dans_leurs_annees_sans_surcharger():
    volumes = pd.DataFrame({"reservataire": ["als"], "volume_du": [900], "annees": [3]})
    nouveaux = pd.DataFrame({
        "reservataire": ["als", "ville"],
        "programme": ["anru_lille", "coeur_de_ville"],
        "logements": ["60", "20"],
        "annee_debut": ["2026", "2025"],
        "duree": ["2", "5"],
    })
    lissage = spread_lissage(volumes, _flux(400, annees=5), nouveaux, part_max=0.8)
    detail = lissage.detail
    anru = detail[detail["source"] == "anru_lille"]
    assert anru["logements"].sum() == 60 and set(anru["annee"]) == {2026, 2027}
    assert detail.loc[detail["source"] == "coeur_de_ville", "logements"].sum() == 20
    assert lissage.objectifs.loc["als"].sum() == 960  # stock + programme
    assert (lissage.annuel["logements"] <= lissage.annuel["capacite"]).all()
    # Stock absorbs the programme: the réservataire's yearly target stays flat.
    assert list(lissage.objectifs.loc["als"]) == [320, 320, 320, 0, 0]


def test_capacite_impossible_signalee_sans_planter():
    lissage = spread_lissage(pd.DataFrame({"reservataire": ["als"], "volume_du": [900]}), _flux(250))
    assert lissage.objectifs.loc["als"].sum() == 900  # the owed volume is still fully spread
    assert not lissage.realisable
    assert lissage.annuel["depassement"].sum() == 150  # the smallest possible overload
    assert lissage.notes and "dépassent la capacité" in lissage.notes[0]


def test_horizon_etendu_aux_annees_negociees():
    volumes = pd.DataFrame({"reservataire": ["als"], "volume_du": [600], "annees": [6]})
    lissage = spread_lissage(volumes, _flux(1_000, annees=6), horizon=3)
    assert lissage.annees == list(range(2025, 2031))
    assert list(lissage.objectifs.loc["als"]) == [100] * 6


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"horizon": 2}, "au moins 3 ans"),
        ({"horizon": 4}, "Flux prévu manquant pour l'année \\(les années\\) : 2028"),
        ({"part_max": 1.5}, "part maximale"),
    ],
)
def test_parametres_invalides(arguments, message):
    with pytest.raises(ValueError, match=message):
        spread_lissage(pd.DataFrame({"reservataire": ["als"], "volume_du": [90]}), _flux(100), **arguments)


# ---------------------------------------------------------------- instance folder


def _ecrire(dossier: Path, nom: str, texte: str) -> None:
    (dossier / nom).write_text(texte.strip() + "\n", encoding="utf-8")


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    _ecrire(tmp_path, "instance.toml", """
[instance]
nom = "test"
bailleur = "Habitat Test"
departement = "59"
annee = 2025

[regles]
prefet_taux = 0.30

[rotation]
defaut = 0.08

[conversion]
methode = "convention"
taux_rotation_annees = { "2021" = 0.5, "2022" = 0.09, "2023" = 0.10, "2024" = 0.11 }
duree_lissage = 4
""")
    # A = 5000 × 0.10 + 1500 × 0.08 (default) + 30 = 650; B = 50 → C = 600.
    _ecrire(tmp_path, "parc.csv", """
commune,epci,qpv,typologie,financement,logements,taux_rotation,premieres_mises_en_location
59350,200093201,non,T3,PLUS,5000,0.10,30
59009,200093201,oui,T2,PLAI,1500,,
""")
    _ecrire(tmp_path, "exclusions.csv", "categorie,logements\nmutation,50")
    _ecrire(tmp_path, "reservataires.csv", """
id,nom,type,territoire,taux,logements,logements_reserves,gestion
prefet,Préfet du Nord,prefet,,0.25,,,deleguee
als,Action Logement Services,action_logement,,,,,deleguee
ville,Ville de Lille,collectivite,59350,,,,directe
metropole,Métropole européenne de Lille,collectivite,200093201,0.05,,,deleguee
bailleur,Habitat Test,bailleur,,,,,deleguee
""")
    _ecrire(tmp_path, "conventions.csv", """
reservataire,convention,droits_de_suite,annee_fin,duree_restante
als,ALS-1998-01,600,2031,
als,ALS-2005-07,400,,15
ville,VL-2010-02,20,2035,
""")
    _ecrire(tmp_path, "lissage.csv", "reservataire,annees_explicites\nville,2026;2027")
    return tmp_path


def test_convertir_instance_reproduit_le_seed_et_tient_le_flux(instance: Path):
    resultat = convert_instance(stock_of(instance))
    volumes = resultat.conversion.set_index("reservataire")["volume_du"].to_dict()
    assert volumes == {"als": 960, "ville": 20}  # 3-year average rate = 10 %
    assert resultat.parametres["taux_rotation"] == pytest.approx(0.10)
    assert resultat.parametres["part_max"] == pytest.approx(0.70)  # 1 − préfet 25 % − métropole 5 %
    lissage = resultat.lissage
    assert lissage.annees == [2025, 2026, 2027, 2028]
    assert lissage.annuel["flux_prevu"].tolist() == [600.0] * 4
    assert (lissage.annuel["logements"] <= 420).all() and lissage.realisable
    assert list(lissage.objectifs.loc["als"]) == [240] * 4
    assert list(lissage.objectifs.loc["ville"]) == [0, 10, 10, 0]


def test_objectifs_annee_un_remplacent_logements_de_reservataires(instance: Path):
    resultat = convert_instance(stock_of(instance), methode="globale", annees=3)
    objectifs = year_targets(resultat)
    # Global: 1000 DS × 10.5 years × 10 % = 1050 over 3 years = 350 a year.
    assert objectifs == {"als": 350, "ville": 0}
    reservataires = apply_targets(read_table(instance / "reservataires.csv"), objectifs)
    assert reservataires.set_index("id")["logements"].to_dict() == {
        "prefet": "", "als": "350", "ville": "0", "metropole": "", "bailleur": ""
    }
    assert reservataires["logements"].dtype == reservataires["id"].dtype  # still text, as read
    with pytest.raises(ValueError, match="inconnu"):
        apply_targets(reservataires, {"inconnu": 3})


def test_convertir_instance_mode_region(instance: Path):
    toml = (instance / "instance.toml").read_text(encoding="utf-8")
    toml += 'mode_departements = "region"\nparc_departements = { "59" = 3000, "62" = 1000 }\n'
    (instance / "instance.toml").write_text(toml, encoding="utf-8")
    conventions = (instance / "conventions.csv").read_text(encoding="utf-8").splitlines()
    lignes = [conventions[0] + ",departement"] + [l + ",59" for l in conventions[1:2]] + [l + ",62" for l in conventions[2:]]
    (instance / "conventions.csv").write_text("\n".join(lignes) + "\n", encoding="utf-8")
    volumes = convert_instance(stock_of(instance)).conversion.set_index("reservataire")["volume_du"].to_dict()
    assert volumes == {"als": 720, "ville": 15}  # 3/4 of the region-wide 960 and 20


def test_reservataire_de_convention_inconnu_est_une_erreur(instance: Path):
    with (instance / "conventions.csv").open("a", encoding="utf-8") as fichier:
        fichier.write("fantome,X-1,10,2030,\n")
    with pytest.raises(InvalidInput) as refused:  # the one instance reader names file, row and field
        convert_instance(stock_of(instance))
    (problem,) = refused.value.problems
    assert (problem.fichier, problem.ligne, problem.champ) == ("conventions.csv", 5, "reservataire")
    assert "fantome" in problem.message


def test_part_disponible_sans_taux_prefet_prend_la_regle():
    reservataires = pd.DataFrame({
        "id": ["prefet", "agents", "als", "ville", "bailleur"],
        "type": ["prefet", "prefet_agents", "action_logement", "collectivite", "bailleur"],
        "taux": ["", "0.05", "0.10", "0.20", ""],
    })
    assert available_share(reservataires, {"als"}, 0.30) == pytest.approx(0.50)
    assert available_share(None, {"als"}, 0.30) == pytest.approx(0.70)


# ---------------------------------------------------------------- report outputs


def test_excel_html_et_fichiers_de_sortie(instance: Path, tmp_path_factory):
    resultat = convert_instance(stock_of(instance))
    sortie = tmp_path_factory.mktemp("sortie")
    chemin = write_excel(sortie / "c.xlsx", resultat.conversion, resultat.lissage, resultat.detail)
    classeur = openpyxl.load_workbook(chemin)
    assert classeur.sheetnames == ["conversion", "conventions", "lissage", "capacite"]
    entetes = [c.value for c in classeur["conversion"][1]]
    assert "Volume dû (relogements)" in entetes
    volume = classeur["conversion"].cell(row=2, column=entetes.index("Volume dû (relogements)") + 1).value
    assert volume == 960
    lissage = classeur["lissage"]
    assert [c.value for c in lissage[1]] == ["Réservataire", "2025", "2026", "2027", "2028", "Total"]
    assert [c.value for c in lissage[2]] == ["als", 240, 240, 240, 240, 960]

    fragment = conversion_section(resultat.conversion, resultat.lissage, resultat.parametres)
    assert f"<h2>{TITRE_SECTION}</h2>" in fragment
    assert "par convention" in fragment and "10,00 %" in fragment and "960" in fragment
    assert "<td>Capacité (part max × flux)</td>" in fragment

    table = lissage_table(resultat.lissage).set_index("Réservataire")
    assert table.loc["Total des objectifs", "Total"] == 980
    assert table.loc["Capacité (part max × flux)", "2025"] == 420

    fichiers = {p.name for p in write_outputs(sortie / "convertir", resultat)}
    assert fichiers == {"conversion.csv", "conventions_detail.csv", "objectifs_pluriannuels.csv",
                        "capacite_annuelle.csv", "conversion.xlsx", "conversion.html"}
    relu = pd.read_csv(sortie / "convertir" / "objectifs_pluriannuels.csv", dtype=str)
    assert relu.columns.tolist() == ["reservataire", "2025", "2026", "2027", "2028"]
    assert console_view(resultat).renderables  # something to print


def test_html_signale_les_annees_impossibles():
    lissage = spread_lissage(pd.DataFrame({"reservataire": ["als"], "volume_du": [900]}), _flux(250))
    conversion = pd.DataFrame([{"reservataire": "als", "conventions": 1, "droits_de_suite": 600.0,
                                "duree_moyenne": 15.0, "taux_rotation": 0.1, "volume_du": 900.0,
                                "methode": "convention"}])
    fragment = conversion_section(conversion, lissage)
    assert "ne peut pas être tenue en" in fragment and "class=\"alertes\"" in fragment


EXEMPLE = Path(__file__).resolve().parents[1] / "instances" / "exemple"


@pytest.mark.skipif(not (EXEMPLE / "conventions.csv").exists(), reason="instance d'exemple absente")
@pytest.mark.parametrize("methode", ["globale", "convention"])
def test_lissage_de_l_instance_exemple_tient_le_flux_chaque_annee(methode):
    resultat = convert_instance(stock_of(EXEMPLE), methode=methode, annees=6)
    lissage = resultat.lissage
    assert len(lissage.annees) >= 6
    for ligne in lissage.annuel.itertuples():
        assert ligne.logements <= math.floor(resultat.parametres["part_max"] * ligne.flux_prevu + 1e-9)
    dus = lissage.volumes.set_index("reservataire")["volume_entier"]
    assert lissage.objectifs.sum(axis=1).to_dict() == dus.to_dict()
    assert set(year_targets(resultat)) == set(resultat.conversion["reservataire"])


@pytest.mark.skipif(not (EXEMPLE / "conventions.csv").exists(), reason="instance d'exemple absente")
def test_convertir_names_the_reservataires_in_the_page_and_workbook_ids_stay_in_the_csv(tmp_path):
    """conversion.html and conversion.xlsx are read by people: « Action Logement Services », not
    `action_logement`; conversion.csv and objectifs_pluriannuels.csv keep the ids."""
    from typer.testing import CliRunner

    from flux_opt.cli.main import app

    sortie = CliRunner().invoke(app, ["convertir", str(EXEMPLE), "--sortie", str(tmp_path / "c")])
    assert sortie.exit_code == 0, sortie.output
    page = (tmp_path / "c" / "conversion.html").read_text(encoding="utf-8")
    assert "<td>Action Logement Services</td>" in page and "<td>Ville de Roubaix</td>" in page
    assert "surtout Action Logement Services (" in page  # why the two methods differ, by name
    for rid in ("action_logement", "employeur_port", "ville_roubaix", ">mel<"):
        assert rid not in page, rid
    classeur = openpyxl.load_workbook(tmp_path / "c" / "conversion.xlsx")
    for feuille in ("conversion", "conventions", "lissage"):
        noms = {ligne[0] for ligne in classeur[feuille].iter_rows(min_row=2, values_only=True)}
        assert "Métropole européenne de Lille" in noms and "mel" not in noms, feuille
    assert set(pd.read_csv(tmp_path / "c" / "conversion.csv")["reservataire"]) == {
        "action_logement", "employeur_port", "mel", "ville_roubaix"}
