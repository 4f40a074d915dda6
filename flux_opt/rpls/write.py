"""The files `flux-opt importer rpls` writes into the instance folder, and its report in French.

parc.csv (one row per commune × QPV × typologie × financement × période de construction, with the
estimated rotation of its commune × typologie × QPV cell), rotation.csv (raw count, estimate and interval
per cell), a starter instance.toml, reservataires.csv (the préfet and the bailleur) and demande.csv (header
only): `flux-opt verifier` passes on the folder; the user then adds the convention's réservataires and
their demand (docs/donnees.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from flux_opt.rpls.read import Extract, read_rpls
from flux_opt.rpls.rotation import Rotation, estimate_rotation, most_shrunk

DEFAULT_ROTATION = 0.08  # the instance's [rotation] defaut when the extract has no lease dates
PARC_KEYS = ["commune", "commune_nom", "epci", "epci_nom", "qpv", "typologie", "financement", "periode_construction"]
ROTATION_COLUMNS = ["commune", "commune_nom", "epci", "qpv", "typologie", "logements", "logements_observes",
                    "emmenagements", "taux_brut", "taux_estime", "borne_basse", "borne_haute", "taux_parent",
                    "poids_parent"]
FILES = ("parc.csv", "rotation.csv", "instance.toml", "reservataires.csv", "demande.csv")


@dataclass
class Import:
    extract: Extract
    annee: int
    rotation: Rotation | None  # None: no BAIL column
    parc: pd.DataFrame
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # starter files already there, left as they were


def import_rpls(fichier: str | Path, sortie: str | Path, departement: str | None = None,
                annee: int | None = None) -> Import:
    """Read the extract, estimate the rotation, write the instance files (InvalidInput if unusable)."""
    extract = read_rpls(fichier, departement)
    d = extract.dwellings
    if annee is None:
        latest = d["bail"].dt.year.max() if "bail" in d else np.nan
        annee = int(latest) + 1 if pd.notna(latest) else pd.Timestamp.today().year
        extract.notes.append(f"année {annee} : celle qui suit le bail le plus récent du fichier (--annee pour "
                             "en choisir une autre)")
    rotation = estimate_rotation(d, annee) if "bail" in d else None
    if rotation is not None and rotation.move_ins == 0:
        latest = d["bail"].dt.year.max()
        extract.notes.append(f"aucun bail n'a pris effet en {annee - 1} (le plus récent date de "
                             f"{int(latest) if pd.notna(latest) else '—'}) : la rotation n'est pas mesurée ; "
                             "--annee correspond-elle bien au fichier (RPLS au 1er janvier de l'année du plan) ?")
        rotation = None
    parc = _parc(d, rotation)
    result = Import(extract, annee, rotation, parc)
    _write(result, Path(sortie))
    return result


def _parc(d: pd.DataFrame, rotation: Rotation | None) -> pd.DataFrame:
    names = {c: d.groupby(k)[c].agg(lambda s: s.mode().iat[0] if len(s) else "")
             for c, k in (("commune_nom", "commune"), ("epci_nom", "epci"))}
    frame = d.assign(commune_nom=d["commune"].map(names["commune_nom"]), epci_nom=d["epci"].map(names["epci_nom"]))
    parc = frame.groupby(PARC_KEYS, as_index=False).size().rename(columns={"size": "logements"})
    if rotation is not None:
        rates = rotation.cells.set_index(["commune", "typologie", "qpv"])["taux_estime"]
        parc["taux_rotation"] = rates.reindex(pd.MultiIndex.from_frame(parc[["commune", "typologie", "qpv"]])) \
            .to_numpy().round(4)
    else:
        parc["taux_rotation"] = np.nan
    parc["qpv"] = np.where(parc["qpv"], "oui", "non")
    return parc.sort_values(["commune", "qpv", "typologie", "financement", "periode_construction"])


def _write(result: Import, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    result.parc.to_csv(folder / "parc.csv", index=False)
    result.written.append(folder / "parc.csv")
    if result.rotation is not None:
        cells = result.rotation.cells.copy()
        names = result.parc.drop_duplicates("commune").set_index("commune")["commune_nom"]
        cells["commune_nom"] = cells["commune"].map(names)
        cells["qpv"] = np.where(cells["qpv"], "oui", "non")
        rounded = ["taux_brut", "taux_estime", "borne_basse", "borne_haute", "taux_parent", "poids_parent"]
        cells[rounded] = cells[rounded].round(4)
        cells[ROTATION_COLUMNS].to_csv(folder / "rotation.csv", index=False)
        result.written.append(folder / "rotation.csv")
    starters = {"instance.toml": _toml(result), "reservataires.csv": _RESERVATAIRES, "demande.csv": _DEMANDE}
    for name, text in starters.items():
        path = folder / name
        if path.exists():
            result.skipped.append(path)
            continue
        path.write_text(text, encoding="utf-8")
        result.written.append(path)


def _toml(result: Import) -> str:
    e = result.extract
    defaut = round(result.rotation.departement_rate, 4) if result.rotation is not None and \
        np.isfinite(result.rotation.departement_rate) else DEFAULT_ROTATION
    source = ("taux de mobilité du bailleur dans le département (RPLS), lignes sans taux_rotation"
              if result.rotation is not None else "le fichier RPLS n'a pas de date de bail : taux par défaut, à ajuster")
    return f"""# Instance écrite par « flux-opt importer rpls » depuis {e.source}.
