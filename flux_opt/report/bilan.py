"""The bilan annuel for people: Excel and HTML, consolidated, per réservataire and per EPCI with a CIA
(the figures are computed in flux_opt.year.bilan)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path

import pandas as pd
from rich.table import Table as RichTable

from flux_opt.explanation.sentences import fr_number
from flux_opt.plan.names import Names
from flux_opt.report.annexes import AnnexDocument, file_names, french_date, grid, legal_basis
from flux_opt.report.exports import write_atomically
from flux_opt.report.tables import Table
from flux_opt.report.workbook import workbook_bytes
from flux_opt.report.html import Cell, Paragraph, Section, html_table, render
from flux_opt.year.bilan import DIMENSIONS, LIBELLES, Bilan


def _with_total(table: pd.DataFrame) -> pd.DataFrame:
    """The table with a Total row summing its counts (shares are not summed); one row needs none."""
    if len(table) < 2:
        return table
    comptes = [c for c in table.columns if not c.startswith("part_") and pd.api.types.is_numeric_dtype(table[c])]
    total = {c: table[c].sum() for c in comptes} | {"reservataire": "Total"}
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


# The publics prioritaires obligation and the DALO share beside it: a table of their own
PRIORITAIRES = ["reservataire", "nom", "baux_menage_connu", "part_prioritaires", "part_prioritaires_due",
                "prioritaires_tenue", "baux_dalo", "part_dalo", "obligation_prioritaires"]
NOTE_DALO = ("La loi ne fixe pas de taux propre aux ménages reconnus DALO : ils passent en priorité dans la part "
             "due aux publics prioritaires (CCH L.441-1 ; Action Logement : L.313-26-2 ; contingent préfectoral : "
             "R.441-5). La part DALO est donnée pour information.")


def priorities(targets: pd.DataFrame) -> pd.DataFrame:
    """Per réservataire: the publics prioritaires share against the share due (met or not), DALO beside it."""
    table = targets.copy()
    table["prioritaires_tenue"] = ["" if pd.isna(part) or pd.isna(due) else ("oui" if part >= due - 1e-9 else "non")
                                   for part, due in zip(table["part_prioritaires"], table["part_prioritaires_due"])]
    return table[PRIORITAIRES]


def priority_view(b: Bilan) -> RichTable:
    """The same table for the terminal (80 columns: identifiers, short headings)."""
    vue = RichTable(title=f"Publics prioritaires et ménages DALO, baux signés en {b.annee}", title_justify="left",
                caption="Baux : baux signés dont le ménage est renseigné. " + NOTE_DALO, caption_justify="left")
    for titre in ("Réservataire", "Baux", "Prioritaires", "Due", "Atteinte", "DALO", "Part DALO"):
        vue.add_column(titre, justify="left" if titre in ("Réservataire", "Atteinte") else "right",
                       no_wrap=titre != "Réservataire", ratio=3 if titre == "Réservataire" else None)
    for ligne in priorities(b.targets).itertuples(index=False):
        nom = ligne.nom if isinstance(ligne.nom, str) and ligne.nom else ligne.reservataire
        vue.add_row(nom, str(ligne.baux_menage_connu), _percent(ligne.part_prioritaires),
                    _percent(ligne.part_prioritaires_due), ligne.prioritaires_tenue, str(ligne.baux_dalo),
                    _percent(ligne.part_dalo))
    return vue


def _named(table: pd.DataFrame, targets: pd.DataFrame) -> pd.DataFrame:
    """The réservataire's name beside its code, from the objectives table, when the table has none."""
    if "reservataire" not in table or "nom" in table or "nom" not in targets:
        return table
    out = table.copy()
    noms = targets.set_index("reservataire")["nom"]
    out.insert(out.columns.get_loc("reservataire") + 1, "nom", out["reservataire"].map(noms).fillna(""))
    return out


def _percent(part: float) -> str:
    return "—" if pd.isna(part) else f"{100 * part:.1f} %".replace(".", ",").replace(",0 %", " %")


