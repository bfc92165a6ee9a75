"""The signing keys llmcc.yaml trusts (``signing.trusted``): each must be a readable Ed25519 public key.

A sibling of the reader-key check (issue 9 §1): ``verify`` and ``pull`` read
these files, so a path that names no file, or a file that is not a key, used to
pass ``validate`` and fail every reader later. ``validate`` now refuses it at
the entry's line in llmcc.yaml. An absolute path is outside the repository and
is not checked here (verify and pull still read it).
"""

from __future__ import annotations

from compiler.bundle.dsse import load_public_key
from compiler.diagnostics import Diagnostic
from compiler.errors import LlmccError
from compiler.project import Project
from compiler.sources.base import SourceTree


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
            load_public_key(tree.read(entry), where=entry)
        except LlmccError as e:
            message = f"signing.trusted: {e}; verify and pull would fail on it"
            out.append(Diagnostic(message=message, origin=origin))
    return out
