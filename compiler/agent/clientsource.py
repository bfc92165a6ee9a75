"""The agent's source over issue 11's runtime client: one :class:`~compiler.client.ConfigClient` per target.

The client verifies, keeps the high-water mark and the last known good
envelope (ciphertext) in its cache directory, polls with jitter and backoff,
and swaps versions whole; this adapter turns each client snapshot into the
agent's served view once (the masked config, and an opener for the secrets
scope) and passes the client's change events on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from types import MappingProxyType

from compiler.agent.snapshot import MASK, Snapshot
from compiler.agent.source import ChangeCallback, SourceHealth
from compiler.client import ConfigClient, NoVersionError, Secret
from compiler.client import Snapshot as ClientSnapshot
from compiler.errors import LlmccError, UnknownTargetError
from compiler.jsontypes import JSONObject, JSONValue
from compiler.storage.base import NoStoreError

log = logging.getLogger("llmcc.agent")


def _thaw(value: object, *, reveal: bool) -> JSONValue:
    if isinstance(value, Mapping | MappingProxyType):
        return {str(k): _thaw(v, reveal=reveal) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_thaw(v, reveal=reveal) for v in value]
    if isinstance(value, Secret):
        return value.reveal() if reveal else MASK
    return value  # type: ignore[return-value]  # a JSON scalar of the bundle


def view_of(snap: ClientSnapshot) -> Snapshot:
    """The agent's view of a client snapshot: masked now, opened on the first secrets request."""

    def open_all() -> JSONObject:
        return {m: _thaw(snap.get(m), reveal=True) for m in snap.modules}

    masked: JSONObject = {m: _thaw(snap.get(m), reveal=False) for m in snap.modules}
    return Snapshot(target=snap.target, version=snap.version, digest=snap.digest, masked=masked, open_all=open_all)


class ClientSource:
    """A :class:`~compiler.agent.source.ConfigSource` backed by a started ``ConfigClient``."""

    def __init__(self, client: ConfigClient, target: str, *, retry_seconds: float) -> None:
        self._client, self._target, self._retry = client, target, retry_seconds
        self._view: tuple[ClientSnapshot, Snapshot] | None = None
        self._callbacks: list[ChangeCallback] = []
        self._last_error: str | None = None
        self._stop = threading.Event()
        self._starter: threading.Thread | None = None
        client.on_change(self._changed)
        client.on_error(self._error)

    @property
    def target(self) -> str:
        return self._target

    @property
    def current(self) -> Snapshot | None:
        try:
            snap = self._client.snapshot
        except NoVersionError:
            return None
        return self._view_for(snap)

    def _view_for(self, snap: ClientSnapshot) -> Snapshot:
        held = self._view
        if held is not None and held[0] is snap:
            return held[1]
        view = view_of(snap)
        self._view = (snap, view)  # one reference store; a racing request builds the same view
        return view

    def on_change(self, callback: ChangeCallback) -> None:
        self._callbacks.append(callback)

    def _changed(self, old: ClientSnapshot | None, new: ClientSnapshot, changed: frozenset[str]) -> None:
        before = self._view[1] if self._view is not None and old is not None and self._view[0] is old else None
        view = self._view_for(new)  # the client logs the swap itself
        self._last_error = None
        for callback in self._callbacks:
            try:
                callback(before, view, sorted(changed))
            except Exception:  # a subscriber's fault must not stop the others (the swap is done)
                log.exception("%s: a change callback failed", self._target)

    def _error(self, error: LlmccError) -> None:
        if isinstance(error, UnknownTargetError) and self._starter is None:
            return  # the first start raises it: the agent exits with that one line
        if str(error) != self._last_error:  # once per new error, not once per poll while the store is down
            self._last_error = str(error)
            version = self._client.version
            if version is None:  # nothing served yet: there is no version to keep
                log.warning("%s: no verified version yet (answering 503): %s", self._target, error)
            else:
                log.warning("%s: update refused, keeping version %s: %s", self._target, version, error)

    def health(self) -> SourceHealth:
        status = self._client.status
        metrics = self._client.metrics()
        return SourceHealth(
            target=self._target,
            version=status.version,
            digest=status.digest,
            checked_at=status.verified_at.timestamp() if status.verified_at else None,
            age=status.age,
            stale=status.version is None or status.stale,
            last_error=status.last_error,
            refusals=metrics.fetch_errors + sum(metrics.refusals.values()),
            polls=metrics.refreshes,
        )

    def start(self) -> None:
        """Start the client; while it cannot get a first version, retry in the background (the agent serves 503).

        A store that is down at start is retried (the last known good rule:
        the cache if any, else 503 until the store answers). A store that
        answers and has never published the target is not: a misspelt
        ``-t prdo`` would otherwise run for ever serving 503.

        Raises:
            UnknownTargetError: the store lists other targets, or none, but not
                this one, and no cache or mark proves it (exit 2).
        """
        try:
            self._client.start()
        except (UnknownTargetError, NoStoreError):
            raise  # permanent: a typo, not an outage to wait out
        except LlmccError:
            self._starter = threading.Thread(
                target=self._keep_starting, name=f"llmcc-start-{self._target}", daemon=True
            )
            self._starter.start()

    def _keep_starting(self) -> None:
        delay = self._retry
        while not self._stop.wait(delay):
            try:
                self._client.start()
                return
            except LlmccError:  # a native panic too: the client raises it as an InternalError
                delay = min(delay * 2, 16 * self._retry)

    def stop(self) -> None:
        self._stop.set()
        if self._starter is not None:
            self._starter.join(timeout=5)
        self._client.stop()
