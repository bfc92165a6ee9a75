"""The ``secrets`` variable of rules: rotation metadata of each secret field, never its value. Pure.

``secrets`` maps ``module.path`` (``rotation_key``, e.g.
``inference-engine.providers.openai.api_key``) to::

    {"module": "inference-engine", "path": "providers.openai.api_key",
     "file": "environments/prod.secrets.sops.yaml",    # the SOPS file that sets it (null: none)
     "rotated_at": "2026-11-01T09:00:00Z",              # null when unknown
     "rotated_at_source": "rotation",                   # "rotation" | "sops" | null
     "rotate_every": "90d", "rotate_every_days": 90,    # the schema's x-rotate-every (null: none)
     "age_days": 21,                                    # whole days from rotated_at to now (null: unknown)
     "placeholder": false}                              # a value llmcc init left to replace (null: no identity)

``rotated_at`` is the entry ``llmcc secrets rotate`` recorded in the SOPS
file's rotation sidecar; without one, the SOPS file's own ``lastmodified``
(plaintext metadata, readable without an identity): the secret is at least
that old, so an age checked against it errs on the side of "too old".
"""

from __future__ import annotations

import datetime as dt
import re

from compiler.jsonpath import JsonPath, format_path
from compiler.jsontypes import JSONObject
from compiler.secrets.rotation import parse_rfc3339, rotation_key
from compiler.validate.secretwalk import rotate_every

__all__ = ["age_days", "period_days", "rotate_every", "secret_entry"]

_PERIOD = re.compile(r"^\s*([0-9]+)\s*([dw])\s*$", re.ASCII)
_DAYS = {"d": 1, "w": 7}


def period_days(text: str) -> int | None:
    """``"90d"`` -> 90, ``"2w"`` -> 14; None for anything else."""
    m = _PERIOD.match(text)
    return int(m.group(1)) * _DAYS[m.group(2)] if m else None


def age_days(rotated_at: str, now: dt.datetime) -> int | None:
    """Whole days from ``rotated_at`` (RFC 3339 UTC) to ``now``, floored; None when it is not in that form.

    The only way the policy time reaches a rule besides the waivers' day: the result cache keys a
    target that reads a SOPS file by these ages (``compiler.incremental.key``).
    """
    try:
        return (now - parse_rfc3339(rotated_at)).days
    except ValueError:
        return None


def secret_entry(
    module: str,
    path: JsonPath,
    *,
    file: str | None,
    rotated_at: str | None,
    source: str | None,
    every: str | None,
    now: dt.datetime,
    placeholder: bool | None = None,
) -> tuple[str, JSONObject]:
    """One entry of ``secrets``: its key and its metadata."""
    age = age_days(rotated_at, now) if rotated_at is not None else None
    if age is None and rotated_at is not None:
        rotated_at, source = None, None
    key = rotation_key(module, path)
    return key, {
        "module": module,
        "path": format_path(path)[1:].removeprefix("."),  # ``['a.b']`` for a top-level key that needs quotes
        "file": file,
        "rotated_at": rotated_at,
        "rotated_at_source": source,
        "rotate_every": every,
        "rotate_every_days": period_days(every) if every is not None else None,
        "age_days": age,
        "placeholder": placeholder,
    }
