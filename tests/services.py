"""Real servers for tests, started on free loopback ports with bounded waits (STYLE R17).

A server that cannot be started here makes its tests skip with the reason,
unless ``LLMCC_REQUIRE_SERVICES=1`` (set by ``.ci/run``), where it fails them.

    service = start_registry(tmp_dir)        # or start_moto(tmp_dir)
    ...                                      # service.url, service.port
    service.stop()
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

REQUIRE_SERVICES = os.environ.get("LLMCC_REQUIRE_SERVICES") == "1"
START_TIMEOUT = 30.0

# moto's S3 checks If-None-Match and then stores the object without a lock, so two
# of its request threads can both "win" a create-only PUT (real S3 cannot). We run
# the same moto server app behind one lock, making each request atomic as on S3.
_MOTO_SERIALISED = """
import os, sys, threading
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
host, port = sys.argv[1], int(sys.argv[2])
os.environ["MOTO_PORT"] = str(port)
app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()
def serialised(environ, start_response):
    with lock:
        return list(app(environ, start_response))
run_simple(host, port, serialised, threaded=True, request_handler=MotoRequestHandler)
"""

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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Service:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-2000:]
        return ""


def start_service(
    name: str, argv_for: Callable[[int], list[str]], *, ready_path: str, log: Path, timeout: float = START_TIMEOUT
) -> Service:
    """Start ``argv_for(port)`` until ``ready_path`` answers; retried on another port if it dies."""
    last = ""
    for _ in range(3):
        port = free_port()
        argv = argv_for(port)
        with open(log, "ab") as out:
            process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        service = Service(name, port, process, log)
        if _wait_ready(service, ready_path, timeout):
            return service
        service.stop()
        last = service.log_tail()
    raise RuntimeError(f"{name} did not start; log tail:\n{last}")


def _wait_ready(service: Service, path: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(service.url + path, timeout=2):  # noqa: S310 - loopback http
                return True
        except urllib.error.HTTPError:
            return True  # it answered
        except OSError:
            time.sleep(0.05)
    return False


def registry_binary() -> str | None:
    """Debian's ``docker-registry`` (CNCF distribution), or ``registry`` from upstream."""
    for name in ("docker-registry", "registry"):
        found = shutil.which(name)
        if found:
            return found
    # tools/install-services.sh unpacks the Debian package here when it cannot install as root.
    unpacked = Path(__file__).resolve().parent.parent / ".cache/services/usr/bin/docker-registry"
    for path in ("/usr/bin/docker-registry", str(unpacked)):
        if os.access(path, os.X_OK):
            return path
    return None


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
    try:
        import moto.server  # noqa: F401
        import werkzeug  # noqa: F401
    except ImportError as e:
        unavailable(f"moto[server] is not installed: {e}")
    try:
        return start_service(
            "moto",
            lambda port: [sys.executable, "-c", _MOTO_SERIALISED, "127.0.0.1", str(port)],
            ready_path="/",
            log=tmp / "moto.log",
        )
    except (RuntimeError, OSError) as e:
        unavailable(f"moto server failed to start: {e}")
