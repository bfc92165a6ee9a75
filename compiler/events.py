"""CloudEvents 1.0 for published bundles (``llmcc publish --events FILE``), one JSON object per line.

Pure: the caller injects ``now`` and appends the lines (STYLE R2, R13).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from compiler.bundle.canonical import canonical_json
from compiler.jsontypes import JSONObject

PUBLISHED = "dev.llmcc.bundle.published"


def published_event(
    *, project: str, target: str, version: int, digest: str, commit: str | None, now: datetime
) -> JSONObject:
    """The CloudEvent announcing ``version`` of ``target``.

    ``id`` is derived from target, version and digest, so a consumer can drop
    duplicates; ``time`` is ``now`` in UTC, RFC 3339 to the second with a ``Z``.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    event_id = hashlib.sha256(f"{target}\n{version}\n{digest}".encode()).hexdigest()
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": f"llmcc://{project}",
        "type": PUBLISHED,
        "subject": target,
        "time": now.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": {"target": target, "version": version, "digest": digest, "commit": commit},
    }


def event_line(event: JSONObject) -> bytes:
    """One event as a JSON Lines record (canonical JSON plus newline)."""
    return canonical_json(event) + b"\n"
