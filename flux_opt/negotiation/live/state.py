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
from flux_opt.negotiation.scenarios import (Scenario, apply_scenario, conversion_targets, dump_scenario,
                                            load_scenario)
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
    scenario: Scenario | None = None  # the form's scenario (what a save or an export of this request writes)


class Session:
    def __init__(self, instance_path: str | Path, sortie: str | Path, simulate: YearSimulator | None = None):
        self.instance_path = Path(instance_path).resolve()
        self.sortie = Path(sortie).resolve()
        self.base = load(self.instance_path)
        self.fields = fields(self.base)
        self.simulate = simulate
        self._lock = threading.Lock()
        self._files_lock = threading.Lock()  # choosing a file name and writing it is one step
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
        scenario, instance, errors = self._read(values)
        if errors:
            return Update(errors=errors)
        with self._lock:
            if ticket == self._requests and scenario != self.scenario:
                self.result = self._planner.plan(instance)
                self.scenario = scenario
                if self.simulate is not None:
                    self.year[scenario.nom] = self.simulate(instance, self.result)
            comparison = self.comparison()
        return Update(comparison=comparison, seconds=time.perf_counter() - started, scenario=scenario)

    def check(self, values: dict[str, str]) -> Update:
        """The form's scenario, checked field by field, without re-planning (what a save writes)."""
        scenario, _, errors = self._read(values)
        return Update(errors=errors, scenario=scenario)

    def _read(self, values: dict[str, str]) -> tuple[Scenario | None, Instance | None, dict[str, str]]:
        scenario, errors = read_form(self.base, values)
        if errors:
            return None, None, errors
        try:
            return scenario, self._apply(scenario), {}
        except InvalidInput as exc:
            return None, None, {_field_key(p.champ): p.message for p in exc.problems}

    def _apply(self, scenario: Scenario) -> Instance:
        instance = apply_scenario(self.base, scenario.model_copy(update={"conversion": None}))
        if scenario.conversion is None:
            return instance
        key = (scenario.conversion.methode, scenario.conversion.annees)
        with self._lock:
            if key not in self._conversions:
                self._conversions[key] = conversion_targets(self.base, scenario)
        return with_targets(instance, self._conversions[key])

    def comparison(self, scenario: Scenario | None = None, result: Result | None = None) -> Comparison:
        scenario, result = (scenario, result) if scenario is not None else (self.scenario, self.result)
        names = scenario_names([scenario])
        descriptions = {BASE: f"Instance de base « {self.base.parametres.instance.nom} »",
                        names[1]: _description(scenario)}
        return comparison_tables(names, descriptions, [self.base_result, result])

    # ------------------------------------------------------------------ files

    def save(self, scenario: Scenario | None = None) -> Path:
        """The scenario (the request's; by default the one shown) as the TOML `flux-opt comparer`
        reads, in `sortie`: `slug.toml`, or `slug_2.toml`… when that file holds another scenario
        (« Préfet à 25 % » and « Préfet à 25 ! »); a scenario saved again under its own name
        replaces its file. Concurrent saves each get their own file (see _claim)."""
        scenario = scenario or self.scenario
        text = self._toml(scenario)
        with self._files_lock:
            path = self._claim(scenario.nom, ".toml", lambda p: p.is_file() and _saved_name(p) == scenario.nom,
                               lambda p: os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY)))
            _write_text(path, text)
        return path

    def export(self, scenario: Scenario | None = None) -> tuple[Path, list[str]]:
        """The comparison (HTML, Excel, plots) for the minutes, and the scenario, in `sortie/<slug>/`
        (another folder when that one holds another scenario's export)."""
        scenario = scenario or self.scenario
        with self._lock:
            if scenario == self.scenario:
                comparison = self.comparison()
            else:
                comparison = self.comparison(scenario, self._planner.plan(self._apply(scenario)))
        text = self._toml(scenario)
        with self._files_lock:
            folder = self._claim(scenario.nom, "", lambda p: _saved_name(p / SCENARIO_FILE) == scenario.nom,
                                 lambda p: p.mkdir())
            _write_text(folder / SCENARIO_FILE, text)
        return folder, write_comparison(folder, comparison)

    def _toml(self, scenario: Scenario) -> str:
        base = os.path.relpath(self.instance_path, self.sortie)
        return dump_scenario(scenario.model_copy(update={"base": base, "description": _description(scenario)}))

    def _claim(self, nom: str, suffix: str, own: Callable[[Path], bool], create: Callable[[Path], None]) -> Path:
        """The first of `slug`, `slug_2`… (+ suffix) in `sortie` that is already `own` (this
        scenario's) or free — then created at once by `create`, which fails (FileExistsError) when
        another process took it in between."""
        self.sortie.mkdir(parents=True, exist_ok=True)
        for k in range(1, 10_000):
            path = self.sortie / f"{slug(nom)}{'' if k == 1 else f'_{k}'}{suffix}"
            if own(path):
                return path
            try:
                create(path)
            except FileExistsError:
                continue
            return path
        raise OSError(f"plus de 9 999 fichiers « {slug(nom)} » dans {self.sortie}")


SCENARIO_FILE = "scenario.toml"  # in an export folder: the scenario it shows


def _saved_name(path: Path) -> str | None:
    """The `nom` of the scenario file at `path`; None when there is none or it cannot be read."""
    try:
        return load_scenario(path).nom
    except (InvalidInput, OSError):
        return None


def _write_text(path: Path, text: str) -> None:
    """Write through a temporary file beside it: a reader sees the old file or the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _field_key(champ: str | None) -> str:
    """The page field a scenario problem is about (the scenario's keys are the fields' keys)."""
    return "conversion.methode" if champ == "conversion" else champ or NOM


def _description(scenario: Scenario) -> str:
    return scenario.description or "Scénario préparé sur la page de négociation (flux-opt negocier)."


def slug(text: str) -> str:
    """A file name from a scenario name: « Préfet à 25 % » → prefet_a_25."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_text.lower())[:SLUG_MAX].strip("_") or "scenario"


SLUG_MAX = 60  # a file name well under every system's limit, whatever the scenario's name
