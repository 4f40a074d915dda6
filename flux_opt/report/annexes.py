"""One annex per réservataire, ready to send: `annexes/<nom>.xlsx` and `annexes/<nom>.html`.

Each annex holds only its réservataire's part — its dwellings by commune × QPV × typologie ×
financement with totals and « % du flux », its objective and the legal basis of its reservation, the
year, the bailleur, the date — and nothing about the other réservataires or the optimiser. The plan's
annexes (`flux-opt plan`) and the bilan's (`flux-opt bilan`, dwellings attributed) share the layout:
one jinja2 template (`annexe.html`, on the base layout), one workbook writer (report/workbook.py),
both set up to print on A4 landscape.
"""

from __future__ import annotations

import re
import shutil
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from flux_opt.explanation.sentences import fr_number, fr_percent
from flux_opt.plan.names import Names
from flux_opt.report.html import Cell, HtmlTable, render
from flux_opt.report.tables import Table
from flux_opt.report.workbook import workbook_bytes
from flux_opt.vocabulary import TYPOLOGIES

ANNEXES = "annexes"  # the folder, in the plan's folder and the bilan's
FINANCEMENT_NAMES = {"PLAI": "PLAI", "PLUS": "PLUS", "PLS": "PLS", "autre": "Financement ancien"}
SHARE_HEADING = "% du flux"
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre")

# The article a reservation rests on, by type of réservataire (reservataires.csv `type`).
LEGAL_BASIS = {
    "prefet": "Contingent préfectoral : CCH L.441-1 et R.441-5-2 — au plus 30 % du flux annuel, agents de "
              "l'État compris, attribués à des publics prioritaires.",
    "prefet_agents": "Agents civils et militaires de l'État : CCH R.441-5-2 — au plus 5 % du flux annuel, "
                     "dans le contingent préfectoral.",
    "collectivite": "Collectivité garante d'emprunt : CCH R.441-5 — au plus 20 % du flux annuel de son "
                    "territoire, collectivités ensemble.",
    "collectivite_financement": "Collectivité ayant apporté un financement : CCH R.441-5 — part fixée par la "
                                "convention de réservation.",
    "action_logement": "Action Logement : CCH L.313-26-2 et R.441-5 — réservations en contrepartie de la "
                       "participation des employeurs.",
    "employeur": "Employeur : CCH R.441-5 — réservations en contrepartie d'un apport de financement.",
    "autre": "Convention de réservation : CCH R.441-5.",
    "bailleur": "Logements non réservés du bailleur : le flux annuel moins les réservations (CCH R.441-5).",
}


def legal_basis(row, conventions: list[str]) -> list[str]:
    """The article of a réservataire's reservation and its conventions (conventions.csv)."""
    kind = row.type
    if kind == "collectivite" and getattr(row, "financement_apporte", False):
        kind = "collectivite_financement"
    lines = [LEGAL_BASIS.get(kind, LEGAL_BASIS["autre"])]
    if conventions:
        lines.append("Convention" + ("s" if len(conventions) > 1 else "") + " de réservation : "
                     + ", ".join(conventions) + ".")
    return lines


def target_basis(source: str, row, base: int, flux: int) -> str:
    """How the year's objective was set (assiette/targets.py `source`), in words."""
    taux = getattr(row, "taux", None)
    words = {
        "logements": "nombre de logements fixé pour l'année par la convention",
        "taux": f"{fr_percent(taux or 0)} du flux annuel de son territoire ({fr_number(base)} logements)",
        "taux_prefet_par_defaut": f"taux légal du préfet appliqué au flux annuel ({fr_number(flux)} logements), "
                                  "moins la part des agents de l'État",
        "taux_agents_par_defaut": f"taux des agents de l'État appliqué au flux annuel ({fr_number(flux)} logements)",
        "article_5": f"logements réservés en stock ({fr_number(getattr(row, 'logements_reserves', 0) or 0)}) "
                     f"rapportés au parc du bailleur sur son territoire, appliqués au flux de ce territoire "
                     f"({fr_number(base)} logements)",
        "reste": "le flux annuel moins les objectifs des réservataires",
    }
    return words.get(source, source)


def french_date(day: date | None = None) -> str:
    day = day or date.today()
    return f"{day.day}{'er' if day.day == 1 else ''} {MONTHS[day.month - 1]} {day.year}"


