"""The README's command output is what the commands print (issue 13, "Done when").

``tools/readme-tour.py --check`` runs every marked block on a fresh clone, as a
new user would after ``make demo``, and fails with a unified diff when the
README shows anything else: a change to a command's output that makes the
README untrue fails here; ``make readme-tour`` rewrites it.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO_ROOT

TOOL = REPO_ROOT / "tools" / "readme-tour.py"


def _tour(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(TOOL), *argv], capture_output=True, text=True, check=False, timeout=900)


@pytest.mark.slow
def test_the_readme_shows_what_the_commands_print() -> None:
    proc = _tour("--check")
    assert proc.returncode == 0, f"README.md is out of date (make readme-tour):\n{proc.stdout}{proc.stderr}"


def test_check_shows_an_untrue_output_as_a_diff_and_the_rewrite_fixes_it(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    untrue = (
        "<!-- tour:cut -->\n```console\n"
        "$ llmcc --help | sed -n 2p\nsomething else\n"
        "$ echo $?; echo b\n0\n...\n"  # a cut output: one line kept, then ...
        "```\n<!-- /tour -->\n"
    )
    readme.write_text(f"# a README\n\n{untrue}\nprose stays\n")
    proc = _tour("--check", "--readme", str(readme))
    assert proc.returncode == 1, proc.stderr
    assert "-something else\n" in proc.stdout
    assert proc.stdout.startswith("--- README.md\n+++ README.md (regenerated)\n")
    assert _tour("--readme", str(readme)).returncode == 0
    lines = readme.read_text().splitlines()
    assert lines[-1] == "prose stays"
    assert lines[lines.index("$ echo $?; echo b") + 1 :][:3] == ["0", "...", "```"]  # cut to the lines shown
    assert "something else" not in lines


def test_a_block_that_fails_to_parse_is_exit_2(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("<!-- tour:x -->\n```console\noutput first\n$ true\n```\n<!-- /tour -->\n")
    proc = _tour("--check", "--readme", str(readme))
    assert proc.returncode == 2
    assert "block tour:x has output before its first '$ ' line" in proc.stderr


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_tour", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("readme_tour", module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_tour_hides_no_step_a_reader_would_not_run() -> None:
    """A tour followed literally prints what the README shows: the tool undoes nothing the README does not say.

    Every teardown command that changes the clone is quoted in the README's prose; no hidden
    setup moves HEAD back, cleans the tree or changes directory (those are `$ ` lines).
    """
    tool = _tool()
    readme = (REPO_ROOT / "README.md").read_text()
    for name, code in tool.TEARDOWN.items():
        for command in (c.split("#")[0].strip() for c in code.split(";")):
            if command and not command.startswith(("tour_", "PATH=")):  # servers; the no-cli block's PATH
                assert f"`{command}`" in readme, f"teardown of tour:{name}: {command!r} is not in README.md"
    for name, code in tool.SETUP.items():
        assert not re.search(r"\bgit (reset|clean|checkout|cherry-pick)\b|(^|[;&|]\s*)cd\b", code, re.M), name


def test_local_stores_refuses_a_directory_it_did_not_make(tmp_path: Path) -> None:
    """tools/local-stores.py starts anew by removing --dir: never one that holds something else."""
    (tmp_path / "keep.txt").write_text("mine\n")
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools/local-stores.py"), "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == f"local-stores: {tmp_path}: not empty and not made by local-stores; pass another --dir\n"
    assert (tmp_path / "keep.txt").read_text() == "mine\n"
