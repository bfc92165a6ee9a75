"""Never backwards, verify before use (issue 11 §1-§2): each bad store is refused, the current version kept.

Each case starts from a client that accepted a good store (prod 1..n, published
by the real CLI), then changes the store the way an attacker or an accident would.
"""

from __future__ import annotations

import base64
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from compiler.bundle.canonical import canonical_json
from compiler.client import ConfigClient
from compiler.errors import LlmccError, VerificationError
from tests.client.conftest import TRUSTED, Platform
from tests.conftest import DEMO_IDENTITY
from tests.storage._support import new_keypair


def _swap_store(store: Path, source: Path) -> None:
    shutil.rmtree(store)
    shutil.copytree(source, store)


def _without_deltas(store: Path) -> None:
    """A held version 2 would rebuild the genuine version 3 from its delta: make the whole object decide."""
    shutil.rmtree(store / ".llmcc-deltas")


def _version_file(store: Path, n: int, target: str = "prod") -> Path:
    return store / target / f"{n:08d}.dsse.json"


class Reader:
    """A client on a copy of the good store at version 2, with a cache dir; errors it was told of."""

    def __init__(self, platform: Platform, tmp_path: Path, **kwargs: object) -> None:
        self.platform = platform
        self.store = platform.copy_store(2, tmp_path / "store")
        self.cache = tmp_path / "cache"
        self.kwargs = kwargs
        self.errors: list[LlmccError] = []
        self.client = self.new_client()
        assert self.client.refresh() is True
        assert self.client.version == 2

    def new_client(self, **kwargs: object) -> ConfigClient:
        args = {"identity": DEMO_IDENTITY, "cache_dir": self.cache, **self.kwargs, **kwargs}
        client = ConfigClient(f"file://{self.store}", "prod", [TRUSTED], **args)  # type: ignore[arg-type]
        client.on_error(self.errors.append)
        return client

    def refused(self, message: str, reason: str, client: ConfigClient | None = None) -> None:
        client = client or self.client
        before = len(self.errors)
        with pytest.raises(VerificationError) as info:
            client.refresh()
        assert message in str(info.value)
        assert client.version == 2  # the current version is kept
        assert client.get("inference-engine.model.temperature") == 0.4
        assert client.status.last_error == str(info.value)
        assert client.metrics().refusals.get(reason, 0) >= 1, client.metrics().refusals
        assert len(self.errors) == before + 1


@pytest.fixture
def reader(platform: Platform, tmp_path: Path) -> Reader:
    return Reader(platform, tmp_path)


def test_rollback_is_refused_across_a_restart(reader: Reader) -> None:
    _swap_store(reader.store, reader.platform.stores[1])  # a whole older store, validly signed
    reader.refused("the latest version is 1, older than version 2 this reader already accepted", "rollback")
    restarted = reader.new_client()  # a new process: the mark comes from cache_dir
    assert restarted.version == 2
    assert restarted.status.source == "cache"
    reader.refused("older than version 2 this reader already accepted", "rollback", restarted)


def test_rollback_is_refused_without_a_cache_dir(platform: Platform, tmp_path: Path) -> None:
    reader = Reader(platform, tmp_path, cache_dir=None)
    _swap_store(reader.store, platform.stores[1])
    reader.refused("older than version 2 this reader already accepted", "rollback")


def test_an_equal_version_with_another_digest_is_refused(reader: Reader, tmp_path: Path, publisher_env: None) -> None:
    # another chain that also reaches version 2: published from a clone with other content
    other = reader.platform.clone(tmp_path / "clone")
    other_store = tmp_path / "other-store"
    other.publish(f"file://{other_store}")
    other.set_temperature(0.9)
    other.publish(f"file://{other_store}")
    _swap_store(reader.store, other_store)
    reader.refused("the chain was rewritten", "rewritten_chain")
    assert reader.new_client().version == 2


def test_a_frozen_store_is_refused_once_its_pointer_expires(reader: Reader) -> None:
    later = datetime.now(UTC) + timedelta(days=30)
    frozen = reader.new_client(clock=lambda: later)
    reader.refused("the signed pointer expired at", "expired_pointer", frozen)
    assert frozen.status.stale is True  # and the service can see it


def test_a_version_far_ahead_of_the_pointer_is_refused(reader: Reader) -> None:
    _swap_store(reader.store, reader.platform.stores[3])
    for n in (4, 5):  # versions no publish pointed to
        shutil.copy(_version_file(reader.store, 3), _version_file(reader.store, n))
    reader.refused("version 5 is far above version 3 of the signed pointer", "unpublished_version")


def test_a_gap_is_refused(reader: Reader) -> None:
    _swap_store(reader.store, reader.platform.stores[3])
    _version_file(reader.store, 2).unlink()
    reader.refused("version 2 is missing", "gap")


