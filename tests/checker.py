"""Independent checker of an orientation plan against the hard rules.

Re-implements, from the written rules only (models/orientation.md, DOMAIN.md §3,
§4, §6, FORMAT.md), what a plan must satisfy. It deliberately imports nothing
from `flux_opt`: its purpose is to catch bugs in the model, so it must not share
the model's code. Plain `csv` + `tomllib`, floats with the documented 1e-9
tolerance against binary noise.

Entry points: `check_plan(instance_dir, plan_dir)` and `violated_rows(plan_dir)`.
"""

from __future__ import annotations

import csv
import math
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

NOISE = 1e-9
FILE_ROUNDING = 1e-3  # per attribution line written with limited decimals
RELATIVE = 1e-6

DEFAULT_RULES = {
    "prefet_taux": 0.30,
    "prefet_agents_taux": 0.05,
    "prefet_hors_qpv_min": 0.30,
    "prefet_hors_qpv_lecture": "taux",
    "prefet_uniformite_tolerance": 1,
    "collectivite_plafond": 0.20,
    "prioritaires_min": 0.25,
    "prefet_prioritaires": 1.0,
}
DEFAULT_CIA = {"q1_hors_qpv": 0.25, "q234_qpv": 0.50}
# models/orientation.md §2 (composition demand model): acceptance by quartile × financement.
DEFAULT_ACCEPTANCE = {("q1", "PLAI"): 0.85, ("q1", "PLUS"): 0.70, ("q1", "PLS"): 0.20, ("q1", "autre"): 0.80,
                      ("q234", "PLAI"): 0.55, ("q234", "PLUS"): 0.75, ("q234", "PLS"): 0.70,
                      ("q234", "autre"): 0.60}
TRUE_WORDS = {"oui", "true", "1", "vrai", "o", "yes"}
FALSE_WORDS = {"non", "false", "0", "faux", "n", "no", ""}
PLAN_COLUMNS = ("commune", "epci", "qpv", "typologie", "financement", "reservataire", "logements")
ATTRIBUTION_COLUMNS = PLAN_COLUMNS[:-1] + ("quartile", "prioritaire", "attributions_prevues")


@dataclass(frozen=True)
class Violation:
    """A hard rule broken by a plan: `ecart` is by how much (> 0)."""

    famille: str
    portee: str
    ecart: float


# A segment: (commune, typologie, qpv, financement); sorted tuples give the tie order.
Segment = tuple[str, str, bool, str]
Cell = tuple[str, str, bool]  # (commune, typologie, qpv)
Category = tuple[str, bool, bool]  # (quartile, prioritaire, travailleur_essentiel)


class MalformedFile(Exception):
    """A plan file that cannot be read at all (reported as `integrite`)."""


# ---------------------------------------------------------------- small helpers


def rnd(value: float) -> int:
    """Round half up, with the documented tolerance against binary noise."""
    return math.floor(value + 0.5 + NOISE)


def cap(rate: float, base: float) -> int:
    """A legal cap ("au plus"): never rounded up (CCH R.441-5, R.441-5-2)."""
    return floor_tol(rate * base)


def floor_tol(value: float) -> int:
    return math.floor(value + NOISE)


def ceil_tol(value: float) -> int:
    return math.ceil(value - NOISE)


def parse_bool(text: str) -> bool:
    word = str(text).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"booléen illisible: {text!r}")


def parse_number(text: str) -> float | None:
    """A number, or None when blank; accepts a decimal comma."""
    word = str(text).strip().replace(",", ".")
    return None if word == "" else float(word)


