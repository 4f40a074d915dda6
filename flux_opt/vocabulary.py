"""The data contract's word lists, written once: every module that validates, generates or reads
these words takes them from here; and the one tolerance of « tenue / non tenue » (end of file)."""

from __future__ import annotations

from typing import Literal, get_args

Typologie = Literal["T1", "T2", "T3", "T4", "T5", "T6+"]
Financement = Literal["PLAI", "PLUS", "PLS", "autre"]
TypeReservataire = Literal["prefet", "prefet_agents", "collectivite", "action_logement", "employeur", "autre",
                           "bailleur"]
CategorieExclusion = Literal["mutation", "anru", "orcod", "lhi", "vente", "urgence"]
Gestion = Literal["directe", "deleguee"]
Quartile = Literal["q1", "q234"]
Critere = Literal["q1", "q234", "prioritaire", "travailleur_essentiel"]
Zone = Literal["qpv", "hors_qpv", "tout"]

TYPOLOGIES: tuple[str, ...] = get_args(Typologie)
FINANCEMENTS: tuple[str, ...] = get_args(Financement)
TYPES_RESERVATAIRE: tuple[str, ...] = get_args(TypeReservataire)
CATEGORIES_EXCLUSION: tuple[str, ...] = get_args(CategorieExclusion)
GESTIONS: tuple[str, ...] = get_args(Gestion)
QUARTILES: tuple[str, ...] = get_args(Quartile)

# The State contingent: in the préfet's cap, uniformity and hors-QPV rules, "the préfet" is both.
PREFET_GROUP = ("prefet", "prefet_agents")
# Réservataires whose target has a default (the State's rate, the bailleur's remainder).
DEFAULT_TARGET_TYPES = (*PREFET_GROUP, "bailleur")


# --------------------------------------------------------------------------- one tolerance
# One tolerance for « tenue / non tenue », used by every layer (models/orientation.md §5,
# « One tolerance »): the model's row statuses (contraintes.csv, the exit code, the report, the
# negotiation page) and the conformity table (conformite.csv, `flux-opt controler`).
#
# - A rule on expected attributions (publics prioritaires, CIA, mixité: sums of fractional expected
#   lettings) is « non tenue » only when it misses by more than half an attribution: below that,
#   the gap is the solver's precision or the 4 decimals of attributions.csv, not a household.
# - A rule on whole dwellings (caps, floors, uniformity, targets) compares whole numbers with bounds
#   rounded to whole dwellings (caps down, floors up): it is « non tenue » as soon as one dwelling
#   is missing; the tolerance only absorbs binary noise.
#
# Displayed bounds are rounded like the values they are compared to (one decimal for attributions,
# whole numbers for dwellings).

ATTRIBUTION_TOLERANCE = 0.5  # half an expected attribution
DWELLING_TOLERANCE = 1e-6  # whole dwellings: any whole dwelling missing is a miss


def tolerance(on_attributions: bool) -> float:
    """How far a rule may miss its bound and still be « tenue »."""
    return ATTRIBUTION_TOLERANCE if on_attributions else DWELLING_TOLERANCE


def missed(gap: float, on_attributions: bool) -> bool:
    """True when a shortfall `gap` (≥ 0: how far the value is beyond its bound) makes the rule « non tenue »."""
    return gap > tolerance(on_attributions)
