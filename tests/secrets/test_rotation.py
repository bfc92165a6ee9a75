"""Rotation metadata sidecars: rotated_at per secret, plaintext and reviewable."""

from __future__ import annotations

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
