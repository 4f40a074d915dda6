"""Random valid instances in the FORMAT.md contract, for property tests.

`write_random_instance(rng, folder, ample=False)` writes one small instance
(2–5 communes, 5–40 parc rows, 3–7 réservataires) driven by a `random.Random`;
`instance_dirs(tmp_root, ample)` is the hypothesis strategy around it (seeded, so a
failing example is reproducible from its seed).

`ample=True` gives instances where every hard rule can hold: demand ≥ 3× the
flux in every cell for every réservataire and category, rates within the caps,
no mixite lines, QPV only in one commune and with enough hors-QPV flux there, and the
transport demand model (where the pools' size is what matters).
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

try:  # imported as `tests.checker` under pytest's rootdir, or plainly as a script
    from tests import checker
except ImportError:  # pragma: no cover
    import checker

TYPOLOGIES = ["T1", "T2", "T3", "T4", "T5", "T6+"]
FINANCEMENTS = ["PLAI", "PLUS", "PLS", "autre"]
EPCI_CODES = ["200093201", "245900410"]
CATEGORIES = [("q1", True), ("q1", False), ("q234", True), ("q234", False)]


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})


def toml_value(value) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def write_toml(path: Path, sections: dict[str, dict]) -> None:
    lines = []
    for name, keys in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in keys.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


PARC_COLUMNS = ["commune", "commune_nom", "epci", "qpv", "typologie", "financement",
                "periode_construction", "logements", "taux_rotation",
                "premieres_mises_en_location", "liberations"]
RESERVATAIRE_COLUMNS = ["id", "nom", "type", "territoire", "taux", "logements", "logements_reserves",
                        "gestion", "financement_apporte", "taux_prioritaires"]
EXCLUSION_COLUMNS = ["categorie", "commune", "typologie", "qpv", "financement", "logements"]
MIXITE_COLUMNS = ["epci", "zone", "reservataire", "critere", "part_min"]
OBJECTIF_COLUMNS = ["reservataire", "epci", "commune", "typologie", "financement", "qpv",
                    "logements", "part", "poids"]


@dataclass
class Draft:
    """An instance being drawn, as plain rows (strings, as a user would write them)."""

    epci_of: dict[str, str]
    parc: list[dict] = field(default_factory=list)
    exclusions: list[dict] = field(default_factory=list)
    reservataires: list[dict] = field(default_factory=list)
    demande: list[dict] = field(default_factory=list)
    mixite: list[dict] = field(default_factory=list)
    objectifs: list[dict] = field(default_factory=list)
    toml: dict[str, dict] = field(default_factory=dict)
    travailleur_essentiel: bool = False

    def territory(self, row: dict) -> frozenset[str]:
        return checker.territory(row.get("territoire", ""), self.epci_of)


def yes_no(rng: random.Random, value: bool) -> str:
    return rng.choice([("oui", "non"), ("true", "false"), ("1", "0")])[0 if value else 1]


def draw_communes(rng: random.Random) -> dict[str, str]:
    count = rng.randint(2, 5)
    codes = sorted(rng.sample(range(1, 700), count))
    epcis = EPCI_CODES[: rng.randint(1, 2)]
    epci_of = {f"59{code:03d}": epcis[i % len(epcis)] for i, code in enumerate(codes)}
    return epci_of


def draw_parc(rng: random.Random, draft: Draft, ample: bool) -> None:
    communes = sorted(draft.epci_of)
    qpv_communes = communes[:1] if ample else [c for c in communes if rng.random() < 0.6]
    seen: set[tuple] = set()  # one row per (segment, construction period): FORMAT.md
    for i in range(rng.randint(5, 40)):
        commune = communes[i] if i < len(communes) else rng.choice(communes)  # no empty commune
        qpv = commune in qpv_communes and rng.random() < (0.3 if ample else 0.5)
        logements = rng.randint(10, 300)
        row = {
            "commune": commune, "commune_nom": f"Commune {commune}", "epci": draft.epci_of[commune],
            "qpv": yes_no(rng, qpv), "typologie": rng.choice(TYPOLOGIES),
            "financement": rng.choice(FINANCEMENTS), "logements": str(logements),
            "periode_construction": rng.choice(["", "avant_1975", "1975_2000", "apres_2000"]),
        }
        key = (commune, qpv, row["typologie"], row["financement"], row["periode_construction"])
        if key in seen:
            continue
        seen.add(key)
        kind = rng.random()
        if kind < 0.2:
            row["liberations"] = str(rng.randint(0, logements // 5))
        elif kind < 0.6:
            row["taux_rotation"] = f"{rng.uniform(0.04, 0.14):.3f}"
        if rng.random() < 0.15:
            row["premieres_mises_en_location"] = str(rng.randint(1, 20))
        draft.parc.append(row)


def draw_exclusions(rng: random.Random, draft: Draft, releases: dict) -> None:
    """A few withdrawals, each well within its scope's releases, all C_s stay ≥ 0."""
    remaining = dict(releases)
    for _ in range(rng.randint(0, 3)):
        seg = rng.choice(sorted(releases))
        row = {"categorie": rng.choice(["mutation", "anru", "orcod", "lhi", "vente", "urgence"])}
        if rng.random() < 0.7:
            row["commune"] = seg[0]
        if rng.random() < 0.5:
            row["typologie"] = seg[1]
        if rng.random() < 0.3:
            row["qpv"] = yes_no(rng, seg[2])
        scope = [s for s in releases if checker.exclusion_matches(row, s)]
        scope_total = sum(releases[s] for s in scope)
        logements = int(0.4 * scope_total * rng.random())
        if logements <= 0:
            continue
        share = {s: logements * releases[s] / scope_total for s in scope}
        if any(remaining[s] - share[s] < 0 for s in scope):
            continue
        for s in scope:
            remaining[s] -= share[s]
        row["logements"] = str(logements)
        draft.exclusions.append(row)


