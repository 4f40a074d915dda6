"""The year as it is lived, simulated many times for any plan (`flux-opt evaluer`, models/orientation.md §9).

Each draw: the plan's dwellings are released in a random order through the year; each is
proposed to candidates of its réservataire's pools for its commune (or EPCI) and typology —
`candidats` proposals, drawn in proportion to what is left in the pools (gestion directe), or,
in gestion déléguée, aimed by the bailleur at the category the plan expected (attributions.csv)
when there is one; a household of quartile q accepts a dwelling of financement f with
probability a(q, f). The first acceptance lets the dwelling and takes the household out of its
pool. A dwelling nobody accepts returns to the bailleur, who proposes it to its own pools in the
same way; if nobody accepts it again, it stays vacant.

Reported with their spread over the draws: lettings and returns per réservataire, relettings by
the bailleur, vacant dwellings, the publics prioritaires share per réservataire and every mixity
share (CIA, mixite.csv), on the same bases as the plan's rules (the planned dwellings of the scope).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from flux_opt.input.schema import Instance
from flux_opt.model.data import with_bool_flags
from flux_opt.errors import InvalidInput
from flux_opt.plan.folder import plan_problems, read_attributions, read_plan
from flux_opt.plan.names import Names
from flux_opt.model.families import instance_mixity_targets, prioritaires_rates
from flux_opt.model.lettings import letting_probability
from flux_opt.model.registry import PUBLICS_PRIORITAIRES

CATEGORY = ["quartile", "prioritaire", "travailleur_essentiel"]
SEGMENT = ["commune", "epci", "qpv", "typologie", "financement"]
COLUMNS = ["indicateur", "portee", "cible", "prevu", "moyenne", "ecart_type", "p05", "p95"]


@dataclass
class Evaluation:
    table: pd.DataFrame  # COLUMNS, one row per indicator and scope
    tirages: int
    graine: int
    draws: dict[str, np.ndarray]  # a few indicators per draw, for the plots
    noms: Names = field(default_factory=Names)  # names of the réservataires, communes and EPCI (for people)


def evaluate(instance: Instance, plan: pd.DataFrame, attributions: pd.DataFrame | None = None,
             tirages: int = 200, graine: int = 0) -> Evaluation:
    """Simulate `tirages` years of `plan` (SEGMENT + reservataire, logements; qpv boolean)."""
    year = _Year(instance, plan, attributions)
    rng = np.random.default_rng(graine)
    realised = [year.draw(rng) for _ in range(tirages)]
    expected = year.expected()
    table = _summary(year, realised, expected)
    draws = {"attributions": np.array([r["lettings"].sum() for r in realised]),
             "vacants": np.array([r["vacant"] for r in realised])}
    return Evaluation(table, tirages, graine, draws, Names.of(instance))


def evaluate_folder(folder, instance: Instance, tirages: int = 200, graine: int = 0) -> Evaluation:
    """Simulate the plan of a folder (or of its plan.csv), and of attributions.csv when there is one;
    InvalidInput (French: file, line, field) when a row does not fit the instance."""
    plan, attributions = read_plan(folder), read_attributions(folder)
    problems = plan_problems(instance, plan, attributions)
    if problems:
        raise InvalidInput(problems)
    if tirages < 1:
        raise ValueError("--tirages : au moins 1 tirage")
    return evaluate(instance, plan, attributions, tirages, graine)


class _Year:
    """The plan as dwellings, the pools as count vectors, and the draw of one year."""

    def __init__(self, instance: Instance, plan: pd.DataFrame, attributions: pd.DataFrame | None):
        self.instance = instance
        # plan.csv / attributions.csv as written (oui/non) or as read (booleans)
        self.plan = with_bool_flags(plan.loc[plan["logements"] > 0].reset_index(drop=True))
        self.attributions = None if attributions is None else with_bool_flags(attributions)
        self.rates = instance.acceptance()
        rows = {r.id: r for r in instance.reservataires}
        self.bailleur = next(r.id for r in instance.reservataires if r.type == "bailleur")
        self.pools = instance.table("demande")
        self.pools["demandeurs"] = np.round(self.pools["demandeurs"].astype(float)).astype(np.int64)
        index: dict[tuple, list[int]] = {}
        for i, p in enumerate(self.pools.itertuples(index=False)):
            zone = p.commune if isinstance(p.commune, str) else p.epci
            index.setdefault((p.reservataire, zone, p.typologie), []).append(i)
        self.index = {k: np.asarray(v) for k, v in index.items()}
        unit = self.plan.index.repeat(self.plan["logements"].to_numpy())
        self.dwelling = self.plan.loc[unit, SEGMENT + ["reservataire"]].reset_index(drop=True)
        self.candidates = {rid: rows[rid].candidats_attendus for rid in rows}
        self.directe = {rid: rows[rid].gestion == "directe" for rid in rows}
        # Per pool row and financement: the probability that its household accepts.
        quartile = self.pools["quartile"].to_numpy()
        self.accept = {f: np.array([self.rates[(q, f)] for q in quartile]) for f in ("PLAI", "PLUS", "PLS", "autre")}
        aims = self._aims()
        self.dwelling_arrays = {c: self.dwelling[c].to_numpy() for c in ("epci", "reservataire")}
        self.dwelling_arrays["qpv"] = self.dwelling["qpv"].to_numpy(dtype=bool)
        self.pool_arrays = {c: self.pools[c].to_numpy() for c in CATEGORY}
        self.scopes = self._scopes()
        self.steps = []  # per dwelling: own pools, aims, n, bailleur's pools, n bailleur, financement
        n_b = self.candidates[self.bailleur]
        for i, row, d in zip(range(len(unit)), unit, self.dwelling.itertuples(index=False)):
            own = self.pool_rows(d.reservataire, d.commune, d.epci, d.typologie)
            back = (self.pool_rows(self.bailleur, d.commune, d.epci, d.typologie)
                    if d.reservataire != self.bailleur else None)
            self.steps.append((own, aims.get(row), self.candidates[d.reservataire], back, n_b, d.financement))

    def pool_rows(self, rid: str, commune: str, epci: str, typologie: str) -> np.ndarray:
        return np.concatenate([self.index.get((rid, commune, typologie), np.zeros(0, dtype=np.int64)),
                               self.index.get((rid, epci, typologie), np.zeros(0, dtype=np.int64))])

    def _aims(self) -> dict[int, tuple[list[np.ndarray], np.ndarray]]:
        """Gestion déléguée: per plan row, the pool rows the plan aims at (one list per category)
        and the share of its dwellings aimed at each (y / P(let) / dwellings: the model's z, see
        model/lettings.py)."""
        if self.attributions is None or self.attributions.empty:
            return {}
        keys = ["commune", "qpv", "typologie", "financement", "reservataire"]
        merged = self.attributions.merge(self.plan.reset_index().rename(columns={"index": "plan_row"}),
                                         on=keys, suffixes=("", "_plan"))
        categories = self.pools[CATEGORY].to_numpy()
        aims = {}
        for row, group in merged.groupby("plan_row"):
            plan = self.plan.loc[row]
            rid = plan["reservataire"]
            if self.directe[rid]:
                continue
            rows = self.pool_rows(rid, plan["commune"], plan["epci"], plan["typologie"])
            a = np.array([self.rates[(q, plan["financement"])] for q in group["quartile"]])
            share = group["attributions_prevues"].to_numpy(dtype=float) / np.maximum(
                letting_probability(a, self.candidates[rid]), 1e-9) / plan["logements"]
            wanted = [rows[(categories[rows] == np.asarray(c, dtype=object)).all(axis=1)]
                      for c in group[CATEGORY].to_numpy()]
            aims[row] = (wanted, np.cumsum(share))
        return aims

    def draw(self, rng: np.random.Generator) -> dict:
        counts = self.pools["demandeurs"].to_numpy().copy()
        n = len(self.steps)
        let_to = np.full(n, -1)  # pool row of the household housed by the réservataire's proposal
        relet_to = np.full(n, -1)  # pool row of the bailleur's candidate after a return
        for i in rng.permutation(n):
            own, aim, n_own, back, n_back, fin = self.steps[i]
            if aim is not None:
                k = int(np.searchsorted(aim[1], rng.random(), side="right"))
                if k < len(aim[0]) and len(aim[0][k]):
                    own = aim[0][k]  # the bailleur aims at this category (else: the pools' composition)
            let_to[i] = self._propose(own, counts, self.accept[fin], n_own, rng)
            if let_to[i] < 0 and back is not None:
                relet_to[i] = self._propose(back, counts, self.accept[fin], n_back, rng)
        return self._measures(let_to, relet_to)

    @staticmethod
    def _propose(rows: np.ndarray, counts: np.ndarray, accept: np.ndarray, n: int, rng) -> int:
        """Up to n proposals drawn from the pools' remaining candidates; the pool row of the first
        household that accepts (taken out of its pool), or -1."""
        if len(rows) == 0:
            return -1
        for _ in range(n):
            cumulative = np.cumsum(counts[rows])
            if cumulative[-1] <= 0:
                return -1
            k = rows[np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")]
            if rng.random() < accept[k]:
                counts[k] -= 1
                return int(k)
        return -1

    def _measures(self, let_to: np.ndarray, relet_to: np.ndarray) -> dict:
        d, pools = self.dwelling_arrays, self.pool_arrays
        own, back = let_to >= 0, relet_to >= 0
        who = d["reservataire"]
        lettings = pd.Series(who[own]).value_counts()
        returned = pd.Series(who[~own]).value_counts()
        every = np.concatenate([np.flatnonzero(own), np.flatnonzero(back)])
        housed = np.concatenate([let_to[own], relet_to[back]])
        frame = {c: d[c][every] for c in ("epci", "qpv")} | {c: pools[c][housed] for c in CATEGORY}
        frame["reservataire"] = np.concatenate([who[own], np.full(back.sum(), self.bailleur, dtype=object)])
        frame["valeur"] = np.ones(len(every))
        frame["propre"] = np.arange(len(every)) < own.sum()  # let by the réservataire's own proposal
        return {"lettings": lettings, "returned": returned, "relet": float(back.sum()),
                "vacant": float((~own & ~back).sum()), "shares": self.shares(frame)}

    def expected(self) -> dict | None:
        """The plan's own expectation (attributions.csv), measured like a draw."""
        if self.attributions is None:
            return None
        a = self.attributions
        frame = {c: a[c].to_numpy() for c in ("epci", "qpv", "reservataire", *CATEGORY)}
        frame["qpv"] = frame["qpv"].astype(bool)
        frame["valeur"] = a["attributions_prevues"].to_numpy(dtype=float)
        frame["propre"] = np.ones(len(a), dtype=bool)
        planned = self.plan.groupby("reservataire")["logements"].sum()
        lettings = a.groupby("reservataire")["attributions_prevues"].sum()
        return {"lettings": lettings, "returned": planned.sub(lettings, fill_value=0.0), "shares": self.shares(frame)}

    def shares(self, f: dict[str, np.ndarray]) -> dict[tuple[str, str], float]:
        """Publics prioritaires per réservataire, of its lettings (CCH L.441-1: « des attributions »),
        and every mixity share, of the planned dwellings of the scope (the base of the plan's
        rules). `f`: one row per letting (arrays)."""
        out = {}
        for key, rid, critere, epci, zone, base in self.scopes:
            mask = f["propre"] & (f["reservataire"] == rid) if rid is not None else np.ones(len(f["valeur"]), bool)
            if epci is not None:
                mask = mask & _in_zone(f["epci"], f["qpv"], epci, zone)
            flag = (f["quartile"] == critere) if critere in ("q1", "q234") else f[critere].astype(bool)
            if base is None:  # of the scope's lettings
                base = float(f["valeur"][mask].sum())
            out[key] = float(f["valeur"][mask & flag].sum()) / base if base else np.nan
        return out

    def _scopes(self) -> list[tuple]:
        """(key, réservataire or None, critère, epci or None, zone, base) of every share reported."""
        plan = self.plan
        qpv, epci = plan["qpv"].to_numpy(dtype=bool), plan["epci"].to_numpy()
        own = plan["reservataire"].to_numpy()
        logements = plan["logements"].to_numpy(dtype=float)
        scopes = []
        for rid in prioritaires_rates(self.instance):
            scopes.append(((PUBLICS_PRIORITAIRES, rid), rid, "prioritaire", None, None, None))
        for t in instance_mixity_targets(self.instance).itertuples(index=False):
            rid = t.reservataire if isinstance(t.reservataire, str) else None
            mask = _in_zone(epci, qpv, t.epci, t.zone) & ((own == rid) if rid is not None else True)
            scopes.append(((t.famille, _scope_label(t)), rid, t.critere, t.epci, t.zone, logements[mask].sum()))
        return scopes


