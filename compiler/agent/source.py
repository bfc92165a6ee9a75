"""Where the agent's versions come from: one source per target (issue 12 §1, issue 11's API).

:class:`ConfigSource` is what the HTTP app needs of a runtime client. The
implementation here, :class:`PollingSource`, polls the store through the one
verification path every reader uses (:func:`compiler.reader.read_target`:
listing, signed pointer, chain, this reader's high-water mark, which it
advances) and swaps in each newer verified version whole. A refused or failed
poll keeps the version held, is counted and reported in :meth:`health`, and
backs off exponentially (with jitter, up to 16 poll intervals).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from compiler.agent.snapshot import Snapshot, changed_paths, mask
from compiler.bundle.dsse import Keyring
from compiler.errors import LlmccError
from compiler.freshness import Seen
from compiler.jsontypes import JSONObject
from compiler.reader import read_target
from compiler.secrets.identity import Identities
from compiler.storage.base import Store
from compiler.storage.seen import SeenFile
from compiler.verify import VerifiedBundle

log = logging.getLogger("llmcc.agent")

# (old, new, changed): the ``module$.path`` of every value added, removed or changed (never a value)
ChangeCallback = Callable[[Snapshot | None, Snapshot, list[str]], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceHealth:
    """``version`` None until one verified; ``age`` seconds since the store last confirmed it."""

    target: str
    version: int | None
    digest: str | None
    checked_at: float | None  # time.time() of the last successful poll
    age: float | None
    stale: bool
    last_error: str | None
    refusals: int
    polls: int


class ConfigSource(Protocol):
    """A target's verified versions (what the agent needs of issue 11's ``ConfigClient``)."""

    @property
    def target(self) -> str: ...

    @property
    def current(self) -> Snapshot | None:
        """The version held now; None before the first verified one. A plain read: no lock."""

    def on_change(self, callback: ChangeCallback) -> None:
        """Call ``callback(old, new, changed)`` after each swap, from the source's thread."""

    def health(self) -> SourceHealth: ...

    def start(self) -> None:
        """Start polling (the first poll runs before this returns)."""

    def stop(self) -> None: ...


class PollingSource:
    """Polls ``store`` for ``target`` every ``poll_interval`` seconds (±10 % jitter).

    Args:
        identities: called once per version that has secrets, for the provider it names
            (``compiler.secrets.bundlekek.bundle_key_provider``); None opens nothing.
        max_age: the held version is ``stale`` when the store has not confirmed it for this long.
    """

    def __init__(
        self,
        store: Store,
        target: str,
        keyring: Keyring,
        marks: SeenFile,
        *,
        identities: Callable[[str], Identities | None] | None,
        poll_interval: float,
        max_age: float,
    ) -> None:
        self._store, self._target, self._keyring, self._marks = store, target, keyring, marks
        self._identities = identities
        self._interval, self._max_age = poll_interval, max_age
        self._current: Snapshot | None = None
        self._sealed: JSONObject | None = None  # the held version's modules, ciphertext as stored
        self._advanced: Seen | None = None
        self._callbacks: list[ChangeCallback] = []
        self._checked_at: float | None = None
        self._last_error: str | None = None
        self._refusals = 0
        self._polls = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def target(self) -> str:
        return self._target

    @property
    def current(self) -> Snapshot | None:
        return self._current

    def on_change(self, callback: ChangeCallback) -> None:
        self._callbacks.append(callback)

    def health(self) -> SourceHealth:
        current, checked = self._current, self._checked_at
        age = None if checked is None else max(0.0, time.time() - checked)
        return SourceHealth(
            target=self._target,
            version=current.version if current else None,
            digest=current.digest if current else None,
            checked_at=checked,
            age=age,
            stale=current is None or age is None or age > self._max_age,
            last_error=self._last_error,
            refusals=self._refusals,
            polls=self._polls,
        )

    def refresh(self) -> bool:
        """Poll once; True when a newer version was swapped in. Errors are recorded, not raised."""
        self._polls += 1
        try:
            state = read_target(
                self._store,
                self._target,
                self._keyring,
                now=datetime.now(UTC),
                seen=self._marks.load().get(self._target),
            )
            latest = state.latest
            if latest is None or state.seen is None:
                raise LlmccError(f"{self._store.url}: nothing published for {self._target}")
            if state.seen != self._advanced:  # an fsync'd rewrite only when the mark moves
                self._marks.advance({self._target: state.seen})
                self._advanced = state.seen
        except LlmccError as e:
            self._refusals += 1
            if str(e) != self._last_error:
                log.warning("%s: update refused, keeping version %s: %s", self._target, self._held(), e)
            self._last_error = str(e)
            return False
        self._checked_at = time.time()
        self._last_error = None
        old = self._current
        if old is not None and latest.version <= old.version:
            return False
        new, sealed = self._snapshot(latest)
        changed = changed_paths(self._sealed, sealed)
        self._current, self._sealed = new, sealed  # readers take `current`: old or new, never a mix
        log.info("%s: serving version %d %s", self._target, new.version, new.digest)
        for callback in self._callbacks:
            try:
                callback(old, new, changed)
            except Exception:  # a subscriber's fault must not undo the swap
                log.exception("%s: a change callback failed", self._target)
        return True

    def _held(self) -> str:
        return str(self._current.version) if self._current else "none"

    def _snapshot(self, verified: VerifiedBundle) -> tuple[Snapshot, JSONObject]:
        bundle = verified.bundle
        modules = bundle.get("modules")
        assert isinstance(modules, dict)  # verify_chain checked the bundle's shape
        identities = self._identities

        def open_all() -> JSONObject:
            # imported here: only a secrets request needs age, KMS and Vault clients
            from compiler.secrets.bundlekek import bundle_key_provider
            from compiler.secrets.reader import open_secrets

            if bundle.get("encryption") is None:
                return modules
            if identities is None:
                raise LlmccError("this agent has no identity: start it with --identity to serve secrets")
            return open_secrets(bundle, bundle_key_provider(bundle, identities))

        masked = mask(modules)
        assert isinstance(masked, dict)
        snap = Snapshot(
            target=verified.target, version=verified.version, digest=verified.digest, masked=masked, open_all=open_all
        )
        return snap, modules

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._run, name=f"llmcc-poll-{self._target}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        failures = 0
        while True:
            backoff = min(2**failures, 16) if failures else 1
            jitter = 0.9 + 0.2 * int.from_bytes(os.urandom(2)) / 65535
            if self._stop.wait(self._interval * backoff * jitter):
                return
            try:
                self.refresh()
            except Exception as e:  # noqa: BLE001 - a bug in one poll must not end polling
                self._last_error = f"internal error: {type(e).__name__}"
                log.error("%s: poll failed: internal error: %s", self._target, type(e).__name__)
            failures = failures + 1 if self._last_error else 0
