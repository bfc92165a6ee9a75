"""Pre-fork servers (issue 11 §6): a client made before os.fork polls in each child; children share a cache dir."""

from __future__ import annotations

import os
import shutil
import time
import warnings
from pathlib import Path

from compiler.client import ConfigClient
from compiler.client.cache import LastGoodCache
from tests.client.conftest import TRUSTED, Platform

_CHILD_TIMEOUT = 60.0


def _child(client: ConfigClient, done: Path) -> int:
    """In a forked child: wait for the poller here to swap in version 3; 0 when it did."""
    deadline = time.monotonic() + _CHILD_TIMEOUT
    while client.version != 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    if client.version != 3 or client.get("inference-engine.model.temperature") != 0.5:
        return 1
    done.write_text(f"{os.getpid()} {client.metrics().swaps}")
    return 0


def test_a_client_made_before_fork_polls_in_each_child(platform: Platform, tmp_path: Path) -> None:
    store = platform.copy_store(1, tmp_path / "store")
    cache = tmp_path / "cache"
    client = ConfigClient(f"file://{store}", "prod", [TRUSTED], cache_dir=cache, poll_interval=0.02)
    client.start()
    assert client.version == 1
    pids = []
    for n in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: the point of the test
            pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, which exits without returning to pytest
            code = 1
            try:
                code = _child(client, tmp_path / f"done-{n}")
            finally:
                os._exit(code)
        pids.append(pid)
    client.stop()  # the parent stops polling; each child polls on its own
    shutil.rmtree(store)
    shutil.copytree(platform.stores[3], store)  # a new version while only the children poll
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    assert client.version == 1  # the parent stopped polling
    for n in range(2):
        assert (tmp_path / f"done-{n}").exists()
    loaded = LastGoodCache(cache, f"file://{store}", "prod").load()  # two writers, one intact cache
    assert loaded is not None
    assert loaded.version == 3
    restarted = ConfigClient(f"file://{store}", "prod", [TRUSTED], cache_dir=cache)
    assert restarted.version == 3


def test_the_at_fork_hook_restarts_the_poller_with_fresh_locks(platform: Platform, tmp_path: Path) -> None:
    """What the child runs, run here: the forked case above shows it works in a real child."""
    from compiler.client import configclient

    store = platform.copy_store(1, tmp_path / "store")
    client = ConfigClient(f"file://{store}", "prod", [TRUSTED], poll_interval=3600)
    idle = ConfigClient(f"file://{store}", "prod", [TRUSTED])  # never started: stays stopped
    client.start()
    client.start()  # a second start is a no-op
    lock = client._lock
    configclient._after_fork_in_child()
    try:
        assert client._lock is not lock
        assert client.metrics().next_poll_in is not None  # polling again
        assert idle.metrics().next_poll_in is None
        assert client.refresh() is False  # through a store opened again
    finally:
        client.stop()
