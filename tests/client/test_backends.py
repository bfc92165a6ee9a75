"""The client on real S3 (moto server) and OCI (docker-registry) stores, published by the CLI (issue 11 tests).

Also the store going down: at start (the cache serves) and while polling (backoff, no hot loop).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import boto3
import pytest

from compiler.client import ConfigClient, NoStoreError, UnknownTargetError, next_delay
from compiler.storage import Store
from compiler.storage.file import FileStore
from tests.client.conftest import TRUSTED, Platform
from tests.conftest import DEMO_IDENTITY
from tests.services import start_moto
from tests.storage._support import StoreSpec

TEMPERATURE = "inference-engine.model.temperature"


def _publish_twice(platform: Platform, tmp_path: Path, url: str, *extra: str) -> Platform:
    own = platform.clone(tmp_path / "clone")
    own.publish(url, *extra)
    return own


def test_s3_publish_then_read_then_refresh(
    platform: Platform, tmp_path: Path, s3_spec: StoreSpec, publisher_env: None
) -> None:
    url = f"s3://{s3_spec.bucket}/{s3_spec.prefix}"
    own = _publish_twice(platform, tmp_path, url, "--endpoint-url", s3_spec.endpoint_url)
    client = ConfigClient(
        url, "prod", [TRUSTED], identity=DEMO_IDENTITY, cache_dir=tmp_path / "cache", endpoint_url=s3_spec.endpoint_url
    )
    assert client.refresh() is True
    assert (client.version, client.get(TEMPERATURE)) == (1, 0.5)
    assert client.secret("data-pipeline.db.password").reveal() == platform.canary
    own.set_temperature(0.7)
    own.publish(url, "--endpoint-url", s3_spec.endpoint_url)
    assert client.refresh() is True
    assert (client.version, client.get(TEMPERATURE)) == (2, 0.7)


def test_s3_a_target_the_prefix_never_published_is_unknown(
    platform: Platform, tmp_path: Path, s3_spec: StoreSpec, publisher_env: None
) -> None:
    """Issue 13 "Fragile" on real S3: a misspelt target, and a wrong (empty) prefix, are refused, not awaited."""
    url = f"s3://{s3_spec.bucket}/{s3_spec.prefix}"
    _publish_twice(platform, tmp_path, url, "--endpoint-url", s3_spec.endpoint_url)
    client = ConfigClient(url, "prdo", [TRUSTED], cache_dir=tmp_path / "cache", endpoint_url=s3_spec.endpoint_url)
    with pytest.raises(UnknownTargetError) as caught:
        client.start()
    assert str(caught.value) == f"unknown target 'prdo' (did you mean 'prod'?); published in {url}: prod"
    wrong = f"s3://{s3_spec.bucket}/{s3_spec.prefix}-typo"
    with pytest.raises(UnknownTargetError, match=r"^unknown target 'prod'; published in s3://.*-typo: nothing$"):
        ConfigClient(wrong, "prod", [TRUSTED], endpoint_url=s3_spec.endpoint_url).start()


def test_oci_publish_then_read_then_refresh(
    platform: Platform, tmp_path: Path, oci_spec: StoreSpec, publisher_env: None
) -> None:
    url = f"oci://{oci_spec.registry}/{oci_spec.repository}"
    own = _publish_twice(platform, tmp_path, url)
    client = ConfigClient(url, "prod", [TRUSTED], identity=DEMO_IDENTITY, cache_dir=tmp_path / "cache")
    assert client.refresh() is True
    assert (client.version, client.get(TEMPERATURE)) == (1, 0.5)
    own.set_temperature(0.6)
    own.publish(url)
    assert client.refresh() is True
    assert (client.version, client.get(TEMPERATURE)) == (2, 0.6)
    assert client.secret("data-pipeline.db.password").reveal() == platform.canary


def test_store_down_at_start_then_while_polling(
    platform: Platform, tmp_path: Path, fake_aws: None, publisher_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # one request per refresh: the backoff is ours
    (tmp_path / "moto").mkdir()
    moto = start_moto(tmp_path / "moto")
    try:
        bucket = f"llmcc-{uuid.uuid4().hex[:12]}"
        boto3.session.Session().client("s3", endpoint_url=moto.url).create_bucket(Bucket=bucket)
        url = f"s3://{bucket}/bundles"
        _publish_twice(platform, tmp_path, url, "--endpoint-url", moto.url)
        cache = tmp_path / "cache"
        first = ConfigClient(url, "prod", [TRUSTED], cache_dir=cache, endpoint_url=moto.url)
        assert first.refresh() is True
    finally:
        moto.stop()  # the store is down from here on
    client = ConfigClient(
        url,
        "prod",
        [TRUSTED],
        cache_dir=cache,
        endpoint_url=moto.url,
        poll_interval=0.02,
        max_backoff=0.16,
        jitter=0.0,
    )
    with client:  # starts from the cache; the first refresh fails
        assert client.version == 1
        assert client.status.source == "cache"
        assert client.get(TEMPERATURE) == 0.5
        delays = []
        deadline = time.monotonic() + 60
        while client.metrics().fetch_errors < 6 and time.monotonic() < deadline:
            delay = client.metrics().next_poll_in
            if delay is not None and (not delays or delays[-1] != delay):
                delays.append(delay)
            time.sleep(0.005)
    metrics = client.metrics()
    assert metrics.fetch_errors >= 6
    assert metrics.swaps == 0
    assert metrics.version == 1
    assert "Could not connect" in (client.status.last_error or "")
    # backed off: the delay doubled from the interval and stopped at the cap
    assert delays[0] == pytest.approx(0.04)
    assert max(delays) == pytest.approx(0.16)
    assert delays == sorted(delays)


def test_next_delay_backs_off_exponentially_with_a_cap_and_jitter() -> None:
    assert next_delay(30, 0, jitter=0.1, max_backoff=300, uniform=0.5) == 30
    assert next_delay(30, 1, jitter=0.1, max_backoff=300, uniform=0.5) == 60
    assert next_delay(30, 3, jitter=0.1, max_backoff=300, uniform=0.5) == 240
    assert next_delay(30, 4, jitter=0.1, max_backoff=300, uniform=0.5) == 300
    assert next_delay(30, 10_000, jitter=0.1, max_backoff=300, uniform=0.5) == 300
    assert next_delay(30, 0, jitter=0.1, max_backoff=300, uniform=0.0) == pytest.approx(27)
    assert next_delay(30, 0, jitter=0.1, max_backoff=300, uniform=0.999999) == pytest.approx(33, rel=1e-5)


class BuggyStore:
    """A file store that raises a non-llmcc exception on demand (a bug in a backend)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.broken = False

    def __getattr__(self, name: str) -> object:
        if self.broken and name == "listing":
            raise RuntimeError("backend bug")
        return getattr(self._store, name)


