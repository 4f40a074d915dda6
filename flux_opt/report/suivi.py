"""The follow-up (`suivi`) for people: French tables, percentages, a rich view and an Excel file.

`suivi.py` computes; this module only renames, aggregates and formats.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Group
from rich.text import Text

from flux_opt.plan.names import Names
from flux_opt.report.tables import fitted_tables
from flux_opt.report.html import Cell, Paragraph, Section, bullets, html_table, render
from flux_opt.report.workbook import excel_writer
from flux_opt.year.alerts import alerts
from flux_opt.explanation.sentences import fr_number
from flux_opt.year.suivi import Suivi, project_to_year_end

# Columns shown for each progress table, in order, with their French heading.
AVANCEMENT = {
    "cible": "Objectif",
    "realise": "Réalisé",
    "en_cours": "En cours",
    "reste": "Reste",
    "taux_realisation": "Taux",
    "projection": "Projection",
    "ecart_projete": "Écart projeté",
}
DIMENSIONS = {"reservataire": "Réservataire", "typologie": "Typologie", "qpv": "Zone", "commune": "Commune"}
MIXITE = {
    "epci": "EPCI",
    "zone": "Zone",
    "attributions": "Baux",
    "part_q1": "Q1",
    "part_q1_prevue": "Q1 prévu",
    "part_q234": "Q2-Q4",
    "part_prioritaires": "Prioritaires",
    "part_prioritaires_prevue": "Prioritaires prévu",
    "part_q1_exigee": "Q1 exigé (CIA)",
    "part_q234_exigee": "Q2-Q4 exigé (CIA)",
}
DELAIS = {"logement_id": "Logement", "reservataire": "Réservataire", "date_proposition": "Proposé le",
          "echeance": "Échéance", "candidats": "Candidats", "situation": "Situation"}
SITUATIONS = {"depasse": "délai dépassé", "proche": "échéance proche"}
PRIORITAIRES = {"reservataire": "Réservataire", "attributions": "Baux (ménage connu)",
                "prioritaires": "Publics prioritaires", "part_prioritaires": "Part", "part_due": "Part due"}
POURCENTAGES = {"Taux", "Q1", "Q1 prévu", "Q2-Q4", "Prioritaires", "Prioritaires prévu", "Part", "Part due",
                "Q1 exigé (CIA)", "Q2-Q4 exigé (CIA)"}
LEGENDE = ("Taux = réalisé ÷ objectif ; projection au 31 décembre : les logements en cours deviennent des baux "
           "et les orientations continuent au rythme observé ; Q1 = ménages du 1er quartile, Q2-Q4 = quartiles 2 à 4, parts calculées sur les baux "
           "dont le ménage est connu ; « prévu » = part attendue par le plan (attributions.csv).")


def _zone(qpv: pd.Series) -> pd.Series:
    return qpv.map({True: "QPV", False: "hors QPV", "qpv": "QPV", "hors_qpv": "hors QPV"})


def _avancement(table: pd.DataFrame, dimensions: list[str], fraction: float) -> pd.DataFrame:
    """Sum the progress over everything but `dimensions`, recompute rates and projection."""
    if dimensions:
        table = table.groupby(dimensions, as_index=False)[["cible", "realise", "en_cours", "reste"]].sum()
    else:
        table = table[["cible", "realise", "en_cours", "reste"]].sum().to_frame().T
    table["taux_realisation"] = (table["realise"] / table["cible"]).where(table["cible"] > 0)
    table["projection"] = project_to_year_end(table["realise"], table["en_cours"], fraction)
    table["ecart_projete"] = table["projection"] - table["cible"]
    return table


def _french_headings(table: pd.DataFrame, dimensions: list[str], noms: Mapping[str, str] | None) -> pd.DataFrame:
    table = table.copy()
    if "qpv" in dimensions:
        table["qpv"] = _zone(table["qpv"])
    if "reservataire" in dimensions and noms:
        table["reservataire"] = table["reservataire"].map(lambda r: noms.get(r, r))
    colonnes = {**{d: DIMENSIONS[d] for d in dimensions}, **AVANCEMENT}
    return table[list(colonnes)].rename(columns=colonnes)


def suivi_tables(s: Suivi, noms: Mapping[str, str] | None = None, detail: bool = False,
                 lieux: Names | None = None) -> list[tuple[str, pd.DataFrame]]:
    """The follow-up as (title, French table) pairs. By typologie / zone / commune, the
    terminal view sums over réservataires; `detail=True` keeps one line per réservataire.
    `lieux`: the communes' and EPCI's names (the instance's), read in place of their codes."""
    f = s.fraction_annee
    noms = noms or s.noms or None
    reservataires = _avancement(s.reservataires, ["reservataire"], f)
    total = _avancement(s.reservataires, [], f).assign(reservataire="Total")
    tableaux = [("Par réservataire", _french_headings(pd.concat([reservataires, total], ignore_index=True),
                                                ["reservataire"], noms))]
    for titre, dimension, source in (("Par typologie", "typologie", s.par_typologie),
                                     ("QPV / hors QPV", "qpv", s.par_qpv),
                                     ("Par commune", "commune", s.par_commune)):
        cles = ["reservataire", dimension] if detail else [dimension]
        avancement = _avancement(source, cles, f)
        if dimension == "commune" and lieux is not None:
            avancement["commune"] = avancement["commune"].map(lambda c: lieux.commune_name(c) or c)
        tableaux.append((titre + (" et réservataire" if detail else ""),
                         _french_headings(avancement, cles, noms)))
    mixite = s.mixite.copy()
    if lieux is not None:
        mixite["epci"] = mixite["epci"].map(lambda e: lieux.epci_name(e) or e)
    mixite["zone"] = _zone(mixite["zone"])
    tableaux.append(("Mixité à date (baux signés)", mixite[[c for c in MIXITE if c in mixite]].rename(columns=MIXITE)))
    prioritaires = s.prioritaires.copy()
    if noms:
        prioritaires["reservataire"] = prioritaires["reservataire"].map(lambda r: noms.get(r, r))
    tableaux.append(("Publics prioritaires par réservataire",
                     prioritaires[[c for c in PRIORITAIRES if c in prioritaires]].rename(columns=PRIORITAIRES)))
    delais = s.delais.copy()
    if noms:
        delais["reservataire"] = delais["reservataire"].map(lambda r: noms.get(r, r))
    for colonne in ("date_proposition", "echeance"):
        delais[colonne] = pd.to_datetime(delais[colonne]).dt.strftime("%d/%m/%Y")
    delais["situation"] = delais["situation"].map(SITUATIONS)
    delais["candidats"] = [f"{p} sur {a}" for p, a in zip(delais["candidats_presentes"], delais["candidats_attendus"])]
    tableaux.append(("Délais des propositions (échus ou proches)",
                     delais[[c for c in DELAIS if c in delais]].rename(columns=DELAIS)))
    return tableaux


def projection_sentence(s: Suivi) -> str:
    """Where the year is heading at the current pace (linear in elapsed days)."""
    target = float(s.reservataires["cible"].sum())
    realise = float(s.reservataires["realise"].sum())
    en_cours = float(s.reservataires["en_cours"].sum())
    projection = project_to_year_end(realise, en_cours, s.fraction_annee)
    return (f"{_pct(s.fraction_annee)} de l'année écoulée au {s.date.strftime('%d/%m/%Y')} : "
            f"{fr_number(realise)} logements décomptés et {fr_number(en_cours)} en cours sur un objectif de "
            f"{fr_number(target)} ; au rythme actuel, {fr_number(projection)} au 31 décembre ({_pct(projection / target) if target else '—'} "
            "de l'objectif).")


def suivi_view(s: Suivi, noms: Mapping[str, str] | None = None, ecart: float | None = None,
                seuil: float | None = None, lieux: Names | None = None) -> Group:
    """Rich view: one table per section (split in two when it would not fit 80 columns), the
    projection and the drift of releases."""
    elements: list = [Text(f"Suivi au {s.date.strftime('%d/%m/%Y')}", style="bold")]
    for titre, table in suivi_tables(s, noms, lieux=lieux):
        elements += _tables_rich(table, titre)
    elements.append(Text(projection_sentence(s)))
    a_faire = alerts(s, lieux)
    elements.append(Text("À faire :" if a_faire else "Aucune alerte : délais, rythme et mixité tenus.", style="bold"))
    elements += [Text(f"• {phrase}", style="yellow") for phrase in a_faire]
    elements.append(Text(LEGENDE, style="dim"))
    if ecart is not None:
        message, alerte = drift_sentence(ecart, seuil)
        elements.append(Text(message, style="yellow" if alerte else ""))
    return Group(*elements)


def drift_sentence(ecart: float, seuil: float | None) -> tuple[str, bool]:
    """The drift of releases from the plan, and whether it calls for a re-optimisation."""
    message = f"Écart des libérations au plan : {_pct(ecart, 1)} du flux"
    if seuil is not None and ecart > seuil:
        return (message + f" (au-delà du seuil de {_pct(seuil, 1)}) : ré-optimiser le reste "
                "de l'année (flux-opt orienter … --instance).", True)
    return message + ".", False


def _cell_fr(colonne: str, valeur: object) -> Cell:
    if isinstance(valeur, str):
        return Cell(valeur)
    return Cell(_pct(valeur) if colonne in POURCENTAGES else fr_number(valeur), "num")


def suivi_page(s: Suivi, noms: Mapping[str, str] | None = None, ecart: float | None = None,
               seuil: float | None = None, lieux: Names | None = None) -> str:
    """suivi.html: the same sections as the terminal view, as one self-contained page."""
    parts: list = [Paragraph(projection_sentence(s))]
    if ecart is not None:
        message, alerte = drift_sentence(ecart, seuil)
        parts.append(bullets([message], "alertes") if alerte else Paragraph(message))
    parts.append(Paragraph(LEGENDE, "note"))
    a_faire = alerts(s, lieux)
    sections = [Section("Où en est l'année", parts),
                Section("À faire", [bullets(a_faire, "alertes") if a_faire
                                    else Paragraph("Aucune alerte : délais, rythme et mixité tenus.")])]
    sections += [Section(titre, [html_table(table, _cell_fr)]) for titre, table in suivi_tables(s, noms, lieux=lieux)]
    return render("suivi.html", title=f"Suivi de l'année {s.date.year}",
                  subtitle=f"Situation au {s.date.strftime('%d/%m/%Y')}", sections=sections)


def write_suivi_excel(s: Suivi, chemin: str | Path, noms: Mapping[str, str] | None = None,
                      lieux: Names | None = None) -> Path:
    """suivi.xlsx: one sheet per section (details per réservataire), rates as percentages."""
    chemin = Path(chemin)
    chemin.parent.mkdir(parents=True, exist_ok=True)
    feuilles = suivi_tables(s, noms, detail=True, lieux=lieux)
    feuilles.append(("Alertes", pd.DataFrame({"Alerte": alerts(s, lieux)}, dtype=object)))
    with excel_writer(chemin) as classeur:
        formats = {"0.0%": classeur.book.add_format({"num_format": "0.0%"}),
                   "0.0": classeur.book.add_format({"num_format": "0.0"})}
        for titre, table in feuilles:
            nom = titre.replace("/", "-")[:31]
            table.to_excel(classeur, sheet_name=nom, index=False)
            for j, colonne in enumerate(table.columns):
                fmt = "0.0%" if colonne in POURCENTAGES else \
                    "0.0" if pd.api.types.is_float_dtype(table[colonne]) else None
                classeur.sheets[nom].set_column(j, j, max(12, len(str(colonne)) + 2), formats.get(fmt))
    return chemin


def _pct(valeur: object, decimales: int = 0) -> str:
    if valeur is None or valeur is pd.NA or (isinstance(valeur, float) and np.isnan(valeur)):
        return "—"
    return f"{100 * float(valeur):.{decimales}f} %".replace(".", ",")


def _cells(table: pd.DataFrame) -> pd.DataFrame:
    """The table as people read it: rates as percentages, French figures."""
    return pd.DataFrame({c: [_pct(v) if c in POURCENTAGES else (fr_number(v) if not isinstance(v, str) else v)
                             for v in table[c]] for c in table.columns}, columns=table.columns)


def _is_text(values: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(values) or values.dtype == object


def _tables_rich(table: pd.DataFrame, titre: str) -> list:
    """The table for the terminal: every figure whole at 80 columns (report/tables.fitted_tables)."""
    return fitted_tables(_cells(table), titre, [c for c in table.columns if not _is_text(table[c])])
