"""One function per constraint family (models/orientation.md §3), named after it: `add_<famille>`.

Each function reads the plain tables of `ModelData`, builds its rows as sparse
triplets (vectorised) and adds them under the family's name; its nature and penalty class come
from the rule registry (registry.py).
`Vars` holds the column blocks of x (orientation) and y (attributions).
"""

from __future__ import annotations

import functools
import itertools
import operator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from flux_opt.assiette.targets import hors_qpv_floor, legal_rate, uniformity_band
from flux_opt.model.data import ModelData
from flux_opt.model.linear import INF, LinearProgram, VariableBlock
from flux_opt.model.registry import RULE
from flux_opt.vocabulary import PREFET_GROUP

PRIORITAIRES_TYPES = ("prefet", "action_logement", "collectivite", "bailleur")


@dataclass
class Vars:
    x: VariableBlock
    y: VariableBlock
    link: VariableBlock | None = None  # X_ℓ, dwellings per link group (composition demand model)
    split: VariableBlock | None = None  # w, a cell unit's dwellings per segment (idem, data._split)

    @property
    def end(self) -> int:
        """First column after the core blocks (later columns belong to the families)."""
        return max(b.start + b.size for b in (self.x, self.y, self.link, self.split) if b is not None)


@dataclass
class Penalties:
    contractuelle: float  # objectif_reservataire
    legale: float  # every legal rule

    def of(self, famille: str) -> float:
        """The penalty of a family's elastic slacks, by its class in the registry."""
        return getattr(self, RULE[famille].penalty)


def _add(lp: LinearProgram, famille: str, labels: pd.DataFrame, rows, cols, vals, lower, upper,
         pen: Penalties, penalty: float | np.ndarray | None = None) -> None:
    """Add a family's rows with the nature and penalty class the registry gives it."""
    rule = RULE[famille]
    if penalty is None:
        penalty = pen.of(famille) if rule.penalty else 0.0
    lp.add_constraints(famille, labels, rows, cols, vals, lower, upper, nature=rule.nature, penalty=penalty)


def _qpv_word(qpv) -> np.ndarray:
    return np.where(np.asarray(qpv, dtype=bool), "QPV", "hors QPV")


def _text(*parts) -> pd.api.extensions.ExtensionArray | pd.Series:
    """Row by row, the texts of `parts` (text columns or arrays of one length, and constant strings)
    end to end, as `+` on the columns gives them: one join per row is several times cheaper than a
    pandas `+` per part (the `portee` of every row of the model). A missing value leaves its row's
    text missing, as `+` does: then pandas builds the column."""
    columns = [p for p in parts if not isinstance(p, str)]
    if any(pd.isna(np.asarray(c, dtype=object)).any() for c in columns):
        return functools.reduce(operator.add, parts)
    cells = [itertools.repeat(p) if isinstance(p, str) else np.asarray(p, dtype=object) for p in parts]
    return pd.array(["".join(row) for row in zip(*cells)], dtype="str")


def _sum_rows(group_codes: np.ndarray, columns: np.ndarray, coef=1.0):
    """Triplets of rows `Σ coef·v[columns]` grouped by `group_codes` (row index per column)."""
    return group_codes, columns, np.broadcast_to(np.asarray(coef, dtype=float), (len(columns),))


def _one_row(columns: np.ndarray, coef=1.0):
    return _sum_rows(np.zeros(len(columns), dtype=np.int64), columns, coef)


def _prefet_mask(d: ModelData) -> np.ndarray:
    types = d.reservataires["type"].to_numpy()[d.pairs["r"].to_numpy()]
    return np.isin(types, PREFET_GROUP)


# --------------------------------------------------------------------------- families

