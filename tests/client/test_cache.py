"""The last known good on disk (issue 11 §4): start from it when the store is down, never trust it unverified.

Includes a real SIGKILL during cache writes and several processes writing one cache directory.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from compiler.client import ConfigClient
from compiler.client.cache import CachedVersion, LastGoodCache, write_atomic
from compiler.errors import LlmccError, StorageError
from tests.client.conftest import TRUSTED, Platform
from tests.conftest import DEMO_IDENTITY, REPO_ROOT
from tests.services import free_port

TEMPERATURE = "inference-engine.model.temperature"


def _cache_file(cache: Path) -> Path:
    (found,) = cache.glob("*.prod.lastgood.json")
    return found


@pytest.fixture
def warm_cache(platform: Platform, tmp_path: Path) -> tuple[Path, Path]:
    """(store, cache dir) after a client accepted version 2 of prod."""
    store = platform.copy_store(2, tmp_path / "store")
    cache = tmp_path / "cache"
    client = ConfigClient(f"file://{store}", "prod", [TRUSTED], identity=DEMO_IDENTITY, cache_dir=cache)
    assert client.refresh() is True
    return store, cache


def test_the_cache_holds_only_the_signed_envelope(platform: Platform, warm_cache: tuple[Path, Path]) -> None:
    store, cache = warm_cache
    path = _cache_file(cache)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    body = json.loads(path.read_bytes())
    assert body["envelope"].encode() == (store / "prod" / "00000002.dsse.json").read_bytes()
    assert set(body) == {"format", "store", "target", "version", "digest", "verified_at", "envelope"}
    for file in cache.rglob("*"):
        if file.is_file():
            assert platform.canary.encode() not in file.read_bytes()
    assert not [p for p in cache.rglob("*.tmp")]


def test_without_a_cache_a_store_that_is_down_fails_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    client = ConfigClient(_down_s3(monkeypatch), "prod", [TRUSTED], cache_dir=tmp_path / "s3-cache")
    with pytest.raises(StorageError, match="cannot read prod pointer: Could not connect"):
        client.start()  # nothing to serve: the service learns it at start
    assert client.metrics().fetch_errors == 1
    with pytest.raises(LlmccError, match="no verified version yet"):
        client.get(TEMPERATURE)


def _down_s3(monkeypatch: pytest.MonkeyPatch) -> str:
    for k, v in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    return "s3://down/bundles"


def test_start_keeps_the_cached_version_when_the_first_refresh_fails(
    warm_cache: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    store, cache = warm_cache
    (store / "prod" / "latest.dsse.json").write_text("{}")  # the store now serves a junk pointer
    later = datetime.now(UTC) + timedelta(hours=2)
    client = ConfigClient(
        f"file://{store}", "prod", [TRUSTED], cache_dir=cache, max_age=3600, poll_interval=3600, clock=lambda: later
    )
    with client:
        assert client.version == 2
        status = client.status
        assert status.source == "cache"
        assert status.stale is True  # verified two hours ago, max_age one hour
        assert status.age is not None
        assert status.age > 3600
        assert status.last_error is not None
        assert client.metrics().next_poll_in is not None
    assert client.metrics().next_poll_in is None


def test_a_tampered_cache_is_refused_and_the_store_used(
    warm_cache: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    store, cache = warm_cache
    path = _cache_file(cache)
    body = json.loads(path.read_bytes())
    body["envelope"] = body["envelope"].replace('"sig":"', '"sig":"AAAA', 1)
    path.write_text(json.dumps(body))
    client = ConfigClient(f"file://{store}", "prod", [TRUSTED], cache_dir=cache)
    assert client.version is None
    assert client.metrics().refusals == {"cache": 1}
    assert client.status.last_error is not None
    assert client.refresh() is True  # the store still verifies
    assert client.version == 2
    assert json.loads(path.read_bytes())["envelope"] == (store / "prod" / "00000002.dsse.json").read_text()


def test_a_cache_file_nested_too_deep_is_refused_and_the_store_used(warm_cache: tuple[Path, Path]) -> None:
    # Sibling of the result cache's fault (attacker): json's RecursionError is not a ValueError.
    store, cache = warm_cache
    _cache_file(cache).write_bytes(b"[" * 100_000 + b"]" * 100_000)
    client = ConfigClient(f"file://{store}", "prod", [TRUSTED], cache_dir=cache)
    assert client.version is None
    assert client.metrics().refusals == {"cache": 1}
    assert client.refresh() is True
    assert client.version == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.update(digest="sha256:" + "0" * 64), "not sha256:0000"),
        (lambda b: b.update(version=3), "bundle says version 2, but it is stored as 3"),
        (lambda b: b.update(target="staging"), "not a client cache of prod"),
        (lambda b: b.update(verified_at="yesterday"), "not a client cache of prod"),
        (lambda b: b.pop("envelope"), "not a client cache of prod"),
        (lambda b: b.update(version="2"), "not a client cache of prod"),
    ],
)
def test_a_cache_that_lies_is_refused(warm_cache: tuple[Path, Path], change: object, message: str) -> None:
    store, cache = warm_cache
    path = _cache_file(cache)
    body = json.loads(path.read_bytes())
    change(body)  # type: ignore[operator]
    path.write_text(json.dumps(body))
    client = ConfigClient(f"file://{store}", "prod", [TRUSTED], cache_dir=cache)
    assert client.version is None
    assert message.replace("not sha256:0000", "not sha256:" + "0" * 64) in (client.status.last_error or "") or (
        message in (client.status.last_error or "")
    )


def test_a_confirmation_time_in_the_future_is_stale(warm_cache: tuple[Path, Path]) -> None:
    """A cache written under a clock years ahead (then fixed by NTP): its version is not fresh for years."""
    store, cache = warm_cache
    path = _cache_file(cache)
    body = json.loads(path.read_bytes())
    body["verified_at"] = "2099-01-01T00:00:00Z"
    path.write_text(json.dumps(body))
    shutil.rmtree(store)  # the store is down: only the cache speaks
    client = ConfigClient(f"file://{store}", "prod", [TRUSTED], cache_dir=cache, max_age=3600)
    assert (client.version, client.status.source) == (2, "cache")
    assert client.status.stale is True


def test_an_older_cache_than_the_mark_is_refused(platform: Platform, warm_cache: tuple[Path, Path]) -> None:
    store, cache = warm_cache
    path = _cache_file(cache)
    old = json.loads(path.read_bytes())
    client = ConfigClient(f"file://{store}", "prod", [TRUSTED], cache_dir=cache)
    shutil.rmtree(store)
    shutil.copytree(platform.stores[3], store)
    assert client.refresh() is True
    path.write_text(json.dumps(old))  # the version-2 cache put back: the mark says 3
    restarted = ConfigClient(f"file://{store}", "prod", [TRUSTED], cache_dir=cache)
    assert restarted.version is None
    assert "is not version 3 this client accepted last (rollback?)" in (restarted.status.last_error or "")


def test_an_unsafe_cache_dir_is_refused(tmp_path: Path) -> None:
    cache = tmp_path / "shared"
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    with pytest.raises(LlmccError, match="writable by group or others"):
        ConfigClient(f"file://{tmp_path}", "prod", [TRUSTED], cache_dir=cache)


def test_a_symlinked_or_unreadable_cache_file_is_refused(warm_cache: tuple[Path, Path], tmp_path: Path) -> None:
    store, cache = warm_cache
    path = _cache_file(cache)
    target = tmp_path / "elsewhere.json"
    path.rename(target)
    path.symlink_to(target)
    client = ConfigClient(f"file://{store}", "prod", [TRUSTED], cache_dir=cache)
    assert "it is a symlink" in (client.status.last_error or "")
    path.unlink()
    os.mkfifo(path)
    client = ConfigClient(f"file://{store}", "prod", [TRUSTED], cache_dir=cache)
    assert "not a regular file" in (client.status.last_error or "")
    path.unlink()
    path.write_bytes(b"not json")
    client = ConfigClient(f"file://{store}", "prod", [TRUSTED], cache_dir=cache)
    assert "not a client cache of prod" in (client.status.last_error or "")


def test_a_cache_write_that_fails_does_not_stop_serving(
    platform: Platform, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = platform.copy_store(1, tmp_path / "store")
    cache = tmp_path / "cache"
    client = ConfigClient(f"file://{store}", "prod", [TRUSTED], cache_dir=cache)
    cache.chmod(0o777)  # unsafe now: the cache write refuses; the mark (cache/seen) is still safe
    try:
        assert client.refresh() is True
    finally:
        cache.chmod(0o700)
    assert client.version == 1
    assert "the client cache directory is another user's or writable by group or others" in caplog.text
    (cache / "seen").chmod(0o777)  # the mark cannot be trusted: no swap without it (fail closed)
    shutil.rmtree(store)
    shutil.copytree(platform.stores[2], store)
    with pytest.raises(LlmccError, match="writable by group or others"):
        client.refresh()
    assert client.version == 1


# --- crashes and concurrent writers ---------------------------------------------------------

_WRITER = """
import sys
from pathlib import Path
from compiler.client.cache import write_atomic
path, a, b = Path(sys.argv[1]), Path(sys.argv[2]).read_bytes(), Path(sys.argv[3]).read_bytes()
Path(sys.argv[4]).touch()
while True:
    write_atomic(path, a)
    write_atomic(path, b)
