"""The report for people: `rapport.html` (one self-contained file) and `rapport.xlsx` (one sheet per table).

Both show the same French tables (`plan_tables.report_tables`), built from the result and its
explanation only: a saved plan can be re-rendered without the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from flux_opt.explanation.analysis import Explanation
from flux_opt.plan.evaluation import Evaluation
from flux_opt.explanation.sentences import fr_number, fr_number_fine, fr_percent
from flux_opt.model.registry import label, names
from flux_opt.report import bars
from flux_opt.report.html import (BarChart, Bullets, Cards, Cell, Folded, HtmlTable, Paragraph, Section,
                                  html_table, render)
from flux_opt.plan.result import Result
from flux_opt.report.annexes import AnnexDocument, file_names
from flux_opt.report.note_etat import note_section, note_sheet
from flux_opt.report.evaluation import evaluation_section
from flux_opt.report.plan_tables import ReportTables, french_headings, named
from flux_opt.report.tables import PERCENT, Share, Table
from flux_opt.report.workbook import workbook_bytes
from flux_opt.explanation.analysis import EXPLICATION_JSON
from flux_opt.report.exports import write_csv

STRUCTURAL = names(structural=True)


# ----------------------------------------------------------------------------- HTML



def _percent(frame: pd.DataFrame) -> pd.DataFrame:
    """Shares read as percentages in the HTML page (the workbook keeps numbers)."""
    out = frame.copy()
    for column in out.columns:
        if column in PERCENT:
            out[column] = pd.to_numeric(out[column], errors="coerce").map(
                lambda v: "" if pd.isna(v) else f"{100 * v:.1f} %".replace(".", ","))
    return out


def _cell(column: str, v) -> Cell:
    """French figures (1 234,5), right-aligned, except in the synthesis' mixed « Valeur » column."""
    figure = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
    numeric = column != "Valeur" and (figure or str(v).endswith(" %"))
    if v is None or (figure and pd.isna(v)):
        text = ""
    elif isinstance(v, Share):
        text = fr_percent(v)
    elif figure:
        text = fr_number_fine(float(v)) if isinstance(v, (float, np.floating)) else fr_number(v)
    else:
        text = str(v)
    return Cell(text, "num" if numeric else "")


def _table(frame: pd.DataFrame, max_rows: int | None = None) -> HtmlTable:
    more = ""
    if max_rows is not None and len(frame) > max_rows:
        more = f"{len(frame) - max_rows} lignes de plus dans rapport.xlsx."
    return html_table(_percent(frame if max_rows is None else frame.head(max_rows)), _cell, more=more)


def _section(table: Table, max_rows: int | None = 40, chart: BarChart | None = None, intro: str = "") -> Section:
    parts: list = [Paragraph(intro)] if intro else []
    if chart is not None:
        parts.append(chart)
    if table.note:
        parts.append(Paragraph(table.note, "note"))
    elif len(table.frame):
        parts.append(_table(table.frame, max_rows))
    return Section(table.title, parts)


def _cards(result: Result, explanation: Explanation) -> Cards:
    r = result.resume
    n_violated = len(explanation.violations)
    return Cards([
        (f"{fr_number(r['flux'])} logements", "Flux annuel", ""),
        (f"environ {fr_number(round(r['attributions_prevues']))}", "Attributions prévues", ""),
        (fr_percent(r["adequation"]), "Adéquation", "good"),
        (str(n_violated), "Règles non tenues", "bad" if n_violated else "good"),
        (fr_number(round(explanation.vacance["sans_candidat"].sum())) if len(explanation.vacance) else "0",
         "Logements sans candidat", "bad" if len(explanation.vacance) else "good"),
    ])


def _clipping_section(result: Result) -> Section | None:
    """Exclusions larger than the releases of their scope, clipped so that the plan is still produced."""
    clipped = result.contraintes.loc[result.contraintes["statut"] == "ecretee"]
    if clipped.empty:
        return None
    frame = french_headings(clipped, {"portee": "Exclusion", "marge": "Écart", "explication": "Écrêtement"})
    return _section(Table("", "Exclusions écrêtées aux libérations prévues", frame),
                    intro="Ces exclusions dépassent les libérations prévues de leur périmètre : elles sont "
                          "ramenées à ces libérations et le plan est calculé quand même. Vérifier exclusions.csv.")


