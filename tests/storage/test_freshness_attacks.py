"""Issue 9 §2-§3, attacked: races, re-pointed store paths, a reader state others can touch, a widened keyring.

Each test failed before its fix; the README section "What a reader refuses" says what they guarantee.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from compiler.bundle.dsse import load_public_key
from compiler.errors import LlmccError, VerificationError
from compiler.freshness import Seen
from compiler.publish import publish_target, refresh_pointer
from compiler.reader import read_target
from compiler.storage.base import Listing
from compiler.storage.file import FileStore
from compiler.storage.seen import SeenFile, default_state_dir
from tests.conftest import GitRepo
from tests.storage._cli import llmcc
from tests.storage._support import KeyPair, keyring_of, make_body

D = "sha256:" + "ab" * 32


def test_a_publish_between_a_readers_two_reads_is_not_a_rollback(tmp_path: Path, keypair: KeyPair) -> None:
    """Publish claims N+1, then moves the pointer: a reader listing first and reading the pointer second
    saw a pointer above its listing and called a concurrent publish a rollback (exit 3 during every deploy)."""
    path = tmp_path / "store"
    publish_target(FileStore(path), "prod", make_body("prod", 1), keypair.signer)

    class PublishAfterListing(FileStore):
        """The real file store, where another publisher's whole publish lands right after the first listing."""

        landed = False

        def listing(self, target: str) -> Listing:
            listing = super().listing(target)
            if not self.landed:
                self.landed = True
                publish_target(FileStore(path), "prod", make_body("prod", 2), keypair.signer)
            return listing

    state = read_target(PublishAfterListing(path), "prod", keyring_of(keypair.signer), now=datetime.now(UTC))
    assert state.latest is not None
    assert state.latest.version == 1
    again = read_target(FileStore(path), "prod", keyring_of(keypair.signer), now=datetime.now(UTC), seen=state.seen)
    assert again.latest is not None
    assert again.latest.version == 2


