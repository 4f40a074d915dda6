"""`flux-opt expliquer DIR`: the top reasons of a saved plan, as rich renderables (no re-solve).

Reads DIR/explication.json (written by `flux-opt plan`); without it, falls back on
contraintes.csv (violated rules, then binding rules by marginal value)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from rich.console import Group
from rich.table import Table
from rich.text import Text
from rich.markup import escape

from flux_opt.explanation.analysis import EXPLICATION_JSON, Explanation, resolution_words
from flux_opt.model.registry import label
from flux_opt.explanation.sentences import fr_number


def load_explanation(folder: str | Path) -> Explanation | None:
    path = Path(folder) / EXPLICATION_JSON
    return Explanation.read_json(path) if path.exists() else None


def reasons_from_contraintes(folder: str | Path, n: int = 10) -> list[str]:
    """Reasons from contraintes.csv alone: violated rules, then binding rules by marginal value."""
    path = Path(folder) / "contraintes.csv"
    if not path.exists():
        raise FileNotFoundError(f"ni {EXPLICATION_JSON} ni contraintes.csv dans {folder} : est-ce un dossier de plan ?")
    rules = pd.read_csv(path, dtype=str, keep_default_na=False)
    rules["valeur_marginale"] = pd.to_numeric(rules["valeur_marginale"], errors="coerce").fillna(0)
    violated = rules.loc[rules["statut"] == "violee", "explication"].tolist()
    binding = rules.loc[(rules["statut"] == "saturee") & (rules["valeur_marginale"] > 1e-3)]
    binding = binding.sort_values("valeur_marginale", ascending=False, kind="stable")
    return [f"Règle non tenue — {s}" for s in violated] + [f"Règle tenue sans marge — {s}" for s in
                                                             binding["explication"].head(n)]


def explanation_view(folder: str | Path, n: int = 10) -> Group:
    folder = Path(folder)
    resume_path = folder / "resume.json"
    head = Text()
    if resume_path.exists():
        r = json.loads(resume_path.read_text(encoding="utf-8"))
        head.append(f"{r.get('instance')} — {r.get('bailleur')} — année {r.get('annee')}\n", "bold")
        violated = ", ".join(label(v) for v in r.get("regles_violees", [])) or "aucune"
        head.append(f"Flux {fr_number(r.get('flux'))} logements, environ "
                    f"{fr_number(round(r.get('attributions_prevues', 0)))} attributions prévues ; "
                    f"règles non tenues : {violated}\n")
    explanation = load_explanation(folder)
    if explanation is None:
        head.append(f"({EXPLICATION_JSON} absent : raisons lues dans contraintes.csv)\n", "yellow")
        reasons = reasons_from_contraintes(folder, n)
    else:
        reasons = explanation.raisons
    parts = [head, _reasons_table(reasons[:n], len(reasons))]
    if explanation is not None and len(explanation.couts):
        parts.append(_costs_table(explanation.couts))
    return Group(*parts)


def _reasons_table(reasons: list[str], total: int) -> Table:
    table = Table(title="Pourquoi ce plan : les raisons principales", show_lines=True, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("Raison", overflow="fold")
    for i, reason in enumerate(reasons, start=1):
        style = "red" if reason.startswith("Règle non tenue") else None
        table.add_row(str(i), escape(reason), style=style)  # « [analyse] temps_max_s » is not markup
    if total > len(reasons):
        table.caption = f"{total - len(reasons)} raisons de plus (option --nombre, ou rapport.html)"
    return table


def _costs_table(costs: pd.DataFrame) -> Table:
    precision = float(costs["precision"].max()) if "precision" in costs and costs["precision"].notna().any() else 0.0
    table = Table(title=f"Coût des règles ({resolution_words(precision, plural=True)})", title_justify="left")
    for column in ("Règle", "Variante", "Attributions gagnées", "Score gagné", "Logements déplacés"):
        table.add_column(column, justify="left" if column in ("Règle", "Variante") else "right", overflow="fold",
                         ratio=2 if column == "Règle" else 1)
    for row in costs.itertuples():
        table.add_row(label(row.famille), str(row.variante), _num(row.gain_attributions),
                      _num(row.gain_adequation_ponderee), fr_number(row.logements_deplaces))
    return table


def _num(v) -> str:
    return "—" if v is None or pd.isna(v) else f"{float(v):+.2f}".replace(".", ",")
