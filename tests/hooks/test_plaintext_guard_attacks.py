"""Issue 9 §4, attacked: ways to get plaintext past the secrets guard, each closed.

- Encodings git stores as text but a NUL probe calls binary: UTF-16 and UTF-32 (with or without BOM).
- A gzipped decrypted bundle, or one saved under a name that does not end in ``.json``.
- A file over the loader's size limit: git commits it, so it cannot pass unscanned.
- A credential in a file's name: git commits names too.
- A staged file whose name starts with ``-``: the hook must not read it as an option.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pyrage
import pytest

from compiler.cli.init import scaffold_files
from compiler.load.yaml import MAX_FILE_BYTES
from tests.conftest import GitRepo
from tests.hooks.test_plaintext_guard import _alnum, git, published, run
from tests.secrets._secrets_support import new_canary

pytestmark = pytest.mark.usefixtures("issue6_commands")
__all__ = ["published"]  # the fixture, shared


def _bundle(canary: str) -> bytes:
    return json.dumps({"data-pipeline": {"db": {"password": canary}}}).encode()


def test_text_in_utf16_or_utf32_is_scanned(example_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    root = example_repo.path
    age = str(pyrage.x25519.Identity.generate())
    text = f"ops notes\n{age}\n"
    files = {
        "u16.txt": text.encode("utf-16"),  # BOM
        "u16le.txt": text.encode("utf-16-le"),  # no BOM: Windows tools write this too
        "u16be.txt": text.encode("utf-16-be"),
        "u32.txt": text.encode("utf-32"),
    }
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    code, out, err = run(capsys, root, "hook", "secrets-guard")
    assert code == 1
    for rel in files:
        assert f"{rel}:2:1: age identity: private key material" in err, err
    assert age not in out + err
    assert run(capsys, root, "hook", "secrets-guard", "u16le.txt")[0] == 1
    for rel in files:
        (root / rel).unlink()


def test_a_decrypted_bundle_gzipped_or_renamed_is_found(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    root = example_repo.path
    canary = new_canary()
    files = {
        "prod.json.gz": gzip.compress(_bundle(canary)),
        "prod.txt": _bundle(canary),
        "prod.bak": json.dumps(json.loads(_bundle(canary)), indent=4).encode(),
    }
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    code, out, err = run(capsys, root, "hook", "secrets-guard")
    assert code == 1
    for rel in files:
        assert any(line.startswith(f"{rel}:") and "decrypted llmcc bundle" in line for line in err.splitlines()), err
    assert canary not in out + err
    aws = "AKIA" + _alnum(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    (root / "prod.json.gz").write_bytes(gzip.compress(f"x\n{aws}\n".encode()))
    code, _, err = run(capsys, root, "hook", "secrets-guard", "prod.json.gz")
    assert code == 1
    assert "prod.json.gz:2:1: AWS Access Key" in err
    assert aws not in err
    (root / "prod.json.gz").write_bytes(b"\x1f\x8b not really gzip")  # corrupt: binary, as before
    assert run(capsys, root, "hook", "secrets-guard", "prod.json.gz")[0] == 0
    for rel in files:
        (root / rel).unlink()


def test_a_file_over_the_size_limit_is_not_a_pass(example_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    root = example_repo.path
    age = str(pyrage.x25519.Identity.generate())
    with (root / "big.txt").open("w") as f:
        f.write(("x" * 1023 + "\n") * (MAX_FILE_BYTES // 1024 + 1))
        f.write(f"{age}\n")
    code, out, err = run(capsys, root, "hook", "secrets-guard", "big.txt")
    assert code == 1
    assert err.startswith("big.txt:1:1: not scanned: big.txt: file is "), err
    assert age not in out + err
    code, out, err = run(capsys, root, "validate")
    assert code == 1
    assert "big.txt:1:1: not scanned" in err + out
    (root / "big.txt").unlink()


def test_a_credential_in_a_file_name_is_found(example_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    root = example_repo.path
    aws = "AKIA" + _alnum(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    (root / "ops").mkdir()
    (root / "ops" / f"{aws}.txt").write_text("nothing here\n")
    code, out, err = run(capsys, root, "hook", "secrets-guard")
    assert code == 1
    assert "AWS Access Key in the file name: " in err
    assert aws not in out + err
    code, out, err = run(capsys, root, "validate")
    assert code == 1
    assert aws not in out + err


def test_a_staged_file_named_like_an_option(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """pre-commit passes staged names after the entry: ``-notes.txt`` is a file, not an option."""
    root = example_repo.path
    (root / ".pre-commit-config.yaml").write_bytes(dict(scaffold_files())[".pre-commit-config.yaml"])
    example_repo.commit("pre-commit hooks")
    home = {"PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    os.environ.update(home)
    try:
        subprocess.run([sys.executable, "-m", "pre_commit", "install"], cwd=root, check=True, capture_output=True)
        (root / "-notes.txt").write_text("harmless\n")
        git(root, "add", "--", "-notes.txt")
        ok = git(root, "commit", "-q", "-m", "notes", check=False)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        age = str(pyrage.x25519.Identity.generate())
        (root / "-key.txt").write_text(f"{age}\n")
        git(root, "add", "--", "-key.txt")
        blocked = git(root, "commit", "-q", "-m", "oops", check=False)
    finally:
        for k in home:
            os.environ.pop(k, None)
    output = blocked.stdout + blocked.stderr
    assert blocked.returncode != 0
    assert "-key.txt:1:1: age identity: private key material" in output, output
    assert age not in output
    (root / "-key.txt").unlink()


def test_pull_decrypt_out_cannot_be_steered_into_the_repository(
    published: tuple[GitRepo, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Symlinks, ``..``, nested repositories and force-added files: each refused or written harmlessly."""
    repo, canary = published
    root = repo.path
    capsys.readouterr()
    pull = ("pull", "prod", "--decrypt", "--out")
    (root / "ignored").mkdir()
    (root / ".gitignore").write_text(".llmcc/\nignored/\n*.local.json\n")
    (root / "ignored/tracked.json").write_text("{}\n")
    git(root, "add", "-f", "ignored/tracked.json", ".gitignore")
    repo.commit("a force-added file in an ignored directory")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "dir").symlink_to(root)
    git(root / "ignored", "init", "-q", "nested")  # a repository inside an ignored directory
    for out in (
        "ignored/tracked.json",  # tracked: git commits changes to it
        "ignored/../prod.json",  # `..` out of an ignored directory
        "nope/../prod.json",
        str(outside / "dir" / "prod.json"),  # a symlinked directory into the work tree
        "ignored/nested/prod.json",  # the nested repository does not ignore it
    ):
        code, stdout, err = run(capsys, root, *pull, out)
        assert (code, stdout) == (2, ""), out
        assert "refusing to write decrypted secrets inside the git work tree" in err
    assert (root / "ignored/tracked.json").read_text() == "{}\n"
    # a symlink whose name git ignores, or one outside the repository, pointing at a path it does not:
    # the write replaces the link, never follows it
    (root / "safe.local.json").symlink_to(root / "prod.json")
    (outside / "link.json").symlink_to(root / "prod.json")
    for link in (root / "safe.local.json", outside / "link.json"):
        assert run(capsys, root, *pull, str(link))[0] == 0
        assert not link.is_symlink()
        assert canary in link.read_text()
        link.unlink()
    assert not (root / "prod.json").exists()
    # `--out -` is standard output, not a file named "-" (sealed here: the canary sweep reads captured output)
    code, stdout, _ = run(capsys, root, "pull", "prod", "--out", "-")
    assert code == 0
    assert '"data-pipeline"' in stdout
    assert not (root / "-").exists()