def add_conservation(lp: LinearProgram, d: ModelData, v: Vars, pen: Penalties) -> None:
    """Σ_r x[r,·] = F per cell (commune × typologie × qpv): every released dwelling goes to exactly
    one réservataire; and, where some réservataires are oriented per segment (financement),
    their dwellings stay within each segment's flux. The split of cell units over the cell's
    segments is always possible in whole dwellings (result.disaggregate)."""
    cells = d.segments.groupby("cell", sort=True).agg(
        commune=("commune", "first"), typologie=("typologie", "first"), qpv=("qpv", "first"),
        flux=("flux", "sum"))
    labels = cells[["commune", "typologie", "qpv"]].reset_index(drop=True)
    labels["portee"] = _text("cellule ", labels["commune"], " ", labels["typologie"], " ", _qpv_word(labels["qpv"]))
    rows, cols, vals = _sum_rows(d.pairs["cell"].to_numpy(), v.x.columns)
    flux = cells["flux"].to_numpy(dtype=float)
    _add(lp, "conservation", labels, rows, cols, vals, flux, flux, pen)
    fine = (d.pairs["s"] >= 0).to_numpy()
    if fine.any():
        touched = np.unique(d.pairs.loc[fine, "s"].to_numpy())
        seg = d.segments.loc[touched]
        row_of = pd.Series(np.arange(len(touched)), index=touched)
        labels = seg[["commune", "typologie", "qpv", "financement"]].reset_index(drop=True)
        labels["s"] = touched
        labels["portee"] = _text("segment ", labels["commune"], " ", labels["typologie"], " ",
                                 _qpv_word(labels["qpv"]), " ", labels["financement"])
        rows = row_of.loc[d.pairs.loc[fine, "s"]].to_numpy()
        _add(lp, "conservation", labels, rows, v.x.columns[fine], np.ones(len(rows)),
             -INF, seg["flux"].to_numpy(dtype=float), pen)


def add_plafond_prefet(lp: LinearProgram, d: ModelData, v: Vars, pen: Penalties) -> None:
    """Préfet + agents ≤ ⌊prefet_taux × C⌋ (CCH R.441-5-2: "30 % au plus", never rounded up)."""
    cap = d.targets.plafond_prefet
    if cap is None:
        return
    labels = pd.DataFrame({"portee": ["département"], "taux": [legal_rate(d.instance.regles, "prefet_taux")]})
    rows, cols, vals = _one_row(v.x.columns[_prefet_mask(d)])
    _add(lp, "plafond_prefet", labels, rows, cols, vals, -INF, cap, pen)


def add_plafond_agents(lp: LinearProgram, d: ModelData, v: Vars, pen: Penalties) -> None:
    """Agents civils et militaires de l'État ≤ ⌊prefet_agents_taux × C⌋ (CCH R.441-5-2)."""
    cap = d.targets.plafond_agents
    if cap is None:
        return
    types = d.reservataires["type"].to_numpy()[d.pairs["r"].to_numpy()]
    labels = pd.DataFrame({"portee": ["département"], "taux": [legal_rate(d.instance.regles, "prefet_agents_taux")]})
    rows, cols, vals = _one_row(v.x.columns[types == "prefet_agents"])
    _add(lp, "plafond_agents", labels, rows, cols, vals, -INF, cap, pen)


def add_uniformite_prefet(lp: LinearProgram, d: ModelData, v: Vars, pen: Penalties) -> None:
    """Per commune: préfet dwellings within ±τ of ρ × F_c, ρ the préfet's share (CCH R.441-5-2 II)."""
    table = d.reservataires
    group = table["type"].isin(PREFET_GROUP)
    if not group.any() or d.flux.total == 0:
        return
    rho = table.loc[group, "cible"].sum() / d.flux.total
    tol = d.instance.regles.prefet_uniformite_tolerance
    flux_c = d.segments.groupby("commune", sort=True)["flux"].sum()
    nom = d.flux.segments.groupby("commune")["commune_nom"].first().reindex(flux_c.index)
    center = rho * flux_c.to_numpy(dtype=float)
    lower, upper = uniformity_band(rho, flux_c.to_numpy(), tol)
    labels = pd.DataFrame({"commune": flux_c.index, "flux_commune": flux_c.to_numpy(),
                           "taux": rho, "cible": center})
    labels["portee"] = "commune " + labels["commune"] + nom.fillna("").map(lambda n: f" ({n})" if n else "").to_numpy()
    mask = _prefet_mask(d)
    row_of = pd.Series(np.arange(len(flux_c)), index=flux_c.index)
    rows = row_of.loc[d.pairs.loc[mask, "commune"]].to_numpy()
    _add(lp, "uniformite_prefet", labels, rows, v.x.columns[mask], np.ones(len(rows)),
         lower, upper, pen)