def read_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file as stripped strings (codes never become numbers)."""
    data = path.read_bytes()
    try:  # the contract: UTF-8 (with or without BOM) or Windows-1252
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252")
    header = text.splitlines()[0] if text else ""
    delimiter = ";" if header.count(";") > header.count(",") else ","
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    return [
        {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        for row in reader
        if any((v or "").strip() for v in row.values())
    ]


def optional_rows(path: Path) -> list[dict[str, str]]:
    return read_rows(path) if path.exists() else []


def qpv_label(qpv: bool) -> str:
    return "qpv" if qpv else "hors_qpv"


def sum_tolerance(tol: float, lines: int, magnitude: float) -> float:
    """Tolerance on a sum of `lines` attribution values compared to `magnitude`."""
    return tol + RELATIVE * abs(magnitude) + FILE_ROUNDING * lines


HALF_ATTRIBUTION = 0.5  # a share of expected attributions is missed beyond half an attribution (orientation.md §5)


def share_tolerance(tol: float, lines: int, magnitude: float) -> float:
    """Tolerance of a minimum share of expected attributions (CIA, mixité, publics prioritaires)."""
    return sum_tolerance(tol, lines, magnitude) + HALF_ATTRIBUTION


def largest_remainder(values: dict, total: int, may_take=lambda key, alloc: True) -> dict:
    """Floors, then one more unit to the largest fractional parts.

    Ties go in the sort order of the keys (callers give keys that sort as the rules
    say). `may_take(key, alloc)` refuses a unit that would pass a cap.
    """
    alloc = {key: max(floor_tol(v), 0) for key, v in values.items()}
    remaining = total - sum(alloc.values())
    ranked = sorted(values, key=lambda k: (-round(values[k] - floor_tol(values[k]), 9), k))
    while remaining > 0 and ranked:
        progressed = False
        for key in ranked:
            if remaining == 0:
                break
            if may_take(key, alloc):
                alloc[key] += 1
                remaining -= 1
                progressed = True
        if not progressed:
            break
    return alloc


# ---------------------------------------------------------------- the instance


@dataclass
class Reservataire:
    id: str
    type: str
    territoire: frozenset[str]
    taux: float | None
    logements: float | None
    logements_reserves: float | None
    financement_apporte: bool
    taux_prioritaires: float | None
    gestion: str = "deleguee"
    candidats: int | None = None


@dataclass
class Pool:
    reservataire: str
    area: frozenset[str]
    typologie: str
    category: Category
    demandeurs: float
    label: str


@dataclass
class Reference:
    """What the instance implies, computed independently of the model."""

    rules: dict
    epci_of: dict[str, str]
    flux: dict[Segment, int]
    total: int
    reservataires: dict[str, Reservataire]
    targets: dict[str, int]
    pools: list[Pool]
    has_travailleur_essentiel: bool
    cia: dict[str, dict[str, float]] = field(default_factory=dict)  # epci -> family -> rate
    mixite: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    composition: bool = False  # [demande] modele = "composition": the pools' composition decides who is housed
    of_lettings: bool = False  # idem, any financement mode: shares of publics prioritaires are of attributions
    acceptance: dict[tuple[str, str], float] = field(default_factory=dict)

    def flux_of(self, communes) -> int:
        return sum(f for s, f in self.flux.items() if s[0] in communes)

    @property
    def communes(self) -> frozenset[str]:
        return frozenset(self.epci_of)

    def communes_of_epci(self, epci: str) -> frozenset[str]:
        if epci == "":
            return self.communes
        return frozenset(c for c, e in self.epci_of.items() if e == epci)

    def ids_of_type(self, *types: str) -> list[str]:
        return [r.id for r in self.reservataires.values() if r.type in types]


def load_rules(instance_dir: Path) -> dict:
    with (instance_dir / "instance.toml").open("rb") as handle:
        return tomllib.load(handle)


def releases(parc: list[dict[str, str]], default_rate: float) -> dict[Segment, float]:
    """A per parc row, summed per segment (DOMAIN §3)."""
    per_segment: dict[Segment, float] = defaultdict(float)
    for row in parc:
        seg = (row["commune"], row["typologie"], parse_bool(row.get("qpv", "")), row["financement"])
        given = parse_number(row.get("liberations", ""))
        if given is None:
            rate = parse_number(row.get("taux_rotation", ""))
            first = parse_number(row.get("premieres_mises_en_location", "")) or 0.0
            given = parse_number(row["logements"]) * (default_rate if rate is None else rate) + first
        per_segment[seg] += given
    return dict(per_segment)


def exclusion_matches(row: dict[str, str], seg: Segment) -> bool:
    commune, typologie, qpv, financement = seg
    if row.get("commune", "") not in ("", commune):
        return False
    if row.get("typologie", "") not in ("", typologie):
        return False
    if row.get("qpv", "") != "" and parse_bool(row["qpv"]) != qpv:
        return False
    return row.get("financement", "") in ("", financement)


def net_flux(a: dict[Segment, float], exclusions: list[dict[str, str]]) -> dict[Segment, float]:
    """C_s = A_s − B_s, each exclusion clipped to the releases of its scope and spread pro rata
    of them; a segment's flux never goes below 0."""
    c = dict(a)
    for row in exclusions:
        scope = [s for s in a if exclusion_matches(row, s)]
        scope_total = sum(a[s] for s in scope)
        if scope_total <= 0:
            continue
        excluded = min(parse_number(row["logements"]), scope_total)
        for s in scope:
            c[s] -= excluded * a[s] / scope_total
    return {s: max(v, 0.0) for s, v in c.items()}


def integer_flux(c: dict[Segment, float]) -> dict[Segment, int]:
    """Largest remainder of rnd(C) over the C_s; ties in sorted segment order."""
    return largest_remainder(c, rnd(sum(c.values())))


