"""Parameter sweeps (`--balayer prefet_taux=0.20:0.30:0.01`): one plan per value of a rule parameter.

Each worker re-plans its points on one built model (`pipeline.Planner`, see
flux_opt/model/reusable.py): only the rows a parameter changes are sent to the solver. Each point
gives the same Result as a separate plan of that variant (tested).
"""

from __future__ import annotations

import math
import multiprocessing
import time
from queue import Empty
from typing import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from flux_opt.plan.result import Result
from flux_opt.negotiation.scenarios import apply_scenario, parameter_scenario
from flux_opt.input.schema import Instance
from flux_opt.scale.pool import Crash, run_tasks
from flux_opt.pipeline import Planner, plan_instance

PARAMETRES = ("prefet_taux", "prefet_agents_taux", "prefet_hors_qpv_min", "collectivite_plafond",
              "prioritaires_min", "cia.q1_hors_qpv", "cia.q234_qpv", "<reservataire>.taux")
MAX_POINTS = 201


@dataclass(frozen=True)
class SweepSpec:
    parametre: str
    valeurs: tuple[float, ...]


def parse_sweep(text: str) -> SweepSpec:
    """`param=debut:fin:pas` → the parameter and its values (fin included). French ValueError."""
    usage = "forme attendue : parametre=debut:fin:pas, par exemple prefet_taux=0.20:0.30:0.01"
    name, sep, spec = text.partition("=")
    parts = spec.split(":")
    if not sep or not name.strip() or len(parts) != 3:
        raise ValueError(f"balayage « {text} » illisible ({usage})")
    try:
        start, stop, step = (float(p.strip().replace(",", ".")) for p in parts)
    except ValueError:
        raise ValueError(f"balayage « {text} » : nombres attendus ({usage})") from None
    if step <= 0 or stop < start:
        raise ValueError(f"balayage « {text} » : il faut debut ≤ fin et un pas > 0")
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count > MAX_POINTS:
        raise ValueError(f"balayage « {text} » : {count} points, au plus {MAX_POINTS}")
    return SweepSpec(name.strip(), tuple(round(start + k * step, 10) for k in range(count)))


def instance_at(base: Instance, parametre: str, valeur: float) -> Instance:
    """The base with one parameter set (validated as a scenario: a bad name or value is a
    InvalidInput in French)."""
    return apply_scenario(base, parameter_scenario(parametre, valeur))


# --------------------------------------------------------------------------- the sweep

@dataclass
class SweepResult:
    parametre: str
    points: pd.DataFrame  # one row per value: valeur, objectif, adequation, …, part_<id>, logements_<id>
    objectifs: pd.DataFrame  # valeur × réservataire: cible, logements, ecart, adequation
    secondes: float
    reconstructions: int
    resultats: list[Result] = field(repr=False, default_factory=list)


def sweep(base: Instance, sweep_spec: SweepSpec, reuse: bool = True, processes: int = 1, duals: bool = False,
          on_done: Callable[[int], None] | None = None, warm_start: bool = False) -> SweepResult:
    """Plan every point of the sweep, re-solving one model per worker (`reuse`) or from scratch
    (`plan_instance` per point). With `processus` > 1 the points are split in contiguous chunks,
    one worker process each; `on_done(i)` after each point. `a_chaud` keeps HiGHS's basis between
    points: faster, same plan and objective in our runs, but a degenerate attribution split (y)
    may then differ from a separate run, so it is off by default. A model solved by relaxation first
    (the composition demand model, large parcs) has no basis to keep: it is solved as `plan` does."""
    for value in sweep_spec.valeurs:  # every point is validated before any solve
        instance_at(base, sweep_spec.parametre, value)
    start = time.perf_counter()
    chunks = [list(c) for c in np.array_split(np.arange(len(sweep_spec.valeurs)), max(1, processes)) if len(c)]
    if len(chunks) == 1:
        results, rebuilds = _sweep_chunk(base, sweep_spec.parametre, list(sweep_spec.valeurs), reuse, duals, on_done,
                                         warm_start=warm_start)
    else:
        results, rebuilds = _parallel_sweep(base, sweep_spec, chunks, reuse, duals, on_done, warm_start)
    seconds = time.perf_counter() - start
    points, objectifs = sweep_tables(sweep_spec, results)
    return SweepResult(sweep_spec.parametre, points, objectifs, seconds, rebuilds, results)


def _sweep_chunk(base: Instance, parametre: str, valeurs: list[float], reuse: bool, duals: bool,
                 on_done=None, offset: int = 0, warm_start: bool = False) -> tuple[list[Result], int]:

    planner = Planner(instance_at(base, parametre, valeurs[0]), fresh_start=not warm_start) if reuse else None
    results = []
    for i, value in enumerate(valeurs):
        instance = instance_at(base, parametre, value)
        results.append(planner.plan(instance, duals) if reuse else plan_instance(instance, duals=duals))
        if on_done:
            on_done(offset + i)
    return results, (planner.rebuilds if reuse else len(results))


def _parallel_sweep(base, sweep_spec, chunks, reuse, duals, on_done, warm_start):
    with multiprocessing.get_context("spawn").Manager() as manager:
        queue = manager.Queue()  # each point done, as workers go (progress)

        def relay() -> None:
            while on_done:
                try:
                    on_done(queue.get_nowait())
                except Empty:
                    return

        tasks = [(base, sweep_spec.parametre, [sweep_spec.valeurs[i] for i in c], reuse, duals, queue.put, int(c[0]),
                  warm_start) for c in chunks]
        outputs: list = [None] * len(chunks)
        for k, output in run_tasks(_sweep_chunk, tasks, len(chunks), poll=relay):
            if isinstance(output, Crash):
                raise RuntimeError(f"balayage de {sweep_spec.parametre} : {output.message}")
            outputs[k] = output
        relay()
    return [r for results, _ in outputs for r in results], sum(n for _, n in outputs)


def sweep_tables(sweep_spec: SweepSpec, results: list[Result]) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, objectifs = [], []
    for value, r in zip(sweep_spec.valeurs, results):
        row = {"valeur": value, "objectif": r.resume["objectif"], "adequation": r.resume["adequation"],
               "adequation_ponderee": r.resume["adequation_ponderee"],
               "attributions_prevues": r.resume["attributions_prevues"],
               "regles_violees": len(r.resume["regles_violees"])}
        flux = r.resume["flux"]
        for o in r.objectifs.itertuples():
            row[f"logements_{o.reservataire}"] = int(o.logements)
            row[f"part_{o.reservataire}"] = round(o.logements / flux, 6) if flux else 0.0
        rows.append(row)
        objectifs.append(r.objectifs.assign(valeur=value))
    table = pd.concat(objectifs, ignore_index=True)
    return pd.DataFrame(rows), table[["valeur", *[c for c in table.columns if c != "valeur"]]]
