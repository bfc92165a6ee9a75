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
from compiler.errors import InternalError, StorageError
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


@pytest.mark.parametrize("cached", [True, False])
def test_a_store_directory_missing_at_start_is_refused_not_retried(
    platform: Platform, tmp_path: Path, cached: bool
) -> None:
    """As the agent and ``llmcc pull`` (exit 2): a typo or a volume not mounted, not an outage to wait out.

    Was: with a cached version, ``start()`` served it and polled the missing directory for ever.
    """
    store = platform.copy_store(3, tmp_path / "store")
    cache = tmp_path / "cache"
    url = f"file://{store}"
    if cached:
        ConfigClient(url, "prod", [TRUSTED], cache_dir=cache).refresh()
    store.rename(tmp_path / "unmounted")
    client = ConfigClient(url, "prod", [TRUSTED], cache_dir=cache)
    errors: list[Exception] = []
    client.on_error(errors.append)
    with pytest.raises(NoStoreError) as caught, client:
        pytest.fail("started")
    assert str(caught.value) == f"{url}: no store at {store} (the directory does not exist)"
    assert caught.value.exit_code == 2
    assert errors == [caught.value]
    assert client.status.last_error == str(caught.value)
    assert client.metrics().next_poll_in is None  # nothing polls
    assert client.version == (3 if cached else None)  # the cache was read, but is not served as if fine


def test_a_store_path_that_is_a_file_is_refused_at_start(tmp_path: Path) -> None:
    (tmp_path / "store").write_text("not a directory")
    client = ConfigClient(f"file://{tmp_path / 'store'}", "prod", [TRUSTED])
    with pytest.raises(StorageError, match=r"\(it is not a directory\)$"):
        client.start()
    assert client.metrics().next_poll_in is None


def test_the_client_library_exports_the_error() -> None:
    import compiler.client

    assert compiler.client.NoStoreError is NoStoreError
    assert issubclass(NoStoreError, StorageError)


class _PanickingProvider:
    """A KeyProvider whose unwrap meets a real Rust panic (a PyO3 library's bug, as pyrage or cryptography could)."""

    name = "age"
    key_id = "any"

    def wrap(self, dek: bytes) -> object:
        raise AssertionError("not used")

    def unwrap(self, wrapped: object) -> bytes:
        import jsonschema_rs

        from tests.core.test_native_panics import PANICS

        jsonschema_rs.validator_for(PANICS, base_uri="https://llmcc.invalid/schemas/m.schema.json")
        raise AssertionError("jsonschema-rs no longer panics on this schema: find another panic")


def test_a_native_panic_while_refreshing_is_a_typed_refusal(platform: Platform, tmp_path: Path) -> None:
    """A PanicException is a BaseException: it passed the client's and the service's `except Exception`
    and ended the poller's thread (no more refreshes, no word). Now: an InternalError, the version kept."""
    store = platform.copy_store(3, tmp_path / "store")
    client = ConfigClient(f"file://{store}", "prod", [TRUSTED], identity=_PanickingProvider())  # type: ignore[arg-type]
    with pytest.raises(InternalError, match=r"^prod: internal error: a native library panicked while reading it$"):
        client.refresh()
    assert client.version is None
    assert client.metrics().fetch_errors == 1
    assert "panicked" in (client.status.last_error or "")


def test_a_callback_that_meets_a_native_panic_is_logged_like_any_other(
    platform: Platform, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = platform.copy_store(3, tmp_path / "store")
    client = ConfigClient(f"file://{store}", "prod", [TRUSTED])
    provider = _PanickingProvider()
    client.on_change(lambda *_: provider.unwrap(None))
    client.on_error(lambda _e: provider.unwrap(None))
    assert client.refresh() is True  # the swap stays
    assert client.version == 3
    store.rename(tmp_path / "gone")
    with pytest.raises(NoStoreError):
        client.refresh()  # the error callback's panic is logged, the store's error raised
    assert [r.llmcc_event for r in caplog.records if r.levelname == "ERROR"] == ["callback_failed"] * 2  # type: ignore[attr-defined]
