"""The State's view of a batch: the bailleurs of each département added up, and the national summary.

The préfet is one per département, across all its bailleurs; each plan is computed bailleur by
bailleur. Each worker writes, beside the plan, the instance's share of that view
(`contingent.csv`: État dwellings per commune and QPV; `collectivites.csv`: the collectivités
of each territory together); `scale.batch.write_departements` adds them up per département into
`SORTIE/departements/<code>/` (`bailleurs.csv`, `communes.csv`, `collectivites.csv`, and
`contingent.html` / `contingent.xlsx` for people). The caps are the law's (CCH R.441-5-2: the
préfet, agents included, at most ⌊30 %⌋ of the flux, the agents ⌊5 %⌋; CCH R.441-5: the
collectivités of a territory together ⌊20 %⌋ of its flux), for each bailleur and for the total.

`national_view` gathers what `synthese.html` / `synthese.xlsx` show: instances by conformity,
the rules not held and their most frequent cause, the distributions of the État's share and of
adequacy, the slowest instances.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from flux_opt.assiette.apportion import cap
from flux_opt.assiette.targets import LEGAL_MAXIMA
from flux_opt.explanation.shortfalls import violation_causes
from flux_opt.model.registry import PLAFOND_AGENTS  # the column holds that rule's cap, under its stable name
from flux_opt.vocabulary import PREFET_GROUP

CONTINGENT = "contingent.csv"
COLLECTIVITES = "collectivites.csv"
DEPARTEMENTS = "departements"
HORS_QPV_MIN = 0.30  # CCH R.441-5-2 II, « sauf stipulation contraire »
COMMUNE_KEYS = ["commune", "commune_nom", "epci", "epci_nom", "qpv"]


# ---------------------------------------------------------------------------- in the worker


def instance_contingent(plan_run) -> pd.DataFrame:
    """Per commune × QPV of one plan: the flux and the dwellings of the préfet and of the agents."""
    result = plan_run.result
    types = {r.id: r.type for r in plan_run.instance.reservataires}
    kind = result.plan["reservataire"].map(types).to_numpy()
    dwellings = result.plan["logements"].to_numpy()
    # one groupby for the flux and the State's columns (each kind's dwellings, 0 elsewhere)
    plan = result.plan[["commune", "epci", "qpv"]].assign(
        flux=dwellings, **{k: np.where(kind == k, dwellings, 0) for k in PREFET_GROUP})
    table = plan.groupby(["commune", "epci", "qpv"], as_index=False).sum()
    table[list(PREFET_GROUP)] = table[list(PREFET_GROUP)].astype(int)
    table.insert(1, "commune_nom", table["commune"].map(result.noms.commune_name))
    table.insert(3, "epci_nom", table["epci"].map(result.noms.epci_name))
    return table[[*COMMUNE_KEYS, "flux", *PREFET_GROUP]]


def instance_collectivites(plan_run) -> pd.DataFrame:
    """Per territory of the instance's collectivités (their `territoire` codes, the département when
    blank): the flux of the territory in this plan, the collectivités' dwellings, those of the
    collectivités without financing (held together to ⌊20 %⌋, CCH R.441-5)."""
    result, instance = plan_run.result, plan_run.instance
    dwellings = result.plan.groupby("reservataire")["logements"].sum()
    flux_of_commune = result.plan.groupby("commune")["logements"].sum()
    rows: dict[str, dict] = {}
    for r in instance.reservataires:
        if r.type != "collectivite":
            continue
        key = ";".join(sorted(r.territoire)) or instance.parametres.instance.departement
        communes = plan_run.targets.territoires[r.id]
        row = rows.setdefault(key, {"territoire": key, "territoire_nom": _territory_name(key, r.nom, result.noms),
                                    "flux": int(flux_of_commune.reindex(list(communes)).fillna(0).sum()),
                                    "logements": 0, "sans_financement": 0})
        n = int(dwellings.get(r.id, 0))
        row["logements"] += n
        row["sans_financement"] += 0 if r.financement_apporte else n
    return pd.DataFrame(list(rows.values()), columns=["territoire", "territoire_nom", "flux", "logements",
                                                      "sans_financement"])


def _territory_name(key: str, nom: str, noms) -> str:
    if key in noms.communes:
        return noms.commune_name(key)
    if key in noms.epci:
        return noms.epci_name(key)
    return nom


def violated_causes(plan_run) -> list[dict]:
    """Each rule not held with the cause found in the data (no re-solve): [{regle, cause}]."""
    rows = plan_run.result.rows
    causes = violation_causes(plan_run.model, plan_run.result)
    return [{"regle": rows.at[i, "contrainte"], "cause": text} for i, text in causes.items()]


def etat_share(contingent: pd.DataFrame) -> float | None:
    flux = int(contingent["flux"].sum())
    return round(float(contingent[list(PREFET_GROUP)].to_numpy().sum()) / flux, 6) if flux else None


# ---------------------------------------------------------------------------- per département


@dataclass
class DepartementView:
    code: str
    bailleurs: pd.DataFrame  # one line per instance, then `ensemble`
    communes: pd.DataFrame  # one line per commune, all bailleurs together
    collectivites: pd.DataFrame  # one line per territory, all bailleurs together
    absentes: list[str]  # instances of the département without a plan (invalid, failed)


def departement_view(code: str, lines: pd.DataFrame, sortie: Path) -> DepartementView:
    """Add up the plans of the département's instances (`lines`: its rows of synthese.csv)."""
    parts, territories, absent = [], [], []
    for line in lines.itertuples():
        folder = Path(sortie) / line.instance
        if line.code not in ("0", "3") or not (folder / CONTINGENT).is_file():
            absent.append(line.instance)
            continue
        table = pd.read_csv(folder / CONTINGENT, dtype={"commune": str, "epci": str}, keep_default_na=False)
        parts.append(table.assign(instance=line.instance, bailleur=line.bailleur, bailleur_nom=line.bailleur_nom))
        collectivites = pd.read_csv(folder / COLLECTIVITES, dtype={"territoire": str}, keep_default_na=False)
        territories.append(collectivites.assign(instance=line.instance))
    contingent = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=[*COMMUNE_KEYS, "flux", *PREFET_GROUP, "instance", "bailleur", "bailleur_nom"])
    return DepartementView(code, _bailleurs(contingent), _communes(contingent),
                           _collectivites(pd.concat(territories, ignore_index=True) if territories else None),
                           absent)


