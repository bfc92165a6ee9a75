"""The cache key of a target's result: the digest of its inputs and of what else decides it.

Besides the files (``compiler.incremental.inputs``, scope ``checks``), a result
depends on:

- the command: ``compile`` (bundle and findings) or ``validate`` (findings);
- the compiler version, the cache format and the Python version (messages,
  number formatting);
- the revision read (``--rev``; origins carry it) or the working tree;
- whether an identity is at hand (without one SOPS values are opaque and their
  schema checks are skipped) and the public age recipients of the identities
  (the compiler key must open each target's data key to seal);
- the policy time, when policies exist: waivers expire by date, so the day
  (UTC); a target that reads a SOPS file also has secret ages, counted from
  timestamps to the second, so the exact policy time (a clean checkout's
  commit time: stable; a dirty tree's wall clock: that target is rebuilt).

The bundle's ``metadata.source`` (commit, dirty) is not in the key: it is
written into the cached bytes at each hit (``compiler.incremental.entry``).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from compiler import __version__
from compiler.incremental.inputs import FileIds, InputDigests, is_shared, own_files
from compiler.incremental.store import FORMAT
from compiler.project import MANIFEST, Project, Target

Mode = Literal["compile", "validate"]


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyContext:
    """What besides the files decides a target's result."""

    mode: Mode
    rev: str | None
    opaque: bool
    recipients: Sequence[str]
    policy_now: datetime | None

    def text(self) -> str:
        python = f"{sys.version_info.major}.{sys.version_info.minor}"
        parts = [FORMAT, __version__, python, self.mode, self.rev or "", "opaque" if self.opaque else "identity"]
        return "\0".join([*parts, *sorted(self.recipients)])


def cache_keys(project: Project, files: FileIds, targets: Sequence[Target], context: KeyContext) -> dict[str, str]:
    """``{target: key}`` for the targets whose inputs are all known (the others are never cached)."""
    if MANIFEST not in files:
        return {}
    digests = InputDigests(project=project, files=files, scope="checks", context=context.text())
    policies = any(is_shared(p, "checks") and p.startswith("policies/") for p in files)
    out: dict[str, str] = {}
    for target in targets:
        digest = digests.target(target)
        if digest is None:
            continue
        when = _policy_time(project, files, target, context.policy_now) if policies else ""
        if when is None:
            continue
        out[target.name] = hashlib.sha256(f"{digest}\0{when}".encode()).hexdigest()
    return out


def _policy_time(project: Project, files: FileIds, target: Target, now: datetime | None) -> str | None:
    if now is None:
        return None  # checked at the wall clock of the moment: never the same twice
    reads_sops = any(p.endswith(".sops.yaml") and p in files for p in own_files(project, target, "checks"))
    return now.isoformat() if reads_sops else now.date().isoformat()