def _sections(b: Bilan) -> list[tuple[str, pd.DataFrame]]:
    sections = []
    if len(b.targets.columns):
        realise = [c for c in b.targets.columns if c in ("reservataire", "nom") or c not in PRIORITAIRES]
        sections += [("Objectifs et réalisé", _with_total(b.targets[realise])),
                     ("Publics prioritaires et DALO", _with_total(priorities(b.targets)))]
    sections += [("Synthèse", _with_total(_named(b.synthese, b.targets)))]
    sections += [(f"Par {titre.lower()}" if d != "qpv" else "QPV et hors QPV", b.par_dimension[d])
                 for d, titre in DIMENSIONS.items()]
    sections += [
        ("Retraits du flux", b.retraits),
        ("Retraits (détail)", b.retraits_detail),
        (f"Prévision des retraits {b.annee + 1}", b.prevision_retraits),
        ("Refus et motifs", b.refus),
        ("Logements rendus au bailleur", b.retours),
    ]
    if len(b.mixite_cia):
        sections.append(("Mixité dans les EPCI dotés d'une CIA", b.mixite_cia))
    return sections


# Share columns (0.25): a % format in the workbook, « 25,0 % » on the page.
SHARES = tuple(LIBELLES[c] for c in LIBELLES if c.startswith("part_"))


def _french_headings(df: pd.DataFrame) -> pd.DataFrame:
    """French headings; shares stay fractions (the workbook and the page show them as percentages)."""
    return df.rename(columns={**{c: LIBELLES[c] for c in df.columns if c in LIBELLES},
                              "annees_de_reference": "Années de référence"})


def _tables(b: Bilan) -> list[Table]:
    return [Table(titre, titre, _french_headings(table),
                  total=len(table) > 1 and str(table.iloc[-1].get("reservataire", "")) == "Total", shares=SHARES)
            for titre, table in _sections(b)]


def write_excel(b: Bilan, chemin: Path) -> Path:
    """The bilan's workbook through the shared writer (report/workbook.py): print setup, rounding, text as text."""
    Path(chemin).write_bytes(workbook_bytes(_tables(b)))
    return chemin


def _cell_fr(colonne: str, valeur: object) -> Cell:
    if colonne in SHARES and isinstance(valeur, float):
        return Cell(_percent(valeur), "num")
    if isinstance(valeur, str) or pd.isna(valeur):
        return Cell("" if pd.isna(valeur) else valeur)
    if isinstance(valeur, float):
        return Cell(fr_number(valeur), "num")  # one decimal, never « -0 »
    return Cell(str(valeur), "num")


def write_html(b: Bilan, chemin: Path, destinataire: str | None, sous_titre: str | None = None) -> Path:
    sections = [Section(titre, [html_table(_french_headings(table), _cell_fr)] if len(table)
                        else [Paragraph("Aucun logement.", "note")]) for titre, table in _sections(b)]
    titre = f"Bilan annuel {b.annee} des attributions en flux" + (f" — {destinataire}" if destinataire else "")
    sous_titre = sous_titre or ("Bilan destiné au réservataire, à transmettre avant le 28 février" if destinataire
                                else "Bilan consolidé, tous réservataires (CCH R.441-5-1)")
    page = render("bilan.html", title=titre, subtitle=sous_titre, sections=sections)
    chemin.write_text(page, encoding="utf-8")
    return chemin


def write_bilan(b: Bilan, dossier: str | Path, par_epci: Mapping[str, Bilan] | None = None,
                instance=None, day: date | None = None) -> list[Path]:
    """Write the consolidated bilan, one bilan per réservataire (the annex layout: its name in the file
    name, only its part) and one per EPCI with a CIA (Excel + HTML), and `bilan_N.csv` (objective vs
    counted, read by `plan --bilan-precedent`), all at once (write_atomically: an interrupted run leaves
    the folder as it was). `instance`, the plan's: names, the bailleur and the legal basis."""
    dossier = Path(dossier)
    base = f"bilan_{b.annee}"
    writers = _pair(b, base, None)
    if len(b.targets.columns):
        writers[f"{base}.csv"] = lambda p: b.targets.assign(annee=b.annee).to_csv(
            p, index=False, encoding="utf-8", float_format="%.6g")
    for epci, partiel in (par_epci or {}).items():
        writers |= _pair(partiel, f"{base}_epci_{epci}", f"EPCI {epci}",
                         "Bilan destiné au président de l'EPCI doté d'une convention intercommunale "
                         "d'attribution, à transmettre avant le 31 mars")
    names = _names(b, instance)
    files = file_names({rid: names.reservataire(rid) for rid in b.reservataires})
    for reservataire in b.reservataires:
        document = reservataire_document(b, reservataire, names, instance, day)
        page, book = document.html().encode("utf-8"), document.xlsx()
        writers[f"{base}_{files[reservataire]}.html"] = lambda p, page=page: p.write_bytes(page)
        writers[f"{base}_{files[reservataire]}.xlsx"] = lambda p, book=book: p.write_bytes(book)
    write_atomically(dossier, writers)
    return [dossier / name for name in writers]


