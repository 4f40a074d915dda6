"""Plan a base instance and its scenarios, and compare them side by side (who gains, who loses).

`plan_all` runs the plans in worker processes (spawned: a HiGHS already used in the parent
must not be forked); each plan is the same `plan_instance` call as `flux-opt plan`, so the
numbers are those of separate runs. `compare` turns the results into plain tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from flux_opt.errors import InvalidInput
from flux_opt.explanation.sentences import fr_number_fine
from flux_opt.model.registry import PLAFOND_PREFET, label
from flux_opt.vocabulary import PREFET_GROUP
from flux_opt.pipeline import plan_instance
from flux_opt.model.registry import names
from flux_opt.plan.result import Result
from flux_opt.negotiation.scenarios import Scenario, apply_scenario
from flux_opt.input.schema import Instance
from flux_opt.scale.pool import Crash, run_tasks

BASE = "base"
MIXITY_FAMILIES = names(mixity=True)
# Mixity rows are shares of a base: the margin (attributions or dwellings above the minimum,
# negative when missed) reads the same for every family.
MIXITY_STATUS = {"lache": "atteint", "saturee": "atteint (juste)", "violee": "NON atteint"}
RULE_FAMILIES = names(nature="dure")  # the rules a negotiation moves


@dataclass
class Comparison:
    noms: list[str]  # "base" then each scenario's name (column order of every table)
    descriptions: dict[str, str]
    resultats: dict[str, Result]
    logements: pd.DataFrame  # réservataire × scenario, plus "Δ <scenario>" columns
    par_qpv: pd.DataFrame  # (réservataire, QPV / hors QPV) × scenario
    par_typologie: pd.DataFrame  # (réservataire, typologie) × scenario
    par_commune: pd.DataFrame  # (réservataire, commune) × scenario
    adequation: pd.DataFrame  # indicator × scenario (fit, attributions, objective, violated rules)
    adequation_reservataires: pd.DataFrame  # réservataire × scenario: % of its dwellings matched
    mixite: pd.DataFrame  # one mixity target per row: margin and status per scenario
    regles: pd.DataFrame  # rule family × scenario: "n tenue(s) sans marge, m NON TENUE(S)"
    gains: pd.DataFrame  # scenario, réservataire, base, scenario, écart, phrase, raison (changes only)


def _plan_one(base: Instance, scenario: Scenario | None, duals: bool) -> Result:
    """One job: apply the scenario (the stock conversion of a [conversion] scenario is the
    slow part, so it runs here, in the worker) and plan."""
    instance = base if scenario is None else apply_scenario(base, scenario)
    return plan_instance(instance, duals=duals)


def plan_all(base: Instance, scenarios: list[Scenario | None], processes: int = 2, duals: bool = True,
             on_done: Callable[[int], None] | None = None) -> list[Result]:
    """Plan the base with each scenario (None = the base itself), in `processus` worker
    processes; the results are the same as one by one. `on_done(i)` after each finishes."""
    if processes <= 1 or len(scenarios) <= 1:
        results = []
        for i, scenario in enumerate(scenarios):
            results.append(_plan_one(base, scenario, duals))
            if on_done:
                on_done(i)
        return results
    results: list[Result | None] = [None] * len(scenarios)
    # The stock conversion is by far the longest job: start those first so the other
    # worker takes the quick ones meanwhile.
    order = sorted(range(len(scenarios)), key=lambda i: getattr(scenarios[i], "conversion", None) is None)
    for k, result in run_tasks(_plan_one, [(base, scenarios[i], duals) for i in order], processes):
        i = order[k]
        if isinstance(result, Crash):
            raise RuntimeError(f"scénario « {getattr(scenarios[i], 'nom', BASE)} » : {result.message}")
        results[i] = result
        if on_done:
            on_done(i)
    return results


def check_scenarios(base: Instance, scenarios: list[Scenario]) -> None:
    """Validate every override before any plan runs (InvalidInput listing all problems);
    the stock conversion itself is left to the workers."""
    problems = []
    for s in scenarios:
        try:
            apply_scenario(base, s.model_copy(update={"conversion": None}))
        except InvalidInput as exc:
            problems.extend(exc.problems)
    if problems:
        raise InvalidInput(problems)


def scenario_names(scenarios: list[Scenario]) -> list[str]:
    """Unique column names: the base, then the scenarios' `nom` (numbered when repeated)."""
    names = [BASE]
    for s in scenarios:
        name, k = s.nom, 2
        while name in names:
            name, k = f"{s.nom} ({k})", k + 1
        names.append(name)
    return names


