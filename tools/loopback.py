"""Servers on loopback for the repository's tools, benchmarks and tests: moto's S3, a registry.

``start_service`` starts a server on a free port and waits, bounded, until it
answers; ``start_moto`` is moto's S3 behind one lock (below); ``registry_binary``
finds Distribution's ``docker-registry``. tools/local-stores.py, bench/client.py and
the suite's tests/services.py (which skips or fails a test when one cannot start)
share them; nothing here imports the test suite.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT = 30.0
ROOT = Path(__file__).resolve().parent.parent

# moto's S3 checks If-None-Match and then stores the object without a lock, so two
# of its request threads can both "win" a create-only PUT (real S3 cannot). We run
# the same moto server app behind one lock, making each request atomic as on S3.
MOTO_SERIALISED = """
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
        if wait_ready(service.url + ready_path, service.process, timeout):
            return service
        service.stop()
        last = service.log_tail()
    raise RuntimeError(f"{name} did not start; log tail:\n{last}")


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float, cafile: Path | None = None) -> bool:
    """Whether ``url`` answers (any HTTP status) within ``timeout`` seconds; False once ``process`` ended."""
    context = ssl.create_default_context(cafile=str(cafile)) if cafile else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2, context=context):  # noqa: S310 - a loopback URL
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
    unpacked = ROOT / ".cache/services/usr/bin/docker-registry"
    for path in ("/usr/bin/docker-registry", str(unpacked)):
        if os.access(path, os.X_OK):
            return path
    return None


def start_moto(tmp: Path) -> Service:
    """moto's S3 server (``MOTO_SERIALISED``) on a free port, its log in ``tmp``.

    Raises:
        RuntimeError: moto[server] is not installed, or the server did not start.
    """
    try:
        import moto.server  # noqa: F401
        import werkzeug  # noqa: F401
    except ImportError as e:
        raise RuntimeError(f"moto[server] is not installed: {e}") from e
    return start_service(
        "moto",
        lambda port: [sys.executable, "-c", MOTO_SERIALISED, "127.0.0.1", str(port)],
        ready_path="/",
        log=tmp / "moto.log",
    )