STATE_SUMS = ["flux", "prefet", "prefet_agents", "flux_hors_qpv", "etat_hors_qpv"]


def _state_sums(contingent: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """The State's dwellings and the flux, in all and hors QPV, per value of `by` (sorted), or one
    line for the whole table: one groupby for every commune of a département rather than one
    sub-table each (the end of a national `lot` added 18 000 of them up one by one)."""
    hors = (contingent["qpv"] == "non").to_numpy()
    flux = contingent["flux"].to_numpy()
    etat = contingent["prefet"].to_numpy() + contingent["prefet_agents"].to_numpy()
    table = pd.DataFrame({"flux": flux, "prefet": contingent["prefet"].to_numpy(),
                          "prefet_agents": contingent["prefet_agents"].to_numpy(),
                          "flux_hors_qpv": np.where(hors, flux, 0), "etat_hors_qpv": np.where(hors, etat, 0)})
    if by is None:
        return table.sum().to_frame().T
    return table.groupby(contingent[by].to_numpy(), sort=True).sum()


def _state_columns(flux, prefet, agents, flux_hors, etat_hors) -> dict:
    """The State's line from its sums (Python ints, so that the shares round as before)."""
    flux, prefet, agents, flux_hors, etat_hors = (int(v) for v in (flux, prefet, agents, flux_hors, etat_hors))
    return {"flux": flux, "prefet": prefet, "prefet_agents": agents, "etat": prefet + agents,
            "part_etat": round((prefet + agents) / flux, 6) if flux else 0.0,
            "plafond_etat": cap(LEGAL_MAXIMA["prefet_taux"], flux),
            PLAFOND_AGENTS: cap(LEGAL_MAXIMA["prefet_agents_taux"], flux),
            "flux_hors_qpv": flux_hors, "etat_hors_qpv": etat_hors,
            "taux_hors_qpv": round(etat_hors / flux_hors, 6) if flux_hors else 0.0}


def _state_lines(contingent: pd.DataFrame, by: str) -> list[dict]:
    """_state_columns of each value of `by`, in sorted order."""
    sums = _state_sums(contingent, by)
    return [_state_columns(*values) for values in zip(*(sums[c].to_numpy() for c in STATE_SUMS))]


def _first_of(contingent: pd.DataFrame, by: str, columns: list[str]) -> pd.DataFrame:
    """The first line's `columns` of each value of `by`, sorted by it (as groupby's first line)."""
    return contingent.drop_duplicates(by).set_index(by)[columns].sort_index()


def _bailleurs(contingent: pd.DataFrame) -> pd.DataFrame:
    first = _first_of(contingent, "instance", ["bailleur", "bailleur_nom"])
    rows = [{"instance": instance, "bailleur": bailleur, "bailleur_nom": nom, **state}
            for instance, bailleur, nom, state in zip(first.index, first["bailleur"], first["bailleur_nom"],
                                                      _state_lines(contingent, "instance"))]
    rows.append({"instance": "ensemble", "bailleur": "", "bailleur_nom": "",
                 **_state_columns(*_state_sums(contingent).iloc[0][STATE_SUMS])})
    table = pd.DataFrame(rows)
    table["etat_tenu"] = table["etat"] <= table["plafond_etat"]
    table["agents_tenu"] = table["prefet_agents"] <= table[PLAFOND_AGENTS]
    table["hors_qpv_tenu"] = (table["flux_hors_qpv"] == 0) | (table["taux_hors_qpv"] >= HORS_QPV_MIN - 1e-9)
    return table


def _communes(contingent: pd.DataFrame) -> pd.DataFrame:
    first = _first_of(contingent, "commune", ["commune_nom", "epci", "epci_nom"])
    bailleurs = contingent.groupby("commune", sort=True)["instance"].nunique()
    rows = [{"commune": commune, "commune_nom": nom, "epci": epci, "epci_nom": epci_nom, "bailleurs": n, **state}
            for commune, nom, epci, epci_nom, n, state in zip(
                first.index, first["commune_nom"], first["epci"], first["epci_nom"], bailleurs.to_numpy(),
                _state_lines(contingent, "commune"))]
    columns = ["commune", "commune_nom", "epci", "epci_nom", "bailleurs", "flux", "prefet", "prefet_agents", "etat",
               "part_etat", "flux_hors_qpv", "etat_hors_qpv", "taux_hors_qpv"]
    return pd.DataFrame(rows, columns=[*columns, "plafond_etat", PLAFOND_AGENTS])[columns]


def _collectivites(territories: pd.DataFrame | None) -> pd.DataFrame:
    columns = ["territoire", "territoire_nom", "bailleurs", "flux", "logements", "sans_financement", "plafond",
               "tenu"]
    if territories is None or not len(territories):
        return pd.DataFrame(columns=columns)
    table = territories.groupby("territoire", sort=True).agg(
        territoire_nom=("territoire_nom", "first"), bailleurs=("instance", "nunique"), flux=("flux", "sum"),
        logements=("logements", "sum"), sans_financement=("sans_financement", "sum")).reset_index()
    table["plafond"] = [cap(LEGAL_MAXIMA["collectivite_plafond"], f) for f in table["flux"]]
    table["tenu"] = table["sans_financement"] <= table["plafond"]
    return table[columns]


# ---------------------------------------------------------------------------- national summary


@dataclass
class NationalView:
    synthese: pd.DataFrame  # synthese.csv, typed
    par_departement: pd.DataFrame  # national_summary
    regles: pd.DataFrame  # regle, instances, part, cause (most frequent), exemple (its sentence, one instance)
    plus_lentes: pd.DataFrame  # the slowest instances
    phases: dict[str, dict[str, float]]  # instance → seconds of each phase (its synthese.json)


def cause_kind(cause: str) -> str:
    """What a cause says without its place and figures: « aucun demandeur des quartiles 2 à 4 en QPV
    dans l'EPCI X (…) ; 12 logements … » → « aucun demandeur des quartiles 2 à 4 en QPV »."""
    head = re.split(r" dans l'EPCI| de l'EPCI| dans la commune| pour | \(|;| :", cause, maxsplit=1)[0]
    # counts become N; the words of a criterion (« 1er quartile », « quartiles 2 à 4 ») stay
    return " ".join(re.sub(r"(?<![\w])(?!1er\b)(?!2 à 4\b)(?<!2 à )\d(?:[\d,.]|[\s\u202f\u00a0](?=\d))*", "N", head).split())


def national_view(sortie: Path, synthese: pd.DataFrame, national: pd.DataFrame, slowest: int = 10) -> NationalView:
    s = synthese.copy()
    for column in ("flux", "adequation", "secondes", "part_etat"):
        s[column] = pd.to_numeric(s[column], errors="coerce")
    s["code"] = pd.to_numeric(s["code"], errors="coerce").fillna(1).astype(int)
    counts: Counter = Counter()
    kinds: dict[str, Counter] = {}
    examples: dict[tuple[str, str], str] = {}
    phases = {}
    for line in s.itertuples():
        for rule in filter(None, str(line.regles_violees).split(";")):
            counts[rule] += 1
        recorded = _recorded(Path(sortie) / line.instance)
        phases[line.instance] = recorded.get("phases", {})
        for item in recorded.get("causes", []):
            kind = cause_kind(item["cause"])
            kinds.setdefault(item["regle"], Counter())[kind] += 1
            examples.setdefault((item["regle"], kind), f"{instance_label(line)} : {item['cause']}")
    rows = []
    for rule, n in counts.most_common():
        kind, seen = (kinds[rule].most_common(1)[0] if rule in kinds else ("", 0))
        rows.append({"regle": rule, "instances": n, "part": round(n / len(s), 6) if len(s) else 0.0,
                     "cause": kind, "cause_instances": seen, "exemple": examples.get((rule, kind), "")})
    regles = pd.DataFrame(rows, columns=["regle", "instances", "part", "cause", "cause_instances", "exemple"])
    plus_lentes = s.sort_values("secondes", ascending=False).head(slowest)
    return NationalView(s, national, regles, plus_lentes, phases)


def instance_label(line) -> str:
    """« OLS synthétique B001, département 85 (B001_85) »: the bailleur's name, not the folder."""
    who = line.bailleur_nom or line.bailleur or line.instance
    return f"{who}, département {line.departement} ({line.instance})" if line.departement else f"{who} ({line.instance})"


def _recorded(folder: Path) -> dict:
    try:
        return json.loads((folder / "synthese.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
