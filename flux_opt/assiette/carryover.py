"""Clause de revoyure: last year's bilan carried into this year's targets.

What a réservataire was owed and did not get (or got beyond its due) is added to
(taken from) its target, applied to the targets table after `compute_targets`:
- at most `[revoyure] report_max` × its target (⌊·⌋, a cap is a cap; 0 = off);
- never above a legal cap (its own cap, the préfet's and the agents' caps), never below 0;
- a whole number of dwellings, rounded toward zero (weighted counting gives fractions);
- the bailleur, who takes the remainder of the flux, balances the total.
Rules and sentences: models/journal.md (Report d'une année sur l'autre).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from flux_opt.assiette.targets import Targets
from flux_opt.errors import InvalidInput, InputProblem
from flux_opt.input.schema import Instance
from flux_opt.vocabulary import PREFET_GROUP

COLONNES_BILAN = ("reservataire", "objectif", "logements_decomptes", "ecart")
_NOM = re.compile(r"^bilan_(\d{4})\.csv$")
EPS = 1e-9


@dataclass(frozen=True)
class BilanPrecedent:
    annee: int
    source: str
    table: pd.DataFrame  # reservataire, objectif, logements_decomptes, ecart (counted − objective)


def bilans_du_dossier(dossier: str | Path) -> dict[int, Path]:
    """Year → `bilan_AAAA.csv` of a folder written by `flux-opt bilan` (refused when none)."""
    dossier = Path(dossier)
    if not dossier.is_dir():
        raise InvalidInput([InputProblem(str(dossier), None, None, "dossier de bilan introuvable")])
    bilans = {int(m.group(1)): f for f in sorted(dossier.iterdir()) if (m := _NOM.match(f.name))}
    if not bilans:
        raise InvalidInput([InputProblem(str(dossier), None, None, "aucun fichier bilan_AAAA.csv (écrit par "
                                                                  "flux-opt bilan PLAN JOURNAL --annee AAAA)")])
    return bilans


def read_bilan(chemin: Path, annee: int) -> BilanPrecedent:
    """One `bilan_AAAA.csv`, every number checked (French problems naming line and column)."""
    brut = pd.read_csv(chemin, dtype=str, keep_default_na=False)
    problems = [InputProblem(str(chemin), 1, c, "colonne obligatoire absente de l'en-tête")
                 for c in COLONNES_BILAN if c not in brut.columns]
    if problems:
        raise InvalidInput(problems)
    table = brut[list(COLONNES_BILAN)].copy()
    for colonne in COLONNES_BILAN[1:]:
        valeurs = pd.to_numeric(table[colonne].str.replace(",", "."), errors="coerce")
        for rang in np.flatnonzero(~np.isfinite(valeurs.to_numpy(dtype=float))):
            problems.append(InputProblem(str(chemin), int(rang) + 2, colonne,
                                      f"nombre attendu (reçu : « {table[colonne].iat[rang]} »)"))
        table[colonne] = valeurs
    if problems:
        raise InvalidInput(problems)
    return BilanPrecedent(annee, str(chemin), table)


def read_previous_bilan(dossier: str | Path, annee_plan: int) -> BilanPrecedent:
    """The latest bilan of the folder, which must be of a year before the plan's."""
    annee, chemin = max(bilans_du_dossier(dossier).items())
    if annee >= annee_plan:
        raise InvalidInput([InputProblem(str(chemin), None, None, f"bilan de {annee} : le plan est pour "
                                                                 f"{annee_plan}, il lui faut un bilan antérieur")])
    return read_bilan(chemin, annee)


def droits_utilises(dossier: str | Path, depuis: int) -> tuple[dict[str, float], int]:
    """Dwellings counted per réservataire in the bilans of `depuis` and later (rights of a
    converted stock already used), and the last year they cover."""
    bilans = {a: c for a, c in bilans_du_dossier(dossier).items() if a >= depuis}
    if not bilans:
        raise InvalidInput([InputProblem(str(dossier), None, None, f"aucun bilan de {depuis} ou après : rien "
                                                                  "à déduire du stock converti")])
    tables = [read_bilan(c, a).table for a, c in bilans.items()]
    total = pd.concat(tables).groupby("reservataire")["logements_decomptes"].sum()
    return {r: float(v) for r, v in total.items()}, max(bilans)


