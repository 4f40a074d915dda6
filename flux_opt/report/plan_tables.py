"""The French tables of the plan report: `rapport.html` and `rapport.xlsx` show the same ones.

Built from the result and its explanation only (a saved plan can be re-rendered without the model).
People read names (réservataires, communes, EPCI) beside the codes, plain French statuses, figures
as numbers (the page and the workbook format them), and a short glossary for the words that stay.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from flux_opt.explanation.analysis import Explanation
from flux_opt.explanation.marginal import MAX_PROBES
from flux_opt.model.registry import label
from flux_opt.explanation.sentences import STATUS, plan_quality, share_table
from flux_opt.plan.names import Names
from flux_opt.plan.result import Result
from flux_opt.report.tables import POOL_ACCEPTANCE, Share, Table

GLOSSARY = [
    ("Flux annuel", "Logements qui se libéreront dans l'année (A), moins ceux qui sont exclus de la gestion en "
                    "flux (B) : C = A − B (CCH R.441-5)."),
    ("Réservataire", "Celui qui dispose d'une part du flux par convention : préfet, collectivité, Action "
                     "Logement, employeur ; le bailleur reçoit le reste."),
    ("QPV", "Quartier prioritaire de la politique de la ville."),
    ("EPCI", "Intercommunalité (numéro SIREN entre parenthèses)."),
    ("CIA", "Convention intercommunale d'attribution : objectifs de mixité de l'EPCI (CCH L.441-1-5)."),
    ("Adéquation", "Part des logements orientés qui devraient être attribués à un demandeur du vivier du "
                   "réservataire dans le délai de la convention (attributions prévues / logements)."),
    ("Score d'adéquation", "Attributions prévues, les ménages prioritaires comptant un peu plus : ce que le plan "
                           "cherche à rendre le plus grand possible."),
    ("Règle tenue, sans marge", "La règle est respectée mais au plus juste : elle limite le plan."),
    ("Gain possible", "Ce que gagnerait le score d'adéquation si la règle avait une unité de plus de latitude "
                      "(un logement, une attribution, un demandeur) ; 0 : la règle ne coûte rien."),
    ("Coût d'une règle", "Le plan entier recalculé avec la règle relâchée d'un point ou supprimée : un gain exact."),
    ("Écart d'optimalité", "Distance relative maximale entre ce plan et le meilleur plan possible."),
    ("Vacance commerciale", "Logement orienté à un réservataire qui n'a pas de candidat attendu pour lui."),
]


def french_headings(frame: pd.DataFrame, headings: dict[str, str]) -> pd.DataFrame:
    return frame[[c for c in headings if c in frame.columns]].rename(columns=headings)


def _status(series: pd.Series) -> pd.Series:
    return series.map(STATUS).fillna(series)


def named(frame: pd.DataFrame, noms: Names, beside: tuple[str, ...] = ("commune", "epci")) -> pd.DataFrame:
    """Names a person knows in place of the codes of a table's rule (`contrainte`), `reservataire` and
    `portee`, and commune and EPCI names beside their codes."""
    out = frame.copy()
    if "contrainte" in out:
        out["contrainte"] = out["contrainte"].map(label)
    if "reservataire" in out:
        out["reservataire"] = out["reservataire"].map(noms.reservataire)
    if "portee" in out:
        out["portee"] = out["portee"].astype(str).map(noms.scope)
    if "commune" in out and "commune" in beside:
        out.insert(out.columns.get_loc("commune") + 1, "commune_nom", out["commune"].map(noms.commune_name))
    if "epci" in out and "epci" in beside:
        out.insert(out.columns.get_loc("epci") + 1, "epci_nom", out["epci"].map(noms.epci_name))
    return out


def commune_table(result: Result) -> pd.DataFrame:
    plan, att = result.plan, result.attributions
    flux = plan.groupby("commune")["logements"].sum()
    hors_qpv = plan.loc[plan["qpv"] != "oui"].groupby("commune")["logements"].sum()
    matched = att.groupby("commune")["attributions_prevues"].sum()
    table = pd.DataFrame({"logements": flux}).assign(
        hors_qpv=hors_qpv.reindex(flux.index).fillna(0).astype(int),
        attributions_prevues=matched.reindex(flux.index).fillna(0).round(2))
    table["adequation"] = (table["attributions_prevues"] / table["logements"]).round(4)
    table = table.reset_index()
    table["nom"] = table["commune"].map(result.noms.commune_name)
    table["epci_nom"] = table["commune"].map(plan.groupby("commune")["epci"].first()).map(result.noms.epci_label)
    table["libelle"] = table["commune"].map(result.noms.commune)
    return table


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
    """Indicator, value (a number where it is one: counts as integers, shares as Share), unit."""
    r = result.resume
    violated = ", ".join(label(v) for v in r.get("regles_violees", [])) or "aucune"
    lines = [
        ("Bailleur", r.get("bailleur"), ""), ("Département", str(r.get("departement")), ""),
        ("Année", str(r.get("annee")), ""),
        ("Libérations prévues (A)", round(r.get("liberations_prevues", 0)), "logements"),
        ("Exclusions (B)", round(r.get("exclusions", 0)), "logements"), ("Flux annuel C", r.get("flux"), "logements"),
        ("Attributions prévues (espérance)", round(r.get("attributions_prevues", 0)), "attributions (environ)"),
        ("Adéquation (part des logements avec un candidat)", Share(r.get("adequation", 0)), ""),
        ("Règles non tenues", violated, ""),
    ]
    return pd.DataFrame(lines, columns=["Indicateur", "Valeur", "Unité"])


def diagnostics(result: Result, explanation: Explanation) -> pd.DataFrame:
    """The optimiser's own figures, for the technical annex: quality, gap, score, timings."""
    r = result.resume
    gap = r.get("ecart_optimalite")
    t = explanation.temps_s
    lines = [
        ("Instance", r.get("instance"), ""), ("Qualité du plan", plan_quality(r), ""),
        ("Écart d'optimalité", None if gap is None else Share(gap), ""),
        ("Score d'adéquation (objectif du solveur)", round(r.get("adequation_ponderee", 0), 1), "points"),
        ("Construction du modèle", round(r.get("temps_construction_s", 0), 1), "s"),
        ("Résolution", round(r.get("temps_resolution_s", 0), 1), "s"),
        ("Analyse des règles", round(t.get("total", 0.0), 1), "s"),
    ]
    if t.get("valeurs_duales"):
        lines.append(("Gain possible des règles", DUAL_ESTIMATES.format(n=t["valeurs_duales"]), ""))
    if t.get("couts_interrompus"):
        lines.append(("Coût des règles", "interrompu : budget de temps ([analyse] temps_max_s) épuisé", ""))
    return pd.DataFrame(lines, columns=["Indicateur", "Valeur", "Unité"])