# À compléter : le nom du bailleur, les réservataires de la convention (reservataires.csv) et leurs
# viviers de demandeurs (demande.csv) ; facultatifs : exclusions.csv, objectifs.csv, mixite.csv (docs/donnees.md).

[instance]
nom = "{e.source} {result.annee}"
bailleur = "à compléter"
departement = "{e.departement}"
annee = {result.annee}

[rotation]
defaut = {defaut}                   # {source}
"""


_RESERVATAIRES = """id,nom,type,territoire,taux,logements,logements_reserves,gestion,financement_apporte,taux_prioritaires
prefet,Préfet (contingent préfectoral),prefet,,,,,deleguee,,
bailleur,Bailleur (contingent propre),bailleur,,,,,directe,,
"""
_DEMANDE = "reservataire,commune,epci,typologie,quartile,prioritaire,travailleur_essentiel,demandeurs\n"


def report_lines(result: Import) -> list[str]:
    """The importer's report, in French: what was read, set aside, estimated, and what to fill in."""
    e, d = result.extract, result.extract.dwellings
    lines = [f"{e.source} : {e.lines} lignes lues, {len(d)} logements gardés dans le parc "
             f"({d['commune'].nunique()} communes, {d['epci'].nunique()} EPCI), {len(result.parc)} lignes dans parc.csv."]
    lines += [n[0].upper() + n[1:] + "." for n in e.notes]
    lines += [f"{p}" for p in e.report]
    r = result.rotation
    if r is None:
        why = "Pas de colonne bail / BAIL" if "bail" not in e.fields else "Pas de bail de l'année"
        lines.append(f"{why} : la rotation n'est pas mesurée, parc.csv laisse taux_rotation vide "
                     f"et instance.toml prend [rotation] defaut = {DEFAULT_ROTATION} (à ajuster).")
    else:
        rate = f"{100 * r.departement_rate:.1f}".replace(".", ",") if np.isfinite(r.departement_rate) else "—"
        lines.append(f"Taux de mobilité {result.annee - 1} (emménagements de l'année dans les logements proposés à la "
                     f"location depuis au moins un an, définition SDES, RPLS) : {r.move_ins} sur {r.base} logements, "
                     f"{rate} % dans le département.")
        strengths = ", ".join(f"{name} {m:,.0f}".replace(",", " ") for name, m in r.strengths.items())
        lines.append("Rapprochement de chaque cellule vers le taux de la zone plus large, qui compte comme ce nombre "
                     f"de logements (plus il est grand, plus les cellules se ressemblent) : {strengths}.")
        if r.future:
            lines.append(f"{r.future} baux datés de {result.annee} ou après : hors du calcul (le fichier RPLS décrit le "
                         f"parc au 1er janvier {result.annee}).")
        shrunk = most_shrunk(r)
        if len(shrunk):
            lines.append("Cellules les plus rapprochées de leur EPCI (petits effectifs) :")
            for c in shrunk.itertuples(index=False):
                lines.append(f"  {c.commune} {c.typologie} {'QPV' if c.qpv else 'hors QPV'} : {c.emmenagements} sur "
                             f"{c.logements_observes} ({_pct(c.taux_brut)}) → {_pct(c.taux_estime)} "
                             f"[{_pct(c.borne_basse)} ; {_pct(c.borne_haute)}], EPCI {_pct(c.taux_parent)}")
    for path in result.skipped:
        lines.append(f"{path.name} existe déjà : laissé tel quel.")
    lines.append("À compléter avant « flux-opt plan » : le nom du bailleur (instance.toml), les réservataires de la "
                 "convention (reservataires.csv) et leurs viviers de demandeurs (demande.csv) ; les premières mises en "
                 f"location de {result.annee} (programmes neufs, absents du RPLS) dans la colonne "
                 "premieres_mises_en_location de parc.csv.")
    return lines


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %".replace(".", ",") if pd.notna(x) else "—"
