"""The batch's pages for people: `synthese.html` / `synthese.xlsx` (the national summary) and, per
département, `contingent.html` / `contingent.xlsx` (the State's contingent, its bailleurs added up).
The figures come from flux_opt/scale/departement.py; this module only lays them out, with names."""

from __future__ import annotations

import pandas as pd

from flux_opt.explanation.sentences import fr_number, fr_percent
from flux_opt.model.registry import PLAFOND_AGENTS, label
from flux_opt.phases import LABELS
from flux_opt.report.html import Cards, Cell, Folded, Paragraph, Section, figure, html_table, render
from flux_opt.report.plots import histogram_plot
from flux_opt.report.tables import PERCENT, Table
from flux_opt.report.workbook import workbook_bytes
from flux_opt.scale.departement import instance_label

SLOW_PHASES = ("lecture", "construction", "resolution", "analyse", "rapport")
HEADINGS = {
    "departement": "Département", "instances": "Instances", "flux": "Flux", "attributions_prevues": "Attributions prévues",
    "adequation": "Adéquation", "conformes": "Conformes", "regles_violees": "Règles non tenues", "invalides": "Invalides",
    "echecs": "Échecs", "secondes": "Secondes", "bailleur": "Bailleur", "instance": "Instance", "code": "Code",
    "prefet": "Préfet", "prefet_agents": "Agents de l'État", "etat": "État (préfet et agents)",
    "part_etat": "Part de l'État", "plafond_etat": "Plafond de l'État (⌊30 %⌋)", PLAFOND_AGENTS: "Plafond des agents (⌊5 %⌋)",
    "flux_hors_qpv": "Flux hors QPV", "etat_hors_qpv": "État hors QPV", "taux_hors_qpv": "Taux hors QPV",
    "etat_tenu": "30 % tenu", "agents_tenu": "5 % tenu", "hors_qpv_tenu": "Hors QPV ≥ 30 %", "commune": "Commune",
    "epci": "EPCI", "bailleurs": "Bailleurs", "territoire": "Territoire", "logements": "Logements des collectivités",
    "sans_financement": "dont sans financement", "plafond": "Plafond (⌊20 %⌋)", "tenu": "Plafond tenu",
    "regle": "Règle", "part": "Part des instances", "cause": "Cause la plus fréquente",
    "cause_instances": "Instances de cette cause", "exemple": "Exemple (la phrase d'une instance)",
}
CONFORMITY = [("conformes", "conformes", "good"), ("regles_violees", "règles non tenues", "bad"),
              ("invalides", "données invalides", "bad"), ("echecs", "échecs", "bad")]


def _cell(column: str, value) -> Cell:
    if isinstance(value, (bool,)) or (hasattr(value, "dtype") and value.dtype == bool):
        return Cell("oui" if value else "non", "num" if value else "neg")
    if column in PERCENT:
        return Cell(fr_percent(float(value)) if value != "" and pd.notna(value) else "—", "num")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Cell(fr_number(value), "num")
    return Cell("" if pd.isna(value) else str(value))


def _french(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns=HEADINGS)


def _sheet(frame: pd.DataFrame) -> pd.DataFrame:
    """French headings, and oui / non rather than TRUE / FALSE in a workbook."""
    flags = [c for c in frame.columns if pd.api.types.is_bool_dtype(frame[c])]
    return _french(frame.assign(**{c: frame[c].map({True: "oui", False: "non"}) for c in flags}))


def _table(frame: pd.DataFrame, caption: str = "", more: str = ""):
    return html_table(_french(frame), _cell, caption, more)


def _named(code: str, name: str) -> str:
    return f"{name} ({code})" if name and name != code else str(code)


# ---------------------------------------------------------------------------- national summary


def _conformity_cards(total: pd.Series) -> Cards:
    return Cards([(fr_number(total[key]), text, css if total[key] else "") for key, text, css in CONFORMITY])


def _rules_table(regles: pd.DataFrame) -> pd.DataFrame:
    return regles.assign(regle=[label(r) for r in regles["regle"]])


def _slowest(view) -> pd.DataFrame:
    rows = []
    for line in view.plus_lentes.itertuples():
        phases = view.phases.get(line.instance, {})
        rows.append({"instance": instance_label(line), "flux": line.flux, "secondes": line.secondes,
                     **{LABELS[p]: phases.get(p, 0.0) for p in SLOW_PHASES},
                     "code": int(line.code)})
    return _french(pd.DataFrame(rows))


