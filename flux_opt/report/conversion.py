"""Tables, Excel, HTML and console renderings of the stock conversion and its lissage.

Everything a user reads is French; functions return data (DataFrames, strings,
rich renderables) or write the files they are asked to write.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from rich.console import Group
from rich.text import Text

from flux_opt.report.tables import fitted_tables
from flux_opt.report.html import Cell, HtmlTable, Paragraph, Section, bullets, html_table, render
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
    objectifs = lissage.objectifs.copy()
    objectifs.columns = [str(a) for a in objectifs.columns]
    objectifs["Total"] = objectifs.sum(axis=1)
    annuel = lissage.annuel.set_index("annee")
    pieds = {
        "Total des objectifs": list(annuel["logements"]),
        "Capacité (part max × flux)": list(annuel["capacite"]),
        "Flux prévu": [round(v, 1) for v in annuel["flux_prevu"]],
    }
    for libelle, valeurs in pieds.items():
        total = sum(valeurs) if libelle != "Flux prévu" else round(sum(valeurs), 1)
        objectifs.loc[libelle] = valeurs + [total]
    table = objectifs.reset_index(names="Réservataire")
    return table


def capacity_table(lissage: Lissage) -> pd.DataFrame:
    """Yearly totals against the capacity, French headers."""
    return lissage.annuel[list(_ENTETES_CAPACITE)].rename(columns=_ENTETES_CAPACITE)


def write_excel(path: Path, conversion: pd.DataFrame, lissage: Lissage, detail: pd.DataFrame | None = None) -> Path:
    """Workbook with sheets `conversion`, `conventions` (if detail), `lissage`, `capacite`."""
    path = Path(path)
    classeur = Workbook()
    classeur.remove(classeur.active)
    feuilles = {"conversion": conversion_table(conversion)}
    if detail is not None:
        feuilles["conventions"] = detail_table(detail)
    feuilles["lissage"] = lissage_table(lissage)
    feuilles["capacite"] = capacity_table(lissage)
    for nom, table in feuilles.items():
        _write_sheet(classeur.create_sheet(nom), table)
    classeur.save(path)
    return path


def _section(conversion: pd.DataFrame, lissage: Lissage, parametres: dict | None,
             detail: pd.DataFrame | None = None) -> Section:
    parametres = parametres or {}
    parts = [Paragraph(_method_sentence(conversion, parametres)),
             _html_table(conversion_table(conversion), "Volume dû par réservataire")]
    if detail is not None and "taux_rotation" in parametres:
        parts.append(Paragraph(pourquoi_les_methodes_different(detail, float(parametres["taux_rotation"]))))
    parts += [Paragraph(_lissage_sentence(lissage)),
              _html_table(lissage_table(lissage), "Objectifs annuels lissés (logements)")]
    if lissage.notes:
        parts.append(bullets(lissage.notes, "alertes"))
    return Section(TITRE_SECTION, parts, id="conversion")


def conversion_section(conversion: pd.DataFrame, lissage: Lissage, parametres: dict | None = None,
                 detail: pd.DataFrame | None = None) -> str:
    """HTML fragment: the French report section « Conversion du stock en flux »."""
    return render("section.html", section=_section(conversion, lissage, parametres, detail))


def conversion_page(resultat: ConversionResult) -> str:
    """conversion.html: the same section as a self-contained page."""
    annees = resultat.lissage.annees
    return render("conversion.html", title=TITRE_SECTION, subtitle=f"Lissage {annees[0]}–{annees[-1]}",
                  sections=[_section(resultat.conversion, resultat.lissage, resultat.parametres, resultat.detail)])


def write_outputs(dossier: Path, resultat: ConversionResult) -> list[Path]:
    """Files of `flux-opt convertir`: CSV tables, conversion.xlsx and conversion.html."""
    dossier = Path(dossier)
    dossier.mkdir(parents=True, exist_ok=True)
    objectifs = resultat.lissage.objectifs.copy()
    objectifs.columns = [str(a) for a in objectifs.columns]
    fichiers = {
        "conversion.csv": resultat.conversion,
        "conventions_detail.csv": resultat.detail,
        "objectifs_pluriannuels.csv": objectifs.reset_index(names="reservataire"),
        "capacite_annuelle.csv": resultat.lissage.annuel,
    }
    chemins = []
    for nom, table in fichiers.items():
        table.to_csv(dossier / nom, index=False)
        chemins.append(dossier / nom)
    chemins.append(write_excel(dossier / "conversion.xlsx", resultat.conversion, resultat.lissage, resultat.detail))
    page = dossier / "conversion.html"
    page.write_text(conversion_page(resultat), encoding="utf-8")
    chemins.append(page)
    return chemins


def console_view(resultat: ConversionResult, noms: dict[str, str] | None = None) -> Group:
    """Rich renderable for the CLI, readable at 80 columns: method sentence, conversion table,
    multi-year table, alerts; réservataires by name (`noms`, reservataires.csv)."""
    noms = noms or {}
    elements = [
        Text(_method_sentence(resultat.conversion, resultat.parametres)),
        *_tables_rich(conversion_table(resultat.conversion), "Volume dû par réservataire", noms),
        Text(pourquoi_les_methodes_different(resultat.detail, float(resultat.parametres["taux_rotation"]), noms)),
        Text(_lissage_sentence(resultat.lissage)),
        *_tables_rich(lissage_table(resultat.lissage), "Objectifs annuels lissés", noms),
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


def _tables_rich(table: pd.DataFrame, titre: str, noms: dict[str, str]) -> list:
    """The table for the terminal: réservataires by name, every figure whole at 80 columns."""
    texte = ("Réservataire", "Méthode", "Convention")
    cells = pd.DataFrame({c: [noms.get(v, v) if c == "Réservataire" else _cell_fr(str(c), v) for v in table[c]]
                          for c in table.columns}, columns=table.columns)
    return fitted_tables(cells, titre, [c for c in table.columns if c not in texte])


def _write_sheet(feuille, table: pd.DataFrame) -> None:
    feuille.append([str(c) for c in table.columns])
    for cellule in feuille[1]:
        cellule.font = Font(bold=True)
    for enregistrement in table.itertuples(index=False):
        feuille.append([_valeur_excel(v) for v in enregistrement])
    for position, colonne in enumerate(table.columns, start=1):
        lettre = get_column_letter(position)
        feuille.column_dimensions[lettre].width = max(12, len(str(colonne)) + 2)
        if colonne == "Taux de rotation":
            for ligne in range(2, feuille.max_row + 1):
                feuille[f"{lettre}{ligne}"].number_format = "0.00%"
    feuille.freeze_panes = "B2"


def _valeur_excel(valeur: object) -> object:
    """Plain Python scalars (openpyxl rejects numpy types)."""
    if hasattr(valeur, "item"):
        return valeur.item()
    return valeur