def test_a_refresh_that_hits_a_bug_keeps_the_poller_alive(
    platform: Platform, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = BuggyStore(FileStore(platform.copy_store(1, tmp_path / "store")))
    client = ConfigClient(store, "prod", [TRUSTED], poll_interval=0.01, jitter=0.0)  # type: ignore[arg-type]
    client.start()
    store.broken = True
    deadline = time.monotonic() + 30
    while client.metrics().refreshes < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    client.stop()
    assert client.metrics().refreshes >= 4
    assert client.version == 1
    assert "internal error while polling" in caplog.text
    with pytest.raises(RuntimeError, match="backend bug"):
        client.refresh()


def test_s3_a_bucket_that_does_not_exist_at_start_is_refused_even_with_a_cached_version(
    platform: Platform, tmp_path: Path, s3_spec: StoreSpec, publisher_env: None
) -> None:
    """A deleted or mistyped bucket is no store (exit 2, as ``pull``), not an outage to poll for ever."""
    url = f"s3://{s3_spec.bucket}/{s3_spec.prefix}"
    _publish_twice(platform, tmp_path, url, "--endpoint-url", s3_spec.endpoint_url)
    cache = tmp_path / "cache"
    ConfigClient(url, "prod", [TRUSTED], cache_dir=cache, endpoint_url=s3_spec.endpoint_url).refresh()
    s3 = boto3.client("s3", endpoint_url=s3_spec.endpoint_url)
    for item in s3.list_objects_v2(Bucket=s3_spec.bucket).get("Contents", []):
        s3.delete_object(Bucket=s3_spec.bucket, Key=item["Key"])
    s3.delete_bucket(Bucket=s3_spec.bucket)
    client = ConfigClient(url, "prod", [TRUSTED], cache_dir=cache, endpoint_url=s3_spec.endpoint_url)
    assert client.version == 1  # the cache holds it
    with pytest.raises(NoStoreError) as caught:
        client.start()
    assert str(caught.value) == f"{url}: no such bucket {s3_spec.bucket} (the bucket does not exist)"
    assert client.metrics().next_poll_in is None
