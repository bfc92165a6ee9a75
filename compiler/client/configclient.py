"""``ConfigClient``: a service's verified, hot-reloaded view of one published target (issue 11).

How a refresh goes (:meth:`ConfigClient.refresh`):

1. :func:`compiler.reader.read_target` reads the store the one way every
   reader does: signed pointer (not expired, not far below or above the
   listing), listing (1..N, no strays), the chain from the version this client
   holds (or its persisted high-water mark) to the latest, signatures by a
   trusted key, target, version, digests (issue 11 §1-§2). It refuses, with
   :class:`~compiler.errors.VerificationError`, anything older than the mark.
2. The new version becomes a :class:`~compiler.client.snapshot.Snapshot`; with
   an identity, its data key is unwrapped and commitment-checked now, so a
   version this service cannot open is refused before it is served (§5).
3. Its envelope goes to the disk cache, then the mark moves up (fsynced, under
   ``flock``); only then is the snapshot swapped in, by one reference
   assignment: a reader sees the old version or the new one, never a mix (§3).
4. Change callbacks run after the swap; one that raises is logged and does not
   undo it.

A refused or failed refresh keeps the current version, sets
``status.last_error``, counts the refusal by reason, calls the error
callbacks, and raises the typed error to a caller of ``refresh()``.
"""

from __future__ import annotations

import logging
import os
import secrets as _secrets
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Protocol

from compiler.client.cache import CachedVersion, LastGoodCache, make_cache_dir
from compiler.client.keys import Identity, key_provider_factory, load_keyring
from compiler.client.metrics import ClientMetrics, ClientStatus, is_refusal, refusal_reason
from compiler.client.poller import Poller
from compiler.client.secret import Secret
from compiler.client.snapshot import NoSuchPathError, Snapshot
from compiler.errors import (
    InternalError,
    LlmccError,
    SecretsError,
    StorageError,
    UnknownTargetError,
    UsageError,
    VerificationError,
    is_panic,
)
from compiler.freshness import Seen
from compiler.reader import check_known, read_target
from compiler.storage import Store, open_store
from compiler.storage.base import NoStoreError, check_target
from compiler.storage.file import FileStore
from compiler.storage.seen import SeenFile
from compiler.verify import verify_chain

_log = logging.getLogger("llmcc.client")
_MISSING = object()
# The cache records when the store last confirmed its version (for `stale` after a
# restart); a confirmation is written at most this often (seconds).
CACHE_TOUCH_SECONDS = 60.0
# How far in the future a confirmation time may lie (clock differences) before `stale` says so.
FUTURE_SKEW_SECONDS = 300.0
_CLIENTS: weakref.WeakSet[ConfigClient] = weakref.WeakSet()  # reset in a forked child


class ChangeCallback(Protocol):
    def __call__(self, old: Snapshot | None, new: Snapshot, changed: frozenset[str], /) -> object: ...


class NoVersionError(LlmccError):
    """The client holds no verified version yet (no cache, and no refresh has succeeded)."""


