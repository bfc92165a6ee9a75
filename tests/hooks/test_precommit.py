"""The real ``pre-commit`` framework running our hooks in a config repository made by ``llmcc init``.

Two set-ups, as a user would have them:

- the scaffold's own ``.pre-commit-config.yaml`` (``repo: local`` hooks that
  run the ``llmcc`` on PATH), with real ``git commit``s;
- (slow) a ``.pre-commit-config.yaml`` that points at this repository at a
  commit, so pre-commit installs llmcc from it into its own environment (from
  PyPI) and runs the entries of our ``.pre-commit-hooks.yaml``. The hook
  repository is a git copy of this working tree, so it tests this code.

A plaintext secret, a schema violation and a policy violation are blocked; a
clean change passes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.cli import main
from tests.conftest import GIT_ENV, REPO_ROOT

pytestmark = pytest.mark.usefixtures("issue6_commands")

BIN = Path(sys.executable).parent
PLAINTEXT = "modules:\n  assistant:\n    api_key: sk-live-0123456789\n"


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
    out = {**os.environ, **GIT_ENV}
    out["PATH"] = f"{BIN}{os.pathsep}{out.get('PATH', '')}"  # the llmcc under test, unless extra says otherwise
    out.update(extra or {})
    out.pop("SOPS_AGE_KEY_FILE", None)  # hooks need no identity
    return out


def sh(
    cwd: Path, *argv: str, check: bool = True, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=cwd, env=env(extra), capture_output=True, text=True, check=False, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"{argv} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def new_config_repo(base: Path, name: str) -> Path:
    dest = base / name
    assert main(["init", str(dest), "--keys-dir", str(base / f"{name}-keys")]) == 0
    sh(dest, "git", "init", "-q", "-b", "main")
    return dest


def commit(repo: Path, message: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    sh(repo, "git", "add", "-A", extra=extra)
    return sh(repo, "git", "commit", "-q", "-m", message, check=False, extra=extra)


def edit(repo: Path, rel: str, old: str, new: str) -> None:
    path = repo / rel
    text = path.read_text()
    assert old in text, (rel, old)
    path.write_text(text.replace(old, new))


def assert_blocks_and_passes(repo: Path, extra: dict[str, str] | None = None) -> None:
    """The four commits of the acceptance test; each blocked one is reset."""
    edit(repo, "environments/dev.yaml", "  temperature: 0.9\n", "  temperature: 0.8\n")
    clean = commit(repo, "dev: cooler", extra)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    cases = [
        ("environments/dev.yaml", "  temperature: 0.8\n", f"  temperature: 0.8\n{PLAINTEXT}", "secret in plaintext"),
        ("environments/dev.yaml", "  temperature: 0.8\n", "  temperature: 5\n", "is greater than the maximum of 2"),
        (
            "environments/prod.yaml",
            "  temperature: 0.3\n",
            "  temperature: 1.5\n",
            "policy prod-temperature-bounded failed: config.assistant.temperature is 1.5, expected <= 1.0",
        ),
    ]
    for rel, old, new, message in cases:
        edit(repo, rel, old, new)
        blocked = commit(repo, f"bad change to {rel}", extra)
        output = blocked.stdout + blocked.stderr
        assert blocked.returncode != 0, output
        assert message in output, output
        assert "sk-live-0123456789" not in output  # the guard never prints the value
        sh(repo, "git", "reset", "-q", "--hard", "HEAD")
    assert sh(repo, "git", "log", "--format=%s").stdout.splitlines() == ["dev: cooler", "llmcc init"]


@pytest.mark.slow
def test_the_scaffold_hooks_block_bad_commits(tmp_path: Path) -> None:
    repo = new_config_repo(tmp_path, "conf")
    extra = {"PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    sh(repo, sys.executable, "-m", "pre_commit", "install", extra=extra)
    first = commit(repo, "llmcc init", extra)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "llmcc secrets guard" in first.stdout + first.stderr
    assert_blocks_and_passes(repo, extra)


@pytest.mark.slow
@pytest.mark.parametrize("config", ["scaffold", "repository"])
@pytest.mark.parametrize("name", ["notes-key.txt", "--help"])
def test_a_private_key_committed_anywhere_is_refused(config: str, name: str, tmp_path: Path) -> None:
    """The secrets guard sees every staged file, not only environments/: a copy of the age identity
    ``llmcc init`` wrote, committed at the root, is refused by the real pre-commit with the scaffold's
    config and with this repository's own (whose hooks run ``.venv/bin/llmcc``). The file named
    ``--help`` is why the entries end with ``--``: without it argparse prints the help and exits 0."""
    repo = new_config_repo(tmp_path, "conf")
    extra = {"PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    if config == "repository":
        shutil.copyfile(REPO_ROOT / ".pre-commit-config.yaml", repo / ".pre-commit-config.yaml")
        (repo / ".venv/bin").mkdir(parents=True)
        (repo / ".venv/bin/llmcc").symlink_to(BIN / "llmcc")
        with (repo / ".git/info/exclude").open("a") as exclude:
            exclude.write(".venv/\n")
    sh(repo, sys.executable, "-m", "pre_commit", "install", extra=extra)
    first = commit(repo, "llmcc init", extra)
    assert first.returncode == 0, first.stdout + first.stderr
    (identity,) = (tmp_path / "conf-keys").rglob("age.key")
    key_line = next(line for line in identity.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-1"))
    (repo / name).write_text(identity.read_text())
    blocked = commit(repo, "notes", extra)
    output = blocked.stdout + blocked.stderr
    assert blocked.returncode != 0, output
    line = identity.read_text().splitlines().index(key_line) + 1
    assert f"{name}:{line}:1: age identity" in output, output
    assert key_line not in output
    assert sh(repo, "git", "log", "--format=%s").stdout.splitlines() == ["llmcc init"]


# --- the published hooks, installed by pre-commit from this repository -----------------------


def _project_files(root: Path) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, capture_output=True, check=False
    )
    if listed.returncode == 0:
        return [p for p in listed.stdout.decode().split("\0") if p and (root / p).is_file()]
    skip = {".git", ".venv", "dist", ".llmcc", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis"}
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not skip & set(p.parts)]


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """A git copy of this working tree (path, commit) and one PRE_COMMIT_HOME for the session."""
    base = tmp_path_factory.mktemp("hook-repo")
    src = base / "llmcc"
    for rel in _project_files(REPO_ROOT):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, src / rel)
    sh(src, "git", "init", "-q", "-b", "main")
    sh(src, "git", "add", "-A")
    sh(src, "git", "commit", "-q", "-m", "llmcc under test")
    rev = sh(src, "git", "rev-parse", "HEAD").stdout.strip()
    return src, rev, base / "pre-commit-home"


def remote_config(hook_src: Path, rev: str) -> str:
    return (
        "repos:\n"
        f"  - repo: {hook_src}\n"
        f"    rev: {rev}\n"
        "    hooks:\n"
        "      - id: llmcc-secrets-guard\n"
        "      - id: llmcc-validate\n"
        "      - id: llmcc-diff\n"
    )


@pytest.mark.slow
def test_the_published_hooks_block_bad_commits(tmp_path: Path, hook_repo: tuple[Path, str, Path]) -> None:
    src, rev, home = hook_repo
    repo = new_config_repo(tmp_path, "conf")
    (repo / ".pre-commit-config.yaml").write_text(remote_config(src, rev))
    # Not our venv on PATH: the hooks must run the llmcc that pre-commit installed.
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p) != BIN)
    del_bin = {"PRE_COMMIT_HOME": str(home), "PATH": path, "PYTHONPATH": ""}
    sh(repo, sys.executable, "-m", "pre_commit", "install", extra=del_bin)
    sh(repo, "git", "add", "-A", extra=del_bin)
    run_all = sh(repo, sys.executable, "-m", "pre_commit", "run", "--all-files", check=False, extra=del_bin)
    assert run_all.returncode == 0, run_all.stdout + run_all.stderr
    assert "llmcc validate (affected targets)" in run_all.stdout
    first = commit(repo, "llmcc init", del_bin)
    assert first.returncode == 0, first.stdout + first.stderr
    assert_blocks_and_passes(repo, del_bin)
