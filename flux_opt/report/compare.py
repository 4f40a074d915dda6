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
from flux_opt.negotiation.compare import BASE, Comparison, change_reason  # noqa: E402
from flux_opt.explanation.sentences import fr_number, fr_percent  # noqa: E402
from flux_opt.model.registry import label  # noqa: E402
from flux_opt.report.exports import write_atomically, write_csv  # noqa: E402
from flux_opt.report.tables import Table as SheetTable  # noqa: E402
from flux_opt.report.workbook import workbook_bytes  # noqa: E402
from flux_opt.report.html import (Bullets, Cell, HtmlTable, Paragraph, Section, bullets, figure,  # noqa: E402
                                  html_table, render)

# --------------------------------------------------------------------------- what people read

def _noms(c: Comparison):
    return c.resultats[BASE].noms


def people_logements(c: Comparison) -> pd.DataFrame:
    """Dwellings per réservataire and scenario, by name (logements.csv keeps the ids)."""
    frame = c.logements.copy()
    frame.insert(0, "Réservataire", frame.pop("reservataire").map(_noms(c).reservataire))
    return frame


def people_breakdown(c: Comparison, frame: pd.DataFrame, column: str, heading: str) -> pd.DataFrame:
    noms = _noms(c)
    out = frame.copy()
    out["reservataire"] = out["reservataire"].map(noms.reservataire)
    if column == "commune":
        out["commune"] = out["commune"].map(lambda code: noms.commune_name(code) or code)
    return out.rename(columns={"reservataire": "Réservataire", column: heading})


FIT_ROWS = {"Flux annuel (logements)": "Flux annuel (logements)",
            "Attributions prévues": "Attributions prévues (environ)",
            "Adéquation (% des logements pourvus)": "Adéquation (% des logements pourvus)",
            "Adéquation pondérée (prioritaires ×1,2)": "Score d'adéquation (prioritaires ×1,2)",
            "Valeur de l'objectif": "Score du plan (objectif de l'optimiseur)",
            "Règles violées": "Règles non tenues"}


def people_fit(c: Comparison) -> pd.DataFrame:
    """The fit indicators with plain words, counts as integers, one decimal for shares and scores."""
    out = c.adequation.copy()
    out["indicateur"] = out["indicateur"].map(lambda k: FIT_ROWS.get(k, k))
    for n in c.noms:
        out[n] = [round(float(v)) if k in ("Attributions prévues (environ)", "Flux annuel (logements)",
                                           "Règles non tenues") else round(float(v), 1)
                  for k, v in zip(out["indicateur"], out[n])]
    return out.rename(columns={"indicateur": "Indicateur"})


def people_fit_reservataires(c: Comparison) -> pd.DataFrame:
    out = c.adequation_reservataires.copy()
    out["reservataire"] = out["reservataire"].map(_noms(c).reservataire)
    for n in c.noms:
        out[n] = out[n].astype(float).round(1)
    return out.rename(columns={"reservataire": "Réservataire"})


def people_mixity(c: Comparison) -> pd.DataFrame:
    out = c.mixite.copy()
    out["contrainte"] = out["contrainte"].map(lambda f: label(f))
    out["portee"] = out["portee"].astype(str).map(_noms(c).scope)
    for column in [col for col in out.columns if col.endswith(": marge")]:
        out[column] = out[column].astype(float).round(1)
    return out.rename(columns={"contrainte": "Règle", "portee": "Portée"})


def people_rules(c: Comparison) -> pd.DataFrame:
    out = c.regles.copy()
    out["regle"] = out["regle"].map(lambda f: label(f))
    return out.rename(columns={"regle": "Règle"})


def people_gains(c: Comparison) -> pd.DataFrame:
    out = c.gains.copy()
    out["reservataire"] = out["reservataire"].map(_noms(c).reservataire)
    return out.rename(columns={"scenario": "Scénario", "reservataire": "Réservataire", "base": "Base",
                               "logements": "Scénario (logements)", "ecart": "Écart", "phrase": "Changement",
                               "raison": "Pourquoi"})


def people_tables(c: Comparison) -> dict[str, pd.DataFrame]:
    """Every table of the comparison as people read it (names, French headings), by sheet name."""
    return {"Logements": people_logements(c),
            "Qui gagne, qui perd": people_gains(c),
            "Adéquation": people_fit(c),
            "Adéquation par réservataire": people_fit_reservataires(c),
            "Mixité": people_mixity(c),
            "Règles qui contraignent": people_rules(c),
            "Par QPV": people_breakdown(c, c.par_qpv, "qpv", "QPV"),
            "Par typologie": people_breakdown(c, c.par_typologie, "typologie", "Typologie"),
            "Par commune": people_breakdown(c, c.par_commune, "commune", "Commune")}


