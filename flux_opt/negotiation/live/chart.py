"""A bar chart as inline SVG, drawn server-side: the page works offline, with no script library.

Two bars per réservataire (base, scenario), their values written at the end of each bar; every
bar carries `data-serie` and `data-valeur` so a test (or a screen reader) can read the figures.
"""

from __future__ import annotations

from html import escape

ROW, BAR, LEFT, WIDTH, RIGHT = 34, 13, 250, 720, 50
COLOURS = ("#9aa5b1", "#1f5fa8")


def bars_svg(labels: list[str], base: list[float], scenario: list[float], base_name: str, scenario_name: str) -> str:
    top = 28
    height = top + ROW * len(labels) + 10
    largest = max([*base, *scenario, 1])
    scale = (WIDTH - LEFT - RIGHT) / largest
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="graphique" viewBox="0 0 {WIDTH} {height}" '
             f'width="{WIDTH}" style="max-width:100%;height:auto" role="img" aria-label="Logements orientés par réservataire : base et scénario">']
    for i, (serie, colour) in enumerate(zip((base_name, scenario_name), COLOURS)):
        x = LEFT + i * 170
        parts.append(f'<rect x="{x}" y="6" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{x + 18}" y="16" font-size="12">{escape(serie)}</text>')
    for i, label in enumerate(labels):
        y = top + i * ROW
        parts.append(f'<text x="{LEFT - 8}" y="{y + BAR + 4}" font-size="12" text-anchor="end">{escape(_short(label))}</text>')
        for j, (serie, values, colour) in enumerate(((base_name, base, COLOURS[0]), (scenario_name, scenario, COLOURS[1]))):
            value, by = values[i], y + j * BAR
            parts.append(f'<rect class="barre" data-serie="{escape(serie)}" data-reservataire="{escape(label)}" '
                         f'data-valeur="{value:g}" x="{LEFT}" y="{by}" width="{value * scale:.1f}" '
                         f'height="{BAR - 2}" fill="{colour}"/>'
                         f'<text x="{LEFT + value * scale + 4:.1f}" y="{by + BAR - 3}" font-size="11">{value:g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _short(label: str, size: int = 36) -> str:
    return label if len(label) <= size else label[:size - 1].rstrip() + "…"
