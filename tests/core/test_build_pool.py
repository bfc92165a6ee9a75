"""The build's worker pool: its parent does not spin while the workers send results back.

CPython's ``Pool`` has a thread that waits for a worker to exit or the pool to
change state; it also woke whenever the results pipe held data, which stays so
from a worker's write until the result thread has read it, so it spun meanwhile
(~3,000 turns for the 203 targets of the xlarge workload, on a core the
workers need). Counted here, not timed: the number of times it woke.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
from collections.abc import Sequence
from typing import Any

import pytest

from compiler.compile import build


def _square(n: int) -> int:
    return n * n


def test_the_pools_worker_thread_wakes_for_workers_and_state_not_for_each_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    woke = []
    real = multiprocessing.pool.Pool._wait_for_updates  # type: ignore[attr-defined]

    def counted(sentinels: Sequence[Any], change_notifier: Any, timeout: float | None = None) -> None:
        woke.append(len(sentinels))
        real(sentinels, change_notifier, timeout)

    monkeypatch.setattr(multiprocessing.pool.Pool, "_wait_for_updates", staticmethod(counted))
    pool = build._pool(multiprocessing.get_context("fork"), 2)
    with pool:
        assert sorted(pool.imap_unordered(_square, range(400))) == sorted(n * n for n in range(400))
    assert len(woke) < 20  # was hundreds: once per result at least