def _names(b: Bilan, instance) -> Names:
    names = Names.of(instance) if instance is not None else Names()
    if "nom" in b.targets:  # the conventions' names, when the instance is not at hand
        for rid, nom in zip(b.targets["reservataire"], b.targets["nom"]):
            if isinstance(nom, str) and nom and rid not in names.reservataires:
                names.reservataires[rid] = nom
    return names


def reservataire_document(b: Bilan, reservataire: str, names: Names, instance=None,
                          day: date | None = None) -> AnnexDocument:
    """One réservataire's bilan in the annex layout: its leases by commune × QPV × typologie ×
    financement with totals and « % du flux » (its share of all the leases of the year), its objective
    and what it got, the legal basis; then its own tables of the bilan."""
    own = b.for_reservataire(reservataire)
    name = names.reservataire(reservataire)
    leases = int(b.synthese["logements_attribues"].sum()) if len(b.synthese) else 0
    facts = [("Réservataire", name)]
    if instance is not None:
        facts.append(("Bailleur", instance.parametres.instance.bailleur))
    facts += [("Année", str(b.annee)), ("Date", french_date(day))]
    if len(own.targets):
        row = own.targets.iloc[0]
        facts += [("Objectif de l'année", f"{fr_number(row['objectif'])} logements"),
                  ("Réalisé", f"{fr_number(row['logements_proposes'])} logements proposés, "
                              f"{fr_number(row['logements_attribues'])} attribués, "
                              f"{fr_number(row['logements_decomptes'])} décomptés")]
    if instance is not None:
        rows = {r.id: r for r in instance.reservataires}
        if reservataire in rows:
            conventions = [c.convention for c in instance.conventions if c.reservataire == reservataire]
            facts.append(("Base légale", " ".join(legal_basis(rows[reservataire], conventions))))
    grid_rows = own.par_segment.rename(columns={"logements_attribues": "logements"}) if len(own.par_segment) \
        else pd.DataFrame(columns=["commune", "qpv", "typologie", "financement", "logements"])
    first = Table("Logements attribués", f"Logements attribués à {name} en {b.annee}",
                  grid(grid_rows, "logements", names, leases), total=True)
    rest = [t for t in _tables(own) if t.sheet != "Synthèse"]
    for t in rest:  # its own tables: no column repeating its code or name, communes by name
        t.frame = t.frame.drop(columns=["Réservataire", "Nom"], errors="ignore")
        if "Commune" in t.frame:
            t.frame = t.frame.assign(Commune=t.frame["Commune"].map(lambda c: names.commune_name(c) or c))
    return AnnexDocument(f"Bilan annuel {b.annee} — {name}",
                         "Bilan des attributions en flux, à transmettre avant le 28 février (CCH R.441-5-1)",
                         facts, [first, *rest],
                         [f"« % du flux » : part des {fr_number(leases)} baux signés en {b.annee} sur le flux du "
                          "bailleur que représentent les logements de la ligne. Logements proposés : ayant fait "
                          "l'objet d'au moins une proposition dans l'année ; attribués : baux signés dans l'année.",
                          NOTE_DALO])


def _pair(b: Bilan, name: str, destinataire: str | None, sous_titre: str | None = None) -> dict:
    """The Excel and HTML writers of one bilan."""
    return {f"{name}.xlsx": lambda p: write_excel(b, p),
            f"{name}.html": lambda p: write_html(b, p, destinataire, sous_titre)}
