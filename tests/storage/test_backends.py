"""The same contract on every backend: publish -> verify -> read, idempotence, races, crashes (docs/store-layout.md)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from compiler.errors import LlmccError, StorageError
from compiler.publish import PublishResult, publish_target
from compiler.verify import verify_chain
from tests.conftest import REPO_ROOT
from tests.storage._support import KeyPair, StoreSpec, keyring_of, make_body

PUBLISHER_TIMEOUT = 60


def _chain(spec: StoreSpec, keypair: KeyPair, target: str = "prod") -> list[int]:
    store = spec.open()
    versions = store.versions(target)
    verified = verify_chain(target, [(v, store.read(target, v)) for v in versions], keyring_of(keypair.signer))
    return [b.version for b in verified]


def test_publish_verify_read(store_spec: StoreSpec, keypair: KeyPair) -> None:
    store = store_spec.open()
    assert store.targets() == []
    assert store.versions("prod") == []
    first = publish_target(store, "prod", make_body("prod", 1), keypair.signer)
    second = publish_target(store, "prod", make_body("prod", 2), keypair.signer)
    publish_target(store, "prod@acme", make_body("prod@acme", 1), keypair.signer)
    assert (first.version, first.created, second.version, second.created) == (1, True, 2, True)
    assert store.targets() == ["prod", "prod@acme"]
    verified = verify_chain(
        "prod", [(v, store.read("prod", v)) for v in store.versions("prod")], keyring_of(keypair.signer)
    )
    assert [b.digest for b in verified] == [first.digest, second.digest]
    assert verified[1].metadata["previous"] == first.digest
    assert verified[1].bundle["modules"] == make_body("prod", 2)["modules"]
    with pytest.raises(StorageError, match="no version 3"):
        store.read("prod", 3)


def test_publish_is_idempotent(store_spec: StoreSpec, keypair: KeyPair) -> None:
    store = store_spec.open()
    first = publish_target(store, "prod", make_body("prod", 1), keypair.signer)
    again = publish_target(store, "prod", make_body("prod", 1), keypair.signer)
    assert again == PublishResult(target="prod", version=1, digest=first.digest, created=False)
    assert store.versions("prod") == [1]
    # going back to an older body is a new version, not a no-op
    publish_target(store, "prod", make_body("prod", 2), keypair.signer)
    back = publish_target(store, "prod", make_body("prod", 1), keypair.signer)
    assert (back.version, back.created) == (3, True)
    assert _chain(store_spec, keypair) == [1, 2, 3]


def test_create_never_overwrites(store_spec: StoreSpec, keypair: KeyPair) -> None:
    store = store_spec.open()
    publish_target(store, "prod", make_body("prod", 1), keypair.signer)
    before = store.read("prod", 1)
    assert store.create("prod", 1, b"{}") is False
    assert store.read("prod", 1) == before


def test_four_threads_get_unique_versions(store_spec: StoreSpec, keypair: KeyPair) -> None:
    publish_target(store_spec.open(), "prod", make_body("prod", 0), keypair.signer)
    barrier = threading.Barrier(4)
    results: dict[int, PublishResult] = {}
    errors: list[LlmccError] = []

    def publish(n: int) -> None:
        store = store_spec.open()  # one store per publisher, as separate clones would have
        barrier.wait(timeout=30)
        try:
            results[n] = publish_target(store, "prod", make_body("prod", n), keypair.signer)
        except LlmccError as e:  # collected and asserted on in the test thread
            errors.append(e)

    threads = [threading.Thread(target=publish, args=(n,)) for n in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert sorted(r.version for r in results.values()) == [2, 3, 4, 5]
    assert all(r.created for r in results.values())
    assert _chain(store_spec, keypair) == [1, 2, 3, 4, 5]


def _start_publisher(
    spec: StoreSpec, body: dict, key_file: Path, tmp: Path, crash: dict | None = None
) -> subprocess.Popen[str]:
    body_file = tmp / f"body-{body['metadata']['source']['commit']}.json"
    body_file.write_text(json.dumps(body))
    argv = [sys.executable, "-m", "tests.storage._publisher", spec.to_json(), "prod", str(body_file), str(key_file)]
    if crash is not None:
        argv.append(json.dumps(crash))
    return subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_four_processes_get_unique_versions(store_spec: StoreSpec, keypair: KeyPair, tmp_path: Path) -> None:
    key_file, _ = keypair.write(tmp_path, "ci")
    publishers = [_start_publisher(store_spec, make_body("prod", n), key_file, tmp_path) for n in range(1, 5)]
    outputs = []
    for p in publishers:
        out, err = p.communicate(timeout=PUBLISHER_TIMEOUT)
        assert p.returncode == 0, (out, err)
        outputs.append(json.loads(out))
    assert sorted(o["version"] for o in outputs) == [1, 2, 3, 4]
    assert all(o["created"] for o in outputs)
    assert _chain(store_spec, keypair) == [1, 2, 3, 4]


CRASH_STEPS = {
    "file": [
        {"patch": "os.fsync", "when": "before"},  # temp file written, not yet synced
        {"patch": "os.link", "match": "dsse.json", "when": "before"},  # synced, not claimed
        {"patch": "os.link", "match": "dsse.json", "when": "after"},  # claimed, temp file left behind
        {"patch": "os.unlink", "match": ".tmp-", "when": "after"},  # claimed, directory not synced
    ],
    "s3": [
        # the probe's first PUT, then the version's PUT (after the probe's two PUTs)
        {"patch": "botocore.client.BaseClient._make_api_call", "match": "'PutObject'", "when": "before"},
        {"patch": "botocore.client.BaseClient._make_api_call", "match": "'PutObject'", "when": "before", "nth": 3},
        {"patch": "botocore.client.BaseClient._make_api_call", "match": "'PutObject'", "when": "after", "nth": 3},
    ],
    "oci": [
        {"patch": "compiler.storage._registry.RegistryClient._request", "match": "'POST'", "when": "after"},
        {
            "patch": "compiler.storage._registry.RegistryClient._request",
            "match": "/blobs/uploads",
            "when": "after",
            "nth": 2,
        },
        {
            "patch": "compiler.storage._registry.RegistryClient._request",
            "match": "'PUT', '/manifests/",
            "when": "before",
        },
        {
            "patch": "compiler.storage._registry.RegistryClient._request",
            "match": "'PUT', '/manifests/",
            "when": "after",
        },
        # HEAD 1 reads the latest, HEADs 2-3 wait for it to settle, HEAD 4 checks the tag is free, 5 confirms
        {
            "patch": "compiler.storage._registry.RegistryClient._request",
            "match": "'HEAD', '/manifests/",
            "when": "before",
            "nth": 3,
        },
        {
            "patch": "compiler.storage._registry.RegistryClient._request",
            "match": "'HEAD', '/manifests/",
            "when": "before",
            "nth": 5,
        },
    ],
}


def test_killed_publisher_leaves_latest_intact(store_spec: StoreSpec, keypair: KeyPair, tmp_path: Path) -> None:
    """Kill a publisher at each step: the previous latest stays valid and the next publish succeeds."""
    key_file, _ = keypair.write(tmp_path, "ci")
    store = store_spec.open()
    publish_target(store, "prod", make_body("prod", 0), keypair.signer)
    n = 0
    for crash in CRASH_STEPS[store_spec.kind]:
        n += 1
        latest = store.versions("prod")[-1]
        victim = _start_publisher(store_spec, make_body("prod", n), key_file, tmp_path, crash)
        out, err = victim.communicate(timeout=PUBLISHER_TIMEOUT)
        assert victim.returncode == -signal.SIGKILL, (crash, out, err)
        versions = _chain(store_spec, keypair)
        assert versions[-1] in (latest, latest + 1), crash  # nothing, or the complete new version
        if versions[-1] == latest + 1:
            # the victim died after its claim: that version is complete and it is body n
            again = publish_target(store, "prod", make_body("prod", n), keypair.signer)
            assert (again.version, again.created) == (latest + 1, False)
        n += 1
        after = publish_target(store, "prod", make_body("prod", n), keypair.signer)
        assert after.created, crash
        assert after.version == versions[-1] + 1, crash
        assert _chain(store_spec, keypair)[-1] == after.version


def test_publish_gives_up_after_losing_every_race(store_spec: StoreSpec, keypair: KeyPair) -> None:
    """A publisher that never wins reports failure, never success (docs/store-layout.md)."""

    class AlwaysLate:
        """The real store, except that someone else always claims the version first."""

        def __init__(self) -> None:
            self._store = store_spec.open()
            self.url = self._store.url
            self.versions = self._store.versions
            self.listing = self._store.listing
            self.read = self._store.read
            self.read_pointer = self._store.read_pointer
            self.attempts = 0

        def create(self, target: str, version: int, envelope: bytes, *, previous: bytes | None = None) -> bool:
            self.attempts += 1
            return False

    store = AlwaysLate()
    with pytest.raises(StorageError, match="claimed the next version 3 times"):
        publish_target(store, "prod", make_body("prod", 1), keypair.signer, max_attempts=3)  # type: ignore[arg-type]
    assert store.attempts == 3
    assert store.versions("prod") == []
