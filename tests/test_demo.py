"""`make demo` runs: every llmcc command of the Makefile's demo recipe, in a copy of the example repository."""

from __future__ import annotations

import os
import re
import shlex
import shutil
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
    # `make demo` runs in this repository: its .gitignore is what lets the decrypted output land
    shutil.copy2(REPO_ROOT / ".gitignore", example_repo.path / ".gitignore")
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


def test_the_demo_writes_decrypted_output_only_where_git_ignores_it(example_repo: GitRepo) -> None:
    """Issue 9 §4: the demo's `pull --decrypt --out` targets a git-ignored path; without the rule it is refused."""
    _, commands = demo_commands()
    (pull,) = [c for c in commands if c[0] == "pull"]
    assert "--decrypt" in pull
    out = pull[pull.index("--out") + 1]
    ignored = subprocess.run(["git", "check-ignore", "-q", out], cwd=REPO_ROOT, check=False)
    assert ignored.returncode == 0, f"{out} is not ignored by this repository's .gitignore"
    # the example copy has no .gitignore: the same command is refused before anything is fetched (exit 2)
    proc = subprocess.run(
        [sys.executable, "-m", "compiler", "-C", str(example_repo.path), *pull],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "refusing to write decrypted secrets inside the git work tree" in proc.stderr
    assert not (example_repo.path / out).exists()


def test_the_readme_tour_pulls_decrypted_output_outside_the_repository() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    pulls = [
        shlex.split(line[2:]) for line in readme.splitlines() if line.startswith("$ llmcc pull") and "--decrypt" in line
    ]
    assert pulls, "the tour shows pull --decrypt"
    for argv in pulls:
        out = argv[argv.index("--out") + 1]
        assert out.startswith(("/", "~", "$")), f"the tour writes decrypted output inside the repository: {out}"
