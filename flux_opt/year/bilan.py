"""Bilan annuel (CCH R.441-5-1; models/journal.md) computed from the events journal.

Definitions (also in models/journal.md):
- logements proposés: distinct releases (logement_id, cycle) with at least one
  `proposition` event to the réservataire during the year;
- logements attribués: `bail_signe` events of the year;
- retraits: `retrait` events of the year, by exclusion category;
- prévision des retraits for the new year: per category, the mean of the yearly
  withdrawals over the last three years (annee−2..annee) that have events in the
  journal (only the year itself when the journal covers one year).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
from openpyxl.utils import get_column_letter

from flux_opt.report.html import Cell, Paragraph, Section, html_table, render
from flux_opt.year.journal.events import CATEGORIES_RETRAIT
from flux_opt.year.journal.views import avec_cycles
from flux_opt.plan.folder import lire_objectifs, lire_plan
from flux_opt.year.conventions import Contexte
from flux_opt.year.obligations import (mixite_cia, objectifs_et_realise, prevision_depuis_exclusions,
                                      refus_motives, retours_au_bailleur)
from flux_opt.year.suivi import ReglesDecompte, decompter, epci_depuis_plan, regles_du_contexte

DIMENSIONS: dict[str, str] = {
    "typologie": "Typologie",
    "financement": "Financement",
    "qpv": "QPV / hors QPV",
    "commune": "Commune",
    "periode_construction": "Période de construction",
}
LIBELLES: dict[str, str] = {
    "reservataire": "Réservataire",
    "logements_proposes": "Logements proposés",
    "logements_attribues": "Logements attribués",
    "logements_decomptes": "Logements décomptés",
    "categorie": "Catégorie",
    "libelle": "Usage",
    "logements": "Logements",
    "logements_prevus": "Logements prévus",
    "objectif": "Objectif",
    "nom": "Nom",
    "ecart": "Écart (décomptés − objectif)",
    "baux_menage_connu": "Baux (ménage connu)",
    "part_prioritaires": "Part publics prioritaires (dont DALO)",
    "part_prioritaires_due": "Part due (CCH L.441-1)",
    "part_q1_hors_qpv": "Part Q1 hors QPV",
    "refus": "Refus",
    "retours_bailleur": "Logements rendus au bailleur",
    "motif": "Motif",
    "logement_id": "Logement",
    "date": "Date",
    "decompte": "Décompte (convention)",
    "epci": "EPCI",
    "baux_hors_qpv": "Baux hors QPV (ménage connu)",
    "part_q1_exigee": "Part Q1 exigée (CIA)",
    "baux_qpv": "Baux en QPV (ménage connu)",
    "part_q234_qpv": "Part Q2-Q4 en QPV",
    "part_q234_exigee": "Part Q2-Q4 exigée (CIA)",
    **DIMENSIONS,
}


@dataclass(frozen=True)
class Bilan:
    annee: int
    synthese: pd.DataFrame  # per réservataire: proposed, attributed, counted
    par_dimension: dict[str, pd.DataFrame] = field(default_factory=dict)
    retraits: pd.DataFrame = field(default_factory=pd.DataFrame)
    retraits_detail: pd.DataFrame = field(default_factory=pd.DataFrame)
    prevision_retraits: pd.DataFrame = field(default_factory=pd.DataFrame)
    objectifs: pd.DataFrame = field(default_factory=pd.DataFrame)  # objective vs realised (needs the plan)
    refus: pd.DataFrame = field(default_factory=pd.DataFrame)
    retours: pd.DataFrame = field(default_factory=pd.DataFrame)
    mixite_cia: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def reservataires(self) -> list[str]:
        """Réservataires of the plan when it is known (even with no event), else of the journal."""
        source = self.objectifs if "reservataire" in self.objectifs.columns else self.synthese
        return list(source["reservataire"])

    def pour_reservataire(self, reservataire: str) -> Bilan:
        """The same bilan restricted to one réservataire (withdrawals stay bailleur-wide)."""
        def garde(df: pd.DataFrame) -> pd.DataFrame:
            if "reservataire" not in df.columns:
                return df
            return df[df["reservataire"] == reservataire].reset_index(drop=True)
        return Bilan(self.annee, garde(self.synthese), {d: garde(t) for d, t in self.par_dimension.items()},
                     self.retraits, self.retraits_detail, self.prevision_retraits, garde(self.objectifs),
                     garde(self.refus), garde(self.retours), pd.DataFrame())


def bilan(journal_df: pd.DataFrame, annee: int, regles: ReglesDecompte | None = None,
          objectifs: pd.DataFrame | None = None, contexte: Contexte | None = None,
          exclusions_suivantes: pd.DataFrame | None = None) -> Bilan:
    """Legal tables of year `annee`: proposed and attributed per réservataire and by
    typologie, financement, QPV, commune and construction period; withdrawals; forecast.

    With `objectifs` (reservataire, objectif: the plan's targets) and `contexte` (the
    plan's instance), each réservataire's objective vs what it got and its obligations;
    `exclusions_suivantes` (next instance's exclusions.csv) gives next year's forecast."""
    df = avec_cycles(journal_df)
    df["periode_construction"] = df["periode_construction"].replace("", "non renseignée")
    df["qpv"] = df["qpv"].map({True: "QPV", False: "hors QPV"})
    de_l_annee = df[df["horodatage"].dt.year == annee]
    proposes = de_l_annee[de_l_annee["evenement"] == "proposition"].drop_duplicates(
        ["logement_id", "cycle", "reservataire"])
    attribues = de_l_annee[de_l_annee["evenement"] == "bail_signe"]
    regles = regles or regles_du_contexte(contexte)
    synthese = _compter(proposes, attribues, [])
    compte = decompter(de_l_annee, regles)
    if regles is not None and (regles.ponderations or regles.retours_decomptes):
        points = compte.groupby("reservataire", as_index=False)["points"].sum()
        synthese = synthese.merge(points.rename(columns={"points": "logements_decomptes"}),
                                  on="reservataire", how="left").fillna({"logements_decomptes": 0.0})
    retraits_annee = de_l_annee[de_l_annee["evenement"] == "retrait"]
    prevision = (_prevision(df, annee) if exclusions_suivantes is None
                 else prevision_depuis_exclusions(exclusions_suivantes, annee, CATEGORIES_RETRAIT))
    return Bilan(
        annee=annee,
        synthese=synthese,
        par_dimension={d: _compter(proposes, attribues, [d]) for d in DIMENSIONS},
        retraits=_retraits(retraits_annee),
        retraits_detail=_retraits_detail(retraits_annee),
        prevision_retraits=prevision,
        objectifs=(objectifs_et_realise(objectifs, _compter(proposes, attribues, []), compte, de_l_annee, contexte)
                   if objectifs is not None else pd.DataFrame()),
        refus=refus_motives(de_l_annee),
        retours=retours_au_bailleur(de_l_annee, contexte),
        mixite_cia=mixite_cia(attribues, contexte),
    )


def bilan_du_plan(plan_dir: str | Path, journal_df: pd.DataFrame, annee: int, contexte: Contexte | None = None,
                  exclusions_suivantes: pd.DataFrame | None = None) -> tuple[Bilan, dict[str, Bilan]]:
    """The bilan of `annee` against the plan's objectives, and one per EPCI with a CIA
    (objectives there: the dwellings the plan gave each réservataire in the EPCI)."""
    annees = sorted(journal_df["horodatage"].dt.year.unique()) if len(journal_df) else []
    if annee not in annees:
        presentes = ", ".join(str(a) for a in annees) or "aucune, le journal est vide"
        raise ValueError(f"aucun événement daté de {annee} dans le journal (années présentes : {presentes}) : "
                         "pas de bilan à dresser pour cette année")
    plan = lire_plan(plan_dir)
    journal = epci_depuis_plan(journal_df, plan)
    objectifs = lire_objectifs(plan_dir)[["reservataire", "cible"]].rename(columns={"cible": "objectif"})
    consolide = bilan(journal, annee, objectifs=objectifs, contexte=contexte, exclusions_suivantes=exclusions_suivantes)
    par_epci = {}
    for epci in sorted(contexte.cia_epci) if contexte else []:
        du_plan = plan[plan["epci"] == epci]
        prevus = du_plan.groupby("reservataire", as_index=False)["logements"].sum()
        par_epci[epci] = bilan(journal[journal["epci"] == epci], annee,
                               objectifs=prevus.rename(columns={"logements": "objectif"}),
                               contexte=replace(contexte, cia_epci=frozenset({epci})))
    return consolide, par_epci


def _compter(proposes: pd.DataFrame, attribues: pd.DataFrame, dimensions: list[str]) -> pd.DataFrame:
    cles = ["reservataire", *dimensions]
    p = proposes.groupby(cles, as_index=False).size().rename(columns={"size": "logements_proposes"})
    a = attribues.groupby(cles, as_index=False).size().rename(columns={"size": "logements_attribues"})
    table = p.merge(a, on=cles, how="outer")
    table[["logements_proposes", "logements_attribues"]] = (
        table[["logements_proposes", "logements_attribues"]].fillna(0).astype(int))
    return table.sort_values(cles, kind="stable").reset_index(drop=True)


def _retraits(retraits: pd.DataFrame) -> pd.DataFrame:
    comptes = retraits.groupby("categorie").size()
    table = pd.DataFrame({"categorie": list(CATEGORIES_RETRAIT)})
    table["libelle"] = table["categorie"].map(CATEGORIES_RETRAIT)
    table["logements"] = table["categorie"].map(comptes).fillna(0).astype(int)
    return table


def _retraits_detail(retraits: pd.DataFrame) -> pd.DataFrame:
    cles = ["categorie", "commune", "typologie", "qpv", "financement"]
    return (retraits.groupby(cles, as_index=False).size().rename(columns={"size": "logements"})
            .sort_values(cles, kind="stable").reset_index(drop=True))


def _prevision(df: pd.DataFrame, annee: int) -> pd.DataFrame:
    annees = sorted(a for a in df["horodatage"].dt.year.unique() if annee - 2 <= a <= annee) or [annee]
    retraits = df[(df["evenement"] == "retrait") & df["horodatage"].dt.year.isin(annees)]
    comptes = retraits.groupby("categorie").size()
    table = pd.DataFrame({"categorie": list(CATEGORIES_RETRAIT)})
    table["libelle"] = table["categorie"].map(CATEGORIES_RETRAIT)
    table["logements_prevus"] = (table["categorie"].map(comptes).fillna(0) / len(annees)).round(1)
    table["annees_de_reference"] = ", ".join(str(a) for a in annees)
    return table


# --------------------------------------------------------------------------- writers

def _nom_fichier(reservataire: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", reservataire).strip("_") or "reservataire"


def _avec_total(table: pd.DataFrame) -> pd.DataFrame:
    """The table with a Total row summing its counts (shares are not summed); one row needs none."""
    if len(table) < 2:
        return table
    comptes = [c for c in table.columns if not c.startswith("part_") and pd.api.types.is_numeric_dtype(table[c])]
    total = {c: table[c].sum() for c in comptes} | {"reservataire": "Total"}
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def _sections(b: Bilan) -> list[tuple[str, pd.DataFrame]]:
    sections = [("Objectifs et réalisé", _avec_total(b.objectifs))] if len(b.objectifs.columns) else []
    sections += [("Synthèse", _avec_total(b.synthese))]
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


def _francais(df: pd.DataFrame) -> pd.DataFrame:
    """French headings; shares as percentages with one decimal."""
    df = df.copy()
    for colonne in [c for c in df.columns if c.startswith("part_")]:
        df[colonne] = (100 * df[colonne].astype(float)).round(1)
    libelles = {c: LIBELLES[c] + (" (%)" if c.startswith("part_") else "") for c in df.columns if c in LIBELLES}
    return df.rename(columns={**libelles, "annees_de_reference": "Années de référence"})


def ecrire_excel(b: Bilan, chemin: Path) -> Path:
    with pd.ExcelWriter(chemin, engine="openpyxl") as classeur:
        for titre, table in _sections(b):
            feuille = titre[:31].replace("/", "-")
            _francais(table).to_excel(classeur, sheet_name=feuille, index=False)
            colonnes = classeur.sheets[feuille].column_dimensions
            for rang, nom in enumerate(_francais(table).columns):
                colonnes[get_column_letter(rang + 1)].width = max(14, len(str(nom)) + 2)
    return chemin


def _cellule(colonne: str, valeur: object) -> Cell:
    if isinstance(valeur, str) or pd.isna(valeur):
        return Cell("" if pd.isna(valeur) else valeur)
    if isinstance(valeur, float):
        return Cell(f"{valeur:.1f}".replace(".", ",").removesuffix(",0"), "num")
    return Cell(str(valeur), "num")


def ecrire_html(b: Bilan, chemin: Path, destinataire: str | None, sous_titre: str | None = None) -> Path:
    sections = [Section(titre, [html_table(_francais(table), _cellule)] if len(table)
                        else [Paragraph("Aucun logement.", "note")]) for titre, table in _sections(b)]
    titre = f"Bilan annuel {b.annee} des attributions en flux" + (f" — {destinataire}" if destinataire else "")
    sous_titre = sous_titre or ("Bilan destiné au réservataire, à transmettre avant le 28 février" if destinataire
                                else "Bilan consolidé, tous réservataires (CCH R.441-5-1)")
    page = render("bilan.html", title=titre, subtitle=sous_titre, sections=sections)
    chemin.write_text(page, encoding="utf-8")
    return chemin


def ecrire_bilan(b: Bilan, dossier: str | Path, par_epci: Mapping[str, Bilan] | None = None) -> list[Path]:
    """Write the consolidated bilan, one bilan per réservataire and one per EPCI with a
    CIA (Excel + HTML), and `bilan_N.csv` (objective vs counted, read by `plan --bilan-precedent`)."""
    dossier = Path(dossier)
    dossier.mkdir(parents=True, exist_ok=True)
    base = f"bilan_{b.annee}"
    ecrits = [ecrire_excel(b, dossier / f"{base}.xlsx"), ecrire_html(b, dossier / f"{base}.html", None)]
    if len(b.objectifs.columns):
        chemin = dossier / f"{base}.csv"
        b.objectifs.assign(annee=b.annee).to_csv(chemin, index=False, encoding="utf-8", float_format="%.6g")
        ecrits.append(chemin)
    for epci, partiel in (par_epci or {}).items():
        nom = f"{base}_epci_{epci}"
        ecrits.append(ecrire_excel(partiel, dossier / f"{nom}.xlsx"))
        ecrits.append(ecrire_html(partiel, dossier / f"{nom}.html", f"EPCI {epci}",
                                  "Bilan destiné au président de l'EPCI doté d'une convention intercommunale "
                                  "d'attribution, à transmettre avant le 31 mars"))
    for reservataire in b.reservataires:
        partiel = b.pour_reservataire(reservataire)
        nom = f"{base}_{_nom_fichier(reservataire)}"
        ecrits.append(ecrire_excel(partiel, dossier / f"{nom}.xlsx"))
        ecrits.append(ecrire_html(partiel, dossier / f"{nom}.html", reservataire))
    return ecrits
