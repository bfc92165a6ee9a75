"""The generated benchmark workload is a repository llmcc takes as it is (issue 14): validate, compile,
publish with the signing key the generator writes beside it, verify. It had no ``keys/ci.pub``, which
its llmcc.yaml trusts, so ``llmcc validate`` failed on it."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, init_repo

GEN = REPO_ROOT / "bench" / "workload" / "gen_workload.py"


def llmcc(repo: Path, *argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "compiler", "-C", str(repo), *argv], capture_output=True, text=True, env=env, timeout=300
    )


def generate(out: Path, seed: int = 1) -> Path:
    argv = ["--modules", "2", "--keys", "12", "--secrets", "0", "--tenants", "2", "--seed", str(seed)]
    subprocess.run([sys.executable, str(GEN), "--out", str(out), *argv], check=True, capture_output=True, timeout=300)
    return out / "ours"


def test_the_generated_workload_validates_compiles_and_publishes_as_generated(tmp_path: Path) -> None:
    out = tmp_path / "workload"
    repo = init_repo(generate(out))
    repo.commit("workload")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPS_AGE_", "LLMCC_"))}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # no identity: the CI validate job's situation
    checked = llmcc(repo.path, "validate", env=env)
    assert checked.returncode == 0, checked.stderr
    assert llmcc(repo.path, "compile", "-q", env=env).returncode == 0
    assert {p.name for p in (repo.path / "dist").iterdir()} >= {"dev.bundle.json", "prod@t002.bundle.json"}
    # the private half lies outside the repository and signs what the public half verifies
    assert (out / "ci.pem").stat().st_mode & 0o077 == 0
    published = llmcc(repo.path, "publish", env={**env, "LLMCC_SIGNING_KEY_FILE": str(out / "ci.pem")})
    assert published.returncode == 0, published.stderr
    verified = llmcc(repo.path, "verify", env=env)
    assert verified.returncode == 0, verified.stderr
    # outputs are ignored, as `llmcc init` has it: the tree stays clean after compile and publish
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo.path, capture_output=True, text=True)
    assert status.stdout == ""


def test_the_signing_key_follows_the_seed(tmp_path: Path) -> None:
    one, again, other = (generate(tmp_path / name, seed) for name, seed in (("a", 1), ("b", 1), ("c", 2)))
    assert (one / "keys/ci.pub").read_bytes() == (again / "keys/ci.pub").read_bytes()
    assert (one / "keys/ci.pub").read_bytes() != (other / "keys/ci.pub").read_bytes()
    assert not list(one.rglob("*.pem"))  # no private key in the repository


def test_the_incremental_bench_takes_the_generated_workload_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench/incremental.py made its own signing key where the generator now writes one: it stopped
    at "already exists; refusing to overwrite a key" before measuring anything."""
    monkeypatch.syspath_prepend(str(REPO_ROOT / "bench"))
    incremental = importlib.import_module("incremental")
    monkeypatch.setattr(incremental, "XLARGE", ["--modules", "2", "--keys", "12", "--secrets", "0", "--tenants", "2"])
    repo = incremental.workload(tmp_path / "xlarge")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPS_AGE_", "LLMCC_"))}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    checked = llmcc(repo, "validate", env=env)
    assert checked.returncode == 0, checked.stderr
