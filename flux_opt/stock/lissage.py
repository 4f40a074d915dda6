"""Lissage: spread each réservataire's owed volume over the negotiated years (models/lissage.md).

The Hauts-de-France regional framework (2021, §2) and the Île-de-France consultation (2021, thème 3): the volume of droits uniques converted from the
stock is spread over a negotiated number of years, with new rights from newly
financed programmes added in their own years, without overloading any year, so that
the yearly targets stay stable (a view over at least 3 years). Small réservataires
may be given explicit years.

Solved as a small integer program (flux_opt.model.lissage, Pyomo + HiGHS); the formulation,
with its constraint names, is in `models/lissage.md`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from flux_opt.assiette.apportion import round_half_up
from flux_opt.model.lissage import LissageProblem, build_lissage_model, integer_value, solve_lissage
from flux_opt.stock.conversion import read_number

HORIZON_MIN = 3  # Hauts-de-France framework §2: "une vision stabilisée des objectifs [...] au moins sur 3 ans"

@dataclass(frozen=True)
class Lissage:
    """Multi-year targets of the réservataires and how they fit each year's flux."""

    annees: list[int]
    objectifs: pd.DataFrame  # index reservataire, one int column per year: stock + new rights
    detail: pd.DataFrame  # reservataire, source ("stock" or programme), annee, logements
    annuel: pd.DataFrame  # annee, flux_prevu, capacite, logements, marge, depassement
    volumes: pd.DataFrame  # reservataire, volume_du, volume_entier, annees
    statut: str  # "optimal" or "non optimal (limite de temps)"
    part_max: float
    notes: list[str] = field(default_factory=list)

    @property
    def realisable(self) -> bool:
        """True when every year's targets fit within part_max × flux prévu."""
        return bool((self.annuel["depassement"] == 0).all())

    def year_targets(self, annee: int | None = None) -> dict[str, int]:
        """Targets of one year (default: the first) as réservataire → logements."""
        annee = self.annees[0] if annee is None else annee
        if annee not in self.objectifs.columns:
            raise ValueError(f"L'année {annee} n'est pas dans le lissage ({self.annees[0]}–{self.annees[-1]}).")
        return {str(r): int(v) for r, v in self.objectifs[annee].items()}


def spread_lissage(
    volumes: pd.DataFrame,
    flux_prevu: Mapping[int, float],
    nouveaux_droits: pd.DataFrame | None = None,
    horizon: int | None = None,
    part_max: float = 1.0,
    annee_debut: int | None = None,
    duree_defaut: int | None = None,
    temps_max_s: float = 20.0,
) -> Lissage:
    """Spread the owed volumes over the years, within part_max × the forecast flux.

    volumes: reservataire, volume_du and, to set a réservataire's years, one of
    `annees_explicites` ("2025;2027"), `annee_fin` (last year) or `annees` (number of
    years from `annee_debut`); otherwise `duree_defaut` years, otherwise the horizon.
    flux_prevu: forecast flux C per year. nouveaux_droits: reservataire, programme,
    logements, annee_debut, duree (rights of new programmes, spread over their years).
    horizon: years shown (default: the years of flux_prevu from annee_debut), ≥ 3;
    the table extends further when a réservataire's years do.
    """
    probleme = _prepare(volumes, flux_prevu, nouveaux_droits, horizon, part_max, annee_debut, duree_defaut)
    modele = build_lissage_model(probleme)
    statut = solve_lissage(modele, temps_max_s)
    return _read_result(modele, probleme, volumes, statut, part_max)


# ---------------------------------------------------------------- data preparation


