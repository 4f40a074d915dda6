"""The conformity table of a plan: one line per legal rule and scope (règle, portée, source, base,
limite, valeur, respectée), from the instance and the plan's files alone.

A convention may lower a legal rate, never raise it: each cap uses the lower of the instance's rate
and the law's. Rules on expected attributions (publics prioritaires, CIA) are checked on the
attributions recomputed from plan.csv and the instance's demand and acceptance (lettings.py), so a
plan without attributions.csv (a spreadsheet, a previous year) is checked too; only the
`transport` demand model, where the plan alone picks the households, needs attributions.csv.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from flux_opt.conformity.assiette import Reference, ceil_min, floor_cap, reference
from flux_opt.conformity.lettings import capped, differences, recompute
from flux_opt.errors import InvalidInput
from flux_opt.input.schema import Instance, parse_bool
from flux_opt.vocabulary import missed
# The family names only (the stable names of conformite.csv): the arithmetic below is re-derived
# from the law on purpose, independently of the model (a second opinion).
from flux_opt.model.registry import (CIA_HORS_QPV_Q1, CIA_QPV_Q234, CONSERVATION, DEMANDE, PLAFOND_AGENTS, PLAFOND_COLLECTIVITE,
                                     PLAFOND_PREFET, PREFET_HORS_QPV, PUBLICS_PRIORITAIRES, TERRITOIRE,
                                     UNIFORMITE_PREFET)
from flux_opt.plan.folder import plan_problems, read_attributions, read_plan

LEGAL = {"prefet_taux": 0.30, "prefet_agents_taux": 0.05, "collectivite_plafond": 0.20}
STATE = ("prefet", "prefet_agents")
COLUMNS = ["regle", "portee", "source", "base", "limite", "valeur", "respectee"]


@dataclass
class PlanFiles:
    plan: pd.DataFrame  # commune, qpv (bool), typologie, financement, reservataire, logements
    attributions: pd.DataFrame | None  # + quartile, prioritaire (bool), attributions_prevues


def _n(value: float) -> str:
    """1 234 or 5,8: whole numbers plain, others with one decimal (« ≥ 5,8 (25 % de 23) »)."""
    value = round(float(value), 1)
    text = f"{value:,.0f}" if value.is_integer() else f"{value:,.1f}"
    return text.replace(",", " ").replace(".", ",")


def _pct(rate: float) -> str:
    return f"{_n(100 * rate)} %"


def _line(regle, portee, source, base, sens, limite, valeur, on_attributions=False, texte=None) -> dict:
    """One line; « non » only when the value misses its bound by more than the one tolerance
    (flux_opt/vocabulary.py). The value is shown rounded like its bound (one decimal)."""
    gap = valeur - limite if sens == "≤" else limite - valeur
    ok = not missed(gap, on_attributions)
    return {"regle": regle, "portee": portee, "source": source, "base": base,
            "limite": texte or f"{sens} {_n(limite)}", "valeur": round(float(valeur), 1), "respectee": "oui" if ok else "non"}


class _Dwellings:
    """The plan's dwellings summed once per réservataire, then per (commune, qpv): every count of a
    rule is a sum of these, instead of one mask over plan.csv per rule (a national plan has
    thousands of rows and a rule per commune). Whole dwellings: the order of the sum is exact."""

    def __init__(self, plan: pd.DataFrame):
        by_r: dict = defaultdict(lambda: defaultdict(int))
        for r, commune, qpv, n in zip(plan["reservataire"].tolist(), plan["commune"].tolist(),
                                      plan["qpv"].tolist(), plan["logements"].tolist()):
            by_r[r][(commune, qpv)] += n
        self.by_r = by_r

    def count(self, ids, communes=None, qpv: bool | None = None, outside: bool = False) -> float:
        """Dwellings of `ids` (in `communes`, or outside them with `outside`; in or out of QPV)."""
        total = 0
        for r in dict.fromkeys(ids):
            for (commune, q), n in self.by_r.get(r, {}).items():
                if communes is not None and (commune in communes) == outside:
                    continue
                if qpv is not None and q != qpv:
                    continue
                total += n
        return float(total)

    def per_commune(self, ids) -> dict:
        out: dict = defaultdict(int)
        for r in dict.fromkeys(ids):
            for (commune, _), n in self.by_r.get(r, {}).items():
                out[commune] += n
        return out


def _structure(instance: Instance, ref: Reference, plan: pd.DataFrame, dw: _Dwellings) -> list[dict]:
    """Every released dwelling to exactly one réservataire, each inside its territory."""
    got = plan.groupby(["commune", "typologie", "qpv", "financement"])["logements"].sum().to_dict()
    off = sum(abs(got.get(s, 0) - f) for s, f in ref.flux.items()) + sum(
        v for s, v in got.items() if s not in ref.flux)
    lines = [_line(CONSERVATION, "chaque segment (commune, typologie, QPV, financement)",
                   "flux annuel (CCH R.441-5)", ref.total, "≤", 0, off,
                   texte="0 logement d'écart au flux de chaque segment")]
    for r in instance.reservataires:
        outside = dw.count([r.id], ref.territoires[r.id], outside=True)
        lines.append(_line(TERRITOIRE, f"réservataire {r.id}", "convention de réservation",
                           dw.count([r.id]), "≤", 0, outside, texte="0 logement hors de son territoire"))
    return lines


def _state(instance: Instance, ref: Reference, dw: _Dwellings) -> list[dict]:
    regles, lines = instance.regles, []
    state = [r.id for r in instance.reservataires if r.type in STATE]
    agents = [r.id for r in instance.reservataires if r.type == "prefet_agents"]
    if not state:
        return lines
    rate = min(regles.prefet_taux, LEGAL["prefet_taux"])
    lines.append(_line(PLAFOND_PREFET, "préfet, agents compris", "CCH R.441-5-2", ref.total, "≤",
                       floor_cap(rate, ref.total), dw.count(state),
                       texte=f"≤ {floor_cap(rate, ref.total)} ({_pct(rate)} de {ref.total}, au plus)"))
    if agents:
        rate = min(regles.prefet_agents_taux, LEGAL["prefet_agents_taux"])
        lines.append(_line(PLAFOND_AGENTS, "agents civils et militaires de l'État", "CCH R.441-5-2", ref.total,
                           "≤", floor_cap(rate, ref.total), dw.count(agents),
                           texte=f"≤ {floor_cap(rate, ref.total)} ({_pct(rate)} de {ref.total}, au plus)"))
    lines.append(_hors_qpv(instance, ref, dw, state))
    return lines + _uniformity(instance, ref, dw, state)


def _band(instance: Instance, ref: Reference, state_total: float) -> dict[str, tuple[int, int, int]]:
    """commune → (low, high, flux) of the State's dwellings the uniformity rule allows."""
    rho = state_total / ref.total if ref.total else 0.0
    tau = instance.regles.prefet_uniformite_tolerance
    flux_of: dict[str, int] = defaultdict(int)  # one pass over the segments, not one per commune
    for segment, f in ref.flux.items():
        flux_of[segment[0]] += f
    bands = {}
    for commune in sorted(ref.epci_of):
        f_c = flux_of.get(commune, 0)
        low, high = max(ceil_min(1, rho * f_c - tau), 0), floor_cap(1, rho * f_c + tau)
        if low > high:
            low, high = floor_cap(1, rho * f_c), ceil_min(1, rho * f_c)
        bands[commune] = (low, high, f_c)
    return bands


