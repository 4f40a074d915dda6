"""The shared worker pool: a worker's native crash costs only its own task (issue 14 point 5)."""

from __future__ import annotations

import os
import signal

import pytest

from flux_opt.scale.pool import Crash, run_tasks


def square_or_die(n: int) -> int:
    """Runs in a spawned worker: 3 kills its process as a native crash would (SIGSEGV)."""
    if n == 3:
        os.kill(os.getpid(), signal.SIGSEGV)
    if n == 5:
        raise ValueError("refus du calcul")
    return n * n


@pytest.mark.parametrize("processus", [1, 2])
def test_a_crashing_task_is_reported_and_the_others_finish(processus):
    results = dict(run_tasks(square_or_die, [(n,) for n in (1, 2, 3, 4)], processus))
    assert {i: r for i, r in results.items() if not isinstance(r, Crash)} == {0: 1, 1: 4, 3: 16}
    assert isinstance(results[2], Crash) and "brutalement" in results[2].message


def test_an_exception_of_the_task_is_not_a_crash():
    with pytest.raises(ValueError, match="refus du calcul"):
        list(run_tasks(square_or_die, [(5,)], 2))
