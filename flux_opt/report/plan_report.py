"""The report for people: `rapport.html` (one self-contained file) and `rapport.xlsx` (one sheet per table).

Both show the same French tables (`plan_tables.report_tables`), built from the result and its
explanation only: a saved plan can be re-rendered without the model.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from flux_opt.explanation.analysis import Explanation
from flux_opt.explanation.sentences import fr_number_fine, share_table
from flux_opt.model.registry import names
from flux_opt.report import plots
from flux_opt.plan.result import Result
from flux_opt.report.plan_tables import ReportTables, commune_table, named, qpv_table
from flux_opt.report.tables import PERCENT, Table
from flux_opt.report.workbook import workbook_bytes

STRUCTURAL = names(structural=True)


# ----------------------------------------------------------------------------- HTML

CSS = """
body{font-family:'DejaVu Sans',Arial,sans-serif;margin:0;color:#1d2733;background:#f4f6f8}
header{background:#1f5fa8;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:24px} header p{margin:4px 0 0;opacity:.9}
main{max-width:1100px;margin:0 auto;padding:16px 32px 48px}
section{background:#fff;border-radius:6px;padding:14px 20px;margin:16px 0;box-shadow:0 1px 3px rgba(0,0,0,.08)}
h2{font-size:19px;color:#1f5fa8;margin:4px 0 10px} h3{font-size:15px;margin:14px 0 6px}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{flex:1 1 150px;background:#eef3f9;border-radius:6px;padding:10px 12px}
.card b{display:block;font-size:22px} .card span{font-size:12px;color:#52606d}
.card.bad{background:#fbeaea} .card.bad b{color:#c0392b} .card.good b{color:#2e8b57}
table{border-collapse:collapse;width:100%;font-size:12.5px;margin:6px 0}
th{background:#e6ecf2;text-align:left;padding:5px 6px;position:sticky;top:0}
td{border-top:1px solid #e3e8ee;padding:4px 6px;vertical-align:top}
tr:nth-child(even) td{background:#fafbfc}
td.num{text-align:right;white-space:nowrap}
ul.reasons li{margin:4px 0;line-height:1.35}
li.bad{color:#8e1f14} img{max-width:100%;display:block;margin:8px auto}
.note{color:#52606d;font-style:italic} details summary{cursor:pointer;color:#1f5fa8;margin:6px 0}
footer{text-align:center;color:#7b8794;font-size:12px;margin:24px 0}
"""


def _percent(frame: pd.DataFrame) -> pd.DataFrame:
    """Shares read as percentages in the HTML page (the workbook keeps numbers)."""
    out = frame.copy()
    for column in out.columns:
        if column in PERCENT:
            out[column] = pd.to_numeric(out[column], errors="coerce").map(
                lambda v: "" if pd.isna(v) else f"{100 * v:.1f} %".replace(".", ","))
    return out


def _html_table(frame: pd.DataFrame, max_rows: int | None = None) -> str:
    shown = _percent(frame if max_rows is None else frame.head(max_rows))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = []
    for row in shown.itertuples(index=False):
        cells = []
        for column, v in zip(shown.columns, row):
            numeric = column != "Valeur" and (
                (isinstance(v, (int, float)) and not isinstance(v, bool)) or str(v).endswith(" %"))
            text = "" if v is None or (isinstance(v, float) and pd.isna(v)) else (
                fr_number_fine(v) if isinstance(v, float) else str(v))
            cells.append(f'<td class="num">{html.escape(text)}</td>' if numeric else f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if max_rows is not None and len(frame) > max_rows:
        more = f'<p class="note">{len(frame) - max_rows} lignes de plus dans rapport.xlsx.</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def _section(table: Table, max_rows: int | None = 40, image: str | None = None, intro: str = "") -> str:
    parts = [f"<section><h2>{html.escape(table.title)}</h2>"]
    if intro:
        parts.append(f"<p>{intro}</p>")
    if image:
        parts.append(f'<img alt="{html.escape(table.title)}" src="data:image/png;base64,{image}">')
    if table.note:
        parts.append(f'<p class="note">{html.escape(table.note)}</p>')
    elif len(table.frame):
        parts.append(_html_table(table.frame, max_rows))
    parts.append("</section>")
    return "".join(parts)


def _cards(result: Result, explanation: Explanation) -> str:
    r = result.resume
    n_violated = len(explanation.violations)
    cards = [
        ("Flux annuel", f"{r['flux']} logements", ""),
        ("Attributions prévues", f"{r['attributions_prevues']:.0f}".replace(".", ","), ""),
        ("Adéquation", f"{100 * r['adequation']:.1f} %".replace(".", ","), "good"),
        ("Règles non tenues", str(n_violated), "bad" if n_violated else "good"),
        ("Logements sans candidat", f"{explanation.vacance['sans_candidat'].sum():.0f}" if len(explanation.vacance)
         else "0", "bad" if len(explanation.vacance) else "good"),
    ]
    return '<div class="cards">' + "".join(
        f'<div class="card {cls}"><b>{html.escape(v)}</b><span>{html.escape(k)}</span></div>'
        for k, v, cls in cards) + "</div>"


def rapport_html(result: Result, explanation: Explanation, tables: ReportTables | None = None) -> str:
    """The whole report as one self-contained HTML page (inline CSS, plots as base64 PNG)."""
    tables = tables or ReportTables.of(result, explanation)
    t = tables.main
    r = result.resume
    communes = commune_table(result)
    shares = named(share_table(result), result.noms)
    shares["libelle"] = shares["regle"] + " — " + shares["portee"].str.replace(
        " tous réservataires", "").str.replace(r" critère \S+$", "", regex=True).str.replace("réservataire ", "")
    reasons = "".join(f'<li class="{"bad" if x.startswith("Règle non tenue") else ""}">{html.escape(x)}</li>'
                      for x in explanation.raisons)
    title = f"Plan d'orientation du flux {r.get('annee', '')} — {r.get('bailleur', '')}"
    rules = t["contraintes"].frame
    negotiable = rules.loc[~result.contraintes["contrainte"].isin(STRUCTURAL).to_numpy()]
    body = [
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(str(r.get('instance', '')))} — département "
        f"{html.escape(str(r.get('departement', '')))}</p></header><main>",
        f"<section><h2>Synthèse</h2>{_cards(result, explanation)}{_html_table(t['synthese'].frame)}</section>",
        f'<section><h2>Les raisons principales</h2><ul class="reasons">{reasons}</ul></section>',
        _section(t["objectifs"], image=plots.targets_plot(named(result.objectifs, result.noms))),
        _section(Table("", t["violations"].title, t["violations"].frame.drop(columns=["Explication"], errors="ignore"),
                       t["violations"].note)),
        _section(t["couts"], intro="Chaque ligne résout de nouveau le plan entier avec la règle relâchée "
                                   "ou supprimée : le gain indiqué est exact, pas une estimation."),
        _section(t["familles"]),
        _section(t["reservataires"]),
        _section(t["saturees"], max_rows=20),
        _section(t["communes"], image=plots.communes_plot(communes) if len(communes) else None),
        _section(t["qpv"], image=plots.qpv_plot(named(qpv_table(result), result.noms)) if len(result.plan) else None),
        _section(t["mixite"], image=plots.mixity_plot(shares) if len(shares) else None),
        _section(t["vacance"]),
        _section(t["demande"], max_rows=25),
        _section(Table("", "Règles négociables (hors conservation et viviers)", negotiable), max_rows=60),
        _annexes(tables.annexes),
        _section(t["glossaire"], max_rows=None),
        "<footer>flux-opt — tableaux complets dans rapport.xlsx ; règles : contraintes.csv.</footer></main>",
    ]
    return ("<!DOCTYPE html><html lang=\"fr\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
            + "".join(body) + "</body></html>\n")


def _annexes(tables: list[Table], max_rows: int = 30) -> str:
    """One folded annex per réservataire: its first lines and its total (all lines in rapport.xlsx)."""
    parts = ["<section><h2>Annexes : logements orientés à chaque réservataire</h2>"
             '<p class="note">Par commune, QPV et financement (lignes) et typologie (colonnes) ; '
             "chaque annexe complète est une feuille de rapport.xlsx.</p>"]
    for table in tables:
        lines, total = table.frame.iloc[:-1], table.frame.iloc[-1:]
        shown = pd.concat([lines.head(max_rows), total], ignore_index=True)
        more = f'<p class="note">{len(lines) - max_rows} lignes de plus dans rapport.xlsx.</p>' \
            if len(lines) > max_rows else ""
        parts.append(f"<details><summary>{html.escape(table.title)} — {fr_number_fine(total['Total'].iloc[0])} "
                     f"logements</summary>{_html_table(shown)}{more}</details>")
    return "".join(parts) + "</section>"


# ----------------------------------------------------------------------------- Excel

def rapport_xlsx(result: Result, explanation: Explanation, path: str | Path) -> None:
    Path(path).write_bytes(xlsx_bytes(result, explanation))


def xlsx_bytes(result: Result, explanation: Explanation, tables: ReportTables | None = None) -> bytes:
    """The workbook: one sheet per report table, then one annex sheet per réservataire."""
    tables = tables or ReportTables.of(result, explanation)
    return workbook_bytes(list(tables.main.values()) + tables.annexes)


def report_writers(result: Result, explanation: Explanation) -> dict:
    """Writers for `write_plan(..., extra=...)`: the report files and explication.json, written
    atomically with the plan's other files."""
    from flux_opt.explanation.analysis import EXPLICATION_JSON

    # Rendered now (the caller times the report apart from the writing); written later, atomically.
    tables = ReportTables.of(result, explanation)  # built once for the page and the workbook
    page = rapport_html(result, explanation, tables).encode("utf-8")
    book = xlsx_bytes(result, explanation, tables)
    return {
        "rapport.html": lambda p: Path(p).write_bytes(page),
        "rapport.xlsx": lambda p: Path(p).write_bytes(book),
        EXPLICATION_JSON: lambda p: explanation.write_json(p),
    }