def _prepare(volumes, flux_prevu, nouveaux_droits, horizon, part_max, annee_debut, duree_defaut) -> LissageProblem:
    if not flux_prevu:
        raise ValueError("Aucun flux prévu fourni pour le lissage.")
    if not 0 < part_max <= 1:
        raise ValueError(f"La part maximale du flux doit être comprise entre 0 et 1 (reçu : {part_max}).")
    flux = {int(a): float(v) for a, v in flux_prevu.items()}
    debut = min(flux) if annee_debut is None else int(annee_debut)
    if horizon is None:
        horizon = _consecutive_years(flux, debut)
    if horizon < HORIZON_MIN:
        raise ValueError(f"Le lissage doit donner une vision sur au moins {HORIZON_MIN} ans (horizon : {horizon}).")
    annees_horizon = list(range(debut, debut + horizon))
    stock = _read_volumes(volumes, annees_horizon, duree_defaut)
    programmes = _read_programmes(nouveaux_droits, debut)
    fin = max([annees_horizon[-1]] + [a for _, ans in stock.values() for a in ans] + [a for *_, ans in programmes for a in ans])
    annees = list(range(debut, fin + 1))
    manquantes = [a for a in annees if a not in flux]
    if manquantes:
        raise ValueError(f"Flux prévu manquant pour l'année (les années) : {', '.join(map(str, manquantes))}.")
    capacite = {a: math.floor(part_max * flux[a] + 1e-9) for a in annees}
    return LissageProblem(annees, {a: flux[a] for a in annees}, capacite, stock, programmes)


def _consecutive_years(flux: Mapping[int, float], debut: int) -> int:
    n = 0
    while debut + n in flux:
        n += 1
    return n


def _read_volumes(volumes: pd.DataFrame, annees_horizon: list[int], duree_defaut: int | None) -> dict:
    if "reservataire" not in volumes.columns or "volume_du" not in volumes.columns:
        raise ValueError("Volumes à lisser : colonnes reservataire et volume_du requises.")
    debut = annees_horizon[0]
    stock: dict[str, tuple[int, list[int]]] = {}
    for position, ligne in enumerate(volumes.to_dict("records")):
        numero = position + 2
        reservataire = str(ligne["reservataire"]).strip()
        if reservataire in stock:
            raise ValueError(f"lissage.csv, ligne {numero} : réservataire {reservataire} en double.")
        volume = read_number(ligne["volume_du"], "volume_du", numero, "lissage.csv")
        if volume is None or volume < 0:
            raise ValueError(f"lissage.csv, ligne {numero} : volume_du manquant ou négatif.")
        annees = _reservataire_years(ligne, debut, annees_horizon, duree_defaut, numero)
        stock[reservataire] = (round_half_up(volume), annees)
    return stock


def _reservataire_years(ligne: Mapping, debut: int, annees_horizon: list[int], duree_defaut, numero: int) -> list[int]:
    """Years of one réservataire: explicit list, else up to annee_fin, else a count of years."""
    explicites = str(ligne.get("annees_explicites", "") or "").strip()
    if explicites and explicites.lower() != "nan":
        try:
            annees = sorted({int(x) for x in explicites.replace(",", ";").split(";") if x.strip()})
        except ValueError:
            raise ValueError(f"lissage.csv, ligne {numero} : annees_explicites « {explicites} » illisible.") from None
    else:
        fin = read_number(ligne.get("annee_fin"), "annee_fin", numero, "lissage.csv")
        nombre = read_number(ligne.get("annees"), "annees", numero, "lissage.csv")
        if fin is not None:
            annees = list(range(debut, int(fin) + 1))
        elif nombre is not None:
            annees = list(range(debut, debut + int(nombre)))
        elif duree_defaut is not None:
            annees = list(range(debut, debut + int(duree_defaut)))
        else:
            annees = list(annees_horizon)
    if not annees or annees[0] < debut:
        raise ValueError(f"lissage.csv, ligne {numero} : années de lissage vides ou antérieures à {debut}.")
    return annees