def reservataire(id_: str, type_: str, **values) -> dict:
    return {"id": id_, "nom": f"Réservataire {id_}", "type": type_,
            "gestion": values.pop("gestion", "deleguee"), **values}


def draw_reservataires(rng: random.Random, draft: Draft, ample: bool, rules: dict) -> None:
    rows = []
    with_prefet = ample or rng.random() < 0.85
    if with_prefet:
        if ample or rng.random() < 0.8:
            rows.append(reservataire("PREF-AG", "prefet_agents", gestion="directe"))
        prefet = reservataire("PREF", "prefet", gestion="directe")
        if not ample and rng.random() < 0.25:
            prefet["taux"] = f"{rng.uniform(0.15, rules['prefet_taux'] - rules['prefet_agents_taux']):.2f}"
        rows.append(prefet)
    optional = ["collectivite", "action_logement", "employeur", "autre", "collectivite"]
    rng.shuffle(optional)
    wanted = rng.randint(max(0, 2 - len(rows)), 6 - len(rows))
    for i, type_ in enumerate(optional[:wanted]):
        rows.append(draw_other(rng, f"R{i + 1}", type_, draft, ample))
    rows.append(reservataire("BAIL", "bailleur"))
    if rng.random() < 0.3:
        chosen = rng.choice(rows)
        chosen["taux_prioritaires"] = f"{rng.uniform(0.2, 0.5 if ample else 0.8):.2f}"
    draft.reservataires = rows


def draw_other(rng: random.Random, id_: str, type_: str, draft: Draft, ample: bool) -> dict:
    row = reservataire(id_, type_, gestion=rng.choice(["directe", "deleguee"]))
    parc_size = sum(int(r["logements"]) for r in draft.parc)
    if type_ == "collectivite":
        communes = sorted(draft.epci_of)
        if rng.random() < 0.5:
            row["territoire"] = ";".join(rng.sample(communes, rng.randint(1, len(communes))))
        elif rng.random() < 0.5:
            row["territoire"] = rng.choice(sorted(set(draft.epci_of.values())))
        funded = not ample and rng.random() < 0.2
        row["financement_apporte"] = yes_no(rng, funded) if funded or rng.random() < 0.5 else ""
        # collectivités without financing share 20 % of a territory together (CCH R.441-5): two of
        # them at most, so 10 % each always fits in an instance where every rule can hold
        row["taux"] = f"{rng.uniform(0.05, 0.35 if funded else 0.10 if ample else 0.20):.2f}"
    elif type_ == "action_logement":
        kind = rng.random()
        if kind < 0.5:
            row["taux"] = f"{rng.uniform(0.05, 0.25):.2f}"
        elif kind < 0.85 or ample:
            row["logements_reserves"] = str(int(parc_size * rng.uniform(0.02, 0.2)))
        else:
            row["logements"] = str(rng.randint(1, 40))
    else:
        if rng.random() < 0.5:
            row["taux"] = f"{rng.uniform(0.0, 0.05):.3f}"
        else:
            row["logements_reserves"] = str(int(parc_size * rng.uniform(0.0, 0.04)))
    return row


