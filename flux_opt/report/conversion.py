"""Tables, Excel, HTML and console renderings of the stock conversion and its lissage.

Everything a user reads is French; functions return data (DataFrames, strings,
rich renderables) or write the files they are asked to write.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Group
from rich.text import Text

from flux_opt.report.tables import fitted_tables
from flux_opt.report.html import Cell, HtmlTable, Paragraph, Section, bullets, html_table, render
from flux_opt.report.workbook import new_workbook
from flux_opt.stock.conversion import pourquoi_les_methodes_different
from flux_opt.stock.instance import ConversionResult
from flux_opt.stock.lissage import Lissage

TITRE_SECTION = "Conversion du stock en flux"

_ENTETES_CONVERSION = {
    "reservataire": "Réservataire",
    "methode": "Méthode",
    "conventions": "Conventions",
    "droits_de_suite": "Droits de suite",
    "duree_moyenne": "Durée moyenne restante (ans)",
    "taux_rotation": "Taux de rotation",
    "volume_du": "Volume dû (relogements)",
}
_ENTETES_DETAIL = {
    "reservataire": "Réservataire",
    "convention": "Convention",
    "typologie": "Typologie",
    "droits_de_suite": "Droits de suite",
    "duree_restante": "Durée restante (ans)",
    "taux_rotation": "Taux de rotation",
    "volume_du": "Volume dû (relogements)",
}
_ENTETES_CAPACITE = {
    "annee": "Année",
    "flux_prevu": "Flux prévu",
    "capacite": "Capacité (part max × flux)",
    "logements": "Objectifs lissés",
    "marge": "Marge",
    "depassement": "Dépassement",
}
_LIBELLES_METHODE = {"globale": "globale", "convention": "par convention"}


def conversion_table(conversion: pd.DataFrame) -> pd.DataFrame:
    """Conversion per réservataire with French headers, in a readable column order."""
    table = conversion[list(_ENTETES_CONVERSION)].copy()
    table["methode"] = table["methode"].map(lambda m: _LIBELLES_METHODE.get(m, m))
    return table.rename(columns=_ENTETES_CONVERSION)


def detail_table(detail: pd.DataFrame) -> pd.DataFrame:
    """One row per convention with French headers (typologie only when some row has one)."""
    colonnes = [c for c in _ENTETES_DETAIL if c != "typologie" or detail["typologie"].astype(bool).any()]
    return detail[colonnes].rename(columns=_ENTETES_DETAIL)


def lissage_table(lissage: Lissage) -> pd.DataFrame:
    """Multi-year targets: one row per réservataire, one column per year, plus totals and capacity."""
    targets = lissage.objectifs.copy()
    targets.columns = [str(a) for a in targets.columns]
    targets["Total"] = targets.sum(axis=1)
    annuel = lissage.annuel.set_index("annee")
    pieds = {
        "Total des objectifs": list(annuel["logements"]),
        "Capacité (part max × flux)": list(annuel["capacite"]),
        "Flux prévu": [round(v, 1) for v in annuel["flux_prevu"]],
    }
    for libelle, valeurs in pieds.items():
        total = sum(valeurs) if libelle != "Flux prévu" else round(sum(valeurs), 1)
        targets.loc[libelle] = valeurs + [total]
    table = targets.reset_index(names="Réservataire")
    return table


def capacity_table(lissage: Lissage) -> pd.DataFrame:
    """Yearly totals against the capacity, French headers."""
    return lissage.annuel[list(_ENTETES_CAPACITE)].rename(columns=_ENTETES_CAPACITE)


def by_name(table: pd.DataFrame, noms: dict[str, str] | None) -> pd.DataFrame:
    """The table with its réservataires by name (reservataires.csv `nom`): ids stay in the CSV files."""
    if not noms or "Réservataire" not in table:
        return table
    return table.assign(**{"Réservataire": [noms.get(v, v) for v in table["Réservataire"]]})


def write_excel(path: Path, conversion: pd.DataFrame, lissage: Lissage, detail: pd.DataFrame | None = None,
                noms: dict[str, str] | None = None) -> Path:
    """Workbook with sheets `conversion`, `conventions` (if detail), `lissage`, `capacite`; réservataires
    by name (`noms`)."""
    path = Path(path)
    classeur = new_workbook(str(path))
    feuilles = {"conversion": by_name(conversion_table(conversion), noms)}
    if detail is not None:
        feuilles["conventions"] = by_name(detail_table(detail), noms)
    feuilles["lissage"] = by_name(lissage_table(lissage), noms)
    feuilles["capacite"] = capacity_table(lissage)
    for nom, table in feuilles.items():
        _write_sheet(classeur, classeur.add_worksheet(nom), table)
    classeur.close()
    return path


def _section(conversion: pd.DataFrame, lissage: Lissage, parametres: dict | None,
             detail: pd.DataFrame | None = None, noms: dict[str, str] | None = None) -> Section:
    parametres = parametres or {}
    parts = [Paragraph(_method_sentence(conversion, parametres)),
             _html_table(by_name(conversion_table(conversion), noms), "Volume dû par réservataire")]
    if detail is not None and "taux_rotation" in parametres:
        parts.append(Paragraph(pourquoi_les_methodes_different(detail, float(parametres["taux_rotation"]), noms)))
    parts += [Paragraph(_lissage_sentence(lissage)),
              _html_table(by_name(lissage_table(lissage), noms), "Objectifs annuels lissés (logements)")]
    if lissage.notes:
        parts.append(bullets(lissage.notes, "alertes"))
    return Section(TITRE_SECTION, parts, id="conversion")


def conversion_section(conversion: pd.DataFrame, lissage: Lissage, parametres: dict | None = None,
                 detail: pd.DataFrame | None = None, noms: dict[str, str] | None = None) -> str:
    """HTML fragment: the French report section « Conversion du stock en flux »."""
    return render("section.html", section=_section(conversion, lissage, parametres, detail, noms))


def conversion_page(resultat: ConversionResult, noms: dict[str, str] | None = None) -> str:
    """conversion.html: the same section as a self-contained page, réservataires by name (`noms`)."""
    annees = resultat.lissage.annees
    return render("conversion.html", title=TITRE_SECTION, subtitle=f"Lissage {annees[0]}–{annees[-1]}",
                  sections=[_section(resultat.conversion, resultat.lissage, resultat.parametres, resultat.detail,
                                     noms)])


def write_outputs(dossier: Path, resultat: ConversionResult, noms: dict[str, str] | None = None) -> list[Path]:
    """Files of `flux-opt convertir`: CSV tables (ids), conversion.xlsx and conversion.html (réservataires by
    name, `noms`)."""
    dossier = Path(dossier)
    dossier.mkdir(parents=True, exist_ok=True)
    targets = resultat.lissage.objectifs.copy()
    targets.columns = [str(a) for a in targets.columns]
    fichiers = {
        "conversion.csv": resultat.conversion,
        "conventions_detail.csv": resultat.detail,
        "objectifs_pluriannuels.csv": targets.reset_index(names="reservataire"),
        "capacite_annuelle.csv": resultat.lissage.annuel,
    }
    chemins = []
    for nom, table in fichiers.items():
        table.to_csv(dossier / nom, index=False)
        chemins.append(dossier / nom)
    chemins.append(write_excel(dossier / "conversion.xlsx", resultat.conversion, resultat.lissage, resultat.detail,
                               noms))
    page = dossier / "conversion.html"
    page.write_text(conversion_page(resultat, noms), encoding="utf-8")
    chemins.append(page)
    return chemins


def console_view(resultat: ConversionResult, noms: dict[str, str] | None = None) -> Group:
    """Rich renderable for the CLI, readable at 80 columns: method sentence, conversion table,
    multi-year table, alerts; réservataires by name (`noms`, reservataires.csv)."""
    noms = noms or {}
    elements = [
        Text(_method_sentence(resultat.conversion, resultat.parametres)),
        *_tables_rich(by_name(conversion_table(resultat.conversion), noms), "Volume dû par réservataire"),
        Text(pourquoi_les_methodes_different(resultat.detail, float(resultat.parametres["taux_rotation"]), noms)),
        Text(_lissage_sentence(resultat.lissage)),
        *_tables_rich(by_name(lissage_table(resultat.lissage), noms), "Objectifs annuels lissés"),
    ]
    elements += [Text(n, style="bold red") for n in resultat.lissage.notes]
    return Group(*elements)


# ---------------------------------------------------------------- helpers


def fr_number_text(valeur: object, decimales: int = 0) -> str:
    """French number: 1 500 ; 10,5 (narrow no-break space for thousands)."""
    if isinstance(valeur, str):
        return valeur
    if float(valeur).is_integer() and decimales == 0:
        return f"{int(valeur):,}".replace(",", "\u202f")
    texte = f"{float(valeur):,.{decimales}f}".replace(",", "\u202f").replace(".", ",")
    return texte


def _cell_fr(colonne: str, valeur: object) -> str:
    if colonne == "Année":
        return str(valeur)
    if colonne == "Taux de rotation":
        return fr_number_text(float(valeur) * 100, 2) + " %"
    if isinstance(valeur, float) and not valeur.is_integer():
        return fr_number_text(valeur, 1)
    return fr_number_text(valeur)


def _method_sentence(conversion: pd.DataFrame, parametres: dict) -> str:
    methodes = sorted(set(conversion["methode"]))
    libelle = ", ".join(_LIBELLES_METHODE.get(m, m) for m in methodes) or "—"
    phrase = f"Méthode de conversion : {libelle} (droits de suite × durée restante × taux de rotation)."
    if "taux_rotation" in parametres:
        phrase += f" Taux de rotation du bailleur retenu : {_cell_fr('Taux de rotation', parametres['taux_rotation'])}."
    total = float(conversion["volume_du"].sum())
    return phrase + f" Volume total dû : {fr_number_text(total, 0 if total.is_integer() else 1)} relogements."


def _lissage_sentence(lissage: Lissage) -> str:
    debut, fin = lissage.annees[0], lissage.annees[-1]
    phrase = (
        f"Lissage sur {debut}–{fin} : les objectifs de tous les réservataires convertis ne dépassent pas "
        f"{fr_number_text(lissage.part_max * 100, 0)} % du flux prévu chaque année"
    )
    if lissage.realisable:
        return phrase + " ; cette limite est respectée chaque année."
    annees = ", ".join(str(a) for a in lissage.annuel.loc[lissage.annuel["depassement"] > 0, "annee"])
    return phrase + f" ; elle ne peut pas être tenue en {annees} (voir les alertes)."


def _html_table(table: pd.DataFrame, legende: str) -> HtmlTable:
    return html_table(table, lambda c, v: Cell(_cell_fr(c, v), "" if isinstance(v, str) else "num"), legende)


def _tables_rich(table: pd.DataFrame, titre: str) -> list:
    """The table for the terminal: every figure whole at 80 columns."""
    texte = ("Réservataire", "Méthode", "Convention")
    cells = pd.DataFrame({c: [_cell_fr(str(c), v) for v in table[c]] for c in table.columns}, columns=table.columns)
    return fitted_tables(cells, titre, [c for c in table.columns if c not in texte])


def _write_sheet(classeur, feuille, table: pd.DataFrame) -> None:
    gras = classeur.add_format({"bold": True})
    taux = classeur.add_format({"num_format": "0.00%"})
    for position, colonne in enumerate(table.columns):
        feuille.write_string(0, position, str(colonne), gras)
        valeurs = [_valeur_excel(v) for v in table[colonne]]
        feuille.write_column(1, position, valeurs, taux if colonne == "Taux de rotation" else None)
        feuille.set_column(position, position, max(12, len(str(colonne)) + 2))
    feuille.freeze_panes(1, 1)


def _valeur_excel(valeur: object) -> object:
    """Plain Python scalars; a missing value is a blank cell."""
    if hasattr(valeur, "item"):
        valeur = valeur.item()
    return None if valeur is None or (isinstance(valeur, float) and pd.isna(valeur)) else valeur
