"""Read a plan folder written by `flux-opt plan` (docs/donnees.md, « Sorties »)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from flux_opt.errors import InputProblem, InvalidInput
from flux_opt.input.schema import parse_bool

DAMAGED = "relancer la commande qui a écrit ce dossier (flux-opt plan…) pour le réécrire"

CLES_SEGMENT: list[str] = ["commune", "epci", "qpv", "typologie", "financement"]


def _read_csv(dossier: str | Path, nom: str, entiers: list[str], obligatoires: list[str]) -> pd.DataFrame:
    chemin = Path(dossier) / nom
    if not chemin.exists():
        raise FileNotFoundError(f"fichier du plan introuvable : {chemin}")
    try:
        df = pd.read_csv(chemin, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{chemin} : fichier vide (aucune colonne) ; {DAMAGED}") from None
    except (pd.errors.ParserError, UnicodeDecodeError):
        raise ValueError(f"{chemin} : fichier illisible (CSV abîmé) ; {DAMAGED}") from None
    manquantes = [c for c in obligatoires if c not in df.columns]
    if manquantes:
        raise ValueError(f"{chemin} : colonnes manquantes : {', '.join(manquantes)}")
    for colonne in entiers:
        try:
            df[colonne] = pd.to_numeric(df[colonne]).round().astype(int)
        except ValueError:
            raise ValueError(f"{chemin} : la colonne « {colonne} » doit contenir des nombres") from None
    if "qpv" in df.columns:
        df["qpv"] = df["qpv"].map(parse_bool).astype(bool)
    return df


def read_json(path: str | Path) -> dict:
    """A JSON file of a plan folder (resume.json, explication.json); a truncated or damaged one is
    InvalidInput naming the file and the line, never a JSONDecodeError."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInput([InputProblem(str(path), exc.lineno, None,
                                         f"JSON illisible (fichier tronqué ou abîmé, colonne {exc.colno}) ; {DAMAGED}")]) from None
    except UnicodeDecodeError:
        raise InvalidInput([InputProblem(str(path), None, None, f"pas du texte UTF-8 ; {DAMAGED}")]) from None
    if not isinstance(data, dict):
        raise InvalidInput([InputProblem(str(path), None, None, f"objet JSON attendu ; {DAMAGED}")])
    return data


def read_plan(dossier: str | Path) -> pd.DataFrame:
    """plan.csv: one row per (segment, réservataire) with planned `logements`."""
    df = _read_csv(dossier, "plan.csv", ["logements"], [*CLES_SEGMENT, "reservataire", "logements"])
    return df[[*CLES_SEGMENT, "reservataire", "logements"]]


def read_objectifs(dossier: str | Path) -> pd.DataFrame:
    """objectifs.csv: target (`cible`) and planned `logements` per réservataire."""
    df = _read_csv(dossier, "objectifs.csv", [], ["reservataire", "cible", "logements"])
    for colonne in ("cible", "logements"):
        df[colonne] = pd.to_numeric(df[colonne])
    return df


def read_attributions(dossier: str | Path) -> pd.DataFrame | None:
    """attributions.csv (expected attributions by household category), or None if absent."""
    if not (Path(dossier) / "attributions.csv").exists():
        return None
    df = _read_csv(dossier, "attributions.csv", [],
                   [*CLES_SEGMENT, "reservataire", "quartile", "prioritaire", "attributions_prevues"])
    df["attributions_prevues"] = pd.to_numeric(df["attributions_prevues"])
    df["prioritaire"] = df["prioritaire"].map(parse_bool).astype(bool)
    if "travailleur_essentiel" in df.columns:
        df["travailleur_essentiel"] = df["travailleur_essentiel"].map(parse_bool).astype(bool)
    else:
        df["travailleur_essentiel"] = False
    return df