def test_a_tampered_latest_is_refused(reader: Reader) -> None:
    # (with its delta in place the client rebuilds the genuine version 3 instead: tests/client/test_client.py)
    _swap_store(reader.store, reader.platform.stores[3])
    _without_deltas(reader.store)
    path = _version_file(reader.store, 3)
    envelope = json.loads(path.read_bytes())
    payload = base64.b64decode(envelope["payload"]).replace(b'"temperature":0.5', b'"temperature":1.9')
    envelope["payload"] = base64.b64encode(payload).decode()
    path.write_bytes(canonical_json(envelope))
    reader.refused("prod version 3: no valid signature by a trusted key", "signature")


def test_an_untrusted_signer_is_refused(reader: Reader, tmp_path: Path) -> None:
    stranger = new_keypair()
    (tmp_path / "stranger.pub").write_bytes(stranger.public_pem)
    client = ConfigClient(
        f"file://{reader.store}", "prod", [tmp_path / "stranger.pub"], cache_dir=tmp_path / "other-cache"
    )
    with pytest.raises(VerificationError, match="no valid signature by a trusted key"):
        client.refresh()
    assert client.version is None
    assert client.metrics().refusals == {"signature": 1}


def test_a_bundle_of_another_target_is_refused(reader: Reader) -> None:
    _swap_store(reader.store, reader.platform.stores[3])
    staging = reader.store / "staging"
    shutil.copytree(reader.store / "prod", staging)
    client = ConfigClient(f"file://{reader.store}", "staging", [TRUSTED])
    errors: list[LlmccError] = []
    client.on_error(errors.append)
    with pytest.raises(VerificationError, match="it points into target 'prod', but it is stored as 'staging'"):
        client.refresh()
    assert client.metrics().refusals == {"wrong_target": 1}
    assert len(errors) == 1


def test_an_error_callback_that_raises_is_logged(reader: Reader, caplog: pytest.LogCaptureFixture) -> None:
    def broken(error: LlmccError) -> None:
        raise RuntimeError("service bug")

    reader.client.on_error(broken)
    _swap_store(reader.store, reader.platform.stores[1])
    reader.refused("older than version 2", "rollback")
    assert "an error callback raised" in caplog.text


def test_a_deleted_store_is_a_refusal_not_a_reset(reader: Reader) -> None:
    # emptied: a rollback to nothing (a directory that is gone is a store that is down: test_missing_store.py)
    for entry in reader.store.iterdir():
        shutil.rmtree(entry)
    reader.refused("no signed pointer, but this reader has seen version 2", "missing_pointer")


def test_refusal_reasons_come_from_the_error_not_its_wording() -> None:
    from compiler.client.metrics import refusal_reason
    from compiler.errors import SecretsError, StorageError
    from compiler.storage.base import CorruptObjectError

    # a message full of other reasons' words: only the reason set where it was raised counts
    wordy = "prod@rollback version 3: signature envelope expired, far above, stored as, previous"
    assert refusal_reason(VerificationError(wordy, reason="broken_chain")) == "broken_chain"
    assert refusal_reason(VerificationError(wordy)) == "verification"
    assert refusal_reason(CorruptObjectError("too large")) == "corrupt_object"
    assert refusal_reason(SecretsError("x")) == "secrets"
    assert refusal_reason(StorageError("x")) == "corrupt_object"


def test_a_target_whose_name_reads_like_a_reason_is_counted_by_what_failed(reader: Reader) -> None:
    """A tenant called ``rollback``: its pointer is another target's, a wrong_target, not a rollback."""
    _swap_store(reader.store, reader.platform.stores[3])
    shutil.copytree(reader.store / "prod", reader.store / "prod@rollback")
    client = ConfigClient(f"file://{reader.store}", "prod@rollback", [TRUSTED])
    with pytest.raises(VerificationError, match="it points into target 'prod'"):
        client.refresh()
    assert client.metrics().refusals == {"wrong_target": 1}


def test_a_bundle_stored_under_another_version_is_a_wrong_version(reader: Reader) -> None:
    _swap_store(reader.store, reader.platform.stores[3])
    _without_deltas(reader.store)
    shutil.copy(_version_file(reader.platform.stores[2], 2), _version_file(reader.store, 3))
    reader.refused("bundle says version 2, but it is stored as 3", "wrong_version")
    assert "wrong_target" not in reader.client.metrics().refusals


def test_an_error_callback_may_refresh_again(reader: Reader, caplog: pytest.LogCaptureFixture) -> None:
    """Callbacks run outside the client's lock: one that calls refresh() does not deadlock."""
    retried: list[int] = []

    def retry(error: LlmccError) -> None:
        if not retried:
            retried.append(1)
            reader.client.refresh()  # refused again, raised in here, logged by the client

    reader.client.on_error(retry)
    _swap_store(reader.store, reader.platform.stores[1])
    with pytest.raises(VerificationError, match="older than version 2"):
        reader.client.refresh()
    assert reader.client.version == 2
    assert retried == [1]
    assert reader.client.metrics().refusals["rollback"] == 2
    assert "an error callback raised" in caplog.text
