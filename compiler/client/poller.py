"""The client's background refresh: jitter, exponential backoff, and a restart after fork (issue 11 §6).

``next_delay`` is the whole schedule, pure: the poll interval with jitter,
doubled per consecutive failure up to a cap, so a store that is down sees one
request per ``max_backoff`` at most, never a hot loop. The jitter spreads
many processes that start together (a deploy, a pre-fork server's workers).

After ``os.fork`` the child has no threads but the one that forked: the
client calls :meth:`Poller.after_fork` in the child (``os.register_at_fork``),
which starts the thread again if it ran in the parent, so a client made
before a pre-fork server forks polls in each worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from compiler.errors import LlmccError

_log = logging.getLogger("llmcc.client")


def next_delay(interval: float, failures: int, *, jitter: float, max_backoff: float, uniform: float) -> float:
    """Seconds until the next poll.

    Args:
        interval: the poll interval (seconds).
        failures: consecutive failed refreshes so far (0 after a good one).
        jitter: the fraction by which a delay may vary either way (0.1: +-10 %).
        max_backoff: the cap on the delay while failing (seconds).
        uniform: a number in [0, 1) (from the caller's randomness).

    Returns:
        ``min(max_backoff, interval * 2**failures)``, scaled by ``1 + jitter * (2*uniform - 1)``.
    """
    base = interval if failures == 0 else min(max_backoff, interval * 2.0 ** min(failures, 62))
    return base * (1.0 + jitter * (2.0 * uniform - 1.0))


class Poller:
    """Calls ``refresh`` on a thread, every ``interval`` seconds (see :func:`next_delay`)."""

    def __init__(
        self,
        refresh: Callable[[], object],
        *,
        interval: float,
        jitter: float,
        max_backoff: float,
        uniform: Callable[[], float],
        name: str,
    ) -> None:
        self._refresh = refresh
        self._interval = interval
        self._jitter = jitter
        self._max_backoff = max_backoff
        self._uniform = uniform
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0
        self.delay: float | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, *, failures: int = 0) -> None:
        """Start polling (no-op when it runs already); ``failures``: refreshes failed just before."""
        if self.running:
            return
        self.failures = failures
        self._schedule()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def _schedule(self) -> None:
        self.delay = next_delay(
            self._interval, self.failures, jitter=self._jitter, max_backoff=self._max_backoff, uniform=self._uniform()
        )

    def stop(self, timeout: float | None = None) -> None:
        """Stop polling and wait for a refresh under way (up to ``timeout`` seconds)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _loop(self) -> None:
        stop = self._stop
        while True:
            if stop.wait(self.delay):
                return
            try:
                self._refresh()
            except LlmccError:
                self.failures += 1  # the client has logged it and counted it
            except Exception:  # noqa: BLE001 - a bug must not end the polling of a running service
                self.failures += 1
                _log.exception("llmcc client: internal error while polling", extra={"llmcc_event": "poll_failed"})
            else:
                self.failures = 0
            self._schedule()

    def after_fork(self) -> None:
        """In a forked child: start again if the parent was polling (its thread is not here)."""
        was_running = self._thread is not None and not self._stop.is_set()
        self._thread = None
        if was_running:
            self.start(failures=self.failures)
