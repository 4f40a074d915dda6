"""The result of a plan: plain tables (plan, attributions, objectifs, contraintes) and a summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from flux_opt import __version__
from flux_opt.model.build import OrientationModel, model_size
from flux_opt.model.linear import ConstraintBlock
from flux_opt.model.registry import CONSERVATION, DEMANDE, EXCLUSIONS, RULE, names
from flux_opt.model.solve import Solution
from flux_opt.model.split import disaggregate
from flux_opt.plan.names import Names
from flux_opt.vocabulary import missed

TOL = 1e-6
SEGMENT_KEYS = ["commune", "epci", "qpv", "typologie", "financement"]
# Families listed in contraintes.csv (the rule registry).
REPORTED = names(reported=True)
# Families whose rows hold by construction: one summary line each in contraintes.csv, rows only when violated.
STRUCTURAL = names(nature="structurelle", reported=True)
SUMMARY = {
    CONSERVATION: "{n} segments du flux, chacun entièrement orienté, chaque logement libéré à un seul "
                    "réservataire",
    DEMANDE: "{n} viviers de demandeurs, aucune attribution prévue au-delà des demandeurs du vivier "
               "({binding} viviers entièrement servis ; demande non servie : voir le rapport)",
}


@dataclass
class Result:
    plan: pd.DataFrame
    attributions: pd.DataFrame
    objectifs: pd.DataFrame
    contraintes: pd.DataFrame
    resume: dict
    rows: pd.DataFrame = field(repr=False)  # every model row with status (for the explanation layer)
    ecretements: pd.DataFrame | None = field(default=None, repr=False)  # exclusions clipped (Flux.ecretements)
    noms: Names = field(default_factory=Names, repr=False)  # names beside the codes, for people
    # the year's targets (assiette/targets.py): id, type, source, base, brut (before rounding), cible
    targets: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def exit_code(self) -> int:
        return 3 if self.resume["regles_violees"] else 0


def _yes_no(values) -> np.ndarray:
    return np.where(np.asarray(values, dtype=bool), "oui", "non")


def make_result(model: OrientationModel, solution: Solution) -> Result:
    lp, d = model.lp, model.data
    x = solution.values[model.vars.x.columns]
    y = solution.values[model.vars.y.columns]

    split = model.vars.split
    per_segment = disaggregate(model, x, solution.values[split.columns] if split is not None else None)
    plan = per_segment[["commune", "epci", "qpv", "typologie", "financement", "reservataire", "logements"]].copy()
    plan = plan.sort_values(["commune", "typologie", "qpv", "financement", "reservataire"], kind="stable")
    plan["qpv"] = _yes_no(plan["qpv"])

    attributions = _attributions(model, per_segment, y)
    objectifs = _objectifs(model, x, y)
    rows = _row_status(model, solution)
    contraintes = contraintes_table(rows, d.flux.ecretements)

    fit = float(y @ d.flows["poids"].to_numpy()) if len(y) else 0.0
    violated = sorted(set(rows.loc[rows["statut"] == "violee", "contrainte"]))
    raw = solution.raw
    resume = {
        "instance": d.instance.parametres.instance.nom,
        # where the instance was read, so that suivi / bilan find the conventions behind the plan
        "chemin_instance": str(Path(d.instance.source).resolve()) if d.instance.source else "",
        "bailleur": d.instance.parametres.instance.bailleur,
        "departement": d.instance.parametres.instance.departement,
        "annee": d.instance.parametres.instance.annee,
        "liberations_prevues": round(d.flux.liberations, 3),
        "exclusions": round(d.flux.exclus, 3),
        "exclusions_ecretees": [{k: (None if pd.isna(v) else v) for k, v in row.items()}
                                for row in d.flux.ecretements.round(3).to_dict("records")],
        "flux": d.flux.total,
        "objectif": round(raw.objective, 6),
        "adequation_ponderee": round(fit, 6),
        "attributions_prevues": round(float(y.sum()), 4),
        "adequation": round(float(y.sum()) / d.flux.total, 6) if d.flux.total else 0.0,
        "statut_solveur": raw.status,
        "optimal": bool(raw.optimal),
        "ecart_optimalite": None if not np.isfinite(raw.gap) else round(float(raw.gap), 8),
        "temps_construction_s": round(model.build_seconds, 4),
        "temps_transmission_s": round(raw.translate_seconds, 4),
        "temps_resolution_s": round(raw.seconds, 4),
        "moteur": solution.moteur,
        "methode_resolution": raw.methode,
        "taille": model_size(model),
        "regles_violees": violated,
        "code_sortie": 3 if violated else 0,
        "version": __version__,
    }
    targets = d.targets.table[[c for c in TARGET_COLUMNS if c in d.targets.table]].copy()
    return Result(plan.reset_index(drop=True), attributions, objectifs, contraintes.reset_index(drop=True),
                  resume, rows, d.flux.ecretements, Names.of(d.instance), targets)


TARGET_COLUMNS = ["id", "type", "source", "base", "brut", "cible", "plafond"]


CONTRAINTES_COLUMNS = ["contrainte", "portee", "statut", "marge", "valeur_marginale", "explication"]


def published_mask(rows: pd.DataFrame) -> pd.Series:
    return rows["contrainte"].isin(REPORTED) & rows["publie"]


def detail_mask(rows: pd.DataFrame) -> pd.Series:
    """Rows listed one by one in contraintes.csv: every published row of a rule a person reads,
    and the rows of structural families (they hold by construction) only when violated."""
    return _detail_and_held(rows)[0]


def _detail_and_held(rows: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """detail_mask, and the published rows of structural families that hold (one summary line each)."""
    published, structural, violated = published_mask(rows), rows["contrainte"].isin(STRUCTURAL), rows["statut"] == "violee"
    return published & (~structural | violated), published & structural & ~violated


def contraintes_table(rows: pd.DataFrame, ecretements: pd.DataFrame | None = None) -> pd.DataFrame:
    """The lines of contraintes.csv, most important first: violated rules (largest gap first),
    binding rules (highest marginal value first), then slack rules (least room first); then one
    summary line per structural family for its rows that hold; then the exclusions clipped to the
    releases of their scope."""
    detail_rows, held_rows = _detail_and_held(rows)
    detail = rows.loc[detail_rows]
    rank = detail["statut"].map({"violee": 0, "saturee": 1, "lache": 2}).to_numpy(dtype=float)
    key = np.where(rank == 0, -detail["violation"], np.where(rank == 1, -detail["valeur_marginale"].fillna(0),
                                                             detail["marge"]))
    # by rank then key, ties in row order, missing values last (as a stable sort_values on both)
    ordered = detail.take(np.lexsort((key, rank)))
    held = rows.loc[held_rows, ["contrainte", "statut", "marge"]]
    families, statut, marge = (held[c].to_numpy() for c in ("contrainte", "statut", "marge"))
    summaries = [_summary_line(family, statut[families == family], marge[families == family].astype(float))
                 for family in dict.fromkeys(families)]  # families in the order they first appear
    clipped = [clipping_rows(ecretements)] if ecretements is not None and len(ecretements) else []
    # the summary lines as one table (one table per line cost a frame and a concat each)
    return pd.concat([ordered[CONTRAINTES_COLUMNS]] + ([pd.DataFrame(summaries)] if summaries else []) + clipped,
                     ignore_index=True)[CONTRAINTES_COLUMNS]


def _summary_line(family: str, statut: np.ndarray, marge: np.ndarray) -> dict:
    """The line of a structural family whose rows (their statut and marge) all hold."""
    rule = RULE[family]
    n, binding = len(statut), int((statut == "saturee").sum())
    what = SUMMARY[family].format(n=_fr_int(n), binding=_fr_int(binding))
    known = marge[~np.isnan(marge)]
    return {"contrainte": family, "portee": f"ensemble ({n} lignes)",
            "statut": "saturee" if binding else "lache", "marge": float(known.min()) if len(known) else np.nan,
            "valeur_marginale": np.nan,
            "explication": f"{rule.label} ({rule.source}), ensemble : {what} ; toutes tenues."}


def _fr_int(n: int) -> str:
    return f"{n:,}".replace(",", "\u202f")


def clipping_rows(ecretements: pd.DataFrame) -> pd.DataFrame:
    """contraintes.csv lines for the exclusions clipped to the releases of their scope: a data
    conflict the plan works around (statut `ecretee`), not a broken rule (no exit code 3)."""
    def fr(v: float) -> str:
        return f"{v:.1f}".replace(".", ",")

    lines = []
    for e in ecretements.itertuples(index=False):
        where = f"exclusions.csv ligne {int(e.ligne)}" if pd.notna(e.ligne) else "exclusions.csv"
        lines.append({
            "contrainte": EXCLUSIONS, "portee": f"{where} : {e.portee}", "statut": "ecretee",
            "marge": -round(float(e.ecretes), 6), "valeur_marginale": np.nan,
            "explication": (f"{fr(e.demandes)} logements exclus pour {fr(e.liberations)} libérations prévues "
                            f"dans ce périmètre : exclusion ramenée à {fr(e.retenus)} "
                            f"({fr(e.ecretes)} écrêtés), le flux d'un segment ne descend pas sous 0")})
    return pd.DataFrame(lines, columns=CONTRAINTES_COLUMNS)


def _attributions(model: OrientationModel, per_segment: pd.DataFrame, y: np.ndarray) -> pd.DataFrame:
    """Spread y (per link group) over the group's segments pro rata of the dwellings oriented in each."""
    d = model.data
    columns = SEGMENT_KEYS + ["reservataire", "quartile", "prioritaire", "travailleur_essentiel",
                              "attributions_prevues"]
    flows = d.flows.loc[y > TOL, ["link", "quartile", "prioritaire", "travailleur_essentiel"]].assign(
        valeur=y[y > TOL])
    pairs = per_segment[SEGMENT_KEYS + ["reservataire", "link", "logements"]]
    link_total = pairs.groupby("link")["logements"].transform("sum")
    pairs = pairs.assign(share=pairs["logements"] / link_total)
    merged = flows.merge(pairs, on="link")
    merged["attributions_prevues"] = merged["valeur"] * merged["share"]
    out = _grouped_sum(merged, SEGMENT_KEYS + ["reservataire", "quartile", "prioritaire", "travailleur_essentiel"],
                       "attributions_prevues")
    out["attributions_prevues"] = out["attributions_prevues"].round(4)
    out = out.loc[out["attributions_prevues"] > 0]
    for column in ("qpv", "prioritaire", "travailleur_essentiel"):
        out[column] = _yes_no(out[column])
    return out[columns].reset_index(drop=True)