class ConfigClient:
    """Verified config of one target, refreshed in place (see the module doc and README).

    ``get`` takes no lock: it reads the current snapshot through one
    reference. Everything that changes state runs under one lock, one
    refresh at a time.
    """

    def __init__(
        self,
        store: str | Store,
        target: str,
        trusted_keys: Iterable[str | os.PathLike[str] | bytes],
        *,
        identity: Identity = None,
        cache_dir: str | os.PathLike[str] | None = None,
        poll_interval: float = 30.0,
        max_age: float = 3600.0,
        max_backoff: float = 300.0,
        jitter: float = 0.1,
        endpoint_url: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """Set up; no request to the store is made here (see :meth:`start`, :meth:`refresh`).

        Args:
            store: a store URL as ``publish`` takes it (``file://PATH``,
                ``s3://BUCKET/PREFIX``, ``oci://REGISTRY/REPO``; a relative
                ``file://`` path is relative to the working directory), or a Store.
            target: ``ENV`` or ``ENV@TENANT``.
            trusted_keys: Ed25519 public keys (SubjectPublicKeyInfo PEM): file
                paths, or the PEM bytes. At least one.
            identity: an age identity file (the bundle's KEK decides the
                provider, as ``pull --decrypt``), a KeyProvider,
                :data:`~compiler.client.keys.FROM_ENVIRONMENT` (the provider the
                bundle names, credentials from the environment: age, AWS KMS,
                Vault transit), or None (no secrets).
            cache_dir: where the last known good version and the high-water
                mark live (created 0700); None keeps both in memory only.
            poll_interval: seconds between background refreshes (jittered).
            max_age: seconds after which a version the store has not
                confirmed is reported ``stale``.
            max_backoff: cap in seconds on the delay while refreshes fail.
            jitter: the fraction a poll delay varies by, either way.
            endpoint_url: an S3-compatible endpoint (MinIO, moto, ...).
            clock: the current UTC time (injected for tests; STYLE R13).

        Raises:
            UsageError: a timing argument out of range: ``poll_interval`` and
                ``max_backoff`` finite and above 0 (0 or NaN polled in a hot
                loop), ``jitter`` in [0, 1), ``max_age`` not NaN and not below 0.
            LlmccError: a key or identity cannot be read, no trusted key, a bad
                target or store URL, or an unsafe cache directory or state file.
        """
        _check_timing(poll_interval=poll_interval, max_backoff=max_backoff, jitter=jitter, max_age=max_age)
        self._target = check_target(target)
        self._store_url = store if isinstance(store, str) else None
        self._endpoint_url = endpoint_url
        self._store: Store = self._open_store() if isinstance(store, str) else store
        self._reopen_store = False
        self._keyring = load_keyring(trusted_keys)
        self._provider = key_provider_factory(identity)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._max_age = max_age
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        # Verified envelopes of the held version and its predecessor: not fetched again, and the
        # base a new version's delta is applied to (compiler/reader.py, issue 11 §7)
        self._held: dict[int, bytes] = {}
        self._source: str | None = None
        self._verified_at: datetime | None = None
        self._cached_at: datetime | None = None
        self._seen: Seen | None = None
        self._last_error: str | None = None
        self._on_change: list[ChangeCallback] = []
        self._on_error: list[Callable[[LlmccError], object]] = []
        self._refreshes = self._swaps = self._fetch_errors = self._deltas = 0
        self._refusals: dict[str, int] = {}
        self._poller = Poller(
            self._poll,
            interval=poll_interval,
            jitter=jitter,
            max_backoff=max_backoff,
            uniform=_secrets.SystemRandom().random,
            name=f"llmcc-client-{target}",
        )
        self._cache: LastGoodCache | None = None
        self._seen_file: SeenFile | None = None
        if cache_dir is not None:
            directory = Path(cache_dir)
            make_cache_dir(directory)
            self._cache = LastGoodCache(directory, self._store.location, self._target)
            self._seen_file = SeenFile(directory / "seen", self._store.location)
            self._seen = self._seen_file.load().get(self._target)  # unsafe or corrupt state: refused here
            self._start_from_cache()
        _CLIENTS.add(self)

    def _open_store(self) -> Store:
        assert self._store_url is not None
        return open_store(self._store_url, root=Path.cwd(), endpoint_url=self._endpoint_url)

    def __repr__(self) -> str:
        return f"ConfigClient(store={self._store.url!r}, target={self._target!r}, version={self.version})"

    # --- reading: lock-free -------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        """The current version as one object: several reads from it come from one version.

        Raises:
            NoVersionError: no version verified yet.
        """
        snap = self._snapshot
        if snap is None:
            raise NoVersionError(f"{self._target}: no verified version yet (the store was not reached, no cache)")
        return snap

    @property
    def version(self) -> int | None:
        """The version served now; None before the first one."""
        snap = self._snapshot
        return snap.version if snap is not None else None

    def get(self, path: str, default: object = _MISSING) -> object:
        """The value at ``path`` in the current version (``module.a.b``, the syntax of ``explain``).

        Maps come back as read-only ``MappingProxyType``, lists as tuples, and
        secret fields as :class:`~compiler.client.secret.Secret`.

        Raises:
            NoSuchPathError: nothing at ``path`` and no ``default``.
            NoVersionError: no version verified yet.
        """
        snap = self._snapshot
        if snap is None:
            return self.snapshot  # raises NoVersionError
        if default is _MISSING:
            return snap.get(path)
        return snap.get(path, default)

    def module(self, name: str) -> Mapping[str, object]:
        """The config of module ``name`` (a read-only view).

        Raises:
            NoSuchPathError: no such module.
        """
        snap = self.snapshot
        if name not in snap.modules:
            raise NoSuchPathError(f"{self._target} version {snap.version}: no module {name!r}")
        value = snap.get(name)
        assert isinstance(value, Mapping)
        return value

    def secret(self, path: str) -> Secret:
        """The secret at ``path``, decrypted now (on its first use in this version).

        Raises:
            SecretsError: not a secret field, no identity, or it cannot be decrypted.
            NoSuchPathError: nothing at ``path``.
        """
        value = self.get(path)
        if not isinstance(value, Secret):
            raise SecretsError(f"{self._target}: {path} is not an encrypted secret field")
        value.reveal()
        return value

    @property
    def status(self) -> ClientStatus:
        snap = self._snapshot
        age = (self._clock() - self._verified_at).total_seconds() if self._verified_at is not None else None
        return ClientStatus(
            version=snap.version if snap is not None else None,
            digest=snap.digest if snap is not None else None,
            verified_at=self._verified_at,
            age=age,
            # a confirmation time in the future (a cache written under a wrong clock, or the
            # clock set back) proves nothing about freshness: stale until the store confirms
            stale=age is not None and (age > self._max_age or age < -FUTURE_SKEW_SECONDS),
            source=self._source,
            last_error=self._last_error,
        )

    def metrics(self) -> ClientMetrics:
        """The counters now (README: their Prometheus names)."""
        status = self.status
        return ClientMetrics(
            refreshes=self._refreshes,
            swaps=self._swaps,
            fetch_errors=self._fetch_errors,
            deltas=self._deltas,
            refusals=dict(self._refusals),
            version=status.version,
            age=status.age,
            next_poll_in=self._poller.delay if self._poller.running else None,
        )

    # --- callbacks ----------------------------------------------------------------------

    def on_change(self, callback: ChangeCallback) -> ChangeCallback:
        """Call ``callback(old, new, changed_addresses)`` after each swap (usable as a decorator)."""
        self._on_change.append(callback)
        return callback

    def on_error(self, callback: Callable[[LlmccError], object]) -> Callable[[LlmccError], object]:
        """Call ``callback(error)`` when a refresh fails or an update is refused."""
        self._on_error.append(callback)
        return callback

    # --- refreshing ---------------------------------------------------------------------

    def refresh(self) -> bool:
        """Fetch, verify and swap in the latest version.

        Returns:
            True when a newer version was swapped in; False when the current one is the latest.

        Raises:
            VerificationError: the store serves something that fails verification
                (rollback, freeze, gap, bad signature, wrong target, ...); the
                current version is kept.
            SecretsError: the new version's data key cannot be unwrapped.
            UnknownTargetError: no version is held, none was ever accepted (no
                high-water mark), and the store lists other targets, or none, but
                not this one: a misspelt target (exit 2; the message has a close match).
            StorageError: the store cannot be reached, or has nothing published.
        """
        try:
            swapped = self._refresh()
        except LlmccError as e:
            self._notify_error(e)  # outside the lock: a callback may call refresh() or status
            raise
        if swapped is None:
            return False
        old, new = swapped
        if self._on_change:
            changed = new.changed_paths(old)
            for callback in list(self._on_change):
                try:
                    callback(old, new, changed)
                except BaseException as e:
                    if not (isinstance(e, Exception) or is_panic(e)):
                        raise  # KeyboardInterrupt, SystemExit
                    _log.exception(
                        "llmcc client: %s: a change callback raised (version %d stays)",
                        self._target,
                        new.version,
                        extra={"llmcc_event": "callback_failed", "llmcc_target": self._target},
                    )
        return True

    def _refresh(self) -> tuple[Snapshot | None, Snapshot] | None:
        with self._lock:
            self._refreshes += 1
            now = self._clock()
            current = self._snapshot
            try:
                if self._reopen_store:
                    self._store, self._reopen_store = self._open_store(), False
                # held envelopes are not fetched again, and a new version is rebuilt from its
                # delta on the held one when the store has it (issue 11 §7); either way it is
                # verified as if fetched whole, and read whole when it does not verify
                state = read_target(
                    self._store, self._target, self._keyring, now=now, seen=self._mark(), held=self._held
                )
                latest, seen, envelope = state.latest, state.seen, state.latest_envelope
                if latest is None or seen is None or envelope is None:
                    if current is None and self._mark() is None:
                        # nothing proves this target exists (no version held, no mark): a store that
                        # has never published it is a typo until proven otherwise, not "wait for it"
                        check_known(self._store, [self._target])
                    raise StorageError(f"{self._store.url}: nothing published for {self._target}")
                if current is not None and (latest.version, latest.digest) == (current.version, current.digest):
                    self._held = {v: e for v, e in state.envelopes if v >= current.version - 1}
                    self._confirmed(current, now)
                    return None
                snap = Snapshot(latest, envelope, verified_at=now, provider=self._provider)
                snap.unwrap_key()
                self._persist(snap, seen, now)
            except LlmccError as e:
                self._failed(e, None)
                raise
            except BaseException as e:
                if not is_panic(e):
                    raise
                # a native library (cryptography, pyrage) panicked: a BaseException would pass every
                # `except Exception` of the service and end the poller's thread. Refused, as a bug;
                # its text is not shown (the library was given key material).
                error = InternalError(f"{self._target}: internal error: a native library panicked while reading it")
                self._failed(error, None)
                raise error from e
            self._held = {v: e for v, e in state.envelopes if v >= snap.version - 1}
            self._deltas += len(state.via_delta)
            self._snapshot = snap  # the swap: one reference assignment
            self._source, self._verified_at, self._last_error = "store", now, None
            self._swaps += 1
        _log.info(
            "llmcc client: %s version %d swapped in (%s)",
            self._target,
            snap.version,
            snap.digest,
            extra={"llmcc_event": "swapped", "llmcc_target": self._target, "llmcc_version": snap.version},
        )
        return current, snap

    def _mark(self) -> Seen | None:
        """The highest of: the persisted mark (other processes may move it), this process's, the held version."""
        marks = [self._seen]
        if self._seen_file is not None:
            marks.append(self._seen_file.load().get(self._target))
        if self._snapshot is not None:
            marks.append(Seen(version=self._snapshot.version, digest=self._snapshot.digest))
        known = [m for m in marks if m is not None]
        return max(known, key=lambda m: m.version) if known else None

    def _confirmed(self, current: Snapshot, now: datetime) -> None:
        self._source, self._verified_at, self._last_error = "store", now, None
        if self._cache is not None and (
            self._cached_at is None or (now - self._cached_at).total_seconds() >= CACHE_TOUCH_SECONDS
        ):
            self._write_cache(current, now)

    def _persist(self, snap: Snapshot, seen: Seen, now: datetime) -> None:
        """Cache, then mark: a crash between them leaves a cache above the mark, which loads."""
        if self._cache is not None:
            self._write_cache(snap, now)
        if self._seen_file is not None:
            self._seen_file.advance({self._target: seen})  # fails closed: no swap without the mark
        self._seen = seen

    def _write_cache(self, snap: Snapshot, now: datetime) -> None:
        assert self._cache is not None
        try:
            self._cache.store(
                CachedVersion(version=snap.version, digest=snap.digest, verified_at=now, envelope=snap.envelope)
            )
            self._cached_at = now
        except LlmccError as e:  # the cache is for starting without the store; serving goes on
            _log.warning(
                "llmcc client: %s",
                e,
                extra={"llmcc_event": "cache_write_failed", "llmcc_target": self._target},
            )

    def _failed(self, error: LlmccError, reason: str | None) -> None:
        self._last_error = str(error)
        if isinstance(error, UnknownTargetError):
            return  # raised to the caller of start() or refresh(): no version to keep, nothing polls
        if reason is not None or is_refusal(error):
            reason = reason or refusal_reason(error)
            self._refusals[reason] = self._refusals.get(reason, 0) + 1
            event = "refused"
        else:
            self._fetch_errors += 1
            event = "fetch_failed"
        _log.warning(
            "llmcc client: %s",
            error,
            extra={
                "llmcc_event": event,
                "llmcc_target": self._target,
                "llmcc_reason": reason,
                "llmcc_version": self.version,
            },
        )

    def _notify_error(self, error: LlmccError) -> None:
        for callback in list(self._on_error):
            try:
                callback(error)
            except BaseException as e:
                if not (isinstance(e, Exception) or is_panic(e)):
                    raise
                _log.exception("llmcc client: an error callback raised", extra={"llmcc_event": "callback_failed"})

    def _start_from_cache(self) -> None:
        """Serve the cached version until the store confirms or replaces it (verified again first)."""
        assert self._cache is not None
        try:
            cached = self._cache.load()
            if cached is None:
                return
            [verified] = verify_chain(
                self._target, [(cached.version, cached.envelope)], self._keyring, start=cached.version
            )
            if verified.digest != cached.digest:
                raise VerificationError(
                    f"{self._cache.path}: version {cached.version} has digest {verified.digest}, "
                    f"not {cached.digest} as the cache records"
                )
            mark = self._seen
            if (
                mark is not None
                and (verified.version, verified.digest) != (mark.version, mark.digest)
                and verified.version <= mark.version
            ):
                raise VerificationError(
                    f"{self._cache.path}: the cached version {verified.version} ({verified.digest}) is not "
                    f"version {mark.version} this client accepted last (rollback?)"
                )
        except LlmccError as e:
            self._failed(e, "cache")
            return
        self._snapshot = Snapshot(verified, cached.envelope, verified_at=cached.verified_at, provider=self._provider)
        self._held = {verified.version: cached.envelope}
        self._source, self._verified_at, self._cached_at = "cache", cached.verified_at, cached.verified_at
        _log.info(
            "llmcc client: %s version %d loaded from the cache",
            self._target,
            verified.version,
            extra={"llmcc_event": "cache_loaded", "llmcc_target": self._target, "llmcc_version": verified.version},
        )

    # --- polling ------------------------------------------------------------------------

    def _poll(self) -> None:
        self.refresh()

    def start(self) -> ConfigClient:
        """Refresh once, then poll in the background.

        A first refresh that fails is fine when a version is held (from the
        cache): the poller retries with backoff.

        Raises:
            NoStoreError: a ``file://`` store whose directory does not exist (a
                ``StorageError`` when the path is not a directory) or an ``s3://``
                bucket that does not exist: a typo or a volume not mounted, refused
                at once whatever the cache holds, as the agent and ``llmcc pull``
                refuse it (exit 2). Once started, a store that disappears is an
                outage: the poller retries.
            UnknownTargetError: the store is reachable and has never published this
                target (and no cache or mark proves it): a typo, refused at once.
            LlmccError: the first refresh failed and no version is held.
        """
        if isinstance(self._store, FileStore):
            try:
                self._store.check_root()
            except StorageError as e:
                self._last_error = str(e)
                self._notify_error(e)
                raise
        failures = 0
        try:
            self.refresh()
        except NoStoreError:
            raise  # an s3:// bucket that does not exist: refused like a missing directory
        except LlmccError:
            if self._snapshot is None:
                raise
            failures = 1  # the poller starts backed off
        self._poller.start(failures=failures)
        return self

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop the poller (waits up to ``timeout`` seconds for a refresh under way)."""
        self._poller.stop(timeout)

    def __enter__(self) -> ConfigClient:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _after_fork(self) -> None:
        # The parent's lock may have been held by its poller at the fork; its store client
        # (boto3, HTTP pools) holds the parent's sockets. Fresh ones here.
        self._lock = threading.Lock()
        if self._snapshot is not None:
            self._snapshot.after_fork()
        self._reopen_store = self._store_url is not None
        self._poller.after_fork()


def _check_timing(*, poll_interval: float, max_backoff: float, jitter: float, max_age: float) -> None:
    """Refuse timings that would poll in a hot loop, kill the poller thread, or never report stale."""
    # threading waits refuse a timeout above TIMEOUT_MAX (OverflowError in the poller thread)
    longest = threading.TIMEOUT_MAX / 2
    for name, value in (("poll_interval", poll_interval), ("max_backoff", max_backoff)):
        if not 0 < value <= longest:  # NaN fails every comparison
            raise UsageError(f"{name} must be a number of seconds above 0 and at most {longest:g}, not {value!r}")
    if not 0 <= jitter < 1:
        raise UsageError(f"jitter must be a fraction in [0, 1), not {jitter!r}")
    if not max_age >= 0:  # NaN fails every comparison
        raise UsageError(f"max_age must be a number of seconds, 0 or more, not {max_age!r}")


def _after_fork_in_child() -> None:
    for client in list(_CLIENTS):
        client._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