def cells_with_releases(releases: dict) -> dict[tuple[str, str], float]:
    """(commune, typologie) -> releases (an upper bound of its flux, give or take 1)."""
    out: dict[tuple[str, str], float] = {}
    for (commune, typologie, _, _), a in releases.items():
        out[(commune, typologie)] = out.get((commune, typologie), 0.0) + a + 1
    return out


def draw_demande(rng: random.Random, draft: Draft, releases: dict, ample: bool) -> None:
    """Pools per (réservataire, typologie, category): per EPCI or per commune, never both."""
    cells = cells_with_releases(releases)
    draft.travailleur_essentiel = rng.random() < 0.3
    categories = [(q, p, False) for q, p in CATEGORIES]
    if draft.travailleur_essentiel:
        categories += [("q1", False, True), ("q234", True, True)]
    for row in draft.reservataires:
        territory = draft.territory(row)
        whole = territory == frozenset(draft.epci_of)
        for typologie in TYPOLOGIES:
            here = {c: v for (c, t), v in cells.items() if t == typologie and c in territory}
            if not here:
                continue
            for category in categories:
                if not ample and rng.random() < 0.4:
                    continue
                add_pools(rng, draft, row["id"], typologie, category, here, whole, ample)


def add_pools(rng, draft: Draft, rid: str, typologie: str, category, here: dict, whole: bool,
              ample: bool) -> None:
    quartile, prioritaire, essentiel = category
    base = {"reservataire": rid, "typologie": typologie, "quartile": quartile,
            "prioritaire": yes_no(rng, prioritaire)}
    if draft.travailleur_essentiel:
        base["travailleur_essentiel"] = yes_no(rng, essentiel)
    for epci in sorted(set(draft.epci_of[c] for c in here)):
        communes = [c for c in here if draft.epci_of[c] == epci]
        flux = sum(here[c] for c in communes)
        if whole and rng.random() < 0.5:
            amount = 3 * flux + rng.randint(0, 10) if ample else rng.randint(0, int(flux) + 3)
            draft.demande.append({**base, "epci": epci, "demandeurs": str(int(amount) + 1)})
            continue
        for commune in communes:
            if not ample and rng.random() < 0.3:
                continue
            amount = 3 * here[commune] + rng.randint(0, 5) if ample else rng.randint(0, int(here[commune]) + 2)
            draft.demande.append({**base, "commune": commune, "demandeurs": str(int(amount) + 1)})


def draw_rules(rng: random.Random, draft: Draft, ample: bool) -> dict:
    rules = {
        "prefet_taux": 0.30, "prefet_agents_taux": 0.05, "prefet_hors_qpv_min": 0.30,
        "prefet_hors_qpv_lecture": rng.choice(["taux", "part"]),
        "prefet_uniformite_tolerance": 1, "collectivite_plafond": 0.20, "prioritaires_min": 0.25,
    }
    if not ample:
        rules["prefet_taux"] = rng.choice([0.30, 0.30, 0.25])
        rules["prefet_uniformite_tolerance"] = rng.choice([1, 1, 2, 0])
        rules["prioritaires_min"] = rng.choice([0.25, 0.25, 0.4])
    draft.toml = {
        "instance": {"nom": "aleatoire", "bailleur": "OLS test", "departement": "59", "annee": 2025},
        "regles": rules,
        "rotation": {"defaut": round(rng.uniform(0.05, 0.12), 3)},
        "solveur": {"temps_max_s": 20, "ecart_relatif": 0.0, "threads": 1, "graine": 1},
    }
    if ample:
        # Ample pools make every rule feasible in the transport model; in the composition model the
        # pools' mix, not their size, fixes the CIA shares (composition instances: test_demand.py).
        draft.toml["demande"] = {"modele": "transport"}
    return rules