"""


def test_sigkill_during_cache_writes_leaves_old_or_new(warm_cache: tuple[Path, Path], platform: Platform) -> None:
    store, cache = warm_cache
    path = _cache_file(cache)
    a = path.read_bytes()
    body = json.loads(a)
    body["envelope"] = (platform.stores[3] / "prod" / "00000003.dsse.json").read_text()
    body.update(version=3, digest="sha256:" + "3" * 64)
    b = json.dumps(body).encode()
    sources = cache.parent / "a.json", cache.parent / "b.json"
    sources[0].write_bytes(a)
    sources[1].write_bytes(b)
    for round_ in range(5):
        ready = cache.parent / f"ready-{round_}"
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), str(sources[0]), str(sources[1]), str(ready)], cwd=REPO_ROOT
        )
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05 + 0.03 * round_)  # some writes in, then killed mid-loop
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        assert path.read_bytes() in (a, b)
    leftovers = list(cache.glob(".*.tmp"))  # a kill between mkstemp and rename leaves a temp file
    loaded = LastGoodCache(cache, f"file://{store}", "prod").load()
    assert loaded is not None
    assert loaded.version in (2, 3)
    for tmp in leftovers:  # never read: only the named file is
        assert tmp.name.startswith(f".{path.name}.")
    (cache / f".{path.name}.dead.tmp").write_bytes(b"{")  # one more, whatever the kills left
    LastGoodCache(cache, f"file://{store}", "prod").store(loaded)  # the next writer clears them
    assert not list(cache.glob(".*.tmp"))


_RACER = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from compiler.client.cache import CachedVersion, LastGoodCache
cache, location, envelope, first = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]).read_bytes(), int(sys.argv[4])
c = LastGoodCache(cache, location, "prod")
for v in range(first, first + 200, 2):
    c.store(CachedVersion(version=v, digest="sha256:" + "a" * 64, verified_at=datetime.now(UTC), envelope=envelope))
"""