def territory(text: str, epci_of: dict[str, str]) -> frozenset[str]:
    if text.strip() == "":
        return frozenset(epci_of)
    communes: set[str] = set()
    for token in (t.strip() for t in text.split(";")):
        if token in epci_of:
            communes.add(token)
        else:
            communes.update(c for c, e in epci_of.items() if e == token)
    return frozenset(communes)


def read_reservataires(rows, epci_of) -> dict[str, Reservataire]:
    return {
        row["id"]: Reservataire(
            id=row["id"],
            type=row["type"].strip().lower(),
            territoire=territory(row.get("territoire", ""), epci_of),
            taux=parse_number(row.get("taux", "")),
            logements=parse_number(row.get("logements", "")),
            logements_reserves=parse_number(row.get("logements_reserves", "")),
            financement_apporte=parse_bool(row.get("financement_apporte", "")),
            taux_prioritaires=parse_number(row.get("taux_prioritaires", "")),
            gestion=(row.get("gestion", "") or "deleguee").strip().lower(),
            candidats=int(parse_number(row.get("candidats", "")) or 0) or None,
        )
        for row in rows
    }


LEGAL_MAXIMA = {"prefet_taux": 0.30, "prefet_agents_taux": 0.05, "collectivite_plafond": 0.20}


def legal(rules: dict, key: str) -> float:
    """A rate held to the law's maximum, unless the instance explores outside it (hors_cadre_legal)."""
    return float(rules[key]) if rules.get("hors_cadre_legal") else min(float(rules[key]), LEGAL_MAXIMA[key])


def hold_to_the_law(ref: Reference, n: dict[str, float]) -> None:
    """Legal caps prevail over inputs: the agents within 5 % of C, the State within 30 %, the
    collectivités without financing of a territory together within 20 % of its flux, each group
    scaled down to its maximum (orientation.md §1)."""
    if ref.rules.get("hors_cadre_legal"):
        return

    def hold(ids: list[str], limit: float) -> None:
        asked = sum(n[i] for i in ids)
        if ids and asked > limit + 1e-9:
            for i in ids:
                n[i] *= limit / asked

    hold(ref.ids_of_type("prefet_agents"), LEGAL_MAXIMA["prefet_agents_taux"] * ref.total)
    hold(ref.ids_of_type("prefet", "prefet_agents"), LEGAL_MAXIMA["prefet_taux"] * ref.total)
    capped = [r for r in ref.reservataires.values() if r.type == "collectivite" and not r.financement_apporte]
    for t in sorted({r.territoire for r in capped}, key=len, reverse=True):
        hold([r.id for r in capped if r.territoire <= t], LEGAL_MAXIMA["collectivite_plafond"] * ref.flux_of(t))


def raw_targets(ref: Reference, parc_of: dict[str, float]) -> dict[str, float]:
    """n_r in the order of orientation.md §1 Targets."""
    rules, total = ref.rules, ref.total
    n: dict[str, float] = {}

    def explicit(r: Reservataire) -> float | None:
        if r.logements is not None:
            return r.logements
        if r.taux is not None:
            return r.taux * ref.flux_of(r.territoire)
        return None

    agents = [r for r in ref.reservataires.values() if r.type == "prefet_agents"]
    for r in agents:
        value = explicit(r)
        n[r.id] = legal(rules, "prefet_agents_taux") * total if value is None else value
    n_agents = sum(n[r.id] for r in agents)
    for r in ref.reservataires.values():
        if r.type in ("prefet_agents", "bailleur"):
            continue
        value = explicit(r)
        if value is None and r.type == "prefet":
            value = legal(rules, "prefet_taux") * total - n_agents
        parc_size = sum(parc_of.get(c, 0.0) for c in r.territoire)  # article 5: same perimeter
        if value is None and r.logements_reserves is not None and parc_size > 0:
            value = r.logements_reserves / parc_size * ref.flux_of(r.territoire)
        n[r.id] = max(value or 0.0, 0.0)  # agents above the préfet's rate: no negative target
    hold_to_the_law(ref, n)
    for r in ref.reservataires.values():
        if r.type == "bailleur":
            n[r.id] = max(total - sum(n.values()), 0.0)
    return n


def target_caps(ref: Reference):
    """`may_take` for the target apportionment: never round up past a cap."""
    rules, total = ref.rules, ref.total
    state_ids = ref.ids_of_type("prefet", "prefet_agents")
    agent_ids = ref.ids_of_type("prefet_agents")
    capped = [r for r in ref.reservataires.values() if r.type == "collectivite" and not r.financement_apporte]
    state_cap = cap(legal(rules, "prefet_taux"), total)
    agents_cap = cap(legal(rules, "prefet_agents_taux"), total)

    def may_take(rid: str, alloc: dict[str, int]) -> bool:
        r = ref.reservataires[rid]
        if rid in state_ids and sum(alloc[i] for i in state_ids) + 1 > state_cap:
            return False
        if rid in agent_ids and sum(alloc[i] for i in agent_ids) + 1 > agents_cap:
            return False
        if r.type == "collectivite" and not r.financement_apporte:
            # every territory holding r's: its collectivités (territory inside it) together
            return all(sum(alloc[c.id] for c in capped if c.territoire <= t) + 1
                       <= cap(legal(rules, "collectivite_plafond"), ref.flux_of(t))
                       for t in {c.territoire for c in capped} if r.territoire <= t)
        return True

    return may_take


