"""The one secret masker (issue 14 §5): one rule, and every output that shows values uses it.

A value is secret when its schema marks it ``x-secret`` or a SOPS file set
it. ``diff`` always masked both; ``explain`` and policy findings masked the
marked fields only, so a canary in a SOPS file under an unmarked field was
printed by ``explain`` and quoted by a failing rule.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.diff.masking import SecretDigest, mask_secrets
from compiler.masking import SECRET_TEXT, mask_paths, mask_text
from compiler.secrets.sops import encrypt_sops
from tests.conftest import init_repo
from tests.secrets._secrets_support import new_canary

SCHEMA = {
    "type": "object",
    "properties": {"admin_password": {"type": "string", "x-secret": True}, "note": {"type": "string"}},
}


def test_the_rule_masks_whole_subtrees_null_included_and_copies_only_the_way() -> None:
    shared = {"host": "h"}
    value = {"db": {"password": None, "opts": {"a": 1}}, "plain": shared, "keys": [{"k": "v"}]}
    paths = [("db", "opts", "a"), ("db", "opts"), ("db", "password"), ("missing", "x"), ("keys", 0, "k"), ("keys", 5)]
    masked = mask_text(value, paths)
    assert masked == {
        "db": {"password": SECRET_TEXT, "opts": SECRET_TEXT},
        "plain": {"host": "h"},
        "keys": [{"k": SECRET_TEXT}],
    }
    assert masked["plain"] is shared  # not on the way to a secret: shared
    assert value["db"] == {"password": None, "opts": {"a": 1}}  # the input is never changed
    seen: list[object] = []
    mask_paths(value, paths, lambda v: seen.append(v) or v)
    assert sorted(map(repr, seen)) == sorted(map(repr, [{"a": 1}, None, "v"]))  # once per masked subtree


def test_diff_digests_follow_the_same_rule() -> None:
    masked = mask_secrets({"a": {"b": 1}, "n": None}, [("a",), ("a", "b"), ("n",)], b"k" * 32)
    assert isinstance(masked, dict)
    assert isinstance(masked["a"], SecretDigest)
    assert isinstance(masked["n"], SecretDigest)  # null is masked like any value


def _repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, note: str, rules: str = "[]\n") -> tuple[Path, Path]:
    """An ``llmcc init`` repository whose SOPS file sets ``vault.note``, a field its schema does NOT mark secret."""
    for name in ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    dest = tmp_path / "conf"
    assert main(["init", str(dest)]) == 0
    identity = tmp_path / "config-home/llmcc/keys/conf/age.key"
    (dest / "schemas/vault.schema.json").write_text(json.dumps(SCHEMA))
    (dest / "templates/vault.yaml").write_text("{}\n")
    plain = (
        f"modules:\n  assistant:\n    api_key: {new_canary()}\n"
        f"  vault:\n    admin_password: {new_canary()}\n    note: {note}\n"
    )
    sealed = encrypt_sops(plain.encode(), path="environments/prod.secrets.sops.yaml", cwd=dest)
    (dest / "environments/prod.secrets.sops.yaml").write_bytes(sealed)
    (dest / "policies/vault.yaml").write_text(rules)
    init_repo(dest).commit("init")
    return dest, identity


def test_explain_masks_a_value_a_sops_file_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    canary = new_canary()
    repo, identity = _repo(tmp_path, monkeypatch, canary)
    capsys.readouterr()
    assert main(["-C", str(repo), "explain", "prod", "vault.note", "--identity", str(identity)]) == 0
    out, err = capsys.readouterr()
    assert canary not in out + err  # before: the decrypted note, in plaintext
    assert SECRET_TEXT in out
    argv = ["explain", "prod", "vault", "$", "--format", "json", "--identity", str(identity)]
    assert main(["-C", str(repo), *argv]) == 0
    out, err = capsys.readouterr()
    assert canary not in out + err
    assert json.loads(out)["value"] == {"admin_password": SECRET_TEXT, "note": SECRET_TEXT}


def test_a_failing_rule_on_a_sops_value_does_not_quote_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    canary = new_canary()
    rules = '- name: note-is-set\n  rule: config.vault.note == "expected"\n'
    repo, identity = _repo(tmp_path, monkeypatch, canary, rules)
    capsys.readouterr()
    code = main(["-C", str(repo), "validate", "--target", "prod", "--identity", str(identity)])
    out, err = capsys.readouterr()
    assert code == 1  # judged on the real value
    assert canary not in out + err  # before: 'config.vault.note is "canary-...", expected == "expected"'
    assert "values not shown: the rule reads secret vault.note" in err


def test_diff_masks_a_value_a_sops_file_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = new_canary(), new_canary()
    repo, identity = _repo(tmp_path, monkeypatch, old)
    plain = f"modules:\n  vault:\n    admin_password: {new_canary()}\n    note: {new}\n"
    sealed = encrypt_sops(plain.encode(), path="environments/prod.secrets.sops.yaml", cwd=repo)
    (repo / "environments/prod.secrets.sops.yaml").write_bytes(sealed)
    capsys.readouterr()
    code = main(["-C", str(repo), "diff", "HEAD", "--target", "prod", "--identity", str(identity)])
    out, err = capsys.readouterr()
    assert code == 0
    assert old not in out + err
    assert new not in out + err
    assert "<secret changed>" in out
