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
  (UTC); a target that reads a SOPS file also has secret ages, the whole days
  from each secret's ``rotated_at`` to the policy time
  (``compiler.policy.secretmeta``, the only other way the time reaches a rule:
  CEL has no clock). Its ``rotated_at`` is an entry of a rotation sidecar or a
  SOPS file's ``sops.lastmodified``, both in files the key holds by blob id, so
  the age in days of every such timestamp the target's SOPS files and sidecars
  hold is keyed: the same key, the same ages, the same findings, on a clean
  checkout (commit time) and on a dirty tree (wall clock) alike. When those
  files cannot be read or parsed here, the exact policy time (never a hit).

The bundle's ``metadata.source`` (commit, dirty) is not in the key: it is
written into the cached bytes at each hit (``compiler.incremental.entry``).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from compiler import __version__
from compiler.errors import LlmccError
from compiler.incremental.inputs import FileIds, InputDigests, digest_entries, is_shared, own_files
from compiler.incremental.store import FORMAT
from compiler.project import MANIFEST, Project, Target

Read = Callable[[str], bytes]

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


def key_digests(project: Project, files: FileIds, context: KeyContext) -> InputDigests:
    """The input digests the cache keys and the carry keys are made of (``shared`` worked out once for both)."""
    return InputDigests(project=project, files=files, scope="checks", context=context.text())


def cache_keys(
    project: Project,
    files: FileIds,
    targets: Sequence[Target],
    context: KeyContext,
    read: Read | None = None,
    *,
    digests: InputDigests | None = None,
) -> dict[str, str]:
    """``{target: key}`` for the targets whose inputs are all known (the others are never cached).

    ``read`` gives the bytes of a repository file (the tree the ids were taken of): with it a target
    that reads a SOPS file is keyed by its secrets' ages in days, else by the exact policy time.
    ``digests``: ``key_digests(project, files, context)`` when the caller has them already.
    """
    if MANIFEST not in files:
        return {}
    if digests is None:
        digests = key_digests(project, files, context)
    policies = any(is_shared(p, "checks") and p.startswith("policies/") for p in files)
    out: dict[str, str] = {}
    clocks: dict[str, str | None] = {}  # SOPS file -> the ages of its timestamps (None: unreadable)
    for target in targets:
        digest = digests.target(target)
        if digest is None:
            continue
        when = _policy_time(project, files, target, context.policy_now, read, clocks) if policies else ""
        if when is None:
            continue
        out[target.name] = hashlib.sha256(f"{digest}\0{when}".encode()).hexdigest()
    return out


def _policy_time(
    project: Project,
    files: FileIds,
    target: Target,
    now: datetime | None,
    read: Read | None,
    clocks: dict[str, str | None],
) -> str | None:
    if now is None:
        return None  # checked at the wall clock of the moment: never the same twice
    sops = sorted(p for p in own_files(project, target, "checks") if p.endswith(".sops.yaml") and p in files)
    if not sops:
        return now.date().isoformat()
    if read is None:
        return now.isoformat()
    ages = []
    for path in sops:
        if path not in clocks:
            clocks[path] = _secret_clock(path, files, read, now)
        found = clocks[path]
        if found is None:
            return now.isoformat()
        ages.append(f"{path}\0{found}")
    return "\0".join([now.date().isoformat(), *ages])


def _secret_clock(path: str, files: FileIds, read: Read, now: datetime) -> str | None:
    """The age in days at ``now`` of every timestamp a secret of SOPS file ``path`` can be dated by:
    its ``sops.lastmodified`` and each entry of its rotation sidecar (``compiler.policy.check``);
    None when either file cannot be read or parsed (the target is then keyed by the exact time)."""
    from compiler.load.yaml import load_document
    from compiler.policy.secretmeta import age_days
    from compiler.secrets.rotation import read_rotation, rotation_path

    try:
        doc = load_document(read(path), path=path, layer="")
        meta = doc.value.get("sops") if isinstance(doc.value, dict) else None
        when = meta.get("lastmodified") if isinstance(meta, dict) else None
        stamps = [when] if isinstance(when, str) else []
        side = rotation_path(path)
        if side in files:
            stamps += read_rotation(read(side), path=side).values()
    except (LlmccError, OSError):
        return None
    return ",".join(f"{t}={age_days(t, now)}" for t in sorted(set(stamps)))


CARRY_SCHEME = "carry/1"


@dataclass(frozen=True, slots=True)
class CarryKeys:
    """The key of a target's previous result to re-render from (``compiler.incremental.carry``).

    It is the cache key with each plain layer file's blob id replaced by the digest of
    that layer's ``modules`` (``layer_digests``): every input but the layers' variables
    (and the positions of their text). Without policies only (a policy reads the
    whole target, which carrying does not rebuild); None then.
    """

    digests: InputDigests | None

    @classmethod
    def of(
        cls, project: Project, files: FileIds, context: KeyContext, *, digests: InputDigests | None = None
    ) -> CarryKeys:
        """``digests``: ``key_digests(project, files, context)`` when the caller has them already."""
        policies = any(is_shared(p, "checks") and p.startswith("policies/") for p in files)
        if MANIFEST not in files or policies:
            return cls(None)
        return cls(digests if digests is not None else key_digests(project, files, context))

    def key(self, target: Target, layer_digests: Mapping[str, str]) -> str | None:
        """The key, given the digest of each plain layer file ``target`` reads (by path); None: unknown."""
        if self.digests is None or self.digests.shared is None:
            return None
        entries: list[tuple[str, str | None]] = [("", self.digests.shared), ("", self.digests.context)]
        entries += [("", CARRY_SCHEME), ("target", target.name)]
        for path in own_files(self.digests.project, target, "checks"):
            blob = self.digests.file_id(path)
            if blob is None:
                return None
            entries.append((path, f"modules:{layer_digests[path]}" if path in layer_digests else blob))
        return digest_entries(entries)