def test_a_symlinked_store_path_re_pointed_at_an_old_copy_keeps_the_readers_mark(
    tmp_path: Path, keypair: KeyPair, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reader's marks were keyed by the store path with symlinks resolved: re-pointing the link at an
    older, still validly signed copy gave the reader fresh, empty state, and the rollback passed."""
    good, old = tmp_path / "good", tmp_path / "old"
    publish_target(FileStore(good), "prod", make_body("prod", 1), keypair.signer)
    shutil.copytree(good, old)
    publish_target(FileStore(good), "prod", make_body("prod", 2), keypair.signer)
    root = tmp_path / "reader"
    keypair.write(root / "keys", "ci")
    link = tmp_path / "store"
    link.symlink_to(good)
    flags = ["--store", f"file://{link}", "--trusted-key", "keys/ci.pub", "--state-dir", "state"]
    assert llmcc(root, "pull", "prod", *flags) == 0
    capsys.readouterr()
    link.unlink()
    link.symlink_to(old)
    assert llmcc(root, "pull", "prod", *flags) == 3
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == (
        "",
        "llmcc: prod: the latest version is 1, older than version 2 this reader already accepted (rollback?)\n",
    )


def test_a_reader_state_that_others_can_touch_is_refused_unread(tmp_path: Path) -> None:
    """A FIFO as the state file hung pull; a symlink, a huge file, a state directory another user owns or
    can write were read as if they were ours (another user could drop a mark and so allow a rollback)."""
    directory = tmp_path / "state"
    marks = SeenFile(directory, "file:///srv/store")
    marks.advance({"prod": Seen(version=1, digest=D)})
    assert directory.stat().st_mode & 0o777 == 0o700
    saved = marks.path.read_bytes()

    marks.path.unlink()
    os.mkfifo(marks.path)
    with pytest.raises(LlmccError, match=r"cannot read the reader state: it is not a regular file$"):
        marks.load()
    marks.path.unlink()
    (tmp_path / "elsewhere.json").write_bytes(saved)
    marks.path.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(LlmccError, match=r"cannot read the reader state: it is a symlink$"):
        marks.load()
    marks.path.unlink()
    marks.path.write_bytes(saved + b" " * (16 * 1024 * 1024))
    with pytest.raises(LlmccError, match="not a valid llmcc reader state"):
        marks.load()

    marks.path.write_bytes(saved)
    marks.path.chmod(0o666)
    with pytest.raises(LlmccError, match="the reader state file is another user's or writable by group or others"):
        marks.load()
    marks.path.chmod(0o600)
    assert marks.load() == {"prod": Seen(version=1, digest=D)}
    changes = [lambda: directory.chmod(0o777)]
    if os.geteuid() == 0:  # only root can give a directory away
        changes.append(lambda: os.chown(directory, os.geteuid() + 1, -1))
    for change in changes:
        change()
        for step in (marks.load, lambda: marks.advance({"prod": Seen(version=2, digest=D)})):
            with pytest.raises(LlmccError, match="the reader state directory is another user's or writable by"):
                step()
        if os.geteuid() == 0:
            os.chown(directory, 0, -1)
        directory.chmod(0o700)
    assert marks.load() == {"prod": Seen(version=1, digest=D)}


def test_publish_trusted_key_cannot_widen_signing_trusted(
    example_repo: GitRepo, demo_identity: Path, other_keypair: KeyPair, capsys: pytest.CaptureFixture[str]
) -> None:
    """`publish --signing-key rogue --trusted-key rogue.pub` published a first version that readers of
    llmcc.yaml refuse for good: the §2 case through a flag."""
    example = example_repo.path
    key, pub = other_keypair.write(example.parent / "elsewhere", "rogue")
    rogue = other_keypair.signer.public_key.keyid
    trusted = load_public_key((example / "keys" / "demo-signing.pub").read_bytes()).keyid
    for argv in (["--target", "prod"], ["--refresh-pointer"]):
        assert llmcc(example, "publish", *argv, "--signing-key", str(key), "--trusted-key", str(pub)) == 3
        assert capsys.readouterr().err == (
            f"llmcc: {key}: key {rogue} is not in signing.trusted (trusted: {trusted}); "
            "readers would refuse what it signs, so nothing was published\n"
        )
    assert not (example / ".llmcc").exists()


def test_a_pointer_valid_for_years_is_refused_until_re_signed(
    tmp_path: Path, keypair: KeyPair, capsys: pytest.CaptureFixture[str]
) -> None:
    """One refresh with a 99999d expiry (a valid setting) made an old copy of the store replayable to every
    new reader for 273 years. Readers now refuse a pointer valid for more than 366 days (plus a day of skew)."""
    path = tmp_path / "store"
    store = FileStore(path)
    publish_target(store, "prod", make_body("prod", 1), keypair.signer)
    trusted = keyring_of(keypair.signer)
    now = datetime.now(UTC)
    refresh_pointer(store, "prod", keypair.signer, trusted=trusted, now=now, expires_after=timedelta(days=99999))
    root = tmp_path / "reader"
    keypair.write(root / "keys", "ci")
    flags = ["--store", f"file://{path}", "--trusted-key", "keys/ci.pub", "--state-dir", "state"]
    assert llmcc(root, "pull", "prod", *flags) == 3
    assert capsys.readouterr().err.startswith("llmcc: prod: the signed pointer is valid until 2300-")
    refresh_pointer(store, "prod", keypair.signer, trusted=trusted, now=now, expires_after=timedelta(days=366))
    assert llmcc(root, "pull", "prod", *flags) == 0
    with pytest.raises(VerificationError, match="more than 366 days from now"):
        read_target(store, "prod", trusted, now=now - timedelta(days=1, seconds=1))


def test_default_state_dir_without_a_home_or_with_a_relative_xdg_state_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative XDG_STATE_HOME put the marks under the current directory (the spec says ignore it); a
    container user without HOME or passwd entry crashed pull with an internal error (exit 70)."""
    assert default_state_dir({"XDG_STATE_HOME": "state", "HOME": "/home/r"}) == Path("/home/r/.local/state/llmcc/seen")
    assert default_state_dir({"XDG_STATE_HOME": "/var/s"}) == Path("/var/s/llmcc/seen")

    def no_home() -> Path:  # what Path.home() does for a uid without a passwd entry
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", no_home)
    with pytest.raises(LlmccError, match="no home directory for the reader state: set XDG_STATE_HOME or pass"):
        default_state_dir({})


def test_a_target_name_that_is_not_a_directory_is_tampering(
    tmp_path: Path, keypair: KeyPair, capsys: pytest.CaptureFixture[str]
) -> None:
    """A FIFO or file in place of a target's directory: verify skipped the target (exit 0 on the others)
    and pull said "cannot read" (exit 2), where every other tampering is exit 3."""
    path = tmp_path / "store"
    for target in ("dev", "prod"):
        publish_target(FileStore(path), target, make_body(target, 1), keypair.signer)
    shutil.rmtree(path / "prod")
    os.mkfifo(path / "prod")
    root = tmp_path / "reader"
    keypair.write(root / "keys", "ci")
    flags = ["--store", f"file://{path}", "--trusted-key", "keys/ci.pub"]
    assert llmcc(root, "verify", *flags) == 3
    assert capsys.readouterr().err == f"llmcc: file://{path}: prod: is not a directory; refusing to read it\n"
    assert llmcc(root, "pull", "prod", *flags, "--state-dir", "state") == 3
    assert capsys.readouterr().err == (
        f"llmcc: file://{path}: prod pointer: the target is not a directory; refusing to read it\n"
    )


def test_two_readers_recording_two_digests_for_one_version_is_refused(tmp_path: Path) -> None:
    """Each reader checks its chain against the mark it loaded; a concurrent reader that accepted another
    chain (a store serving two) then silently replaced the first one's mark at the same version."""
    marks = SeenFile(tmp_path / "state", "file:///srv/store")
    marks.advance({"prod": Seen(version=2, digest=D)})
    marks.advance({"prod": Seen(version=2, digest=D)})
    other = "sha256:" + "cd" * 32
    with pytest.raises(VerificationError, match=f"prod version 2 was accepted with digest {D} by another reader"):
        marks.advance({"prod": Seen(version=2, digest=other)})
    assert marks.load() == {"prod": Seen(version=2, digest=D)}
