"""Cross-table checks of an instance: references, uniqueness, coherent territories.

Row checks live in the pydantic models (flux_opt.input.schema); these need several tables.
Every problem names its file, line and field; all are collected, not just the first.
"""

from __future__ import annotations

from collections import defaultdict

from flux_opt.errors import InputProblem
from flux_opt.input.raw import RawInstance, RawTable
from flux_opt.vocabulary import DEFAULT_TARGET_TYPES, PREFET_GROUP


NO_TARGET = "aucun objectif : renseigner taux, logements ou logements_reserves"


def has_target(row) -> bool:
    """Whether a réservataires.csv row sets this year's target (the State's and the bailleur's have defaults)."""
    return (row.logements is not None or row.taux is not None or row.logements_reserves is not None
            or row.type in DEFAULT_TARGET_TYPES)


def targets_without_conversion(reservataires: list, source: str) -> list[InputProblem]:
    """Réservataires that expect their target from the stock conversion, when the plan is made without it."""
    return [InputProblem(source, i + 2, "taux", NO_TARGET + ", ou planifier avec --depuis-conversion "
                     "(objectif tiré des conventions en stock)")
            for i, row in enumerate(reservataires) if not has_target(row)]


class _Checks:
    """The tables being checked, what the parc defines, and the problems found so far."""

    def __init__(self, parametres, rows: dict[str, list], raw: RawInstance):
        self.parametres, self.rows, self.raw = parametres, rows, raw
        self.problems: list[InputProblem] = []
        self.epci_of = {row.commune: row.epci for row in reversed(rows["parc"])}  # first row wins
        self.communes, self.epcis = set(self.epci_of), set(self.epci_of.values())
        self.ids = {row.id for row in rows["reservataires"]}

    def add(self, table: str, index: int | None, field: str | None, message: str) -> None:
        raw = self.raw.tables.get(table)
        source = raw.source if raw else self.raw.parametres_source if table == "parametres" else f"{table}.csv"
        line = None if index is None else raw.line(index) if raw else index + 2
        self.problems.append(InputProblem(source, line, field, message))

    def line(self, table: str, index: int) -> int:
        raw = self.raw.tables.get(table)
        return raw.line(index) if raw else index + 2

    def reservataire(self, table: str, i: int, rid: str | None) -> None:
        if rid is not None and rid not in self.ids:
            self.add(table, i, "reservataire", f"réservataire « {rid} » inconnu (absent de reservataires.csv)")

    def commune(self, table: str, i: int, code: str | None) -> None:
        if code is not None and code not in self.communes:
            self.add(table, i, "commune", f"commune « {code} » absente du parc")

    def epci(self, table: str, i: int, code: str | None) -> None:
        if code is not None and code not in self.epcis:
            self.add(table, i, "epci", f"EPCI « {code} » absent du parc")


def check_references(parametres, rows: dict[str, list], raw: RawInstance) -> list[InputProblem]:
    checks = _Checks(parametres, rows, raw)
    _check_parc(checks)
    _check_reservataires(checks)
    _check_demande(checks)
    for table in ("exclusions", "objectifs", "mixite", "conventions"):
        for i, row in enumerate(rows[table]):
            checks.reservataire(table, i, getattr(row, "reservataire", None))
            checks.commune(table, i, getattr(row, "commune", None))
            checks.epci(table, i, getattr(row, "epci", None))
    for code in parametres.cia.epci:
        if code not in checks.epcis:
            checks.add("parametres", None, "cia.epci", f"EPCI « {code} » absent du parc")
    return checks.problems


def in_departement(commune: str, departement: str) -> bool:
    """INSEE commune codes start with their département's code (59350 → 59, 2A004 → 2A, 97101 → 971)."""
    return commune.startswith(departement.zfill(2))


