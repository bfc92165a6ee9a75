"""Sibling of the delta size bombs: JSON nested past the interpreter's recursion limit, from a store.

``json`` recurses per level, so ``[[[[...`` 100,000 deep raised RecursionError
through every reader of untrusted JSON: an internal error (exit 70) instead of a
refusal naming the object. Each reader now refuses it as the bad object it is.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from compiler.bundle.canonical import loads_canonical, loads_strict
from compiler.bundle.dsse import Keyring
from compiler.errors import LlmccError, StorageError, VerificationError
from compiler.freshness import verify_pointer
from compiler.storage.base import CorruptObjectError
from compiler.storage.file import FileStore
from compiler.storage.oci import OciStore
from compiler.storage.seen import SeenFile
from compiler.verify import verify_chain

DEEP = b"[" * 100_000 + b"]" * 100_000


def test_strict_json_refuses_deep_nesting_as_a_value_error() -> None:
    for parse in (loads_strict, loads_canonical):
        with pytest.raises(ValueError, match="nested too deep"):
            parse(DEEP)


def test_a_deep_envelope_or_pointer_is_a_verification_failure(tmp_path: Path) -> None:
    with pytest.raises(VerificationError, match="prod version 1: envelope is not valid JSON: nested too deep"):
        verify_chain("prod", [(1, DEEP)], Keyring())
    with pytest.raises(VerificationError, match="prod pointer: envelope is not valid JSON: nested too deep"):
        verify_pointer(DEEP[:60_000], "prod", Keyring())


def test_a_deep_reader_state_is_refused(tmp_path: Path) -> None:
    marks = SeenFile(tmp_path / "state", "file:///srv/store")
    marks.advance({})
    marks.path.write_bytes(DEEP)
    with pytest.raises(LlmccError, match="not a valid llmcc reader state"):
        marks.load()


class _DeepRegistry(BaseHTTPRequestHandler):
    """Answers every tag list and manifest with JSON nested 100,000 deep."""

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Docker-Content-Digest", "sha256:" + hashlib.sha256(DEEP).hexdigest())
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(DEEP)))
        self.end_headers()
        self.wfile.write(DEEP)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def deep_registry() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DeepRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_registry_sending_deep_json_is_refused(deep_registry: str, tmp_path: Path) -> None:
    store = OciStore(deep_registry, "llmcc/bundles", lock_dir=tmp_path)
    with pytest.raises(StorageError, match="registry sent a bad tag list"):
        store.targets()
    with pytest.raises(CorruptObjectError, match="manifest is not JSON"):
        store.read("prod", 1)
    with pytest.raises(CorruptObjectError, match="manifest is not JSON"):
        store.read_delta("prod", 2)


def test_a_file_store_delta_is_read_bounded(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    store = FileStore(tmp_path / "store")
    assert store.read_delta("prod", 2) is None
    assert store.create_delta("prod", 2, b"{}")
    assert not store.create_delta("prod", 2, b"{} ")  # create-only
    assert store.read_delta("prod", 2) == b"{}"
    (tmp_path / "store" / ".llmcc-deltas" / "prod" / "00000003.delta.json").write_bytes(b" " * (1024 * 1024 + 1))
    with pytest.raises(CorruptObjectError, match="prod version 3 delta: is 1048577 bytes"):
        store.read_delta("prod", 3)
    assert store.targets() == []  # deltas are not a target
