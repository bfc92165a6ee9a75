"""The README's command output is what the commands print (issue 13, "Done when").

``tools/readme-tour.py --check`` runs every marked block on a fresh clone, as a
new user would after ``make demo``, and fails with a unified diff when the
README shows anything else: a change to a command's output that makes the
README untrue fails here; ``make readme-tour`` rewrites it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
