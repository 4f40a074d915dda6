"""Where the plan falls short, and why a rule cannot hold, read from the data.

- `vacancy_risk(result)`: dwellings oriented to a réservataire with no expected candidate
  (risk of vacance commerciale), per réservataire × commune × typologie.
- `unmet_demand(result)`: candidates of each pool that the plan cannot serve.
- `violation_causes(model, result)`: for each violated row, the fact of the data that makes it
  impossible ("aucun demandeur du 1er quartile hors QPV dans l'EPCI …").
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from flux_opt.explanation.sentences import PREFET_GROUP, ZONE, fr_number, fr_percent
from flux_opt.model.build import OrientationModel
from flux_opt.model.registry import DEMANDE, OBJECTIF_RESERVATAIRE, PLAFOND_PREFET, RULE, UNIFORMITE_PREFET, names
from flux_opt.plan.result import Result

TOL = 1e-6
PLACE = ["reservataire", "commune", "typologie"]
CANDIDATE = {"q1": "du 1er quartile", "q234": "des quartiles 2 à 4", "prioritaire": "prioritaire",
             "travailleur_essentiel": "travailleur essentiel"}


def _pool_rows(result: Result) -> pd.DataFrame:
    rows = result.rows
    pools = rows.loc[(rows["contrainte"] == DEMANDE) & rows["publie"]]
    return pools.assign(attributions=pools["valeur"], demandeurs=pools["borne_sup"])


def _lookup(sums: pd.Series, *keys: pd.Series) -> np.ndarray:
    """Values of a grouped sum at the given keys (0 where the key is absent)."""
    index = pd.MultiIndex.from_arrays([k.to_numpy() for k in keys])
    return sums.reindex(index).fillna(0).to_numpy(dtype=float)


def vacancy_risk(result: Result) -> pd.DataFrame:
    """Dwellings with no candidate to propose (risk of vacance commerciale), per réservataire × commune ×
    typologie: the dwellings beyond the candidates of the pools that fill them (a commune's pool, else
    its EPCI's, shared by the réservataire's dwellings of that typologie there), spread over the lines
    pro rata of their dwellings.

    A dwelling whose candidates may refuse it is not one of them: expected attributions stay below the
    dwellings by the refusals (a household accepts with a probability, models/orientation.md §2) and a
    refused dwelling returns to the bailleur, who lets it."""
    plan = result.plan.groupby(PLACE, as_index=False)["logements"].sum()
    att = result.attributions.groupby(PLACE, as_index=False)["attributions_prevues"].sum()
    table = plan.merge(att, on=PLACE, how="left").fillna({"attributions_prevues": 0.0})
    epci = result.plan.groupby("commune")["epci"].first()
    pools = _pool_rows(result).groupby(["reservataire", "typologie", "zone"])["demandeurs"].sum()
    # A dwelling's candidates are the pools of its réservataire and typologie at its commune or its EPCI.
    in_commune = _lookup(pools, table["reservataire"], table["typologie"], table["commune"])
    in_epci = _lookup(pools, table["reservataire"], table["typologie"], table["commune"].map(epci))
    table["demandeurs_du_vivier"] = in_commune + in_epci
    table["_zone"] = np.where(in_commune > 0, table["commune"], table["commune"].map(epci))
    table["_candidats"] = np.where(in_commune > 0, in_commune, in_epci)
    groups = table.groupby(["reservataire", "typologie", "_zone"])
    dwellings = groups["logements"].transform("sum")
    short = np.maximum(0.0, dwellings - groups["_candidats"].transform("first"))
    table["sans_candidat"] = (short * table["logements"] / dwellings).round(4)
    table = table.loc[table["sans_candidat"] > 1e-3].drop(columns=["_zone", "_candidats"])
    table["cause"] = np.where(table["demandeurs_du_vivier"] == 0,
                              "aucun demandeur de ce réservataire pour cette commune et cette typologie",
                              "moins de demandeurs dans son vivier que de logements orientés")
    return table.sort_values(["sans_candidat", "reservataire", "commune", "typologie"],
                             ascending=[False, True, True, True], kind="stable").reset_index(drop=True)


def unmet_demand(result: Result) -> pd.DataFrame:
    """Candidates left without a dwelling, per réservataire × zone × typologie (all categories)."""
    pools = _pool_rows(result)
    if pools.empty:
        return pd.DataFrame(columns=["reservataire", "niveau", "zone", "typologie", "demandeurs", "attributions",
                                     "non_servis", "logements_du_flux", "logements_orientes", "cause"])
    table = (pools.groupby(["reservataire", "niveau", "zone", "typologie"], as_index=False)
             .agg(demandeurs=("demandeurs", "sum"), attributions=("attributions", "sum")))
    table["non_servis"] = (table["demandeurs"] - table["attributions"]).round(4)
    table["logements_du_flux"] = 0
    table["logements_orientes"] = 0
    for niveau in ("commune", "epci"):  # a pool's zone is a commune or an EPCI
        at = (table["niveau"] == niveau).to_numpy()
        sub = table.loc[at]
        flux = result.plan.groupby([niveau, "typologie"])["logements"].sum()
        oriented = result.plan.groupby(["reservataire", niveau, "typologie"])["logements"].sum()
        table.loc[at, "logements_du_flux"] = _lookup(flux, sub["zone"], sub["typologie"]).astype(int)
        table.loc[at, "logements_orientes"] = _lookup(
            oriented, sub["reservataire"], sub["zone"], sub["typologie"]).astype(int)
    table["cause"] = np.select(
        [table["logements_du_flux"] == 0, table["logements_orientes"] == 0],
        ["aucun logement de cette typologie dans le flux de la zone",
         "aucun logement de cette typologie orienté à ce réservataire dans la zone"],
        "plus de demandeurs que de logements orientés")
    table = table.loc[table["non_servis"] > 1e-3]
    return table.sort_values(["non_servis", "reservataire", "zone", "typologie"],
                             ascending=[False, True, True, True], kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------- causes

def violation_causes(model: OrientationModel, result: Result) -> dict[int, str]:
    """Row index of result.rows → French cause of the violation, from the data."""
    rows = result.rows
    causes = {}
    for i, row in rows.loc[rows["statut"] == "violee"].iterrows():
        finder = RULE[row["contrainte"]].cause  # a family that can be violated has one (tests/test_registry.py)
        cause = FINDERS[finder](model, result, row)
        if cause:
            causes[i] = cause
    return causes


def _zone_mask(table: pd.DataFrame, epci: str, zone: str) -> np.ndarray:
    mask = (table["epci"] == epci).to_numpy()
    if zone in ("qpv", "hors_qpv"):
        qpv = table["qpv"].to_numpy(dtype=bool)
        mask = mask & (qpv if zone == "qpv" else ~qpv)
    return mask


def _criterion(table: pd.DataFrame, critere: str) -> np.ndarray:
    if critere in ("q1", "q234"):
        return (table["quartile"] == critere).to_numpy()
    return table[critere].to_numpy(dtype=bool)


def _mixity_cause(model: OrientationModel, result: Result, row) -> str:
    d = model.data
    code, zone, critere = row["epci"], row["zone"], row["critere"]
    epci = result.noms.epci_label(code)  # what the text shows; `code` selects
    where = ZONE.get(zone, "")
    who = CANDIDATE.get(critere, critere)
    flux = float(d.segments.loc[_zone_mask(d.segments, code, zone), "flux"].sum())
    if flux == 0:
        return f"l'EPCI {epci} n'a aucun logement {where} dans le flux : la règle ne peut s'y appliquer".replace("  ", " ")
    flows = d.flows.loc[_zone_mask(d.flows, code, zone) & _criterion(d.flows, critere)]
    rid = row.get("reservataire")
    if isinstance(rid, str) and rid:
        flows = flows.loc[flows["reservataire"] == rid]
    reachable = float(d.pools.loc[d.pools["p"].isin(flows["p"].unique()), "demandeurs"].sum())
    required = row["borne_inf"] if row["borne_inf"] > 0 else float("nan")
    if reachable == 0:
        elsewhere = _elsewhere(model, result, code, critere)
        text = f"aucun demandeur {who} {where} dans l'EPCI {epci}".replace("  ", " ")
        if elsewhere:
            text += f" ({elsewhere})"
        return text + f" ; {fr_number(flux)} logements {where} à attribuer".replace("  ", " ")
    if math.isfinite(required) and reachable < required - TOL:
        return (f"seulement {fr_number(reachable)} demandeurs {who} peuvent recevoir un logement {where} "
                f"de l'EPCI {epci}, pour un minimum de {fr_number(required)}").replace("  ", " ")
    return (f"{fr_number(reachable)} demandeurs {who} existent, mais les objectifs et plafonds des "
            f"réservataires de leurs viviers ne leur laissent pas assez de logements {where}").replace("  ", " ")


def _elsewhere(model: OrientationModel, result: Result, epci: str, critere: str) -> str:
    """Where the candidates of the criterion in the EPCI are, when none can be reached."""
    d = model.data
    communes = set(d.segments.loc[d.segments["epci"] == epci, "commune"])
    pools = d.pools.loc[d.pools["zone"].isin(communes | {epci}) & _criterion(d.pools, critere)]
    total = float(pools["demandeurs"].sum())
    if total == 0:
        return "le fichier demande.csv n'en contient aucun dans cet EPCI"
    noms = result.noms
    zones = ", ".join(noms.commune(z) if z in noms.communes else noms.epci_label(z) if z in noms.epci else z
                      for z in sorted(pools["zone"].unique()))
    return f"les {fr_number(total)} demandeurs {CANDIDATE.get(critere, critere)} de l'EPCI visent {zones}"


def _target(model: OrientationModel, rid: str) -> pd.Series:
    table = model.data.reservataires
    return table.loc[table["id"] == rid].iloc[0]


def _target_cause(model: OrientationModel, result: Result, row) -> str | None:
    d = model.data
    rid = row["reservataire"]
    t = _target(model, rid)
    target, base = float(t["cible"]), float(t["base"])
    if t["type"] == "bailleur":
        others = result.rows.loc[(result.rows["contrainte"] == OBJECTIF_RESERVATAIRE)
                                 & (result.rows["statut"] == "violee") & (result.rows["reservataire"] != rid),
                                 "reservataire"].tolist()
        if others:
            return ("le bailleur reçoit le reste du flux : il absorbe les logements que "
                    + ", ".join(map(result.noms.reservataire, others)) + " ne peut pas recevoir")
        return "le bailleur reçoit le reste du flux : son objectif suit les écarts des autres règles"
    if target > base + TOL:
        return f"l'objectif de {fr_number(target)} logements dépasse le flux de son territoire ({fr_number(base)})"
    plafond = t.get("plafond")
    if t["type"] == "collectivite" and plafond is not None and math.isfinite(plafond) and target > plafond + TOL:
        return _collectivite_text(model, rid, target, float(plafond), base)
    if t["type"] in PREFET_GROUP:
        group = d.reservataires.loc[d.reservataires["type"].isin(PREFET_GROUP), "cible"].sum()
        cap = d.targets.plafond_prefet
        if cap is not None and group > cap + TOL:
            return f"les objectifs du préfet et de ses agents ({fr_number(group)}) dépassent le plafond de {fr_number(cap)}"
    legal = result.rows.loc[(result.rows["statut"] != "lache") & result.rows["contrainte"].isin(
        names(penalty="legale", on_attributions=False))]
    if len(legal):
        return "les règles légales tenues sans marge (" + ", ".join(sorted(set(legal["contrainte"]))) + ") ne laissent pas la place"
    return None


def _collectivite_text(model: OrientationModel, rid: str, target: float, plafond: float, base: float) -> str:
    rate = model.data.instance.reservataire(rid).taux
    legal = model.data.instance.regles.collectivite_plafond
    rate_text = f"taux contractuel de {fr_percent(rate)} " if rate is not None else ""
    return (f"{rate_text}au-dessus du plafond légal de {fr_percent(legal)} sans financement apporté "
            f"(CCH R.441-5) : objectif {fr_number(target)} pour un plafond de {fr_number(plafond)} logements "
            f"sur un flux de {fr_number(base)}").strip()


def _territory_cap_cause(model: OrientationModel, result: Result, row) -> str | None:
    """The territory's cap is global (CCH R.441-5): its collectivités' targets together above it."""
    ids = row["reservataire"].split(", ")
    if len(ids) == 1:
        t = _target(model, ids[0])
        return _collectivite_text(model, ids[0], float(t["cible"]), float(row["borne_sup"]), float(t["base"]))
    total = sum(float(_target(model, rid)["cible"]) for rid in ids)
    return (f"les objectifs de {', '.join(ids)} ({fr_number(total)} logements) dépassent ensemble le plafond "
            f"de {fr_number(row['borne_sup'])} logements de leur territoire (CCH R.441-5)")


def _state_cap_cause(model: OrientationModel, result: Result, row) -> str:
    table = model.data.reservataires
    types = PREFET_GROUP if row["contrainte"] == PLAFOND_PREFET else ("prefet_agents",)
    group = float(table.loc[table["type"].isin(types), "cible"].sum())
    return f"les objectifs fixés ({fr_number(group)} logements) dépassent le plafond de {fr_number(row['borne_sup'])}"


def _outside_qpv_cause(model: OrientationModel, result: Result, row) -> str | None:
    d = model.data
    seg = d.segments
    flux_hq = seg.loc[~seg["qpv"]].groupby("commune")["flux"].sum()
    if flux_hq.sum() == 0:
        return "le flux du département n'a aucun logement hors QPV : la règle préfet hors QPV ne peut s'appliquer"
    table = d.reservataires
    group = float(table.loc[table["type"].isin(PREFET_GROUP), "cible"].sum())
    required = row["borne_inf"]
    if math.isfinite(required) and required > 0 and group < required:
        return f"le contingent préfectoral ({fr_number(group)}) est inférieur au minimum hors QPV ({fr_number(required)})"
    uni = result.rows.loc[result.rows["contrainte"] == UNIFORMITE_PREFET].set_index("commune")
    if len(uni) and math.isfinite(required):
        cap = uni["borne_sup"].clip(upper=flux_hq.reindex(uni.index).fillna(0)).sum()
        qpv_only = [c for c in uni.index if flux_hq.get(c, 0) == 0]
        if cap < required:
            text = (f"avec le taux uniforme par commune, le préfet peut recevoir au plus {fr_number(cap)} "
                    f"logements hors QPV")
            if qpv_only:
                text += " ; sans logement hors QPV : " + ", ".join(f"la commune {result.noms.commune(c)}" for c in qpv_only)
            return text
    return None


def _uniformity_cause(model: OrientationModel, result: Result, row) -> str | None:
    seg = model.data.segments
    commune = row["commune"]
    here = seg.loc[seg["commune"] == commune]
    hq = float(here.loc[~here["qpv"], "flux"].sum())
    if hq == 0:
        return (f"la commune {result.noms.commune(commune)} n'a aucun logement hors QPV : le minimum hors QPV du préfet "
                "le pousse vers les autres communes")
    return "le taux uniforme est en conflit avec le plafond, l'objectif ou la part hors QPV du préfet"


def _priority_cause(model: OrientationModel, result: Result, row) -> str:
    d = model.data
    rid = row["reservataire"]
    flows = d.flows.loc[(d.flows["reservataire"] == rid) & d.flows["prioritaire"].to_numpy(dtype=bool)]
    reachable = float(d.pools.loc[d.pools["p"].isin(flows["p"].unique()), "demandeurs"].sum())
    if reachable == 0:
        return (f"aucun demandeur prioritaire dans le vivier de {result.noms.reservataire(rid)} pour les logements "
                "qu'il peut recevoir")
    return (f"le vivier de {result.noms.reservataire(rid)} ne compte que {fr_number(reachable)} demandeurs prioritaires "
            "pour les communes et typologies de ses logements")


# The cause finder of each family that can be violated, by its registry facet `Rule.cause`
# (tests/test_registry.py checks that every hard family has one).
FINDERS = {
    "mixity": _mixity_cause, "target": _target_cause, "territory_cap": _territory_cap_cause,
    "state_cap": _state_cap_cause, "outside_qpv": _outside_qpv_cause, "uniformity": _uniformity_cause,
    "priority": _priority_cause,
}
