"""The note for the State's services (DDETS / DDT): `note_etat.html` and the sheet « Note État » of
rapport.xlsx — one printable page with each legal rule, its figure and its article, and the plan's
conformity verdict.

Every figure comes from the conformity table (flux_opt/conformity: the plan re-checked against the
law from its files alone) and from the plan's summary (the flux, the exclusions by category); the
note only chooses the lines and words, it computes no rule of its own.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from flux_opt.explanation.sentences import fr_number, fr_percent
from flux_opt.model.registry import (CIA_HORS_QPV_Q1, CIA_QPV_Q234, CONSERVATION, PLAFOND_AGENTS, PLAFOND_COLLECTIVITE,
                                     PLAFOND_PREFET, PREFET_HORS_QPV, PUBLICS_PRIORITAIRES, TERRITOIRE,
                                     UNIFORMITE_PREFET, label, names)
from flux_opt.plan.names import Names
from flux_opt.report.annexes import AnnexDocument, french_date, html_table_of
from flux_opt.report.html import Paragraph, Section
from flux_opt.report.tables import Table

NOTE_ETAT = "note_etat.html"
# The rules of the note, in the order the State reads them; structure (conservation, territories) last.
ORDER = (PLAFOND_PREFET, PLAFOND_AGENTS, PREFET_HORS_QPV, UNIFORMITE_PREFET, PLAFOND_COLLECTIVITE,
         CIA_HORS_QPV_Q1, CIA_QPV_Q234, PUBLICS_PRIORITAIRES, CONSERVATION, TERRITOIRE)
ON_ATTRIBUTIONS = names(on_attributions=True)  # rules on expected attributions
EXCLUSION_NAMES = {"mutation": "Mutations internes", "anru": "Relogements (renouvellement urbain, ANRU)",
                   "orcod": "Relogements (ORCOD)", "lhi": "Lutte contre l'habitat indigne",
                   "vente": "Logements mis en vente", "urgence": "Urgences (sinistres, violences…)"}
HEADINGS = ["Règle", "Portée", "Article", "Limite", "Chiffre du plan", "Respectée"]
VERDICT = {"oui": "oui", "non": "NON"}


def _figure(regle: str, base, valeur) -> str:
    """The plan's figure: dwellings as integers; expected attributions as « environ N », with their share."""
    if valeur is None or pd.isna(valeur):
        return "non vérifiable"
    if regle in ON_ATTRIBUTIONS:
        share = f" ({fr_percent(float(valeur) / float(base))})" if base else ""
        return f"environ {fr_number(round(float(valeur)))} attributions{share}"
    return f"{fr_number(round(float(valeur)))} logements"


def _uniformity_line(rows: pd.DataFrame) -> dict:
    """One line for the préfet's rate in every commune: how many communes lie within their range."""
    within = int((rows["respectee"] == "oui").sum())
    n = len(rows)
    outside = rows.loc[rows["respectee"] != "oui", "portee"].tolist()
    rate = str(rows["limite"].iloc[0]).split("(", 1)[-1].split(" de ")[0]  # « 29,8 % » of the conformity text
    return {"regle": UNIFORMITE_PREFET, "portee": f"{n} communes", "source": rows["source"].iloc[0],
            "limite": f"le taux du préfet ({rate}) dans chaque commune, à la tolérance près (détail ci-dessous)",
            "chiffre": f"{within} communes sur {n} dans leur fourchette",
            "respectee": "oui" if not outside else "non"}


def _structure_line(rows: pd.DataFrame, regle: str) -> dict:
    held = (rows["respectee"] == "oui").all()
    words = {CONSERVATION: ("chaque logement du flux", "orienté une fois, à un seul réservataire"),
             TERRITOIRE: (f"{len(rows)} réservataires", "aucun logement hors du territoire de sa convention")}
    portee, limite = words[regle]
    return {"regle": regle, "portee": portee, "source": rows["source"].iloc[0], "limite": limite,
            "chiffre": "tenu" if held else "NON tenu", "respectee": "oui" if held else "non"}


def rule_lines(conformite: pd.DataFrame, noms: Names) -> pd.DataFrame:
    """One line per rule and scope (uniformity and structure summed up in one line each)."""
    lines = []
    for regle in ORDER:
        rows = conformite.loc[conformite["regle"] == regle]
        if rows.empty:
            continue
        if regle == UNIFORMITE_PREFET:
            lines.append(_uniformity_line(rows))
        elif regle in (CONSERVATION, TERRITOIRE):
            lines.append(_structure_line(rows, regle))
        else:
            lines += [{"regle": regle, "portee": noms.scope(str(r.portee)).removeprefix("réservataire "),
                       "source": r.source, "limite": r.limite,
                       "chiffre": _figure(regle, r.base, r.valeur), "respectee": r.respectee}
                      for r in rows.itertuples(index=False)]
    frame = pd.DataFrame(lines, columns=["regle", "portee", "source", "limite", "chiffre", "respectee"])
    frame["regle"] = frame["regle"].map(lambda r: label(r))
    frame["respectee"] = frame["respectee"].map(lambda v: VERDICT.get(v, v))
    frame.columns = HEADINGS
    return frame


