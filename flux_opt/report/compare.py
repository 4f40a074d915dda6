"""Render a scenario comparison or a sweep: rich tables, self-contained HTML (French), Excel, plots."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from rich.console import Group  # noqa: E402
from rich.table import Table  # noqa: E402
from rich.text import Text  # noqa: E402

from flux_opt.negotiation.sweep import ResultatBalayage  # noqa: E402
from flux_opt.negotiation.compare import BASE, Comparaison  # noqa: E402
from flux_opt.report.exports import write_atomically, write_csv  # noqa: E402

SHEETS = {"logements": "Logements", "par_qpv": "Par QPV", "par_typologie": "Par typologie",
          "par_commune": "Par commune",
          "adequation": "Adéquation", "adequation_reservataires": "Adéquation par réservataire",
          "mixite": "Mixité", "regles": "Règles saturées", "gains": "Gains et pertes"}


def _fr(v) -> str:
    if isinstance(v, float):
        text = f"{v:,.0f}" if v.is_integer() else f"{v:,.4g}" if abs(v) < 10 else f"{v:,.2f}"
        return text.replace(",", " ").replace(".", ",")
    return str(v)


# --------------------------------------------------------------------------- terminal

def comparison_renderable(c: Comparaison) -> Group:
    parts = [Text("Scénarios comparés", style="bold")]
    for n in c.noms:
        parts.append(Text(f"  • {n} : {c.descriptions.get(n, '')}"))
    table = Table(title="Logements orientés par réservataire (écart à la base)")
    table.add_column("Réservataire")
    for n in c.noms:
        table.add_column(n, justify="right")
    for record in c.logements.to_dict("records"):
        cells = [str(record["reservataire"]), str(int(record[BASE]))]
        for n in c.noms[1:]:
            delta = int(record[f"Δ {n}"])
            style = "green" if delta > 0 else "red" if delta < 0 else "dim"
            cells.append(f"{int(record[n])} [{style}]({delta:+d})[/{style}]")
        table.add_row(*cells)
    parts.append(table)
    parts.append(_frame_table(c.adequation, "Adéquation avec la demande", first="Indicateur"))
    parts.append(_frame_table(c.regles, "Règles saturées ou violées", first="Règle"))
    missed = _missed_mixity(c)
    parts.append(Text(missed, style="bold red") if missed else
                 Text("Tous les objectifs de mixité sont atteints dans chaque scénario.", style="green"))
    if len(c.gains):
        gains = Table(title="Qui gagne, qui perd (par rapport à la base)")
        gains.add_column("Scénario")
        gains.add_column("Réservataire")
        gains.add_column("Écart", justify="right")
        gains.add_column("Détail")
        for g in c.gains.itertuples():
            style = "green" if g.ecart > 0 else "red"
            gains.add_row(g.scenario, g.reservataire, f"[{style}]{g.ecart:+d}[/{style}]", g.phrase)
        parts.append(gains)
    else:
        parts.append(Text("Aucun scénario ne change les logements des réservataires.", style="dim"))
    return Group(*parts)


def _missed_mixity(c: Comparaison) -> str:
    status = [col for col in c.mixite.columns if col.endswith(": statut")]
    missed = [f"{col.removesuffix(' : statut')} : {row['contrainte']} ({row['portee']})"
              for _, row in c.mixite.iterrows() for col in status if row[col] == "NON atteint"]
    return ("Objectifs de mixité non atteints — " + " ; ".join(missed)) if missed else ""


def _frame_table(frame: pd.DataFrame, title: str, first: str) -> Table:
    table = Table(title=title)
    for i, column in enumerate(frame.columns):
        table.add_column(first if i == 0 else str(column), justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in frame.itertuples(index=False):
        table.add_row(*[_fr(v) for v in row])
    return table


def sweep_renderable(s: ResultatBalayage, acceleration: dict | None = None) -> Group:
    ids = [c.removeprefix("logements_") for c in s.points.columns if c.startswith("logements_")]
    table = Table(title=f"Balayage de {s.parametre}")
    for column in (s.parametre, "adéq.", "objectif", "violées", *ids):
        table.add_column(column, justify="right", no_wrap=True)
    for row in s.points.to_dict("records"):
        table.add_row(_fr(float(row["valeur"])), f"{100 * row['adequation']:.1f} %".replace(".", ","),
                      f"{row['objectif']:.1f}".replace(".", ","),
                      str(row["regles_violees"]), *[str(row[f"logements_{i}"]) for i in ids])
    lines = [table, Text(f"{len(s.points)} points en {s.secondes:.2f} s, modèle reconstruit {s.reconstructions} fois.")]
    if acceleration:
        lines.append(Text(acceleration_text(acceleration), style="bold"))
    return Group(*lines)


def acceleration_text(a: dict) -> str:
    same = "identiques" if a["identiques"] else "DIFFÉRENTS"
    return (f"Réutilisation du modèle : {a['reutilisation_s']:.2f} s contre {a['reconstruction_s']:.2f} s "
            f"en reconstruisant à chaque point, soit ×{a['acceleration']:.2f} ; résultats {same}.")


# --------------------------------------------------------------------------- plots

def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def comparison_plots(c: Comparaison) -> dict[str, bytes]:
    """Grouped bars of dwellings per réservataire, and the gains/losses against the base."""
    frame = c.logements.set_index("reservataire")
    fig, ax = plt.subplots(figsize=(10, 4.8))
    frame[c.noms].plot.bar(ax=ax, width=0.8, rot=0)
    ax.set_ylabel("logements orientés")
    ax.set_xlabel("")
    ax.set_title("Logements orientés par réservataire et par scénario")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    plots = {"logements.png": _png(fig)}
    deltas = frame[[f"Δ {n}" for n in c.noms[1:]]]
    deltas.columns = c.noms[1:]
    if len(deltas.columns):
        fig, ax = plt.subplots(figsize=(10, 4.2))
        deltas.plot.barh(ax=ax, width=0.8)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.invert_yaxis()
        ax.set_xlabel("écart de logements par rapport à la base")
        ax.set_ylabel("")
        ax.set_title("Qui gagne, qui perd")
        ax.legend(fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        plots["gains.png"] = _png(fig)
    return plots


def sweep_plot(s: ResultatBalayage) -> bytes:
    """Fit with demand (left) and each réservataire's share of the flux (right) vs the parameter."""
    p = s.points
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    left.plot(p["valeur"], p["adequation_ponderee"], marker="o", color="tab:blue")
    left.set_xlabel(s.parametre)
    left.set_ylabel("adéquation pondérée (attributions, prioritaires ×1,2)", color="tab:blue")
    left.grid(alpha=0.3)
    twin = left.twinx()
    twin.plot(p["valeur"], 100 * p["adequation"], marker=".", linestyle="--", color="tab:gray")
    low = float(100 * p["adequation"].min())
    twin.set_ylim(max(0.0, low - 5), 100.5)
    twin.set_ylabel("logements pourvus (%, pointillés)", color="tab:gray")
    left.set_title("Adéquation avec la demande")
    for column in [c for c in p.columns if c.startswith("part_")]:
        right.plot(p["valeur"], 100 * p[column], marker="o", markersize=3, label=column.removeprefix("part_"))
    right.set_xlabel(s.parametre)
    right.set_ylabel("part du flux annuel (%)")
    right.set_title("Part de chaque réservataire")
    right.grid(alpha=0.3)
    right.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return _png(fig)


