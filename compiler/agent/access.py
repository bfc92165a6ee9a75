"""Who may ask the agent for what: bearer tokens from a private file (issue 12 §2).

The token file holds one token per line, optionally followed by the word
``secrets``; blank lines and lines starting with ``#`` are ignored::

    # read the config, secrets masked
    0f4c...e1
    # read the config with its secrets opened
    9a7b...44 secrets

A token is at least 32 characters of ``[A-Za-z0-9._~+/=-]`` (RFC 6750 §2.1's
``b64token``). The file must be a regular file owned by the agent's user and
readable by nobody else (mode 0600 or 0400): one that group or others can read
is refused, as ssh refuses such a private key. Comparison is constant-time
over every token (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import hmac
import os
import re
import stat
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from compiler.errors import LlmccError

_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{32,}")
_MAX_BYTES = 1 << 20


class Scope(Enum):
    READ = "read"
    SECRETS = "secrets"


@dataclass(frozen=True, slots=True)
class Tokens:
    """The tokens of one read of the file, each with its scopes. The repr shows no token."""

    entries: tuple[tuple[bytes, frozenset[Scope]], ...]

    def __repr__(self) -> str:
        return f"Tokens(<{len(self.entries)} tokens>)"

    def scopes(self, authorization: bytes | None) -> frozenset[Scope] | None:
        """The scopes of the bearer token in an ``Authorization`` header value; None if none matches."""
        if authorization is None:
            return None
        scheme, _, token = authorization.partition(b" ")
        if scheme.lower() != b"bearer":
            return None
        token = token.strip()
        found: frozenset[Scope] | None = None
        for known, scopes in self.entries:  # every entry compared: the time says nothing of which matched
            if hmac.compare_digest(known, token):
                found = scopes
        return found


def read_tokens(path: Path, *, allow_empty: bool = False) -> Tokens:
    """Read and check the token file (module docstring).

    ``allow_empty``: a file with no token gives an empty set (every request refused)
    instead of an error: the agent's re-read on SIGHUP, where emptying the file revokes all.

    Raises:
        LlmccError: unreadable, not private, not a regular file, empty, or a line that is not a token.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise LlmccError(f"{path}: cannot read the token file: {e.strerror or e}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):  # checked on the fd: os.fdopen refuses a directory with its own error
        os.close(fd)
        raise LlmccError(f"{path}: the token file is not a regular file")
    with os.fdopen(fd, "rb") as f:
        if st.st_mode & 0o077:
            raise LlmccError(
                f"{path}: the token file is readable or writable by group or others "
                f"(mode {stat.S_IMODE(st.st_mode):04o}); chmod 600 it"
            )
        if st.st_uid != os.geteuid():
            raise LlmccError(f"{path}: the token file belongs to another user")
        data = f.read(_MAX_BYTES + 1)
    if len(data) > _MAX_BYTES:
        raise LlmccError(f"{path}: the token file is over 1 MiB")
    entries = []
    for n, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        token, *words = line.split()
        if not _TOKEN.fullmatch(token):
            # the line is not shown: it may be a token with a typo
            raise LlmccError(f"{path}:{n}: not a token (32 or more characters of A-Z a-z 0-9 . _ ~ + / = -)")
        if words not in ([], ["secrets"]):
            raise LlmccError(f"{path}:{n}: after the token only the word 'secrets' may follow")
        scopes = frozenset({Scope.READ, Scope.SECRETS} if words else {Scope.READ})
        entries.append((token.encode(), scopes))
    if not entries and not allow_empty:
        raise LlmccError(f"{path}: the token file holds no token")
    return Tokens(tuple(entries))
