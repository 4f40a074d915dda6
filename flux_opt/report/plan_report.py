"""The report for people: `rapport.html` (one self-contained file) and `rapport.xlsx` (one sheet per table).

Both are built from the same French tables (`report_tables`), from the result and its
explanation only: a saved plan can be re-rendered without the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from flux_opt.explanation.analysis import Explanation
from flux_opt.explanation.sentences import STATUS, fr_number, fr_number_fine, share_table
from flux_opt.model.registry import names
from flux_opt.report import plots
from flux_opt.report.html import (Bullets, Cards, Cell, HtmlTable, Paragraph, Section, figure, html_table,
                                  render)
from flux_opt.plan.result import Result

STRUCTURAL = names(structural=True)


@dataclass
class Table:
    sheet: str  # Excel sheet name (≤ 31 characters)
    title: str
    frame: pd.DataFrame  # French headings
    note: str = ""


def _fr(frame: pd.DataFrame, headings: dict[str, str]) -> pd.DataFrame:
    return frame[[c for c in headings if c in frame.columns]].rename(columns=headings)


def _status(series: pd.Series) -> pd.Series:
    return series.map(STATUS).fillna(series)


def commune_table(result: Result) -> pd.DataFrame:
    plan, att = result.plan, result.attributions
    flux = plan.groupby("commune")["logements"].sum()
    hors_qpv = plan.loc[plan["qpv"] != "oui"].groupby("commune")["logements"].sum()
    matched = att.groupby("commune")["attributions_prevues"].sum()
    table = pd.DataFrame({"logements": flux}).assign(
        hors_qpv=hors_qpv.reindex(flux.index).fillna(0).astype(int),
        attributions_prevues=matched.reindex(flux.index).fillna(0).round(2))
    table["adequation"] = (table["attributions_prevues"] / table["logements"]).round(4)
    names = _commune_names(result)
    table = table.reset_index()
    table["nom"] = [names.get(c, "") for c in table["commune"]]
    table["libelle"] = table["commune"] + table["nom"].map(lambda n: f" {n}" if n else "")
    return table


def _commune_names(result: Result) -> dict[str, str]:
    rows = result.rows
    uni = rows.loc[rows["contrainte"] == "uniformite_prefet", ["commune", "portee"]]
    return {c: p.split("(", 1)[1].rstrip(")") for c, p in zip(uni["commune"], uni["portee"]) if "(" in p}


def qpv_table(result: Result) -> pd.DataFrame:
    plan = result.plan.assign(zone=lambda p: (p["qpv"] == "oui").map({True: "qpv", False: "hors_qpv"}))
    table = plan.pivot_table(index="reservataire", columns="zone", values="logements", aggfunc="sum",
                             fill_value=0).reindex(columns=["hors_qpv", "qpv"], fill_value=0)
    order = [r for r in result.objectifs["reservataire"] if r in table.index]
    table = table.reindex(order).reset_index()
    total = table["hors_qpv"] + table["qpv"]
    table["part_hors_qpv"] = (table["hors_qpv"] / total.where(total > 0)).round(4)
    return table


def synthese(result: Result, explanation: Explanation) -> pd.DataFrame:
    r = result.resume
    violated = ", ".join(r.get("regles_violees", [])) or "aucune"
    n = fr_number
    lines = [
        ("Instance", r.get("instance")), ("Bailleur", r.get("bailleur")), ("Département", r.get("departement")),
        ("Année", r.get("annee")), ("Libérations prévues (A)", n(r.get("liberations_prevues"))),
        ("Exclusions (B)", n(r.get("exclusions"))), ("Flux annuel C", n(r.get("flux"))),
        ("Attributions prévues", n(r.get("attributions_prevues"))),
        ("Adéquation (part des logements avec un candidat)", f"{100 * r.get('adequation', 0):.1f} %".replace(".", ",")),
        ("Règles non tenues", violated), ("Statut du solveur", r.get("statut_solveur")),
        ("Écart d'optimalité", fr_number_fine(r.get("ecart_optimalite") or 0.0)),
        ("Durée de l'analyse (s)", fr_number_fine(explanation.temps_s.get("total", 0.0))),
    ]
    return pd.DataFrame(lines, columns=["Indicateur", "Valeur"]).astype({"Valeur": str})


def _sans_report_nul(objectifs: pd.DataFrame) -> pd.DataFrame:
    """The carry-over column only when last year's bilan carried something."""
    if "report" in objectifs and not objectifs["report"].any():
        return objectifs.drop(columns="report")
    return objectifs