# What the analysis did not measure, and how to ask for it (marginal.marginal_values).
DUAL_ESTIMATES = ("{n} ligne(s) de règle tenue sans marge ou non tenue : valeur duale du programme linéaire (une borne "
                  f"haute du gain), non mesurée, au-delà des {MAX_PROBES} premières lignes mesurées ou du budget de "
                  "temps de l'analyse ; pour toutes les mesurer, fixer [analyse] temps_max_s dans instance.toml.")


def _without_zero_carryover(targets: pd.DataFrame) -> pd.DataFrame:
    """The carry-over column only when last year's bilan carried something."""
    if "report" in targets and not targets["report"].any():
        return targets.drop(columns="report")
    return targets


POOL_HEADINGS = {
    "reservataire": "Réservataire", "logements": "Logements", "PLAI": "PLAI", "PLUS": "PLUS", "PLS": "PLS",
    "autre": "Financement ancien", "part_hors_qpv": "Part hors QPV", "demandeurs": "Demandeurs du vivier",
    "part_q1": "Part du 1er quartile", "part_prioritaires": "Part des publics prioritaires",
    **{f"acceptation_{f}": POOL_ACCEPTANCE[f] for f in POOL_ACCEPTANCE},
    "attributions_prevues": "Attributions prévues", "part_attribuee": "Adéquation"}


# Expected counts of people and attributions: whole numbers where people read them (the CSVs keep decimals).
EXPECTED_COUNTS = ("Attributions prévues", "Demandeurs", "Demandeurs du vivier", "Non servis", "Sans candidat",
                   "Base (logements ; publics prioritaires : attributions)")


def whole_counts(table: Table) -> Table:
    frame = table.frame.copy()
    for column in EXPECTED_COUNTS:
        if column in frame and pd.api.types.is_float_dtype(frame[column]):
            frame[column] = frame[column].round().astype("Int64")
    return Table(table.sheet, table.title, frame, table.note, table.total, table.preamble)


