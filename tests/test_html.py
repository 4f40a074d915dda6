"""The HTML layer: every page renders from the same base layout and stylesheet, escaped."""

from __future__ import annotations

import re

import pandas as pd

from flux_opt.report.html import Cell, Paragraph, Section, html_table, render

PAGES = ("plan.html", "compare.html", "sweep.html", "conversion.html", "suivi.html", "bilan.html")


def _page(template: str) -> str:
    frame = pd.DataFrame({"Réservataire": ["<script>alert(1)</script>"], "Logements": [12]})
    table = html_table(frame, lambda c, v: Cell(str(v), "" if isinstance(v, str) else "num"), "Légende")
    return render(template, title="Titre <b>", subtitle="Sous-titre", sections=[
        Section("Une section", [Paragraph("Texte d'essai"), table])])


def test_every_page_shares_the_layout_and_the_inlined_stylesheet():
    pages = {t: _page(t) for t in PAGES}
    styles = {t: re.search(r"<style>(.*?)</style>", p, re.S).group(1) for t, p in pages.items()}
    assert len(set(styles.values())) == 1 and "td.num" in styles["plan.html"]
    for template, page in pages.items():
        assert page.startswith("<!DOCTYPE html>") and '<html lang="fr">' in page, template
        assert "<h1>Titre &lt;b&gt;</h1>" in page and "<h2>Une section</h2>" in page, template
        assert re.search(r"<footer>.*flux-opt \S+ — généré le \d\d/\d\d/\d{4} à \d\d:\d\d", page, re.S), template
        assert "http" not in page and "<link" not in page  # one self-contained file


def test_cells_are_escaped_and_laid_out_in_order():
    page = _page("plan.html")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<caption>Légende</caption>" in page and "Texte d&#39;essai" in page
    assert re.search(r"<tr><td>&lt;script&gt;alert\(1\)&lt;/script&gt;</td><td class=\"num\">12</td></tr>", page)
