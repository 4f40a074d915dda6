"""Plots that are more than bars (distributions, simulated years; matplotlib, Agg backend), returned as
base64 PNG for a self-contained HTML. The plan report's bar charts are HTML (report/bars.py)."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import pandas as pd  # noqa: E402

BLUE, GREY, RED, GREEN, ORANGE = "#1f5fa8", "#b8c2cc", "#c0392b", "#2e8b57", "#e08e0b"


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _height(n: int) -> float:
    return max(2.2, 0.42 * n + 1.0)


def _legend(ax) -> None:
    height = ax.figure.get_figheight() * ax.get_position().height
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.75 / height), ncol=3, fontsize=8, frameon=False)


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
