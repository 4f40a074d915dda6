"""Read a plan folder written by `flux-opt plan` (docs/donnees.md, « Sorties »)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from flux_opt.errors import InputProblem, InvalidInput
from flux_opt.input.csvfile import read_csv
from flux_opt.input.schema import parse_bool
from flux_opt.vocabulary import FINANCEMENTS

DAMAGED = "relancer la commande qui a écrit ce dossier (flux-opt plan…) pour le réécrire"

CLES_SEGMENT: list[str] = ["commune", "epci", "qpv", "typologie", "financement"]


def plan_folder(path: str | Path) -> Path:
    """The plan folder of `path`: the folder itself, or the folder of a plan.csv given as a file
    (`flux-opt controler sortie/plan.csv …`)."""
    path = Path(path)
    return path.parent if path.suffix.lower() == ".csv" and not path.is_dir() else path


def _number(text: str) -> float:
    """A number as a spreadsheet writes it: decimal point or comma, spaces between thousands."""
    cleaned = text.replace("\u202f", "").replace("\xa0", "").replace(" ", "").replace(",", ".")
    return float(cleaned)


def _read_csv(dossier: str | Path, nom: str, entiers: list[str], obligatoires: list[str],
              decimaux: tuple[str, ...] = ()) -> pd.DataFrame:
    """A plan file in any dialect the instance reader accepts (UTF-8 or Windows-1252, `,` or `;`,
    decimal comma); InvalidInput naming the file, the line and the field on anything else."""
    chemin = plan_folder(dossier) / nom
    if not chemin.exists():
        raise InvalidInput([InputProblem(str(chemin), None, None, "fichier du plan introuvable")])
    raw = read_csv(chemin)
    manquantes = [c for c in obligatoires if c not in raw.columns]
    if manquantes:
        raise InvalidInput([InputProblem(str(chemin), 1, c, "colonne manquante") for c in manquantes])
    df = pd.DataFrame(raw.rows, columns=raw.columns, dtype=str)
    problems = []
    for colonne in (*entiers, *decimaux):
        values = []
        for i, text in enumerate(df[colonne]):
            try:
                value = _number(text)
                if colonne in entiers and not float(value).is_integer():
                    raise ValueError
                values.append(value)
            except ValueError:
                problems.append(InputProblem(str(chemin), raw.line(i), colonne,
                                             f"« {text} » : {'nombre entier' if colonne in entiers else 'nombre'} attendu"))
                values.append(0.0)
        df[colonne] = pd.Series(values, dtype=float).astype(int) if colonne in entiers else pd.Series(values, dtype=float)
    for colonne in ("qpv", "prioritaire", "travailleur_essentiel"):
        if colonne in df.columns:
            flags = []
            for i, text in enumerate(df[colonne]):
                try:
                    flags.append(bool(parse_bool(text)))
                except ValueError:
                    problems.append(InputProblem(str(chemin), raw.line(i), colonne, f"« {text} » : oui ou non attendu"))
                    flags.append(False)
            df[colonne] = pd.Series(flags, dtype=bool)
    if problems:
        raise InvalidInput(problems)
    df.attrs["lignes"] = list(raw.lines)
    df.attrs["fichier"] = str(chemin)
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
    return _read_csv(dossier, "objectifs.csv", [], ["reservataire", "cible", "logements"], ("cible", "logements"))


def read_attributions(dossier: str | Path) -> pd.DataFrame | None:
    """attributions.csv (expected attributions by household category), or None if absent."""
    if not (plan_folder(dossier) / "attributions.csv").exists():
        return None
    df = _read_csv(dossier, "attributions.csv", [],
                   [*CLES_SEGMENT, "reservataire", "quartile", "prioritaire", "attributions_prevues"],
                   ("attributions_prevues",))
    if "travailleur_essentiel" not in df.columns:
        df["travailleur_essentiel"] = False
    return df


def plan_problems(instance, plan: pd.DataFrame, attributions: pd.DataFrame | None = None) -> list[InputProblem]:
    """Rows of plan.csv / attributions.csv that do not fit the instance, each with its file, line
    and field: an unknown réservataire, a commune, typologie or financement absent from its parc,
    a segment (commune, typologie, QPV, financement) that releases nothing, a negative count."""
    known = {r.id for r in instance.reservataires}
    segments = {(p.commune, p.typologie, bool(p.qpv), p.financement) for p in instance.parc}
    communes = {p.commune for p in instance.parc}
    problems = []
    for table, count in ((plan, "logements"), (attributions, "attributions_prevues")):
        if table is None:
            continue
        source, lines = table.attrs.get("fichier", "plan.csv"), table.attrs.get("lignes", [])
        for i, row in enumerate(table.itertuples(index=False)):
            line = lines[i] if i < len(lines) else i + 2

            def bad(champ: str, message: str) -> None:
                problems.append(InputProblem(source, line, champ, message))

            if row.reservataire not in known:
                bad("reservataire", f"« {row.reservataire} » absent de reservataires.csv")
            if row.commune not in communes:
                bad("commune", f"« {row.commune} » absente du parc (parc.csv)")
            elif (row.commune, row.typologie, bool(row.qpv), row.financement) not in segments:
                bad("financement" if row.financement not in FINANCEMENTS else "typologie",
                    f"segment {row.commune} {row.typologie} {'QPV' if row.qpv else 'hors QPV'} {row.financement} "
                    "absent du parc (parc.csv)")
            if getattr(row, count) < 0:
                bad(count, "nombre négatif")
    return problems