def read_pools(rows, epci_of) -> list[Pool]:
    pools = []
    for i, row in enumerate(rows, start=2):
        commune = row.get("commune", "")
        area = frozenset([commune]) if commune else territory(row.get("epci", ""), epci_of)
        category = (
            row["quartile"].lower(),
            parse_bool(row.get("prioritaire", "")),
            parse_bool(row.get("travailleur_essentiel", "")),
        )
        label = f"{row['reservataire']} {commune or row.get('epci', '')} {row['typologie']} ligne {i}"
        pools.append(Pool(row["reservataire"], area, row["typologie"], category,
                          parse_number(row["demandeurs"]) or 0.0, label))
    return pools


def mixite_rates(ref: Reference, toml: dict, mixite_rows) -> None:
    """CIA rows: defaults for `[cia] epci`, replaced by legal-form lines of mixite.csv."""
    cia = toml.get("cia", {})
    defaults = {
        "cia_hors_qpv_q1": float(cia.get("q1_hors_qpv", DEFAULT_CIA["q1_hors_qpv"])),
        "cia_qpv_q234": float(cia.get("q234_qpv", DEFAULT_CIA["q234_qpv"])),
    }
    for epci in cia.get("epci", []):
        ref.cia[str(epci)] = dict(defaults)
    for i, row in enumerate(mixite_rows, start=2):
        zone, critere = row["zone"].lower(), row["critere"].lower()
        legal = row.get("reservataire", "") == "" and row["epci"] in ref.cia and (zone, critere) in (
            ("hors_qpv", "q1"),
            ("qpv", "q234"),
        )
        if legal:
            family = "cia_hors_qpv_q1" if critere == "q1" else "cia_qpv_q234"
            # in an EPCI outside `[cia] epci` the line is a local target (mixite), not the CIA's
            ref.cia.setdefault(row["epci"], {})[family] = parse_number(row["part_min"])
        else:
            ref.mixite.append((i, row))


def state_takes_its_cap(ref: Reference) -> None:
    """A préfet without its own rate gets ⌊rate × C⌋ minus the agents' integer target (CCH
    R.441-5-2), the bailleur gives or takes the difference."""
    prefets = [r for r in ref.reservataires.values() if r.type == "prefet"]
    bailleurs = ref.ids_of_type("bailleur")
    if len(prefets) != 1 or len(bailleurs) != 1 or prefets[0].logements is not None or prefets[0].taux is not None:
        return
    agents = sum(ref.targets[rid] for rid in ref.ids_of_type("prefet_agents"))
    wanted = cap(legal(ref.rules, "prefet_taux"), ref.total) - agents
    delta = wanted - ref.targets[prefets[0].id]
    if wanted >= 0 and ref.targets[bailleurs[0]] - delta >= 0:
        ref.targets[prefets[0].id] += delta
        ref.targets[bailleurs[0]] -= delta


def build_reference(instance_dir: Path) -> Reference:
    """Everything the rules need, recomputed from the instance folder."""
    instance_dir = Path(instance_dir)
    toml = load_rules(instance_dir)
    rules = {**DEFAULT_RULES, **toml.get("regles", {})}
    default_rate = float(toml.get("rotation", {}).get("defaut", 0.0))
    parc = read_rows(instance_dir / "parc.csv")
    epci_of = {row["commune"]: row["epci"] for row in parc}
    a = releases(parc, default_rate)
    flux = integer_flux(net_flux(a, optional_rows(instance_dir / "exclusions.csv")))
    demand_rows = read_rows(instance_dir / "demande.csv")
    ref = Reference(
        rules=rules,
        epci_of=epci_of,
        flux=flux,
        total=sum(flux.values()),
        reservataires=read_reservataires(read_rows(instance_dir / "reservataires.csv"), epci_of),
        targets={},
        pools=read_pools(demand_rows, epci_of),
        has_travailleur_essentiel=bool(demand_rows) and "travailleur_essentiel" in demand_rows[0],
    )
    parc_of: dict[str, float] = defaultdict(float)
    for row in parc:
        parc_of[row["commune"]] += parse_number(row["logements"]) or 0.0
    n = raw_targets(ref, parc_of)
    ref.targets = largest_remainder(n, rnd(sum(n.values())), target_caps(ref))
    state_takes_its_cap(ref)
    mixite_rates(ref, toml, optional_rows(instance_dir / "mixite.csv"))
    demande = toml.get("demande", {})
    # The per-segment bound below holds where the model splits by financement (`auto` on the small
    # instances the tests draw, `exact`); `moyen` prices the mix of a group and is not checked.
    ref.of_lettings = demande.get("modele", "composition") == "composition"
    ref.composition = ref.of_lettings and demande.get("financement") != "moyen"
    ref.acceptance = {k: float(demande.get(f"{k[0]}_{k[1].lower()}", v)) for k, v in DEFAULT_ACCEPTANCE.items()}
    for row in optional_rows(instance_dir / "acceptation.csv"):
        financement = "autre" if row["financement"].strip().lower() == "autre" else row["financement"].strip().upper()
        ref.acceptance[(row["quartile"].strip().lower(), financement)] = parse_number(row["taux_acceptation"])
    return ref