CONFORMITY_HEADINGS = {"regle": "Règle", "portee": "Portée", "source": "Source", "base": "Base",
                       "limite": "Limite", "valeur": "Valeur", "respectee": "Respectée"}


def _conformity_section(conformite: pd.DataFrame | None, noms) -> Section | None:
    """The plan re-checked against the law from its files alone (flux-opt controler)."""
    if conformite is None:
        return None
    conformite = conformite.assign(regle=conformite["regle"].map(label),
                                   portee=conformite["portee"].astype(str).map(noms.scope))
    failed = int((conformite["respectee"] == "non").sum())
    intro = ("Contrôle indépendant du plan écrit (plan.csv, attributions.csv) : chaque règle légale est "
             "recalculée à partir de l'instance, sans le modèle. " + (f"{failed} ligne(s) non respectée(s)."
             if failed else "Toutes les lignes sont respectées."))
    return _section(Table("", "Conformité aux règles légales", french_headings(conformite, CONFORMITY_HEADINGS)),
                    max_rows=None, intro=intro)


def rapport_html(result: Result, explanation: Explanation, tables: ReportTables | None = None,
                 conformite: pd.DataFrame | None = None, evaluation: Evaluation | None = None,
                 note: Section | None = None) -> str:
    """The whole report as one self-contained HTML page (inline CSS, bar charts in HTML), in the order
    a decision-maker reads: synthesis, who gets what, the rules (`note`: the note for the State), the
    reasons; the optimiser's diagnostics in a technical annex at the end."""
    tables = tables or ReportTables.of(result, explanation)
    t = tables.main
    r = result.resume
    communes = tables.frames.communes
    shares = tables.frames.shares.copy()
    shares["libelle"] = shares["regle"] + " — " + shares["portee"].str.replace(
        " tous réservataires", "").str.replace(r" critère \S+$", "", regex=True).str.replace("réservataire ", "")
    reasons = Bullets([(x, "bad" if x.startswith("Règle non tenue") else "") for x in explanation.raisons])
    rules = t["contraintes"].frame
    negotiable = rules.loc[~result.contraintes["contrainte"].isin(STRUCTURAL).to_numpy()]
    held = [Paragraph(r["cadre_legal"], "note")] if r.get("cadre_legal") and not r.get("hors_cadre_legal") else []
    sections = [
        Section("Synthèse", [_cards(result, explanation), *held, _table(t["synthese"].frame)]),
        # who gets what
        _section(t["objectifs"], chart=bars.targets_chart(named(result.objectifs, result.noms))),
        _annexes(result),
        _section(t["qpv"], chart=bars.qpv_chart(tables.frames.qpv) if len(result.plan) else None),
        _section(t["communes"], chart=bars.communes_chart(communes) if len(communes) else None),
        # the rules
        note,
        _section(t["mixite"], chart=bars.mixity_chart(shares) if len(shares) else None),
        _section(Table("", t["violations"].title, t["violations"].frame.drop(columns=["Explication"], errors="ignore"),
                       t["violations"].note)),
        _clipping_section(result),
        # the reasons
        Section("Les raisons principales", [reasons]),
        _section(t["viviers"], intro=POOL_INTRO) if len(t["viviers"].frame) else None,
        evaluation_section(evaluation) if evaluation is not None else None,
        _section(t["glossaire"], max_rows=None),
        # the technical annex: how the optimiser got there
        Section("Annexe technique", [Paragraph(
            "Pour l'analyste : qualité de la résolution, coût des règles recalculé, règles sans marge, "
            "vacance possible et demande non servie. Ces chiffres sont des espérances du modèle.", "note")],
            id="technique"),
        _section(t["diagnostics"], max_rows=None),
        _conformity_section(conformite, result.noms),  # every line of the check the note sums up
        _section(t["couts"], intro="Chaque ligne résout de nouveau le plan entier avec la règle relâchée "
                                   "ou supprimée : le gain indiqué est mesuré, pas estimé, à la précision du "
                                   "solveur près (colonne « Précision du gain ») ; un gain plus petit n'est pas "
                                   "un effet de la règle."),
        _section(t["familles"]),
        _section(t["reservataires"]),
        _section(t["saturees"], max_rows=20),
        _section(t["vacance"]),
        _section(t["demande"], max_rows=25),
        _section(Table("", "Règles négociables (hors conservation et viviers)", negotiable), max_rows=60),
    ]
    return render("plan.html", banner=legal_banner(r), title=f"Plan d'orientation du flux {r.get('annee', '')} — {r.get('bailleur', '')}",
                  subtitle=f"{r.get('instance', '')} — département {r.get('departement', '')}",
                  sections=[s for s in sections if s is not None])


