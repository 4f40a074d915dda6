"""Tests of the synthetic instance generator (flux_opt.scale.generate)."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flux_opt.scale.generate import (
    TAILLES,
    generate_instance,
    generate_national,
    generate_size,
)

FICHIERS = ("instance.toml", "parc.csv", "exclusions.csv", "reservataires.csv",
            "demande.csv", "mixite.csv", "objectifs.csv")
SEGMENT = ["commune", "typologie", "qpv", "financement"]


def lire(dossier: Path, nom: str) -> pd.DataFrame:
    return pd.read_csv(dossier / nom, dtype=str, keep_default_na=False)


def lire_parc(dossier: Path) -> pd.DataFrame:
    parc = lire(dossier, "parc.csv")
    parc["logements"] = parc["logements"].astype(int)
    parc["taux_rotation"] = parc["taux_rotation"].astype(float)
    parc["premieres_mises_en_location"] = parc["premieres_mises_en_location"].astype(int)
    parc["liberations"] = parc["logements"] * parc["taux_rotation"] + parc["premieres_mises_en_location"]
    return parc


@pytest.fixture(scope="module")
def instances(tmp_path_factory) -> dict[str, Path]:
    racine = tmp_path_factory.mktemp("instances")
    return {
        "petit": generate_size(racine / "petit", "petit", graine=1),
        "moyen": generate_instance(racine / "moyen", 30_000, reservataires=11, graine=2, departement="2A"),
        "outre_mer": generate_instance(racine / "outre_mer", 5_000, graine=3, departement="974"),
    }


@pytest.fixture(params=["petit", "moyen", "outre_mer"])
def dossier(request, instances) -> Path:
    return instances[request.param]


def test_fichiers_et_toml(dossier):
    for nom in FICHIERS:
        assert (dossier / nom).is_file(), nom
    toml = tomllib.loads((dossier / "instance.toml").read_text(encoding="utf-8"))
    parc = lire_parc(dossier)
    assert set(toml["instance"]) == {"nom", "bailleur", "departement", "annee"}
    assert isinstance(toml["instance"]["departement"], str)
    assert toml["regles"]["prefet_taux"] == 0.30 and toml["regles"]["prefet_hors_qpv_lecture"] == "taux"
    assert 0.05 <= toml["rotation"]["defaut"] <= 0.12
    assert toml["solveur"]["threads"] == 1 and toml["solveur"]["temps_max_s"] == 60
    assert set(toml["cia"]["epci"]) == set(parc.loc[parc["qpv"] == "oui", "epci"])


def test_codes_restent_des_chaines(instances):
    parc = lire_parc(instances["moyen"])
    toml = tomllib.loads((instances["moyen"] / "instance.toml").read_text(encoding="utf-8"))
    assert toml["instance"]["departement"] == "2A"
    assert parc["commune"].str.fullmatch(r"2A\d{3}").all()
    assert lire_parc(instances["outre_mer"])["commune"].str.fullmatch(r"974\d{2}").all()
    assert parc["epci"].str.fullmatch(r"\d{9}").all()
    assert (parc.groupby("commune")["epci"].nunique() == 1).all()


def test_segments_uniques_et_valides(dossier):
    parc = lire_parc(dossier)
    assert not parc.duplicated(SEGMENT).any()
    assert (parc["logements"] > 0).all()
    assert set(parc["typologie"]) <= {"T1", "T2", "T3", "T4", "T5", "T6+"}
    assert set(parc["financement"]) <= {"PLAI", "PLUS", "PLS", "autre"}
    assert set(parc["qpv"]) <= {"oui", "non"}
    assert parc["taux_rotation"].between(0.05, 0.12).all()


def test_distributions_plausibles(instances):
    parc = lire_parc(instances["moyen"])
    total = parc["logements"].sum()
    assert total == 30_000
    typologies = parc.groupby("typologie")["logements"].sum()
    assert typologies.idxmax() == "T3"
    assert typologies["T6+"] < typologies["T5"] < typologies["T4"]
    financements = parc.groupby("financement")["logements"].sum() / total
    assert financements.idxmax() == "PLUS" and financements["PLUS"] > 0.6
    assert 0.10 <= parc.loc[parc["qpv"] == "oui", "logements"].sum() / total <= 0.30
    part_qpv = (parc[parc["qpv"] == "oui"].groupby("commune")["logements"].sum()
                .reindex(parc["commune"].unique(), fill_value=0) / parc.groupby("commune")["logements"].sum())
    assert (part_qpv == 0).mean() > 0.5 and part_qpv.max() >= 0.30
    par_commune = parc.groupby("commune")["logements"].sum()
    assert par_commune.max() > 10 * par_commune.median()  # a ville-centre and many small communes


def test_exclusions_dans_leur_perimetre(dossier):
    parc = lire_parc(dossier)
    exclusions = lire(dossier, "exclusions.csv")
    exclusions["logements"] = exclusions["logements"].astype(int)
    assert set(exclusions["categorie"]) <= {"mutation", "anru", "orcod", "lhi", "vente", "urgence"}
    assert (exclusions["logements"] > 0).all()
    par_segment = pd.Series(0.0, index=parc.index)
    for ligne in exclusions.itertuples():
        masque = pd.Series(True, index=parc.index)
        for colonne in ("commune", "typologie", "qpv", "financement"):
            valeur = getattr(ligne, colonne)
            if valeur:
                masque &= parc[colonne] == valeur
        perimetre = parc.loc[masque, "liberations"].sum()
        assert ligne.logements <= perimetre, ligne
        par_segment[masque] += ligne.logements * parc.loc[masque, "liberations"] / perimetre
    assert (par_segment <= parc["liberations"] + 1e-9).all()  # pro rata, no segment goes negative
    assert 0.10 <= exclusions["logements"].sum() / parc["liberations"].sum() <= 0.20


def taux_par_commune(dossier: Path) -> pd.Series:
    """Cumulated target rates of the non-bailleur réservataires on each commune."""
    parc = lire_parc(dossier)
    reservataires = lire(dossier, "reservataires.csv")
    exclusions = lire(dossier, "exclusions.csv")["logements"].astype(int).sum()
    flux = parc["liberations"].sum() - exclusions
    communes = parc.drop_duplicates("commune").set_index("commune")["epci"]
    cumul = pd.Series(0.0, index=communes.index)
    for r in reservataires.itertuples():
        if r.type == "bailleur":
            continue
        if r.taux:
            taux = float(r.taux)
        elif r.logements:
            taux = int(r.logements) / flux
        elif r.logements_reserves:
            taux = int(r.logements_reserves) / parc["logements"].sum()
        else:
            assert r.type == "prefet"
            taux = 0.30 - float(reservataires.loc[reservataires["type"] == "prefet_agents", "taux"].iloc[0])
        codes = set(r.territoire.split(";")) if r.territoire else None
        couvert = communes.index.isin(codes) | communes.isin(codes) if codes else np.ones(len(communes), bool)
        cumul[couvert] += taux
    return cumul


def test_reservataires_laissent_un_reste_au_bailleur(dossier):
    reservataires = lire(dossier, "reservataires.csv")
    types = reservataires["type"].value_counts()
    assert types["bailleur"] == 1 and types["prefet"] == 1 and types["prefet_agents"] == 1
    assert types["action_logement"] == 1
    assert reservataires["id"].is_unique
    prefet = reservataires[reservataires["type"] == "prefet"].iloc[0]
    assert prefet["taux"] == "" and prefet["territoire"] == ""
    assert reservataires.loc[reservataires["type"] == "prefet_agents", "taux"].iloc[0] == "0.05"
    collectivites = reservataires[reservataires["type"] == "collectivite"]
    assert (collectivites["territoire"] != "").all()
    assert (collectivites["taux"].astype(float) <= 0.20).all()
    assert (collectivites["financement_apporte"] == "non").all()
    assert (taux_par_commune(dossier) <= 1.0).all()


def test_reservataires_nombre_demande(instances):
    assert len(lire(instances["petit"], "reservataires.csv")) == TAILLES["petit"]["reservataires"]
    assert len(lire(instances["moyen"], "reservataires.csv")) == 11


def test_demande_dans_le_territoire_sans_chevauchement(dossier):
    parc = lire_parc(dossier)
    reservataires = lire(dossier, "reservataires.csv").set_index("id")
    demande = lire(dossier, "demande.csv")
    assert ((demande["commune"] == "") ^ (demande["epci"] == "")).all()
    assert (demande["demandeurs"].astype(int) > 0).all()
    assert set(demande["quartile"]) <= {"q1", "q234"}
    assert set(demande["prioritaire"]) | set(demande["travailleur_essentiel"]) <= {"oui", "non"}
    epci_de = parc.drop_duplicates("commune").set_index("commune")["epci"]
    for rid, pool in demande.groupby("reservataire"):
        territoire = reservataires.loc[rid, "territoire"]
        communes = set(epci_de.index)
        if territoire:
            codes = set(territoire.split(";"))
            communes = {c for c in communes if c in codes or epci_de[c] in codes}
        epcis = set(epci_de[list(communes)])
        assert set(pool.loc[pool["commune"] != "", "commune"]) <= communes, rid
        assert set(pool.loc[pool["epci"] != "", "epci"]) <= epcis, rid
    cle = ["reservataire", "typologie", "quartile", "prioritaire", "travailleur_essentiel"]
    fines = demande[demande["commune"] != ""].assign(epci=lambda d: d["commune"].map(epci_de))
    grosses = demande[demande["epci"] != ""]
    assert fines.merge(grosses, on=cle + ["epci"]).empty
    assert not demande.duplicated(cle + ["commune", "epci"]).any()


def test_demande_rare_pour_les_grands_logements(instances):
    parc = lire_parc(instances["moyen"])
    demande = lire(instances["moyen"], "demande.csv")
    demandeurs = demande["demandeurs"].astype(int).groupby(demande["typologie"]).sum()
    ratio = demandeurs / parc.groupby("typologie")["liberations"].sum()
    assert ratio["T2"] > 2 and ratio["T1"] > 2
    assert ratio["T6+"] < 1 and ratio["T5"] < ratio["T3"]
    avec_candidat = demande.groupby(["commune", "typologie"]).size()
    assert len(avec_candidat) < parc.groupby(["commune", "typologie"]).ngroups  # some cells have none


def test_mixite_et_objectifs_references_connues(dossier):
    parc = lire_parc(dossier)
    ids = set(lire(dossier, "reservataires.csv")["id"])
    mixite = lire(dossier, "mixite.csv")
    assert set(mixite["epci"]) <= set(parc["epci"])
    assert mixite["part_min"].astype(float).between(0, 1).all()
    objectifs = lire(dossier, "objectifs.csv")
    assert len(objectifs) >= 3 and set(objectifs["reservataire"]) <= ids
    assert ((objectifs["logements"] == "") ^ (objectifs["part"] == "")).all()


def test_determinisme(tmp_path):
    a = generate_instance(tmp_path / "a", 3_000, graine=7)
    b = generate_instance(tmp_path / "b", 3_000, graine=7)
    c = generate_instance(tmp_path / "c", 3_000, graine=8)
    for nom in FICHIERS:
        assert (a / nom).read_bytes() == (b / nom).read_bytes(), nom
    assert (a / "parc.csv").read_bytes() != (c / "parc.csv").read_bytes()
    assert (a / "demande.csv").read_bytes() != (c / "demande.csv").read_bytes()


def test_grand_preset_rapide(tmp_path):
    debut = time.perf_counter()
    dossier = generate_size(tmp_path / "grand", "grand", graine=1)
    assert time.perf_counter() - debut < 10
    parc = lire_parc(dossier)
    assert parc["logements"].sum() == 300_000
    assert parc["commune"].nunique() == TAILLES["grand"]["communes"]
    assert len(parc) > 10_000 and not parc.duplicated(SEGMENT).any()
    demande = lire(dossier, "demande.csv")
    assert (demande["epci"] != "").any()  # département-wide pools are per EPCI in big instances


def test_national_reduit(tmp_path):
    chemins = generate_national(tmp_path, graine=4, logements_total=400_000, departements=10, bailleurs=30)
    manifeste = lire(tmp_path, "manifeste.csv")
    tailles = manifeste["logements"].astype(int)
    assert tailles.sum() == 400_000
    assert manifeste["departement"].nunique() == 10 and manifeste["bailleur"].nunique() == 30
    assert len(chemins) == len(manifeste) and not manifeste["instance"].duplicated().any()
    par_bailleur = tailles.groupby(manifeste["bailleur"]).sum()
    assert par_bailleur.max() > 4 * par_bailleur.median()  # few large bailleurs, many small
    for ligne in manifeste.sample(5, random_state=0).itertuples():
        parc = lire_parc(tmp_path / ligne.instance)
        toml = tomllib.loads((tmp_path / ligne.instance / "instance.toml").read_text(encoding="utf-8"))
        assert parc["logements"].sum() == int(ligne.logements)
        assert toml["instance"]["departement"] == ligne.departement
        assert parc["commune"].str.startswith(ligne.departement).all()


@pytest.mark.parametrize("arguments", [
    {"logements": 1_000, "departement": "20"},
    {"logements": 1_000, "departement": "5"},
    {"logements": 1_000, "communes": 120, "departement": "971"},
    {"logements": 10, "communes": 20},
    {"logements": 1_000, "reservataires": 3},
])
def test_arguments_invalides(tmp_path, arguments):
    with pytest.raises(ValueError):
        generate_instance(tmp_path / "x", **arguments)
