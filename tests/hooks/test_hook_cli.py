"""``llmcc hook validate|secrets-guard|diff`` through the real entry point, on a copy of the example."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from compiler.cli import main
from tests.conftest import GitRepo

pytestmark = pytest.mark.usefixtures("issue6_commands")

PLAINTEXT = "modules:\n  data-pipeline:\n    db:\n      password: hunter2\n"


def run(capsys: pytest.CaptureFixture[str], root: Path, *argv: str) -> tuple[int, str, str]:
    cwd = os.getcwd()
    os.chdir(root)  # pre-commit runs hooks at the root with relative file names
    try:
        code = main(["hook", *argv])
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_validate_checks_only_the_affected_targets(example_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, example_repo.path, "validate", "environments/dev.yaml")
    assert code == 0
    assert err.startswith("llmcc: validate ok: 1 target")
    code, _, err = run(capsys, example_repo.path, "validate", "keys/README.md")
    assert (code, err) == (0, "")


def test_validate_blocks_a_schema_violation(example_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    dev = example_repo.path / "environments/dev.yaml"
    dev.write_text(dev.read_text().replace("  temperature: 0.9\n", "  temperature: 7\n"))
    code, _, err = run(capsys, example_repo.path, "validate", "environments/dev.yaml")
    assert code == 1
    assert "inference-engine $.model.temperature: 7 is greater than the maximum of" in err
    assert "(target dev, layer" in err
    assert "target prod" not in err
    assert err.splitlines()[-1].startswith("llmcc: validate FAILED: 1 target")


def test_validate_runs_the_policy_tests_when_policies_change(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = example_repo.path / "policies/tests/production.yaml"
    tests.write_text(tests.read_text().replace("prod-temperature-bounded: fail", "prod-temperature-bounded: pass"))
    code, out, _ = run(capsys, example_repo.path, "validate", "policies/tests/production.yaml")
    assert code == 1
    assert "FAIL policies/tests/production.yaml:10: a production temperature above 1.0 fails" in out


def test_secrets_guard_passes_the_example(example_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(p.relative_to(example_repo.path)) for p in example_repo.path.rglob("environments/**/*.yaml")]
    assert run(capsys, example_repo.path, "secrets-guard", *files, "templates/api-gateway.yaml") == (0, "", "")


def test_secrets_guard_blocks_plaintext_and_unencrypted_files(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    root = example_repo.path
    (root / "environments/dev.yaml").write_text(PLAINTEXT)
    (root / "environments/staging.secrets.sops.yaml").write_text(PLAINTEXT)
    tpl = root / "templates/api-gateway.yaml"
    tpl.write_text(tpl.read_text() + "  hmac_secret: plain\n")
    tpl_line = len(tpl.read_text().splitlines())
    (root / "notes.txt").write_text(
        "ops key:\nAGE-SECRET-KEY-" + "1" + "Q" * 58 + "\n"  # built here: this file is scanned too
    )
    files = ["environments/dev.yaml", "environments/staging.secrets.sops.yaml", "templates/api-gateway.yaml"]
    code, out, err = run(capsys, root, "secrets-guard", *files, "notes.txt", "gone.yaml")
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "environments/dev.yaml:4:7: data-pipeline $.db.password: secret in plaintext: the value of a field marked "
        "x-secret must come from a *.secrets.sops.yaml file (layer dev)",
        "environments/staging.secrets.sops.yaml:1:1: not SOPS-encrypted: a *.secrets.sops.yaml file must be "
        "encrypted (llmcc secrets encrypt FILE) (layer staging (secrets))",
        "notes.txt:2:1: age identity: private key material in the repository: keep private keys outside it "
        "(a CI secret, a KMS, or ~/.config/llmcc/keys/) and commit only the public half",
        f"templates/api-gateway.yaml:{tpl_line}:3: api-gateway $.auth.hmac_secret: secret in plaintext: the value of a "
        "field marked x-secret must come from a *.secrets.sops.yaml file",
        "llmcc: secrets-guard FAILED: 4 findings in 5 files",
    ]
    assert "hunter2" not in err


def test_diff_never_blocks(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import copy_example

    copy_example(git_repo.path)
    code, _, err = run(capsys, git_repo.path, "diff")
    assert (code, err) == (0, "llmcc hook diff: no commit HEAD yet; nothing to compare\n")
    git_repo.commit("example")
    dev = git_repo.path / "environments/dev.yaml"
    dev.write_text(dev.read_text().replace("  temperature: 0.9\n", "  temperature: 0.8\n"))
    code, out, _ = run(capsys, git_repo.path, "diff")
    assert code == 0
    assert "temperature" in out


def test_secrets_guard_finds_values_sops_left_unencrypted(example_repo: GitRepo) -> None:
    from compiler.compile.repository import Repository
    from compiler.plaintext import scan_files
    from compiler.secrets.sources import SopsOpener
    from compiler.sources.worktree import WorkTree

    path = example_repo.path / "environments/dev.secrets.sops.yaml"
    text = path.read_text()
    start = text.index("            password: ENC[")
    end = text.index("\n", start)
    path.write_text(text[:start] + "            password: hunter2" + text[end:])
    repo = Repository(WorkTree(example_repo.path), open_secrets=SopsOpener(None))
    (d,) = scan_files(repo, ["environments/dev.secrets.sops.yaml", "templates/_base-service.yaml"]).diagnostics
    assert d.format().startswith("environments/dev.secrets.sops.yaml:")
    assert "data-pipeline $.db.password: secret in plaintext: sops left this value unencrypted" in d.format()
    assert "hunter2" not in d.format()
