"""Rotation metadata of secrets: when each secret was last rotated (docs/bundle-format.md). Pure.

``llmcc secrets rotate`` records ``rotated_at`` in a plaintext sidecar next to
the SOPS file it changed: ``environments/prod.secrets.sops.yaml`` has
``environments/prod.secrets.rotation.yaml``. Plaintext on purpose: it holds
no values, a reviewer sees the timestamp in the pull request without an
identity, and policies read it without decrypting anything. The git history
of the SOPS file backs it. Format::

    # Rotation metadata of prod.secrets.sops.yaml, written by `llmcc secrets rotate`.
    rotated_at:
      "inference-engine.providers.openai.api_key": "2026-11-22T14:00:00Z"

Keys are ``module.dotted.path`` (list items as ``[0]``), values RFC 3339 UTC.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import PurePosixPath

from compiler.errors import InputError
from compiler.jsonpath import JsonPath, format_path
from compiler.load.yaml import load_document

_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def rotation_path(sops_path: str) -> str:
    """The sidecar of a SOPS file: ``x.secrets.sops.yaml`` -> ``x.secrets.rotation.yaml``."""
    if sops_path.endswith(".sops.yaml"):
        return sops_path[: -len(".sops.yaml")] + ".rotation.yaml"
    return sops_path + ".rotation.yaml"


def rotation_key(module: str, path: JsonPath) -> str:
    """``("providers", 0, "key")`` in module ``m`` -> ``m.providers[0].key``.

    The path part is ``format_path`` without its ``$``, so a key that is not a
    plain word is quoted (``m.labels['a.b']``) and never collides with a nested
    one (``m.labels.a.b``); ``explain`` and ``secrets rotate`` read it back.
    """
    return module + format_path(path)[1:]


def read_rotation(data: bytes, *, path: str) -> dict[str, str]:
    """``{module.path: rotated_at}`` from a sidecar's bytes.

    Raises:
        InputError: bad YAML or a malformed entry, at path:line.
    """
    doc = load_document(data, path=path, layer="rotation")
    value = doc.value
    if value is None:
        return {}
    if not isinstance(value, dict) or set(value) - {"rotated_at"}:
        raise InputError(f"{path}:1:1: a rotation file holds one mapping, rotated_at")
    entries = value.get("rotated_at") or {}
    if not isinstance(entries, dict):
        raise InputError(f"{doc.origin(('rotated_at',)).location()}: rotated_at must be a mapping")
    out: dict[str, str] = {}
    for key, when in entries.items():
        if not isinstance(when, str) or not _TIME.fullmatch(when):
            where = doc.origin(("rotated_at", key)).location()
            raise InputError(f"{where}: {key}: rotated_at must be RFC 3339 UTC (2026-01-31T12:00:00Z)")
        out[key] = when
    return out


def dump_rotation(entries: Mapping[str, str], *, sops_path: str) -> bytes:
    """Deterministic sidecar text, keys sorted, every scalar JSON-quoted (valid YAML)."""
    name = PurePosixPath(sops_path).name
    lines = [f"# Rotation metadata of {name}, written by `llmcc secrets rotate`. No secret values here."]
    lines.append("rotated_at:")
    lines += [f"  {json.dumps(k, ensure_ascii=False)}: {json.dumps(entries[k])}" for k in sorted(entries)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def record_rotation(data: bytes | None, *, sops_path: str, key: str, now: datetime) -> bytes:
    """The sidecar with ``key`` rotated at ``now`` (``data`` is the old sidecar, or None)."""
    side = rotation_path(sops_path)
    entries = read_rotation(data, path=side) if data is not None else {}
    entries[key] = rfc3339(now)
    return dump_rotation(entries, sops_path=sops_path)


def rfc3339(now: datetime) -> str:
    """``2026-11-22T14:00:00Z``: UTC, whole seconds. ``now`` must be timezone-aware."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_rfc3339(text: str) -> bool:
    """Whether ``text`` is in the form ``rfc3339`` writes (what a sidecar accepts)."""
    return _TIME.fullmatch(text) is not None


def parse_rfc3339(text: str) -> datetime:
    """The inverse of ``rfc3339``, as an aware datetime (for policies).

    Raises:
        ValueError: not in that form.
    """
    if not _TIME.fullmatch(text):
        raise ValueError(f"{text!r} is not RFC 3339 UTC (2026-01-31T12:00:00Z)")
    # ASCII digits only (_TIME): the same dates as strptime (tests/secrets), without its first call's ~3 ms
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
