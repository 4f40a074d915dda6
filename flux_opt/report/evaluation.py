"""The simulated year (flux_opt/plan/evaluation.py) for people: terminal table, evaluation.csv,
and a section with plots in rapport.html."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from rich.table import Table

from flux_opt.model.registry import label
from flux_opt.report.html import Cell, Paragraph, Section, figure, html_table, render
from flux_opt.report.plots import BLUE, GREY, RED, _height, _png, plt
from flux_opt.plan.evaluation import Evaluation
from pathlib import Path
from flux_opt.report.exports import write_atomically, write_csv

HEADINGS = {"indicateur": "Indicateur", "portee": "Portée", "cible": "Cible", "prevu": "Prévu (plan)",
            "moyenne": "Simulé (moyenne)", "ecart_type": "Écart-type", "p05": "5 %", "p95": "95 %"}


def _is_share(indicateur: str) -> bool:
    return indicateur.startswith("part ")


def _fmt(value: float, share: bool) -> str:
    if value is None or not np.isfinite(value):
        return "—"
    return f"{100 * value:.1f} %".replace(".", ",") if share else f"{value:.1f}".replace(".", ",")


INDICATORS = {"attributions": "Attributions (baux signés)", "retours au bailleur": "Logements rendus au bailleur",
              "part publics_prioritaires": "Part de publics prioritaires"}
_EPCI_CODE = re.compile(r"EPCI (\d{9})")


def _indicator(code: str) -> str:
    """« part cia_hors_qpv_q1 » → « Part : CIA : 1er quartile hors QPV » (the rule's label)."""
    if code in INDICATORS:
        return INDICATORS[code]
    return f"Part : {label(code[5:])}" if _is_share(code) else code[:1].upper() + code[1:]


def _scope(code: str, indicateur: str, ev: Evaluation) -> str:
    """A réservataire's name, the EPCI's name (CIA), or the scope of a mixity target in words."""
    if code in ev.noms.reservataires:
        return ev.noms.reservataire(code)
    epci = _EPCI_CODE.search(code) if indicateur.startswith("part cia_") else None
    if epci:
        return ev.noms.epci_label(epci[1])
    return ev.noms.scope(code).replace(" tous réservataires", "")


def evaluation_frame(ev: Evaluation) -> pd.DataFrame:
    """The table as people read it: names and labels, shares in %, counts with one decimal."""
    t = ev.table
    share = t["indicateur"].map(_is_share)
    out = pd.DataFrame({"indicateur": t["indicateur"].map(_indicator),
                        "portee": [_scope(c, i, ev) for c, i in zip(t["portee"], t["indicateur"])]})
    for column in ("cible", "prevu", "moyenne", "ecart_type", "p05", "p95"):
        out[column] = [_fmt(v, s) for v, s in zip(t[column], share)]
    return out.rename(columns=HEADINGS)


def evaluation_view(ev: Evaluation) -> Table:
    """The terminal table: the spread as one « 5 %–95 % » column, so that it reads in 80 columns."""
    table = Table(title=f"Année simulée : {ev.tirages} tirages (graine {ev.graine})")
    frame = evaluation_frame(ev)
    for column, ratio in (("Indicateur", 3), ("Portée", 3), ("Cible", 1), ("Prévu", 1), ("Simulé", 1),
                          ("5 %–95 %", 2)):
        table.add_column(column, justify="left" if ratio == 3 else "right", ratio=ratio)
    for row in frame.to_dict("records"):
        low = row["5 %"].removesuffix(" %") if row["95 %"].endswith(" %") else row["5 %"]
        table.add_row(row["Indicateur"], row["Portée"], row["Cible"], row["Prévu (plan)"], row["Simulé (moyenne)"],
                      f"{low}–{row['95 %']}")
    return table


def _spread(ax, y: np.ndarray, t: pd.DataFrame, scale: float = 1.0) -> None:
    """The 5 %–95 % spread drawn as it is, from p05 to p95, not as bars around the mean: a skewed
    spread can put the mean outside it (96 draws at 1, 4 at 0: mean 0,96 < p05 = 1), and the dot of
    the mean then sits outside its spread; an indicator never measured (NaN) gets none."""
    low, high = (t[c].to_numpy(dtype=float) * scale for c in ("p05", "p95"))
    ok = ~(np.isnan(low) | np.isnan(high))
    ax.hlines(y[ok], low[ok], high[ok], color="black", linewidth=1, zorder=3)
    ax.scatter(np.r_[low[ok], high[ok]], np.r_[y[ok], y[ok]], marker="|", s=60, color="black", zorder=3)


def lettings_plot(ev: Evaluation) -> str:
    """Per réservataire: the plan's expected lettings and the simulated ones (5 %–95 % bar)."""
    t = ev.table.loc[ev.table["indicateur"] == "attributions"].iloc[::-1]
    y = np.arange(len(t))
    fig, ax = plt.subplots(figsize=(8, _height(len(t))))
    ax.barh(y + 0.2, t["prevu"].fillna(0), height=0.4, color=GREY, label="prévu par le plan")
    ax.barh(y - 0.2, t["moyenne"], height=0.4, color=BLUE, label="simulé (moyenne ; trait : 5 %–95 %)")
    _spread(ax, y - 0.2, t)
    ax.set_yticks(y, [_short(_scope(c, "attributions", ev)) for c in t["portee"]])
    ax.set_xlabel("attributions (baux signés)")
    ax.set_title("Attributions prévues et simulées par réservataire")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def shares_plot(ev: Evaluation) -> str | None:
    """Every mixity share: target, and the simulated mean with its 5 %–95 % spread."""
    t = ev.table.loc[ev.table["indicateur"].map(_is_share)].iloc[::-1]
    if t.empty:
        return None
    y = np.arange(len(t))
    fig, ax = plt.subplots(figsize=(8, _height(len(t))))
    below = (t["p95"] < t["cible"]).to_numpy()
    ax.barh(y, t["moyenne"] * 100, height=0.5, color=[RED if b else BLUE for b in below])
    _spread(ax, y, t, 100)
    ax.scatter(t["cible"] * 100, y, marker="|", s=300, color="black", label="cible", zorder=3)
    names = [f"{_indicator(i).removeprefix('Part : ').removeprefix('Part de ')} — {_scope(c, i, ev)}"
             for i, c in zip(t["indicateur"], t["portee"])]
    ax.set_yticks(y, [_short(name) for name in names])
    ax.set_xlabel("% (publics prioritaires : des attributions du réservataire ; mixité : des logements de la portée)")
    ax.set_title("Mixité simulée et cibles (rouge : cible hors de l'intervalle simulé)")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def evaluation_section(ev: Evaluation) -> Section:
    """The report section: what was simulated, the plots, the table."""
    intro = (f"L'année du plan simulée {ev.tirages} fois (graine {ev.graine}) : libérations au fil de l'année, "
             "candidats proposés par les réservataires selon leurs viviers, acceptations selon le quartile "
             "et le financement, logements refusés rendus au bailleur.")
    plots = [figure(img, "Année simulée") for img in (lettings_plot(ev), shares_plot(ev)) if img]
    table = html_table(evaluation_frame(ev), lambda column, v: Cell(str(v), "" if column in ("Indicateur", "Portée")
                                                                    else "num"))
    return Section("Année simulée", [Paragraph(intro), *plots, table], id="evaluation")


def evaluation_html(ev: Evaluation) -> str:
    """The section alone (`<section id="evaluation">`), to put in a report already written."""
    return render("section.html", section=evaluation_section(ev))


# The section in a written report (and the markers around it in reports of earlier versions).
_WRITTEN = re.compile(r'<!-- evaluation -->.*?<!-- /evaluation -->|<section id="evaluation">.*?</section>', re.S)


def with_section(page: str, section: str) -> str:
    """`page` with its evaluation section replaced by `section` (or added before the footer)."""
    if _WRITTEN.search(page):
        return _WRITTEN.sub(lambda _: section, page, count=1)
    for anchor in ("<footer", "</main>", "</body>"):
        if anchor in page:
            i = page.index(anchor)
            return page[:i] + section + page[i:]
    return page + section


def write_evaluation(ev: Evaluation, folder) -> None:
    """evaluation.csv into `folder`, and the section into its rapport.html when there is one
    (both written atomically: an interrupted run changes nothing)."""


    folder = Path(folder)
    writers = {"evaluation.csv": lambda p: write_csv(ev.table, p)}
    report = folder / "rapport.html"
    if report.exists():
        page = report.read_text(encoding="utf-8")
        writers["rapport.html"] = lambda p: p.write_text(with_section(page, evaluation_html(ev)), encoding="utf-8")
    write_atomically(folder, writers)
