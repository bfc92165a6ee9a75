"""README "Consuming config in a service": its example runs against the demo store and prints what it shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT, GitRepo
from tests.test_demo import demo_commands


def readme_example() -> tuple[str, str]:
    """The section's Python example and the output the README shows for it."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text[text.index("### Consuming config in a service") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    shown = re.search(r"prints\n\n(?:<!-- tour:client -->\n)?```console\n(.*?)```", section, re.S)
    assert code is not None
    assert shown is not None
    return code.group(1), shown.group(1)


def test_the_readme_example_runs_against_the_demo_store(example_repo: GitRepo) -> None:
    env, commands = demo_commands()
    (publish,) = [c for c in commands if c[0] == "publish"]
    demo_env = {**os.environ, **{k: str(REPO_ROOT / v) for k, v in env.items()}}
    for argv in (publish,):  # what `make demo` publishes, as it publishes it
        proc = subprocess.run(
            [sys.executable, "-m", "compiler", "-C", str(example_repo.path), *argv],
            env=demo_env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
    code, shown = readme_example()
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=example_repo.path,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == shown
    cache = Path(example_repo.path) / ".llmcc" / "client-cache"
    assert any(p.name.endswith(".prod.lastgood.json") for p in cache.iterdir())