def _hors_qpv(instance: Instance, ref: Reference, dw: _Dwellings, state: list[str]) -> dict:
    """The préfet's hors-QPV floor (CCH R.441-5-2 II), never above what the plan's State dwellings
    can give within the uniformity band: reading « taux », ⌊min(30 %, its rate) × hors-QPV flux⌋;
    reading « part », ⌈30 % of its dwellings⌉."""
    regles = instance.regles
    own = dw.count(state)
    hors_of: dict[str, int] = defaultdict(int)
    for segment, f in ref.flux.items():
        if not segment[2]:
            hors_of[segment[0]] += f
    bands = _band(instance, ref, own)
    reachable = max(0, min(sum(min(high, hors_of[c]) for c, (_, high, _) in bands.items()),
                           own - sum(max(0, low - hors_of[c]) for c, (low, _, _) in bands.items())))
    minimum, value = regles.prefet_hors_qpv_min, dw.count(state, qpv=False)
    if regles.prefet_hors_qpv_lecture == "taux":
        hors = ref.flux_in(ref.epci_of, qpv=False)
        rate = min(minimum, min(regles.prefet_taux, LEGAL["prefet_taux"]), own / ref.total if ref.total else 0.0)
        low = min(floor_cap(rate, hors), reachable)
        return _line(PREFET_HORS_QPV, "préfet hors QPV (taux sur le flux hors QPV)", "CCH R.441-5-2 II",
                     hors, "≥", low, value, texte=f"≥ {low} ({_pct(rate)} de {hors}, arrondi à l'entier inférieur"
                     + (f" ; au plus {reachable} possibles hors QPV)" if low == reachable < floor_cap(rate, hors) else ")"))
    low = min(ceil_min(minimum, own), reachable)
    return _line(PREFET_HORS_QPV, "préfet hors QPV (part de ses logements)", "CCH R.441-5-2 II",
                 own, "≥", low, value, texte=f"≥ {low} ({_pct(minimum)} de {_n(own)})")


