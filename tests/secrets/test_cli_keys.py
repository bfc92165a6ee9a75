"""``llmcc keys generate|rotate|update`` through the command module's real entry point."""

from __future__ import annotations

import argparse
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from compiler.cli import Context
from compiler.cli import keys as keys_cmd
from compiler.errors import InputError, LlmccError, SecretsError, UsageError
from compiler.secrets.identity import load_identities
from compiler.secrets.kek.age import AgeKeyProvider
from compiler.secrets.keyfile import read_target_key
from tests.secrets._secrets_support import AgeKeys


def run(root: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="llmcc keys")
    keys_cmd.add_arguments(parser)
    return keys_cmd.run(parser.parse_args(argv), Context(root=root, quiet=True, debug=False))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generate_age(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "generate", "--age", "keys/ci.agekey") == 0
    key, pub = tmp_path / "keys/ci.agekey", tmp_path / "keys/ci.agekey.pub"
    assert mode(key) == 0o600
    assert mode(pub) == 0o644
    recipient = pub.read_text().strip()
    assert recipient.startswith("age1")
    lines = key.read_text().splitlines()
    assert lines[0].startswith("# created: ")
    assert lines[1] == f"# public key: {recipient}"
    assert lines[2].startswith("AGE-SECRET-KEY-1")
    ids = load_identities(key, {})
    assert ids.recipients() == [recipient]
    out = capsys.readouterr().out
    assert out == f"wrote {key} (private key, mode 0600) and {pub}\n"
    assert lines[2] not in out
    p = AgeKeyProvider([recipient], ids)
    assert p.unwrap(p.wrap(b"k" * 32)) == b"k" * 32


def test_generate_signing(tmp_path: Path) -> None:
    key = tmp_path / "ci.pem"
    assert run(tmp_path, "generate", "--signing", str(key)) == 0
    assert mode(key) == 0o600
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    public = serialization.load_pem_public_key((tmp_path / "ci.pem.pub").read_bytes())
    assert isinstance(private, Ed25519PrivateKey)
    assert isinstance(public, Ed25519PublicKey)
    assert key.read_bytes().startswith(b"-----BEGIN " + b"PRIVATE KEY-----")  # split: the secrets guard scans this file
    assert (tmp_path / "ci.pem.pub").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    public.verify(private.sign(b"msg"), b"msg")


@pytest.mark.parametrize("existing", ["k", "k.pub"])
def test_generate_refuses_to_overwrite(tmp_path: Path, existing: str) -> None:
    (tmp_path / existing).write_text("keep me\n")
    with pytest.raises(UsageError, match="already exists") as info:
        run(tmp_path, "generate", "--age", "k")
    assert info.value.exit_code == 2
    assert (tmp_path / existing).read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [existing]


def test_generate_needs_one_kind(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        run(tmp_path, "generate")


def test_rotate_and_update(
    repo: Path, age_keys: AgeKeys, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, clean_env: Path
) -> None:
    assert run(repo, "rotate", "prod") == 0
    out = capsys.readouterr().out
    assert out.startswith("rotated keys/targets/prod.yaml (new data key, created ")
    first = read_target_key((repo / "keys/targets/prod.yaml").read_bytes(), path="p")
    assert first.consumer.key_id == age_keys.default.recipient
    assert not list((repo / "keys/targets").glob(".*"))  # no temp files left behind

    assert run(repo, "rotate", "prod@acme") == 0
    capsys.readouterr()
    assert run(repo, "update") == 0  # the targets without a data key get one; no identity needed
    assert capsys.readouterr().out == (
        "created keys/targets/dev.yaml (new data key for dev)\n"
        "created keys/targets/staging.yaml (new data key for staging)\n"
    )
    assert run(repo, "update") == 0
    assert capsys.readouterr().out == ""  # nothing changed

    manifest = repo / "llmcc.yaml"
    text = manifest.read_text()
    added = text.replace(
        f'"*": {{provider: age, recipients: [{age_keys.default.recipient}]}}',
        f'"*": {{provider: age, recipients: [{age_keys.default.recipient}, {age_keys.outsider.recipient}]}}',
    )
    manifest.write_text(added)
    with pytest.raises(SecretsError, match="--identity FILE"):
        run(repo, "update")  # re-wrapping needs the compiler identity
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2  # dev and staging named too, in the same run; prod is the error raised
    assert all(line.startswith("llmcc: no age identity") for line in err)
    assert run(repo, "update", "--identity", str(age_keys.compiler.file)) == 0
    assert capsys.readouterr().out == (
        "rewrapped keys/targets/dev.yaml (recipients added)\n"
        "rewrapped keys/targets/staging.yaml (recipients added)\n"
        "rewrapped keys/targets/prod.yaml (recipients added)\n"
    )
    second = read_target_key((repo / "keys/targets/prod.yaml").read_bytes(), path="p")
    assert second.commitment == first.commitment
    assert second.created_at == first.created_at

    manifest.write_text(text)  # the outsider is removed again
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(age_keys.compiler.file))
    assert run(repo, "update", "--target", "prod", "--target", "prod@acme") == 0
    assert capsys.readouterr().out == (
        f"rotated keys/targets/prod.yaml (consumer key lost recipient {age_keys.outsider.recipient})\n"
    )
    third = read_target_key((repo / "keys/targets/prod.yaml").read_bytes(), path="p")
    assert third.commitment != first.commitment
    with pytest.raises(SecretsError):
        AgeKeyProvider([age_keys.outsider.recipient], load_identities(age_keys.outsider.file, {})).unwrap(
            third.consumer
        )


