"""A file store whose directory is gone is a store that is down, not an empty one (a rollback to nothing).

Unmounted volume, mistyped path, directory moved away: the client keeps its
last good version and reports a store it cannot read, never a rollback with
``publish --refresh-pointer`` as the remedy.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.client import ConfigClient
from compiler.client.metrics import is_refusal
from compiler.errors import StorageError
from compiler.storage.base import NoStoreError
from tests.client.conftest import TRUSTED, Platform
from tests.conftest import DEMO_IDENTITY

TEMPERATURE = "inference-engine.model.temperature"


def test_a_store_directory_that_is_gone_keeps_the_last_good_version(platform: Platform, tmp_path: Path) -> None:
    store = platform.copy_store(3, tmp_path / "store")
    cache = tmp_path / "cache"
    url = f"file://{store}"
    client = ConfigClient(url, "prod", [TRUSTED], identity=DEMO_IDENTITY, cache_dir=cache)
    assert client.refresh() is True
    assert client.get(TEMPERATURE) == 0.5
    store.rename(tmp_path / "unmounted")
    with pytest.raises(NoStoreError) as caught:
        client.refresh()
    assert str(caught.value) == f"{url}: no store at {store} (the directory does not exist)"
    assert not is_refusal(caught.value)  # store-down: backoff, not a refusal
    assert (client.version, client.get(TEMPERATURE)) == (3, 0.5)
    assert client.metrics().refusals == {}

    # a fresh process: starts from the cache, and the error says what is wrong
    restarted = ConfigClient(url, "prod", [TRUSTED], identity=DEMO_IDENTITY, cache_dir=cache)
    assert restarted.version == 3
    with pytest.raises(StorageError, match="no store at") as again:
        restarted.refresh()
    assert "rollback" not in str(again.value)
    assert "refresh-pointer" not in str(again.value)
    assert restarted.version == 3


def test_a_store_path_that_is_a_file_is_no_store(platform: Platform, tmp_path: Path) -> None:
    (tmp_path / "store").write_text("not a directory")
    client = ConfigClient(f"file://{tmp_path / 'store'}", "prod", [TRUSTED])
    with pytest.raises(StorageError, match=r"no store at .*/store \(it is not a directory\)$") as caught:
        client.refresh()
    assert not is_refusal(caught.value)