def draw_cia_and_mixite(rng: random.Random, draft: Draft, ample: bool) -> None:
    epcis = sorted(set(draft.epci_of.values()))
    if rng.random() < 0.5:
        cia = {"epci": rng.sample(epcis, rng.randint(1, len(epcis)))}
        if rng.random() < 0.3:
            cia["q1_hors_qpv"] = 0.25
            cia["q234_qpv"] = rng.choice([0.4, 0.5])
        draft.toml["cia"] = cia
        for epci in cia["epci"]:  # legal-form lines only for CIA EPCIs (see report)
            if not ample and rng.random() < 0.3:
                draft.mixite.append({"epci": epci, "zone": "hors_qpv", "critere": "q1",
                                     "part_min": f"{rng.uniform(0.1, 0.4):.2f}"})
    if ample:
        return
    ids = [r["id"] for r in draft.reservataires]
    criteres = ["q1", "q234", "prioritaire"] + (["travailleur_essentiel"] if draft.travailleur_essentiel else [])
    for _ in range(rng.choice([0, 0, 1, 2])):
        draft.mixite.append({
            "epci": rng.choice(epcis), "zone": rng.choice(["qpv", "hors_qpv", "tout"]),
            "reservataire": rng.choice(ids + ["", ""]), "critere": rng.choice(criteres),
            "part_min": f"{rng.uniform(0.05, 0.5):.2f}",
        })
        line = draft.mixite[-1]
        if line["reservataire"] == "" and (line["zone"], line["critere"]) in (("hors_qpv", "q1"), ("qpv", "q234")):
            line["critere"] = "prioritaire"  # keep legal-form lines for CIA EPCIs only


def draw_objectifs(rng: random.Random, draft: Draft) -> None:
    for _ in range(rng.choice([0, 0, 1, 2])):
        row = {"reservataire": rng.choice(draft.reservataires)["id"],
               "typologie": rng.choice(TYPOLOGIES), "poids": "1"}
        if rng.random() < 0.5:
            row["logements"] = str(rng.randint(0, 10))
        else:
            row["part"] = f"{rng.uniform(0.1, 0.5):.2f}"
        draft.objectifs.append(row)


def ample_enough(folder: Path) -> bool:
    """The préfet hors-QPV rule (reading `taux`) needs QPV flux to absorb rounding."""
    ref = checker.build_reference(folder)
    qpv = sum(f for s, f in ref.flux.items() if s[2])
    first = sorted(ref.communes)[0]
    f_first = ref.flux_of({first})
    hors_qpv_first = sum(f for s, f in ref.flux.items() if s[0] == first and not s[2])
    bailleur = sum(ref.targets[rid] for rid in ref.ids_of_type("bailleur"))
    return (ref.total >= 20 and qpv >= 10 and hors_qpv_first >= 0.3 * f_first + 2
            and bailleur >= 0.1 * ref.total)


def write_draft(draft: Draft, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_toml(folder / "instance.toml", draft.toml)
    write_csv(folder / "parc.csv", PARC_COLUMNS, draft.parc)
    write_csv(folder / "reservataires.csv", RESERVATAIRE_COLUMNS, draft.reservataires)
    demand_columns = ["reservataire", "commune", "epci", "typologie", "quartile", "prioritaire"]
    demand_columns += ["travailleur_essentiel"] if draft.travailleur_essentiel else []
    write_csv(folder / "demande.csv", demand_columns + ["demandeurs"], draft.demande)
    for name, columns, rows in (("exclusions.csv", EXCLUSION_COLUMNS, draft.exclusions),
                                ("mixite.csv", MIXITE_COLUMNS, draft.mixite),
                                ("objectifs.csv", OBJECTIF_COLUMNS, draft.objectifs)):
        if rows:
            write_csv(folder / name, columns, rows)
    return folder


def draw_once(rng: random.Random, ample: bool) -> Draft:
    draft = Draft(epci_of=draw_communes(rng))
    rules = draw_rules(rng, draft, ample)
    draw_parc(rng, draft, ample)
    releases = checker.releases(draft.parc, draft.toml["rotation"]["defaut"])
    if rng.random() < 0.4:
        draw_exclusions(rng, draft, releases)
    draw_reservataires(rng, draft, ample, rules)
    draw_demande(rng, draft, releases, ample)
    draw_cia_and_mixite(rng, draft, ample)
    draw_objectifs(rng, draft)
    return draft


def write_random_instance(rng: random.Random, folder: Path, ample: bool = False) -> Path:
    """Write one random valid instance into `folder` (created) and return it."""
    for _ in range(50):
        path = write_draft(draw_once(rng, ample), folder)
        if not ample or ample_enough(path):
            return path
        for file in path.iterdir():
            file.unlink()
    raise RuntimeError("pas d'instance « demande ample » trouvée en 50 tirages")


def instance_dirs(tmp_root: Path, ample: bool = False) -> st.SearchStrategy[Path]:
    """Hypothesis strategy: a seed, turned into an instance folder under `tmp_root`."""
    label = "ample" if ample else "libre"
    return st.integers(min_value=0, max_value=2**32 - 1).map(
        lambda seed: write_random_instance(random.Random(seed), Path(tmp_root) / f"{label}-{seed}", ample)
    )
