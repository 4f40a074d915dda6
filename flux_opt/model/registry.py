"""The rule registry: what each constraint family *is*, in one table.

One entry per family (the stable names of models/orientation.md §3): its French label, the legal
source a reader can look up, its nature, its penalty class, whether a negotiation can change it,
how its margin and one point of its rate read. The model (`build`, `families`), the result
statuses, the explanation sentences, the rule costs, the shortfalls and the comparisons all read
this table; none of them spells a family's properties again.

Adding a family is one `add_<builder>` function in `families.py` plus one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Rule:
    name: str  # stable family name: code, models/*.md, contraintes.csv
    label: str  # French label shown to people
    source: str  # where a reader can look it up (CCH article, CIA, convention)
    nature: str | None  # "dure" (elastic, penalised), "structurelle" (always holds), "souple" (soft), None: no rows
    penalty: str | None = None  # penalty class of a hard family: "legale" or "contractuelle"
    builder: str | None = None  # families.add_<builder> adds its rows (one builder may add several families)
    reported: bool = True  # listed in contraintes.csv
    negotiable: bool = False  # a negotiation can change it (rule costs, comparisons)
    on_attributions: bool = False  # its rows count expected attributions y (probed with x fixed)
    unit: str = "logement"  # what one unit of its right-hand side is
    rate_base: str | None = None  # one point of its rate, in units of: "flux", "base", "part", "reservataire"
    owner: str | None = None  # the réservataire it is about when its rows name none
    mixity: bool = False  # a share of a base (reads "atteint / NON atteint" in comparisons)
    structural: bool = False  # rows depend on neither rates nor targets (a parameter sweep keeps them)


_LEGAL = dict(nature="dure", penalty="legale", negotiable=True)
RULES: tuple[Rule, ...] = (
    Rule("conservation", "Conservation du flux", "flux annuel (CCH R.441-5)", "structurelle", builder="conservation",
         structural=True),
    Rule("territoire", "Territoire du réservataire", "conventions de réservation", None, reported=False),
    Rule("plafond_prefet", "Plafond du contingent préfectoral", "CCH R.441-5-2", builder="plafond_prefet",
         rate_base="flux", owner="prefet", **_LEGAL),
    Rule("plafond_agents", "Plafond des agents de l'État", "CCH R.441-5-2", builder="plafond_agents",
         rate_base="flux", owner="prefet_agents", **_LEGAL),
    Rule("uniformite_prefet", "Taux préfectoral uniforme par commune", "CCH R.441-5-2 II",
         builder="uniformite_prefet", owner="prefet", **_LEGAL),
    Rule("prefet_hors_qpv", "Part préfectorale hors QPV", "CCH R.441-5-2 II", builder="prefet_hors_qpv",
         rate_base="base", owner="prefet", mixity=True, **_LEGAL),
    Rule("plafond_collectivite", "Plafond des collectivités d'un territoire", "CCH R.441-5", builder="plafond_collectivite",
         rate_base="base", **_LEGAL),
    Rule("objectif_reservataire", "Objectif du réservataire", "convention de réservation", "dure",
         penalty="contractuelle", builder="objectif_reservataire", negotiable=True),
    Rule("objectif_indicatif", "Objectif indicatif", "objectifs indicatifs", "souple",
         builder="objectif_indicatif", negotiable=True),
    Rule("demande", "Vivier de demandeurs", "viviers de demandeurs", "structurelle", builder="demande",
         on_attributions=True, unit="demandeur", structural=True),
    Rule("cia_hors_qpv_q1", "CIA : 1er quartile hors QPV", "CCH L.441-1 (CIA)", builder="mixite",
         on_attributions=True, unit="attribution", rate_base="part", mixity=True, **_LEGAL),
    Rule("cia_qpv_q234", "CIA : quartiles 2 à 4 en QPV", "CCH L.441-1 (CIA)", builder="mixite",
         on_attributions=True, unit="attribution", rate_base="part", mixity=True, **_LEGAL),
    Rule("mixite", "Objectif de mixité", "CIA / CIL", builder="mixite", on_attributions=True,
         unit="attribution", rate_base="part", mixity=True, **_LEGAL),
    Rule("publics_prioritaires", "Publics prioritaires", "CCH L.441-1", builder="publics_prioritaires",
         on_attributions=True, unit="attribution", rate_base="reservataire", mixity=True, **_LEGAL),
    # Not a constraint: an exclusion larger than the releases of its scope, clipped to them (contraintes.csv
    # lines `exclusions`, statut `ecretee`; flux_opt.assiette.flux).
    Rule("exclusions", "Exclusion écrêtée aux libérations prévues", "flux annuel (CCH R.441-5)", "structurelle",
         reported=False, structural=True),
    Rule("stabilisation", "Stabilisation (proximité d'une répartition proportionnelle)", "—", "structurelle",
         builder="stabilisation", reported=False),
)
RULE: dict[str, Rule] = {r.name: r for r in RULES}


def names(**where) -> tuple[str, ...]:
    """Family names whose attributes equal the given values, in registry order
    (e.g. `names(negotiable=True)`, `names(owner="prefet")`)."""
    return tuple(r.name for r in RULES if all(getattr(r, k) == v for k, v in where.items()))


def builders() -> tuple[str, ...]:
    """The `add_<builder>` functions in row order (each once)."""
    return tuple(dict.fromkeys(r.builder for r in RULES if r.builder))


def structural_builders() -> tuple[str, ...]:
    """Builders whose every family is structural: a parameter sweep keeps their rows."""
    return tuple(b for b in builders() if all(r.structural for r in RULES if r.builder == b))


def label(name: str) -> str:
    return RULE[name].label if name in RULE else name


def source(name: str) -> str:
    return RULE[name].source if name in RULE else ""


def table() -> pd.DataFrame:
    """The registry as a table (documentation, tests)."""
    return pd.DataFrame([r.__dict__ for r in RULES])
