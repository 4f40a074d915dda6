"""Seeded generator of realistic synthetic instances (``flux-opt generer``).

Everything is drawn from ``numpy.random.default_rng(graine)``: the same seed
gives byte-identical files. Instances follow the data contract (docs/donnees.md).

Distributions (also documented in French in ``benchmarks/GENERATEUR.md``).
Figures marked *RPLS* are national orders of magnitude from the SDES
répertoire du parc locatif social; the others are modelling assumptions.

- Communes: heavy-tailed parc per commune, Zipf weights ``rank**-1`` times a
  lognormal(0, 0.5) noise (a ville-centre with ~10-20 % of the parc, many
  communes with a handful of dwellings). Default count ``0.304 * L**0.642``
  (2 000 dwellings -> ~40 communes, 300 000 -> ~1 000). Codes: département code
  + zero-padded number (``59001``, ``2A001``, ``97101``), with gaps.
- EPCI: about one per 28 communes (national average, assumption), contiguous
  blocks of commune codes; SIREN ``2`` + département key + 5 digits.
- QPV: a commune has QPV dwellings with probability ``~1.2 * (w/w_max)**0.5``
  (urban communes); its QPV share is Beta(2.5, 3) (30-70 % typical), then
  rescaled so that ~20 % (N(0.20, 0.03), clipped 12-28 %) of the parc is in
  QPV. Most communes have none. (Order of magnitude: between one in five and
  one in four social dwellings lies in a QPV nationally; 20 % is the assumption.)
- Typologie: T1 6 %, T2 20 %, T3 38 %, T4 26 %, T5 8 %, T6+ 2 % (RPLS orders
  of magnitude), per commune Dirichlet(60 x shares).
- Financement: PLUS 70 %, PLAI 12 %, PLS 8 %, autre 10 % overall (assumption
  consistent with RPLS, where PLUS and older HLM/O dominate); QPV parc is older
  (more ``autre``, fewer PLS/PLAI), hors-QPV shares compensate.
- Turnover: 11.5 % - 5.5 % x tension (tension 0..1 per commune: département
  base, higher in big communes), + typologie effect (T1 +1.5 pt ... T6+ -1.5 pt),
  + 0.5 pt in QPV, noise sd 0.4 pt, clipped to [5 %, 12 %]. National mean
  ~9 % (RPLS mobility rate ~9 %, lower in Île-de-France).
- Premières mises en location: new programmes in most communes except the
  smallest (probability ``0.9 (w/w_max)**0.15``), hors QPV, financement
  PLAI/PLUS/PLS, 1.5-6 % of the segment: ~1-1.5 % of the parc (order of
  magnitude: ~80 000 new social dwellings a year out of ~5 M).
- Exclusions: 12-20 % of the releases (assumption; the published examples go higher):
  ANRU (~25 % of the budget, NPNRU sites, scope commune + qpv=oui), vente
  (~8 %), LHI (~5 %), ORCOD (~5 %, half the instances of >= 50 000 dwellings),
  each scoped row on a distinct commune and capped at 40 % of the releases of its
  scope; urgence 12 % (blank scope); mutations take the rest, per typologie
  (blank commune) pro rata of the releases.
- Réservataires: préfet 25 % + agents 5 % (legal 30 %), Action Logement
  10-20 % (``taux`` or article-5 ``logements_reserves``), collectivités
  (conseil départemental 1-5 %, EPCI 4-12 %, communes 3-8 %: at most 25 %
  cumulated on any commune), employeurs/autres 0.5-2 % each (<= 5 % together),
  one with a fixed ``logements`` (stock conversion). The bailleur keeps >= 20 %.
- Demande: per réservataire, commune and typologie, Poisson with mean
  ``rate x releases x ratio_t x (0.6 + 1.2 tension) x lognormal(0, 0.4)``,
  ratio T1 4.5, T2 4, T3 2.5, T4 1.5, T5 0.7, T6+ 0.4 (scarce big-family
  demand), hence cells with no candidate. Split over quartile (Q1 35 %, 60 %
  for the préfet), prioritaire (30 %, 75 % for the préfet) and
  travailleur_essentiel (10 %, 25 % for Action Logement). Pools of
  département-wide réservataires are given per EPCI in instances with more than
  150 communes (except the ville-centre's EPCI), per commune otherwise.
- National set: département parcs lognormal(sigma 0.85) taken at stratified
  quantiles, the largest given to the big urban départements (``GRANDS_PARCS``);
  ~350 communes with social housing per département; bailleur sizes
  lognormal(sigma 1.25) (few very large, many small); each bailleur has a home
  département (weight 1) plus Poisson(size / 25 000) others (weight 0.3), the
  matrix fitted to both margins by iterative proportional fitting; pairs under
  50 dwellings merged into the bailleur's largest one.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtri
from flux_opt.assiette.apportion import largest_remainder
from flux_opt.vocabulary import FINANCEMENTS, TYPOLOGIES

from flux_opt.input.schema import Regles

PARTS_TYPOLOGIE = np.array([0.06, 0.20, 0.38, 0.26, 0.08, 0.02])
PARTS_FINANCEMENT = np.array([0.12, 0.70, 0.08, 0.10])
# The QPV parc is older: more "autre" schemes, few recent PLAI/PLS programmes.
PARTS_FINANCEMENT_QPV = np.array([0.06, 0.74, 0.03, 0.17])
PART_QPV_REFERENCE = 0.20
PARTS_FINANCEMENT_HORS_QPV = (
    PARTS_FINANCEMENT - PART_QPV_REFERENCE * PARTS_FINANCEMENT_QPV
) / (1 - PART_QPV_REFERENCE)
ROTATION_MIN, ROTATION_MAX = 0.05, 0.12
EFFET_TYPOLOGIE_ROTATION = np.array([0.015, 0.005, 0.0, -0.005, -0.01, -0.015])
RATIO_DEMANDE_TYPOLOGIE = np.array([4.5, 4.0, 2.5, 1.5, 0.7, 0.4])
# With tension: thin demand for big dwellings, and (Q1, prioritaire, travailleur essentiel) shares
# by réservataire type: the préfet's pools are mostly Q1 and priority households (DALO), Action
# Logement's mostly employees above the first quartile (assumptions, see benchmarks/GENERATEUR.md).
RATIO_DEMANDE_TENSION = np.array([5.0, 4.5, 2.2, 1.1, 0.35, 0.2])
PARTS_PAR_TYPE = {"prefet": (0.70, 0.85, 0.05), "prefet_agents": (0.10, 0.10, 0.30),
                  "action_logement": (0.15, 0.32, 0.35), "collectivite": (0.40, 0.35, 0.10),
                  "employeur": (0.10, 0.10, 0.30), "autre": (0.30, 0.30, 0.10), "bailleur": (0.35, 0.30, 0.10)}
SEUIL_DEMANDE_PAR_EPCI = 150  # communes above which département-wide pools go per EPCI

TAILLES: dict[str, dict[str, int]] = {
    "petit": {"logements": 2_000, "communes": 40, "reservataires": 8},
    "moyen": {"logements": 30_000, "communes": 230, "reservataires": 10},
    "grand": {"logements": 300_000, "communes": 990, "reservataires": 14},
}

# The legal defaults, from the one place that states them (the schema), written into instance.toml.
# the legal defaults (a generated instance never explores rates outside the law)
REGLES = {k: (int(v) if k == "prefet_uniformite_tolerance" and float(v).is_integer() else v)
          for k, v in Regles().model_dump().items() if k != "hors_cadre_legal"}

DEPARTEMENTS = tuple(
    [f"{i:02d}" for i in range(1, 20)]
    + ["2A", "2B"]
    + [f"{i:02d}" for i in range(21, 96)]
    + ["971", "972", "973", "974", "976"]
)
# Tense housing markets: lower turnover, more demand (assumption from zonage A/Abis).
# Départements with the largest social parcs, roughly in order (RPLS orders of magnitude).
GRANDS_PARCS = ("75", "59", "93", "13", "92", "69", "94", "62", "95", "76", "78", "91",
                "77", "33", "31", "67", "44", "38", "57", "06")
DEPARTEMENTS_TENDUS = frozenset(
    {"06", "13", "31", "33", "34", "44", "67", "69", "74", "75", "77", "78",
     "83", "91", "92", "93", "94", "95", "2A", "2B", "974"}
)

COLONNES_PARC = ["commune", "commune_nom", "epci", "epci_nom", "qpv", "typologie", "financement",
                 "logements", "taux_rotation", "premieres_mises_en_location"]
COLONNES_EXCLUSIONS = ["categorie", "commune", "typologie", "qpv", "financement", "logements"]
COLONNES_RESERVATAIRES = ["id", "nom", "type", "territoire", "taux", "logements",
                          "logements_reserves", "gestion", "financement_apporte",
                          "taux_prioritaires"]
COLONNES_DEMANDE = ["reservataire", "commune", "epci", "typologie", "quartile",
                    "prioritaire", "travailleur_essentiel", "demandeurs"]
COLONNES_MIXITE = ["epci", "zone", "reservataire", "critere", "part_min"]
COLONNES_OBJECTIFS = ["reservataire", "epci", "commune", "typologie", "financement",
                      "qpv", "logements", "part", "poids"]

_SYLLABES = ("ba", "bel", "bou", "cam", "char", "cour", "din", "dou", "fon", "gar",
             "hal", "la", "lan", "le", "lou", "mar", "mon", "mor", "neu", "pon",
             "ro", "sal", "san", "tour", "val", "vil", "ver", "ber", "lis", "ris",
             "gny", "court", "mont", "ville", "bec", "chy", "ta", "mi", "no", "sé")
_RIVIERES = ("Lys", "Marne", "Deûle", "Sambre", "Oise", "Escaut", "Scarpe", "Loire",
             "Saône", "Garonne")


@dataclass(frozen=True)
class Territoire:
    """Communes of a département as seen by the generator (one array entry per commune)."""

    departement: str
    communes: np.ndarray  # INSEE codes (str)
    noms: np.ndarray
    epci: np.ndarray  # SIREN of each commune's EPCI
    poids: np.ndarray  # relative size of the social parc
    part_qpv: np.ndarray  # share of the commune's parc inside a QPV
    tension: np.ndarray  # 0 (détendu) .. 1 (very tense)


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


LOGEMENTS_MAX = 5_000_000  # more than the largest bailleur of a département owns


def generate_instance(
    dossier: Path,
    logements: int,
    communes: int | None = None,
    reservataires: int = 8,
    graine: int = 0,
    departement: str = "59",
    annee: int = 2027,
    nom: str | None = None,
    tension: bool = False,
) -> Path:
    """Write one synthetic instance folder (docs/donnees.md) and return its path. `tension`: demand
    with local pressure per commune × typologie and pools whose composition depends on the
    réservataire's type (``generate_demande``)."""
    _check_departement(departement)
    if not 1 <= logements <= LOGEMENTS_MAX:
        raise ValueError(f"Nombre de logements hors bornes (1 à {LOGEMENTS_MAX:,}).".replace(",", "\u202f"))
    if communes is None:
        communes = communes_par_defaut(logements, departement)
    _check_sizes(logements, communes, reservataires, departement)
    rng = np.random.default_rng(graine)
    territoire = generate_territoire(rng, departement, communes)
    nom = nom or f"synthetique-{departement}-{logements}-g{graine}"
    return _write_instance(
        Path(dossier), rng, territoire, logements, reservataires,
        nom=nom, bailleur=f"Bailleur synthétique {departement}",
        annee=annee, graine=graine, tension=tension,
    )


