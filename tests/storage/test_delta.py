"""Issue 11 §7: deltas between versions, and a reader that rebuilds from them but trusts only verification.

Each tampering below is something a delta object can be made to say; the
reader must end with exactly what it reads without deltas (the full versions),
or refuse when the full versions themselves do not verify.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from compiler.bundle.canonical import canonical_json, digest
from compiler.bundle.dsse import sign_envelope
from compiler.delta import MAX_DELTA_BYTES, MAX_OPERATIONS, DeltaError, envelope_payload, make_delta, rebuild_envelope
from compiler.errors import VerificationError
from compiler.publish import publish_target
from compiler.reader import read_target
from compiler.storage.base import Store
from compiler.storage.file import FileStore
from compiler.storage.oci import OciStore, delta_tag_for, tag_for
from tests.storage._support import KeyPair, StoreSpec, keyring_of, make_body

NOW = datetime(2026, 11, 29, tzinfo=UTC)


def wide_body(n: int, keys: int = 500, *, target: str = "prod") -> dict:
    """A bundle of ``keys`` values over 10 modules; ``n`` changes one value and the commit."""
    body = make_body(target, n)
    body["modules"] = {
        f"module-{m}": {f"key-{k}": f"value {m}-{k} of a realistic length" for k in range(keys // 10)}
        for m in range(10)
    }
    body["modules"]["module-3"]["key-7"] = n
    return body


def publish(store: Store, keypair: KeyPair, *bodies: dict) -> None:
    for body in bodies:
        assert publish_target(store, "prod", body, keypair.signer, now=NOW).created


def read(store: Store, keypair: KeyPair, held: dict[int, bytes] | None = None, **kw: object):
    return read_target(store, "prod", keyring_of(keypair.signer), now=NOW, held=held, **kw)  # type: ignore[arg-type]


class CountingStore:
    """A real store that counts the bytes its readers fetch."""

    def __init__(self, store: Store) -> None:
        self.store, self.fetched = store, 0
        self.url, self.listing, self.read_pointer = store.url, store.listing, store.read_pointer

    def read(self, target: str, version: int) -> bytes:
        data = self.store.read(target, version)
        self.fetched += len(data)
        return data

    def read_delta(self, target: str, version: int) -> bytes | None:
        data = self.store.read_delta(target, version)
        self.fetched += len(data or b"")
        return data


# --- the pure part ----------------------------------------------------------------------------


def _versions(keypair: KeyPair, *bodies: dict) -> list[tuple[bytes, bytes]]:
    """(payload, envelope) of each body as publish would sign it, chained."""
    out: list[tuple[bytes, bytes]] = []
    for version, body in enumerate(bodies, start=1):
        meta = {**body["metadata"], "version": version, "previous": digest(out[-1][0]) if out else None}
        payload = canonical_json({**body, "metadata": meta})
        out.append((payload, sign_envelope(payload, keypair.signer)))
    return out


def test_a_one_value_change_of_500_keys_is_a_small_delta_that_rebuilds_the_envelope(keypair: KeyPair) -> None:
    (p1, _), (_, e2) = _versions(keypair, wide_body(1), wide_body(2))
    delta = make_delta("prod", 2, p1, e2)
    assert delta is not None
    assert len(delta) < len(e2) * 0.04  # the platform's figure: 96 % saved (bench/RESULTS.md has ours)
    assert rebuild_envelope("prod", 2, p1, delta) == e2
    ops = json.loads(delta)["patch"]
    assert {op["path"] for op in ops} >= {"/modules/module-3/key-7", "/metadata/version"}
    assert "/metadata/previous" not in {op["path"] for op in ops}  # the reader sets it: it is the base's digest


def test_no_delta_when_it_would_not_be_smaller(keypair: KeyPair) -> None:
    other = wide_body(2)
    other["modules"] = {"entirely": {"new": "content"}}
    (p1, _), (_, e2) = _versions(keypair, wide_body(1), other)
    assert make_delta("prod", 2, p1, e2) is None


def _tamper(delta: bytes, change: Callable[[dict], object]) -> bytes:
    obj = json.loads(delta)
    change(obj)
    return canonical_json(obj)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(base="sha256:" + "0" * 64), "not from the version this reader holds"),
        (lambda d: d.update(version=3), "is for 'prod' version 3"),
        (lambda d: d.update(version=True), "is for 'prod' version True"),
        (lambda d: d.update(target="prod@acme"), "is for 'prod@acme' version 2"),
        (lambda d: d.update(kind="Bundle"), "is not an llmcc/v1 Delta"),
        (lambda d: d.update(extra=1), "must have exactly the keys"),
        (lambda d: d.update(payloadType="application/vnd.llmcc.bundle+json"), "must have exactly the keys"),
        (lambda d: d.update(patch={"op": "add"}), "must be a list of at most"),
        (lambda d: d.update(patch=[{"op": "replace", "path": "/x", "value": 1}] * (MAX_OPERATIONS + 1)), "at most"),
        (lambda d: d["patch"].append({"op": "copy", "from": "/modules", "path": "/more"}), "is not one of"),
        (lambda d: d["patch"].append({"op": "add", "path": "/x", "value": 1, "from": "/y"}), "exactly its members"),
        (lambda d: d["patch"].append({"op": "add", "path": 7, "value": 1}), "path is not a string"),
        (lambda d: d["patch"].append({"op": "remove", "path": "/nowhere/at/all"}), "the patch does not apply"),
        (lambda d: d["patch"].append({"op": "test", "path": "/kind", "value": "Pointer"}), "the patch does not apply"),
        (lambda d: d["patch"].append({"op": "move", "from": "/modules", "path": "/modules/x"}), "does not apply"),
        (lambda d: d["patch"].append({"op": "add", "path": "no-slash", "value": 1}), "the patch does not apply"),
    ],
)
def test_a_delta_that_cannot_rebuild_its_version_is_refused(keypair: KeyPair, change: Callable, message: str) -> None:
    (p1, _), (_, e2) = _versions(keypair, wide_body(1), wide_body(2))
    delta = make_delta("prod", 2, p1, e2)
    assert delta is not None
    with pytest.raises(DeltaError, match=message):
        rebuild_envelope("prod", 2, p1, _tamper(delta, change))
    nan = delta.replace(b'"patch":[', b'"patch":[{"op":"add","path":"/x","value":NaN},')
    with pytest.raises(DeltaError, match="is not JSON"):
        rebuild_envelope("prod", 2, p1, nan)


def test_size_bombs_are_refused_before_they_grow(keypair: KeyPair) -> None:
    (p1, _), _ = _versions(keypair, wide_body(1), wide_body(2))
    with pytest.raises(DeltaError, match=f"is more than {MAX_DELTA_BYTES} bytes"):
        rebuild_envelope("prod", 2, p1, b" " * (MAX_DELTA_BYTES + 1))
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(DeltaError, match="is not JSON"):
        rebuild_envelope("prod", 2, p1, deep)
    with pytest.raises(DeltaError, match="held envelope"):
        envelope_payload(b'{"payload":"not base64!"}')
    with pytest.raises(DeltaError, match="held envelope"):
        envelope_payload(b"[1]")


# --- the reader ---------------------------------------------------------------------------------


def test_a_reader_holding_the_previous_version_fetches_only_the_delta(store_spec: StoreSpec, keypair: KeyPair) -> None:
    """File, S3 and OCI: the delta is stored beside the store's targets, and the result is the full read's."""
    store = store_spec.open()
    publish(store, keypair, wide_body(1), wide_body(2), wide_body(3))
    assert store.read_delta("prod", 1) is None  # version 1 has nothing to be a delta from
    assert store.read_delta("prod", 3) is not None
    assert store.targets() == ["prod"]
    full = read(store, keypair)
    counting = CountingStore(store)
    held = read(counting, keypair, {2: store.read("prod", 2)})  # type: ignore[arg-type]
    assert held.via_delta == (3,)
    assert [b.payload for b in held.chain] == [b.payload for b in full.chain]
    assert held.seen == full.seen
    assert counting.fetched < len(store.read("prod", 3)) * 0.04
    # several versions behind: every step is a delta
    two_behind = read(store, keypair, {1: store.read("prod", 1)}, wanted=1)
    assert two_behind.via_delta == (2, 3)
    assert [b.payload for b in two_behind.chain] == [b.payload for b in read(store, keypair, wanted=1).chain]


@pytest.fixture
def three(tmp_path, keypair: KeyPair) -> FileStore:
    store = FileStore(tmp_path / "store")
    publish(store, keypair, wide_body(1), wide_body(2), wide_body(3))
    return store


def _replace_delta(store: FileStore, version: int, data: bytes | None) -> None:
    path = store._root / ".llmcc-deltas" / "prod" / f"{version:08d}.delta.json"
    path.unlink()
    if data is not None:
        path.write_bytes(data)


def _patched(store: FileStore, version: int, *ops: dict) -> bytes:
    delta = json.loads(store.read_delta("prod", version) or b"")
    delta["patch"] += list(ops)
    return canonical_json(delta)


def _forged(store: FileStore, signer_keys: KeyPair, change: Callable[[dict], None]) -> bytes:
    """A delta whose rebuilt payload is version 3 changed, signed by ``signer_keys``."""
    payload = json.loads(envelope_payload(store.read("prod", 3)))
    change(payload)
    envelope = json.loads(sign_envelope(canonical_json(payload), signer_keys.signer))
    base = envelope_payload(store.read("prod", 2))
    delta = json.loads(store.read_delta("prod", 3) or b"")
    delta["patch"] = [{"op": "replace", "path": "", "value": payload}]
    delta["base"], delta["signatures"] = digest(base), envelope["signatures"]
    return canonical_json(delta)


ATTACKS: dict[str, Callable[[FileStore, KeyPair, KeyPair], bytes | None]] = {
    "missing": lambda s, k, o: None,
    "not JSON": lambda s, k, o: b"\x00garbage",
    "oversized": lambda s, k, o: b"{" + b" " * MAX_DELTA_BYTES + b"}",
    "for another base": lambda s, k, o: s.read_delta("prod", 2),
    "retargeted": lambda s, k, o: _patched(s, 3, {"op": "replace", "path": "/metadata/target", "value": "prod@acme"}),
    "renumbered": lambda s, k, o: _patched(s, 3, {"op": "replace", "path": "/metadata/version", "value": 4}),
    "unlinked": lambda s, k, o: _patched(s, 3, {"op": "remove", "path": "/metadata"}),
    "a changed value": lambda s, k, o: _patched(s, 3, {"op": "replace", "path": "/modules/module-3/key-7", "value": 9}),
    "old version replayed": lambda s, k, o: _forged(
        s, k, lambda p: p.update(json.loads(envelope_payload(s.read("prod", 2))))
    ),
    "signed by an untrusted key": lambda s, k, o: _forged(
        s, o, lambda p: p["modules"]["module-3"].update({"key-7": 9})
    ),
    "signatures dropped": lambda s, k, o: _tamper(s.read_delta("prod", 3) or b"", lambda d: d.update(signatures=[])),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_any_bad_delta_ends_in_the_full_version(
    three: FileStore, keypair: KeyPair, other_keypair: KeyPair, attack: str
) -> None:
    """Verification, not the delta, decides: a delta that rebuilds anything else is dropped for the full version."""
    full = read(three, keypair)
    data = ATTACKS[attack](three, keypair, other_keypair)
    _replace_delta(three, 3, data)
    got = read(three, keypair, {2: three.read("prod", 2)})
    assert got.via_delta == ()
    assert [b.payload for b in got.chain] == [b.payload for b in full.chain]
    assert got.latest_envelope == three.read("prod", 3)


@pytest.mark.parametrize(
    "held",
    [
        b"not an envelope",
        b'{"payload":"e30=","payloadType":"application/vnd.llmcc.bundle+json","signatures":[]}',
        "version 1 held as 2",
        "another target's version 2",
    ],
)
def test_a_bad_held_envelope_ends_in_the_full_versions(three: FileStore, keypair: KeyPair, held: object) -> None:
    full = read(three, keypair)
    if held == "version 1 held as 2":
        held = three.read("prod", 1)
    elif held == "another target's version 2":
        publish_target(three, "prod@acme", wide_body(1, target="prod@acme"), keypair.signer, now=NOW)
        held = three.read("prod@acme", 1)
    got = read(three, keypair, {2: held})  # type: ignore[dict-item]
    assert got.via_delta == ()
    assert [b.payload for b in got.chain] == [b.payload for b in full.chain]


def test_a_version_is_refused_when_neither_its_delta_nor_its_object_verifies(
    three: FileStore, keypair: KeyPair
) -> None:
    good = three.read("prod", 3)
    (three._root / "prod" / "00000003.dsse.json").write_bytes(good.replace(b'"sig":"', b'"sig":"AAAA'))
    # the delta rebuilds what the trusted key signed: that is what the reader gets, and all it can get
    assert read(three, keypair, {2: three.read("prod", 2)}).latest_envelope == good
    assert read(three, keypair, {2: three.read("prod", 2)}).via_delta == (3,)
    _replace_delta(three, 3, _patched(three, 3, {"op": "replace", "path": "/modules/module-0/key-0", "value": "x"}))
    for held in ({2: three.read("prod", 2)}, None):
        with pytest.raises(VerificationError, match="prod version 3: no valid signature by a trusted key"):
            read(three, keypair, held)
    with pytest.raises(VerificationError, match="prod version 3: no valid signature by a trusted key"):
        read(three, keypair, full=True)  # verify reads whole versions only, and names the bad one


def test_verify_reads_whole_versions_even_with_held(three: FileStore, keypair: KeyPair) -> None:
    got = read(three, keypair, {2: three.read("prod", 2)}, full=True)
    assert got.via_delta == ()
    assert [b.version for b in got.chain] == [1, 2, 3]


def test_publish_repairs_a_delta_its_crashed_predecessor_did_not_write(three: FileStore, keypair: KeyPair) -> None:
    """A publisher died between its claim and its delta and pointer: the next publish writes both."""
    body = wide_body(4)
    meta = {**body["metadata"], "version": 4, "previous": read(three, keypair).latest.digest}  # type: ignore[union-attr]
    three.create("prod", 4, sign_envelope(canonical_json({**body, "metadata": meta}), keypair.signer))
    assert three.read_delta("prod", 4) is None
    again = publish_target(three, "prod", wide_body(4), keypair.signer, now=NOW)
    assert (again.created, again.version) == (False, 4)
    assert three.read_delta("prod", 4) is not None
    assert read(three, keypair, {3: three.read("prod", 3)}).via_delta == (4,)


def test_the_delta_bytes_are_what_make_delta_writes(three: FileStore, keypair: KeyPair) -> None:
    p2 = envelope_payload(three.read("prod", 2))
    assert three.read_delta("prod", 3) == make_delta("prod", 3, p2, three.read("prod", 3))
    assert base64.b64decode(json.loads(three.read("prod", 3))["payload"]) == envelope_payload(three.read("prod", 3))


def test_no_delta_for_what_is_not_a_bundle_envelope(keypair: KeyPair) -> None:
    (p1, _), (p2, _) = _versions(keypair, wide_body(1), wide_body(2))
    pointer_typed = sign_envelope(p2, keypair.signer, payload_type="application/vnd.llmcc.pointer+json")
    assert make_delta("prod", 2, p1, pointer_typed) is None


def test_an_oci_target_whose_delta_tag_would_be_too_long_has_no_deltas(tmp_path) -> None:
    long = "e" * 60 + "@" + "t" * 52  # its version tags fit in 128 characters, its delta tags do not
    assert len(tag_for(long, 1)) <= 128
    assert delta_tag_for(long, 1) is None
    assert delta_tag_for("prod@acme", 3) == "_delta.prod.acme.v00000003"
    store = OciStore("127.0.0.1:9", "llmcc/bundles", lock_dir=tmp_path)  # nothing listens: no request is made
    assert store.read_delta(long, 2) is None
    assert store.create_delta(long, 2, b"{}") is False


def test_a_stale_delta_to_a_repaired_latest_ends_in_the_full_version(three: FileStore, keypair: KeyPair) -> None:
    """Repairing a store but leaving version 3's delta: it rebuilds the deleted version 3, validly signed.

    That version verifies as a chain link; only the pointer (which names the repaired version 3)
    tells it apart. The reader must then read whole, as it does for any other bad delta, not
    refuse the target as rewritten.
    """
    stale = three.read_delta("prod", 3)
    (three._root / "prod" / "00000003.dsse.json").unlink()
    (three._root / "prod" / "latest.dsse.json").unlink()
    repaired = wide_body(3)
    repaired["modules"]["module-5"]["key-1"] = "repaired"
    publish(three, keypair, repaired)
    assert three.read_delta("prod", 3) == stale  # create-only: the repaired version gets no delta of its own
    full = read(three, keypair)
    got = read(three, keypair, {2: three.read("prod", 2)})
    assert got.via_delta == ()
    assert [b.payload for b in got.chain] == [b.payload for b in full.chain]
    assert got.latest_envelope == three.read("prod", 3)