def _uniformity(instance: Instance, ref: Reference, dw: _Dwellings, state: list[str]) -> list[dict]:
    """The State's rate is the same in every commune, within the tolerance (CCH R.441-5-2 II)."""
    if ref.total == 0:
        return []
    rho = dw.count(state) / ref.total
    tau = instance.regles.prefet_uniformite_tolerance
    state_of = dw.per_commune(state)
    lines = []
    for commune, (low, high, f_c) in _band(instance, ref, dw.count(state)).items():
        value = float(state_of.get(commune, 0))
        line = _line(UNIFORMITE_PREFET, f"commune {commune}", "CCH R.441-5-2 II", f_c, "≥", low, value,
                     texte=f"entre {low} et {high} ({_pct(round(rho, 4))} de {f_c} ± {_n(tau)})")
        if value > high + 1e-6:
            line["respectee"] = "non"
        lines.append(line)
    return lines


def _collectivites(instance: Instance, ref: Reference, dw: _Dwellings) -> list[dict]:
    """All collectivités without financing together within 20 % of each of their territories."""
    capped = [r for r in instance.reservataires if r.type == "collectivite" and not r.financement_apporte]
    rate = min(instance.regles.collectivite_plafond, LEGAL["collectivite_plafond"])
    ids = [r.id for r in capped]
    lines, seen = [], set()
    for r in capped:
        territory = ref.territoires[r.id]
        if territory in seen:
            continue
        seen.add(territory)
        base = ref.flux_in(territory)
        owners = ", ".join(x.id for x in capped if ref.territoires[x.id] == territory)
        lines.append(_line(PLAFOND_COLLECTIVITE, f"territoire de {owners} (collectivités ensemble)", "CCH R.441-5",
                           base, "≤", floor_cap(rate, base), dw.count(ids, territory),
                           texte=f"≤ {floor_cap(rate, base)} ({_pct(rate)} de {base}, au plus)"))
    return lines


class _Attributions:
    """The columns of an attributions table the rules mask, read once (a national plan has tens of
    thousands of rows and a rule per réservataire and EPCI): masks on codes, sums as pandas sums
    them (NaN skipped, in row order)."""

    def __init__(self, att: pd.DataFrame):
        self.values = att["attributions_prevues"].to_numpy()
        self.ids, self.id_names = pd.factorize(att["reservataire"])
        self.communes, self.commune_names = pd.factorize(att["commune"].astype(str))
        self.qpv = att["qpv"].to_numpy()
        self.quartile = att["quartile"].to_numpy()
        self.prioritaire = att["prioritaire"].to_numpy(dtype=bool)

    def of(self, rid) -> np.ndarray:
        code = np.flatnonzero(np.asarray(self.id_names, dtype=object) == rid)
        return self.ids == code[0] if len(code) else np.zeros(len(self.ids), dtype=bool)

    def in_communes(self, communes) -> np.ndarray:
        return np.isin(self.communes, [i for i, c in enumerate(self.commune_names) if c in communes])

    def total(self, mask: np.ndarray):
        return np.nansum(self.values[mask])


