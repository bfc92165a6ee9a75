"""One verified version of one target, as the agent serves it (issue 12 §1).

A :class:`Snapshot` is immutable and built once per swapped-in version by the
source: the masked config (every secret replaced by :data:`MASK`), serialised
once, and its ETag. Secrets are opened only when a request with the secrets
scope asks, through the version's own opener, and the result is kept in
memory with the snapshot (never on disk).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from compiler.jsontypes import JSONObject, JSONValue
from compiler.masking import SECRET_TEXT

MASK = SECRET_TEXT  # what a secret shows as in the masked view: the one masker's placeholder


def encode(value: JSONValue) -> bytes:
    """The JSON body of a response: compact, sorted keys, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Snapshot:
    """A verified version: ``masked`` holds :data:`MASK` for every secret; ``open_all`` opens them (may raise)."""

    target: str
    version: int
    digest: str
    masked: JSONObject
    open_all: Callable[[], JSONObject] = field(repr=False)
    masked_body: bytes = field(init=False, repr=False)
    _opened: list[JSONObject] = field(init=False, repr=False, default_factory=list)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        object.__setattr__(self, "masked_body", encode(self.masked))

    def etag(self, *, secrets: bool) -> str:
        """A strong ETag (RFC 9110 §8.8.3) per version and representation (masked or opened)."""
        return f'"{self.digest.removeprefix("sha256:")}{"-s" if secrets else "-m"}"'

    def opened(self) -> JSONObject:
        """The modules with their secrets opened, once per snapshot.

        Raises:
            SecretsError: the data key cannot be unwrapped or a value fails to open.
        """
        with self._lock:
            if not self._opened:
                self._opened.append(self.open_all())
            return self._opened[0]