def apply_carry_over(targets: Targets, instance: Instance, precedent: BilanPrecedent) -> Targets:
    """Targets with last year's balance carried over: columns `report` (dwellings added,
    negative when taken back), `report_du` (owed per the bilan) and `report_limite`
    (what limited it: "", "report_max", "plafond", "bailleur")."""
    table = targets.table.copy()
    table["report"], table["report_du"], table["report_limite"] = 0, 0.0, ""
    du = (-precedent.table.set_index("reservataire")["ecart"]).to_dict()
    taux = instance.parametres.revoyure.report_max
    bailleurs = table.index[table["type"] == "bailleur"]
    if taux <= 0 or len(bailleurs) == 0:
        return replace(targets, table=table)
    reste_bailleur = int(table.loc[bailleurs[0], "cible"])
    for i in table.sort_values("id", kind="stable").index:
        row = table.loc[i]
        if row["type"] == "bailleur" or row["id"] not in du:
            continue
        voulu = math.trunc(du[row["id"]] + math.copysign(EPS, du[row["id"]]))
        limite = math.floor(taux * row["cible"] + EPS)
        bornes = [("report_max", limite), ("plafond", _marge_plafond(table, i, targets)), ("bailleur", reste_bailleur)]
        report, motif = max(min(voulu, limite), -limite, -int(row["cible"])), "report_max" if abs(voulu) > limite else ""
        for nom, borne in bornes[1:]:
            if report > max(borne, 0):
                report, motif = max(borne, 0), nom
        table.loc[i, ["report", "report_du", "report_limite"]] = [report, du[row["id"]], motif]
        table.loc[i, "cible"] = int(row["cible"]) + report
        reste_bailleur -= report
    total = int(table.loc[table["type"] != "bailleur", "report"].sum())
    table.loc[bailleurs[0], "report"] = -total
    table.loc[bailleurs[0], "cible"] = int(table.loc[bailleurs[0], "cible"]) - total
    table["cible"] = table["cible"].astype(int)
    table["report"] = table["report"].astype(int)
    return replace(targets, table=table)


def _marge_plafond(table: pd.DataFrame, i, targets: Targets) -> float:
    """Dwellings réservataire i may still gain under its own cap and the State's caps."""
    marges = [table.at[i, "plafond"] - table.at[i, "cible"]] if not pd.isna(table.at[i, "plafond"]) else []
    if table.at[i, "type"] in PREFET_GROUP and targets.plafond_prefet is not None:
        groupe = table["type"].isin(PREFET_GROUP)
        marges.append(targets.plafond_prefet - table.loc[groupe, "cible"].sum())
    if table.at[i, "type"] == "prefet_agents" and targets.plafond_agents is not None:
        marges.append(targets.plafond_agents - table.at[i, "cible"])
    return float(min(marges)) if marges else math.inf


def phrases_report(table: pd.DataFrame, annee_precedente: int, taux: float) -> list[str]:
    """One French sentence per réservataire whose target carries last year's balance."""
    phrases = []
    for row in table.itertuples():
        if row.type == "bailleur" or (row.report == 0 and abs(row.report_du) < 1):
            continue
        nom = getattr(row, "nom", row.id) or row.id
        du = row.report_du
        constat = (f"{_n(du)} logement{'s' if abs(du) >= 2 else ''} {'dus' if abs(du) >= 2 else 'dû'} en "
                   f"{annee_precedente} et non obtenu{'s' if abs(du) >= 2 else ''}" if du > 0 else
                   f"{_n(-du)} logement{'s' if abs(du) >= 2 else ''} obtenu{'s' if abs(du) >= 2 else ''} en "
                   f"{annee_precedente} au-delà de son dû")
        effet = (f"{row.report:+d} sur l'objectif, porté à {row.cible}" if row.report else "aucun report")
        limite = {"report_max": f"limité à {_pct(taux)} de l'objectif ([revoyure] report_max)",
                  "plafond": "limité par le plafond légal (CCH R.441-5 et R.441-5-2)",
                  "bailleur": "limité par ce qui reste au contingent du bailleur"}.get(row.report_limite, "")
        phrases.append(f"{nom} : {constat} (clause de revoyure) — {effet}" + (f", {limite}" if limite else "") + ".")
    total = int(table.loc[table["type"] != "bailleur", "report"].sum())
    if total:
        phrases.append(f"Le contingent du bailleur compense : {-total:+d} logement{'s' if abs(total) >= 2 else ''}.")
    return phrases


def _n(valeur: float) -> str:
    return (f"{valeur:.1f}".replace(".", ",")).removesuffix(",0")


def _pct(taux: float) -> str:
    return f"{100 * taux:g} %".replace(".", ",")