def _attribution_rules(instance: Instance, ref: Reference, files: PlanFiles, dw: _Dwellings) -> list[dict]:
    """Publics prioritaires (CCH L.441-1, R.441-5) and CIA targets (L.441-1) on expected attributions.

    Composition model (the default): the expected attributions are recomputed from plan.csv and
    the instance's demand and acceptance (flux_opt/conformity/lettings.py), never read;
    attributions.csv, when present, is compared to them (line `demande` « attributions.csv
    comparé au plan ») and only gives the déléguée aims that fit the dwellings. Transport model:
    the plan chooses the households, so attributions.csv is needed, cut back to one household per
    dwelling, and the priority base is r's dwellings."""
    regles, plan, att = instance.regles, files.plan, files.attributions
    composition = instance.parametres.demande.modele == "composition"
    lines, base_of = [], {}
    if composition:
        recomputed = recompute(instance, plan, att)
        if att is not None:
            gaps = differences(att, recomputed.attributions)
            columns = _Attributions(att)
            for r in instance.reservataires:
                read = float(columns.total(columns.of(r.id)))
                mine = recomputed.base.get(r.id, 0.0)
                if read > 0 or mine > 0:
                    lines.append(_line(DEMANDE, f"réservataire {r.id} (attributions.csv comparé au plan)",
                                       "CCH L.441-2-1 (demandes), plan.csv", dw.count([r.id]), "≤", 0,
                                       gaps.get(r.id, 0.0), on_attributions=True,
                                       texte=f"0 d'écart aux {_n(mine)} attributions recalculées du plan "
                                       "(ses logements, ses viviers, l'acceptation)"))
                    if lines[-1]["respectee"] == "non":
                        lines[-1]["limite"] = (f"attributions.csv ne correspond pas au plan : {_n(read)} lues, "
                                               f"{_n(mine)} recalculées")
        att, base_of = recomputed.attributions, recomputed.base
    elif att is not None:
        att = capped(instance, plan, att)
    rules = []  # (regle, portee, source, rate, mask of the numerator, base)
    for r in instance.reservataires:
        rate = r.taux_prioritaires
        if rate is None and r.type in ("prefet", "action_logement", "collectivite", "bailleur"):
            rate = regles.prefet_prioritaires if r.type == "prefet" else regles.prioritaires_min
        if rate:
            base = base_of.get(r.id, 0.0) if composition else dw.count([r.id])
            rules.append((PUBLICS_PRIORITAIRES, f"réservataire {r.id}", "CCH L.441-1, R.441-5", rate,
                          lambda a, rid=r.id: a.of(rid) & a.prioritaire, round(base, 4)))
    for (epci, name), rate in sorted(_cia_rates(instance).items()):
        communes = {c for c, e in ref.epci_of.items() if e == epci}
        qpv, quartile = (False, "q1") if name == CIA_HORS_QPV_Q1 else (True, "q234")
        rules.append((name, f"EPCI {epci}", "CCH L.441-1 (CIA)", rate,
                      lambda a, c=communes, q=qpv, k=quartile: a.in_communes(c) & (a.qpv == q) & (a.quartile == k),
                      ref.flux_in(communes, qpv=qpv)))
    columns = _Attributions(att) if att is not None else None
    for regle, portee, source, rate, numerator, base in rules:
        if att is None:
            lines.append({"regle": regle, "portee": portee, "source": source, "base": base,
                          "limite": f"≥ {_pct(rate)} de {_n(base)}", "valeur": None,
                          "respectee": "non vérifiable (attributions.csv absent)"})
            continue
        chosen = columns.total(numerator(columns))
        lines.append(_line(regle, portee, source, base, "≥", rate * base, chosen, on_attributions=True,
                           texte=f"≥ {_n(rate * base)} ({_pct(rate)} de {_n(base)})"))
    return lines


def _cia_rates(instance: Instance) -> dict[tuple[str, str], float]:
    """(EPCI, rule) → minimum share: the CIA's rates for `[cia] epci`, replaced by the lines of
    mixite.csv of the same legal form (all réservataires, Q1 hors QPV or Q2–Q4 in QPV)."""
    cia = instance.parametres.cia
    rates = {}
    for epci in cia.epci:
        rates[(epci, CIA_HORS_QPV_Q1)] = cia.q1_hors_qpv
        rates[(epci, CIA_QPV_Q234)] = cia.q234_qpv
    legal_form = {("hors_qpv", "q1"): CIA_HORS_QPV_Q1, ("qpv", "q234"): CIA_QPV_Q234}
    for m in instance.mixite:  # an EPCI without a CIA has no legal mixity target
        if m.reservataire is None and m.epci in cia.epci and (m.zone, m.critere) in legal_form:
            rates[(m.epci, legal_form[(m.zone, m.critere)])] = m.part_min
    return rates


def conformity(instance: Instance, files: PlanFiles) -> pd.DataFrame:
    """The conformity table of a plan (COLUMNS), in the order: structure, State, collectivités,
    attributions."""
    ref = reference(instance)
    plan = files.plan
    dw = _Dwellings(plan)
    lines = (_structure(instance, ref, plan, dw) + _state(instance, ref, dw) + _collectivites(instance, ref, dw)
             + _attribution_rules(instance, ref, files, dw))
    return pd.DataFrame(lines, columns=COLUMNS)


def holds(table: pd.DataFrame) -> bool:
    """True when no line is « non » (« non vérifiable » lines do not fail the check)."""
    return not (table["respectee"] == "non").any()


def from_result(plan: pd.DataFrame, attributions: pd.DataFrame | None) -> PlanFiles:
    """A plan held in memory (plan.csv / attributions.csv tables, qpv as oui/non)."""
    def as_bool(table: pd.DataFrame, column: str) -> pd.DataFrame:
        # each distinct text read once (a column holds two: oui, non), not once per row
        return table.assign(**{column: table[column].map({v: parse_bool(v) for v in table[column].unique()})
                               .astype(bool)})

    att = None if attributions is None else as_bool(as_bool(attributions, "qpv"), "prioritaire")
    return PlanFiles(as_bool(plan, "qpv"), att)


def read_plan_files(folder: str | Path, instance: Instance | None = None) -> PlanFiles:
    """plan.csv (required) and attributions.csv (optional) of a plan folder, or of the folder of a
    plan.csv given as a file, in any CSV dialect the instance reader accepts; with `instance`, a
    row that does not fit it (unknown réservataire, commune or segment) is an InvalidInput."""
    files = PlanFiles(read_plan(folder), read_attributions(folder))
    problems = plan_problems(instance, files.plan, files.attributions) if instance is not None else []
    if problems:
        raise InvalidInput(problems)
    return files
