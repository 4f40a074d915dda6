"""Cross-table checks of an instance: references, uniqueness, coherent territories.

Row checks live in the pydantic models (flux_opt.input.schema); these need several tables.
Every problem names its file, line and field; all are collected, not just the first.
"""

from __future__ import annotations

from collections import defaultdict

from flux_opt.errors import Probleme
from flux_opt.vocabulary import DEFAULT_TARGET_TYPES, PREFET_GROUP


NO_TARGET = "aucun objectif : renseigner taux, logements ou logements_reserves"


def has_target(row) -> bool:
    """Whether a réservataires.csv row sets this year's target (the State's and the bailleur's have defaults)."""
    return (row.logements is not None or row.taux is not None or row.logements_reserves is not None
            or row.type in DEFAULT_TARGET_TYPES)


def targets_without_conversion(reservataires: list, source: str) -> list[Probleme]:
    """Réservataires that expect their target from the stock conversion, when the plan is made without it."""
    return [Probleme(source, i + 2, "taux", NO_TARGET + ", ou planifier avec --depuis-conversion "
                     "(objectif tiré des conventions en stock)")
            for i, row in enumerate(reservataires) if not has_target(row)]


def check_references(parametres, rows: dict[str, list], sources: dict[str, str]) -> list[Probleme]:
    problems: list[Probleme] = []

    def add(table: str, index: int | None, field: str | None, message: str) -> None:
        line = index + 2 if index is not None else None
        problems.append(Probleme(sources.get(table, f"{table}.csv"), line, field, message))

    parc, reservataires = rows["parc"], rows["reservataires"]
    if not parc:
        add("parc", None, None, "aucun logement : le parc est vide")

    # Parc: one EPCI per commune, no duplicate segment.
    epci_of: dict[str, str] = {}
    seen_segments: dict[tuple, int] = {}
    for i, row in enumerate(parc):
        known = epci_of.setdefault(row.commune, row.epci)
        if known != row.epci:
            add("parc", i, "epci", f"la commune {row.commune} est déjà rattachée à l'EPCI {known}, pas à {row.epci}")
        key = (row.commune, row.typologie, row.qpv, row.financement, row.periode_construction)
        if key in seen_segments:
            add("parc", i, "commune", f"segment en double (déjà ligne {seen_segments[key] + 2}) : "
                f"{row.commune} {row.typologie} {'QPV' if row.qpv else 'hors QPV'} {row.financement}")
        else:
            seen_segments[key] = i
    communes, epcis = set(epci_of), set(epci_of.values())

    # Réservataires: unique ids, exactly one bailleur, territories that exist.
    holders = {c.reservataire for c in rows.get("conventions", [])}
    ids: dict[str, int] = {}
    for i, row in enumerate(reservataires):
        if row.id in ids:
            add("reservataires", i, "id", f"identifiant « {row.id} » en double (déjà ligne {ids[row.id] + 2})")
        ids.setdefault(row.id, i)
        for code in row.territoire:
            if code not in communes and code not in epcis:
                add("reservataires", i, "territoire", f"code « {code} » absent du parc (ni commune ni EPCI du parc)")
        if row.type == "bailleur" and row.territoire:
            add("reservataires", i, "territoire", "le bailleur couvre tout le département : laisser vide")
        # A réservataire with stock conventions may take its target from their conversion.
        if not has_target(row) and row.id not in holders:
            add("reservataires", i, "taux", NO_TARGET)
    by_type = defaultdict(list)
    for i, row in enumerate(reservataires):
        by_type[row.type].append(i)
    if len(by_type["bailleur"]) != 1:
        add("reservataires", None, "type",
            f"il faut exactement une ligne de type bailleur (trouvé : {len(by_type['bailleur'])})")
    for unique in PREFET_GROUP:
        for i in by_type[unique][1:]:
            add("reservataires", i, "type", f"une seule ligne de type {unique} est permise")

    def check_reservataire(table: str, i: int, rid: str | None) -> None:
        if rid is not None and rid not in ids:
            add(table, i, "reservataire", f"réservataire « {rid} » inconnu (absent de reservataires.csv)")

    def check_commune(table: str, i: int, code: str | None) -> None:
        if code is not None and code not in communes:
            add(table, i, "commune", f"commune « {code} » absente du parc")

    def check_epci(table: str, i: int, code: str | None, field: str = "epci") -> None:
        if code is not None and code not in epcis:
            add(table, i, field, f"EPCI « {code} » absent du parc")

    for i, row in enumerate(rows["exclusions"]):
        check_commune("exclusions", i, row.commune)

    # Demand: known réservataire and area; a commune is covered by one pool level only.
    levels: dict[tuple, dict[str, int]] = defaultdict(dict)
    for i, row in enumerate(rows["demande"]):
        check_reservataire("demande", i, row.reservataire)
        check_commune("demande", i, row.commune)
        check_epci("demande", i, row.epci)
        key = (row.reservataire, row.typologie, row.quartile, row.prioritaire, row.travailleur_essentiel)
        area = row.commune if row.commune is not None else row.epci
        if area in levels[key]:
            add("demande", i, "demandeurs", f"vivier en double (déjà ligne {levels[key][area] + 2}) : additionner les demandeurs sur une seule ligne")
        levels[key].setdefault(area, i)
    for key, areas in levels.items():
        for area, i in areas.items():
            if area in communes and epci_of[area] in areas:
                add("demande", i, "commune",
                    f"la commune {area} est aussi couverte par la ligne EPCI {epci_of[area]} "
                    f"(ligne {areas[epci_of[area]] + 2}) pour le même réservataire, typologie et catégorie")

    for i, row in enumerate(rows["objectifs"]):
        check_reservataire("objectifs", i, row.reservataire)
        check_commune("objectifs", i, row.commune)
        check_epci("objectifs", i, row.epci)
    for i, row in enumerate(rows["mixite"]):
        check_reservataire("mixite", i, row.reservataire)
        check_epci("mixite", i, row.epci)
    for i, row in enumerate(rows["conventions"]):
        check_reservataire("conventions", i, row.reservataire)
    for code in parametres.cia.epci:
        if code not in epcis:
            problems.append(Probleme(sources.get("parametres", "instance.toml"), None, "cia.epci", f"EPCI « {code} » absent du parc"))
    return problems
