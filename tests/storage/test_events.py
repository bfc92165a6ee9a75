"""CloudEvents 1.0 for new versions (publish --events)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from compiler.events import PUBLISHED, event_line, published_event

NOW = datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)


def _event(**kw: object) -> dict:
    args = {"project": "llm-platform", "target": "prod@acme", "version": 3, "digest": "sha256:ab", "commit": "c0ffee"}
    now = kw.pop("now", NOW)
    return published_event(**{**args, **kw}, now=now)  # type: ignore[arg-type]


def test_event_has_every_required_attribute() -> None:
    event = _event()
    assert event == {
        "specversion": "1.0",
        "id": event["id"],
        "source": "llmcc://llm-platform",
        "type": PUBLISHED,
        "subject": "prod@acme",
        "time": "2026-03-01T12:30:45Z",
        "datacontenttype": "application/json",
        "data": {"target": "prod@acme", "version": 3, "digest": "sha256:ab", "commit": "c0ffee"},
    }
    assert PUBLISHED == "dev.llmcc.bundle.published"


def test_id_is_deterministic_per_target_version_digest() -> None:
    assert _event()["id"] == _event(now=NOW + timedelta(days=1))["id"]
    assert (
        len({_event()["id"], _event(version=4)["id"], _event(digest="sha256:cd")["id"], _event(target="prod")["id"]})
        == 4
    )


def test_time_is_utc() -> None:
    local = NOW.astimezone(timezone(timedelta(hours=5)))
    assert _event(now=local)["time"] == "2026-03-01T12:30:45Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        _event(now=datetime(2026, 1, 1))  # noqa: DTZ001 - the naive datetime under test


def test_event_line_is_one_json_line() -> None:
    line = event_line(_event())
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert json.loads(line) == _event()