# ---------------------------------------------------------------- the plan


@dataclass
class Attribution:
    reservataire: str
    cell: Cell
    epci: str
    category: Category
    value: float
    financement: str = ""


@dataclass
class Plan:
    logements: dict[tuple[str, Segment], float]  # (reservataire, segment) -> dwellings
    attributions: list[Attribution]
    problems: list[Violation]

    def by_reservataire(self, rid: str, segments=None) -> float:
        return sum(v for (r, s), v in self.logements.items()
                   if r == rid and (segments is None or s in segments))


def require_columns(rows, columns, name: str) -> None:
    if rows and (missing := [c for c in columns if c not in rows[0]]):
        raise MalformedFile(f"{name}: colonnes manquantes {missing}")


def read_plan_file(plan_dir: Path, ref: Reference, problems: list[Violation]):
    rows = read_rows(plan_dir / "plan.csv")
    require_columns(rows, PLAN_COLUMNS, "plan.csv")
    logements: dict[tuple[str, Segment], float] = defaultdict(float)
    for i, row in enumerate(rows, start=2):
        seg = (row["commune"], row["typologie"], parse_bool(row["qpv"]), row["financement"])
        key = (row["reservataire"], seg)
        if row["reservataire"] not in ref.reservataires:
            problems.append(Violation("integrite", f"plan.csv ligne {i}: réservataire inconnu", 1.0))
        if ref.epci_of.get(seg[0], row["epci"]) != row["epci"]:
            problems.append(Violation("integrite", f"plan.csv ligne {i}: epci {row['epci']}", 1.0))
        if key in logements:
            problems.append(Violation("integrite", f"plan.csv ligne {i}: ligne en double", 1.0))
        logements[key] += float(row["logements"])
    return dict(logements)


def read_attribution_file(plan_dir: Path, ref: Reference, problems: list[Violation]):
    rows = read_rows(plan_dir / "attributions.csv")
    columns = ATTRIBUTION_COLUMNS + (("travailleur_essentiel",) if ref.has_travailleur_essentiel else ())
    require_columns(rows, columns, "attributions.csv")
    result = []
    for i, row in enumerate(rows, start=2):
        value = float(row["attributions_prevues"])
        if value < -NOISE:
            problems.append(Violation("integrite", f"attributions.csv ligne {i}: négatif", -value))
        category = (
            row["quartile"].lower(),
            parse_bool(row["prioritaire"]),
            parse_bool(row.get("travailleur_essentiel", "")),
        )
        cell = (row["commune"], row["typologie"], parse_bool(row["qpv"]))
        result.append(Attribution(row["reservataire"], cell, row["epci"], category, value, row["financement"]))
    return result


def read_plan(plan_dir: Path, ref: Reference) -> Plan:
    problems: list[Violation] = []
    try:
        logements = read_plan_file(plan_dir, ref, problems)
        attributions = read_attribution_file(plan_dir, ref, problems)
    except (OSError, KeyError, ValueError, IndexError, MalformedFile) as error:
        raise MalformedFile(str(error)) from error
    return Plan(logements, attributions, problems)


# ---------------------------------------------------------------- the families


def check_conservation(ref: Reference, plan: Plan, tol: float) -> list[Violation]:
    found = []
    for (rid, seg), value in plan.logements.items():
        portee = f"{rid} {seg[0]} {seg[1]} {qpv_label(seg[2])} {seg[3]}"
        if abs(value - round(value)) > NOISE or value < 0:
            found.append(Violation("conservation", f"{portee}: non entier ou négatif",
                                   max(abs(value - round(value)), -value)))
        if seg not in ref.flux and value > tol:
            found.append(Violation("conservation", f"{portee}: segment inconnu", value))
    totals: dict[Segment, float] = defaultdict(float)
    for (_, seg), value in plan.logements.items():
        totals[seg] += value
    for seg, f in ref.flux.items():
        if abs(totals.get(seg, 0.0) - f) > tol:
            found.append(Violation("conservation", f"{seg[0]} {seg[1]} {qpv_label(seg[2])} {seg[3]}",
                                   abs(totals.get(seg, 0.0) - f)))
    return found


