"""Every install of llmcc that runs ``llmcc`` installs the ``cli`` extra.

Since the base install is the runtime client only, a CI file, scaffold workflow
or pre-commit hook that installs plain ``llm-config-compiler`` gets an
``llmcc`` whose every command says "needs the cli extra". The end-to-end
check of the hooks is tests/hooks/test_precommit.py (slow); this one reads the
files.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from ruamel.yaml import YAML

from tests.conftest import REPO_ROOT

_PIP_INSTALL = re.compile(r"pip3? install\b(?P<args>[^\n#]*)")
_OURS = re.compile(r"llm-config-compiler(?P<extras>\[[a-z0-9,]+\])?")


def _tracked_yaml() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "*.yaml", "*.yml"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(p for p in out.splitlines() if (REPO_ROOT / p).is_file())


def _installs_without_cli(text: str) -> list[str]:
    bad = []
    for m in _PIP_INSTALL.finditer(text):
        for ours in _OURS.finditer(m.group("args")):
            extras = (ours.group("extras") or "[]")[1:-1].split(",")
            if "cli" not in extras and "dev" not in extras:
                bad.append(m.group(0).strip())
    return bad


def test_ci_files_and_the_scaffold_install_the_cli_extra() -> None:
    found = {path: _installs_without_cli((REPO_ROOT / path).read_text(encoding="utf-8")) for path in _tracked_yaml()}
    assert {path: bad for path, bad in found.items() if bad} == {}
    assert any("llm-config-compiler[cli]" in (REPO_ROOT / path).read_text(encoding="utf-8") for path in found)


@pytest.mark.parametrize(
    ("line", "bad"),
    [
        ("run: python -m pip install llm-config-compiler  # pin", True),
        ("- pip install 'llm-config-compiler[s3]'", True),
        ("run: python -m pip install 'llm-config-compiler[cli]'", False),
        ("run: pip install 'llm-config-compiler[s3,cli]==0.2'", False),
        ("run: pip install pre-commit", False),
    ],
)
def test_the_check_reads_an_install_line(line: str, bad: bool) -> None:
    assert bool(_installs_without_cli(line)) is bad


def test_the_published_hooks_install_the_cli_extra() -> None:
    hooks = YAML(typ="safe").load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    python_hooks = [h for h in hooks if h["language"] == "python"]
    assert python_hooks
    assert all(h.get("additional_dependencies") == [".[cli]"] for h in python_hooks)
