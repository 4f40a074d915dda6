"""The outputs stage of the pipeline: a run's plan files, its report and explication.json, and its
simulated year, written atomically into one folder. It sits above flux_opt/pipeline.py (the
pipeline computes, this writes); `plan`, `lot` and the re-orientation of the year write through it."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from flux_opt.phases import Phases
from flux_opt.pipeline import PlanRun
from flux_opt.report.exports import write_csv, write_plan
from flux_opt.report.documents import documents_writers
from flux_opt.report.note_etat import note_document
from flux_opt.report.plan_report import report_writers


def write_run(plan_run: PlanRun, sortie: str | Path, extra: dict[str, Callable[[Path], None]] | None = None,
          phases: Phases | None = None) -> None:
    """The outputs stage: plan files, and the report and explication.json when the run was analysed
    (rendered first, its own phase, then everything written atomically); with a conformity table
    (PlanOptions.controle), conformite.csv, its report section and the note for the State; with the
    report, the annexes/ of the réservataires."""
    conformite = plan_run.conformite
    phases = phases or Phases()
    writers = dict(extra or {})
    if plan_run.explanation is not None:
        with phases("rapport"):  # the report, the annexes and the note for the State: rendered, then written
            note = None if conformite is None else note_document(plan_run.result, conformite,
                                                                  plan_run.flux.exclusions)
            writers = {**report_writers(plan_run.result, plan_run.explanation, conformite, plan_run.evaluation, note),
                       **documents_writers(plan_run.result, plan_run.instance, plan_run.targets.table, note),
                       **writers}
    if plan_run.evaluation is not None:
        writers["evaluation.csv"] = lambda p: write_csv(plan_run.evaluation.table, p)
    with phases("ecriture"):
        write_plan(plan_run.result, Path(sortie), extra=writers)