def generate_size(dossier: Path, taille: str, graine: int = 0, departement: str = "59",
                   annee: int = 2027, tension: bool = False) -> Path:
    """Write the preset ``taille`` (petit, moyen, grand) of ``TAILLES``."""
    if taille not in TAILLES:
        raise ValueError(f"Taille inconnue « {taille} » : choisir parmi {', '.join(TAILLES)}.")
    preset = TAILLES[taille]
    return generate_instance(dossier, graine=graine, departement=departement, annee=annee,
                            nom=f"{taille}-{departement}-g{graine}", tension=tension, **preset)


def generate_national(
    dossier: Path,
    graine: int = 0,
    logements_total: int = 5_300_000,
    departements: int = 100,
    bailleurs: int = 350,
    annee: int = 2027,
) -> list[Path]:
    """Write one instance per (bailleur, département) pair plus ``manifeste.csv``."""
    if not 1 <= departements <= len(DEPARTEMENTS):
        raise ValueError(f"Nombre de départements hors bornes (1 à {len(DEPARTEMENTS)}).")
    if bailleurs < 1 or logements_total < 100 * bailleurs:
        raise ValueError("Il faut au moins un bailleur et 100 logements par bailleur.")
    dossier = Path(dossier)
    rng = np.random.default_rng(graine)
    codes = [DEPARTEMENTS[i] for i in np.sort(rng.choice(len(DEPARTEMENTS), departements, replace=False))]
    parcs_dep = _departement_parcs(rng, codes, logements_total)
    territoires = [
        generate_territoire(rng, dep, _departement_communes(rng, dep, parc))
        for dep, parc in zip(codes, parcs_dep)
    ]
    paires = _split_bailleurs(rng, parcs_dep, bailleurs, logements_total)
    chemins, manifeste = [], []
    for i, (b, d, taille) in enumerate(paires):
        enfant = np.random.default_rng([graine, i])
        dep = codes[d]
        k = min(len(territoires[d].communes), communes_par_defaut(taille, dep))
        territoire = _sous_territoire(enfant, territoires[d], k)
        bailleur = f"B{b + 1:03d}"
        nom = f"{bailleur}_{dep}"
        chemin = _write_instance(
            dossier / nom, enfant, territoire, taille, _reservataires_by_size(taille),
            nom=nom, bailleur=f"OLS synthétique {bailleur}", annee=annee, graine=graine,
        )
        chemins.append(chemin)
        manifeste.append((nom, bailleur, dep, taille))
    pd.DataFrame(manifeste, columns=["instance", "bailleur", "departement", "logements"]).to_csv(
        dossier / "manifeste.csv", index=False, lineterminator="\n")
    return chemins


