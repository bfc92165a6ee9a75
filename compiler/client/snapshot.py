"""One verified config version, immutable, as the client serves it (issue 11 §3).

A :class:`Snapshot` is built once per accepted version and never changes
after the client swaps it in; readers hold it by one reference, so a reader
sees one whole version, old or new, never a mix. Lookups are cached per
snapshot: the first ``get`` of a path resolves it with the one path syntax
(:mod:`compiler.jsonpath`), later ones are one dict lookup.

Values come back read-only: maps as :class:`types.MappingProxyType`, lists as
tuples, secret leaves as :class:`~compiler.client.secret.Secret` (decrypted on
``reveal()``, with the data key unwrapped once per snapshot and
commitment-checked by :class:`~compiler.secrets.reader.SecretReader`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from types import MappingProxyType

from compiler.client.secret import Secret
from compiler.errors import SecretsError, UsageError
from compiler.jsonpath import JsonPath, missing_at, resolve, split_address
from compiler.jsontypes import JSONObject, JSONScalar, JSONValue
from compiler.secrets.envelope import is_enc
from compiler.secrets.kek.base import KeyProvider
from compiler.secrets.reader import SecretReader, secret_address
from compiler.verify import VerifiedBundle

# Distinct path spellings cached per snapshot; beyond it lookups still work, uncached.
MAX_CACHED_PATHS = 65536
_MISSING = object()


class NoSuchPathError(UsageError, LookupError):
    """The config holds no value at the path asked for (exit 2)."""


class Snapshot:
    """A verified version of one target: ``version``, ``digest``, ``modules`` (read-only)."""

    __slots__ = (
        "_bundle",
        "_lock",
        "_modules",
        "_paths",
        "_provider",
        "_reader",
        "_secrets",
        "digest",
        "envelope",
        "metadata",
        "target",
        "verified_at",
        "version",
    )

    def __init__(
        self,
        verified: VerifiedBundle,
        envelope: bytes,
        *,
        verified_at: datetime,
        provider: Callable[[JSONObject], KeyProvider] | None,
    ) -> None:
        """A snapshot of ``verified`` (whose stored bytes are ``envelope``).

        Args:
            verified: the bundle as :mod:`compiler.verify` returned it.
            envelope: its signed envelope, as stored (the disk cache keeps it).
            verified_at: when the store last confirmed it (UTC).
            provider: builds the key provider for this bundle; None: no secrets.

        Raises:
            VerificationError: never here; the bundle has passed already.
        """
        modules = verified.bundle.get("modules")
        self._modules: JSONObject = modules if isinstance(modules, dict) else {}
        self.target = verified.target
        self.version = verified.version
        self.digest = verified.digest
        self.metadata: MappingProxyType[str, object] = _freeze_plain(verified.metadata)  # type: ignore[assignment]
        self.envelope = envelope
        self.verified_at = verified_at
        self._bundle = verified.bundle
        self._provider = provider
        self._reader: SecretReader | None = None
        self._lock = threading.Lock()
        self._paths: dict[str, object] = {}
        self._secrets: dict[str, Secret] = {}

    def __repr__(self) -> str:
        return f"Snapshot(target={self.target!r}, version={self.version}, digest={self.digest!r})"

    @property
    def modules(self) -> tuple[str, ...]:
        """The module names, sorted."""
        return tuple(sorted(self._modules))

    def get(self, path: str, default: object = _MISSING) -> object:
        """The value at ``path`` (``module.a.b``, ``module$.a[0]``, ``module`` alone...).

        Returns:
            A scalar, a read-only view (MappingProxyType / tuple) or a Secret.

        Raises:
            NoSuchPathError: nothing there and no ``default`` given.
        """
        try:
            return self._paths[path]
        except KeyError:
            pass
        try:
            value = self._lookup(path)
        except NoSuchPathError:
            if default is _MISSING:
                raise
            return default
        if len(self._paths) < MAX_CACHED_PATHS:
            self._paths[path] = value  # one dict store: atomic; a racing reader computes the same value
        return value

    def _lookup(self, path: str) -> object:
        try:
            module, query = split_address(path, list(self._modules))
        except UsageError as e:
            raise NoSuchPathError(f"{self.target} version {self.version}: {e}") from None
        found = resolve(self._modules[module], query)
        if found is None:
            where = missing_at(self._modules[module], query)
            raise NoSuchPathError(f"{self.target} version {self.version}: no value at {module}{where}")
        concrete, value = found
        return self._freeze(module, concrete, value)  # type: ignore[arg-type]  # resolve walks JSON

    def _freeze(self, module: str, path: JsonPath, value: JSONValue) -> object:
        if isinstance(value, dict):
            return MappingProxyType({k: self._freeze(module, (*path, k), v) for k, v in value.items()})
        if isinstance(value, list):
            return tuple(self._freeze(module, (*path, i), v) for i, v in enumerate(value))
        if is_enc(value):
            return self.secret_at(secret_address(module, path), value)
        return value

    def secret_at(self, address: str, enc: str) -> Secret:
        """The :class:`Secret` sealed as ``enc`` at ``address`` (``module$.path``), one object per address."""
        found = self._secrets.get(address)
        if found is None:
            found = self._secrets.setdefault(address, Secret(address, lambda: self._open(address, enc)))
        return found

    def _open(self, address: str, enc: str) -> JSONScalar:
        with self._lock:  # the data key is unwrapped once per snapshot, by one thread
            return self._secret_reader().open_at(address, enc)

    def _secret_reader(self) -> SecretReader:
        if self._reader is None:
            if self._provider is None:
                raise SecretsError(f"{self.target} version {self.version}: this client has no identity for secrets")
            self._reader = SecretReader(self._bundle, self._provider(self._bundle))
        return self._reader

    def unwrap_key(self) -> None:
        """Unwrap and commitment-check the data key now (before a swap); no-op without secrets.

        Raises:
            SecretsError: the key cannot be unwrapped or fails its commitment.
        """
        if self._provider is None or self._bundle.get("encryption") is None:
            return
        with self._lock:
            self._secret_reader().check_key()

    def after_fork(self) -> None:
        """A fresh lock in a forked child (the parent's may have been held at the fork)."""
        self._lock = threading.Lock()

    def changed_paths(self, other: Snapshot | None) -> frozenset[str]:
        """The addresses (``module$.path``) whose stored value differs from ``other``'s.

        Compares the stored bundles: a secret shows as changed when its
        ciphertext did (compile reuses the ciphertext of an unchanged secret).
        """
        before: JSONObject = other._modules if other is not None else {}
        out: set[str] = set()
        for module in set(before) | set(self._modules):
            _diff(module, (), before.get(module, _MISSING), self._modules.get(module, _MISSING), out)
        return frozenset(out)


def _diff(module: str, path: JsonPath, a: object, b: object, out: set[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in set(a) | set(b):
            _diff(module, (*path, key), a.get(key, _MISSING), b.get(key, _MISSING), out)
    elif type(a) is not type(b) or a != b:
        out.add(secret_address(module, path))


def _freeze_plain(value: JSONValue) -> object:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze_plain(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze_plain(v) for v in value)
    return value