def check_territoire(ref: Reference, plan: Plan, tol: float) -> list[Violation]:
    outside: dict[str, float] = defaultdict(float)
    for (rid, seg), value in plan.logements.items():
        r = ref.reservataires.get(rid)
        if r is not None and seg[0] not in r.territoire:
            outside[rid] += value
    return [Violation("territoire", rid, v) for rid, v in outside.items() if v > tol]


def exceeds(famille: str, portee: str, value: float, bound: float, tol: float) -> list[Violation]:
    return [Violation(famille, portee, value - bound)] if value - bound > tol else []


def below(famille: str, portee: str, value: float, bound: float, tol: float) -> list[Violation]:
    return [Violation(famille, portee, bound - value)] if bound - value > tol else []


def state_dwellings(ref: Reference, plan: Plan, segments=None) -> float:
    return sum(plan.by_reservataire(rid, segments) for rid in ref.ids_of_type("prefet", "prefet_agents"))


def check_plafonds_prefet(ref: Reference, plan: Plan, tol: float) -> list[Violation]:
    if not ref.ids_of_type("prefet", "prefet_agents"):
        return []
    agents = sum(plan.by_reservataire(rid) for rid in ref.ids_of_type("prefet_agents"))
    return exceeds("plafond_prefet", "prefet", state_dwellings(ref, plan),
                   cap(legal(ref.rules, "prefet_taux"), ref.total), tol) + exceeds(
        "plafond_agents", "prefet_agents", agents, cap(legal(ref.rules, "prefet_agents_taux"), ref.total), tol)


def uniformity_bands(ref: Reference) -> dict[str, tuple[int, int]]:
    """commune → (low, high) State dwellings, ρ = the State's targets ÷ C (orientation.md §3)."""
    state = ref.ids_of_type("prefet", "prefet_agents")
    rho = sum(ref.targets[rid] for rid in state) / ref.total
    tau = float(ref.rules["prefet_uniformite_tolerance"])
    bands = {}
    for commune in sorted(ref.communes):
        f_c = ref.flux_of({commune})
        low, high = ceil_tol(rho * f_c - tau), floor_tol(rho * f_c + tau)
        if low > high:  # τ < ½ left no integer: the band is floor..ceil of ρ F_c (orientation.md §3)
            low, high = floor_tol(rho * f_c), ceil_tol(rho * f_c)
        bands[commune] = (max(low, 0), high)
    return bands


def check_uniformite_prefet(ref: Reference, plan: Plan, tol: float) -> list[Violation]:
    state = ref.ids_of_type("prefet", "prefet_agents")
    if not state or ref.total == 0:
        return []
    found = []
    for commune, (low, high) in uniformity_bands(ref).items():
        segments = {s for s in ref.flux if s[0] == commune}
        g_c = state_dwellings(ref, plan, segments)
        found += below("uniformite_prefet", commune, g_c, low, tol)
        found += exceeds("uniformite_prefet", commune, g_c, high, tol)
    return found


def check_prefet_hors_qpv(ref: Reference, plan: Plan, tol: float) -> list[Violation]:
    """Floors never contradict caps: the floor is at most the hors-QPV dwellings the State's
    target can hold within the uniformity bands; reading `taux`, ⌊min(m, ρ) × hors-QPV flux⌋."""
    state = ref.ids_of_type("prefet", "prefet_agents")
    if not state or ref.total == 0:
        return []
    hors_qpv = {s for s in ref.flux if not s[2]}
    g_hors = state_dwellings(ref, plan, hors_qpv)
    minimum = float(ref.rules["prefet_hors_qpv_min"])
    target = sum(ref.targets[rid] for rid in state)
    hors_of = {c: ref.flux_of({c}) - sum(ref.flux[s] for s in ref.flux if s[0] == c and s[2]) for c in ref.communes}
    bands = uniformity_bands(ref)
    reachable = max(0, min(sum(min(high, hors_of[c]) for c, (_, high) in bands.items()),
                           target - sum(max(0, low - hors_of[c]) for c, (low, _) in bands.items())))
    if str(ref.rules["prefet_hors_qpv_lecture"]).lower() == "part":
        own = state_dwellings(ref, plan)
        bound = minimum * own - max(0.0, ceil_tol(minimum * target) - reachable)
        return below("prefet_hors_qpv", "prefet", g_hors, bound, tol + RELATIVE * own)
    rate = min(minimum, target / ref.total)
    bound = min(floor_tol(rate * sum(ref.flux[s] for s in hors_qpv)), reachable)
    return below("prefet_hors_qpv", "prefet", g_hors, bound, tol)


