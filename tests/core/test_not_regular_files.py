"""A FIFO, socket or device where llmcc reads a file is refused at once, never waited on (attacker, issue 14).

Opening a FIFO for reading blocks until a writer comes: the YAML pre-parse helper of
a parallel build blocked there and the build with it, and a serial build took the FIFO
for an absent file. Now every read of the working tree opens without blocking and
refuses what is not a regular file, and ``exists`` counts it as there, so the command
ends with one line naming the file.

Real processes under a time limit (a hang is a failure, not a measurement).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEMO_IDENTITY, GitRepo

LLMCC = Path(sys.executable).parent / "llmcc"
NOT_REGULAR = "not a regular file (a FIFO, socket or device)"


def run(repo: GitRepo, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOPS_AGE_KEY_FILE": str(DEMO_IDENTITY)}
    return subprocess.run(
        [str(LLMCC), *args], cwd=repo.path, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def fifo_at(repo: GitRepo, path: str) -> None:
    target = repo.path / path
    target.unlink()
    os.mkfifo(target)


@pytest.mark.parametrize(
    ("path", "jobs"),
    [("environments/base.yaml", "1"), ("templates/_base-service.yaml", "2")],  # -j 1 took it for absent; -j 2 hung
)
def test_a_fifo_where_an_input_is_read_is_refused_not_waited_on(example_repo: GitRepo, path: str, jobs: str) -> None:
    fifo_at(example_repo, path)
    done = run(example_repo, "compile", "--no-cache", "-q", "-j", jobs)
    assert done.returncode in (1, 2), done.stderr
    assert f"{path}: {NOT_REGULAR}" in done.stderr
    assert "Traceback" not in done.stderr
    assert not list((example_repo.path / "dist").glob("*.bundle.json"))


def test_validate_names_a_fifo_among_the_layers(example_repo: GitRepo) -> None:
    fifo_at(example_repo, "environments/base.yaml")
    done = run(example_repo, "validate", "--no-cache")
    assert done.returncode in (1, 2)
    assert f"environments/base.yaml: {NOT_REGULAR}" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_directory_where_a_template_is_read_is_still_absent_not_a_fifo(example_repo: GitRepo) -> None:
    """``exists`` keeps a directory out: only what is not a directory counts as there."""
    from compiler.sources.worktree import WorkTree

    tree = WorkTree(example_repo.path)
    (example_repo.path / "templates" / "d.yaml").mkdir()
    assert not tree.exists("templates/d.yaml")
    assert not tree.exists("templates/none.yaml")
    fifo_at(example_repo, "templates/_base-service.yaml")
    assert tree.exists("templates/_base-service.yaml")


def test_read_present_is_exists_then_read_with_one_resolve(tmp_path: Path) -> None:
    """The secrets guard's read of each committable file (issue 14 §2): None exactly where ``exists``
    is False, the bytes ``read`` gives otherwise, and ``read``'s refusals (a FIFO is not waited on, a
    symlink out of the repository is not followed), so no file the guard should scan is passed unread."""
    from compiler.errors import InputError
    from compiler.sources.worktree import WorkTree

    outside = tmp_path / "outside.yaml"
    outside.write_text("x: 1\n")
    root = tmp_path / "repo"
    (root / "dir").mkdir(parents=True)
    (root / "file.yaml").write_text("a: 1\n")
    (root / "link.yaml").symlink_to("file.yaml")
    (root / "out.yaml").symlink_to(outside)
    os.mkfifo(root / "pipe.yaml")
    tree = WorkTree(root)
    for path in ("file.yaml", "link.yaml", "dir", "missing.yaml", "file.yaml/below", "dir/missing"):
        assert tree.read_present(path) == (tree.read(path) if tree.exists(path) else None), path
    for path in ("out.yaml", "pipe.yaml"):
        with pytest.raises(InputError) as e:
            tree.read_present(path)
        with pytest.raises(InputError) as again:
            tree.read(path)
        assert str(e.value) == str(again.value)
    with pytest.raises(InputError, match=r"^file\.yaml/below: cannot read: Not a directory$"):
        tree.read("file.yaml/below")
    with pytest.raises(InputError, match=r"^dir: is a directory$"):
        tree.read("dir")
    (root / "file.yaml").write_text("a: 2\n")  # nothing kept between reads
    assert tree.read_present("file.yaml") == b"a: 2\n"