def _fr(v) -> str:
    """Figures as people read them: 1 234 or 91,7; a rate below 1 (a swept parameter) keeps its digits."""
    if isinstance(v, float):
        if abs(v) < 1 and not v.is_integer():
            return f"{v:.4g}".replace(".", ",").replace("-", "−")
        return fr_number(v)
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
    """The comparison for the terminal, readable at 80 columns: one block per scenario after the
    dwellings table (who gains, who loses, and why)."""
    noms = _noms(c)
    parts = [Text("Scénarios comparés", style="bold")]
    for n in c.noms:
        parts.append(Text(f"  • {n} : {c.descriptions.get(n, '')}"))
    for text, outside in legal_notes(c):
        parts.append(Text(text, style="bold white on red" if outside else "yellow"))
    table = Table(title="Logements orientés par réservataire (écart à la base)")
    table.add_column("Réservataire", ratio=3, overflow="fold")
    for n in c.noms:
        table.add_column(n, justify="right", ratio=1, overflow="fold")
    for record in c.logements.to_dict("records"):
        cells = [noms.reservataire(record["reservataire"]), str(int(record[BASE]))]
        for n in c.noms[1:]:
            delta = int(record[f"Δ {n}"])
            style = "green" if delta > 0 else "red" if delta < 0 else "dim"
            cells.append(f"{int(record[n])} [{style}]({_signed(delta)})[/{style}]")
        table.add_row(*cells)
    parts.append(table)
    parts.append(_frame_table(people_fit(c), "Adéquation avec la demande", first="Indicateur"))
    parts.append(_frame_table(people_rules(c), "Règles qui contraignent ou ne sont pas tenues", first="Règle"))
    missed = _missed_mixity(c)
    parts.append(Text(missed, style="bold red") if missed else
                 Text("Tous les objectifs de mixité sont atteints dans chaque scénario.", style="green"))
    if len(c.gains):
        for n in c.noms[1:]:
            mine = c.gains.loc[c.gains["scenario"] == n]
            parts.append(Text(f"Qui gagne, qui perd, et pourquoi — {n}", style="bold"))
            for g in mine.itertuples():
                style = "green" if g.ecart > 0 else "red" if g.ecart < 0 else "yellow"
                parts.append(Text.assemble(("• ", style), (g.phrase, style), (" : " + g.raison if g.raison else "")))
    else:
        parts.append(Text("Aucun scénario ne change les logements des réservataires.", style="dim"))
    return Group(*parts)


def _signed(delta: int) -> str:
    return f"{delta:+d}".replace("-", "−")


def _missed_mixity(c: Comparison) -> str:
    status = [col for col in c.mixite.columns if col.endswith(": statut")]
    noms = _noms(c)
    missed = [f"{col.removesuffix(' : statut')} : {label(row['contrainte'])} "
              f"({noms.scope(str(row['portee']))})"
              for _, row in c.mixite.iterrows() for col in status if row[col] == "NON atteint"]
    return ("Objectifs de mixité non atteints — " + " ; ".join(missed)) if missed else ""


def _frame_table(frame: pd.DataFrame, title: str, first: str) -> Table:
    table = Table(title=title)
    for i, column in enumerate(frame.columns):
        table.add_column(first if i == 0 else str(column), justify="left" if i == 0 else "right",
                         ratio=3 if i == 0 else 1, overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*[_fr(v) for v in row])
    return table


PARAMETER_NAMES = {"prefet_taux": "taux du préfet (agents compris)", "prefet_agents_taux": "taux des agents de l'État",
                   "prefet_hors_qpv_min": "part hors QPV du préfet", "collectivite_plafond": "plafond des collectivités",
                   "prioritaires_min": "part des publics prioritaires", "cia.q1_hors_qpv": "CIA : 1er quartile hors QPV",
                   "cia.q234_qpv": "CIA : quartiles 2 à 4 en QPV"}


def parameter_name(s: SweepResult) -> str:
    """The swept parameter in words: « taux du préfet (agents compris) », « taux de Ville de Roubaix »."""
    if s.parametre in PARAMETER_NAMES:
        return PARAMETER_NAMES[s.parametre]
    rid = s.parametre.removesuffix(".taux")
    return f"taux de {s.resultats[0].noms.reservataire(rid)}" if s.resultats else s.parametre


def _value(v: float) -> str:
    """A swept rate as people read it: 0.27 → 27 %."""
    return f"{100 * v:.4g}".replace(".", ",") + " %"