def add_prefet_hors_qpv(lp: LinearProgram, d: ModelData, v: Vars, pen: Penalties) -> None:
    """Préfet hors QPV ≥ the floor of `hors_qpv_floor` (CCH R.441-5-2 II): reading `taux`, its
    hors-QPV dwellings ≥ ⌊min(30 %, its rate) × hors-QPV flux⌋; reading `part`, hors QPV − m × its
    dwellings ≥ plancher − m × target (= hors QPV ≥ ⌈m × its dwellings⌉ at the target). The floor
    never exceeds what a plan at the State's target can give (a parc without QPV plans freely)."""
    regles = d.instance.regles
    mask = _prefet_mask(d)
    if not mask.any():
        return
    table = d.reservataires
    target = int(table.loc[table["type"].isin(PREFET_GROUP), "cible"].sum())
    floor = hors_qpv_floor(regles, d.segments[["commune", "qpv", "flux"]], target, d.flux.total)
    hors_qpv = ~d.pairs["qpv"].to_numpy(dtype=bool)
    labels = pd.DataFrame({"portee": [f"département, lecture « {floor.lecture} »"], "taux": [floor.taux]})
    if floor.lecture == "taux":
        rows, cols, vals = _one_row(v.x.columns[mask & hors_qpv])
        _add(lp, "prefet_hors_qpv", labels.assign(base=floor.base), rows, cols, vals,
             float(floor.plancher), INF, pen)
    else:
        m = regles.prefet_hors_qpv_min
        coef = np.where(hors_qpv[mask], 1.0 - m, -m)
        rows, cols, vals = _one_row(v.x.columns[mask], coef)
        _add(lp, "prefet_hors_qpv", labels, rows, cols, vals, min(0.0, floor.plancher - m * target), INF, pen)


def add_plafond_collectivite(lp: LinearProgram, d: ModelData, v: Vars, pen: Penalties) -> None:
    """Per territory T of a collectivité without financing: the dwellings in T of every such
    collectivité together ≤ ⌊plafond × F(T)⌋ (CCH R.441-5: "ne peut globalement représenter plus
    de 20 %"; a commune and its EPCI cannot stack their shares on the commune)."""
    territories = d.targets.collectivites
    if territories.empty:
        return
    ids = sorted({rid for ids in territories["reservataires"] for rid in ids})
    mask = d.pairs["reservataire"].isin(ids).to_numpy()
    communes, columns = d.pairs.loc[mask, "commune"].to_numpy(), v.x.columns[mask]
    rows, cols = [], []
    for i, communes_t in enumerate(territories["territoire"]):
        inside = np.isin(communes, list(communes_t))
        rows.append(np.full(int(inside.sum()), i))
        cols.append(columns[inside])
    labels = pd.DataFrame({"reservataire": territories["reservataires"].map(", ".join),
                           "base": territories["base"].to_numpy(), "taux": legal_rate(d.instance.regles, "collectivite_plafond")})
    labels["portee"] = "territoire de " + labels["reservataire"]
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    _add(lp, "plafond_collectivite", labels, rows, cols, np.ones(len(rows)),
         -INF, territories["plafond"].to_numpy(dtype=float), pen)


def add_objectif_reservataire(lp: LinearProgram, d: ModelData, v: Vars, pen: Penalties) -> None:
    """Σ_s x[r,s] = N_r for every réservataire (its convention's target)."""
    table = d.reservataires
    labels = pd.DataFrame({"reservataire": table["id"], "portee": "réservataire " + table["id"]})
    target = table["cible"].to_numpy(dtype=float)
    rows, cols, vals = _sum_rows(d.pairs["r"].to_numpy(), v.x.columns)
    # The bailleur holds the remainder: when another target cannot hold, it absorbs the difference.
    weight = pen.of("objectif_reservataire")
    penalty = np.where(table["type"] == "bailleur", weight / 10, weight)
    _add(lp, "objectif_reservataire", labels, rows, cols, vals, target, target, pen, penalty)