def test_update_creates_missing_keys_and_removes_orphans(
    repo: Path, age_keys: AgeKeys, capsys: pytest.CaptureFixture[str], clean_env: Path
) -> None:
    assert run(repo, "update", "--target", "dev") == 0
    assert capsys.readouterr().out == "created keys/targets/dev.yaml (new data key for dev)\n"
    orphan = repo / "keys/targets/prod@gone.yaml"
    orphan.write_bytes((repo / "keys/targets/dev.yaml").read_bytes())
    (repo / "keys/targets/notes.txt").write_text("kept\n")
    assert run(repo, "update", "--target", "prod") == 0  # a selection leaves orphans alone
    assert orphan.exists()
    capsys.readouterr()
    assert run(repo, "update") == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "removed keys/targets/prod@gone.yaml (no such target in llmcc.yaml)"
    )
    assert not orphan.exists()
    assert (repo / "keys/targets/notes.txt").exists()


def test_update_goes_on_past_a_broken_key_file(
    repo: Path, age_keys: AgeKeys, capsys: pytest.CaptureFixture[str], clean_env: Path
) -> None:
    (repo / "keys/targets").mkdir(parents=True)
    (repo / "keys/targets/dev.yaml").write_text("apiVersion: [\n")
    with pytest.raises(InputError, match=r"run: llmcc keys rotate dev$"):
        run(repo, "update")
    assert capsys.readouterr().out.splitlines() == [
        "created keys/targets/staging.yaml (new data key for staging)",
        "created keys/targets/prod.yaml (new data key for prod)",
        "created keys/targets/prod@acme.yaml (new data key for prod@acme)",
    ]


def test_rotate_several_targets_or_all(repo: Path, capsys: pytest.CaptureFixture[str], clean_env: Path) -> None:
    assert run(repo, "rotate", "prod", "dev") == 0
    assert [line.split(" (")[0] for line in capsys.readouterr().out.splitlines()] == [
        "rotated keys/targets/dev.yaml",
        "rotated keys/targets/prod.yaml",
    ]
    before = (repo / "keys/targets/prod.yaml").read_bytes()
    assert run(repo, "rotate") == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
    assert (repo / "keys/targets/prod.yaml").read_bytes() != before


def test_rotate_unknown_target_and_mismatched_file(repo: Path, clean_env: Path) -> None:
    with pytest.raises(UsageError, match="unknown target"):
        run(repo, "rotate", "qa")
    run(repo, "rotate", "dev")
    (repo / "keys/targets/prod.yaml").write_bytes((repo / "keys/targets/dev.yaml").read_bytes())
    with pytest.raises(LlmccError, match="holds the key of target 'dev'"):
        run(repo, "update")


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(LlmccError, match=r"llmcc\.yaml: cannot read"):
        run(tmp_path, "rotate", "prod")