def slug(name: str) -> str:
    """A file name from a name a person reads: « Préfet du Nord (agents…) » → prefet-du-nord-agents…"""
    ascii_name = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:80].strip("-")
    return text or "reservataire"


def file_names(names: dict[str, str]) -> dict[str, str]:
    """One safe, unique file name (without extension) per réservataire id, from its name."""
    used: set[str] = set()
    out = {}
    for rid, name in names.items():
        base = slug(name)
        candidate, k = base, 2
        while candidate in used:
            candidate, k = f"{base}-{k}", k + 1
        used.add(candidate)
        out[rid] = candidate
    return out


@dataclass
class AnnexDocument:
    """What one annex says: a title, the facts of its header, its tables (the first is the grid)."""

    title: str
    subtitle: str
    facts: list[tuple[str, str]]
    tables: list[Table]
    notes: list[str] = field(default_factory=list)

    def html(self) -> str:
        return render("annexe.html", title=self.title, subtitle=self.subtitle, facts=self.facts,
                      tables=[(t.title, html_table_of(t), t.note, len(t.frame.columns) > 6) for t in self.tables],
                      notes=self.notes)

    def sheets(self) -> list[Table]:
        """Its tables for a workbook, the header's facts above the first."""
        preamble = (self.title, self.subtitle, *(f"{label} : {value}" for label, value in self.facts), "")
        first, *rest = self.tables
        return [Table(first.sheet, first.title, first.frame, first.note, first.total, preamble), *rest]

    def xlsx(self) -> bytes:
        return workbook_bytes(self.sheets())


def grid(rows: pd.DataFrame, value: str, noms: Names, flux: float) -> pd.DataFrame:
    """Dwellings by commune × QPV × financement (lines) and typologie (columns), names not codes,
    a Total column, « % du flux » (the line's dwellings over `flux`) and a Total line."""
    return grids(rows.assign(**{_ONE: 0}), value, noms, flux, _ONE, keys=[0])[0]


_ONE = "__une_grille__"  # the key column of a single grid


def grids(rows: pd.DataFrame, value: str, noms: Names, flux: float, by: str = "reservataire",
          keys: list | None = None) -> dict:
    """`grid` of each value of the column `by` (of each of `keys`, given: those without dwellings
    get a grid with its Total line only), the rows grouped and named once for all of them."""
    rows = rows.loc[rows[value] > 0]
    qpv = rows["qpv"].map(lambda v: "QPV" if v in (True, "oui", "QPV") else "hors QPV")
    summed = rows.assign(qpv=qpv).groupby([by, "commune", "qpv", "financement", "typologie"])[value].sum()
    found = {key: set(group) for key, group in summed.index.to_frame(index=False).groupby(by)["typologie"]}
    columns = [t for t in TYPOLOGIES if any(t in typologies for typologies in found.values())]
    wide = (summed.unstack("typologie", fill_value=0).reindex(columns=columns, fill_value=0)
            .round().astype(int).reset_index())
    lines = pd.DataFrame({
        by: wide[by],
        "Commune": wide["commune"].map(lambda c: noms.commune_name(c) or str(c)),
        "QPV": wide["qpv"],
        "Financement": wide["financement"].map(lambda f: FINANCEMENT_NAMES.get(f, f)),
    })
    lines = pd.concat([lines, wide[columns]], axis=1)
    # a typologie a key has not is 0 on its lines: the sum over every column is the key's Total
    lines["Total"] = lines[columns].sum(axis=1).astype(int) if columns else 0
    lines[SHARE_HEADING] = lines["Total"] / flux if flux else 0.0
    lines = lines.sort_values(["Commune", "QPV", "Financement"], kind="stable")
    totals = lines.groupby(by)[[*columns, "Total"]].sum()
    parts = dict(iter(lines.groupby(by, sort=False)))
    out = {}
    for key in (keys if keys is not None else parts):
        typologies = [t for t in TYPOLOGIES if t in found.get(key, ())]
        part = parts.get(key, lines.iloc[:0])
        total = {"Commune": "Total", "QPV": "", "Financement": "",
                 **{c: int(totals.at[key, c]) if key in parts else 0 for c in [*typologies, "Total"]},
                 SHARE_HEADING: (totals.at[key, "Total"] if key in parts else 0) / flux if flux else 0.0}
        out[key] = pd.concat([part[["Commune", "QPV", "Financement", *typologies, "Total", SHARE_HEADING]],
                              pd.DataFrame([total])], ignore_index=True)
    return out


