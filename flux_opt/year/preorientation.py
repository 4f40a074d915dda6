"""Pré-orientation of a newly released dwelling (data part, models/journal.md).

`rank_reservataires` ranks réservataires by how far behind they are on the
dwellings the plan gave them for that kind of dwelling, from the finest level
(same segment) to the coarsest (whole plan). `done_by_segment` and
`gap_to_plan` feed the re-optimisation of the rest of the year (lead's solver):
what is already oriented becomes a lower bound, and the drift measure says when
to re-solve.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from flux_opt.plan.folder import CLES_SEGMENT, read_plan
from flux_opt.input.schema import parse_bool
from flux_opt.year.journal.events import EvenementRefuse
from flux_opt.year.journal.views import cycle_states
from flux_opt.vocabulary import Financement, Typologie

# Re-solve when more than 2 % of the year's flux has been released beyond the
# forecast of its own segment (see `gap_to_plan` and models/journal.md).
SEUIL_REOPTIMISATION = 0.02

CLES_ORIENTATION = ["commune", "typologie", "qpv", "financement"]

NOMS_PAR_DEFAUT = {
    "prefet": "le préfet",
    "prefet_agents": "le contingent préfectoral des agents publics",
    "action_logement": "Action Logement",
    "bailleur": "le bailleur",
}

# Levels of comparison, finest first: (name, keys the dwelling must share).
NIVEAUX: list[tuple[str, list[str]]] = [
    ("segment", ["commune", "typologie", "qpv", "financement"]),
    ("commune_typologie_qpv", ["commune", "typologie", "qpv"]),
    ("commune_typologie", ["commune", "typologie"]),
    ("commune", ["commune"]),
    ("ensemble", []),
]


class LogementLibere(BaseModel):
    """The newly released dwelling to orient."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    commune: Annotated[str, Field(pattern=r"^(\d{5}|2[AB]\d{3})$")]
    typologie: Typologie
    qpv: bool
    financement: Financement
    epci: str | None = None

    @field_validator("qpv", mode="before")
    @classmethod
    def _qpv(cls, v: Any) -> bool:
        return parse_bool(v)


def read_logement(texte: str) -> LogementLibere:
    """Parse the CLI form `commune=59350,typologie=T3,qpv=non,financement=PLUS`."""
    valeurs: dict[str, str] = {}
    for morceau in filter(None, (m.strip() for m in texte.split(","))):
        if "=" not in morceau:
            raise EvenementRefuse("logement", f"« {morceau} » : attendu cle=valeur")
        cle, valeur = morceau.split("=", 1)
        valeurs[cle.strip()] = valeur.strip()
    return _validate_logement(valeurs)


def _validate_logement(logement: Mapping[str, Any] | LogementLibere) -> LogementLibere:
    if isinstance(logement, LogementLibere):
        return logement
    try:
        return LogementLibere.model_validate(dict(logement))
    except ValidationError as erreur:  # French, naming the field and what it accepts
        detail = erreur.errors()[0]
        champ = str(detail["loc"][-1]) if detail["loc"] else "logement"
        recu = detail.get("input")
        message = "valeur manquante" if detail["type"] == "missing" else f"valeur « {recu} » invalide"
        attendu = ATTENDUS.get(champ)
        raise EvenementRefuse(champ, f"{message} pour le logement à orienter"
                                     + (f" (attendu : {attendu})" if attendu else "")) from None


ATTENDUS = {"commune": "code INSEE à 5 caractères, par exemple 59350", "typologie": "T1, T2, T3, T4, T5 ou T6+",
            "qpv": "oui ou non", "financement": "PLAI, PLUS, PLS ou autre"}


def check_logement(plan_dir: str | Path, logement: LogementLibere, instance: Any = None) -> None:
    """A dwelling of a commune neither the plan nor the instance's parc knows is refused."""
    communes = set(read_plan(plan_dir)["commune"])
    if instance is not None:
        communes |= {ligne.commune for ligne in instance.parc}
    if logement.commune not in communes:
        raise EvenementRefuse("commune", f"commune {logement.commune} inconnue du plan et du parc (communes "
                                         f"connues : {', '.join(sorted(communes))})")