def report_tables(result: Result, explanation: Explanation) -> dict[str, Table]:
    e = explanation
    shares = share_table(result).assign(statut=lambda t: _status(t["statut"]))
    rules = result.contraintes
    return {
        "synthese": Table("Synthèse", "Synthèse", synthese(result, e)),
        "raisons": Table("Raisons", "Les raisons principales", pd.DataFrame({"Raison": e.raisons})),
        "objectifs": Table("Objectifs", "Objectif et plan par réservataire", _fr(_sans_report_nul(result.objectifs), {
            "reservataire": "Réservataire", "cible": "Objectif", "report": "dont report (revoyure)",
            "logements": "Logements orientés",
            "ecart": "Écart", "adequation": "Adéquation"})),
        "communes": Table("Communes", "Adéquation par commune", _fr(commune_table(result), {
            "commune": "Commune", "nom": "Nom", "logements": "Logements du flux", "hors_qpv": "dont hors QPV",
            "attributions_prevues": "Attributions prévues", "adequation": "Adéquation"})),
        "qpv": Table("QPV", "Logements QPV / hors QPV par réservataire", _fr(qpv_table(result), {
            "reservataire": "Réservataire", "hors_qpv": "Hors QPV", "qpv": "QPV", "part_hors_qpv": "Part hors QPV"})),
        "mixite": Table("Mixité", "Objectifs de mixité et publics prioritaires : minimum et plan", _fr(shares, {
            "regle": "Règle", "portee": "Portée", "attributions": "Attributions prévues", "logements": "Logements",
            "part_prevue": "Part prévue", "part_min": "Part minimale", "statut": "Statut"})),
        "violations": Table("Règles non tenues", "Règles qui ne peuvent pas être tenues, et pourquoi", _fr(
            e.violations, {"contrainte": "Règle", "portee": "Portée", "violation": "Écart", "cause": "Cause",
                           "explication": "Explication"}),
            "Aucune : toutes les règles sont tenues." if e.violations.empty else ""),
        "familles": Table("Familles", "Règles par famille, classées par impact", _fr(e.familles, {
            "famille": "Famille", "regle": "Règle", "source": "Source", "lignes": "Lignes", "saturees": "Saturées",
            "violees": "Violées", "impact": "Impact (valeurs marginales)", "violation": "Écart total",
            "lp_marginal": "Programme des valeurs marginales"})),
        "reservataires": Table("Par réservataire", "Règles par réservataire, classées par impact", _fr(
            e.reservataires, {"reservataire": "Réservataire", "saturees": "Saturées", "violees": "Violées",
                              "impact": "Impact", "violation": "Écart total",
                              "regles_contraignantes": "Règles les plus contraignantes"})),
        "couts": Table("Coût des règles", "Ce que coûte une règle (nouvelle résolution exacte)", _fr(e.couts, {
            "famille": "Famille", "variante": "Variante", "gain_attributions": "Gain d'attributions",
            "gain_adequation_ponderee": "Gain d'adéquation pondérée", "logements_deplaces": "Logements déplacés",
            "violation_avant": "Écarts avant", "violation_totale": "Écarts après", "temps_s": "Durée (s)"}),
            "Non calculé (analyse désactivée)." if e.couts.empty else ""),
        "saturees": Table("Règles saturées", "Règles saturées, par valeur marginale", _fr(e.saturees, {
            "contrainte": "Règle", "portee": "Portée", "valeur_marginale": "Valeur marginale",
            "lp_marginal": "Programme", "explication": "Explication"})),
        "vacance": Table("Vacance", "Risque de vacance commerciale : logements sans candidat attendu", _fr(
            e.vacance, {"reservataire": "Réservataire", "commune": "Commune", "typologie": "Typologie",
                        "logements": "Logements orientés", "attributions_prevues": "Attributions prévues",
                        "sans_candidat": "Sans candidat", "demandeurs_du_vivier": "Demandeurs du vivier",
                        "cause": "Cause"}), "Aucun logement sans candidat." if e.vacance.empty else ""),
        "demande": Table("Demande non servie", "Demande sans logement cette année", _fr(e.demande_non_servie, {
            "reservataire": "Réservataire", "niveau": "Niveau", "zone": "Zone", "typologie": "Typologie",
            "demandeurs": "Demandeurs", "attributions": "Attributions prévues", "non_servis": "Non servis",
            "logements_du_flux": "Logements du flux", "logements_orientes": "Logements orientés",
            "cause": "Cause"})),
        "contraintes": Table("Contraintes", "Toutes les règles", _fr(rules.assign(statut=_status(rules["statut"])), {
            "contrainte": "Règle", "portee": "Portée", "statut": "Statut", "marge": "Marge",
            "valeur_marginale": "Valeur marginale", "explication": "Explication"})),
        "plan": Table("Plan", "Plan d'orientation", result.plan),
        "attributions": Table("Attributions", "Attributions prévues", result.attributions),
    }