def test_a_decrypted_bundle_converted_to_yaml_is_found(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """`llmcc pull --decrypt | yq -P > prod.yaml`: the same plaintext, in YAML; layers keep their own rules."""
    root = example_repo.path
    canary = new_canary()
    (root / "ops").mkdir()
    (root / "ops/prod.yaml").write_text(f"data-pipeline:\n  db:\n    password: {canary}\n")
    (root / "ops/bundle.yml").write_text(f"modules:\n  data-pipeline:\n    db:\n      password: {canary}\n")
    (root / "ops/broken.yaml").write_text("a: [\n")  # not YAML: not a bundle, not an error here
    code, out, err = run(capsys, root, "hook", "secrets-guard")
    assert code == 1
    assert "ops/prod.yaml:3:5: data-pipeline $.db.password: decrypted llmcc bundle" in err, err
    assert "ops/bundle.yml:4:7: data-pipeline $.db.password: decrypted llmcc bundle" in err, err
    assert "broken" not in err
    assert canary not in out + err
    assert run(capsys, root, "validate")[0] == 1
    for rel in ("ops/prod.yaml", "ops/bundle.yml"):
        (root / rel).unlink()  # the suite's canary sweep looks for plaintext left on disk


def test_a_decrypted_bundle_in_yaml_with_escaped_keys_is_found(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """YAML files are parsed for a bundle only when they can name a module: an escaped key still can."""
    root = example_repo.path
    canary = new_canary()
    (root / "ops").mkdir()
    (root / "ops/prod.yaml").write_text(f'"\\x64ata-pipeline":\n  db:\n    password: {canary}\n')
    code, out, err = run(capsys, root, "hook", "secrets-guard")
    assert code == 1
    assert "ops/prod.yaml:3:5: data-pipeline $.db.password: decrypted llmcc bundle" in err, err
    assert canary not in out + err
    (root / "ops/prod.yaml").unlink()  # the suite's canary sweep looks for plaintext left on disk