def sweep_changes(s: SweepResult) -> list[str]:
    """From one value to the next, each réservataire whose number of dwellings changes, and why."""
    lines = []
    values = list(s.points["valeur"])
    for i in range(1, len(s.resultats)):
        before, after = s.resultats[i - 1], s.resultats[i]
        got_b = before.objectifs.set_index("reservataire")["logements"]
        got_a = after.objectifs.set_index("reservataire")["logements"]
        for rid in got_a.index:
            delta = int(got_a[rid] - got_b.get(rid, 0))
            if delta:
                verb = "gagne" if delta > 0 else "perd"
                why = change_reason(rid, before, after)
                lines.append(f"{_value(values[i - 1])} → {_value(values[i])} : {after.noms.reservataire(rid)} {verb} "
                             f"{abs(delta)} logement{'s' if abs(delta) > 1 else ''}" + (f" : {why}" if why else "."))
    return lines


def sweep_renderable(s: SweepResult, acceleration: dict | None = None) -> Group:
    """The sweep for the terminal at 80 columns: the indicators by value, then the dwellings of each
    réservataire by value (at most eight values side by side), then what changes and why."""
    what = parameter_name(s)
    head = Table(title=f"Balayage : {what}")
    for column in ("Valeur", "Adéquation", "Attributions prévues", "Règles non tenues"):
        head.add_column(column, justify="right")
    for row in s.points.to_dict("records"):
        head.add_row(_value(row["valeur"]), fr_percent(row["adequation"]), fr_number(round(row["attributions_prevues"])),
                     str(row["regles_violees"]))
    parts = [head]
    ids = [c.removeprefix("logements_") for c in s.points.columns if c.startswith("logements_")]
    noms = s.resultats[0].noms if s.resultats else None
    values = list(s.points["valeur"])
    for start in range(0, len(values), 8):
        chunk = values[start:start + 8]
        table = Table(title=f"Logements orientés par réservataire selon le {what}")
        table.add_column("Réservataire", ratio=3, overflow="fold")
        for v in chunk:
            table.add_column(_value(v), justify="right", no_wrap=True)
        for rid in ids:
            cells = s.points[f"logements_{rid}"].iloc[start:start + 8]
            table.add_row(noms.reservataire(rid) if noms else rid, *[str(int(x)) for x in cells])
        parts.append(table)
    changes = sweep_changes(s)
    if changes:
        parts.append(Text("Ce qui change d'une valeur à la suivante, et pourquoi", style="bold"))
        parts += [Text(f"• {line}") for line in changes]
    parts.append(Text(f"{len(s.points)} points en {fr_number(s.secondes)} s, modèle reconstruit "
                      f"{s.reconstructions} fois."))
    if acceleration:
        parts.append(Text(acceleration_text(acceleration), style="bold"))
    return Group(*parts)


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
    left.set_xlabel(parameter_name(s))
    left.set_ylabel("adéquation pondérée (attributions, prioritaires ×1,2)", color="tab:blue")
    left.grid(alpha=0.3)
    twin = left.twinx()
    twin.plot(p["valeur"], 100 * p["adequation"], marker=".", linestyle="--", color="tab:gray")
    low = float(100 * p["adequation"].min())
    twin.set_ylim(max(0.0, low - 5), 100.5)
    twin.set_ylabel("logements pourvus (%, pointillés)", color="tab:gray")
    left.set_title("Adéquation avec la demande")
    for column in [c for c in p.columns if c.startswith("part_")]:
        rid = column.removeprefix("part_")
        right.plot(p["valeur"], 100 * p[column], marker="o", markersize=3,
                   label=s.resultats[0].noms.reservataire(rid) if s.resultats else rid)
    right.set_xlabel(parameter_name(s))
    right.set_ylabel("part du flux annuel (%)")
    right.set_title("Part de chaque réservataire")
    right.grid(alpha=0.3)
    right.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return _png(fig)