# ----------------------------------------------------------------------------- HTML

PERCENT = ("Adéquation", "Part prévue", "Part minimale", "Part hors QPV")


def _percent(frame: pd.DataFrame) -> pd.DataFrame:
    """Shares read as percentages in the HTML page (the workbook keeps numbers)."""
    out = frame.copy()
    for column in out.columns:
        if column in PERCENT:
            out[column] = pd.to_numeric(out[column], errors="coerce").map(
                lambda v: "" if pd.isna(v) else f"{100 * v:.1f} %".replace(".", ","))
    return out


def _cell(column: str, v) -> Cell:
    numeric = column != "Valeur" and (
        (isinstance(v, (int, float)) and not isinstance(v, bool)) or str(v).endswith(" %"))
    text = "" if v is None or (isinstance(v, float) and pd.isna(v)) else (
        fr_number_fine(v) if isinstance(v, float) else str(v))
    return Cell(text, "num" if numeric else "")


def _table(frame: pd.DataFrame, max_rows: int | None = None) -> HtmlTable:
    more = ""
    if max_rows is not None and len(frame) > max_rows:
        more = f"{len(frame) - max_rows} lignes de plus dans rapport.xlsx."
    return html_table(_percent(frame if max_rows is None else frame.head(max_rows)), _cell, more=more)


def _section(table: Table, max_rows: int | None = 40, image: str | None = None, intro: str = "") -> Section:
    parts: list = [Paragraph(intro)] if intro else []
    if image:
        parts.append(figure(image, table.title))
    if table.note:
        parts.append(Paragraph(table.note, "note"))
    elif len(table.frame):
        parts.append(_table(table.frame, max_rows))
    return Section(table.title, parts)


def _cards(result: Result, explanation: Explanation) -> Cards:
    r = result.resume
    n_violated = len(explanation.violations)
    return Cards([
        (f"{r['flux']} logements", "Flux annuel", ""),
        (f"{r['attributions_prevues']:.0f}".replace(".", ","), "Attributions prévues", ""),
        (f"{100 * r['adequation']:.1f} %".replace(".", ","), "Adéquation", "good"),
        (str(n_violated), "Règles non tenues", "bad" if n_violated else "good"),
        (f"{explanation.vacance['sans_candidat'].sum():.0f}" if len(explanation.vacance) else "0",
         "Logements sans candidat", "bad" if len(explanation.vacance) else "good"),
    ])


def _clipping_section(result: Result) -> Section | None:
    """Exclusions larger than the releases of their scope, clipped so that the plan is still produced."""
    clipped = result.contraintes.loc[result.contraintes["statut"] == "ecretee"]
    if clipped.empty:
        return None
    frame = _fr(clipped, {"portee": "Exclusion", "marge": "Écart", "explication": "Écrêtement"})
    return _section(Table("", "Exclusions écrêtées aux libérations prévues", frame),
                    intro="Ces exclusions dépassent les libérations prévues de leur périmètre : elles sont "
                          "ramenées à ces libérations et le plan est calculé quand même. Vérifier exclusions.csv.")


CONFORMITY_HEADINGS = {"regle": "Règle", "portee": "Portée", "source": "Source", "base": "Base",
                       "limite": "Limite", "valeur": "Valeur", "respectee": "Respectée"}


def _conformity_section(conformite: pd.DataFrame | None) -> Section | None:
    """The plan re-checked against the law from its files alone (flux-opt controler)."""
    if conformite is None:
        return None
    failed = int((conformite["respectee"] == "non").sum())
    intro = ("Contrôle indépendant du plan écrit (plan.csv, attributions.csv) : chaque règle légale est "
             "recalculée à partir de l'instance, sans le modèle. " + (f"{failed} ligne(s) non respectée(s)."
             if failed else "Toutes les lignes sont respectées."))
    return _section(Table("", "Conformité aux règles légales", _fr(conformite, CONFORMITY_HEADINGS)),
                    max_rows=None, intro=intro)


