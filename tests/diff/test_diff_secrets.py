"""Secrets in diffs: `<secret changed>` and friends, never a plaintext value, never ciphertext."""

from __future__ import annotations

import json
import uuid

import pytest

from compiler.cli import diff as diff_cmd
from tests.conftest import DEMO_IDENTITY, GitRepo
from tests.diff._support import encrypt, run_command, seed

SECRETS = "environments/prod.secrets.sops.yaml"


def _canary() -> str:
    return f"canary-{uuid.uuid4()}"


def _secret_doc(value: str) -> str:
    return f"modules:\n  engine:\n    api_key: {value}\n"


def _diff_all_formats(repo: GitRepo, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, str]:
    outputs = {}
    for identity in ([], ["--identity", str(DEMO_IDENTITY)]):
        for fmt in ("text", "markdown", "json"):
            code = run_command(diff_cmd, repo.path, *args, "--format", fmt, *identity)
            captured = capsys.readouterr()
            assert code == 0, captured.err
            outputs[f"{fmt}{'+id' if identity else ''}"] = captured.out + captured.err
    return outputs


def _assert_no_leak(outputs: dict[str, str], canaries: list[str]) -> None:
    for name, out in outputs.items():
        assert "ENC[" not in out, name
        for canary in canaries:
            assert canary not in out, name


def test_changed_secret_shows_as_changed_without_any_value(
    git_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = _canary(), _canary()
    seed(git_repo)
    encrypt(git_repo, SECRETS, _secret_doc(old))
    git_repo.commit("prod api key", author="Ada Author <ada@example.com>")
    encrypt(git_repo, SECRETS, _secret_doc(new))
    git_repo.commit("rotate prod api key", author="Sam Secops <sam@example.com>")
    outputs = _diff_all_formats(git_repo, capsys, "HEAD~1", "HEAD")
    _assert_no_leak(outputs, [old, new])
    for name in ("text", "text+id"):
        assert "  ~ $.api_key: <secret changed>" in outputs[name]
        assert "# prod, prod@acme, prod@globex (3 targets)" in outputs[name]
    assert "note: secrets compared by SOPS ciphertext; provide an identity to compare values" in outputs["text"]
    assert "SOPS ciphertext" not in outputs["text+id"]
    assert "| changed | `$.api_key` |  | *&lt;secret changed&gt;* |" in outputs["markdown+id"]
    doc = json.loads(outputs["json+id"])
    assert doc["secrets_compared_by"] == "value"
    changes = [c for t in doc["targets"] for c in t["changes"]]
    assert changes
    assert all(
        c == {"module": "engine", "path": "$.api_key", "kind": "changed", "secret": True, "display": "<secret changed>"}
        for c in changes
    )
    assert json.loads(outputs["json"])["secrets_compared_by"] == "sops-ciphertext"


def test_reencrypting_the_same_value_is_no_change_with_an_identity(
    git_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    value = _canary()
    seed(git_repo)
    encrypt(git_repo, SECRETS, _secret_doc(value))
    git_repo.commit("prod api key", author="Ada Author <ada@example.com>")
    encrypt(git_repo, SECRETS, _secret_doc(value))  # fresh data key and IVs, same plaintext
    git_repo.commit("re-encrypt", author="Sam Secops <sam@example.com>")
    outputs = _diff_all_formats(git_repo, capsys, "HEAD~1", "HEAD")
    _assert_no_leak(outputs, [value])
    assert outputs["text+id"].splitlines()[0].endswith("no changes in 6 targets")
    assert "  ~ $.api_key: <secret changed>" in outputs["text"]  # only the ciphertext is known


def test_secret_added_and_removed(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    prod, staging = _canary(), _canary()
    seed(git_repo)
    encrypt(git_repo, SECRETS, _secret_doc(prod))
    git_repo.commit("prod api key", author="Ada Author <ada@example.com>")
    (git_repo.path / SECRETS).unlink()
    encrypt(git_repo, "environments/staging.secrets.sops.yaml", _secret_doc(staging))
    git_repo.commit("move the key to staging", author="Sam Secops <sam@example.com>")
    outputs = _diff_all_formats(git_repo, capsys, "HEAD~1", "HEAD")
    _assert_no_leak(outputs, [prod, staging])
    text = outputs["text+id"]
    assert "# staging, staging@acme (2 targets)\nengine:\n  + $.api_key: <secret added>" in text
    # prod inherits staging's key now: a different value replaced its own
    assert "# prod, prod@acme, prod@globex (3 targets)\nengine:\n  ~ $.api_key: <secret changed>" in text


def test_working_tree_diff_with_a_secret(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = _canary(), _canary()
    seed(git_repo)
    encrypt(git_repo, SECRETS, _secret_doc(old))
    git_repo.commit("prod api key", author="Ada Author <ada@example.com>")
    encrypt(git_repo, SECRETS, _secret_doc(new))
    outputs = _diff_all_formats(git_repo, capsys)
    _assert_no_leak(outputs, [old, new])
    assert "<secret changed>" in outputs["text+id"]