def test_processes_sharing_a_cache_dir_never_corrupt_it_or_move_it_back(warm_cache: tuple[Path, Path]) -> None:
    store, cache = warm_cache
    envelope = store / "prod" / "00000002.dsse.json"
    procs = [
        subprocess.Popen([sys.executable, "-c", _RACER, str(cache), f"file://{store}", str(envelope), str(first)])
        for first in (1, 2, 1, 2)
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    loaded = LastGoodCache(cache, f"file://{store}", "prod").load()
    assert loaded is not None
    assert loaded.version == 200  # the highest any process wrote: never replaced by a lower one
    assert not list(cache.glob(".*.tmp"))


def test_store_refuses_to_move_the_cache_backwards(warm_cache: tuple[Path, Path]) -> None:
    store, cache = warm_cache
    c = LastGoodCache(cache, f"file://{store}", "prod")
    current = c.load()
    assert current is not None
    older = CachedVersion(version=1, digest=current.digest, verified_at=datetime.now(UTC), envelope=current.envelope)
    assert c.store(older) is False
    assert c.load() == current


def test_write_atomic_leaves_no_temp_file_when_it_fails(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "missing-dir" / "x.json", b"{}")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.json").mkdir()  # a directory where the file goes: rename fails
    with pytest.raises(IsADirectoryError):
        write_atomic(tmp_path / "d" / "x.json", b"{}")
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["x.json"]


def test_a_store_error_is_not_a_refusal() -> None:
    from compiler.client.metrics import is_refusal

    assert is_refusal(StorageError("down")) is False


def test_the_cache_and_the_mark_are_durable_files_then_directory(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each write fsyncs the file, renames it, then fsyncs the directory (a rename is durable only then)."""
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # a spy: records what was synced, then syncs it
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    store = platform.copy_store(1, tmp_path / "store")
    client = ConfigClient(f"file://{store}", "prod", [TRUSTED], cache_dir=tmp_path / "cache")
    assert client.refresh() is True
    assert synced == ["file", "dir", "file", "dir"]  # the last known good, then the mark (storage/seen.py)


def test_a_cache_dir_that_cannot_be_made_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(LlmccError, match="cannot create the client cache directory"):
        ConfigClient(f"file://{tmp_path}", "prod", [TRUSTED], cache_dir=tmp_path / "file")


def test_a_cache_dir_removed_under_a_running_client_is_logged(
    platform: Platform, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = platform.copy_store(1, tmp_path / "store")
    cache = tmp_path / "cache"
    client = ConfigClient(f"file://{store}", "prod", [TRUSTED], cache_dir=cache)
    shutil.rmtree(cache)
    assert client.refresh() is True  # serving goes on; the mark's directory is made again
    assert "cannot write the client cache" in caplog.text


def test_the_cache_records_a_confirmation_at_most_once_a_minute(platform: Platform, tmp_path: Path) -> None:
    store = platform.copy_store(1, tmp_path / "store")
    cache = tmp_path / "cache"
    now = [datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)]
    client = ConfigClient(f"file://{store}", "prod", [TRUSTED], cache_dir=cache, clock=lambda: now[0])
    assert client.refresh() is True
    path = _cache_file(cache)
    now[0] += timedelta(seconds=30)
    assert client.refresh() is False
    assert json.loads(path.read_bytes())["verified_at"] == "2026-11-29T12:00:00Z"
    now[0] += timedelta(seconds=31)
    assert client.refresh() is False
    assert json.loads(path.read_bytes())["verified_at"] == "2026-11-29T12:01:01Z"
    assert client.status.age == 0
