"""Issue 13 §4: a target gets a new version only when what its consumers load changes.

Real git repositories (the example), the real sops and age keys, ``llmcc publish``
through main(): a commit that changes one target's values versions that target
only; the others' signed pointers record the commit; ``verify --git`` checks it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from compiler.bundle.canonical import canonical_json
from compiler.bundle.dsse import POINTER_PAYLOAD_TYPE, Keyring, load_public_key, sign_envelope
from compiler.delta import envelope_payload
from compiler.errors import VerificationError
from compiler.freshness import Pointer, new_pointer, sign_pointer, verify_pointer
from compiler.publish import publish_target
from compiler.storage.file import FileStore
from tests.conftest import GitRepo
from tests.storage._cli import llmcc
from tests.storage._support import KeyPair, keyring_of, make_body

SIGNING = ("--signing-key", "keys/demo-signing.pem")
TARGETS = ["dev", "prod", "prod@acme", "prod@globex", "staging", "staging@acme"]


@pytest.fixture
def example(example_repo: GitRepo, demo_identity: Path) -> GitRepo:
    (example_repo.path / ".gitignore").write_text(".llmcc/\n")  # as llmcc init writes it
    example_repo.commit("ignore the local store")
    return example_repo


def _pointer(repo: GitRepo, target: str) -> Pointer:
    ring = Keyring([load_public_key((repo.path / "keys" / "demo-signing.pub").read_bytes())])
    envelope = FileStore(repo.path / ".llmcc" / "store").read_pointer(target)
    assert envelope is not None
    return verify_pointer(envelope, target, ring)


def _events(repo: GitRepo) -> list[dict]:
    return [json.loads(line) for line in (repo.path.parent / "events.jsonl").read_text().splitlines()]


def _edit(repo: GitRepo, path: str, old: str, new: str, message: str) -> str:
    file = repo.path / path
    text = file.read_text()
    assert old in text
    file.write_text(text.replace(old, new))
    repo.commit(message)
    return repo.git("rev-parse", "HEAD").strip()


def test_only_the_changed_target_gets_a_new_version(example: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    first = example.git("rev-parse", "HEAD").strip()
    assert llmcc(example.path, "publish", *SIGNING, "--events", "../events.jsonl") == 0
    capsys.readouterr()
    assert {t: _pointer(example, t).commit for t in TARGETS} == dict.fromkeys(TARGETS, first)

    second = _edit(example, "environments/dev.yaml", "temperature: 0.9", "temperature: 0.8", "dev runs cooler")
    assert llmcc(example.path, "publish", *SIGNING, "--events", "../events.jsonl") == 0
    out = capsys.readouterr().out.splitlines()
    assert sorted(line.split(" sha256:")[0] for line in out) == [
        "dev: published version 2",
        *(f"{t}: unchanged at version 1, now at commit {second[:12]}" for t in TARGETS[1:]),
    ]
    assert sorted((example.path / ".llmcc/store/prod").iterdir()) == [
        example.path / ".llmcc/store/prod/00000001.dsse.json",  # prod's secrets, sealed again, are the same bytes
        example.path / ".llmcc/store/prod/latest.dsse.json",
    ]
    assert {t: _pointer(example, t).commit for t in TARGETS} == dict.fromkeys(TARGETS, second)
    assert [_pointer(example, t).version for t in TARGETS] == [2, 1, 1, 1, 1, 1]
    events = _events(example)[len(TARGETS) :]
    assert sorted((e["subject"], e["type"], e["data"]["version"], e["data"]["commit"]) for e in events) == [
        ("dev", "dev.llmcc.bundle.published", 2, second),
        *((t, "dev.llmcc.bundle.unchanged", 1, second) for t in TARGETS[1:]),
    ]
    assert len({e["id"] for e in _events(example)}) == len(_events(example))

    # the same commit again: nothing new, no event, no pointer re-signed
    pointers = {t: (example.path / ".llmcc/store" / t / "latest.dsse.json").read_bytes() for t in TARGETS}
    assert llmcc(example.path, "publish", *SIGNING, "--events", "../events.jsonl") == 0
    assert all(" unchanged at version " in line for line in capsys.readouterr().out.splitlines())
    assert len(_events(example)) == 2 * len(TARGETS)
    assert pointers == {t: (example.path / ".llmcc/store" / t / "latest.dsse.json").read_bytes() for t in TARGETS}

    assert llmcc(example.path, "verify", "--git") == 0
    out = capsys.readouterr().out
    assert "prod: versions 1-1 verified and git ancestry, latest sha256:" in out
    assert f"at commit {second[:12]}" in out

    # the daily refresh keeps the commit the pointer vouches for
    assert llmcc(example.path, "publish", *SIGNING, "--refresh-pointer") == 0
    capsys.readouterr()
    assert {t: _pointer(example, t).commit for t in TARGETS} == dict.fromkeys(TARGETS, second)
    assert llmcc(example.path, "verify", "--git") == 0


def test_a_data_key_rotation_is_a_new_version(example: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    """A change of encryption (rotate: new data key, values sealed again) reaches the consumers."""
    assert llmcc(example.path, "publish", *SIGNING, "-t", "dev", "-t", "staging") == 0
    assert llmcc(example.path, "keys", "rotate", "dev") == 0
    example.commit("rotate dev's data key")
    capsys.readouterr()
    assert llmcc(example.path, "publish", *SIGNING, "-t", "dev", "-t", "staging", "--events", "../events.jsonl") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("dev: published version 2 sha256:")
    assert out[1].startswith("staging: unchanged at version 1, now at commit ")
    assert [e["type"] for e in _events(example)] == ["dev.llmcc.bundle.published", "dev.llmcc.bundle.unchanged"]


def test_a_reader_change_is_a_new_version(example: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    """``keys update`` after a new consumer key in llmcc.yaml: the wrapped data key changes, so does the version."""
    assert llmcc(example.path, "publish", *SIGNING, "-t", "dev", "-t", "staging") == 0
    acme = "age122exdj8qu70444t69gkqdtgr2lagkmrytfp2ttwyfc4zc6e6waks395cre"
    manifest = example.path / "llmcc.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "  targets:                  # consumers' key-encryption keys, most specific match wins\n",
            "  targets:                  # consumers' key-encryption keys, most specific match wins\n"
            f'    "dev": {{provider: age, recipients: [{acme}]}}\n',
        )
    )
    assert llmcc(example.path, "keys", "update") == 0
    example.commit("dev is read with acme's key now")
    capsys.readouterr()
    assert llmcc(example.path, "publish", *SIGNING, "-t", "dev", "-t", "staging") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("dev: published version 2 sha256:")
    assert out[1].startswith("staging: unchanged at version 1, now at commit ")


def test_a_dirty_publish_of_unchanged_content_records_no_commit(
    example: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    first = example.git("rev-parse", "HEAD").strip()
    assert llmcc(example.path, "publish", *SIGNING, "-t", "dev") == 0
    with open(example.path / "environments" / "base.yaml", "a") as f:
        f.write("\n# a comment changes no value\n")
    capsys.readouterr()
    assert llmcc(example.path, "publish", *SIGNING, "-t", "dev", "--allow-dirty", "--events", "../events.jsonl") == 0
    assert capsys.readouterr().out.startswith("dev: unchanged at version 1 sha256:")
    assert _pointer(example, "dev").commit == first  # the dirty tree is no commit: the pointer keeps its own
    assert not (example.path.parent / "events.jsonl").read_text()


def test_verify_git_refuses_a_pointer_commit_outside_history(
    example: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pointer vouching for a commit not in this repository, or behind its version's commit, is reported."""
    assert llmcc(example.path, "publish", *SIGNING, "-t", "dev") == 0
    second = _edit(example, "environments/dev.yaml", "# dev:", "# dev, still:", "a comment")
    assert llmcc(example.path, "publish", *SIGNING, "-t", "dev") == 0
    assert _pointer(example, "dev").commit == second
    example.git("reset", "--hard", "HEAD~1")
    example.git("reflog", "expire", "--expire=now", "--all")
    example.git("gc", "--prune=now", "--quiet")
    capsys.readouterr()
    assert llmcc(example.path, "verify", "--git", "-t", "dev") == 3
    err = capsys.readouterr().err
    assert f"dev: pointer: commit {second[:12]} is not in the repository" in err


