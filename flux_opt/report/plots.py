"""The report's plots (matplotlib, Agg backend), returned as base64 PNG for a self-contained HTML."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

MAX_SHARES = 30
BLUE, GREY, RED, GREEN, ORANGE = "#1f5fa8", "#b8c2cc", "#c0392b", "#2e8b57", "#e08e0b"


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _height(n: int) -> float:
    return max(2.2, 0.42 * n + 1.0)


def targets_plot(targets: pd.DataFrame) -> str:
    """Each réservataire's target versus plan."""
    t = targets.iloc[::-1]
    y = np.arange(len(t))
    fig, ax = plt.subplots(figsize=(8, _height(len(t))))
    ax.barh(y + 0.2, t["cible"], height=0.4, color=GREY, label="objectif")
    colors = [RED if e != 0 else BLUE for e in t["ecart"]]
    ax.barh(y - 0.2, t["logements"], height=0.4, color=colors, label="plan")
    for yi, (c, p) in enumerate(zip(t["cible"], t["logements"])):
        ax.text(max(c, p) * 1.01 + 0.5, yi, f"{p} / {c}", va="center", fontsize=8)
    ax.set_xlim(0, max(1, t["cible"].max(), t["logements"].max()) * 1.15)
    ax.set_yticks(y, t["reservataire"])
    ax.set_xlabel("logements")
    ax.set_title("Objectif et plan par réservataire (rouge : écart)")
    _legend(ax)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


MAX_COMMUNES = 30


def communes_plot(communes: pd.DataFrame) -> str:
    """Flux and expected attributions per commune (the largest flux first, at most MAX_COMMUNES:
    a chart of 1 000 bars is unreadable; the full table is in the report)."""
    t = communes.nlargest(MAX_COMMUNES, "logements", keep="first") if len(communes) > MAX_COMMUNES else communes
    title_extra = f" ({MAX_COMMUNES} communes au plus fort flux sur {len(communes)})" if len(communes) > MAX_COMMUNES else ""
    t = t.iloc[::-1]
    y = np.arange(len(t))
    fig, ax = plt.subplots(figsize=(8, _height(len(t))))
    ax.barh(y, t["logements"], color=GREY, label="logements du flux")
    ax.barh(y, t["attributions_prevues"], height=0.5, color=GREEN, label="attributions prévues")
    for yi, share in enumerate(t["adequation"]):
        ax.text(t["logements"].iloc[yi] * 1.01 + 0.3, yi, f"{100 * share:.0f} %", va="center", fontsize=8)
    ax.set_yticks(y, t["libelle"])
    ax.set_xlabel("logements")
    ax.set_title("Adéquation par commune" + title_extra)
    _legend(ax)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def qpv_plot(qpv: pd.DataFrame) -> str:
    """Share of each réservataire's dwellings in QPV and hors QPV."""
    t = qpv.iloc[::-1]
    y = np.arange(len(t))
    total = (t["qpv"] + t["hors_qpv"]).replace(0, np.nan)
    fig, ax = plt.subplots(figsize=(8, _height(len(t))))
    ax.barh(y, t["hors_qpv"] / total * 100, color=BLUE, label="hors QPV")
    ax.barh(y, t["qpv"] / total * 100, left=t["hors_qpv"] / total * 100, color=ORANGE, label="QPV")
    ax.set_yticks(y, t["reservataire"])
    ax.set_xlim(0, 100)
    ax.set_xlabel("% des logements orientés")
    ax.set_title("Parts QPV / hors QPV par réservataire")
    _legend(ax)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def mixity_plot(shares: pd.DataFrame) -> str:
    """Mixity targets (minimum share) versus planned share: the MAX_SHARES closest to their minimum
    (violated first), the full table being in the report."""
    if len(shares) > MAX_SHARES:
        room = (shares["part_prevue"].fillna(0) - shares["part_min"]).where(shares["statut"] != "violee", -1.0)
        shares = shares.loc[room.sort_values(kind="stable").index[:MAX_SHARES]]
    t = shares.iloc[::-1]
    y = np.arange(len(t))
    fig, ax = plt.subplots(figsize=(8.5, _height(len(t))))
    colors = [RED if s == "violee" else (ORANGE if s == "saturee" else GREEN) for s in t["statut"]]
    ax.barh(y, t["part_prevue"].fillna(0) * 100, color=colors, label="part prévue")
    for yi, (share, minimum) in enumerate(zip(t["part_prevue"].fillna(0), t["part_min"])):
        ax.text(max(share, minimum) * 100 + 1, yi, f"{100 * share:.0f} % (min. {100 * minimum:.0f} %)",
                va="center", fontsize=8)
    ax.set_xlim(0, 125)
    ax.scatter(t["part_min"] * 100, y, marker="|", s=400, color="black", zorder=3, label="minimum")
    ax.set_yticks(y, [_short(p) for p in t["libelle"]], fontsize=8)
    ax.set_xlabel("% des logements de la portée")
    ax.set_title("Objectifs de mixité : minimum et plan (rouge : non tenu, orange : tenu sans marge)")
    _legend(ax)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def _legend(ax) -> None:
    height = ax.figure.get_figheight() * ax.get_position().height
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.75 / height), ncol=3, fontsize=8, frameon=False)


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def histogram_plot(values: pd.Series, title: str, xlabel: str, limit: float | None = None,
                   limit_label: str = "") -> str:
    """Distribution of a share over instances (`values` in 0–1, shown in %), with an optional
    vertical line at a legal limit (e.g. the State's 30 %)."""
    shares = pd.to_numeric(values, errors="coerce").dropna() * 100
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.hist(shares, bins=min(30, max(5, len(shares) // 3)), color=BLUE, label="instances")
    if limit is not None:
        ax.axvline(limit * 100, color=RED, linestyle="--", label=limit_label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("instances")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # a count of instances: no 1,5
    ax.set_title(title)
    _legend(ax)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)
