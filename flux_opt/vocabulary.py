"""The data contract's word lists, written once: every module that validates, generates or reads
these words takes them from here."""

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
