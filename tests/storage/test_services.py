"""tests/services.py: a server that cannot start skips locally and fails in CI."""

from __future__ import annotations

import pytest

from tests import services


def test_missing_service_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "REQUIRE_SERVICES", False)
    with pytest.raises(pytest.skip.Exception, match="no registry here"):
        services.unavailable("no registry here")


def test_missing_service_fails_when_ci_requires_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "REQUIRE_SERVICES", True)
    with pytest.raises(pytest.fail.Exception, match=r"no registry here \(LLMCC_REQUIRE_SERVICES=1\)"):
        services.unavailable("no registry here")


def test_free_port_is_on_loopback() -> None:
    assert 0 < services.free_port() < 65536
