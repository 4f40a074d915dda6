"""The plan report's bar charts, drawn by the page itself (HTML and CSS, `macros.html` « bars »).

They were matplotlib PNGs: rendering the four of them took half of the report's time (about 2 s
of CPU per plan, 40 % of a national `lot`). Plain horizontal bars read as well in HTML, print
sharply at any scale, keep their labels whole and searchable, and cost nothing to draw.
Each chart is a `BarChart` (report/html.py): one row per réservataire, commune or rule, its bars as
(start, width, colour) in % of the scale, an optional marker (a minimum) and the figure beside it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from flux_opt.explanation.sentences import fr_number
from flux_opt.report.html import Bar, BarChart

MAX_BARS = 30  # a chart of 1 000 bars is unreadable: the full table is beside it


def _ticks(maximum: float) -> tuple[float, list[float]]:
    """A round end of the scale at or above `maximum`, cut in 5 equal steps (the page's grid
    lines fall every 20 %): 0, 40, 80… 200 for 188."""
    raw = max(1.0, float(maximum)) / 5
    power = 10 ** math.floor(math.log10(raw))
    step = next(s for s in (m * power for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10))
                if s >= raw - 1e-9 and float(s).is_integer())  # whole dwellings on the scale
    return 5 * step, [k * step for k in range(6)]


def _scale(maximum: float) -> tuple[float, list[tuple[float, str]]]:
    top, ticks = _ticks(maximum)
    return top, [(_pct(t, top), fr_number(t)) for t in ticks]


PERCENT_TICKS = [(float(v), f"{v} %") for v in range(0, 101, 20)]


def _pct(value: float, top: float) -> float:
    """Position in % of the scale, rounded for the page; missing values at 0."""
    value = 0.0 if value is None or not np.isfinite(value) else float(value)
    return round(min(100.0, max(0.0, 100 * value / top)), 2) if top > 0 else 0.0


def targets_chart(targets: pd.DataFrame) -> BarChart:
    """Each réservataire's target (grey) above its plan (blue, red when they differ)."""
    top, ticks = _scale(max(1, targets["cible"].max(), targets["logements"].max()))
    bars = [Bar(str(name), [[(0.0, _pct(c, top), "gris")], [(0.0, _pct(p, top), "rouge" if e != 0 else "bleu")]],
                f"{fr_number(p)} / {fr_number(c)}", alert=e != 0)
            for name, c, p, e in zip(targets["reservataire"], targets["cible"], targets["logements"], targets["ecart"])]
    return BarChart("Objectif et plan par réservataire (rouge : écart)", bars,
                    [("gris", "objectif"), ("bleu", "plan"), ("rouge", "plan différent de l'objectif")],
                    "logements", ticks)


def communes_chart(communes: pd.DataFrame) -> BarChart:
    """Flux (grey) and expected attributions (green) per commune, the largest flux first, at most
    MAX_BARS, with the commune's adequacy beside."""
    more = len(communes) > MAX_BARS
    t = communes.nlargest(MAX_BARS, "logements", keep="first") if more else communes
    top, ticks = _scale(max(1, t["logements"].max()))
    bars = [Bar(str(name), [[(0.0, _pct(flux, top), "gris")], [(0.0, _pct(matched, top), "vert")]],
                f"{100 * share:.0f} %")
            for name, flux, matched, share in zip(t["libelle"], t["logements"], t["attributions_prevues"],
                                                   t["adequation"].fillna(0))]
    extra = f" ({MAX_BARS} communes au plus fort flux sur {len(communes)})" if more else ""
    return BarChart("Adéquation par commune" + extra, bars,
                    [("gris", "logements du flux"), ("vert", "attributions prévues")], "logements", ticks)


def qpv_chart(qpv: pd.DataFrame) -> BarChart:
    """Share of each réservataire's dwellings hors QPV (blue) and in QPV (orange)."""
    bars = []
    for name, out, inside in zip(qpv["reservataire"], qpv["hors_qpv"], qpv["qpv"]):
        total = out + inside
        share = out / total if total else np.nan
        lines = [[(0.0, round(100 * share, 2), "bleu"), (round(100 * share, 2), round(100 * (1 - share), 2), "orange")]] \
            if total else [[]]
        bars.append(Bar(str(name), lines, f"{100 * share:.0f} % hors QPV" if total else "aucun logement"))
    return BarChart("Parts QPV / hors QPV par réservataire", bars, [("bleu", "hors QPV"), ("orange", "QPV")],
                    "% des logements orientés", PERCENT_TICKS)


def mixity_chart(shares: pd.DataFrame) -> BarChart:
    """Mixity targets: the planned share (red: not held, orange: held without margin, green: held)
    and the minimum (a black mark); the MAX_BARS closest to their minimum (violated first) when
    there are more, the full table being beside it."""
    if len(shares) > MAX_BARS:
        room = (shares["part_prevue"].fillna(0) - shares["part_min"]).where(shares["statut"] != "violee", -1.0)
        shares = shares.loc[room.sort_values(kind="stable").index[:MAX_BARS]]
    colour = {"violee": "rouge", "saturee": "orange"}
    bars = [Bar(str(name), [[(0.0, _pct(share, 1), colour.get(status, "vert"))]],
                f"{100 * share:.0f} % (min. {100 * minimum:.0f} %)", marker=_pct(minimum, 1), alert=status == "violee")
            for name, share, minimum, status in zip(shares["libelle"], shares["part_prevue"].fillna(0),
                                                    shares["part_min"], shares["statut"])]
    return BarChart("Objectifs de mixité : minimum et plan", bars,
                    [("vert", "part prévue, tenue"), ("orange", "tenue sans marge"), ("rouge", "non tenue"),
                     ("minimum", "minimum")], "% des logements de la portée", PERCENT_TICKS)
