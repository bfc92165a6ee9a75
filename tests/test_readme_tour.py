"""The README's command output is what the commands print (issue 13, "Done when").

``tools/readme-tour.py --check`` runs every marked block on a fresh clone, as a
new user would after ``make demo``, and fails with a unified diff when the
README shows anything else: a change to a command's output that makes the
README untrue fails here; ``make readme-tour`` rewrites it.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_the_readme_shows_what_the_commands_print() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools" / "readme-tour.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, f"README.md is out of date (make readme-tour):\n{proc.stdout}{proc.stderr}"