def test_the_pointer_commit_is_signed_and_checked(keypair: KeyPair) -> None:
    ring = keyring_of(keypair.signer)
    now = datetime(2026, 11, 29, tzinfo=UTC)
    with_commit = new_pointer(
        "prod", 2, "sha256:" + "a" * 64, now=now, expires_after=timedelta(days=1), commit="c" * 40
    )
    assert verify_pointer(sign_pointer(with_commit, keypair.signer), "prod", ring) == with_commit
    legacy = new_pointer("prod", 2, "sha256:" + "a" * 64, now=now, expires_after=timedelta(days=1))
    envelope = sign_pointer(legacy, keypair.signer)
    assert b"commit" not in envelope_payload(envelope)  # a pointer without one is the pointer of before
    assert verify_pointer(envelope, "prod", ring).commit is None
    for bad in ("C" * 40, "c" * 39, 7):
        with pytest.raises(ValueError, match="pointer commit must be a full git object id"):
            new_pointer("prod", 2, "sha256:" + "a" * 64, now=now, expires_after=timedelta(days=1), commit=bad)  # type: ignore[arg-type]
        payload = json.loads(envelope_payload(envelope))
        forged = sign_envelope(
            canonical_json({**payload, "commit": bad}), keypair.signer, payload_type=POINTER_PAYLOAD_TYPE
        )
        with pytest.raises(VerificationError, match="prod pointer: version, digest, expires or commit is malformed"):
            verify_pointer(forged, "prod", ring)
    payload = json.loads(envelope_payload(envelope))
    extra = sign_envelope(canonical_json({**payload, "source": "x"}), keypair.signer, payload_type=POINTER_PAYLOAD_TYPE)
    with pytest.raises(VerificationError, match="must have exactly the keys"):
        verify_pointer(extra, "prod", ring)