def rapport_html(result: Result, explanation: Explanation, conformite: pd.DataFrame | None = None) -> str:
    """The whole report as one self-contained HTML page (inline CSS, plots as base64 PNG)."""
    t = report_tables(result, explanation)
    r = result.resume
    communes = commune_table(result)
    shares = share_table(result)
    shares["libelle"] = shares["regle"] + " — " + shares["portee"].str.replace(
        " tous réservataires", "").str.replace(r" critère \S+$", "", regex=True).str.replace("réservataire ", "")
    reasons = Bullets([(x, "bad" if x.startswith("Règle non tenue") else "") for x in explanation.raisons])
    rules = t["contraintes"].frame
    negotiable = rules.loc[~result.contraintes["contrainte"].isin(STRUCTURAL).to_numpy()]
    sections = [
        Section("Synthèse", [_cards(result, explanation), _table(t["synthese"].frame)]),
        Section("Les raisons principales", [reasons]),
        _section(t["objectifs"], image=plots.targets_plot(result.objectifs)),
        _section(Table("", t["violations"].title, t["violations"].frame.drop(columns=["Explication"], errors="ignore"),
                       t["violations"].note)),
        _clipping_section(result),
        _section(t["couts"], intro="Chaque ligne résout de nouveau le plan entier avec la règle relâchée "
                                   "ou supprimée : le gain indiqué est exact, pas une estimation."),
        _section(t["familles"]),
        _section(t["reservataires"]),
        _section(t["saturees"], max_rows=20),
        _section(t["communes"], image=plots.communes_plot(communes) if len(communes) else None),
        _section(t["qpv"], image=plots.qpv_plot(qpv_table(result)) if len(result.plan) else None),
        _section(t["mixite"], image=plots.mixity_plot(shares) if len(shares) else None),
        _section(t["vacance"]),
        _section(t["demande"], max_rows=25),
        _section(Table("", "Règles négociables (hors conservation et viviers)", negotiable), max_rows=None),
        _conformity_section(conformite),
    ]
    return render("plan.html", title=f"Plan d'orientation du flux {r.get('annee', '')} — {r.get('bailleur', '')}",
                  subtitle=f"{r.get('instance', '')} — département {r.get('departement', '')}",
                  sections=[s for s in sections if s is not None])


# ----------------------------------------------------------------------------- Excel

def rapport_xlsx(result: Result, explanation: Explanation, path: str | Path) -> None:
    """One sheet per table, French headings, bold frozen header, readable column widths."""
    from openpyxl.styles import Font, PatternFill

    tables = report_tables(result, explanation)
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for table in tables.values():
            frame = table.frame if len(table.frame.columns) else pd.DataFrame({"": []})
            frame.to_excel(writer, sheet_name=table.sheet[:31], index=False, startrow=1)
            sheet = writer.sheets[table.sheet[:31]]
            sheet["A1"] = table.title + (f" — {table.note}" if table.note else "")
            sheet["A1"].font = Font(bold=True, size=13)
            for cell in sheet[2]:
                cell.font = Font(bold=True)
                cell.fill = PatternFill("solid", fgColor="E6ECF2")
            sheet.freeze_panes = "A3"
            for i, column in enumerate(frame.columns, start=1):
                values = [str(column)] + [str(v) for v in frame[column].head(200)]
                width = min(80, max(8, max(len(v) for v in values) + 2))
                sheet.column_dimensions[sheet.cell(row=2, column=i).column_letter].width = width


def report_writers(result: Result, explanation: Explanation, conformite: pd.DataFrame | None = None) -> dict:
    """Writers for `write_plan(..., extra=...)`: the report files and explication.json, written
    atomically with the plan's other files; with a conformity table, conformite.csv too."""
    from flux_opt.explanation.analysis import EXPLICATION_JSON
    from flux_opt.report.exports import write_csv

    writers = {
        "rapport.html": lambda p: Path(p).write_text(rapport_html(result, explanation, conformite), encoding="utf-8"),
        "rapport.xlsx": lambda p: rapport_xlsx(result, explanation, p),
        EXPLICATION_JSON: lambda p: explanation.write_json(p),
    }
    if conformite is not None:
        writers["conformite.csv"] = lambda p: write_csv(conformite, p)
    return writers
