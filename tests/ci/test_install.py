"""Issue 13 §2: the templates' install step, run as written against a tagged local copy of this repository.

No package index serves ``llm-config-compiler``: every template installs the
tag ``v$LLMCC_VERSION`` of the llmcc git repository at ``$LLMCC_GIT`` with pip.
Here ``LLMCC_GIT`` is a bare clone of this repository's HEAD, tagged as the
templates pin, and the step runs in a fresh virtual environment (pip's cache
and the machine's wheel sources make it take seconds, not minutes).
"""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from compiler import __version__
from compiler.cli.init import scaffold_files
from tests.ci._runner import INSTALL
from tests.conftest import REPO_ROOT, copy_example

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
def test_the_install_step_installs_a_working_llmcc_from_the_tag(tmp_path: Path) -> None:
    remote = tmp_path / "llmcc.git"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(REPO_ROOT), str(remote)], check=True)
    subprocess.run(["git", "tag", f"v{__version__}", head.stdout.strip()], cwd=remote, check=True)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    (_, version, command) = _install_steps()[0]
    env = {
        **os.environ,
        "PATH": f"{env_dir / 'bin'}{os.pathsep}{os.environ['PATH']}",
        # file://localhost/...: pip's URL parser wants a host in a git+file URL; git ignores it
        "LLMCC_GIT": f"file://localhost{remote}",
        "LLMCC_VERSION": version,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", command], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    llmcc = env_dir / "bin" / "llmcc"
    assert (
        subprocess.run([llmcc, "--version"], capture_output=True, text=True, check=True).stdout == f"llmcc {version}\n"
    )
    example = copy_example(tmp_path / "example")
    done = subprocess.run(
        [llmcc, "-C", str(example), "validate", "-t", "dev"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.endswith("llmcc: validate ok: 1 target, 0 errors, 0 warnings\n")
    where = subprocess.run(
        [env_dir / "bin" / "python", "-c", "import compiler; print(compiler.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert where.startswith(str(env_dir))  # the fresh environment's own copy, not this checkout


def test_a_new_repository_names_the_version_to_install(tmp_path: Path) -> None:
    from compiler.cli import main

    assert main(["init", str(tmp_path / "conf"), "--keys-dir", str(tmp_path / "keys")]) == 0
    readme = (tmp_path / "conf/README.md").read_text()
    assert f'"llm-config-compiler[cli] @ git+https://github.com/<org>/llmcc.git@v{__version__}"' in readme
    assert "pypi.org" not in readme  # no index serves llmcc
    assert f"rev: v{__version__}" in (tmp_path / "conf/.pre-commit-config.yaml").read_text()
