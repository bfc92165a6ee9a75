"""Real servers for tests, started on free loopback ports with bounded waits (STYLE R17).

A server that cannot be started here makes its tests skip with the reason,
unless ``LLMCC_REQUIRE_SERVICES=1`` (set by ``.ci/run``), where it fails them.

    service = start_registry(tmp_dir)        # or start_moto(tmp_dir)
    ...                                      # service.url, service.port
    service.stop()
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

from tools import loopback
from tools.loopback import Service, free_port, registry_binary, start_service

__all__ = ["Service", "free_port", "start_moto", "start_registry", "unavailable"]
REQUIRE_SERVICES = os.environ.get("LLMCC_REQUIRE_SERVICES") == "1"

_REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: llmcc-test-only
"""


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when CI requires every service."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (LLMCC_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


def start_registry(tmp: Path, *, tls: tuple[Path, Path] | None = None, auth: str = "") -> Service:
    """A docker-registry; ``tls`` = (certificate, key) PEM files; ``auth`` = its ``auth:`` section, indented."""
    binary = registry_binary()
    if binary is None:
        unavailable("docker-registry is not installed (apt-get install docker-registry)")

    def argv_for(port: int) -> list[str]:
        config = tmp / f"registry-{port}.yml"
        text = _REGISTRY_CONFIG.format(root=tmp / "data", port=port)
        if tls is not None:
            text += f"  tls:\n    certificate: {tls[0]}\n    key: {tls[1]}\n"
        if auth:
            text += f"auth:\n{auth}"
        config.write_text(text)
        return [binary, "serve", str(config)]

    try:
        return start_service("docker-registry", argv_for, ready_path="/v2/", log=tmp / "registry.log")
    except (RuntimeError, OSError) as e:
        unavailable(f"docker-registry failed to start: {e}")


def start_moto(tmp: Path) -> Service:
    """moto's S3 (tools/loopback.py), or the test skipped (failed in CI) when it cannot start."""
    try:
        return loopback.start_moto(tmp)
    except (RuntimeError, OSError) as e:
        unavailable(f"moto server failed to start: {e}")
