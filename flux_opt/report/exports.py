"""Write a plan's files atomically: an interrupted run never leaves a half-written plan."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import pandas as pd

from flux_opt.errors import InvalidInput, InputProblem
from flux_opt.plan.result import Result

STAGING_PREFIX = ".flux-opt-"

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
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder))
    try:
        for name, write in writers.items():
            write(staging / name)
        for name in sorted(writers, key=lambda n: n == "resume.json"):
            if (staging / name).is_dir() and (folder / name).is_dir():  # a folder (annexes/) replaces its
                os.replace(folder / name, staging / f"{name}.ancien")   # earlier self, removed with staging
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
    # Outputs of an earlier plan in this folder that this run does not write (e.g. a rerun with
    # --sans-analyse) would read as this plan's: removed once the new files are in place.
    for name in PLAN_OUTPUTS:
        if name not in writers:
            path = Path(folder) / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


PLAN_OUTPUTS = ("rapport.html", "rapport.xlsx", "explication.json", "conformite.csv", "evaluation.csv",
                "note_etat.html", "annexes")


_ERRNO = {errno.EISDIR: "c'est un dossier", errno.ENOTDIR: "un élément du chemin est un fichier",
          errno.EEXIST: "un fichier porte déjà ce nom", errno.EACCES: "permission refusée",
          errno.EPERM: "opération non permise", errno.EROFS: "système de fichiers en lecture seule",
          errno.ENOSPC: "disque plein", errno.ENOENT: "chemin introuvable"}


def french_os_error(exc: OSError) -> str:
    return _ERRNO.get(exc.errno, exc.strerror or type(exc).__name__)


def write_file(path: Path, write: Callable[[Path], None], option: str = "--sortie") -> None:
    """Write one output file atomically; a path that cannot receive it is a French refusal."""
    path = Path(path)
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "", str(path))
        write_atomically(path.parent, {path.name: write})
    except OSError as exc:
        raise _refuse(path, option, f"impossible d'écrire ce fichier : {french_os_error(exc)}") from exc


def _refuse(folder: Path, option: str, message: str) -> InvalidInput:
    return InvalidInput([InputProblem(str(folder), None, option, message)])


def _make_writable(folder: Path, option: str) -> list[Path]:
    """Create `folder` if needed and check that a file can be written in it; the folders created."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise _refuse(folder, option, f"« {existing} » est un fichier : {option} doit désigner un dossier")
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        _remove_if_empty(created)
        raise _refuse(folder, option, f"dossier non accessible en écriture ({french_os_error(exc)})") from exc
    return created


def _remove_if_empty(created: list[Path]) -> None:
    for path in created:  # deepest first
        try:
            path.rmdir()
        except OSError:
            return


@contextmanager
def claimed_folder(folder: Path, option: str = "--sortie") -> Iterator[Path]:
    """Check, BEFORE the work, that `folder` can receive the outputs, and hold it for this run.

    Refused (InvalidInput, exit 2, in French): a file, a folder that cannot be written, a
    folder another flux-opt run is writing (an exclusive lock on the folder, held until the end:
    two runs cannot both claim to have written it). Folders created here and left empty by a
    refusal or an interruption are removed: the disk is left as it was. Staging folders of a
    killed earlier run are removed (the lock proves no one is using them).
    """
    folder = Path(folder)
    created = _make_writable(folder, option)
    handle = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _refuse(folder, option, "un autre calcul flux-opt écrit déjà dans ce dossier : "
                                          "attendre sa fin ou choisir un autre dossier") from None
        for stale in folder.glob(STAGING_PREFIX + "*"):
            shutil.rmtree(stale, ignore_errors=True)
        yield folder
    except BaseException:
        _remove_if_empty(created)
        raise
    finally:
        os.close(handle)