def report_tables(result: Result, explanation: Explanation, frames: PlanFrames | None = None) -> dict[str, Table]:
    frames = frames or PlanFrames.of(result)
    return {key: whole_counts(table) if key not in ("plan", "attributions") else table
            for key, table in _report_tables(result, explanation, frames).items()}


def _report_tables(result: Result, explanation: Explanation, frames: PlanFrames) -> dict[str, Table]:
    e, noms = explanation, result.noms
    shares = frames.shares.assign(statut=lambda t: _status(t["statut"]))
    targets = _without_zero_carryover(result.objectifs).assign(nom=result.objectifs["reservataire"].map(noms.reservataire))
    rules = named(result.contraintes, noms)
    return {
        "synthese": Table("Synthèse", "Synthèse", synthese(result, e)),
        "diagnostics": Table("Diagnostics", "Diagnostics de l'optimiseur", diagnostics(result, e)),
        "raisons": Table("Raisons", "Les raisons principales", pd.DataFrame({"Raison": e.raisons})),
        "objectifs": Table("Objectifs", "Objectif et plan par réservataire", french_headings(targets, {
            "nom": "Réservataire", "reservataire": "Code", "cible": "Objectif", "report": "dont report (revoyure)",
            "logements": "Logements orientés", "ecart": "Écart", "adequation": "Adéquation"})),
        "communes": Table("Communes", "Adéquation par commune", french_headings(frames.communes, {
            "commune": "Commune", "nom": "Nom", "epci_nom": "EPCI", "logements": "Logements du flux",
            "hors_qpv": "dont hors QPV", "attributions_prevues": "Attributions prévues", "adequation": "Adéquation"})),
        "qpv": Table("QPV", "Logements QPV / hors QPV par réservataire", french_headings(frames.qpv, {
            "reservataire": "Réservataire", "hors_qpv": "Hors QPV", "qpv": "QPV", "part_hors_qpv": "Part hors QPV"})),
        "viviers": Table("Viviers", "Qui reçoit quels logements, et pourquoi", french_headings(
            named(e.viviers, noms).drop(columns=["gestion"], errors="ignore"), POOL_HEADINGS)),
        "mixite": Table("Mixité", "Objectifs de mixité et publics prioritaires : minimum et plan", french_headings(shares, {
            "regle": "Règle", "portee": "Portée", "attributions": "Attributions prévues",
            "logements": "Base (logements ; publics prioritaires : attributions)",
            "part_prevue": "Part prévue", "part_min": "Part minimale", "statut": "Statut"})),
        **_rule_tables(result, e, noms),
        **_shortfall_tables(e, noms),
        "contraintes": Table("Règles", "Les règles, des plus importantes aux moins contraignantes", french_headings(
            rules.assign(statut=_status(rules["statut"])), {
                "contrainte": "Règle", "portee": "Portée", "statut": "Statut", "marge": "Marge",
                "valeur_marginale": "Gain possible", "explication": "Explication"})),
        "glossaire": Table("Glossaire", "Les mots du rapport", pd.DataFrame(GLOSSARY, columns=["Terme", "Sens"])),
        "plan": _detail("Plan", "Plan d'orientation", result.plan, noms, "plan.csv"),
        "attributions": _detail("Attributions", "Attributions prévues", result.attributions, noms, "attributions.csv"),
    }


MAX_DETAIL_ROWS = 2_000  # beyond, the CSV has every line and the annexes the whole plan by réservataire


def _detail(sheet: str, title: str, frame: pd.DataFrame, noms: Names, csv: str) -> Table:
    """A detail table (plan, attributions) with the commune names; its first lines only when long."""
    note = f"{MAX_DETAIL_ROWS} premières lignes sur {len(frame)} : toutes dans {csv}" \
        if len(frame) > MAX_DETAIL_ROWS else ""
    return Table(sheet, title, named(frame.head(MAX_DETAIL_ROWS), noms, beside=("commune",)), note)


