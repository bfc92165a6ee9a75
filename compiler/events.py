"""CloudEvents 1.0 for published bundles (``llmcc publish --events FILE``), one JSON object per line.

Pure: the caller injects ``now`` and appends the lines (STYLE R2, R13).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from compiler.bundle.canonical import canonical_json
from compiler.jsontypes import JSONObject

PUBLISHED = "dev.llmcc.bundle.published"
# A commit compiled to the content of the latest version: no new version, nothing to
# reload; the signed pointer records the commit (issue 13 §4).
UNCHANGED = "dev.llmcc.bundle.unchanged"


def published_event(
    *,
    project: str,
    target: str,
    version: int,
    digest: str,
    commit: str | None,
    now: datetime,
    kind: str = PUBLISHED,
) -> JSONObject:
    """The CloudEvent announcing ``version`` of ``target`` (``kind`` :data:`PUBLISHED`), or that
    ``commit`` left it unchanged (:data:`UNCHANGED`).

    ``id`` is derived from target, version and digest (and for :data:`UNCHANGED`
    the commit), so a consumer can drop duplicates; ``time`` is ``now`` in UTC,
    RFC 3339 to the second with a ``Z``.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    seed = f"{target}\n{version}\n{digest}" + (f"\n{commit}" if kind != PUBLISHED else "")
    event_id = hashlib.sha256(seed.encode()).hexdigest()
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": f"llmcc://{project}",
        "type": kind,
        "subject": target,
        "time": now.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": {"target": target, "version": version, "digest": digest, "commit": commit},
    }


def event_line(event: JSONObject) -> bytes:
    """One event as a JSON Lines record (canonical JSON plus newline)."""
    return canonical_json(event) + b"\n"
