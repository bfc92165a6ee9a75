"""The time policies are checked at (``compiler.policy.check``): light, for commands that only key on it."""

from __future__ import annotations

import datetime as dt

from compiler.sources.base import SourceInfo


def policy_time(source: SourceInfo | None, *, wall: dt.datetime) -> dt.datetime:
    """The commit time of a clean source, else ``wall`` (aware datetimes)."""
    if source is not None and not source.dirty:
        try:
            return dt.datetime.fromisoformat(source.committed_at).astimezone(dt.UTC)
        except ValueError:
            return wall
    return wall