def add_objectif_indicatif(lp: LinearProgram, d: ModelData, v: Vars, pen: Penalties) -> None:
    """Soft indicative targets (objectifs.csv): deviation penalised, never violated."""
    rows_in = d.instance.objectifs
    if not rows_in:
        return
    weight = d.instance.parametres.objectif.penalite_indicatif
    r_of = {rid: i for i, rid in enumerate(d.reservataires["id"])}
    rows, cols, targets, labels = [], [], [], []
    for i, o in enumerate(rows_in):
        mask = (d.pairs["r"] == r_of[o.reservataire]).to_numpy()
        for column in ("epci", "commune", "typologie", "financement", "qpv"):
            value = getattr(o, column)
            if value is not None:
                mask = mask & (d.pairs[column] == value).to_numpy()
        chosen = v.x.columns[mask]
        rows.append(np.full(len(chosen), i))
        cols.append(chosen)
        target = o.logements if o.logements is not None else o.part * d.targets.of(o.reservataire)
        targets.append(target)
        scope = " ".join(str(x) for x in (o.epci, o.commune, o.typologie, o.financement) if x is not None)
        if o.qpv is not None:
            scope += " QPV" if o.qpv else " hors QPV"
        labels.append({"reservataire": o.reservataire, "ligne_fichier": i + 2, "poids": o.poids,
                       "portee": f"réservataire {o.reservataire} {scope}".strip()})
    labels = pd.DataFrame(labels)
    n = len(labels)
    under = lp.add_variables("ecart_moins", labels, 0.0, INF, -weight * labels["poids"].to_numpy())
    over = lp.add_variables("ecart_plus", labels, 0.0, INF, -weight * labels["poids"].to_numpy())
    all_rows = np.concatenate([*rows, np.arange(n), np.arange(n)])
    all_cols = np.concatenate([*cols, under.columns, over.columns])
    vals = np.concatenate([np.ones(sum(len(c) for c in cols)), np.ones(n), -np.ones(n)])
    t = np.asarray(targets, dtype=float)
    _add(lp, "objectif_indicatif", labels, all_rows, all_cols, vals, t, t, pen)


def add_demande(lp: LinearProgram, d: ModelData, v: Vars, pen: Penalties) -> None:
    """Attributions ≤ candidates of each pool, and ≤ dwellings oriented to r in each cell."""
    pools, flows = d.pools, d.flows
    labels = pools[["reservataire", "zone", "niveau", "typologie", "quartile", "prioritaire",
                    "travailleur_essentiel", "demandeurs"]].copy()
    labels["portee"] = _text("vivier ", pools["reservataire"], " ", pools["niveau"], " ", pools["zone"], " ",
                             pools["typologie"], " ", pools["quartile"],
                             np.where(pools["prioritaire"], " prioritaire", ""),
                             np.where(pools["travailleur_essentiel"], " travailleur essentiel", ""))
    rows, cols, vals = _sum_rows(flows["p"].to_numpy(), v.y.columns)
    _add(lp, "demande", labels, rows, cols, vals, -INF, pools["demandeurs"].to_numpy(dtype=float), pen)
    links = d.links
    link_labels = links[["reservataire", "niveau", "zone", "typologie", "qpv"]].copy()
    link_labels["portee"] = _text("logements ", links["reservataire"], " ", links["niveau"], " ", links["zone"],
                                  " ", links["typologie"], " ", _qpv_word(links["qpv"]),
                                  links["financement"].map(lambda f: f" {f}" if isinstance(f, str) and f else ""))
    if d.composition:
        _add_lettings(lp, d, v, link_labels, pen)
        return
    rows = np.concatenate([flows["link"].to_numpy(), d.pairs["link"].to_numpy()])
    cols = np.concatenate([v.y.columns, v.x.columns])
    vals = np.concatenate([np.ones(len(flows)), -np.ones(len(d.pairs))])
    _add(lp, "demande", link_labels, rows, cols, vals, -INF, 0.0, pen)


def _add_lettings(lp: LinearProgram, d: ModelData, v: Vars, link_labels: pd.DataFrame, pen: Penalties) -> None:
    """Composition model (flux_opt/model/lettings.py): X_ℓ = Σ x of the link group; gestion
    directe: y[p,ℓ] ≤ coef·X_ℓ (the pool's share decides who is housed); gestion déléguée:
    Σ_p y[p,ℓ] / P_p ≤ X_ℓ (the bailleur may favour a pool of r's candidates)."""
    flows, n_links = d.flows, len(d.links)
    if d.split is None:
        link_of, dwellings = d.pairs["link"].to_numpy(), v.x.columns
    else:
        _add_split(lp, d, v, pen)
        w = d.split["w"].to_numpy()
        link_of = d.split["link"].to_numpy()
        dwellings = np.where(w >= 0, v.split.start + w, v.x.columns[d.split["unit"].to_numpy()])
    rows = np.concatenate([link_of, np.arange(n_links)])
    cols = np.concatenate([dwellings, v.link.columns])
    vals = np.concatenate([np.ones(len(link_of)), -np.ones(n_links)])
    _add(lp, "demande", link_labels, rows, cols, vals, 0.0, 0.0, pen)
    directe = flows["directe"].to_numpy(dtype=bool)
    _add_directe(lp, flows, v, link_labels, pen)
    delegated = flows.loc[~directe]
    own = np.unique(delegated["link"].to_numpy())
    row_of = np.searchsorted(own, delegated["link"].to_numpy())
    rows = np.concatenate([row_of, np.arange(len(own))])
    cols = np.concatenate([v.y.columns[~directe], v.link.columns[own]])
    vals = np.concatenate([delegated["inverse"].to_numpy(dtype=float), -np.ones(len(own))])
    _add(lp, "demande", link_labels.iloc[own], rows, cols, vals, -INF, 0.0, pen)