def _read_programmes(nouveaux_droits: pd.DataFrame | None, debut: int) -> list[tuple[str, str, int, list[int]]]:
    if nouveaux_droits is None or nouveaux_droits.empty:
        return []
    programmes = []
    for position, ligne in enumerate(nouveaux_droits.to_dict("records")):
        numero = position + 2
        valeurs = {
            champ: read_number(ligne.get(champ), champ, numero, "nouveaux_droits.csv")
            for champ in ("logements", "annee_debut", "duree")
        }
        if any(v is None for v in valeurs.values()) or valeurs["duree"] < 1 or valeurs["logements"] < 0:
            raise ValueError(f"nouveaux_droits.csv, ligne {numero} : logements, annee_debut et duree (≥ 1) requis.")
        premiere = int(valeurs["annee_debut"])
        if premiere < debut:
            raise ValueError(f"nouveaux_droits.csv, ligne {numero} : annee_debut {premiere} antérieure au lissage ({debut}).")
        annees = list(range(premiere, premiere + int(valeurs["duree"])))
        programmes.append((str(ligne["reservataire"]).strip(), str(ligne["programme"]).strip(), round_half_up(valeurs["logements"]), annees))
    return programmes


# ---------------------------------------------------------------- solving and reading


def _read_result(modele, probleme: LissageProblem, volumes: pd.DataFrame, statut: str, part_max: float) -> Lissage:
    lignes = [
        {"reservataire": r, "source": "stock", "annee": a, "logements": integer_value(modele.stock[r, a])}
        for (r, a) in modele.STOCK
    ]
    reports = [{"reservataire": r, "source": "stock reporté", "annee": a, "logements": integer_value(modele.report[r, a])}
               for (r, a) in modele.REPORT]
    lignes += [ligne for ligne in reports if ligne["logements"] > 0]
    lignes += [
        {"reservataire": probleme.programmes[p][0], "source": probleme.programmes[p][1], "annee": a,
         "logements": integer_value(modele.nouveau[p, a])}
        for (p, a) in modele.NOUVEAU
    ]
    detail = pd.DataFrame(lignes, columns=["reservataire", "source", "annee", "logements"])
    targets = (
        detail.pivot_table(index="reservataire", columns="annee", values="logements", aggfunc="sum", fill_value=0)
        .reindex(index=probleme.reservataires, columns=probleme.annees, fill_value=0)
        .astype("int64")
    )
    targets.columns.name = None
    annuel = _yearly_balance(targets, probleme)
    resume_volumes = pd.DataFrame(
        [
            {"reservataire": r, "volume_du": float(_actual_volume(volumes, r)), "volume_entier": v,
             "annees": ";".join(map(str, ans))}
            for r, (v, ans) in probleme.stock.items()
        ],
        columns=["reservataire", "volume_du", "volume_entier", "annees"],
    )
    notes = _notes(annuel, statut) + [
        f"{ligne['reservataire']} : {ligne['logements']} logement(s) reportés en {ligne['annee']}, après sa période "
        "de lissage, faute de capacité dans ses années." for ligne in reports if ligne["logements"] > 0]
    return Lissage(probleme.annees, targets, detail, annuel, resume_volumes, statut, part_max, notes)


def _yearly_balance(targets: pd.DataFrame, probleme: LissageProblem) -> pd.DataFrame:
    totaux = targets.sum(axis=0)
    lignes = []
    for a in probleme.annees:
        logements = int(totaux[a])
        capacite = probleme.capacite[a]
        lignes.append({
            "annee": a,
            "flux_prevu": probleme.flux[a],
            "capacite": capacite,
            "logements": logements,
            "marge": max(capacite - logements, 0),
            "depassement": max(logements - capacite, 0),
        })
    return pd.DataFrame(lignes)


def _notes(annuel: pd.DataFrame, statut: str) -> list[str]:
    notes = []
    for ligne in annuel.itertuples():
        if ligne.depassement > 0:
            notes.append(
                f"Année {ligne.annee} : les objectifs ({ligne.logements}) dépassent la capacité "
                f"({ligne.capacite}) de {ligne.depassement} logement(s) ; allonger la durée de lissage "
                "ou relever la part maximale du flux."
            )
    if statut != "optimal":
        notes.append("Le lissage s'est arrêté à la limite de temps : la solution est valide mais peut-être pas la plus stable.")
    return notes


def _actual_volume(volumes: pd.DataFrame, reservataire: str) -> float:
    ligne = volumes[volumes["reservataire"].astype(str).str.strip() == reservataire].iloc[0]
    return read_number(ligne["volume_du"], "volume_du", 0, "lissage.csv") or 0.0
