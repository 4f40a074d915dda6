"""The rule registry: what each constraint family *is*, in one table.

One entry per family (the stable names of models/orientation.md §3) carries everything about it:
its French label, the legal source a reader can look up, its nature and penalty class, its `build`
(the `add_<builder>` function of families.py), whether a negotiation can change it, how its margin
and one point of its rate read, and its facets in the layers above: the body of its French sentence
(explanation/sentences.BODIES), its cause finder (explanation/shortfalls.FINDERS), its marginal-value
probe (explanation/marginal.PROBES), how a rule cost relaxes it by one point, and whether the
independent conformity table re-checks it. The model, the result statuses, the explanation, the
rule costs, the shortfalls, the comparisons and the reports all iterate over this table; the layers
above look a facet up with `[]` (never `.get()`), and tests/test_registry.py fails when a family
lacks one. The stable names are spelled here (constants below) and in the builders of families.py;
every other module takes them from these constants.

Adding a family is one entry here, one `add_<builder>` function in `families.py`, its facets if it
needs new ones, its test and its section of models/orientation.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

# The stable family names (code, models/*.md, contraintes.csv, conformite.csv).
CONSERVATION = "conservation"
TERRITOIRE = "territoire"
PLAFOND_PREFET = "plafond_prefet"
PLAFOND_AGENTS = "plafond_agents"
UNIFORMITE_PREFET = "uniformite_prefet"
PREFET_HORS_QPV = "prefet_hors_qpv"
PLAFOND_COLLECTIVITE = "plafond_collectivite"
OBJECTIF_RESERVATAIRE = "objectif_reservataire"
OBJECTIF_INDICATIF = "objectif_indicatif"
DEMANDE = "demande"
CIA_HORS_QPV_Q1 = "cia_hors_qpv_q1"
CIA_QPV_Q234 = "cia_qpv_q234"
MIXITE = "mixite"
PUBLICS_PRIORITAIRES = "publics_prioritaires"
EXCLUSIONS = "exclusions"
STABILISATION = "stabilisation"


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
    # Facets read by the layers above (each a key of that layer's table; tests/test_registry.py):
    sentence: str | None = None  # body of its sentence: explanation.sentences.BODIES[sentence]
    cause: str | None = None  # why it cannot hold, from the data: explanation.shortfalls.FINDERS[cause]
    probe: str | None = None  # marginal value: explanation.marginal.PROBES[probe]
    one_point: str | None = None  # a rule cost relaxes it by one point of: "plafond", "minimum", "tolerance"
    conformity: bool = False  # re-checked, independently of the model, in conformite.csv


_LEGAL = dict(nature="dure", penalty="legale", negotiable=True)
RULES: tuple[Rule, ...] = (
    Rule(CONSERVATION, "Conservation du flux", "flux annuel (CCH R.441-5)", "structurelle", builder="conservation",
         structural=True, sentence="flow", conformity=True),
    Rule(TERRITOIRE, "Territoire du réservataire", "conventions de réservation", None, reported=False,
         conformity=True),
    Rule(PLAFOND_PREFET, "Plafond du contingent préfectoral", "CCH R.441-5-2", builder="plafond_prefet",
         rate_base="flux", owner="prefet", sentence="state_cap", cause="state_cap", probe="unit",
         one_point="plafond", conformity=True, **_LEGAL),
    Rule(PLAFOND_AGENTS, "Plafond des agents de l'État", "CCH R.441-5-2", builder="plafond_agents",
         rate_base="flux", owner="prefet_agents", sentence="state_cap", cause="state_cap", probe="unit",
         one_point="plafond", conformity=True, **_LEGAL),
    Rule(UNIFORMITE_PREFET, "Taux préfectoral uniforme par commune", "CCH R.441-5-2 II",
         builder="uniformite_prefet", owner="prefet", sentence="uniformity", cause="uniformity",
         probe="unit", one_point="tolerance", conformity=True, **_LEGAL),
    Rule(PREFET_HORS_QPV, "Part préfectorale hors QPV", "CCH R.441-5-2 II", builder="prefet_hors_qpv",
         rate_base="base", owner="prefet", mixity=True, sentence="outside_qpv", cause="outside_qpv",
         probe="unit", one_point="minimum", conformity=True, **_LEGAL),
    Rule(PLAFOND_COLLECTIVITE, "Plafond des collectivités d'un territoire", "CCH R.441-5",
         builder="plafond_collectivite", rate_base="base", sentence="territory_cap", cause="territory_cap",
         probe="unit", one_point="plafond", conformity=True, **_LEGAL),
    Rule(OBJECTIF_RESERVATAIRE, "Objectif du réservataire", "convention de réservation", "dure",
         penalty="contractuelle", builder="objectif_reservataire", negotiable=True, sentence="target",
         cause="target", probe="target"),
    Rule(OBJECTIF_INDICATIF, "Objectif indicatif", "convention de réservation, objectifs indicatifs",
         "souple", builder="objectif_indicatif", negotiable=True, sentence="indicative", probe="unit"),
    Rule(DEMANDE, "Vivier de demandeurs", "CCH L.441-2-1, demandes enregistrées", "structurelle",
         builder="demande", on_attributions=True, unit="demandeur", structural=True, sentence="pool",
         probe="dual", conformity=True),  # conformite.csv: attributions within dwellings, pools, acceptance
    Rule(CIA_HORS_QPV_Q1, "CIA : 1er quartile hors QPV", "CCH L.441-1 (CIA)", builder="mixite",
         on_attributions=True, unit="attribution", rate_base="part", mixity=True, sentence="mixity",
         cause="mixity", probe="unit", one_point="minimum", conformity=True, **_LEGAL),
    Rule(CIA_QPV_Q234, "CIA : quartiles 2 à 4 en QPV", "CCH L.441-1 (CIA)", builder="mixite",
         on_attributions=True, unit="attribution", rate_base="part", mixity=True, sentence="mixity",
         cause="mixity", probe="unit", one_point="minimum", conformity=True, **_LEGAL),
    Rule(MIXITE, "Objectif de mixité", "CIA / CIL", builder="mixite", on_attributions=True,
         unit="attribution", rate_base="part", mixity=True, sentence="mixity", cause="mixity", probe="unit",
         one_point="minimum", **_LEGAL),
    Rule(PUBLICS_PRIORITAIRES, "Publics prioritaires", "CCH L.441-1", builder="publics_prioritaires",
         on_attributions=True, unit="attribution", rate_base="reservataire", mixity=True, sentence="priority",
         cause="priority", probe="unit", conformity=True, **_LEGAL),
    # Not a constraint: an exclusion larger than the releases of its scope, clipped to them (contraintes.csv
    # lines `exclusions`, statut `ecretee`; flux_opt.assiette.flux).
    Rule(EXCLUSIONS, "Exclusion écrêtée aux libérations prévues", "flux annuel (CCH R.441-5)", "structurelle",
         reported=False, structural=True),
    Rule(STABILISATION, "Stabilisation (proximité d'une répartition proportionnelle)", "—", "structurelle",
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
    """The French label of a family (a name outside the registry is an error, not a silent fallback)."""
    return RULE[name].label


def source(name: str) -> str:
    return RULE[name].source


def table() -> pd.DataFrame:
    """The registry as a table (documentation, tests)."""
    return pd.DataFrame([r.__dict__ for r in RULES])
