"""Issue 13 §2: the templates' install step, run as written against a tagged local copy of this repository.

No package index serves ``llm-config-compiler``: every template installs the
tag ``v$LLMCC_VERSION`` of the llmcc git repository at ``$LLMCC_GIT`` with pip.
Here ``LLMCC_GIT`` is a bare clone of this repository's HEAD, tagged as the
templates pin, and the step runs in a fresh virtual environment, once per
session (tests/ci/_install.py: the end-to-end test's runner uses it too).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from compiler import __version__
from compiler.cli.init import scaffold_files
from tests.ci._install import STEP, Release, git_url, tagged_remote
from tests.ci._runner import INSTALL, VERSION_CHECK
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
    out.append((GITLAB, doc["variables"]["LLMCC_VERSION"], "\n".join(doc["default"]["before_script"]) + "\n"))
    return out


def _pins() -> list[tuple[str, str, str]]:
    """(template, LLMCC_VERSION, LLMCC_COMMIT) of each template."""
    shipped = dict(scaffold_files())[".github/workflows/llmcc.yaml"].decode()
    docs = [(GITHUB, _load((REPO_ROOT / GITHUB).read_text())["env"]), ("scaffold", _load(shipped)["env"])]
    docs.append((GITLAB, _load((REPO_ROOT / GITLAB).read_text())["variables"]))
    return [(name, env["LLMCC_VERSION"], env["LLMCC_COMMIT"]) for name, env in docs]


def test_every_template_pins_this_exact_version_with_the_cli_extra() -> None:
    steps = _install_steps()
    assert len(steps) == 7  # three GitHub jobs, the same three in the scaffold, GitLab's default
    for name, version, command in steps:
        assert version == __version__, f"{name}: LLMCC_VERSION {version} is not the package's {__version__}"
        assert command == STEP, f"{name}: {command}"
        assert INSTALL.match(command.splitlines()[0]), f"{name}: {command}"


def test_every_template_installs_by_the_commit_its_release_tag_names() -> None:
    """Issue 13 "Fragile": a tag can be moved; the templates install a commit id, the tag's when they pinned it."""
    tagged = subprocess.run(
        ["git", "rev-parse", "-q", "--verify", f"v{__version__}^{{commit}}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    for name, version, commit in _pins():
        assert re.fullmatch(r"[0-9a-f]{40}", commit), f"{name}: {commit!r}"
        # the release commit itself cannot name itself: its templates keep the pin until the commit after it
        if tagged and tagged != head.stdout.strip():
            assert commit == tagged, f"{name}: LLMCC_COMMIT {commit} is not v{version}'s {tagged}"


@pytest.mark.slow
def test_the_install_step_installs_a_working_llmcc_from_the_commit(tmp_path: Path, llmcc_release: Release) -> None:
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
    # by the commit the workflow pins, as the main README's rule says: a tag can be moved
    (commit,) = [c for name, _v, c in _pins() if name == "scaffold"]
    assert f'"llm-config-compiler[cli] @ git+https://github.com/<org>/llmcc.git@{commit}"' in readme
    assert f"'refs/tags/v{__version__}^{{}}'" in readme
    assert "llmcc.git@v" not in readme
    assert "pypi.org" not in readme  # no index serves llmcc
    hooks = (tmp_path / "conf/.pre-commit-config.yaml").read_text()
    assert f"rev: {commit}  # frozen: v{__version__}" in hooks
    assert "from its release tag" not in hooks


def test_a_workflow_without_a_pinned_commit_is_an_internal_error() -> None:
    from compiler.cli.init import pinned_commit
    from compiler.errors import InternalError

    assert pinned_commit('env:\n  LLMCC_COMMIT: "' + "a" * 40 + '"\n') == "a" * 40
    with pytest.raises(InternalError, match="pins no LLMCC_COMMIT"):
        pinned_commit('env:\n  LLMCC_COMMIT: "v0.2.0"\n')


@pytest.mark.slow
def test_a_moved_tag_does_not_change_what_the_install_step_installs(tmp_path: Path, llmcc_release: Release) -> None:
    """The tag moved to another commit after the templates pinned one: the pinned commit is installed still."""
    remote = tagged_remote(REPO_ROOT, tmp_path / "llmcc.git")
    subprocess.run(["git", "tag", "-f", f"v{__version__}", "HEAD~1"], cwd=remote, capture_output=True, check=True)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    env = {
        **llmcc_release.env(),
        "LLMCC_GIT": git_url(remote),
        "PATH": f"{env_dir / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    done = subprocess.run(["bash", "-eo", "pipefail", "-c", STEP], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    installed = subprocess.run(
        [env_dir / "bin" / "python", "-c", _DIRECT_URL], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout.strip()
    assert installed == llmcc_release.commit  # HEAD, as LLMCC_COMMIT says: not the moved tag's HEAD~1


def test_a_commit_that_is_not_the_pinned_release_fails_the_install_step(llmcc_release: Release) -> None:
    """LLMCC_VERSION bumped, LLMCC_COMMIT left at the old release: the step says so and fails (exit 1)."""
    env = {**llmcc_release.env(), "LLMCC_VERSION": "9.9.9"}
    done = subprocess.run(["bash", "-eo", "pipefail", "-c", VERSION_CHECK], env=env, capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (1, f"llmcc: LLMCC_COMMIT {llmcc_release.commit} is not llmcc 9.9.9\n")


# the commit pip recorded for the installed distribution (PEP 610 direct_url.json)
_DIRECT_URL = (
    "import json, importlib.metadata as m; "
    "print(json.loads(m.distribution('llm-config-compiler').read_text('direct_url.json'))['vcs_info']['commit_id'])"
)


# A command in a template: `llmcc` at the start of a shell command, in a run/script line or in a commented-out job.
_COMMAND = re.compile(r"(?:^|&&|\|\||[;|(]|\bthen\b)\s*(llmcc\s[^\n;|&)]*)", re.MULTILINE)
_SUBCOMMANDS = re.compile(r"^ {4}([a-z][a-z-]*)\s", re.MULTILINE)  # argparse's "positional arguments:" choices


def _template_commands() -> list[tuple[str, list[str]]]:
    """(template, argv after ``llmcc``) of every llmcc command the templates run, commented-out jobs included."""
    shipped = dict(scaffold_files())[".github/workflows/llmcc.yaml"].decode()
    out = []
    for name, text in [(GITHUB, (REPO_ROOT / GITHUB).read_text()), (GITLAB, (REPO_ROOT / GITLAB).read_text())]:
        out.append((name, text))
    out.append(("scaffold", shipped))
    commands = []
    for name, text in out:
        for line in text.splitlines():
            if line.lstrip().startswith("#") and not re.match(r"^\s*#\s+(?:run:|-\s|\S+\s*$)", line):
                continue  # prose; a commented-out job's lines are code
            body = re.sub(r"^\s*#?\s*(?:-\s+)?(?:run:\s*)?", "", line)
            body = re.split(r"\s#\s", body)[0]  # a trailing comment
            for match in _COMMAND.finditer(body):
                argv = shlex.split(match.group(1), posix=True)[1:]
                if argv and not argv[0].startswith("${"):
                    commands.append((name, argv))
    return commands


def _release_help(root: Path, chain: list[str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "compiler", *chain, "--help"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"llmcc {' '.join(chain)} --help: {done.stderr[-500:]}"
    return done.stdout


def test_the_pinned_release_knows_every_command_and_option_the_templates_run(tmp_path: Path) -> None:
    """A template on main must run with the release it installs: v0.3.0 was pinned while the templates
    already called ``hook secrets-guard --since`` (added after it), which that release refuses (exit 2).
    Between a release's tag and the commit that pins it, the templates name this checkout's version."""
    (commit,) = {c for _, _, c in _pins()}
    source = tmp_path / "release"
    source.mkdir()
    archive = subprocess.run(["git", "archive", commit, "compiler"], cwd=REPO_ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
    pinned = re.search(r'__version__ = "([^"]+)"', (source / "compiler/__init__.py").read_text())
    assert pinned is not None
    root = source if pinned.group(1) == __version__ else REPO_ROOT  # the release commit itself: this checkout
    commands = _template_commands()
    assert len(commands) > 15, commands
    helps: dict[tuple[str, ...], str] = {}
    for name, argv in commands:
        chain: list[str] = []
        text = helps.setdefault((), _release_help(root, []))
        for word in argv:
            if word.startswith("-"):
                continue
            if word not in _SUBCOMMANDS.findall(text.split("positional arguments:")[-1]):
                break
            chain.append(word)
            text = helps.setdefault(tuple(chain), _release_help(root, chain))
        missing = f"{name}: llmcc {' '.join(argv)}: no such command in the pinned release"
        assert chain or argv[0].startswith("-"), missing
        for word in argv:
            if word.startswith("--"):
                option = word.split("=")[0]
                assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text + helps[()]), (
                    f"{name}: llmcc {' '.join(argv)}: the pinned release {commit[:12]} has no {option}"
                )
