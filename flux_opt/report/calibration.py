"""The page of `flux-opt calibrer` (calibration.html): every estimate with its count and interval, and a
plot of each rate with its interval beside the default it replaces."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from flux_opt.explanation.sentences import fr_number, fr_percent  # noqa: E402
from flux_opt.report.html import Cell, Paragraph, Section, bullets, figure, html_table, render  # noqa: E402
from flux_opt.report.plots import BLUE, GREY, _png  # noqa: E402

TITLES = {"acceptation": ("Acceptation par quartile et financement",
                          "Part des candidats examinés (bail signé ou refus, quartile du ménage connu) qui signent le bail."),
          "candidats par logement": ("Candidats présentés par logement",
                                     "Candidats que le réservataire présente pour un logement qui lui est proposé."),
          "délai des candidats (jours)": ("Délai de présentation des candidats",
                                          "Jours entre la proposition et la présentation des candidats ; une "
                                          "proposition encore en attente compte pour le temps déjà attendu."),
          "part rendue au bailleur": ("Logements rendus au bailleur",
                                      "Part des logements proposés d'abord au réservataire qui reviennent au bailleur."),
          "motif de refus": ("Motifs de refus", "Part de chaque motif parmi les refus (commentaire du refus).")}
RATES = ("acceptation", "part rendue au bailleur", "motif de refus")
PER_RESERVATAIRE = ("candidats par logement", "délai des candidats (jours)", "part rendue au bailleur")
HEADINGS = {"portee": "Portée", "effectif": "Effectif", "evenements": "Événements", "brut": "Mesuré",
            "defaut": "Défaut", "estime": "Estimation", "borne_basse": "Borne basse (95 %)",
            "borne_haute": "Borne haute (95 %)"}


def calibration_page(calibration) -> str:
    """The whole page (base layout): one section per indicator, its table and its plot."""
    notes = [f"Journaux lus : {', '.join(calibration.journals)}."] + [n[0].upper() + n[1:] + "." for n in calibration.notes]
    sections = [Section("Lecture", [bullets(notes), Paragraph(
        "Une estimation sur peu d'événements est rapprochée de la valeur par défaut (les taux de l'instance ou du "
        "projet) : elle compte comme 10 réponses pour l'acceptation, 5 logements pour les candidats et les délais "
        "(méthode : models/rpls.md). acceptation.csv et reservataires_calibres.csv reprennent les estimations.",
        "note")])]
    for indicateur, (title, sentence) in TITLES.items():
        rows = calibration.rows(indicateur)
        if rows.empty:
            continue
        rate = indicateur in RATES
        if indicateur in PER_RESERVATAIRE:
            rows = rows.assign(portee=[f"{calibration.names[r]} ({r})" if r in calibration.names else r
                                       for r in rows["portee"]])
        shown = rows.drop(columns=["indicateur"]).rename(columns=HEADINGS)
        if indicateur == "délai des candidats (jours)":
            shown = shown.drop(columns=["Événements"])
        if indicateur == "motif de refus":
            shown = shown.drop(columns=["Défaut", "Mesuré"])
        parts = [Paragraph(sentence), html_table(shown, lambda c, v, rate=rate: _cell(c, v, rate)),
                 figure(_plot(rows, rate, title), f"{title} : estimation et intervalle à 95 %")]
        sections.append(Section(title, parts))
    return render("base.html", title="Calibration sur le journal", subtitle=", ".join(calibration.journals),
                  sections=sections)


def _cell(column: str, value, rate: bool) -> Cell:
    if column == "Portée":
        return Cell(str(value))
    if column in ("Effectif", "Événements"):
        return Cell(fr_number(value), "num")
    return Cell(fr_percent(value) if rate else fr_number(round(float(value), 1)) if pd.notna(value) else "—", "num")


def _plot(rows: pd.DataFrame, rate: bool, title: str) -> str:
    r = rows.iloc[::-1]
    y = np.arange(len(r))
    scale = 100 if rate else 1
    fig, ax = plt.subplots(figsize=(8, max(2.2, 0.42 * len(r) + 1.0)))
    est = r["estime"].to_numpy(dtype=float) * scale
    low, high = r["borne_basse"].to_numpy(dtype=float) * scale, r["borne_haute"].to_numpy(dtype=float) * scale
    ax.errorbar(est, y, xerr=[np.maximum(est - low, 0), np.maximum(high - est, 0)], fmt="o", color=BLUE, capsize=3, label="estimation (95 %)")
    if r["defaut"].notna().any():
        ax.plot(r["defaut"].to_numpy(dtype=float) * scale, y, "|", color=GREY, markersize=14, mew=3, label="défaut")
    ax.set_yticks(y, r["portee"].tolist())
    ax.set_xlabel("%" if rate else "jours" if "Délai" in title else "candidats")
    ax.set_xlim(left=0)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)
