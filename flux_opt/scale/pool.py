"""Worker processes shared by `lot`, `comparer` and `balayage`.

- started by a fork server that has imported the pipeline once (cheap workers), never forked from
  the caller (a forked copy of a process that has run HiGHS is not safe);
- at most `processus` tasks in flight, results yielded as each finishes;
- a worker that dies (a native crash of the solver, the out-of-memory killer) costs only its own
  task: the tasks that were in flight are re-run one by one in a fresh worker, and the one that
  kills its worker again is reported as a `Crash` instead of breaking the whole run.
An exception raised by the task itself is not a crash: it propagates to the caller.
"""

from __future__ import annotations

import gc
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass


@dataclass(frozen=True)
class Crash:
    """The result of a task whose worker process died."""

    message: str = "le processus de calcul s'est arrêté brutalement (plantage du solveur ou mémoire épuisée)"


def run_tasks(function: Callable, tasks: list[tuple], processes: int,
              poll: Callable[[], None] | None = None) -> Iterator[tuple[int, object]]:
    """Yield `(index, function(*tasks[index]))` as tasks finish, or `(index, Crash())`.
    `poll()` is called about every 0.2 s while waiting (e.g. to relay progress)."""
    todo = deque(range(len(tasks)))
    while todo:
        suspects = yield from _run_pool(function, tasks, todo, max(1, processes), poll)
        if len(suspects) == 1:
            yield suspects[0], Crash()
            continue
        for index in suspects:  # which of them killed the pool? Each alone tells.
            if (yield from _run_pool(function, tasks, deque([index]), 1, poll)):
                yield index, Crash()


# A worker's garbage collector: the modules imported before the first task are frozen (never scanned
# again), and a young collection waits for 10 000 new objects instead of 700 — a plan makes and drops
# hundreds of thousands of small pandas objects, and the default thresholds spent about 12 ms of CPU
# per small national instance (40 ms on a mid-sized one) scanning them.
GC_THRESHOLDS = (10_000, 10, 10)


def _start_worker() -> None:
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _context():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["flux_opt.pipeline"])
    return context


def _run_pool(function, tasks, todo: deque, processes: int, poll) -> Iterator[tuple[int, object]]:
    """Run tasks taken from `todo` until it is empty (returns []) or a worker dies (returns
    the indices that were in flight; the rest stays in `todo`)."""
    pool = ProcessPoolExecutor(min(processes, len(todo)), mp_context=_context(), initializer=_start_worker)
    running: dict = {}
    try:
        while todo or running:
            while todo and len(running) < processes:
                index = todo.popleft()
                running[pool.submit(function, *tasks[index])] = index
            done, _ = wait(running, timeout=0.2 if poll else None, return_when=FIRST_COMPLETED)
            if poll:
                poll()
            for future in done:
                try:
                    result = future.result()
                except BrokenProcessPool:
                    return sorted(running.values())
                yield running.pop(future), result
        return []
    finally:
        # On Ctrl-C or a crash do not wait for queued work: drop what has not started.
        pool.shutdown(wait=False, cancel_futures=True)