def _html_cell(column: str, value, shares: tuple[str, ...] = ()) -> Cell:
    if column == SHARE_HEADING or (column in shares and isinstance(value, float)):
        if pd.isna(value):
            return Cell("—", "num")
        return Cell(fr_percent(float(value)), "num")
    if isinstance(value, str):
        return Cell(value)
    if not isinstance(value, (int, np.integer)) and (value is None or pd.isna(value)):  # a whole number is never missing
        return Cell("")
    return Cell(fr_number(value), "num")


def html_table_of(table: Table) -> HtmlTable:
    """A table of a document for its page; its total line bold."""
    frame = table.frame
    rows = [[_html_cell(str(c), v, table.shares) for c, v in zip(frame.columns, row)]
            for row in frame.itertuples(index=False, name=None)]
    if table.total and rows:
        rows[-1] = [Cell(c.text, (c.css + " total").strip()) for c in rows[-1]]
    return HtmlTable([str(c) for c in frame.columns], rows)


# ----------------------------------------------------------------------------- the plan's annexes

def plan_annexes(result, instance, targets_table: pd.DataFrame | None = None,
                 day: date | None = None) -> dict[str, AnnexDocument]:
    """One annex per réservataire of the plan, keyed by its file name (without extension)."""
    r, noms = result.resume, result.noms
    flux = int(r.get("flux", 0))
    rows = {row.id: row for row in instance.reservataires}
    conventions: dict[str, list[str]] = {}
    for c in instance.conventions:
        conventions.setdefault(c.reservataire, []).append(c.convention)
    targets = targets_table.set_index("id") if targets_table is not None else None
    objectifs = result.objectifs.set_index("reservataire")
    names = {rid: noms.reservataire(rid) for rid in objectifs.index}
    tables = grids(result.plan, "logements", noms, flux, keys=list(names))  # grouped once for every annex
    oriented_by = result.plan.groupby("reservataire")["logements"].sum()
    documents = {}
    for rid, file_name in file_names(names).items():
        row, name = rows[rid], names[rid]
        oriented = int(oriented_by.get(rid, 0))
        target = int(objectifs.at[rid, "cible"])
        facts = [("Réservataire", name), ("Bailleur", str(r.get("bailleur", ""))), ("Année", str(r.get("annee", ""))),
                 ("Date", french_date(day)),
                 ("Objectif de l'année", f"{fr_number(target)} logements"),
                 ("Logements orientés", f"{fr_number(oriented)} logements, soit {fr_percent(oriented / flux if flux else 0)} "
                                        f"du flux annuel de {fr_number(flux)} logements")]
        if targets is not None and rid in targets.index:
            t = targets.loc[rid]
            facts.append(("Calcul de l'objectif", target_basis(t["source"], row, int(t["base"]), flux)))
        facts += [("Base légale", " ".join(legal_basis(row, conventions.get(rid, []))))]
        table = Table("Logements", f"Logements orientés à {name} en {r.get('annee', '')}",
                      tables[rid], total=True)
        documents[file_name] = AnnexDocument(
            f"Annexe — {name}", f"Plan d'orientation du flux {r.get('annee', '')} — {r.get('bailleur', '')}",
            facts, [table],
            [f"« {SHARE_HEADING} » : part du flux annuel ({fr_number(flux)} logements libérés dans l'année, "
             "exclusions déduites, CCH R.441-5) que représentent les logements de la ligne. Les logements sont "
             "orientés à l'avance ; l'attribution reste décidée par la commission d'attribution (CALEOL)."])
    return documents


def folder_writer(documents: dict[str, AnnexDocument]):
    """A writer for `write_atomically`: the `annexes/` folder, one .xlsx and one .html per document."""
    pages = {name: (doc.html().encode("utf-8"), doc.xlsx()) for name, doc in documents.items()}

    def write(path: Path) -> None:
        path = Path(path)
        if path.exists():
            shutil.rmtree(path)
        path.mkdir()
        for name, (page, book) in pages.items():
            (path / f"{name}.html").write_bytes(page)
            (path / f"{name}.xlsx").write_bytes(book)
    return write