def check_plafond_collectivite(ref: Reference, plan: Plan, tol: float) -> list[Violation]:
    """On every territory T of a collectivité without financing, all such collectivités together
    (their dwellings in T) stay within ⌊plafond × F(T)⌋ (CCH R.441-5, "globalement")."""
    capped = [r for r in ref.reservataires.values() if r.type == "collectivite" and not r.financement_apporte]
    found = []
    for t in sorted({r.territoire for r in capped}, key=sorted):
        inside = {s for s in ref.flux if s[0] in t}
        together = sum(plan.by_reservataire(r.id, inside) for r in capped)
        owners = ", ".join(r.id for r in capped if r.territoire == t)
        found += exceeds("plafond_collectivite", owners, together,
                         cap(legal(ref.rules, "collectivite_plafond"), ref.flux_of(t)), tol)
    return found


def check_objectif_reservataire(ref: Reference, plan: Plan, tol: float) -> list[Violation]:
    found = []
    for rid, target in ref.targets.items():
        got = plan.by_reservataire(rid)
        if abs(got - target) > tol:
            found.append(Violation("objectif_reservataire", rid, abs(got - target)))
    return found


def pool_of(ref: Reference, a: Attribution) -> list[Pool]:
    return [p for p in ref.pools
            if p.reservataire == a.reservataire and p.typologie == a.cell[1]
            and p.category == a.category and a.cell[0] in p.area]


def check_demande(ref: Reference, plan: Plan, tol: float) -> list[Violation]:
    found = []
    used: dict[int, list[float]] = defaultdict(list)
    orphan = 0.0
    per_cell: dict[tuple[str, Cell], list[float]] = defaultdict(list)
    for a in plan.attributions:
        per_cell[(a.reservataire, a.cell)].append(a.value)
        pools = pool_of(ref, a)
        if not pools:
            orphan += a.value
        for p in pools:
            used[id(p)].append(a.value)
    if orphan > tol + FILE_ROUNDING:
        found.append(Violation("demande", "attributions sans demande", orphan))
    for p in ref.pools:
        values = used.get(id(p), [])
        found += exceeds("demande", p.label, sum(values), p.demandeurs,
                         sum_tolerance(tol, len(values), p.demandeurs))
    dwellings: dict[tuple[str, Cell], float] = defaultdict(float)
    for (rid, seg), value in plan.logements.items():
        dwellings[(rid, seg[:3])] += value
    for (rid, cell), values in per_cell.items():
        portee = f"{rid} {cell[0]} {cell[1]} {qpv_label(cell[2])}"
        found += exceeds("demande", portee, sum(values), dwellings.get((rid, cell), 0.0),
                         sum_tolerance(tol, len(values), dwellings.get((rid, cell), 0.0)))
    return found


def attributions_where(plan: Plan, communes, qpv: bool | None, critere: str, rid: str = "") -> list[float]:
    """Attribution values in `communes` (qpv filter; None = both) matching a criterion."""
    def matches(a: Attribution) -> bool:
        quartile, prioritaire, essentiel = a.category
        return {
            "q1": quartile == "q1",
            "q234": quartile == "q234",
            "prioritaire": prioritaire,
            "travailleur_essentiel": essentiel,
        }[critere]

    return [a.value for a in plan.attributions
            if a.cell[0] in communes and (qpv is None or a.cell[2] == qpv)
            and (rid == "" or a.reservataire == rid) and matches(a)]


def check_cia(ref: Reference, plan: Plan, tol: float) -> list[Violation]:
    found = []
    for epci, rates in sorted(ref.cia.items()):
        communes = ref.communes_of_epci(epci)
        for family, qpv, critere in (("cia_hors_qpv_q1", False, "q1"), ("cia_qpv_q234", True, "q234")):
            if family not in rates:
                continue
            base = sum(f for s, f in ref.flux.items() if s[0] in communes and s[2] == qpv)
            values = attributions_where(plan, communes, qpv, critere)
            bound = rates[family] * base
            found += below(family, epci, sum(values), bound, share_tolerance(tol, len(values), bound))
    return found


ZONES = {"qpv": True, "hors_qpv": False, "tout": None}


def check_mixite(ref: Reference, plan: Plan, tol: float) -> list[Violation]:
    found = []
    for line, row in ref.mixite:
        communes = ref.communes_of_epci(row.get("epci", ""))
        qpv = ZONES[row["zone"].lower()]
        rid = row.get("reservataire", "")
        scope = {s for s in ref.flux if s[0] in communes and (qpv is None or s[2] == qpv)}
        base = plan.by_reservataire(rid, scope) if rid else sum(ref.flux[s] for s in scope)
        values = attributions_where(plan, communes, qpv, row["critere"].lower(), rid)
        bound = parse_number(row["part_min"]) * base
        found += below("mixite", f"mixite.csv ligne {line}", sum(values), bound,
                       share_tolerance(tol, len(values), bound))
    return found