def _add_directe(lp: LinearProgram, flows: pd.DataFrame, v: Vars, link_labels: pd.DataFrame, pen: Penalties) -> None:
    """Gestion directe: the réservataire proposes, so its pools' composition fixes who is housed.
    L_ℓ, the expected lettings of link group ℓ, are at most P_ℓ·X_ℓ (P_ℓ = Σ_p coef_p, the
    probability that a dwelling is let), and each pool gets its share of them:
    y[p,ℓ] = coef_p / P_ℓ · L_ℓ. The plan can leave dwellings unlet (L_ℓ < P_ℓ·X_ℓ, when a pool
    empties) but never change the mix: a share of lettings (publics prioritaires) cannot be met by
    dropping the other households."""
    chosen = np.flatnonzero(flows["directe"].to_numpy(dtype=bool))
    link_of = flows["link"].to_numpy()[chosen]
    coef = flows["coef"].to_numpy(dtype=float)[chosen]
    own, row_of, probability = _directe_links(flows)
    labels = link_labels.iloc[own].reset_index(drop=True)
    lettings = lp.add_variables("attributions_lien", labels, 0.0, INF)
    k = np.arange(len(own))
    _add(lp, "demande", labels, np.concatenate([k, k]), np.concatenate([lettings.columns, v.link.columns[own]]),
         np.concatenate([np.ones(len(own)), -probability]), -INF, 0.0, pen)
    shares = link_labels.iloc[link_of].reset_index(drop=True)
    shares["portee"] = _text(shares["portee"], " vivier ", flows["p"].to_numpy()[chosen].astype(str))
    k = np.arange(len(chosen))
    _add(lp, "demande", shares, np.concatenate([k, k]), np.concatenate([v.y.columns[chosen], lettings.columns[row_of]]),
         np.concatenate([np.ones(len(chosen)), -coef / np.maximum(probability[row_of], 1e-12)]), 0.0, 0.0, pen)


