"""Rotation metadata sidecars: rotated_at per secret, plaintext and reviewable."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest

from compiler.errors import InputError
from compiler.secrets.rotation import (
    dump_rotation,
    is_rfc3339,
    parse_rfc3339,
    read_rotation,
    record_rotation,
    rfc3339,
    rotation_key,
    rotation_path,
)

T1 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_rotation_path() -> None:
    assert rotation_path("environments/prod.secrets.sops.yaml") == "environments/prod.secrets.rotation.yaml"
    assert rotation_path("x.yaml") == "x.yaml.rotation.yaml"


def test_rotation_key() -> None:
    assert rotation_key("inference-engine", ("providers", 0, "api_key")) == "inference-engine.providers[0].api_key"
    # a dotted key is quoted: it never collides with the nested keys it looks like (issue 10 §5)
    assert rotation_key("m", ("labels", "a.b")) == "m.labels['a.b']"
    assert rotation_key("m", ("labels", "a", "b")) == "m.labels.a.b"
    assert rotation_key("m", ("pages", "404")) == "m.pages['404']"


def test_record_and_read() -> None:
    sops = "environments/prod.secrets.sops.yaml"
    first = record_rotation(None, sops_path=sops, key="m.b", now=T1)
    second = record_rotation(first, sops_path=sops, key="m.a", now=T1 + timedelta(days=1))
    third = record_rotation(second, sops_path=sops, key="m.b", now=T1 + timedelta(days=2))
    assert read_rotation(third, path="r.yaml") == {
        "m.a": "2026-01-03T03:04:05Z",
        "m.b": "2026-01-04T03:04:05Z",
    }
    assert third.decode().splitlines() == [
        "# Rotation metadata of prod.secrets.sops.yaml, written by `llmcc secrets rotate`. No secret values here.",
        "rotated_at:",
        '  "m.a": "2026-01-03T03:04:05Z"',
        '  "m.b": "2026-01-04T03:04:05Z"',
    ]
    assert dump_rotation({}, sops_path=sops).decode().endswith("rotated_at:\n")
    assert read_rotation(dump_rotation({}, sops_path=sops), path="r.yaml") == {}
    assert read_rotation(b"", path="r.yaml") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- 1\n", "holds one mapping"),
        ("other: 1\n", "holds one mapping"),
        ("rotated_at: [1]\n", "rotated_at must be a mapping"),
        ('rotated_at:\n  m.a: "yesterday"\n', r"r\.yaml:2:3: m\.a: rotated_at must be RFC 3339"),
        ("rotated_at:\n  m.a: 2026-01-01\n", "RFC 3339"),
    ],
)
def test_read_refuses_malformed(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_rotation(text.encode(), path="r.yaml")


def test_rfc3339() -> None:
    assert rfc3339(datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))) == "2026-01-01T00:00:00Z"
    assert parse_rfc3339("2026-01-01T00:00:00Z") == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        rfc3339(datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_rfc3339("2026-01-01")
    fullwidth = "\uff12\uff10\uff12\uff16-01-01T00:00:00Z"  # digits of another script: strptime takes them
    assert not is_rfc3339(fullwidth)
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_rfc3339(fullwidth)


def _strptime(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _parsed(text: str) -> datetime | None:
    try:
        return parse_rfc3339(text)
    except ValueError:
        return None


def test_parse_rfc3339_takes_the_dates_strptime_takes() -> None:
    # parse_rfc3339 reads ASCII with fromisoformat (strptime's first call costs ~3 ms of start-up, issue 14 §1):
    # the same dates, the same refusals, at every field's edges (day 29-31 of February, hour 24, second 60)
    fields = [(m, d) for m in (0, 1, 2, 12, 13, 99) for d in (0, 1, 28, 29, 30, 31, 32, 99)]
    times = [(0, 0, 0), (23, 59, 59), (24, 0, 0), (12, 60, 0), (12, 0, 60), (12, 0, 61), (99, 99, 99)]
    for year in ("0000", "0001", "2024", "2026", "9999"):
        for (month, day), (hour, minute, second) in itertools.product(fields, times):
            text = f"{year}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}Z"
            assert _parsed(text) == _strptime(text), text
    arabic = "٢٠٢٦-01-01T00:00:00Z"  # other scripts' digits, which strptime takes, are refused
    assert _strptime(arabic) == datetime(2026, 1, 1, tzinfo=UTC)
    assert _parsed(arabic) is None
    assert parse_rfc3339("2026-02-28T23:59:59Z").tzinfo is UTC