def check_publics_prioritaires(ref: Reference, plan: Plan, tol: float) -> list[Violation]:
    found = []
    concerned = ("action_logement", "collectivite", "bailleur", "prefet")
    for r in ref.reservataires.values():
        if r.type not in concerned and r.taux_prioritaires is None:
            continue
        default = ref.rules["prefet_prioritaires" if r.type == "prefet" else "prioritaires_min"]
        rate = r.taux_prioritaires if r.taux_prioritaires is not None else default
        if rate <= 0:
            continue
        own = [a for a in plan.attributions if a.reservataire == r.id]
        priority = sum(a.value for a in own if a.category[1])
        # base: its expected attributions when its pools decide who is housed (composition),
        # else its planned flux
        bound = rate * (sum(a.value for a in own) if ref.of_lettings else plan.by_reservataire(r.id))
        found += below("publics_prioritaires", r.id, priority, bound,
                       share_tolerance(tol, len(own), bound))
    return found


def check_lettings(ref: Reference, plan: Plan, tol: float) -> list[Violation]:
    """Composition model: per réservataire and segment, with π the shares of its pools there, a the
    acceptance and n its candidates (3 in gestion directe, 1 otherwise): gestion directe lets at
    most π_k a_k (1 − (1 − ā)^n) / ā of the dwellings to category k; gestion déléguée aims each
    dwelling at one category, let with 1 − (1 − a_k)^n: Σ_k lettings_k / that ≤ dwellings."""
    if not ref.composition:
        return []
    found = []
    lettings: dict[tuple[str, Segment], dict[Category, float]] = defaultdict(lambda: defaultdict(float))
    for a in plan.attributions:
        lettings[(a.reservataire, a.cell + (a.financement,))][a.category] += a.value
    for (rid, seg), by_category in lettings.items():
        r = ref.reservataires[rid]
        n = r.candidats or (3 if r.gestion == "directe" else 1)
        dwellings = plan.logements.get((rid, seg), 0.0)
        pools: dict[Category, float] = defaultdict(float)
        for p in ref.pools:
            if p.reservataire == rid and p.typologie == seg[1] and seg[0] in p.area:
                pools[p.category] += p.demandeurs
        total = sum(pools.values())
        accept = {k: ref.acceptance[(k[0], seg[3])] for k in pools}
        label = f"{rid} {seg[0]} {seg[1]} {qpv_label(seg[2])} {seg[3]}"
        if r.gestion == "directe":
            mean = sum(pools[k] / total * accept[k] for k in pools) if total else 0.0
            for k, value in by_category.items():
                share = pools.get(k, 0.0) / total if total else 0.0
                bound = share * accept.get(k, 0.0) * (1 - (1 - mean) ** n) / mean * dwellings if mean else 0.0
                found += exceeds("demande", f"{label} {k}", value, bound, tol + FILE_ROUNDING)
        else:
            used = sum(value / (1 - (1 - accept.get(k, 0.0)) ** n) if accept.get(k, 0.0) > 0 else math.inf
                       for k, value in by_category.items() if value > FILE_ROUNDING)
            found += exceeds("demande", f"{label} (gestion déléguée)", used, dwellings,
                             tol + FILE_ROUNDING * 10 * len(by_category))
    return found


FAMILY_CHECKS = (
    check_conservation,
    check_territoire,
    check_plafonds_prefet,
    check_uniformite_prefet,
    check_prefet_hors_qpv,
    check_plafond_collectivite,
    check_objectif_reservataire,
    check_demande,
    check_lettings,
    check_cia,
    check_mixite,
    check_publics_prioritaires,
)


def check_plan(instance_dir: Path, plan_dir: Path, tol: float = 1e-6) -> list[Violation]:
    """Every hard rule the plan in `plan_dir` breaks, recomputed from `instance_dir`."""
    ref = build_reference(Path(instance_dir))
    try:
        plan = read_plan(Path(plan_dir), ref)
    except MalformedFile as error:
        return [Violation("integrite", str(error), 1.0)]
    found = list(plan.problems)
    for check in FAMILY_CHECKS:
        found += check(ref, plan, tol)
    return found


def violated_rows(plan_dir: Path) -> list[tuple[str, str]]:
    """(contrainte, portee) of the rows the solver itself reports as `violee`."""
    rows = read_rows(Path(plan_dir) / "contraintes.csv")
    return [(row["contrainte"], row["portee"]) for row in rows if row["statut"].lower() == "violee"]
