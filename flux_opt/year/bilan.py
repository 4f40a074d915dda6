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
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from openpyxl.utils import get_column_letter

from flux_opt.report.html import Cell, Paragraph, Section, html_table, render
from flux_opt.year.journal import CATEGORIES_RETRAIT, avec_cycles
from flux_opt.year.suivi import ReglesDecompte, decompter

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

    @property
    def reservataires(self) -> list[str]:
        return list(self.synthese["reservataire"])

    def pour_reservataire(self, reservataire: str) -> Bilan:
        """The same bilan restricted to one réservataire (withdrawals stay bailleur-wide)."""
        def garde(df: pd.DataFrame) -> pd.DataFrame:
            return df[df["reservataire"] == reservataire].reset_index(drop=True)
        return Bilan(self.annee, garde(self.synthese), {d: garde(t) for d, t in self.par_dimension.items()},
                     self.retraits, self.retraits_detail, self.prevision_retraits)


def bilan(journal_df: pd.DataFrame, annee: int, regles: ReglesDecompte | None = None) -> Bilan:
    """Legal tables of year `annee`: proposed and attributed per réservataire and by
    typologie, financement, QPV, commune and construction period; withdrawals; forecast."""
    df = avec_cycles(journal_df)
    df["periode_construction"] = df["periode_construction"].replace("", "non renseignée")
    df["qpv"] = df["qpv"].map({True: "QPV", False: "hors QPV"})
    de_l_annee = df[df["horodatage"].dt.year == annee]
    proposes = de_l_annee[de_l_annee["evenement"] == "proposition"].drop_duplicates(
        ["logement_id", "cycle", "reservataire"])
    attribues = de_l_annee[de_l_annee["evenement"] == "bail_signe"]
    synthese = _compter(proposes, attribues, [])
    if regles is not None and regles.ponderations:
        compte = decompter(journal_df[journal_df["horodatage"].dt.year == annee], regles)
        points = compte.groupby("reservataire", as_index=False)["points"].sum()
        synthese = synthese.merge(points.rename(columns={"points": "logements_decomptes"}),
                                  on="reservataire", how="left").fillna({"logements_decomptes": 0.0})
    retraits_annee = de_l_annee[de_l_annee["evenement"] == "retrait"]
    return Bilan(
        annee=annee,
        synthese=synthese,
        par_dimension={d: _compter(proposes, attribues, [d]) for d in DIMENSIONS},
        retraits=_retraits(retraits_annee),
        retraits_detail=_retraits_detail(retraits_annee),
        prevision_retraits=_prevision(df, annee),
    )


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


def _sections(b: Bilan) -> list[tuple[str, pd.DataFrame]]:
    sections = [("Synthèse", b.synthese)]
    sections += [(f"Par {titre.lower()}" if d != "qpv" else "QPV et hors QPV", b.par_dimension[d])
                 for d, titre in DIMENSIONS.items()]
    sections += [
        ("Retraits du flux", b.retraits),
        ("Retraits (détail)", b.retraits_detail),
        (f"Prévision des retraits {b.annee + 1}", b.prevision_retraits),
    ]
    return sections


def _francais(df: pd.DataFrame) -> pd.DataFrame:
    return df.rename(columns={**LIBELLES, "annees_de_reference": "Années de référence"})


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


def ecrire_html(b: Bilan, chemin: Path, destinataire: str | None) -> Path:
    sections = [Section(titre, [html_table(_francais(table), _cellule)] if len(table)
                        else [Paragraph("Aucun logement.", "note")]) for titre, table in _sections(b)]
    titre = f"Bilan annuel {b.annee} des attributions en flux" + (f" — {destinataire}" if destinataire else "")
    sous_titre = "Bilan destiné au réservataire" if destinataire else "Bilan consolidé, tous réservataires"
    page = render("bilan.html", title=titre, subtitle=sous_titre, sections=sections)
    chemin.write_text(page, encoding="utf-8")
    return chemin


def ecrire_bilan(b: Bilan, dossier: str | Path) -> list[Path]:
    """Write the consolidated bilan and one bilan per réservataire (Excel + HTML)."""
    dossier = Path(dossier)
    dossier.mkdir(parents=True, exist_ok=True)
    base = f"bilan_{b.annee}"
    ecrits = [ecrire_excel(b, dossier / f"{base}.xlsx"), ecrire_html(b, dossier / f"{base}.html", None)]
    for reservataire in b.reservataires:
        partiel = b.pour_reservataire(reservataire)
        nom = f"{base}_{_nom_fichier(reservataire)}"
        ecrits.append(ecrire_excel(partiel, dossier / f"{nom}.xlsx"))
        ecrits.append(ecrire_html(partiel, dossier / f"{nom}.html", reservataire))
    return ecrits