def logement_from_journal(journal_df: pd.DataFrame, logement_id: str) -> LogementLibere:
    """The dwelling of an open release in the journal, to orient it."""
    etat = cycle_states(journal_df) if len(journal_df) else pd.DataFrame(columns=["logement_id"])
    cycles = etat[etat["logement_id"] == logement_id]
    if not len(cycles):
        raise EvenementRefuse("logement_id", f"le logement {logement_id} n'est pas libéré dans le journal : "
                                             "décrire le logement avec --logement")
    dernier = cycles.iloc[-1]
    if dernier["statut"] != "libere":
        etats = {"propose": f"déjà proposé à {dernier['reservataire']}", "attribue": "déjà attribué",
                 "retire": "retiré du flux"}
        raise EvenementRefuse("logement_id", f"le logement {logement_id} est {etats[dernier['statut']]}")
    return _validate_logement({c: dernier[c] for c in ("commune", "typologie", "qpv", "financement", "epci")})


def open_release_of(journal_df: pd.DataFrame, wanted: LogementLibere) -> str | None:
    """The oldest release of the journal still waiting for a réservataire (no proposal in progress,
    no lease, no withdrawal) for this dwelling's commune, typologie, QPV and financement: `orienter`
    proposes it rather than record the same dwelling a second time."""
    if not len(journal_df):
        return None
    etat = cycle_states(journal_df)
    dernier = etat.drop_duplicates("logement_id", keep="last")
    same = dernier[(dernier["statut"] == "libere") & (dernier["commune"] == wanted.commune)
                   & (dernier["typologie"] == wanted.typologie) & (dernier["qpv"] == wanted.qpv)
                   & (dernier["financement"] == wanted.financement)]
    return str(same.sort_values("date_liberation", kind="stable")["logement_id"].iloc[0]) if len(same) else None


def _orientes(journal_df: pd.DataFrame) -> pd.DataFrame:
    """Releases currently proposed to or attributed to a réservataire."""
    if not len(journal_df):
        return pd.DataFrame(columns=[*CLES_SEGMENT, "reservataire", "statut"])
    etat = cycle_states(journal_df)
    return etat[etat["statut"].isin(["propose", "attribue"])]


def done_by_segment(journal_df: pd.DataFrame) -> pd.DataFrame:
    """Dwellings already oriented (proposal in progress or lease signed) per segment
    and réservataire: lower bounds x[r,s] ≥ logements for the re-solve of the year."""
    orientes = _orientes(journal_df)
    cles = [*CLES_SEGMENT, "reservataire"]
    if not len(orientes):
        return pd.DataFrame(columns=[*cles, "logements", "dont_attribues"])
    table = orientes.groupby(cles, as_index=False).agg(
        logements=("statut", "size"), dont_attribues=("statut", lambda s: int((s == "attribue").sum()))
    )
    return table.sort_values(cles, kind="stable").reset_index(drop=True)


def gap_by_segment(plan_dir: str | Path, journal_df: pd.DataFrame) -> pd.DataFrame:
    """Per segment: dwellings planned (flux F_s), released in the flux so far
    (withdrawn releases excluded) and released beyond the forecast."""
    plan = read_plan(plan_dir).groupby(CLES_ORIENTATION, as_index=False)["logements"].sum()
    plan = plan.rename(columns={"logements": "prevus"})
    if len(journal_df):
        etat = cycle_states(journal_df)
        etat = etat[etat["statut"] != "retire"]
        liberes = etat.groupby(CLES_ORIENTATION, as_index=False).size().rename(columns={"size": "liberes"})
    else:
        liberes = pd.DataFrame(columns=[*CLES_ORIENTATION, "liberes"])
    table = plan.merge(liberes, on=CLES_ORIENTATION, how="outer")
    table[["prevus", "liberes"]] = table[["prevus", "liberes"]].fillna(0).astype(int)
    table["depassement"] = (table["liberes"] - table["prevus"]).clip(lower=0)
    return table.sort_values(CLES_ORIENTATION, kind="stable").reset_index(drop=True)


def gap_to_plan(plan_dir: str | Path, journal_df: pd.DataFrame) -> float:
    """Drift of reality from the forecast: share of the year's flux already released
    beyond the forecast of its own segment, Σ_s max(L_s − F_s, 0) / Σ_s F_s.

    0 while releases stay within the plan's segments (reality matches the forecast,
    whatever the pace); grows as soon as the released mix differs. Compare with
    SEUIL_REOPTIMISATION.
    """
    table = gap_by_segment(plan_dir, journal_df)
    total = table["prevus"].sum()
    return float(table["depassement"].sum() / total) if total > 0 else 0.0