def communes_par_defaut(logements: int, departement: str = "59") -> int:
    """Plausible number of communes for a parc (2 000 -> ~40, 300 000 -> ~1 000)."""
    estimation = round(0.304 * logements**0.642)
    return int(max(1, min(estimation, logements // 5 or 1, _communes_max(departement))))


def liberations(parc: pd.DataFrame) -> pd.Series:
    """Forecast releases per segment: logements x taux_rotation + premières mises en location."""
    premieres = parc["premieres_mises_en_location"] if "premieres_mises_en_location" in parc else 0
    return parc["logements"] * parc["taux_rotation"] + premieres


# ---------------------------------------------------------------------------
# Territory
# ---------------------------------------------------------------------------


def generate_territoire(rng: np.random.Generator, departement: str, communes: int) -> Territoire:
    """Draw the communes, EPCIs, parc weights, QPV shares and tension of a département."""
    codes = _codes_communes(rng, departement, communes)
    rang = rng.permutation(communes) + 1
    poids = rang**-1.0 * rng.lognormal(0.0, 0.5, communes)
    epci = _epci_des_communes(rng, departement, communes)
    part_qpv = _qpv_shares(rng, poids)
    base = (0.65 if departement in DEPARTEMENTS_TENDUS else 0.3) + rng.uniform(-0.15, 0.15)
    taille_relative = np.log(poids / poids.max())
    taille_relative = (taille_relative - taille_relative.min()) / (np.ptp(taille_relative) or 1.0) - 0.5
    tension = np.clip(base + 0.25 * taille_relative + rng.normal(0, 0.08, communes), 0, 1)
    return Territoire(departement, codes, _commune_names(rng, communes), epci, poids, part_qpv, tension)


def _codes_communes(rng, departement: str, n: int) -> np.ndarray:
    largeur = 5 - len(departement)
    numeros = np.sort(rng.choice(10**largeur - 1, size=n, replace=False) + 1)
    return np.array([f"{departement}{k:0{largeur}d}" for k in numeros])


def _epci_des_communes(rng, departement: str, n: int) -> np.ndarray:
    """Contiguous blocks of commune codes, about one EPCI per 28 communes."""
    n_epci = max(min(n, 2), round(n / 28)) if n >= 6 else 1
    tailles = 1 + rng.multinomial(n - n_epci, rng.dirichlet(np.full(n_epci, 2.0)))
    cle = DEPARTEMENTS.index(departement) if departement in DEPARTEMENTS else 999
    sirens = np.array([f"2{cle:03d}{k:05d}" for k in np.sort(rng.choice(100_000, n_epci, replace=False))])
    return np.repeat(sirens, tailles)


def _qpv_shares(rng, poids: np.ndarray) -> np.ndarray:
    """Most communes 0 %, urban ones 30-70 %, ~20 % of the parc overall."""
    probabilite = np.clip(1.2 * np.sqrt(poids / poids.max()), 0, 0.95)
    a_qpv = rng.random(len(poids)) < probabilite
    a_qpv[np.argmax(poids)] = True  # the ville-centre always has a QPV
    parts = np.where(a_qpv, rng.beta(2.5, 3.0, len(poids)), 0.0)
    cible = float(np.clip(rng.normal(PART_QPV_REFERENCE, 0.03), 0.12, 0.28))
    for _ in range(5):  # rescale towards the target; clipping needs a few passes
        actuelle = (parts * poids).sum() / poids.sum()
        parts = np.clip(parts * cible / actuelle, 0, 0.85)
    return parts


def _commune_names(rng, n: int) -> np.ndarray:
    nb = rng.integers(2, 4, n)
    syllabes = rng.choice(len(_SYLLABES), (n, 3))
    saint = rng.random(n) < 0.15
    riviere = np.where(rng.random(n) < 0.12, rng.integers(0, len(_RIVIERES), n), -1)
    noms, vus = [], {}
    for i in range(n):
        nom = "".join(_SYLLABES[s] for s in syllabes[i, : nb[i]]).capitalize()
        if saint[i]:
            nom = f"Saint-{nom}"
        if riviere[i] >= 0:
            nom = f"{nom}-sur-{_RIVIERES[riviere[i]]}"
        vus[nom] = vus.get(nom, 0) + 1
        noms.append(nom if vus[nom] == 1 else f"{nom}-{vus[nom]}")
    return np.array(noms)


def _sous_territoire(rng, territoire: Territoire, k: int) -> Territoire:
    """The k communes where one bailleur is present (bigger communes more likely)."""
    p = territoire.poids / territoire.poids.sum()
    choix = np.sort(rng.choice(len(p), k, replace=False, p=p))
    bruit = rng.lognormal(0, 0.5, k)  # a bailleur's presence varies around the territory's
    return Territoire(
        territoire.departement, territoire.communes[choix], territoire.noms[choix],
        territoire.epci[choix], territoire.poids[choix] * bruit,
        territoire.part_qpv[choix], territoire.tension[choix],
    )


# ---------------------------------------------------------------------------
# Parc
# ---------------------------------------------------------------------------


def generate_parc(rng, territoire: Territoire, logements: int) -> pd.DataFrame:
    """Segments (commune, typologie, qpv, financement) with dwellings, turnover, first lettings."""
    m = len(territoire.communes)
    par_commune = 1 + rng.multinomial(logements - m, territoire.poids / territoire.poids.sum())
    en_qpv = rng.binomial(par_commune, territoire.part_qpv)
    par_zone = np.stack([en_qpv, par_commune - en_qpv], axis=1)  # (m, 2): qpv oui, non
    typologies = rng.dirichlet(60 * PARTS_TYPOLOGIE, size=m)  # (m, 6)
    financements = np.stack([PARTS_FINANCEMENT_QPV, PARTS_FINANCEMENT_HORS_QPV])  # (2, 4)
    p = (typologies[:, None, :, None] * financements[None, :, None, :]).reshape(m, 2, 24)
    comptes = rng.multinomial(par_zone, p).reshape(m, 2, 6, 4).transpose(0, 2, 1, 3)  # (c, t, q, f)
    c, t, q, f = np.nonzero(comptes)
    n = comptes[c, t, q, f]

    bruit = rng.normal(0, 0.004, len(n))
    taux = (0.115 - 0.055 * territoire.tension[c] + EFFET_TYPOLOGIE_ROTATION[t]
            + 0.005 * (q == 0) + bruit)
    taux = np.round(np.clip(taux, ROTATION_MIN, ROTATION_MAX), 4)

    programme = rng.random(m) < np.clip(0.9 * (territoire.poids / territoire.poids.max()) ** 0.15, 0, 0.9)
    taux_neuf = rng.uniform(0.015, 0.06, m)
    eligible = programme[c] & (q == 1) & (f < 3)  # new lettings: hors QPV, no old scheme
    premieres = np.where(eligible, rng.binomial(n, taux_neuf[c]), 0)

    return pd.DataFrame({
        "commune": territoire.communes[c],
        "commune_nom": territoire.noms[c],
        "epci": territoire.epci[c],
        "epci_nom": _epci_names(territoire)[c],
        "qpv": np.where(q == 0, "oui", "non"),
        "typologie": np.asarray(TYPOLOGIES)[t],
        "financement": np.asarray(FINANCEMENTS)[f],
        "logements": n.astype(np.int64),
        "taux_rotation": taux,
        "premieres_mises_en_location": premieres.astype(np.int64),
    })


def _epci_names(territoire: Territoire) -> np.ndarray:
    """Each commune's EPCI named after its largest commune (no random draw: the other files stay the same)."""
    frame = pd.DataFrame({"epci": territoire.epci, "nom": territoire.noms, "poids": territoire.poids})
    largest = frame.sort_values("poids", ascending=False, kind="stable").groupby("epci")["nom"].first()
    return ("Agglomération de " + frame["epci"].map(largest)).to_numpy()


# ---------------------------------------------------------------------------
# Exclusions
# ---------------------------------------------------------------------------


def generate_exclusions(rng, parc: pd.DataFrame) -> pd.DataFrame:
    """Withdrawals (B), each row at most 40 % of the releases of its scope."""
    lib = liberations(parc)
    total = float(lib.sum())
    budget = rng.uniform(0.12, 0.20) * total
    lignes: list[tuple] = []
    lib_commune = lib.groupby(parc["commune"], sort=True).sum()
    lib_qpv = lib[parc["qpv"] == "oui"].groupby(parc["commune"][parc["qpv"] == "oui"], sort=True).sum()
    utilisees: set[str] = set()

    def sur_communes(categorie, part, base: pd.Series, nombre, qpv=""):
        libres = base[~base.index.isin(utilisees) & (base > 0)]
        nombre = min(nombre, len(libres))
        if nombre == 0:
            return
        choix = rng.choice(libres.index.to_numpy(), nombre, replace=False, p=(libres / libres.sum()).to_numpy())
        for commune in sorted(choix):
            utilisees.add(commune)
            n = math.floor(min(part * budget / nombre, 0.4 * libres[commune]))
            lignes.append((categorie, commune, "", qpv, "", n))

    sur_communes("anru", 0.25, lib_qpv, 1 + len(lib_commune) // 200, qpv="oui")
    sur_communes("vente", 0.08, lib_commune, 2)
    sur_communes("lhi", 0.05, lib_commune, 3)
    if parc["logements"].sum() >= 50_000 and rng.random() < 0.5:
        sur_communes("orcod", 0.05, lib_commune, 1)

    # Internal mutations take what the scoped rows and emergencies leave of the budget.
    urgence = math.floor(0.12 * budget)
    mutations = max(budget - urgence - sum(ligne[-1] for ligne in lignes), 0.0)
    if total >= 1000:
        lib_typo = lib.groupby(parc["typologie"]).sum()
        for t in TYPOLOGIES:
            if t in lib_typo.index:
                lignes.append(("mutation", "", t, "", "", math.floor(mutations * lib_typo[t] / total)))
    else:
        lignes.append(("mutation", "", "", "", "", math.floor(mutations)))
    lignes.append(("urgence", "", "", "", "", urgence))
    exclusions = pd.DataFrame(lignes, columns=COLONNES_EXCLUSIONS)
    return exclusions[exclusions["logements"] > 0].reset_index(drop=True)


# ---------------------------------------------------------------------------
# Réservataires
# ---------------------------------------------------------------------------


@dataclass
class _Reservataire:
    id: str
    nom: str
    type: str
    couverture: np.ndarray  # bool per commune of the instance
    taux_effectif: float  # share of the flux it is expected to get where it is present
    territoire: str = ""
    taux: str = ""
    logements: str = ""
    logements_reserves: str = ""
    gestion: str = "deleguee"
    taux_prioritaires: str = ""


def _taux(x: float) -> str:
    return f"{x:.3f}".rstrip("0").rstrip(".")


def generate_reservataires(rng, parc: pd.DataFrame, territoire: Territoire, nombre: int,
                          flux_estime: float) -> list[_Reservataire]:
    """Préfet, agents, Action Logement, collectivités, employeurs/autres, bailleur."""
    communes, departement = territoire.communes, territoire.departement
    m = len(communes)
    tout = np.ones(m, dtype=bool)
    parc_total = int(parc["logements"].sum())
    par_commune = parc.groupby("commune")["logements"].sum().reindex(communes, fill_value=0).to_numpy()
    epci_commune = parc.drop_duplicates("commune").set_index("commune")["epci"].reindex(communes).to_numpy()
    par_epci = pd.Series(par_commune).groupby(epci_commune).sum().sort_values(ascending=False, kind="stable")

    prefet_agents = REGLES["prefet_agents_taux"]
    liste = [
        _Reservataire("prefet", f"Préfet ({departement}) — contingent préfectoral", "prefet", tout,
                      REGLES["prefet_taux"] - prefet_agents,
                      gestion=str(rng.choice(["directe", "deleguee"])), taux_prioritaires="0.6"),
        _Reservataire("prefet_agents", "Préfet — agents civils et militaires de l'État", "prefet_agents",
                      tout, prefet_agents, taux=_taux(prefet_agents)),
    ]
    al = round(float(rng.uniform(0.10, 0.20)), 2)
    action_logement = _Reservataire("action_logement", "Action Logement Services", "action_logement",
                                    tout, al, gestion="directe", taux_prioritaires="0.25")
    if rng.random() < 0.5:
        action_logement.taux = _taux(al)
    else:  # article-5 default: reserved dwellings over the bailleur's parc
        reserves = round(al * parc_total)
        action_logement.logements_reserves = str(reserves)
        action_logement.taux_effectif = reserves / parc_total
    liste.append(action_logement)

    supplementaires = nombre - 4
    n_collectivites = min(math.ceil(0.6 * supplementaires), 1 + len(par_epci) + m)
    liste += _collectivites(rng, n_collectivites, territoire, par_commune, epci_commune, par_epci)
    liste += _employeurs(rng, nombre - 4 - (len(liste) - 3), m, flux_estime, parc_total)

    couvert = sum(r.taux_effectif * r.couverture for r in liste)
    liste.append(_Reservataire("bailleur", "Bailleur (contingent propre)", "bailleur", tout,
                               float(np.min(1 - couvert)), gestion="directe", taux_prioritaires="0.25"))
    return liste


def _collectivites(rng, nombre, territoire, par_commune, epci_commune, par_epci):
    """Biggest EPCI, ville-centre, conseil départemental, then alternately EPCIs and communes.

    Rate ranges keep the cumulated collectivités' rate on any commune at most 25 %.
    """
    communes, departement = territoire.communes, territoire.departement
    ordre_communes = np.argsort(-par_commune, kind="stable")
    noms = dict(zip(communes, territoire.noms))
    centre = communes[ordre_communes[0]]
    epcis, villes = list(par_epci.index), [communes[i] for i in ordre_communes]
    candidats: list[tuple[str, str]] = []
    if epcis:
        candidats.append(("epci", epcis.pop(0)))
    candidats.append(("commune", villes.pop(0)))
    candidats.append(("departement", ""))
    while epcis or villes:
        if epcis:
            candidats.append(("epci", epcis.pop(0)))
        if villes:
            candidats.append(("commune", villes.pop(0)))
    resultat = []
    for niveau, code in candidats[:nombre]:
        if niveau == "epci":
            taux = rng.uniform(0.04, 0.12)
            principale = communes[ordre_communes[np.argmax(epci_commune[ordre_communes] == code)]]
            nom = (f"Métropole de {noms[centre]}" if principale == centre
                   else f"Communauté d'agglomération de {noms[principale]}")
            r = _Reservataire(f"epci_{code}", nom, "collectivite", epci_commune == code, 0, territoire=code)
        elif niveau == "commune":
            taux = rng.uniform(0.03, 0.08)
            r = _Reservataire(f"commune_{code}", f"Commune de {noms[code]}", "collectivite", communes == code, 0, territoire=code)
        else:
            taux = rng.uniform(0.01, 0.05)
            r = _Reservataire("departement", f"Conseil départemental ({departement})", "collectivite",
                              np.ones(len(communes), dtype=bool), 0, territoire=";".join(sorted(par_epci.index)))
        r.taux_effectif = round(float(taux), 2)
        r.taux = _taux(r.taux_effectif)
        r.gestion = str(rng.choice(["directe", "deleguee"]))
        r.taux_prioritaires = "0.25"
        resultat.append(r)
    return resultat


def _employeurs(rng, nombre, m, flux_estime, parc_total):
    """Small département-wide employers / others: rates, article-5 reserves, or fixed dwellings."""
    noms = ("Employeur hospitalier", "Employeur public territorial", "Employeur industriel",
            "Employeur de la logistique", "Employeur de l'enseignement")
    taux = rng.uniform(0.005, 0.02, max(nombre, 0))
    if taux.sum() > 0.05:
        taux *= 0.05 / taux.sum()
    resultat = []
    for i, x in enumerate(taux):
        type_ = "autre" if i % 3 == 2 else "employeur"
        nom = "Autre réservataire (organisme collecteur)" if type_ == "autre" else noms[i % len(noms)]
        r = _Reservataire(f"{type_}_{i + 1}", nom, type_, np.ones(m, dtype=bool), 0.0)
        mode = i % 3
        if mode == 0:
            r.taux_effectif = round(float(x), 3)
            r.taux = _taux(r.taux_effectif)
        elif mode == 1:  # article-5 default from reserved dwellings
            reserves = max(1, round(float(x) * parc_total))
            r.logements_reserves = str(reserves)
            r.taux_effectif = reserves / parc_total
        else:  # a yearly volume from a stock conversion
            volume = max(1, math.floor(float(x) * flux_estime))
            r.logements = str(volume)
            r.taux_effectif = volume / flux_estime
        resultat.append(r)
    return resultat


def _reservataires_table(liste: list[_Reservataire]) -> pd.DataFrame:
    return pd.DataFrame(
        [(r.id, r.nom, r.type, r.territoire, r.taux, r.logements, r.logements_reserves, r.gestion,
          "non" if r.type == "collectivite" else "", r.taux_prioritaires) for r in liste],
        columns=COLONNES_RESERVATAIRES,
    )


# ---------------------------------------------------------------------------
# Demand
# ---------------------------------------------------------------------------


def generate_demande(rng, parc: pd.DataFrame, territoire: Territoire,
                    reservataires: list[_Reservataire], part_nette: float, tension: bool = False) -> pd.DataFrame:
    """Candidate pools per réservataire, commune (or EPCI) and typologie, split by category.

    With `tension`: a pressure factor per commune × typologie shared by every réservataire
    (lognormal(0, 0.8): some markets crowded, others thin), big-family demand scarcer
    (RATIO_DEMANDE_TENSION), and compositions by réservataire type (PARTS_PAR_TYPE)."""
    communes = territoire.communes
    m = len(communes)
    index_commune = pd.Index(communes)
    lib = liberations(parc).to_numpy() * part_nette
    lib_ct = np.zeros((m, len(TYPOLOGIES)))
    np.add.at(lib_ct, (index_commune.get_indexer(parc["commune"]),
                       pd.Index(TYPOLOGIES).get_indexer(parc["typologie"])), lib)

    couverture = np.stack([r.couverture for r in reservataires])  # (R, m)
    taux = np.array([max(r.taux_effectif, 0.0) for r in reservataires])
    attendu = taux[:, None, None] * couverture[:, :, None] * lib_ct[None, :, :]
    ratio = RATIO_DEMANDE_TENSION if tension else RATIO_DEMANDE_TYPOLOGIE
    intensite = ratio[None, None, :] * (0.6 + 1.2 * territoire.tension)[None, :, None]
    if tension:
        intensite = intensite * rng.lognormal(0, 0.8, (1, m, len(TYPOLOGIES)))
    moyenne = attendu * intensite * rng.lognormal(0, 0.4, attendu.shape)
    total = rng.poisson(moyenne)  # (R, m, 6)

    categories = np.stack([_category_shares(r.type, tension) for r in reservataires])  # (R, 8)
    comptes = rng.multinomial(total, categories[:, None, None, :])  # (R, m, 6, 8)
    r_i, c_i, t_i, k_i = np.nonzero(comptes)
    demande = pd.DataFrame({
        "reservataire": np.array([r.id for r in reservataires])[r_i],
        "commune": communes[c_i],
        "epci": territoire.epci[c_i],
        "typologie": np.asarray(TYPOLOGIES)[t_i],
        "quartile": np.where(k_i // 4 == 0, "q1", "q234"),
        "prioritaire": np.where((k_i // 2) % 2 == 0, "oui", "non"),
        "travailleur_essentiel": np.where(k_i % 2 == 0, "oui", "non"),
        "demandeurs": comptes[r_i, c_i, t_i, k_i].astype(np.int64),
    })
    par_epci = _pools_par_epci(territoire, reservataires)
    agreger = par_epci[r_i, pd.Index(np.unique(territoire.epci)).get_indexer(territoire.epci[c_i])]
    fins = demande[~agreger].assign(epci="")
    grossies = (demande[agreger].assign(commune="")
                .groupby(COLONNES_DEMANDE[:-1], sort=False, as_index=False)["demandeurs"].sum())
    ordre = {r.id: i for i, r in enumerate(reservataires)}
    resultat = pd.concat([fins, grossies], ignore_index=True)
    resultat["_ordre"] = resultat["reservataire"].map(ordre)
    return (resultat.sort_values(["_ordre", "epci", "commune", "typologie", "quartile", "prioritaire",
                                  "travailleur_essentiel"], kind="stable")
            .drop(columns="_ordre").reset_index(drop=True)[COLONNES_DEMANDE])


def _category_shares(type_: str, tension: bool = False) -> np.ndarray:
    """8 categories (quartile x prioritaire x travailleur_essentiel), 'oui'/q1 first."""
    q1, prioritaire, essentiel = 0.35, 0.30, 0.10
    if tension and type_ in PARTS_PAR_TYPE:
        q1, prioritaire, essentiel = PARTS_PAR_TYPE[type_]
    elif type_ in ("prefet",):
        q1, prioritaire = 0.60, 0.75
    elif type_ == "action_logement":
        essentiel = 0.25
    elif type_ == "prefet_agents":
        prioritaire, essentiel = 0.10, 0.30
    q = np.array([q1, 1 - q1])
    p = np.array([prioritaire, 1 - prioritaire])
    e = np.array([essentiel, 1 - essentiel])
    return (q[:, None, None] * p[None, :, None] * e[None, None, :]).ravel()


def _pools_par_epci(territoire: Territoire, reservataires: list[_Reservataire]) -> np.ndarray:
    """(R, EPCI) flags: département-wide pools per EPCI in big instances, ville-centre excepted."""
    epcis = np.unique(territoire.epci)
    drapeaux = np.zeros((len(reservataires), len(epcis)), dtype=bool)
    if len(territoire.communes) <= SEUIL_DEMANDE_PAR_EPCI:
        return drapeaux
    centre = territoire.epci[np.argmax(territoire.poids)]
    for i, r in enumerate(reservataires):
        if r.couverture.all():
            drapeaux[i] = epcis != centre
    return drapeaux


# ---------------------------------------------------------------------------
# Soft targets, mixity, instance.toml
# ---------------------------------------------------------------------------


def _epci_cia(parc: pd.DataFrame) -> list[str]:
    """EPCIs with a QPV must have a CIL/CIA; listed by parc, largest first."""
    avec_qpv = parc.loc[parc["qpv"] == "oui", "epci"].unique()
    taille = parc.groupby("epci")["logements"].sum()
    return sorted(avec_qpv, key=lambda e: (-taille[e], e))


def generate_mixite(rng, cia: list[str]) -> pd.DataFrame:
    lignes = []
    if cia:
        lignes.append((cia[0], "tout", "", "travailleur_essentiel", round(float(rng.uniform(0.03, 0.08)), 2)))
    if len(cia) > 1:
        lignes.append((cia[1], "hors_qpv", "", "prioritaire", 0.25))
    return pd.DataFrame(lignes, columns=COLONNES_MIXITE)


def generate_objectifs(rng, parc: pd.DataFrame, reservataires: list[_Reservataire]) -> pd.DataFrame:
    """A few indicative targets (parts close to what the flux allows, weight 1)."""
    lib = liberations(parc)
    part_epci = lib.groupby(parc["epci"]).sum().sort_values(ascending=False, kind="stable") / lib.sum()
    part_hors_qpv = lib[parc["qpv"] == "non"].sum() / lib.sum()
    lignes = [
        ("prefet", "", "", "", "", "non", "", _taux(min(0.95, part_hors_qpv + 0.05)), 1),
        ("action_logement", part_epci.index[0], "", "", "", "", "",
         _taux(round(float(part_epci.iloc[0]) * rng.uniform(0.9, 1.1), 2)), 1),
        ("action_logement", "", "", "T2", "", "", "", _taux(round(float(rng.uniform(0.2, 0.3)), 2)), 1),
    ]
    collectivite = next((r for r in reservataires if r.type == "collectivite"), None)
    if collectivite is not None:
        lignes.append((collectivite.id, "", "", "", "PLAI", "", "", _taux(round(float(rng.uniform(0.1, 0.2)), 2)), 2))
    return pd.DataFrame(lignes, columns=COLONNES_OBJECTIFS)


def _instance_toml(nom, bailleur, departement, annee, rotation, cia, graine, commentaire) -> str:
    def valeur(v):
        return json.dumps(v, ensure_ascii=False) if isinstance(v, str) else repr(v)

    regles = "\n".join(f"{k} = {valeur(v)}" for k, v in REGLES.items())
    return (
        f"# {commentaire}\n\n"
        f"[instance]\nnom = {valeur(nom)}\nbailleur = {valeur(bailleur)}\n"
        f"departement = {valeur(departement)}\nannee = {annee}\n\n"
        f"[regles]\n{regles}\n\n"
        f"[rotation]\ndefaut = {rotation}\n\n"
        f"[cia]\nepci = [{', '.join(valeur(e) for e in cia)}]\n\n"
        f"[solveur]\ntemps_max_s = 60\necart_relatif = 0.0001\nthreads = 1\ngraine = {graine}\n"
    )


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------


def _write_instance(dossier: Path, rng, territoire: Territoire, logements: int, reservataires: int,
                     *, nom: str, bailleur: str, annee: int, graine: int, tension: bool = False) -> Path:
    parc = generate_parc(rng, territoire, logements)
    exclusions = generate_exclusions(rng, parc)
    total = float(liberations(parc).sum())
    flux_estime = max(total - float(exclusions["logements"].sum()), 1.0)
    liste = generate_reservataires(rng, parc, territoire, reservataires, flux_estime)
    demande = generate_demande(rng, parc, territoire, liste, flux_estime / total, tension)
    cia = _epci_cia(parc)
    mixite = generate_mixite(rng, cia)
    objectifs = generate_objectifs(rng, parc, liste)
    rotation = round(float((parc["logements"] * parc["taux_rotation"]).sum() / parc["logements"].sum()), 4)

    dossier.mkdir(parents=True, exist_ok=True)
    commentaire = (f"Instance synthétique générée par flux-opt (graine {graine}, {logements} logements, "
                   f"{len(territoire.communes)} communes) — données fictives")
    (dossier / "instance.toml").write_text(
        _instance_toml(nom, bailleur, territoire.departement, annee, rotation, cia, graine, commentaire),
        encoding="utf-8")
    for nom_fichier, tableau in (("parc.csv", parc[COLONNES_PARC]), ("exclusions.csv", exclusions),
                                 ("reservataires.csv", _reservataires_table(liste)),
                                 ("demande.csv", demande), ("mixite.csv", mixite),
                                 ("objectifs.csv", objectifs)):
        tableau.to_csv(dossier / nom_fichier, index=False, lineterminator="\n", encoding="utf-8")
    return dossier


# ---------------------------------------------------------------------------
# National set helpers
# ---------------------------------------------------------------------------


def _departement_parcs(rng, codes: list[str], total: int) -> np.ndarray:
    """Stratified lognormal(sigma 0.85) parcs, the largest going to the big urban départements."""
    n = len(codes)
    z = ndtri((np.arange(n) + 0.5) / n)  # quantiles: no absurd tail draw
    tailles = np.sort(np.exp(0.85 * z + rng.normal(0, 0.1, n)))[::-1]
    grands = [c for c in GRANDS_PARCS if c in codes]
    rang = {c: i + rng.normal(0, 1.5) for i, c in enumerate(grands)}
    autres = [codes[i] for i in rng.permutation(n) if codes[i] not in rang]
    par_code = dict(zip(sorted(grands, key=rang.__getitem__) + autres, tailles))
    valeurs = np.array([par_code[c] for c in codes])
    return largest_remainder(valeurs / valeurs.sum() * total, total)


def _tailles_lognormales(rng, n: int, total: int, sigma: float) -> np.ndarray:
    """n integer sizes summing exactly to total, lognormal shape."""
    poids = rng.lognormal(0.0, sigma, n)
    return largest_remainder(poids / poids.sum() * total, total)


def _departement_communes(rng, departement: str, parc: int) -> int:
    """Communes with social housing in a département (larger parcs, more communes)."""
    n = round(350 * rng.lognormal(0, 0.25) * (parc / 53_000) ** 0.3)
    return int(np.clip(n, 20, _communes_max(departement)))


def _split_bailleurs(rng, parcs_dep: np.ndarray, bailleurs: int, total: int) -> list[tuple[int, int, int]]:
    """(bailleur, département index, dwellings) pairs; skewed sizes, fitted to both margins."""
    n_dep = len(parcs_dep)
    tailles = _tailles_lognormales(rng, bailleurs, total, sigma=1.25)
    p_dep = parcs_dep / parcs_dep.sum()
    # Seed matrix: a home département (weight 1) and a few others (weight 0.3); the
    # proportional fitting keeps these odds, so bailleurs stay concentrated at home.
    depart = np.zeros((bailleurs, n_dep))
    for b, taille in enumerate(tailles):
        k = min(n_dep, 1 + rng.poisson(taille / 25_000))
        choix = rng.choice(n_dep, k, replace=False, p=p_dep)
        depart[b, choix] = 0.3
        depart[b, choix[0]] = 1.0
    for d in np.flatnonzero(~depart.any(axis=0)):  # every département gets a bailleur
        depart[rng.integers(bailleurs), d] = 0.3
    matrice = depart * np.outer(tailles, p_dep)
    for _ in range(50):  # iterative proportional fitting
        matrice *= (parcs_dep / np.maximum(matrice.sum(axis=0), 1e-9))[None, :]
        matrice *= (tailles / np.maximum(matrice.sum(axis=1), 1e-9))[:, None]
    paires = []
    for b in range(bailleurs):
        ligne = matrice[b].copy()
        petits = (ligne < 50) & (ligne > 0)  # too small to plan alone: merged into the largest
        ligne[np.argmax(ligne)] += ligne[petits].sum()
        ligne[petits] = 0
        entiers = largest_remainder(ligne, int(tailles[b]))
        paires += [(b, int(d), int(entiers[d])) for d in np.flatnonzero(entiers)]
    return paires


def _reservataires_by_size(logements: int) -> int:
    return 6 if logements < 1_000 else 8 if logements < 20_000 else 10 if logements < 100_000 else 14


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------


def _communes_max(departement: str) -> int:
    return 10 ** (5 - len(departement)) - 1


def _check_departement(departement: str) -> None:
    if not re.fullmatch(r"\d{2}|2A|2B|97\d", departement) or departement in ("00", "20"):
        raise ValueError(f"Code département invalide : « {departement} » (ex. 59, 2A, 971).")


def _check_sizes(logements: int, communes: int, reservataires: int, departement: str) -> None:
    if reservataires < 4:
        raise ValueError("Il faut au moins 4 réservataires (préfet, agents, Action Logement, bailleur).")
    if communes < 1 or communes > _communes_max(departement):
        raise ValueError(f"Nombre de communes hors bornes (1 à {_communes_max(departement)} "
                         f"pour le département {departement}).")
    if logements < communes:
        raise ValueError("Il faut au moins un logement par commune.")
