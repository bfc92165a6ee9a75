"""compiler.freshness (pure) and the reader state file: the rules one by one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.bundle.canonical import canonical_json
from compiler.bundle.dsse import POINTER_PAYLOAD_TYPE, sign_envelope
from compiler.errors import LlmccError, StorageError, VerificationError
from compiler.freshness import (
    Pointer,
    Seen,
    check_digests,
    check_listing,
    check_pointer,
    new_pointer,
    sign_pointer,
    verify_pointer,
)
from compiler.project import load_project
from compiler.publish import move_pointer, publish_target
from compiler.reader import read_target
from compiler.storage.base import CorruptObjectError, Listing
from compiler.storage.file import FileStore
from compiler.storage.oci import sort_tags
from compiler.storage.seen import SeenFile
from tests.storage._support import KeyPair, keyring_of, make_body

NOW = datetime(2026, 1, 1, tzinfo=UTC)
D = "sha256:" + "ab" * 32


def _pointer(version: int = 2) -> Pointer:
    return new_pointer("prod", version, D, now=NOW, expires_after=timedelta(days=7))


def test_pointer_round_trip_and_its_refusals(keypair: KeyPair, other_keypair: KeyPair) -> None:
    ring = keyring_of(keypair.signer)
    assert verify_pointer(sign_pointer(_pointer(), keypair.signer), "prod", ring) == _pointer()
    with pytest.raises(VerificationError, match="prod pointer: no valid signature"):
        verify_pointer(sign_pointer(_pointer(), other_keypair.signer), "prod", ring)
    good = {"apiVersion": "llmcc/v1", "kind": "Pointer", "target": "prod", "version": 2, "digest": D}
    for payload, message in [
        (b"[]", "exactly the keys"),
        (b"{", "not canonical JSON"),
        (canonical_json({**good, "kind": "Bundle", "expires": "2026-01-08T00:00:00Z"}), "not an llmcc/v1 Pointer"),
        (canonical_json({**good, "expires": "2026-01-08"}), "malformed"),
        (canonical_json({**good, "version": 0, "expires": "2026-01-08T00:00:00Z"}), "malformed"),
        (canonical_json({**good, "digest": "md5:1", "expires": "2026-01-08T00:00:00Z"}), "malformed"),
    ]:
        with pytest.raises(VerificationError, match=message):
            verify_pointer(sign_envelope(payload, keypair.signer, payload_type=POINTER_PAYLOAD_TYPE), "prod", ring)
    with pytest.raises(ValueError, match="aware datetime"):
        Pointer(target="prod", version=1, digest=D, expires=datetime(2026, 1, 1))  # noqa: DTZ001


def test_check_pointer_rules() -> None:
    check_pointer("prod", None, 0, seen=None, now=NOW)  # nothing published, nothing expected
    check_pointer("prod", _pointer(2), 3, seen=Seen(version=3, digest=D), now=NOW)  # one in flight
    with pytest.raises(VerificationError, match="no signed pointer, but this reader has seen version 2"):
        check_pointer("prod", None, 0, seen=Seen(version=2, digest=D), now=NOW)
    with pytest.raises(VerificationError, match="an old pointer replayed"):
        check_pointer("prod", _pointer(2), 4, seen=Seen(version=4, digest=D), now=NOW, in_flight=5)
    with pytest.raises(VerificationError, match="the store lists no version, older than version 2"):
        check_pointer("prod", _pointer(2), 0, seen=None, now=NOW)
    check_pointer("prod", _pointer(2), 2, seen=None, now=None)  # a publisher does not check expiry
    with pytest.raises(VerificationError, match="expired at 2026-01-08T00:00:00Z"):
        check_pointer("prod", _pointer(2), 2, seen=None, now=NOW + timedelta(days=7))


def test_seen_file_moves_only_up_and_refuses_a_damaged_file(tmp_path: Path) -> None:
    marks = SeenFile(tmp_path / "state", "file:///srv/store")
    assert marks.load() == {}
    marks.advance({"prod": Seen(version=3, digest=D)})
    marks.advance({"prod": Seen(version=2, digest=D), "dev": Seen(version=1, digest=D)})
    assert marks.load() == {"prod": Seen(version=3, digest=D), "dev": Seen(version=1, digest=D)}
    assert SeenFile(tmp_path / "state", "file:///elsewhere").load() == {}
    for damage in [
        "{",
        '{"store": "file:///other", "targets": {}}',
        '{"store": "file:///srv/store", "targets": {"prod": {"version": 0}}}',
    ]:
        marks.path.write_text(damage)
        with pytest.raises(LlmccError, match="not a valid llmcc reader state"):
            marks.load()


def test_pointer_expiry_setting() -> None:
    base = b"project: p\nenvironments: {prod: {}}\n"
    assert load_project(base).manifest.storage.pointer_expiry_delta == timedelta(days=7)
    assert load_project(base + b"storage: {pointer_expiry: 36h}\n").manifest.storage.pointer_expiry_delta == timedelta(
        hours=36
    )
    assert load_project(base + b"storage: {pointer_expiry: 366d}\n").manifest.storage.pointer_expiry_delta == timedelta(
        days=366
    )
    for too_long in (b"1w", b"367d", b"8785h", b"99999d"):
        with pytest.raises(
            LlmccError, match=r"storage\.pointer_expiry: a duration in hours or days up to 366d, like 36h or 7d"
        ):
            load_project(base + b"storage: {pointer_expiry: " + too_long + b"}\n")


def test_oci_tags_in_a_targets_prefix() -> None:
    tags = [
        "prod.v00000001",
        "prod.latest",
        "prod.acme.v00000001",
        "prod.acme.latest",
        "prod.v0",
        "prod.v1.tmp",
        "dev.v1",
    ]
    listing = sort_tags("prod", tags)
    assert (listing.versions, listing.pointer, listing.strays) == ((1,), True, ("prod.v0", "prod.v1.tmp"))
    acme = sort_tags("prod@acme", tags)
    assert (acme.versions, acme.pointer, acme.strays) == ((1,), True, ())


def test_a_pointer_time_in_another_spelling_is_refused(keypair: KeyPair) -> None:
    good = {"apiVersion": "llmcc/v1", "kind": "Pointer", "target": "prod", "version": 2, "digest": D}
    payload = canonical_json({**good, "expires": "2026-1-08T00:00:00Z"})
    with pytest.raises(VerificationError, match="malformed"):
        verify_pointer(
            sign_envelope(payload, keypair.signer, payload_type=POINTER_PAYLOAD_TYPE),
            "prod",
            keyring_of(keypair.signer),
        )


def test_check_digests_against_the_pointer_and_the_mark() -> None:
    other = "sha256:" + "cd" * 32
    assert check_digests("prod", [(1, other), (2, D)], pointer=_pointer(2), seen=Seen(version=1, digest=other)) == Seen(
        version=2, digest=D
    )
    with pytest.raises(VerificationError, match=f"prod version 2: digest {other} is not {D} that the signed pointer"):
        check_digests("prod", [(2, other)], pointer=_pointer(2), seen=None)
    with pytest.raises(VerificationError, match="that this reader accepted before"):
        check_digests("prod", [(1, D), (2, D)], pointer=None, seen=Seen(version=1, digest=other))


def test_seen_file_that_cannot_be_read_or_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(LlmccError, match="cannot write the reader state"):
        SeenFile(tmp_path / "file" / "state", "file:///s").advance({"prod": Seen(version=1, digest=D)})
    marks = SeenFile(tmp_path / "state", "file:///s")
    marks.path.mkdir(parents=True)
    with pytest.raises(LlmccError, match="cannot read the reader state"):
        marks.load()
    with pytest.raises(LlmccError, match="cannot read the reader state"):
        marks.advance({"prod": Seen(version=1, digest=D)})
    marks.path.rmdir()

    def full_disk(src: str, dst: str) -> None:  # a failure hard to cause for real
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr("compiler.storage.seen.os.replace", full_disk)
        with pytest.raises(LlmccError, match="cannot write the reader state: No space left on device"):
            marks.advance({"prod": Seen(version=1, digest=D)})
    assert list((tmp_path / "state").glob(".seen-*")) == []  # the temp file is gone
    with open(marks.path, "wb") as f:
        f.truncate(17 * 1024 * 1024)
    with pytest.raises(LlmccError, match="not a valid llmcc reader state"):
        marks.load()


class _MovedStore:
    """A store (the real Protocol's pointer half) where another publisher always moved the pointer first."""

    url = "mem://"

    def __init__(self, found: list[bytes | None]) -> None:
        self.found = found

    def swap_pointer(self, target: str, envelope: bytes, *, expected: bytes | None) -> bool:
        return False

    def read_pointer(self, target: str) -> bytes | None:
        return self.found.pop(0) if len(self.found) > 1 else self.found[0]


def test_move_pointer_never_moves_down_and_gives_up_on_a_busy_store(keypair: KeyPair) -> None:
    ring = keyring_of(keypair.signer)

    def move(store: _MovedStore, version: int, digest: str = D, *, refresh: bool = False) -> Pointer:
        return move_pointer(
            store,  # type: ignore[arg-type]
            "prod",
            version,
            digest,
            keypair.signer,
            trusted=ring,
            now=NOW,
            expires_after=timedelta(days=1),
            expected=None,
            refresh=refresh,
            max_attempts=3,
        )

    at3 = sign_pointer(_pointer(3), keypair.signer)
    assert move(_MovedStore([None, at3]), 2).version == 3  # someone else's pointer is higher: left alone
    assert move(_MovedStore([at3]), 3).version == 3
    with pytest.raises(VerificationError, match="the pointer names version 3 with digest"):
        move(_MovedStore([at3]), 3, "sha256:" + "00" * 32)
    with pytest.raises(StorageError, match="other publishers kept moving the pointer"):
        move(_MovedStore([at3]), 3, refresh=True)
    with pytest.raises(StorageError, match="other publishers kept moving the pointer"):
        move(_MovedStore([sign_pointer(_pointer(1), keypair.signer)]), 2)


def test_a_symlinked_version_is_refused(tmp_path: Path, keypair: KeyPair) -> None:
    store = FileStore(tmp_path / "store")
    publish_target(store, "prod", make_body("prod", 1), keypair.signer)
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_bytes(store.read("prod", 1))
    (tmp_path / "store" / "prod" / "00000002.dsse.json").symlink_to(elsewhere)
    with pytest.raises(CorruptObjectError, match="prod version 2: is a symlink, not a regular file"):
        store.read("prod", 2)


@settings(max_examples=300, deadline=None)
@given(
    listed=st.sets(st.integers(1, 12), max_size=12),
    pointed=st.integers(1, 12),
    seen=st.none() | st.integers(1, 12),
)
def test_a_listing_passes_exactly_when_it_is_one_chain_at_the_pointer(
    listed: set[int], pointed: int, seen: int | None
) -> None:
    """The law behind issue 9 §3: versions 1..N, N the pointer's or one above, N and the pointer not below the mark."""
    latest = len(listed)
    lawful = (
        listed == set(range(1, latest + 1))
        and pointed <= latest <= pointed + 1
        and (seen is None or (seen <= latest and seen <= pointed + 1))
    )
    mark = None if seen is None else Seen(version=seen, digest=D)
    try:
        found = check_listing("prod", Listing(versions=tuple(sorted(listed)), pointer=True, strays=()))
        check_pointer("prod", _pointer(pointed), found, seen=mark, now=NOW)
    except VerificationError:
        assert not lawful
    else:
        assert lawful


def test_a_listed_pointer_that_hides_for_a_moment_is_read_again(tmp_path: Path, keypair: KeyPair) -> None:
    store = FileStore(tmp_path / "store")
    publish_target(store, "prod", make_body("prod", 1), keypair.signer)

    class Flickering:
        """The real store, except that the pointer is not found on the first read."""

        def __init__(self) -> None:
            self.hidden = True
            self.url, self.listing, self.read = store.url, store.listing, store.read

        def read_pointer(self, target: str) -> bytes | None:
            hidden, self.hidden = self.hidden, False
            return None if hidden else store.read_pointer(target)

    state = read_target(Flickering(), "prod", keyring_of(keypair.signer), now=NOW)  # type: ignore[arg-type]
    assert state.pointer is not None
    assert state.pointer.version == 1