def _in_zone(epcis: np.ndarray, qpv: np.ndarray, epci: str, zone: str) -> np.ndarray:
    qpv = np.asarray(qpv, dtype=bool)
    return (epcis == epci) & (qpv if zone == "qpv" else ~qpv if zone == "hors_qpv" else True)


def _scope_label(t) -> str:
    zone = {"qpv": "en QPV", "hors_qpv": "hors QPV", "tout": "tout le parc"}[t.zone]
    who = f"réservataire {t.reservataire}" if isinstance(t.reservataire, str) else "tous réservataires"
    return f"EPCI {t.epci} {zone} {who} critère {t.critere}"


def _spread(values: list[float]) -> dict:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return dict(moyenne=np.nan, ecart_type=np.nan, p05=np.nan, p95=np.nan)
    return dict(moyenne=v.mean(), ecart_type=v.std(ddof=1) if len(v) > 1 else 0.0,
                p05=np.quantile(v, 0.05), p95=np.quantile(v, 0.95))


def _summary(year: _Year, realised: list[dict], expected: dict | None) -> pd.DataFrame:
    ids = list(dict.fromkeys(year.plan["reservataire"]))
    rows = []

    def add(indicateur, portee, values, cible=np.nan, prevu=np.nan):
        rows.append(dict(indicateur=indicateur, portee=portee, cible=cible, prevu=prevu, **_spread(values)))

    def planned(key, rid):
        return float(expected[key].get(rid, 0.0)) if expected is not None else np.nan

    for rid in ids:
        add("attributions", rid, [r["lettings"].get(rid, 0.0) for r in realised], prevu=planned("lettings", rid))
        add("retours au bailleur", rid, [r["returned"].get(rid, 0.0) for r in realised],
            prevu=planned("returned", rid))
    add("attributions", "ensemble", [r["lettings"].sum() for r in realised],
        prevu=float(expected["lettings"].sum()) if expected is not None else np.nan)
    add("relocations par le bailleur après retour", "ensemble", [r["relet"] for r in realised])
    add("logements vacants", "ensemble", [r["vacant"] for r in realised])
    rates = prioritaires_rates(year.instance)
    targets = {(t.famille, _scope_label(t)): t.part_min
               for t in instance_mixity_targets(year.instance).itertuples(index=False)}
    for key in realised[0]["shares"] if realised else []:
        cible = rates.get(key[1], np.nan) if key[0] == PUBLICS_PRIORITAIRES else targets[key]
        add(f"part {key[0]}", key[1], [r["shares"][key] for r in realised], cible=cible,
            prevu=expected["shares"].get(key, np.nan) if expected is not None else np.nan)
    table = pd.DataFrame(rows, columns=COLUMNS)
    numeric = ["cible", "prevu", "moyenne", "ecart_type", "p05", "p95"]
    table[numeric] = table[numeric].astype(float).round(4)
    return table


YEAR_HEADINGS = {"indicateur": "Indicateur", "portee": "Portée", "cible": "Cible", "prevu": "Prévu par le plan",
                 "moyenne": "Année simulée (moyenne)", "p05": "5 %", "p95": "95 %"}


def evaluate_result(instance: Instance, result, tirages: int = 50, graine: int = 0) -> pd.DataFrame:
    """The simulated year of a plan just computed (a pipeline Result), as the negotiation page shows
    it beside the plan: French headings, rounded figures."""
    table = evaluate(instance, result.plan, result.attributions, tirages, graine).table
    shown = table[[c for c in YEAR_HEADINGS if c in table.columns]].rename(columns=YEAR_HEADINGS).round(1)
    return shown.astype(object).where(shown.notna(), "")