def uniformity_detail(conformite: pd.DataFrame, noms: Names) -> pd.DataFrame:
    rows = conformite.loc[conformite["regle"] == UNIFORMITE_PREFET]
    return pd.DataFrame({
        "Commune": [noms.commune_name(str(p).removeprefix("commune ")) or str(p) for p in rows["portee"]],
        "Flux de la commune": rows["base"].round().astype(int).to_numpy(),
        "Fourchette": [str(t).split(" (")[0] for t in rows["limite"]],
        "Logements du préfet": rows["valeur"].round().astype(int).to_numpy(),
        "Respectée": rows["respectee"].map(lambda v: VERDICT.get(v, v)).to_numpy()})


def exclusions_table(resume: dict, exclusions: pd.DataFrame | None) -> pd.DataFrame:
    """The dwellings left out of the flux, by category (exclusions.csv), with the total B."""
    if exclusions is None or exclusions.empty:
        return pd.DataFrame(columns=["Catégorie", "Logements"])
    by = exclusions.groupby("categorie", sort=False)["logements"].sum()
    frame = pd.DataFrame({"Catégorie": [EXCLUSION_NAMES.get(c, c) for c in by.index],
                          "Logements": by.round().astype(int).to_numpy()})
    total = pd.DataFrame([{"Catégorie": "Total des exclusions (B)", "Logements": round(resume.get("exclusions", 0))}])
    return pd.concat([frame, total], ignore_index=True)


def verdict(conformite: pd.DataFrame) -> str:
    failed = int((conformite["respectee"] == "non").sum())
    unknown = int(conformite["respectee"].astype(str).str.startswith("non vérifiable").sum())
    text = (f"Plan conforme : les {len(conformite)} contrôles légaux sont respectés." if not failed else
            f"Plan NON conforme : {failed} contrôle(s) sur {len(conformite)} non respecté(s).")
    return text + (f" {unknown} contrôle(s) non vérifiable(s) sans attributions.csv." if unknown else "")


def note_document(result, conformite: pd.DataFrame, exclusions: pd.DataFrame | None = None,
                  day: date | None = None) -> AnnexDocument:
    r, noms = result.resume, result.noms
    facts = [("Bailleur", str(r.get("bailleur", ""))), ("Département", str(r.get("departement", ""))),
             ("Année", str(r.get("annee", ""))), ("Date", french_date(day)),
             ("Flux annuel", f"{fr_number(r.get('flux', 0))} logements = libérations prévues "
                             f"{fr_number(round(r.get('liberations_prevues', 0)))} − exclusions "
                             f"{fr_number(round(r.get('exclusions', 0)))} (CCH R.441-5)"),
             ("Verdict", verdict(conformite))]
    tables = [Table("Note État", "Les règles légales et le plan", rule_lines(conformite, noms))]
    detail = uniformity_detail(conformite, noms)
    if len(detail):
        tables.append(Table("Uniformité", "Taux du préfet par commune (CCH R.441-5-2 II)", detail))
    excluded = exclusions_table(r, exclusions)
    if len(excluded):
        tables.append(Table("Exclusions", "Logements exclus du flux, par catégorie (CCH R.441-5)", excluded,
                            total=True))
    return AnnexDocument(
        f"Note aux services de l'État — plan d'orientation du flux {r.get('annee', '')}",
        f"{r.get('bailleur', '')} — département {r.get('departement', '')}", facts, tables,
        ["Chiffres du contrôle de conformité (flux-opt controler) : chaque règle recalculée à partir du plan écrit "
         "(plan.csv, attributions.csv) et de l'instance. Les attributions sont des espérances : « environ ». "
         "Un plafond est arrondi à l'entier inférieur, un minimum à l'entier supérieur."])


def note_sheet(document: AnnexDocument) -> Table:
    """The sheet « Note État » of rapport.xlsx: the rules table under the verdict."""
    return document.sheets()[0]


def note_section(document: AnnexDocument) -> Section:
    """The note's rules in the report page (the whole note in note_etat.html)."""
    verdict_text = dict(document.facts)["Verdict"]
    return Section("La conformité du plan aux règles légales", [
        Paragraph(verdict_text, "" if verdict_text.startswith("Plan conforme") else "bad"),
        html_table_of(document.tables[0]),
        Paragraph("La note pour les services de l'État (note_etat.html) reprend ces règles, le taux du préfet par "
                  "commune et les exclusions par catégorie, sur une page imprimable.", "note")], id="regles")
