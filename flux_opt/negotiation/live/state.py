"""One negotiation session: the base plan, the scenario being edited and its plan.

The session keeps ONE Planner (one built model) for its whole life: each change of the form is a
re-plan of a variant of the base instance, not a new model. Re-plans are serialised by a lock
(the page may send a change while the previous one is solving). The stock conversion of a
`[conversion]` choice is the slow part (seconds): its targets are kept per (méthode, années).
Nothing here writes to the instance folder: saved scenarios and exports go to `sortie`.
"""

from __future__ import annotations

import os
import re
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from flux_opt.errors import InvalidInput
from flux_opt.input.schema import Instance
from flux_opt.negotiation.compare import BASE, Comparison, comparison_tables, scenario_names
from flux_opt.negotiation.live.fields import NOM, fields, read_form
from flux_opt.negotiation.scenarios import Scenario, apply_scenario, conversion_targets, dump_scenario
from flux_opt.pipeline import Planner, load, with_targets
from flux_opt.plan.result import Result
from flux_opt.report.compare import write_comparison

# The year simulator's hook: (scenario instance, its plan) → one table of the simulated year's
# outcome (indicator, value…), shown under the plan. None while no simulator is plugged in.
YearSimulator = Callable[[Instance, Result], pd.DataFrame]


@dataclass
class Update:
    """What the page shows after a change: field errors, or the new comparison."""

    errors: dict[str, str] = field(default_factory=dict)
    comparison: Comparison | None = None
    seconds: float = 0.0


class Session:
    def __init__(self, instance_path: str | Path, sortie: str | Path, simulate: YearSimulator | None = None):
        self.instance_path = Path(instance_path).resolve()
        self.sortie = Path(sortie).resolve()
        self.base = load(self.instance_path)
        self.fields = fields(self.base)
        self.simulate = simulate
        self._lock = threading.Lock()
        self._planner = Planner(self.base)
        self._conversions: dict[tuple, dict[str, int]] = {}
        self._requests = 0  # forms received so far (the newest one wins)
        self.base_result = self._planner.plan(self.base)
        self.scenario = Scenario(nom="Scénario")
        self.result = self.base_result
        self.year: dict[str, pd.DataFrame] = {}
        if simulate is not None:
            self.year[BASE] = simulate(self.base, self.base_result)
            self.year[self.scenario.nom] = self.year[BASE]

    # ------------------------------------------------------------------ re-plan

    def update(self, values: dict[str, str]) -> Update:
        """Re-plan the scenario the form describes; on bad input keep the last good plan. A form
        superseded by a newer one while it waited for the solver is not solved (the page only
        shows the newest answer), nor is one that asks for the plan already shown."""
        started = time.perf_counter()
        with self._lock:
            self._requests += 1
            ticket = self._requests
        scenario, errors = read_form(self.base, values)
        if errors:
            return Update(errors=errors)
        try:
            instance = self._apply(scenario)
        except InvalidInput as exc:
            return Update(errors={_field_key(p.champ): p.message for p in exc.problems})
        with self._lock:
            if ticket == self._requests and scenario != self.scenario:
                self.result = self._planner.plan(instance)
                self.scenario = scenario
                if self.simulate is not None:
                    self.year[scenario.nom] = self.simulate(instance, self.result)
            comparison = self.comparison()
        return Update(comparison=comparison, seconds=time.perf_counter() - started)

    def _apply(self, scenario: Scenario) -> Instance:
        instance = apply_scenario(self.base, scenario.model_copy(update={"conversion": None}))
        if scenario.conversion is None:
            return instance
        key = (scenario.conversion.methode, scenario.conversion.annees)
        with self._lock:
            if key not in self._conversions:
                self._conversions[key] = conversion_targets(self.base, scenario)
        return with_targets(instance, self._conversions[key])

    def comparison(self) -> Comparison:
        names = scenario_names([self.scenario])
        descriptions = {BASE: f"Instance de base « {self.base.parametres.instance.nom} »",
                        names[1]: _description(self.scenario)}
        return comparison_tables(names, descriptions, [self.base_result, self.result])

    # ------------------------------------------------------------------ files

    def save(self) -> Path:
        """The scenario as the TOML `flux-opt comparer` reads, in `sortie`."""
        self.sortie.mkdir(parents=True, exist_ok=True)
        path = self.sortie / f"{slug(self.scenario.nom)}.toml"
        base = os.path.relpath(self.instance_path, self.sortie)
        scenario = self.scenario.model_copy(update={"base": base, "description": _description(self.scenario)})
        tmp = path.with_suffix(".toml.tmp")
        tmp.write_text(dump_scenario(scenario), encoding="utf-8")
        tmp.replace(path)
        return path

    def export(self) -> tuple[Path, list[str]]:
        """The comparison (HTML, Excel, plots) for the minutes, in `sortie/<scenario>/`."""
        folder = self.sortie / slug(self.scenario.nom)
        return folder, write_comparison(folder, self.comparison())


def _field_key(champ: str | None) -> str:
    """The page field a scenario problem is about (the scenario's keys are the fields' keys)."""
    return "conversion.methode" if champ == "conversion" else champ or NOM


def _description(scenario: Scenario) -> str:
    return scenario.description or "Scénario préparé sur la page de négociation (flux-opt negocier)."


def slug(text: str) -> str:
    """A file name from a scenario name: « Préfet à 25 % » → prefet_a_25."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_") or "scenario"