def sweep_summary(s: SweepResult) -> pd.DataFrame:
    """The sweep as a compact table for people: one row per value, dwellings per réservataire by name
    (balayage.csv keeps the ids)."""
    p = s.points
    noms = s.resultats[0].noms if s.resultats else None
    out = pd.DataFrame({"Valeur": p["valeur"], "Adéquation": p["adequation"],
                        "Attributions prévues (environ)": p["attributions_prevues"].round().astype(int),
                        "Score d'adéquation": p["adequation_ponderee"].round(1),
                        "Règles non tenues": p["regles_violees"]})
    for column in [c for c in p.columns if c.startswith("logements_")]:
        rid = column.removeprefix("logements_")
        out[noms.reservataire(rid) if noms else rid] = p[column]
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
    gains = (bullets(f"{g.scenario} : {g.phrase}" + (f" — {g.raison}" if g.raison else "")
                     for g in c.gains.itertuples()) if len(c.gains)
             else Paragraph("Aucun scénario ne change les logements des réservataires."))
    people = people_tables(c)
    sections = [
        Section("Scénarios comparés", [Bullets([(f"{n} : {c.descriptions.get(n, '')}", "") for n in c.noms]
                                               + [(text, "bad") for text, _ in legal_notes(c)])]),
        Section("Logements orientés par réservataire", [figure(plots["logements.png"], "logements"),
                                                       _table(people["Logements"])]),
        Section("Qui gagne, qui perd, et pourquoi", ([figure(plots["gains.png"], "gains et pertes")]
                                                     if "gains.png" in plots else []) + [gains]),
        Section("Adéquation avec la demande", [
            _table(people["Adéquation"]),
            _table(people["Adéquation par réservataire"],
                   "Part (%) des logements de chaque réservataire qui trouvent preneur")]),
        Section("Objectifs de mixité", [Paragraph("Marge : attributions (ou logements) au-delà du minimum ; "
                                                  "négative quand l'objectif est manqué."), _table(people["Mixité"])]),
        Section("Règles qui contraignent ou ne sont pas tenues", [_table(people["Règles qui contraignent"])]),
        Section("Par QPV", [_table(people["Par QPV"])]),
        Section("Par typologie", [_table(people["Par typologie"])]),
        Section("Par commune", [_table(people["Par commune"])]),
    ]
    return render("compare.html", banner=comparison_banner(c), title="Comparaison de scénarios",
                  subtitle=", ".join(c.noms), sections=sections)


def sweep_html(s: SweepResult, png: bytes, acceleration: dict | None = None) -> str:
    """The sweep as one self-contained page: the plot and one row per value."""
    parts = [figure(png, "balayage")]
    if acceleration:
        parts.append(Paragraph(acceleration_text(acceleration)))
    summary = sweep_summary(s).assign(Valeur=lambda t: t["Valeur"].map(_value),
                                      Adéquation=lambda t: t["Adéquation"].map(fr_percent))
    changes = sweep_changes(s)
    sections = [Section("Adéquation et parts des réservataires", parts),
                Section("Logements orientés par réservataire à chaque valeur", [_table(summary)]),
                Section("Ce qui change d'une valeur à la suivante, et pourquoi",
                        [bullets(changes) if changes else Paragraph("Aucun réservataire ne change de logements.")])]
    subtitle = f"{len(s.points)} valeurs ({s.parametre})"
    return render("sweep.html", title=f"Balayage : {parameter_name(s)}", subtitle=subtitle, sections=sections)


# --------------------------------------------------------------------------- files

def write_excel(path: Path, sheets: dict[str, pd.DataFrame], banner: str | None = None) -> None:
    """A workbook through the shared writer (report/workbook.py): one sheet per table, print setup;
    `banner` (a plan outside the law) is the first line of every sheet."""
    Path(path).write_bytes(workbook_bytes([SheetTable(name, name, frame) for name, frame in sheets.items()],
                                          banner=banner))


def write_comparison(folder: Path, c: Comparison) -> list[str]:
    """comparaison.html, comparaison.xlsx, the plots and logements.csv, written atomically."""
    plots = comparison_plots(c)
    sheets = people_tables(c)
    writers = {"comparaison.html": lambda p: p.write_text(comparison_html(c, plots), encoding="utf-8"),
               "comparaison.xlsx": lambda p: write_excel(p, sheets, comparison_banner(c)),
               "logements.csv": lambda p: write_csv(c.logements, p)}
    writers |= {name: (lambda p, data=data: p.write_bytes(data)) for name, data in plots.items()}
    write_atomically(folder, writers)
    return list(writers)


def _named_objectifs(s: SweepResult) -> pd.DataFrame:
    noms = s.resultats[0].noms if s.resultats else None
    out = s.objectifs.copy()
    if noms is not None:
        out["reservataire"] = out["reservataire"].map(noms.reservataire)
    return out.rename(columns={"valeur": "Valeur", "reservataire": "Réservataire", "cible": "Objectif",
                               "report": "dont report", "logements": "Logements orientés", "ecart": "Écart",
                               "adequation": "Adéquation"})


def write_sweep(folder: Path, s: SweepResult, acceleration: dict | None = None) -> list[str]:
    """balayage.png, balayage.csv, balayage.html, balayage.xlsx, written atomically."""
    png = sweep_plot(s)
    writers = {"balayage.png": lambda p: p.write_bytes(png),
               "balayage.csv": lambda p: write_csv(s.points, p),
               "balayage.html": lambda p: p.write_text(sweep_html(s, png, acceleration), encoding="utf-8"),
               "balayage.xlsx": lambda p: write_excel(p, {"Balayage": sweep_summary(s),
                                                          "Objectifs": _named_objectifs(s),
                                                          "Points (détail)": s.points})}
    write_atomically(folder, writers)
    return list(writers)