def national_html(view) -> str:
    s, national = view.synthese, view.par_departement
    total = national.set_index("departement").loc["ensemble"]
    adequacy = s.loc[s["code"].isin([0, 3]), "adequation"]
    sections = [
        Section("Instances par conformité", [
            _conformity_cards(total),
            Paragraph(f"{fr_number(total['instances'])} instances, {fr_number(total['flux'])} logements de flux, "
                      f"adéquation d'ensemble {fr_percent(total['adequation'])}. Une instance « règles non tenues » "
                      "a un plan, mais certaines règles ne peuvent pas être tenues avec ses données."),
            _table(national, "Par département")]),
        Section("Règles non tenues", [_table(_rules_table(view.regles), more=(
            "Cause : ce que les données rendent impossible, lieu et chiffres ôtés ; l'exemple est la phrase "
            "complète d'une instance (son contraintes.csv et son rapport donnent toutes les autres)."))]
                if len(view.regles) else [Paragraph("Toutes les règles sont tenues dans toutes les instances.")]),
        Section("Part de l'État et adéquation", [
            figure(histogram_plot(s["part_etat"], "Part de l'État (préfet et agents) dans le flux de chaque instance",
                                  "% du flux de l'instance", 0.30, "plafond légal 30 % (CCH R.441-5-2)"),
                   "répartition des parts de l'État"),
            figure(histogram_plot(adequacy, "Adéquation de chaque plan (attributions prévues ÷ flux)",
                                  "% du flux"), "répartition de l'adéquation")]),
        Section("Instances les plus lentes", [html_table(_slowest(view), _cell)]),
        Section("Vue par département", [Paragraph(
            "Le contingent de l'État de chaque département, tous ses bailleurs ensemble (préfet et agents par "
            "commune, plafonds de 30 % et 5 %, hors QPV, collectivités par territoire) : "
            "departements/<code>/contingent.html et .xlsx, et les fichiers bailleurs.csv, communes.csv, "
            "collectivites.csv.")]),
    ]
    return render("lot.html", title="Synthèse du lot", sections=sections,
                  subtitle=f"{fr_number(total['instances'])} instances dans {len(national) - 1} départements")


def national_workbook(view) -> bytes:
    instances = view.synthese.assign(instance=[instance_label(line) for line in view.synthese.itertuples()])
    instances = instances[["instance", "departement", "flux", "adequation", "part_etat", "code", "regles_violees",
                           "secondes"]].assign(regles_violees=lambda f: [
                               ", ".join(label(r) for r in v.split(";") if r) for v in f["regles_violees"]])
    return workbook_bytes([
        Table("Départements", "Instances par département", _french(view.par_departement), total=True),
        Table("Règles non tenues", "Règles non tenues et leur cause la plus fréquente",
              _french(_rules_table(view.regles))),
        Table("Instances", "Chaque instance", _french(instances)),
        Table("Plus lentes", "Instances les plus lentes (secondes par phase)", _slowest(view)),
    ])


# ---------------------------------------------------------------------------- one département


def _bailleurs_frame(view) -> pd.DataFrame:
    b = view.bailleurs.copy()
    b["bailleur"] = [("Tous les bailleurs" if i == "ensemble" else _named(i, n))
                     for i, n in zip(b["instance"], b["bailleur_nom"])]
    return b.drop(columns=["instance", "bailleur_nom"])


def _communes_frame(view) -> pd.DataFrame:
    c = view.communes.copy()
    c["commune"] = [_named(code, name) for code, name in zip(c["commune"], c["commune_nom"])]
    c["epci"] = [_named(code, name) for code, name in zip(c["epci"], c["epci_nom"])]
    return c.drop(columns=["commune_nom", "epci_nom"])


def _collectivites_frame(view) -> pd.DataFrame:
    c = view.collectivites.copy()
    c["territoire"] = [_named(code, name) for code, name in zip(c["territoire"], c["territoire_nom"])]
    return c.drop(columns=["territoire_nom"])


def _long(table, what: str, rows: int = 40):
    """A table of more than `rows` lines is folded (one click unfolds it)."""
    return Folded(f"{len(table.rows)} {what} : cliquer pour déplier", table) if len(table.rows) > rows else table


def departement_html(view) -> str:
    note = (f"Sans plan, donc hors de ces totaux : {', '.join(view.absentes)}." if view.absentes else "")
    ensemble = view.bailleurs.iloc[-1]
    sections = [
        Section("Contingent de l'État, bailleur par bailleur et ensemble", [
            Paragraph(f"L'État (préfet et agents) reçoit {fr_number(ensemble['etat'])} logements sur "
                      f"{fr_number(ensemble['flux'])} ({fr_percent(ensemble['part_etat'])}), pour un plafond de "
                      f"{fr_number(ensemble['plafond_etat'])} (30 % du flux de tous les bailleurs, arrondi à "
                      "l'entier inférieur, CCH R.441-5-2) ; les agents de l'État au plus 5 %. Hors QPV, la part "
                      "du préfet ne peut être inférieure à 30 % du flux hors QPV, sauf stipulation contraire."),
            _table(_bailleurs_frame(view), more=note)]),
        Section("Par commune, tous bailleurs ensemble", [Paragraph(
            "Sauf stipulation contraire, le taux du préfet est le même dans chaque commune (CCH R.441-5-2 II)."),
            _long(_table(_communes_frame(view)), "communes")]),
        Section("Collectivités, ensemble par territoire", [_table(_collectivites_frame(view), more=(
            "Les collectivités d'un territoire sans financement apporté restent ensemble sous 20 % de son flux "
            "(CCH R.441-5)."))] if len(view.collectivites) else [Paragraph("Aucune collectivité réservataire.")]),
    ]
    return render("lot.html", title=f"Contingent de l'État — département {view.code}", sections=sections,
                  subtitle=f"{len(view.bailleurs) - 1} bailleur(s)")


def departement_workbook(view) -> bytes:
    return workbook_bytes([
        Table("Bailleurs", f"Contingent de l'État, département {view.code}", _sheet(_bailleurs_frame(view)),
              total=True),
        Table("Communes", "Par commune, tous bailleurs ensemble", _french(_communes_frame(view))),
        Table("Collectivités", "Collectivités, ensemble par territoire", _sheet(_collectivites_frame(view))),
    ])