def sweep_summary(s: ResultatBalayage) -> pd.DataFrame:
    """The sweep as a compact table: one row per value, dwellings per réservataire."""
    p = s.points
    out = pd.DataFrame({s.parametre: p["valeur"], "adéquation (%)": (100 * p["adequation"]).round(2),
                        "adéquation pondérée": p["adequation_ponderee"], "objectif": p["objectif"].round(3),
                        "règles violées": p["regles_violees"]})
    for column in [c for c in p.columns if c.startswith("logements_")]:
        out[column.removeprefix("logements_")] = p[column]
    return out


# --------------------------------------------------------------------------- HTML

CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.9em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eef}
td:first-child,th:first-child,td.t{text-align:left}.pos{color:#070}.neg{color:#b00}
img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}h2{margin-top:1.5em}"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for column, v in zip(frame.columns, row):
            css = "" if isinstance(v, (int, float)) else ' class="t"'
            if str(column).startswith("Δ") or column == "ecart":
                css = ' class="pos"' if v > 0 else ' class="neg"' if v < 0 else ""
                v = f"{int(v):+d}"
            cells.append(f"<td{css}>{html.escape(_fr(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<div style='overflow-x:auto'><table><tr>{head}</tr>{''.join(body)}</table></div>"


def comparison_html(c: Comparaison | None, plots: dict[str, bytes], sweep: ResultatBalayage | None = None,
                    sweep_png: bytes | None = None, acceleration: dict | None = None) -> str:
    parts = ["<!DOCTYPE html><html lang='fr'><head><meta charset='utf-8'>",
             f"<title>Comparaison de scénarios — flux-opt</title><style>{CSS}</style></head><body>"]
    if c is not None:
        parts.append("<h1>Comparaison de scénarios</h1><ul>")
        parts += [f"<li><b>{html.escape(n)}</b> : {html.escape(c.descriptions.get(n, ''))}</li>" for n in c.noms]
        parts.append("</ul>")
        parts.append("<h2>Logements orientés par réservataire</h2>" + _img(plots["logements.png"], "logements"))
        parts.append(_html_table(c.logements))
        if "gains.png" in plots:
            parts.append("<h2>Qui gagne, qui perd</h2>" + _img(plots["gains.png"], "gains et pertes"))
        parts.append("<ul>" + "".join(f"<li>{html.escape(g.scenario)} : {html.escape(g.phrase)}</li>"
                                      for g in c.gains.itertuples()) + "</ul>" if len(c.gains) else
                     "<p>Aucun scénario ne change les logements des réservataires.</p>")
        parts.append("<h2>Adéquation avec la demande</h2>" + _html_table(c.adequation))
        parts.append("<h3>Part (%) des logements de chaque réservataire qui trouvent preneur</h3>"
                     + _html_table(c.adequation_reservataires))
        parts.append("<h2>Objectifs de mixité</h2><p>Marge : attributions (ou logements) au-delà du "
                     "minimum ; négative quand l'objectif est manqué.</p>" + _html_table(c.mixite))
        parts.append("<h2>Règles saturées ou violées</h2>" + _html_table(c.regles))
        parts.append("<h2>Par QPV</h2>" + _html_table(c.par_qpv))
        parts.append("<h2>Par typologie</h2>" + _html_table(c.par_typologie))
        parts.append("<h2>Par commune</h2>" + _html_table(c.par_commune))
    if sweep is not None:
        parts.append(f"<h1>Balayage de {html.escape(sweep.parametre)}</h1>")
        if sweep_png:
            parts.append(_img(sweep_png, "balayage"))
        if acceleration:
            parts.append(f"<p>{html.escape(acceleration_text(acceleration))}</p>")
        parts.append("<p>Logements orientés par réservataire à chaque valeur :</p>" + _html_table(sweep_summary(sweep)))
    parts.append("</body></html>")
    return "\n".join(parts)


# --------------------------------------------------------------------------- files

def write_excel(path: Path, sheets: dict[str, pd.DataFrame]) -> None:
    with pd.ExcelWriter(path, engine="openpyxl") as book:
        for name, frame in sheets.items():
            frame.to_excel(book, sheet_name=name[:31], index=False)
            sheet = book.sheets[name[:31]]
            for i, column in enumerate(frame.columns):
                width = max([len(str(column))] + [len(str(v)) for v in frame[column].head(200)])
                sheet.column_dimensions[sheet.cell(1, i + 1).column_letter].width = min(60, width + 2)


def write_comparison(folder: Path, c: Comparaison) -> list[str]:
    """comparaison.html, comparaison.xlsx, the plots and logements.csv, written atomically."""
    plots = comparison_plots(c)
    sheets = {SHEETS[k]: getattr(c, k) for k in SHEETS}
    writers = {"comparaison.html": lambda p: p.write_text(comparison_html(c, plots), encoding="utf-8"),
               "comparaison.xlsx": lambda p: write_excel(p, sheets),
               "logements.csv": lambda p: write_csv(c.logements, p)}
    writers |= {name: (lambda p, data=data: p.write_bytes(data)) for name, data in plots.items()}
    write_atomically(folder, writers)
    return list(writers)


def write_sweep(folder: Path, s: ResultatBalayage, acceleration: dict | None = None) -> list[str]:
    """balayage.png, balayage.csv, balayage.html, balayage.xlsx, written atomically."""
    png = sweep_plot(s)
    writers = {"balayage.png": lambda p: p.write_bytes(png),
               "balayage.csv": lambda p: write_csv(s.points, p),
               "balayage.html": lambda p: p.write_text(comparison_html(None, {}, s, png, acceleration), encoding="utf-8"),
               "balayage.xlsx": lambda p: write_excel(p, {"Balayage": sweep_summary(s), "Points": s.points,
                                                          "Objectifs": s.objectifs})}
    write_atomically(folder, writers)
    return list(writers)
