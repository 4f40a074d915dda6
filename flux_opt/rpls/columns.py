"""The RPLS columns flux-opt reads, their accepted spellings, and the code tables that turn them into
the data contract's words (typologie, financement, période de construction).

Spellings: the open-data file's lower-case names (`depcom_code`, `finan_code`…) and the bailleur's
declaration's upper-case ones (`DEPCOM`, `FINAN`…), matched case-insensitively. FINAN codes: the
« financement initial » field of the declaration (arrêté du 5 janvier 2010 relatif à l'alimentation du
répertoire des logements locatifs, article 3, tableau 2, position 32); the table is documented in
models/rpls.md and docs/donnees.md.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

# field -> accepted spellings (lower case), in order of preference
SPELLINGS: dict[str, tuple[str, ...]] = {
    "commune": ("depcom_code", "depcom"),
    "commune_nom": ("depcom_libelle", "libcom"),
    "epci": ("epci_code", "epci"),
    "epci_nom": ("epci_libelle",),
    "qpv": ("qpv_code", "qpv"),
    "nbpiece": ("nbpiece",),
    "finan": ("finan_code", "finan"),
    "finan_libelle": ("finan_libelle",),
    "construct": ("construct",),
    "bail": ("bail",),
    "mode": ("mode",),
    "locat": ("locat",),
}
REQUIRED = ("commune", "epci", "qpv", "nbpiece")
ONE_OF = (("finan", "finan_libelle"),)
# What each field is, for messages.
LABELS = {
    "commune": "code INSEE de la commune", "commune_nom": "nom de la commune", "epci": "SIREN de l'EPCI",
    "epci_nom": "nom de l'EPCI", "qpv": "code du quartier prioritaire (vide ou 0 hors QPV)",
    "nbpiece": "nombre de pièces", "finan": "code du financement initial",
    "finan_libelle": "libellé du financement initial", "construct": "année de construction",
    "bail": "date de prise d'effet du bail en cours", "mode": "mode d'occupation au 1er janvier",
    "locat": "année de première mise en location",
}

# FINAN (financement initial) -> financement of the data contract.
FINAN: dict[str, tuple[str, str]] = {
    "10": ("PLAI", "PLA d'intégration (LLTS dans les DOM)"),
    "11": ("PLAI", "PLA loyer minoré / PLA très social / PLA insertion"),
    "12": ("PLUS", "PLA ordinaire (remplacé par le PLUS en 1999)"),
    "13": ("PLUS", "PLUS (LLS dans les DOM)"),
    "14": ("PLS", "PLS / PPLS / PCLS / PLA CFF"),
    "15": ("autre", "PAP locatif"),
    "16": ("autre", "PLI (logement intermédiaire)"),
    "17": ("autre", "PCL (conventionné ou non)"),
    "49": ("autre", "autre financement depuis 1977"),
    "50": ("autre", "HBM"),
    "51": ("autre", "PLR / PSR"),
    "52": ("autre", "HLM/O"),
    "53": ("autre", "ILM"),
    "54": ("autre", "ILN"),
    "55": ("autre", "prêts spéciaux du CFF"),
    "99": ("autre", "autre financement avant 1977"),
}

# Construction year -> periode_construction.
PERIODES: tuple[tuple[int, str], ...] = ((1949, "avant 1949"), (1975, "1949-1974"), (2000, "1975-1999"),
                                         (2015, "2000-2014"), (10_000, "depuis 2015"))

# MODE (mode d'occupation au 1er janvier, same table): 1 loué, 2 proposé à la location mais vacant,
# 3 vide (travaux, vente, démolition), 4 pris en charge par une association, 5 occupé sans contrat,
# 9 sans objet. Offered for rent (the mobility base): 1 and 2. Out of the flux: 3.
MODES = {"1", "2", "3", "4", "5", "9"}
OFFERED = ("1", "2")
EMPTY = "3"


def typologie(nbpiece: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Rooms -> T1 … T5, T6+ (6 and more); and the mask of values that are not a number of rooms ≥ 1."""
    rooms = pd.to_numeric(nbpiece.str.replace(",", ".", regex=False), errors="coerce")
    bad = rooms.isna() | (rooms < 1) | (rooms != np.floor(rooms))
    names = np.where(rooms >= 6, "T6+", "T" + rooms.fillna(0).clip(0, 6).astype(int).astype(str))
    return pd.Series(names, index=nbpiece.index).where(~bad, ""), bad


