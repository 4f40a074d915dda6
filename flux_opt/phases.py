"""Named, timed phases of a run: the pipeline announces them, the CLI shows them, benchmarks read the times.

A `Phases` object is passed down the pipeline (`with phases("resolution"): ...`). It records the
seconds of each phase and tells an optional listener when a phase starts and ends, so the terminal
can show progress without the pipeline knowing about the terminal.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator

# Phase names (stable keys, also in benchmarks) and what a person reads while one runs.
LABELS = {
    "lecture": "Lecture et contrôle des données",
    "assiette": "Assiette et objectifs",
    "construction": "Construction du modèle",
    "resolution": "Résolution",
    "analyse": "Analyse des règles",
    "controle": "Contrôle de conformité",
    "evaluation": "Année simulée",
    "rapport": "Rapport (HTML, Excel)",
    "ecriture": "Écriture des fichiers",
}

Listener = Callable[[str, str, float | None], None]  # (phase, "debut" | "fin", seconds at the end)


class Phases:
    def __init__(self, listener: Listener | None = None):
        self.seconds: dict[str, float] = {}
        # CPU seconds of this process in each phase: what a phase costs whatever else the machine runs
        # (the solver runs in this process; benchmarks on a shared machine read these)
        self.cpu: dict[str, float] = {}
        self.listener = listener

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.listener:
            self.listener(name, "debut", None)
        start, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
            self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - cpu
            if self.listener:
                self.listener(name, "fin", elapsed)

