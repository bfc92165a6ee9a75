"""`llmcc publish` on the example repository: compile, sign, push; then verify and pull it."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from compiler.bundle.dsse import load_public_key
from tests.conftest import GitRepo, copy_example
from tests.storage._cli import llmcc
from tests.storage._support import KeyPair


@pytest.fixture
def example(example_repo: GitRepo, demo_identity: Path) -> Path:
    return example_repo.path


def test_publish_then_verify_then_pull_decrypted(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    signing = ["--signing-key", "keys/demo-signing.pem"]
    assert llmcc(example, "publish", *signing, "--events", "events.jsonl") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6
    assert all(": published version 1 sha256:" in line for line in lines)
    events = [json.loads(line) for line in (example / "events.jsonl").read_text().splitlines()]
    assert [e["data"]["version"] for e in events] == [1] * 6
    assert {e["subject"] for e in events} == {line.split(":")[0] for line in lines}
    assert all(e["type"] == "dev.llmcc.bundle.published" and e["source"] == "llmcc://llm-platform" for e in events)
    assert all(len(e["data"]["commit"]) == 40 for e in events)

    assert llmcc(example, "publish", *signing, "--events", "events.jsonl") == 0  # unchanged commit
    assert all(": unchanged at version 1 " in line for line in capsys.readouterr().out.splitlines())
    assert len((example / "events.jsonl").read_text().splitlines()) == 6

    assert llmcc(example, "verify") == 0  # store and trusted keys from llmcc.yaml
    assert len(capsys.readouterr().out.splitlines()) == 6
    assert llmcc(example, "pull", "prod") == 0
    sealed = capsys.readouterr().out
    assert "ENC[" in sealed
    out = example.parent / "prod.json"  # outside the repository: git cannot take it (issue 9 §4)
    assert llmcc(example, "pull", "prod", "--decrypt", "--out", str(out)) == 0
    opened = out.read_text()
    assert "ENC[" not in opened
    assert json.loads(opened).keys() == json.loads(sealed).keys()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    # prod@acme is wrapped for acme's own key: the demo identity cannot open it
    assert llmcc(example, "pull", "prod@acme", "--decrypt") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "none of the identities" in captured.err
    assert "can unwrap the data key" in captured.err


def test_publish_refuses_a_dirty_tree(
    example: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMCC_SIGNING_KEY_FILE", str(example / "keys" / "demo-signing.pem"))
    with open(example / "environments" / "base.yaml", "a") as f:
        f.write("\n# local edit\n")
    assert llmcc(example, "publish", "--target", "dev") == 2
    assert "uncommitted changes; commit them or pass --allow-dirty" in capsys.readouterr().err
    assert not (example / ".llmcc").exists()
    assert llmcc(example, "publish", "--target", "dev", "--allow-dirty") == 0
    assert capsys.readouterr().out.startswith("dev: published version 1 ")
    envelope = json.loads((example / ".llmcc/store/dev/00000001.dsse.json").read_bytes())
    bundle = json.loads(base64.b64decode(envelope["payload"]))
    assert bundle["metadata"]["source"]["dirty"] is True


def test_publish_needs_a_signing_key(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert llmcc(example, "publish") == 2
    assert "no signing key: pass --signing-key FILE or set LLMCC_SIGNING_KEY_FILE" in capsys.readouterr().err
    assert llmcc(example, "publish", "--signing-key", "keys/demo-signing.pub") == 2
    assert "not an unencrypted PKCS#8 PEM private key" in capsys.readouterr().err
    assert not (example / ".llmcc").exists()


def test_publish_with_an_untrusted_key_is_refused_before_anything_is_written(
    example: Path, other_keypair: KeyPair, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 9 §2: exit 3, naming the key and the trusted ones; the store is not even created."""
    key, _ = other_keypair.write(example.parent / "elsewhere", "rogue")
    rogue = other_keypair.signer.public_key.keyid
    trusted = load_public_key((example / "keys" / "demo-signing.pub").read_bytes()).keyid
    for argv in (["publish", "--target", "prod"], ["publish", "--refresh-pointer"]):
        assert llmcc(example, *argv, "--signing-key", str(key), "--events", "events.jsonl") == 3
        assert capsys.readouterr().err == (
            f"llmcc: {key}: key {rogue} is not in signing.trusted (trusted: {trusted}); "
            "readers would refuse what it signs, so nothing was published\n"
        )
    assert not (example / ".llmcc").exists()
    assert not (example / "events.jsonl").exists()
    assert llmcc(example, "publish", "--target", "prod", "--signing-key", "keys/demo-signing.pem") == 0
    assert capsys.readouterr().out.startswith("prod: published version 1 ")


def test_publish_outside_git_needs_allow_dirty(
    tmp_path: Path, demo_identity: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_example(tmp_path / "plain")
    signing = ["--signing-key", "keys/demo-signing.pem", "--target", "dev"]
    assert llmcc(root, "publish", *signing) == 2
    assert "not a git repository, so no commit to record; pass --allow-dirty" in capsys.readouterr().err
    assert llmcc(root, "publish", *signing, "--allow-dirty", "--store", "file://out") == 0
    assert (root / "out" / "dev" / "00000001.dsse.json").is_file()


def test_an_unwritable_events_file_stops_publish_before_anything_is_published(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signing = ["--signing-key", "keys/demo-signing.pem"]
    assert llmcc(example, "publish", *signing, "--events", "llmcc.yaml/events.jsonl") == 2
    assert "llmcc.yaml/events.jsonl: cannot append the event" in capsys.readouterr().err
    assert not (example / ".llmcc").exists()  # nothing published, so no event was lost


def test_refresh_pointer_re_signs_every_published_target(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    signing = ["--signing-key", "keys/demo-signing.pem"]
    assert llmcc(example, "publish", "--refresh-pointer", *signing) == 2  # no store yet
    assert capsys.readouterr().err.endswith("(the directory does not exist)\n")
    (example / ".llmcc" / "store").mkdir(parents=True)
    assert llmcc(example, "publish", "--refresh-pointer", *signing) == 3
    assert capsys.readouterr().err.endswith(": nothing published, so no pointer to refresh\n")
    assert llmcc(example, "publish", *signing, "--target", "prod", "--target", "dev") == 0
    capsys.readouterr()
    pointer = example / ".llmcc" / "store" / "prod" / "latest.dsse.json"
    before = pointer.read_bytes()
    (example / "llmcc.yaml").write_text(
        (example / "llmcc.yaml").read_text().replace("storage:\n", "storage:\n  pointer_expiry: 36h\n")
    )
    assert llmcc(example, "publish", "--refresh-pointer", *signing) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" valid until ")[0] for line in out] == [
        "dev: pointer to version 1",
        "prod: pointer to version 1",
    ]
    assert pointer.read_bytes() != before
    assert llmcc(example, "publish", "--refresh-pointer", *signing, "--target", "staging") == 3
    assert "staging: nothing published in file://.llmcc/store, so no pointer to refresh" in capsys.readouterr().err
    assert llmcc(example, "verify") == 0