def finan_code(codes: pd.Series) -> pd.Series:
    """Codes as written ("13", "13.0", " 013") -> the table's two digits; blank stays blank."""
    text = codes.str.strip().str.replace(r"\.0+$", "", regex=True).str.lstrip("0")
    return text.where(text.str.len() != 1, "0" + text)


_PLAI = re.compile(r"\bPLAI\b|INT[EÉ]GRATION|TR[EÈ]S SOCIAL|LOYER MINOR[EÉ]|\bINSERTION\b|\bLLTS\b", re.I)
_PLUS = re.compile(r"\bPLUS\b|PLA ORDINAIRE|\bLLS\b", re.I)
_PLS = re.compile(r"\bPLS\b", re.I)


def financement_from_label(labels: pd.Series) -> pd.Series:
    """finan_libelle -> PLAI, PLUS, PLS (the text names it, or the older loan it replaced), else autre."""
    out = pd.Series("autre", index=labels.index, dtype=object)
    out[labels.str.contains(_PLS)] = "PLS"
    out[labels.str.contains(_PLUS)] = "PLUS"
    out[labels.str.contains(_PLAI)] = "PLAI"
    return out


def periode(construct: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Construction year -> period label; and the mask of filled values that are not a plausible year."""
    filled = construct.str.strip() != ""
    years = pd.to_numeric(construct, errors="coerce")
    bad = filled & (years.isna() | (years < 1800) | (years > 2100))
    bounds = [b for b, _ in PERIODES]
    index = np.searchsorted(bounds, years.fillna(0).to_numpy(), side="right")
    labels = np.array([name for _, name in PERIODES] + [""], dtype=object)[np.minimum(index, len(PERIODES))]
    return pd.Series(labels, index=construct.index).where(filled & ~bad, ""), bad


_DATE_PATTERNS = (
    (re.compile(r"^(?P<m>\d{1,2})/(?P<y>\d{4})$"), None),                      # mm/aaaa (declaration)
    (re.compile(r"^(?P<d>\d{1,2})/(?P<m>\d{1,2})/(?P<y>\d{4})$"), None),       # jj/mm/aaaa
    (re.compile(r"^(?P<y>\d{4})-(?P<m>\d{1,2})(?:-(?P<d>\d{1,2}))?(?:[T ][\d:.]+)?$"), None),  # ISO, Excel
)


def lease_dates(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """BAIL as written (mm/aaaa, jj/mm/aaaa, aaaa-mm, aaaa-mm-jj, an Excel date) -> datetime64 (day 1 when
    only the month is given); and the mask of filled values that are not such a date."""
    text = values.str.strip()
    year = pd.Series(np.nan, index=text.index)
    month = year.copy()
    day = pd.Series(1.0, index=text.index)
    for pattern, _ in _DATE_PATTERNS:
        found = text.str.extract(pattern)
        hit = found["y"].notna() & year.isna()
        year[hit] = found.loc[hit, "y"].astype(float)
        month[hit] = found.loc[hit, "m"].astype(float)
        if "d" in found:
            days = found.loc[hit, "d"].astype(float)
            day[hit] = days.fillna(1.0)
    parts = pd.DataFrame({"year": year, "month": month, "day": day})
    dates = pd.to_datetime(parts.dropna(), errors="coerce").reindex(text.index)
    filled = text != ""
    bad = filled & dates.isna()
    return dates, bad


def dictionary_section() -> list[str]:
    """The data dictionary's part on real data (docs/donnees.md), written from the tables above."""
    spell = lambda f: " / ".join(f"`{s}`" for s in SPELLINGS[f])  # noqa: E731
    need = {f: "obligatoire" for f in REQUIRED} | {"finan": "l'une des deux", "finan_libelle": "l'une des deux"}
    out = ["## Données réelles : `flux-opt importer rpls` et `flux-opt calibrer`", "",
           "Fichiers lus et écrits par les deux commandes qui partent des données du bailleur (méthode : "
           "`models/rpls.md`).", "",
           "### Extrait RPLS lu par `flux-opt importer rpls FICHIER --sortie INSTANCE`", "",
           "Une ligne par logement (répertoire des logements locatifs des bailleurs sociaux, CCH R.411-3) : CSV "
           "(mêmes encodages et séparateurs que les fichiers d'instance) ou classeur `.xlsx` (première feuille). "
           "Noms de colonnes du fichier ouvert (minuscules) ou de la déclaration (majuscules), sans distinction de "
           "casse ; les autres colonnes du RPLS sont laissées de côté.", "",
           "| Champ | Colonnes acceptées | Obligatoire | Lecture |", "|---|---|---|---|"]
    reading = {
        "commune": "code INSEE (5 caractères ; un code de 4 chiffres reprend son zéro) ; un logement hors du "
                   "département est écarté et compté",
        "commune_nom": "`commune_nom` de parc.csv", "epci": "SIREN (9 chiffres) ; `epci` de parc.csv",
        "epci_nom": "`epci_nom` de parc.csv",
        "qpv": "code du quartier (`QP…`, `QN…`) = en QPV ; vide ou `0` = hors QPV ; autre valeur : logement écarté et compté",
        "nbpiece": "1 → T1 … 5 → T5, 6 et plus → T6+",
        "finan": "table des codes ci-dessous ; un code inconnu est compté `autre` et signalé",
        "finan_libelle": "si pas de code : texte nommant PLAI (ou PLA d'intégration, très social, loyer minoré, "
                         "insertion), PLUS (ou PLA ordinaire), PLS ; sinon `autre`",
        "construct": "année → `periode_construction` : " + ", ".join(name for _, name in PERIODES),
        "bail": "date de prise d'effet du bail en cours (MM/AAAA, JJ/MM/AAAA, AAAA-MM-JJ ou date Excel) : "
                "rotation ; absente : `[rotation] defaut`",
        "mode": "1 loué, 2 vacant proposé à la location (base de la mobilité), 3 vide pour travaux, vente ou "
                "démolition (écarté du parc), 4, 5, 9",
        "locat": "année de première mise en location : mis en location l'année N−1 = hors base de la mobilité",
    }
    for f in SPELLINGS:
        out.append(f"| {LABELS[f]} | {spell(f)} | {need.get(f, 'facultatif')} | {reading[f]} |")
    out += ["", "Codes FINAN (financement initial ; arrêté du 5 janvier 2010 relatif à l'alimentation du répertoire "
            "des logements locatifs, article 3, tableau 2, position 32) :", "",
            "| Code | Financement initial | `financement` |", "|---|---|---|"]
    out += [f"| `{code}` | {label} | `{fin}` |" for code, (fin, label) in FINAN.items()]
    out += ["", "### Fichiers écrits dans INSTANCE", "",
            "- `parc.csv` (contrat ci-dessus) : une ligne par commune × QPV × typologie × financement × période de "
            "construction, `taux_rotation` de sa cellule commune × typologie × QPV.",
            "- `rotation.csv` : une ligne par cellule commune × typologie × QPV : `commune, commune_nom, epci, qpv, "
            "typologie, logements` (du parc), `logements_observes` (proposés à la location depuis au moins un an), "
            "`emmenagements` (baux de l'année N−1), `taux_brut`, `taux_estime`, `borne_basse`, `borne_haute` "
            "(intervalle à 95 %), `taux_parent` (EPCI × typologie), `poids_parent` (part du taux parent dans "
            "l'estimation).",
            "- `instance.toml`, `reservataires.csv` (préfet et bailleur), `demande.csv` (en-tête) : une instance de "
            "départ que `flux-opt verifier` accepte, à compléter (réservataires de la convention, viviers) ; jamais "
            "remplacés s'ils existent.",
            "- `rapport_import.txt` : le compte rendu de l'import (lignes écartées, cellules les plus rapprochées).",
            "", "### Fichiers écrits par `flux-opt calibrer JOURNAL… --sortie DIR`", "",
            "- `acceptation.csv` : `quartile, financement, taux_acceptation` (le fichier facultatif de l'instance).",
            "- `reservataires_calibres.csv` : `id, candidats, delai_jours` (à reporter dans reservataires.csv).",
            "- `estimations.csv` : `indicateur, portee, effectif, evenements, brut, defaut, estime, borne_basse, "
            "borne_haute` : acceptation, candidats par logement, délai des candidats (jours), part rendue au "
            "bailleur, motif de refus.",
            "- `calibration.html` : les estimations, chacune avec son intervalle, en tableaux et graphiques.", ""]
    return out