def test_publish_target_records_only_a_clean_commit(tmp_path: Path, keypair: KeyPair) -> None:
    store = FileStore(tmp_path / "store")
    body = make_body("prod", 1)
    assert publish_target(store, "prod", body, keypair.signer).created
    dirty = make_body("prod", 1)
    dirty["metadata"]["source"] = {**dirty["metadata"]["source"], "commit": "b" * 40, "dirty": True}
    again = publish_target(store, "prod", dirty, keypair.signer)
    assert (again.created, again.recorded) == (False, False)
    newer = make_body("prod", 1)
    newer["metadata"]["source"] = {**newer["metadata"]["source"], "commit": "b" * 40}
    newer["metadata"]["compiler"] = "llmcc 9.9.9"  # another compiler, same content
    result = publish_target(store, "prod", newer, keypair.signer)
    assert (result.created, result.recorded, result.version) == (False, True, 1)
    ring = keyring_of(keypair.signer)
    assert verify_pointer(store.read_pointer("prod") or b"", "prod", ring).commit == "b" * 40
    outside = make_body("prod", 1)
    outside["metadata"]["source"] = None
    assert publish_target(store, "prod", outside, keypair.signer).recorded is False
    assert verify_pointer(store.read_pointer("prod") or b"", "prod", ring).commit == "b" * 40


def test_publishing_an_older_commit_again_keeps_the_newer_one_recorded(
    example: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """A re-run of an old pipeline (same content) must not move the pointer's commit back in history."""
    first = example.git("rev-parse", "HEAD").strip()
    assert llmcc(example.path, "publish", *SIGNING, "-t", "dev") == 0
    second = _edit(example, "environments/dev.yaml", "# dev:", "# dev, still:", "a comment")
    assert llmcc(example.path, "publish", *SIGNING, "-t", "dev") == 0
    pointer = (example.path / ".llmcc/store/dev/latest.dsse.json").read_bytes()
    example.git("checkout", "-q", "--detach", first)
    capsys.readouterr()
    assert llmcc(example.path, "publish", *SIGNING, "-t", "dev", "--events", "../events.jsonl") == 0
    assert capsys.readouterr().out.startswith("dev: unchanged at version 1 sha256:")
    assert _pointer(example, "dev").commit == second
    assert (example.path / ".llmcc/store/dev/latest.dsse.json").read_bytes() == pointer
    assert not (example.path.parent / "events.jsonl").read_text()
    # the recorded commit is unknown to this clone (history rewritten, or another repository): the new one is recorded
    example.git("checkout", "-q", "-B", "main-again", first)
    (holding,) = example.git("branch", "--format=%(refname:short)", "--contains", second).split()
    example.git("branch", "-D", "-q", holding)
    example.git("reflog", "expire", "--expire=now", "--all")
    example.git("gc", "--prune=now", "--quiet")
    assert llmcc(example.path, "publish", *SIGNING, "-t", "dev") == 0
    assert _pointer(example, "dev").commit == first