def _directe_links(flows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The link groups of gestion directe, each directe flow's row among them, and P_ℓ = Σ_p coef_p,
    the probability that a dwelling of the group is let to its réservataire."""
    directe = flows["directe"].to_numpy(dtype=bool)
    own, row_of = np.unique(flows["link"].to_numpy()[directe], return_inverse=True)
    return own, row_of, np.bincount(row_of, weights=flows["coef"].to_numpy(dtype=float)[directe], minlength=len(own))


def _add_split(lp: LinearProgram, d: ModelData, v: Vars, pen: Penalties) -> None:
    """Σ_s w[u,s] = x[u] for every cell unit u, and per segment s: Σ w + segment units ≤ F_s
    (with the cell rows of `conservation`, every segment's dwellings are shared exactly)."""
    split = d.split
    coarse = split.loc[split["w"] >= 0]
    units = np.unique(coarse["unit"].to_numpy())
    row_of = np.searchsorted(units, coarse["unit"].to_numpy())
    labels = d.pairs.loc[units, ["reservataire", "commune", "typologie", "qpv"]].reset_index(drop=True)
    labels["portee"] = _text("logements ", labels["reservataire"], " répartition ", labels["commune"], " ",
                             labels["typologie"], " ", _qpv_word(labels["qpv"]))
    _add(lp, "conservation", labels, np.concatenate([row_of, np.arange(len(units))]),
         np.concatenate([v.split.start + coarse["w"].to_numpy(), v.x.columns[units]]),
         np.concatenate([np.ones(len(coarse)), -np.ones(len(units))]), 0.0, 0.0, pen)
    touched = np.unique(coarse["s"].to_numpy())
    inside = split["s"].isin(touched).to_numpy()
    rows = np.searchsorted(touched, split.loc[inside, "s"].to_numpy())
    w = split.loc[inside, "w"].to_numpy()
    cols = np.where(w >= 0, v.split.start + w, v.x.columns[split.loc[inside, "unit"].to_numpy()])
    seg = d.segments.loc[touched]
    labels = seg[["commune", "typologie", "qpv", "financement"]].reset_index(drop=True)
    labels["portee"] = _text("logements segment ", labels["commune"], " ", labels["typologie"], " ",
                             _qpv_word(labels["qpv"]), " ", labels["financement"])
    _add(lp, "conservation", labels, rows, cols, np.ones(len(rows)), -INF, seg["flux"].to_numpy(dtype=float), pen)


def mixity_targets(d: ModelData) -> pd.DataFrame:
    """Every mixity target of the generic form (CIA legal defaults + mixite.csv), one row each:
    famille, epci, zone, reservataire (None = all), critere, part_min."""
    return instance_mixity_targets(d.instance)


def instance_mixity_targets(instance) -> pd.DataFrame:
    """mixity_targets from the instance alone (the year simulator has no model)."""
    cia = instance.parametres.cia
    targets = {}
    for e in cia.epci:
        targets[("cia_hors_qpv_q1", e)] = dict(epci=e, zone="hors_qpv", reservataire=None, critere="q1",
                                                part_min=cia.q1_hors_qpv, origine="CIA (défaut légal)")
        targets[("cia_qpv_q234", e)] = dict(epci=e, zone="qpv", reservataire=None, critere="q234",
                                             part_min=cia.q234_qpv, origine="CIA (défaut légal)")
    extra = []
    for i, m in enumerate(instance.mixite):
        row = dict(epci=m.epci, zone=m.zone, reservataire=m.reservataire, critere=m.critere,
                   part_min=m.part_min, origine=f"mixite.csv ligne {i + 2}")
        # a line of the legal form replaces the CIA's own target; in an EPCI without a CIA it is a
        # local mixity target (`mixite`), not the law's
        if m.reservataire is None and m.epci in cia.epci and (m.zone, m.critere) == ("hors_qpv", "q1"):
            targets[("cia_hors_qpv_q1", m.epci)] = row
        elif m.reservataire is None and m.epci in cia.epci and (m.zone, m.critere) == ("qpv", "q234"):
            targets[("cia_qpv_q234", m.epci)] = row
        else:
            extra.append(dict(famille="mixite", **row))
    rows = [dict(famille=k[0], **row) for k, row in targets.items()] + extra
    return pd.DataFrame(rows, columns=["famille", "epci", "zone", "reservataire", "critere", "part_min", "origine"])


def add_mixite(lp: LinearProgram, d: ModelData, v: Vars, pen: Penalties) -> None:
    """CIA targets (cia_hors_qpv_q1, cia_qpv_q234, CCH L.441-1) and mixite.csv targets:
    attributions of a category ≥ part_min × planned flux of the scope."""
    targets = mixity_targets(d)
    flows = _arrays(d.flows, ["epci", "qpv", "reservataire", "quartile", "prioritaire", "travailleur_essentiel"])
    pairs = _arrays(d.pairs, ["epci", "qpv", "reservataire"])
    seg = _arrays(d.segments, ["epci", "qpv", "flux"])  # flux: whole dwellings (int), summed exactly
    for famille in ("cia_hors_qpv_q1", "cia_qpv_q234", "mixite"):
        chosen = targets.loc[targets["famille"] == famille].reset_index(drop=True)
        if chosen.empty:
            continue
        rows, cols, vals, lower = [], [], [], []
        for i, t in enumerate(chosen.itertuples(index=False)):
            in_zone_y = _zone_mask(flows, t.epci, t.zone)
            flag = _criterion(flows, t.critere)
            if not isinstance(t.reservataire, str):  # blank scope: every réservataire
                base = float(seg["flux"][_zone_mask(seg, t.epci, t.zone)].sum())
                chosen_y = v.y.columns[in_zone_y & flag]
                rows.append(np.full(len(chosen_y), i))
                cols.append(chosen_y)
                vals.append(np.ones(len(chosen_y)))
                lower.append(t.part_min * base)
            else:
                of_r = flows["reservataire"] == t.reservataire
                chosen_y = v.y.columns[in_zone_y & flag & of_r]
                x_mask = _zone_mask(pairs, t.epci, t.zone) & (pairs["reservataire"] == t.reservataire)
                chosen_x = v.x.columns[x_mask]
                rows.append(np.full(len(chosen_y) + len(chosen_x), i))
                cols.append(np.concatenate([chosen_y, chosen_x]))
                vals.append(np.concatenate([np.ones(len(chosen_y)), np.full(len(chosen_x), -t.part_min)]))
                lower.append(0.0)
        labels = chosen[["epci", "zone", "reservataire", "critere", "part_min", "origine"]].copy()
        labels["portee"] = ("EPCI " + labels["epci"] + " " + labels["zone"].map(
            {"qpv": "en QPV", "hors_qpv": "hors QPV", "tout": "tout le parc"})
            + labels["reservataire"].map(lambda r: f" réservataire {r}" if isinstance(r, str) else " tous réservataires")
            + " critère " + labels["critere"])
        _add(lp, famille, labels, np.concatenate(rows), np.concatenate(cols), np.concatenate(vals),
             np.asarray(lower), INF, pen)


def _zone_mask(table, epci: str, zone: str) -> np.ndarray:
    """`table`: a DataFrame, or its columns as arrays (`_arrays`, when masks are taken many times)."""
    mask = np.asarray(table["epci"]) == epci
    if zone == "qpv":
        mask = mask & np.asarray(table["qpv"], dtype=bool)
    elif zone == "hors_qpv":
        mask = mask & ~np.asarray(table["qpv"], dtype=bool)
    return mask


def _criterion(flows, critere: str) -> np.ndarray:
    if critere in ("q1", "q234"):
        return np.asarray(flows["quartile"]) == critere
    return np.asarray(flows[critere], dtype=bool)


def _arrays(table: pd.DataFrame, columns: list[str]) -> dict[str, np.ndarray]:
    """Some columns of `table` as numpy arrays: comparing an array is ~8× cheaper than a pandas
    column of text, and a family compares the same columns once per target."""
    return {c: table[c].to_numpy() for c in columns if c in table}


def default_prioritaires_rate(regles, type_: str) -> float:
    """Default share for publics prioritaires: the State's reservations (agents aside) are made for
    them (CCH R.441-5, `prefet_prioritaires`, 100 % by default); others `prioritaires_min`."""
    return regles.prefet_prioritaires if type_ == "prefet" else regles.prioritaires_min


def prioritaires_rates(instance) -> dict[str, float]:
    """t_r > 0 of every réservataire the publics_prioritaires rule concerns (the year simulator too)."""
    rates = {}
    for row in instance.reservataires:
        if row.taux_prioritaires is not None or row.type in PRIORITAIRES_TYPES:
            rate = (row.taux_prioritaires if row.taux_prioritaires is not None
                    else default_prioritaires_rate(instance.regles, row.type))
            if rate > 0:
                rates[row.id] = rate
    return rates


def add_publics_prioritaires(lp: LinearProgram, d: ModelData, v: Vars, pen: Penalties) -> None:
    """Attributions to publics prioritaires ≥ t_r × a base (CCH L.441-1, R.441-5).

    Composition demand model: the base is the réservataire's expected attributions (the law's
    « des attributions », see _prioritaires_on_lettings); the pools fix the mix in gestion directe
    (_add_directe), so the share is met by orienting dwellings to where its priority households
    are. Transport model: the base is its planned flux — with the attributions, a pool without
    priority households would make the model leave every dwelling unmatched to "meet" the share."""
    rates = prioritaires_rates(d.instance)
    concerned = [(r, rid, rates[rid]) for r, rid in enumerate(d.reservataires["id"]) if rid in rates]
    if not concerned:
        return
    flows, pairs = d.flows, d.pairs
    rows, cols, vals = [], [], []
    for i, (r, _, rate) in enumerate(concerned):
        of_r = (flows["r"] == r).to_numpy()
        prio = flows["prioritaire"].to_numpy(dtype=bool)[of_r]
        if d.composition:  # Σ prio − t·(expected lettings of r's dwellings) ≥ 0
            chosen, coef = _prioritaires_on_lettings(d, v, of_r, prio, rate)
        else:  # Σ prio − t·Σ x ≥ 0
            x_of_r = v.x.columns[(pairs["r"] == r).to_numpy()]
            chosen = np.concatenate([v.y.columns[of_r][prio], x_of_r])
            coef = np.concatenate([np.ones(int(prio.sum())), np.full(len(x_of_r), -rate)])
        rows.append(np.full(len(chosen), i))
        cols.append(chosen)
        vals.append(coef)
    labels = pd.DataFrame({"reservataire": [c[1] for c in concerned], "taux": [c[2] for c in concerned],
                           "base_taux": "attributions" if d.composition else "logements"})
    labels["portee"] = "réservataire " + labels["reservataire"]
    _add(lp, "publics_prioritaires", labels, np.concatenate(rows), np.concatenate(cols),
         np.concatenate(vals), 0.0, INF, pen)


def _prioritaires_on_lettings(d: ModelData, v: Vars, of_r: np.ndarray, prio: np.ndarray, rate: float):
    """Columns and coefficients of Σ prio y − t × base ≥ 0 for réservataire r (composition model).

    The base is what r's dwellings are expected to let, fixed by the dwellings the plan gives r:
    P_ℓ·X_ℓ in gestion directe — not the lettings L_ℓ, or letting nothing would "meet" any share.
    In gestion déléguée the bailleur aims z_p = y_p / P_p dwellings at pool p and proposes the
    others (X_ℓ − Σ_p z_p) like a réservataire in gestion directe, which lets P_ℓ of them: the base
    is Σ_p y_p + P_ℓ·(X_ℓ − Σ_p y_p / P_p). A dwelling aimed at nobody still counts in the base, so
    a share cannot be met by leaving dwellings unlet (CCH L.441-1: « des attributions »)."""
    flows = d.flows
    directe = flows["directe"].to_numpy(dtype=bool)[of_r]
    link_of = flows["link"].to_numpy()[of_r]
    probability = np.bincount(flows["link"].to_numpy(), weights=flows["coef"].to_numpy(dtype=float),
                              minlength=len(d.links))  # P_ℓ, every link group
    inverse = flows["inverse"].to_numpy(dtype=float)[of_r]
    y_coef = np.where(prio, 1.0, 0.0) - np.where(directe, 0.0, rate * (1.0 - probability[link_of] * inverse))
    mine = np.unique(link_of)
    columns = np.concatenate([v.y.columns[of_r], v.link.columns[mine]])
    coef = np.concatenate([y_coef, -rate * probability[mine]])
    keep = coef != 0
    return columns[keep], coef[keep]


def add_stabilisation(lp: LinearProgram, d: ModelData, v: Vars, pen: Penalties) -> None:
    """depassement[r,c] ≥ Σ_{x of r in commune c} x − ⌈N_r / F(T_r) × F_c⌉: a tiny cost that picks,
    among equal-fit optima, the plan closest to the proportional allocation, commune by commune
    (deterministic and sensible; one row per réservataire and commune keeps the model small)."""
    weight = d.instance.parametres.objectif.stabilisation
    if weight <= 0:
        return
    pairs = d.pairs
    table = d.reservataires
    base = table["base"].to_numpy(dtype=float)
    rate = np.divide(table["cible"].to_numpy(dtype=float), base, out=np.zeros(len(base)), where=base > 0)
    group = pairs.groupby(["r", "commune"], sort=True)
    keys = group.size().index.to_frame(index=False)
    flux_c = group["flux"].sum().to_numpy(dtype=float)
    share = np.ceil(rate[keys["r"].to_numpy()] * flux_c - 1e-9)
    needed = share < flux_c  # otherwise x ≤ flux ≤ share already
    row_of = np.full(len(keys), -1)
    row_of[needed] = np.arange(needed.sum())
    rows_x = row_of[group.ngroup().to_numpy()]
    keep = rows_x >= 0
    labels = keys.loc[needed].reset_index(drop=True)
    labels["reservataire"] = table["id"].to_numpy()[labels["r"].to_numpy()]
    labels["portee"] = _text("proportionnalité ", labels["reservataire"], " ", labels["commune"])
    over = lp.add_variables("depassement", labels, 0.0, INF, -weight)
    n = len(labels)
    rows = np.concatenate([rows_x[keep], np.arange(n)])
    cols = np.concatenate([v.x.columns[keep], over.columns])
    vals = np.concatenate([np.ones(keep.sum()), -np.ones(n)])
    _add(lp, "stabilisation", labels, rows, cols, vals, -INF, share[needed], pen)
