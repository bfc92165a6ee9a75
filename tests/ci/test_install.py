"""Issue 13 §2: the templates' install step, run as written against a tagged local copy of this repository.

No package index serves ``llm-config-compiler``: every template installs the
tag ``v$LLMCC_VERSION`` of the llmcc git repository at ``$LLMCC_GIT`` with pip.
Here ``LLMCC_GIT`` is a bare clone of this repository's HEAD, tagged as the
templates pin, and the step runs in a fresh virtual environment, once per
session (tests/ci/_install.py: the end-to-end test's runner uses it too).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from compiler import __version__
from compiler.cli.init import scaffold_files
from tests.ci._install import STEP, Release, tagged_remote
from tests.ci._runner import INSTALL
from tests.conftest import REPO_ROOT, copy_example, init_repo

GITHUB = "hooks/ci/github-workflow.yaml"
GITLAB = "hooks/ci/gitlab-ci.yaml"


def _load(text: str) -> Any:
    return YAML(typ="safe").load(text)


def _install_steps() -> list[tuple[str, str, str]]:
    """(template, LLMCC_VERSION, the install command) for every job of every template."""
    shipped = dict(scaffold_files())[".github/workflows/llmcc.yaml"].decode()
    out = []
    for name, text in [(GITHUB, (REPO_ROOT / GITHUB).read_text()), ("scaffold", shipped)]:
        doc = _load(text)
        for job in doc["jobs"].values():
            (step,) = [s for s in job["steps"] if s.get("name") == "Install llmcc"]
            out.append((name, doc["env"]["LLMCC_VERSION"], step["run"]))
    doc = _load((REPO_ROOT / GITLAB).read_text())
    out += [(GITLAB, doc["variables"]["LLMCC_VERSION"], line) for line in doc["default"]["before_script"]]
    return out


def test_every_template_pins_this_exact_version_with_the_cli_extra() -> None:
    steps = _install_steps()
    assert len(steps) == 7  # three GitHub jobs, the same three in the scaffold, GitLab's default
    for name, version, command in steps:
        assert version == __version__, f"{name}: LLMCC_VERSION {version} is not the package's {__version__}"
        assert INSTALL.match(command), f"{name}: {command}"


@pytest.mark.slow
def test_the_install_step_installs_a_working_llmcc_from_the_tag(tmp_path: Path, llmcc_release: Release) -> None:
    assert all(command == STEP for _, _, command in _install_steps())  # the step the session fixture ran
    assert llmcc_release.step.returncode == 0, llmcc_release.step.stderr[-2000:]
    env = llmcc_release.env()
    llmcc = llmcc_release.bin / "llmcc"
    assert (
        subprocess.run([llmcc, "--version"], capture_output=True, text=True, check=True).stdout
        == f"llmcc {__version__}\n"
    )
    example = copy_example(tmp_path / "example")
    done = subprocess.run(
        [llmcc, "-C", str(example), "validate", "-t", "dev"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.endswith("llmcc: validate ok: 1 target, 0 errors, 0 warnings\n")
    where = subprocess.run(
        [llmcc_release.bin / "python", "-c", "import compiler; print(compiler.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert where.startswith(str(llmcc_release.env_dir))  # the fresh environment's own copy, not this checkout
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    tagged = subprocess.run(
        ["git", "rev-parse", f"v{__version__}^{{commit}}"],
        cwd=llmcc_release.remote,
        capture_output=True,
        text=True,
        check=True,
    )
    assert tagged.stdout == head.stdout  # the tag pip installed is this checkout's HEAD


def test_the_tagged_remote_tags_head_even_when_the_repository_has_the_tag_elsewhere(tmp_path: Path) -> None:
    """A released repository already has v<version> (on an older commit): the copy under test still gets HEAD."""
    source = init_repo(tmp_path / "llmcc")
    source.write("a.txt", "released\n")
    released = source.commit("the release")
    source.git("tag", f"v{__version__}")
    source.write("a.txt", "after the release\n")
    head = source.commit("a later commit")
    remote = tagged_remote(source.path, tmp_path / "llmcc.git")
    assert source.git("rev-parse", f"v{__version__}").strip() == released  # the repository's own tag is untouched
    assert (
        subprocess.run(
            ["git", "rev-parse", f"v{__version__}^{{commit}}"], cwd=remote, capture_output=True, text=True, check=True
        ).stdout.strip()
        == head
    )
    assert subprocess.run(["git", "tag"], cwd=remote, capture_output=True, text=True, check=True).stdout == (
        f"v{__version__}\n"
    )


def test_a_new_repository_names_the_version_to_install(tmp_path: Path) -> None:
    from compiler.cli import main

    assert main(["init", str(tmp_path / "conf"), "--keys-dir", str(tmp_path / "keys")]) == 0
    readme = (tmp_path / "conf/README.md").read_text()
    assert f'"llm-config-compiler[cli] @ git+https://github.com/<org>/llmcc.git@v{__version__}"' in readme
    assert "pypi.org" not in readme  # no index serves llmcc
    assert f"rev: v{__version__}" in (tmp_path / "conf/.pre-commit-config.yaml").read_text()
