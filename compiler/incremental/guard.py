"""The secrets guard's findings per file, kept in the result cache (issue 14 §2: ``hook validate`` scans one file).

``validate`` scans every file git can take for private keys, credentials and
decrypted bundles (``compiler.plaintext``, rules 3-4). A file's findings
depend on its path and bytes (named by its git blob id), on the detectors'
patterns, on the module names and on the schemas (a decrypted bundle is one
whose ``x-secret`` fields hold plaintext). All of these but the file form the
``context``; one cache entry, keyed by it, maps each scanned path to its blob
id and findings, so a run rescans only the files whose blob id changed. The
``secrets_guard.allow`` list is applied after, to cached and fresh findings
alike, so it is not part of the key.

The entry goes through ``ResultCache`` (digest-checked, ignored when damaged
or foreign). A finding names a kind, a file:line:column and a schema path,
never the matched value (``compiler.validate.credentials``), so the entry
holds no secret. An entry of any other shape is a miss: every file is scanned.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from functools import cache

from compiler.diagnostics import Diagnostic
from compiler.incremental.entry import EntryError, diagnostic_from_json, diagnostic_to_json
from compiler.incremental.store import FORMAT, ResultCache
from compiler.jsontypes import JSONObject, JSONValue

SCHEME = "guard/1"  # bump when what a finding is computed from changes beyond the context below


@cache
def patterns_digest() -> str:
    """SHA-256 over every detector's kind, family, pattern text and flags (without compiling them)."""
    from compiler.validate._credential_patterns import PATTERNS
    from compiler.validate.credentials import _OWN

    h = hashlib.sha256()
    for d in _OWN:
        for p in d.patterns:
            h.update(f"{d.kind}\0{d.family}\0{p.pattern}\0{int(p.flags)}\n".encode())
    for kind, family, pats in PATTERNS:
        for text, flags in pats:
            h.update(f"{kind}\0{family}\0{text}\0{flags}\n".encode())
    return h.hexdigest()


def blob_id(data: bytes) -> str:
    """The git blob id of ``data`` (``git hash-object``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def context_key(modules: Sequence[str], schemas: Iterable[tuple[str, bytes]]) -> str:
    """The cache key of the findings index: format, patterns, module names and the bytes of ``schemas/``."""
    h = hashlib.sha256(f"{FORMAT}\0{SCHEME}\0{patterns_digest()}\0".encode())
    h.update("\0".join(modules).encode() + b"\n")
    for path, data in sorted(schemas):
        h.update(f"{path}\0{blob_id(data)}\n".encode())
    return h.hexdigest()


class GuardFindings:
    """The findings index of one context: ``get`` what a file's blob had, ``put`` what it has; ``save`` once."""

    def __init__(self, cache: ResultCache, key: str) -> None:
        self.cache = cache
        self.key = key
        self._old = _read(cache.get(key))
        self._new: dict[str, JSONValue] = {}
        self.scanned = 0  # files scanned this run (not found in the index)

    def get(self, path: str, blob: str) -> list[Diagnostic] | None:
        """The findings of ``path`` at ``blob`` recorded earlier; None when not recorded (then scan it)."""
        entry = self._old.get(path)
        if entry is None or entry[0] != blob:
            return None
        try:
            found = [diagnostic_from_json(d) for d in entry[1]]
        except EntryError:
            return None
        self._new[path] = [blob, entry[1]]
        return found

    def put(self, path: str, blob: str, found: Sequence[Diagnostic]) -> None:
        self.scanned += 1
        self._new[path] = [blob, [diagnostic_to_json(d) for d in found]]

    def save(self) -> None:
        """Store the index of the files seen this run when it differs from the one read."""
        if self.scanned or set(self._new) != set(self._old):
            payload: JSONObject = {"files": self._new}
            self.cache.put(self.key, payload)


def _read(payload: JSONObject | None) -> dict[str, tuple[str, list[JSONValue]]]:
    files = payload.get("files") if payload is not None else None
    if not isinstance(files, dict):
        return {}
    out: dict[str, tuple[str, list[JSONValue]]] = {}
    for path, entry in files.items():
        if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str) and isinstance(entry[1], list):
            out[path] = (entry[0], entry[1])
    return out