def compare(base: Instance, scenarios: list[Scenario], processes: int = 2,
            on_done: Callable[[int], None] | None = None) -> Comparison:
    """Plan the base and every scenario, then build the comparison tables."""
    check_scenarios(base, scenarios)
    results = plan_all(base, [None, *scenarios], processes=processes, on_done=on_done)
    names = scenario_names(scenarios)
    descriptions = {BASE: f"Instance de base « {base.parametres.instance.nom} »"}
    descriptions |= {n: s.description for n, s in zip(names[1:], scenarios)}
    return comparison_tables(names, descriptions, results)


def comparison_tables(names: list[str], descriptions: dict[str, str], results: list[Result]) -> Comparison:
    by_name = dict(zip(names, results))
    logements = _side_by_side({n: r.objectifs.set_index("reservataire")["logements"] for n, r in by_name.items()})
    for n in names[1:]:
        logements[f"Δ {n}"] = logements[n] - logements[BASE]
    par_commune = _plan_breakdown(by_name, "commune")
    return Comparison(
        noms=names, descriptions=descriptions, resultats=by_name,
        logements=logements.reset_index(names="reservataire"),
        par_qpv=_plan_breakdown(by_name, "qpv", {"oui": "QPV", "non": "hors QPV"}),
        par_typologie=_plan_breakdown(by_name, "typologie"),
        par_commune=par_commune,
        adequation=_fit(by_name),
        adequation_reservataires=_side_by_side(
            {n: (100 * r.objectifs.set_index("reservataire")["adequation"]).round(2) for n, r in by_name.items()}
        ).reset_index(names="reservataire"),
        mixite=_mixity(by_name),
        regles=_rules(by_name),
        gains=_gains(names, logements, by_name, par_commune),
    )


def _side_by_side(columns: dict[str, pd.Series]) -> pd.DataFrame:
    """Series indexed alike → one frame, keeping the first series' order; missing = 0."""
    frame = pd.concat(columns, axis=1, sort=False).fillna(0)
    return frame


def _plan_breakdown(by_name: dict[str, Result], column: str, labels: dict | None = None) -> pd.DataFrame:
    parts = {}
    for n, r in by_name.items():
        plan = r.plan.assign(**{column: r.plan[column].map(labels)} if labels else {})
        parts[n] = plan.groupby(["reservataire", column], sort=False)["logements"].sum()
    frame = _side_by_side(parts).astype(int)
    order = {rid: i for i, rid in enumerate(next(iter(by_name.values())).objectifs["reservataire"])}
    frame = frame.reset_index()
    frame = frame.sort_values([column], kind="stable").sort_values(
        "reservataire", key=lambda s: s.map(order), kind="stable")
    return frame.reset_index(drop=True)


def _fit(by_name: dict[str, Result]) -> pd.DataFrame:
    rows = {
        "Flux annuel (logements)": "flux",
        "Attributions prévues": "attributions_prevues",
        "Adéquation (% des logements pourvus)": "adequation",
        "Adéquation pondérée (prioritaires ×1,2)": "adequation_ponderee",
        "Valeur de l'objectif": "objectif",
    }
    def value(r: Result, key: str) -> float:
        return round(100 * r.resume[key], 2) if key == "adequation" else r.resume[key]

    data = {n: [value(r, k) for k in rows.values()] + [len(r.resume["regles_violees"])]
            for n, r in by_name.items()}
    return pd.DataFrame(data, index=[*rows, "Règles violées"]).rename_axis("indicateur").reset_index()


def _mixity(by_name: dict[str, Result]) -> pd.DataFrame:
    keys = ["contrainte", "portee"]
    frames = []
    for n, r in by_name.items():
        rows = r.rows.loc[r.rows["contrainte"].isin(MIXITY_FAMILIES)]
        frames.append(rows[keys].assign(**{f"{n} : marge": rows["marge"].round(2).to_numpy() + 0.0,
                                           f"{n} : statut": rows["statut"].map(MIXITY_STATUS).to_numpy()})
                      .set_index(keys))
    return pd.concat(frames, axis=1, sort=False).reset_index()