def should_reoptimise(plan_dir: str | Path, journal_df: pd.DataFrame, seuil: float = SEUIL_REOPTIMISATION) -> bool:
    """True when the drift exceeds the threshold: re-solve the rest of the year."""
    return gap_to_plan(plan_dir, journal_df) > seuil


def rank_reservataires(plan_dir: str | Path, journal_df: pd.DataFrame,
                          logement: Mapping[str, Any] | LogementLibere,
                          territoires: Mapping[str, set[str]] | None = None,
                          noms: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Rank réservataires for a newly released dwelling, best first, with a French reason.

    Each réservataire is judged at the finest level where the plan still gives it
    dwellings not yet oriented (segment, then commune × typologie × QPV, commune ×
    typologie, commune, whole plan); finer levels rank first, then the lowest share
    already oriented, then the most dwellings remaining. `territoires` (réservataire
    -> commune codes) excludes réservataires outside their territory.
    """
    logement = _validate_logement(logement)
    plan = read_plan(plan_dir)
    orientes = _orientes(journal_df)
    noms = {**NOMS_PAR_DEFAUT, **(noms or {})}
    reservataires = sorted(plan["reservataire"].unique())
    if territoires is not None:
        reservataires = [r for r in reservataires if r not in territoires or logement.commune in territoires[r]]
    lignes = [_evaluate(r, plan, orientes, logement, noms.get(r, r)) for r in reservataires]
    table = pd.DataFrame(lignes, columns=["reservataire", "niveau", "rang_niveau", "prevus", "orientes",
                                          "restants", "taux", "raison"])
    table = table.sort_values(["rang_niveau", "taux", "restants", "reservataire"],
                              ascending=[True, True, False, True], kind="stable").reset_index(drop=True)
    table.insert(0, "rang", range(1, len(table) + 1))
    return table.drop(columns="rang_niveau")


def _filtre(df: pd.DataFrame, logement: LogementLibere, cles: list[str]) -> pd.Series:
    garde = pd.Series(True, index=df.index)
    for cle in cles:
        garde &= df[cle] == getattr(logement, cle)
    return garde


def _evaluate(reservataire: str, plan: pd.DataFrame, orientes: pd.DataFrame,
             logement: LogementLibere, nom: str) -> dict[str, Any]:
    plan_r = plan[plan["reservataire"] == reservataire]
    orientes_r = orientes[orientes["reservataire"] == reservataire]
    for rang, (niveau, cles) in enumerate(NIVEAUX):
        prevus = int(plan_r.loc[_filtre(plan_r, logement, cles), "logements"].sum())
        faits = int(_filtre(orientes_r, logement, cles).sum())
        if prevus > faits:
            taux = faits / prevus
            raison = (f"{nom} est à {round(100 * taux)} % de son objectif {_description(niveau, logement)} "
                      f"({faits} logement{'s' if faits > 1 else ''} orienté{'s' if faits > 1 else ''} "
                      f"sur {prevus} prévu{'s' if prevus > 1 else ''})")
            return dict(reservataire=reservataire, niveau=niveau, rang_niveau=rang, prevus=prevus,
                        orientes=faits, restants=prevus - faits, taux=taux, raison=raison)
    prevus = int(plan_r["logements"].sum())
    faits = len(orientes_r)
    return dict(reservataire=reservataire, niveau="atteint", rang_niveau=len(NIVEAUX), prevus=prevus,
                orientes=faits, restants=prevus - faits, taux=(faits / prevus if prevus else 1.0),
                raison=f"{nom} a déjà reçu tous les logements que le plan lui attribue ({faits} sur {prevus})")


def _description(niveau: str, logement: LogementLibere) -> str:
    zone = "en QPV" if logement.qpv else "hors QPV"
    return {
        "segment": f"{logement.typologie} {zone} {logement.financement} dans cette commune",
        "commune_typologie_qpv": f"{logement.typologie} {zone} dans cette commune",
        "commune_typologie": f"{logement.typologie} dans cette commune",
        "commune": "dans cette commune",
        "ensemble": "sur l'ensemble du plan",
    }[niveau]
