"""Render a scenario comparison or a sweep: rich tables, self-contained HTML (French), Excel, plots."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from rich.console import Group  # noqa: E402
from rich.table import Table  # noqa: E402
from rich.text import Text  # noqa: E402

from flux_opt.negotiation.sweep import SweepResult  # noqa: E402
from flux_opt.negotiation.compare import BASE, Comparison  # noqa: E402
from flux_opt.report.exports import write_atomically, write_csv  # noqa: E402
from flux_opt.report.html import (Bullets, Cell, HtmlTable, Paragraph, Section, bullets, figure,  # noqa: E402
                                  html_table, render)

SHEETS = {"logements": "Logements", "par_qpv": "Par QPV", "par_typologie": "Par typologie",
          "par_commune": "Par commune",
          "adequation": "Adéquation", "adequation_reservataires": "Adéquation par réservataire",
          "mixite": "Mixité", "regles": "Règles qui contraignent", "gains": "Gains et pertes"}


def _fr(v) -> str:
    if isinstance(v, float):
        text = f"{v:,.0f}" if v.is_integer() else f"{v:,.4g}" if abs(v) < 10 else f"{v:,.2f}"
        return text.replace(",", " ").replace(".", ",")
    return str(v)


# --------------------------------------------------------------------------- terminal

def legal_notes(c: Comparison) -> list[tuple[str, bool]]:
    """Per scenario, the sentence its plan says about rates above the law, and whether it was
    explored outside the law (then it is not a legal plan)."""
    return [(f"{n} : {r.resume['cadre_legal']}", bool(r.resume.get("hors_cadre_legal")))
            for n, r in c.resultats.items() if r.resume.get("cadre_legal")]


def comparison_banner(c: Comparison) -> str | None:
    """The words on every page and sheet when a scenario is explored outside the law."""
    outside = [n for n, r in c.resultats.items() if r.resume.get("hors_cadre_legal")]
    return (f"CE N'EST PAS UN PLAN LÉGAL : {', '.join(outside)} explore(nt) des taux au-delà des maxima légaux "
            "(CCH R.441-5-2, R.441-5)") if outside else None


def comparison_renderable(c: Comparison) -> Group:
    parts = [Text("Scénarios comparés", style="bold")]
    for n in c.noms:
        parts.append(Text(f"  • {n} : {c.descriptions.get(n, '')}"))
    for text, outside in legal_notes(c):
        parts.append(Text(text, style="bold white on red" if outside else "yellow"))
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
    parts.append(_frame_table(c.regles, "Règles qui contraignent ou ne sont pas tenues", first="Règle"))
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


def _missed_mixity(c: Comparison) -> str:
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


def sweep_renderable(s: SweepResult, acceleration: dict | None = None) -> Group:
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


def comparison_plots(c: Comparison) -> dict[str, bytes]:
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


def sweep_plot(s: SweepResult) -> bytes:
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


def sweep_summary(s: SweepResult) -> pd.DataFrame:
    """The sweep as a compact table: one row per value, dwellings per réservataire."""
    p = s.points
    out = pd.DataFrame({s.parametre: p["valeur"], "adéquation (%)": (100 * p["adequation"]).round(2),
                        "adéquation pondérée": p["adequation_ponderee"], "objectif": p["objectif"].round(3),
                        "règles violées": p["regles_violees"]})
    for column in [c for c in p.columns if c.startswith("logements_")]:
        out[column.removeprefix("logements_")] = p[column]
    return out


# --------------------------------------------------------------------------- HTML

def _cell(column: str, v) -> Cell:
    if column.startswith("Δ") or column == "ecart":
        return Cell(f"{int(v):+d}", "pos" if v > 0 else "neg" if v < 0 else "num")
    return Cell(_fr(v), "num" if isinstance(v, (int, float)) else "")


def _table(frame: pd.DataFrame, caption: str = "") -> HtmlTable:
    return html_table(frame, _cell, caption)


def comparison_html(c: Comparison, plots: dict[str, bytes]) -> str:
    """The comparison as one self-contained page (plots embedded)."""
    gains = (bullets(f"{g.scenario} : {g.phrase}" for g in c.gains.itertuples()) if len(c.gains)
             else Paragraph("Aucun scénario ne change les logements des réservataires."))
    sections = [
        Section("Scénarios comparés", [Bullets([(f"{n} : {c.descriptions.get(n, '')}", "") for n in c.noms]
                                               + [(text, "bad") for text, _ in legal_notes(c)])]),
        Section("Logements orientés par réservataire", [figure(plots["logements.png"], "logements"),
                                                       _table(c.logements)]),
        Section("Qui gagne, qui perd", ([figure(plots["gains.png"], "gains et pertes")] if "gains.png" in plots
                                        else []) + [gains]),
        Section("Adéquation avec la demande", [
            _table(c.adequation),
            _table(c.adequation_reservataires, "Part (%) des logements de chaque réservataire qui trouvent preneur")]),
        Section("Objectifs de mixité", [Paragraph("Marge : attributions (ou logements) au-delà du minimum ; "
                                                  "négative quand l'objectif est manqué."), _table(c.mixite)]),
        Section("Règles qui contraignent ou ne sont pas tenues", [_table(c.regles)]),
        Section("Par QPV", [_table(c.par_qpv)]),
        Section("Par typologie", [_table(c.par_typologie)]),
        Section("Par commune", [_table(c.par_commune)]),
    ]
    return render("compare.html", banner=comparison_banner(c), title="Comparaison de scénarios",
                  subtitle=", ".join(c.noms), sections=sections)


def sweep_html(s: SweepResult, png: bytes, acceleration: dict | None = None) -> str:
    """The sweep as one self-contained page: the plot and one row per value."""
    parts = [figure(png, "balayage")]
    if acceleration:
        parts.append(Paragraph(acceleration_text(acceleration)))
    sections = [Section("Adéquation et parts des réservataires", parts),
                Section("Logements orientés par réservataire à chaque valeur", [_table(sweep_summary(s))])]
    subtitle = f"{len(s.points)} valeurs de {s.parametre}"
    return render("sweep.html", title=f"Balayage de {s.parametre}", subtitle=subtitle, sections=sections)


# --------------------------------------------------------------------------- files

def write_excel(path: Path, sheets: dict[str, pd.DataFrame], banner: str | None = None) -> None:
    """One sheet per table; `banner` (a plan outside the law) is the first line of every sheet."""
    with pd.ExcelWriter(path, engine="openpyxl") as book:
        for name, frame in sheets.items():
            frame.to_excel(book, sheet_name=name[:31], index=False, startrow=1 if banner else 0)
            sheet = book.sheets[name[:31]]
            if banner:
                sheet.cell(1, 1, banner)
            for i, column in enumerate(frame.columns):
                width = max([len(str(column))] + [len(str(v)) for v in frame[column].head(200)])
                sheet.column_dimensions[sheet.cell(1, i + 1).column_letter].width = min(60, width + 2)


def write_comparison(folder: Path, c: Comparison) -> list[str]:
    """comparaison.html, comparaison.xlsx, the plots and logements.csv, written atomically."""
    plots = comparison_plots(c)
    sheets = {SHEETS[k]: getattr(c, k) for k in SHEETS}
    writers = {"comparaison.html": lambda p: p.write_text(comparison_html(c, plots), encoding="utf-8"),
               "comparaison.xlsx": lambda p: write_excel(p, sheets, comparison_banner(c)),
               "logements.csv": lambda p: write_csv(c.logements, p)}
    writers |= {name: (lambda p, data=data: p.write_bytes(data)) for name, data in plots.items()}
    write_atomically(folder, writers)
    return list(writers)


def write_sweep(folder: Path, s: SweepResult, acceleration: dict | None = None) -> list[str]:
    """balayage.png, balayage.csv, balayage.html, balayage.xlsx, written atomically."""
    png = sweep_plot(s)
    writers = {"balayage.png": lambda p: p.write_bytes(png),
               "balayage.csv": lambda p: write_csv(s.points, p),
               "balayage.html": lambda p: p.write_text(sweep_html(s, png, acceleration), encoding="utf-8"),
               "balayage.xlsx": lambda p: write_excel(p, {"Balayage": sweep_summary(s), "Points": s.points,
                                                          "Objectifs": s.objectifs})}
    write_atomically(folder, writers)
    return list(writers)