POOL_INTRO = ("Les réservataires proposent les candidats de leurs viviers : un logement va là où des ménages qui "
              "l'accepteront attendent. Pour chaque réservataire, ses logements par financement, la composition de "
              "son vivier, la part de ses demandeurs qui accepte chaque niveau de loyer (selon leur quartile de "
              "revenus) et son adéquation : la part de ses logements qui devraient être attribués dans le délai de "
              "la convention.")


def _annexes(result: Result) -> Section:
    """The annex each réservataire receives (annexes/), one line each: its dwellings and share of the flux."""
    flux = result.resume.get("flux", 0)
    oriented = result.plan.groupby("reservataire")["logements"].sum()
    names = {rid: result.noms.reservataire(rid) for rid in result.objectifs["reservataire"]}
    files = file_names(names)
    items = [(f"{name} : {fr_number(int(oriented.get(rid, 0)))} logements "
              f"({fr_percent(oriented.get(rid, 0) / flux if flux else 0)} du flux) — annexes/{files[rid]}.html "
              f"et .xlsx", "") for rid, name in names.items()]
    return Section("Les annexes à envoyer à chaque réservataire", [
        Paragraph("Chaque réservataire reçoit sa propre annexe, et elle seule : ses logements par commune, QPV, "
                  "typologie et financement, ses totaux et sa part du flux, son objectif et sa base légale. "
                  "Les fichiers sont dans le dossier annexes/ du plan, prêts à imprimer (A4 paysage)."),
        Bullets(items)], id="annexes")


# ----------------------------------------------------------------------------- Excel

def rapport_xlsx(result: Result, explanation: Explanation, path: str | Path) -> None:
    Path(path).write_bytes(xlsx_bytes(result, explanation))


# The workbook's sheets in reading order: the people's part, then the technical annex and the detail.
SHEETS = ("synthese", "objectifs", "qpv", "communes", "mixite", "violations", "raisons", "glossaire",
          "diagnostics", "couts", "familles", "reservataires", "saturees", "viviers", "vacance", "demande",
          "contraintes", "plan", "attributions")


def xlsx_bytes(result: Result, explanation: Explanation, tables: ReportTables | None = None,
               first: list[Table] | None = None) -> bytes:
    """The workbook: one sheet per report table in reading order (`first`, e.g. the note for the
    State, after the synthesis); each réservataire's own annex is in annexes/."""
    tables = tables or ReportTables.of(result, explanation)
    ordered = [tables.main[k] for k in SHEETS if k in tables.main]
    return workbook_bytes(ordered[:1] + list(first or []) + ordered[1:], banner=legal_banner(result.resume))


def legal_banner(resume: dict) -> str | None:
    """The words on every page and sheet of a plan explored outside the law (hors_cadre_legal)."""
    return resume.get("cadre_legal") if resume.get("hors_cadre_legal") else None


def report_writers(result: Result, explanation: Explanation, conformite: pd.DataFrame | None = None,
                   evaluation: Evaluation | None = None, note: AnnexDocument | None = None) -> dict:
    """Writers for `write_plan(..., extra=...)`: the report files and explication.json, written
    atomically with the plan's other files; with a conformity table, conformite.csv too; with the
    note for the State, its rules in the page and its sheet in the workbook."""

    # Rendered now (the caller times the report apart from the writing); written later, atomically.
    tables = ReportTables.of(result, explanation)  # built once for the page and the workbook
    page = rapport_html(result, explanation, tables, conformite, evaluation,
                        note_section(note) if note is not None else None).encode("utf-8")
    book = xlsx_bytes(result, explanation, tables, [note_sheet(note)] if note is not None else None)
    writers = {
        "rapport.html": lambda p: Path(p).write_bytes(page),
        "rapport.xlsx": lambda p: Path(p).write_bytes(book),
        EXPLICATION_JSON: lambda p: explanation.write_json(p),
    }
    if conformite is not None:
        writers["conformite.csv"] = lambda p: write_csv(conformite, p)
    return writers