def _check_parc(checks: _Checks) -> None:
    """One EPCI per commune, no duplicate segment, communes of the instance's département."""
    parc = checks.rows["parc"]
    departement = checks.parametres.instance.departement
    if not parc:
        checks.add("parc", None, None, "aucun logement : le parc est vide")
    seen: dict[tuple, int] = {}
    for i, row in enumerate(parc):
        known = checks.epci_of[row.commune]
        if known != row.epci:
            checks.add("parc", i, "epci", f"la commune {row.commune} est déjà rattachée à l'EPCI {known}, pas à {row.epci}")
        if not in_departement(row.commune, departement):
            checks.add("parc", i, "commune", f"la commune {row.commune} n'est pas dans le département "
                       f"{departement} de l'instance ([instance] departement)")
        key = (row.commune, row.typologie, row.qpv, row.financement, row.periode_construction)
        if key in seen:
            checks.add("parc", i, "commune", f"segment en double (déjà ligne {checks.line('parc', seen[key])}) : "
                       f"{row.commune} {row.typologie} {'QPV' if row.qpv else 'hors QPV'} {row.financement}")
        seen.setdefault(key, i)


def _check_reservataires(checks: _Checks) -> None:
    """Unique ids, exactly one bailleur, at most one préfet line of each kind, territories that exist."""
    seen: dict[str, int] = {}
    by_type = defaultdict(list)
    holders = {c.reservataire for c in checks.rows.get("conventions", [])}
    for i, row in enumerate(checks.rows["reservataires"]):
        if row.id in seen:
            checks.add("reservataires", i, "id",
                       f"identifiant « {row.id} » en double (déjà ligne {checks.line('reservataires', seen[row.id])})")
        seen.setdefault(row.id, i)
        by_type[row.type].append(i)
        for code in row.territoire:
            if code not in checks.communes and code not in checks.epcis:
                checks.add("reservataires", i, "territoire", f"code « {code} » absent du parc (ni commune ni EPCI du parc)")
        if row.type == "bailleur" and row.territoire:
            checks.add("reservataires", i, "territoire", "le bailleur couvre tout le département : laisser vide")
        # A réservataire with stock conventions may take its target from their conversion.
        if not has_target(row) and row.id not in holders:
            checks.add("reservataires", i, "taux", NO_TARGET)
    if len(by_type["bailleur"]) != 1:
        checks.add("reservataires", None, "type",
                   f"il faut exactement une ligne de type bailleur (trouvé : {len(by_type['bailleur'])})")
    for unique in PREFET_GROUP:
        for i in by_type[unique][1:]:
            checks.add("reservataires", i, "type", f"une seule ligne de type {unique} est permise")


def _check_demande(checks: _Checks) -> None:
    """Known réservataire and area; one line per pool; a commune covered by one pool level only."""
    levels: dict[tuple, dict[str, int]] = defaultdict(dict)
    for i, row in enumerate(checks.rows["demande"]):
        checks.reservataire("demande", i, row.reservataire)
        checks.commune("demande", i, row.commune)
        checks.epci("demande", i, row.epci)
        key = (row.reservataire, row.typologie, row.quartile, row.prioritaire, row.travailleur_essentiel)
        area = row.commune if row.commune is not None else row.epci
        if area in levels[key]:
            checks.add("demande", i, "demandeurs", f"vivier en double (déjà ligne {checks.line('demande', levels[key][area])}) : "
                       "additionner les demandeurs sur une seule ligne")
        levels[key].setdefault(area, i)
    for areas in levels.values():
        for area, i in areas.items():
            epci = checks.epci_of.get(area)
            if epci in areas:
                checks.add("demande", i, "commune",
                           f"la commune {area} est aussi couverte par la ligne EPCI {epci} "
                           f"(ligne {checks.line('demande', areas[epci])}) pour le même réservataire, typologie et catégorie")


PLAUSIBLE_ROTATION = 0.5  # social housing turns over 5 to 15 % a year; above half is almost surely a typo


def implausible(rows: dict[str, list], raw: RawInstance) -> list[InputProblem]:
    """Values that are possible but so unusual that the user should look at them (warnings, not errors)."""
    table = raw.tables.get("parc", RawTable("parc.csv"))
    found = []
    for i, row in enumerate(rows["parc"]):
        stock = row.logements + (row.premieres_mises_en_location or 0)
        if row.liberations is not None and row.liberations > stock:
            found.append(InputProblem(table.source, table.line(i), "liberations",
                                  f"{row.liberations:g} libérations prévues pour {stock:g} logements : à vérifier"))
        if row.taux_rotation is not None and row.taux_rotation > PLAUSIBLE_ROTATION:
            found.append(InputProblem(table.source, table.line(i), "taux_rotation",
                                  f"taux de rotation de {row.taux_rotation:.0%} (plus de la moitié du parc libérée "
                                  "dans l'année) : à vérifier"))
    return found
