"""Every pointer to a README section (``README "Title"``) in the product names a heading the README has.

A new user following ``README "Install"`` from a CI template found no such
section (it is "Installing llmcc in CI (or anywhere)"): the templates, the
scaffold, the code's docstrings, docs/ and the Makefile are checked here.
"""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT

_REFERENCE = re.compile(r"""README(?:'s|,)? "([^"\n]+)\"""")
_WHERE = ("hooks", "compiler", "docs")
_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".cfg"}


def _headings() -> set[str]:
    lines = (REPO_ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    return {line.lstrip("#").strip() for line in lines if line.startswith("#")}


def test_every_readme_section_named_in_the_product_exists() -> None:
    files = [REPO_ROOT / "Makefile"]
    files += [p for d in _WHERE for p in sorted((REPO_ROOT / d).rglob("*")) if p.is_file() and p.suffix in _SUFFIXES]
    headings = _headings()
    found, missing = 0, []
    for path in files:
        for match in _REFERENCE.finditer(path.read_text(encoding="utf-8")):
            found += 1
            if match.group(1) not in headings:
                missing.append(f"{path.relative_to(REPO_ROOT)}: README {match.group(1)!r}")
    assert missing == []
    assert found > 20  # the pattern still finds the references


def test_the_ci_templates_point_at_the_install_section() -> None:
    for rel in (
        "hooks/ci/github-workflow.yaml",
        "hooks/ci/gitlab-ci.yaml",
        "compiler/scaffold/dot-github/workflows/llmcc.yaml",
    ):
        assert 'README "Installing llmcc in CI (or anywhere)"' in (REPO_ROOT / rel).read_text(), rel
