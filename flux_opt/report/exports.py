"""Write a plan's files atomically: an interrupted run never leaves a half-written plan."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import pandas as pd

from flux_opt.plan.result import Result

PLAN_FILES = ("plan.csv", "attributions.csv", "objectifs.csv", "contraintes.csv", "resume.json")


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, float_format="%.6g", lineterminator="\n")


def write_json(data: dict, path: Path) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=_jsonable) + "\n", encoding="utf-8")


def _jsonable(value):
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"non sérialisable : {type(value)}")


def write_atomically(folder: Path, writers: dict[str, Callable[[Path], None]]) -> None:
    """Write every file into a temporary folder beside `folder`, then move them in.

    Each file is complete before it is renamed (os.replace is atomic); `resume.json`,
    when present, is moved last, so a plan folder whose resume.json matches its
    files is a finished plan. If writing fails, nothing in `folder` has changed.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".flux-opt-", dir=folder))
    try:
        for name, write in writers.items():
            write(staging / name)
        for name in sorted(writers, key=lambda n: n == "resume.json"):
            os.replace(staging / name, folder / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_plan(result: Result, folder: Path, extra: dict[str, Callable[[Path], None]] | None = None) -> None:
    writers = {
        "plan.csv": lambda p: write_csv(result.plan, p),
        "attributions.csv": lambda p: write_csv(result.attributions, p),
        "objectifs.csv": lambda p: write_csv(result.objectifs, p),
        "contraintes.csv": lambda p: write_csv(result.contraintes, p),
        "resume.json": lambda p: write_json(result.resume, p),
    }
    writers.update(extra or {})
    write_atomically(folder, writers)
