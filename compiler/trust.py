"""The signing keys llmcc.yaml trusts (``signing.trusted``): each must be a readable Ed25519 public key.

A sibling of the reader-key check (issue 9 §1): ``verify`` and ``pull`` read
these files, so a path that names no file, or a file that is not a key, used to
pass ``validate`` and fail every reader later. ``validate`` now refuses it at
the entry's line in llmcc.yaml. An absolute path is outside the repository and
is not checked here (verify and pull still read it).
"""

from __future__ import annotations

import base64
import binascii

from compiler.diagnostics import Diagnostic
from compiler.errors import LlmccError
from compiler.project import Project
from compiler.sources.base import SourceTree

# An Ed25519 SubjectPublicKeyInfo in DER is this prefix and the 32 key bytes (RFC 8410 §4, §10.1).
_ED25519_SPKI = bytes.fromhex("302a300506032b6570032100")


def plain_ed25519_pem(data: bytes) -> bool:
    """Whether ``data`` is one ``PUBLIC KEY`` PEM block (RFC 7468, LF lines) holding an Ed25519 public key.

    The form ``llmcc keys generate`` and OpenSSL write. Reading it needs no
    crypto library (issue 14 §1: ``validate`` starts without one); any other
    form is read by ``compiler.bundle.dsse.load_public_key``, which decides.
    """
    lines = data.strip(b"\n").split(b"\n")
    if len(lines) < 3 or lines[0] != b"-----BEGIN PUBLIC KEY-----" or lines[-1] != b"-----END PUBLIC KEY-----":
        return False
    try:
        der = base64.b64decode(b"".join(lines[1:-1]), validate=True)
    except binascii.Error:
        return False
    return len(der) == len(_ED25519_SPKI) + 32 and der.startswith(_ED25519_SPKI)


def check_trusted_keys(project: Project, tree: SourceTree) -> list[Diagnostic]:
    """One finding per ``signing.trusted`` entry that is missing, unreadable or not an Ed25519 public key."""
    out = []
    for i, entry in enumerate(project.manifest.signing.trusted):
        if entry.startswith("/"):
            continue
        origin = project.document.origin(("signing", "trusted", i))
        try:
            if not tree.exists(entry):
                raise LlmccError(f"{entry}: no such file")
            data = tree.read(entry)
            if not plain_ed25519_pem(data):
                from compiler.bundle.dsse import load_public_key  # any other form: the crypto library decides

                load_public_key(data, where=entry)
        except LlmccError as e:
            message = f"signing.trusted: {e}; verify and pull would fail on it"
            out.append(Diagnostic(message=message, origin=origin))
    return out