def _rules(by_name: dict[str, Result]) -> pd.DataFrame:
    out = {}
    for n, r in by_name.items():
        rows = r.rows.loc[r.rows["contrainte"].isin(RULE_FAMILIES)]
        counts = rows.groupby(["contrainte", "statut"]).size().unstack(fill_value=0)
        for status in ("saturee", "violee"):
            if status not in counts:
                counts[status] = 0
        out[n] = counts.apply(lambda c: _binding_text(c["saturee"], c["violee"]), axis=1)
    frame = pd.concat(out, axis=1, sort=False).fillna("—")
    order = {f: i for i, f in enumerate(RULE_FAMILIES)}
    frame = frame.sort_index(key=lambda s: s.map(order))
    return frame.rename_axis("regle").reset_index()


def _binding_text(saturee: int, violee: int) -> str:
    parts = []
    if saturee:
        parts.append(f"{saturee} tenue{'s' if saturee > 1 else ''} sans marge")
    if violee:
        parts.append(f"{violee} NON TENUE{'S' if violee > 1 else ''}")
    return ", ".join(parts) or "tenue avec marge"


def _gains(names: list[str], logements: pd.DataFrame, by_name: dict[str, Result] | None = None,
           par_commune: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per scenario and réservataire whose dwellings change (in number or in place), with the
    sentence of the change and why (`raison`: the rule or the rounding that moved them)."""
    rows = []
    for n in names[1:]:
        for rid, before, after in zip(logements.index, logements[BASE], logements[n]):
            delta = int(after - before)
            moves = _commune_moves(par_commune, rid, n) if par_commune is not None else {}
            if not delta and not moves:
                continue
            label = by_name[n].noms.reservataire(rid) if by_name else rid
            if delta:
                verb = "gagne" if delta > 0 else "perd"
                phrase = (f"{label} {verb} {abs(delta)} logement{'s' if abs(delta) > 1 else ''} "
                          f"({int(before)} → {int(after)})")
            else:
                phrase = f"{label} garde ses {int(after)} logements"
            why = change_reason(rid, by_name[BASE], by_name[n], moves, par_commune, n) if by_name else ""
            rows.append({"scenario": n, "reservataire": rid, "base": int(before), "logements": int(after),
                         "ecart": delta, "phrase": phrase, "raison": why})
    return pd.DataFrame(rows, columns=["scenario", "reservataire", "base", "logements", "ecart", "phrase", "raison"])


def _commune_moves(par_commune: pd.DataFrame, rid: str, n: str) -> dict[str, int]:
    """commune → change of the réservataire's dwellings there (non-zero only)."""
    mine = par_commune.loc[par_commune["reservataire"] == rid]
    return {c: int(d) for c, d in zip(mine["commune"], mine[n] - mine[BASE]) if d}


def _target(result: Result, rid: str):
    targets = result.targets
    if targets is None or rid not in set(targets["id"]):
        return None
    return targets.loc[targets["id"] == rid].iloc[0]


def _rate(result: Result, family: str) -> float | None:
    rows = result.rows.loc[result.rows["contrainte"] == family]
    return float(rows["taux"].iloc[0]) if len(rows) and "taux" in rows and pd.notna(rows["taux"].iloc[0]) else None


def _pct(rate: float) -> str:
    return f"{100 * rate:.1f}".replace(".", ",").replace(",0", "") + " %"


def _raw_words(b, a, before: Result, after: Result) -> str:
    """Why a réservataire's target before rounding moved, by how it is set (assiette/targets.py)."""
    if a["source"] == "taux_prefet_par_defaut":
        rb, ra = _rate(before, PLAFOND_PREFET), _rate(after, PLAFOND_PREFET)
        if rb is not None and ra is not None and abs(rb - ra) > 1e-9:
            return (f"le taux du préfet passe de {_pct(rb)} à {_pct(ra)} du flux annuel, agents de l'État compris "
                    "(CCH R.441-5-2)")
        return "la part des agents de l'État, déduite de celle du préfet, change"
    if a["source"] in ("taux", "taux_agents_par_defaut") and b["base"] and a["base"]:
        rb, ra = b["brut"] / b["base"], a["brut"] / a["base"]
        if abs(rb - ra) > 1e-9:
            return f"sa part passe de {_pct(rb)} à {_pct(ra)} du flux de son territoire"
        return f"le flux de son territoire passe de {int(b['base'])} à {int(a['base'])} logements"
    if a["source"] == "logements":
        return (f"la convention (ou la conversion du stock) lui fixe {fr_number_fine(a['brut'])} logements au lieu de "
                f"{fr_number_fine(b['brut'])}")
    if a["source"] == "article_5":
        return (f"ses logements réservés rapportés au parc donnent {fr_number_fine(a['brut'])} logements au lieu de "
                f"{fr_number_fine(b['brut'])}")
    return f"son objectif avant arrondi passe de {fr_number_fine(b['brut'])} à {fr_number_fine(a['brut'])}"


def change_reason(rid: str, before: Result, after: Result, moves: dict[str, int] | None = None,
                  par_commune: pd.DataFrame | None = None, n: str | None = None) -> str:
    """Why a réservataire's dwellings change between two plans, in one sentence: its target moved
    (which parameter), or only the rounding of the targets, or it receives the rest (the bailleur),
    or a rule keeps it from its target, or its dwellings move between communes."""
    b, a = _target(before, rid), _target(after, rid)
    got = int(after.objectifs.set_index("reservataire")["logements"].get(rid, 0))
    if b is None or a is None:
        return ""
    cb, ca = int(b["cible"]), int(a["cible"])
    if a["type"] == "bailleur" and cb != ca:
        fb, fa = int(before.resume["flux"]), int(after.resume["flux"])
        flux = f" (flux annuel {fb} → {fa})" if fb != fa else ""
        return (f"le bailleur reçoit le reste du flux : les objectifs des autres réservataires passent de "
                f"{fb - cb} à {fa - ca} logements{flux}.")
    if cb != ca:
        if abs(float(a["brut"]) - float(b["brut"])) > 1e-6:
            return f"son objectif passe de {cb} à {ca} : {_raw_words(b, a, before, after)}."
        return (f"son objectif passe de {cb} à {ca} sans que sa part change ({fr_number_fine(a['brut'])} "
                "logements avant arrondi) : les objectifs sont arrondis à l'entier ensemble, leur somme égale au "
                "flux annuel (plus forts restes), et les restes des autres réservataires ont changé.")
    rows = after.rows
    violated = rows.loc[(rows["statut"] == "violee") & (rows["reservataire"] == rid)] if "reservataire" in rows \
        else rows.iloc[:0]
    if got != ca and len(violated):
        rules = ", ".join(sorted({f"« {label(f)} »" for f in violated["contrainte"]}))
        return f"son objectif de {ca} logements ne peut pas être tenu : {rules}."
    if moves:
        where = ", ".join(f"{after.noms.commune_name(c) or c} {'+' if d > 0 else '−'}{abs(d)}" for c, d in moves.items())
        state_ids = list(after.targets.loc[after.targets["type"].isin(PREFET_GROUP), "id"])
        state = par_commune.loc[par_commune["reservataire"].isin(state_ids) & ~par_commune["reservataire"].eq(rid)
                                & par_commune["commune"].isin(list(moves))] if par_commune is not None else None
        state_moved = state is not None and n is not None and bool((state[n] != state[BASE]).any())
        why = ("le préfet garde le même taux dans chaque commune (CCH R.441-5-2 II), les autres réservataires "
               "prennent ou cèdent la différence" if state_moved else
               "le plan place ses logements là où ses demandeurs les acceptent le mieux")
        return f"répartis autrement ({where}) : {why}."
    return ""


def resolve_base(base: Path, scenarios: list[Scenario]) -> list[str]:
    """Scenario files whose `base` names another instance than BASE (messages, French)."""
    out = []
    for s in scenarios:
        path = s.base_path()
        if path is not None and path.resolve() != Path(base).resolve():
            out.append(f"{s.fichier} : écrit pour l'instance {path}, comparé à {base}")
    return out