def _grouped_sum(table: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """`table.groupby(keys, sort=True)[value].sum().reset_index()`, the same sums (pandas' grouped sum
    over the rows in their order) in the same order, without building the index of many keys: each
    key's sorted codes, the groups as their sorted unique rows (a tenth of the time on small tables)."""
    codes = np.vstack([pd.factorize(table[k], sort=True)[0] for k in keys]) if len(table) else None
    if codes is None or (codes < 0).any():  # no rows, or a missing key: pandas' own way
        return table.groupby(keys, sort=True)[value].sum().reset_index()
    _, first, group = np.unique(codes.T, axis=0, return_index=True, return_inverse=True)
    sums = pd.Series(table[value].to_numpy()).groupby(group.ravel(), sort=True).sum()
    out = table[keys].take(first).reset_index(drop=True)
    out[value] = sums.to_numpy()
    return out


def _objectifs(model: OrientationModel, x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    d = model.data
    table = d.reservataires[["id", "cible"]].rename(columns={"id": "reservataire"})
    # carried over from last year's bilan (clause de revoyure), already inside `cible`
    table["report"] = d.reservataires["report"] if "report" in d.reservataires else 0
    oriented = np.bincount(d.pairs["r"].to_numpy(), weights=x, minlength=len(table))
    matched = np.bincount(d.flows["r"].to_numpy(), weights=y, minlength=len(table)) if len(y) else 0 * oriented
    table["logements"] = oriented.astype(int)
    table["ecart"] = table["logements"] - table["cible"]
    table["adequation"] = np.round(np.divide(matched, oriented, out=np.zeros_like(matched), where=oriented > 0), 4)
    return table


ROW_COLUMNS = ["contrainte", "nature", "valeur", "borne_inf", "borne_sup", "marge", "violation", "statut",
               "valeur_marginale"]


def _row_status(model: OrientationModel, solution: Solution) -> pd.DataFrame:
    """Status, margin and marginal value of every row of every family. The figures are computed
    block by block (numpy), the table assembled once: one DataFrame per family cost more than
    the figures themselves."""
    blocks = model.lp.constraints
    figures = [_block_status(block, solution) for block in blocks]
    rows = pd.concat([block.labels for block in blocks], ignore_index=True)
    for column in ROW_COLUMNS:
        rows[column] = np.concatenate([f[column] for f in figures]) if figures else np.zeros(0)
    # Link rows (attributions ≤ dwellings) are internal; pool rows are reported.
    rows["publie"] = ~rows["portee"].str.startswith("logements ").to_numpy(dtype=bool)
    rows["explication"] = ""  # filled by flux_opt.explanation.sentences
    return rows[_row_columns(blocks)]


def _row_columns(blocks: list[ConstraintBlock]) -> list[str]:
    """The columns of the rows table in their historical order (one table per family, concatenated):
    each family's label columns as they first appear, the figures after the first family's labels,
    the explanation last."""
    order: dict[str, None] = {}
    for block in blocks:
        order.update(dict.fromkeys([*block.labels.columns, *ROW_COLUMNS, "publie"]))
    return [*order, "explication"]


def _on_dwellings_only(block: ConstraintBlock, solution: Solution) -> bool:
    integer = solution.integer_columns
    own = block.cols[~solution.elastic_columns[block.cols]]
    return bool(len(own)) and bool(integer[own].all())


def _block_status(block: ConstraintBlock, solution: Solution) -> dict[str, np.ndarray]:
    idx = np.arange(block.start, block.start + block.size)
    activity = solution.row_activity[idx]
    slack_low = np.zeros(block.size)
    slack_up = np.zeros(block.size)
    if block.elastic_lower is not None:
        slack_low[block.elastic_lower.labels["ligne"].to_numpy()] = solution.values[block.elastic_lower.columns]
    if block.elastic_upper is not None:
        slack_up[block.elastic_upper.labels["ligne"].to_numpy()] = solution.values[block.elastic_upper.columns]
    core = activity - slack_low + slack_up  # the rule's own left-hand side, without its elastic part
    lower, upper = block.lower, block.upper
    with np.errstate(invalid="ignore"):
        margin = np.minimum(np.where(np.isfinite(lower), core - lower, np.inf),
                            np.where(np.isfinite(upper), upper - core, np.inf))
    violation = slack_low + slack_up
    # A row on whole dwellings only (x) binds when less than one dwelling of room is left
    # (e.g. préfet hors QPV, reading "part": 2 ≥ 0.3 × 6 leaves 0.2, yet one dwelling less breaks it).
    dwellings_only = _on_dwellings_only(block, solution)
    binding = 1.0 - TOL if dwellings_only else TOL
    # one tolerance (flux_opt/vocabulary.py): half an attribution on expected counts, none on dwellings
    violated = missed(violation, on_attributions=not dwellings_only)
    status = np.where(violated, "violee", np.where((np.abs(margin) <= binding) | (violation > TOL), "saturee", "lache"))
    duals = solution.row_duals[idx] if solution.row_duals is not None else np.full(block.size, np.nan)
    return {"contrainte": np.full(block.size, block.famille, dtype=object),
            "nature": np.full(block.size, block.nature, dtype=object),
            "valeur": np.round(core, 6), "borne_inf": lower, "borne_sup": upper,
            "marge": np.round(np.where(violation > TOL, -violation, margin), 6),
            "violation": np.round(np.where(violated, violation, 0.0), 6),
            "statut": status.astype(object), "valeur_marginale": np.round(np.abs(duals), 6)}
