"""`make demo` runs: every llmcc command of the Makefile's demo recipe, in a copy of the example repository."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT, GitRepo


def demo_commands() -> tuple[dict[str, str], list[list[str]]]:
    """The demo recipe's environment (DEMO_ENV) and its llmcc command lines, from the real Makefile."""
    makefile = (REPO_ROOT / "Makefile").read_text()
    env_line = re.search(r"^DEMO_ENV := (.*)$", makefile, re.M)
    assert env_line is not None
    env = dict(pair.split("=", 1) for pair in shlex.split(env_line.group(1)))
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe is not None
    commands = [
        shlex.split(line.split("$(BIN)/llmcc", 1)[1]) for line in recipe.group(1).splitlines() if "$(BIN)/llmcc" in line
    ]
    return env, commands


def test_the_demo_recipe_runs_on_the_example(example_repo: GitRepo) -> None:
    env, commands = demo_commands()
    assert [c[0] for c in commands] == ["validate", "compile", "publish", "verify", "pull"]
    for argv in commands:
        proc = subprocess.run(
            [sys.executable, "-m", "compiler", "-C", str(example_repo.path), *argv],
            env={**os.environ, **{k: str(REPO_ROOT / v) for k, v in env.items()}},
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, f"llmcc {' '.join(argv)}: {proc.stderr}"
    out: Path = example_repo.path / ".llmcc"
    assert (out / "events.jsonl").read_text().count("dev.llmcc.bundle.published") == 6
    assert (out / "prod.decrypted.json").stat().st_mode & 0o077 == 0  # decrypted output is private
    (out / "prod.decrypted.json").unlink()  # demo secrets, not canaries; keep the temp dir clean anyway