def _rule_tables(result: Result, e: Explanation, noms: Names) -> dict[str, Table]:
    interrupted = " Interrompu : budget de temps ([analyse] temps_max_s) épuisé." \
        if e.temps_s.get("couts_interrompus") else ""
    return {
        "violations": Table("Règles non tenues", "Règles qui ne peuvent pas être tenues, et pourquoi", french_headings(
            named(e.violations, noms), {"contrainte": "Règle", "portee": "Portée", "violation": "Écart",
                                        "cause": "Cause", "explication": "Explication"}),
            "Aucune : toutes les règles sont tenues." if e.violations.empty else ""),
        "familles": Table("Familles", "Règles par famille, classées par impact", french_headings(e.familles, {
            "regle": "Règle", "source": "Source", "lignes": "Lignes", "saturees": "Tenues sans marge",
            "violees": "Non tenues", "impact": "Gain possible (total)", "violation": "Écart total"})),
        "reservataires": Table("Par réservataire", "Règles par réservataire, classées par impact", french_headings(
            named(e.reservataires, noms).assign(regles_contraignantes=lambda t: t["regles_contraignantes"].map(
                lambda codes: ", ".join(label(c) for c in str(codes).split(", ") if c))), {"reservataire": "Réservataire", "saturees": "Tenues sans marge",
                                           "violees": "Non tenues", "impact": "Gain possible (total)",
                                           "violation": "Écart total",
                                           "regles_contraignantes": "Règles les plus contraignantes"})),
        "couts": Table("Coût des règles", "Ce que coûte une règle (plan entier recalculé)", french_headings(
            e.couts.assign(famille=e.couts["famille"].map(label)), {
            "famille": "Règle", "variante": "Variante", "gain_attributions": "Gain d'attributions",
            "gain_adequation_ponderee": "Gain de score d'adéquation", "logements_deplaces": "Logements déplacés",
            "violation_avant": "Écarts avant", "violation_totale": "Écarts après",
            "precision": "Précision du gain (± score)", "temps_s": "Durée (s)"}),
            ("Non calculé : flux-opt plan (sans --sans-analyse) ou flux-opt lot --couts le calcule."
             if e.couts.empty and not interrupted else "") + interrupted),
        "saturees": Table("Règles sans marge", "Règles tenues sans marge, par gain possible", french_headings(
            named(e.saturees, noms), {"contrainte": "Règle", "portee": "Portée", "valeur_marginale": "Gain possible",
                                      "explication": "Explication"})),
    }


def _shortfall_tables(e: Explanation, noms: Names) -> dict[str, Table]:
    zone = e.demande_non_servie.get("zone", pd.Series(dtype=object))
    demand = e.demande_non_servie.assign(zone=[noms.commune(z) if n == "commune" else noms.epci_label(z)
                                               for z, n in zip(zone, e.demande_non_servie.get("niveau", zone))])
    return {
        "vacance": Table("Vacance", "Risque de vacance commerciale : logements sans candidat attendu", french_headings(
            named(e.vacance, noms), {
                "reservataire": "Réservataire", "commune": "Commune", "commune_nom": "Nom", "typologie": "Typologie",
                "logements": "Logements orientés", "attributions_prevues": "Attributions prévues",
                "sans_candidat": "Sans candidat", "demandeurs_du_vivier": "Demandeurs du vivier", "cause": "Cause"}),
            "Aucun logement sans candidat." if e.vacance.empty else ""),
        "demande": Table("Demande non servie", "Demande sans logement cette année", french_headings(named(demand, noms), {
            "reservataire": "Réservataire", "zone": "Zone", "typologie": "Typologie", "demandeurs": "Demandeurs",
            "attributions": "Attributions prévues", "non_servis": "Non servis",
            "logements_du_flux": "Logements du flux", "logements_orientes": "Logements orientés", "cause": "Cause"})),
    }


@dataclass
class PlanFrames:
    """The plan's tables that both the report's tables and its charts read, computed once."""

    communes: pd.DataFrame  # commune_table
    qpv: pd.DataFrame  # qpv_table, with names
    shares: pd.DataFrame  # share_table, with names

    @classmethod
    def of(cls, result: Result) -> PlanFrames:
        return cls(commune_table(result), named(qpv_table(result), result.noms),
                   named(share_table(result), result.noms))


@dataclass
class ReportTables:
    """Every table of the report, built once for the page, its charts and the workbook."""

    main: dict[str, Table]
    frames: PlanFrames

    @classmethod
    def of(cls, result: Result, explanation: Explanation) -> ReportTables:
        frames = PlanFrames.of(result)
        return cls(report_tables(result, explanation, frames), frames)
