"""Revisions from git: the default diff base, blob ids on disk and in commits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from compiler.audit.revisions import (
    default_base,
    is_ancestor,
    log_commits,
    resolve_commit,
    rev_file_ids,
    worktree_file_ids,
)
from compiler.errors import InputError, UsageError
from tests.conftest import GitRepo


def test_default_base(git_repo: GitRepo) -> None:
    git_repo.write("a.txt", "1\n")
    first = git_repo.commit("one")
    assert default_base(git_repo.path) == first  # on main: HEAD
    git_repo.git("checkout", "-q", "-b", "topic")
    git_repo.write("a.txt", "2\n")
    git_repo.commit("two")
    assert default_base(git_repo.path) == first  # on a branch: where it left main
    git_repo.git("branch", "-q", "-m", "main", "trunk")
    assert default_base(git_repo.path) == resolve_commit(git_repo.path, "HEAD")  # no default branch


def test_default_base_outside_git(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a git repository"):
        default_base(tmp_path)


def test_resolve_commit_refuses_options_and_unknown_names(git_repo: GitRepo) -> None:
    git_repo.write("a.txt", "1\n")
    sha = git_repo.commit("one")
    assert resolve_commit(git_repo.path, "HEAD") == sha
    assert resolve_commit(git_repo.path, "--all") is None
    assert resolve_commit(git_repo.path, "nope") is None


def test_git_failures_are_input_errors(git_repo: GitRepo) -> None:
    with pytest.raises(InputError, match="git ls-tree"):
        rev_file_ids(git_repo.path, "0" * 40, ["x"])
    with pytest.raises(InputError, match="git log"):
        log_commits(git_repo.path, "0" * 40, ["x"])
    with pytest.raises(InputError, match="git merge-base"):
        is_ancestor(git_repo.path, "0" * 40, "1" * 40)


def test_blob_ids_match_between_disk_and_commit_and_symlinks_are_unknown(git_repo: GitRepo) -> None:
    git_repo.write("environments/base.yaml", "vars: {}\n")
    git_repo.write("llmcc.yaml", "project: x\n")
    (git_repo.path / "environments" / "link.yaml").symlink_to("base.yaml")
    (git_repo.path / "top.yaml").symlink_to("llmcc.yaml")
    sha = git_repo.commit("files")
    paths = ["llmcc.yaml", "environments", "top.yaml", "missing"]
    on_disk = worktree_file_ids(git_repo.path, paths)
    in_git = rev_file_ids(git_repo.path, sha, paths)
    assert on_disk == in_git
    assert on_disk["environments/link.yaml"] is None
    assert on_disk["top.yaml"] is None
    assert on_disk["llmcc.yaml"] == git_repo.git("rev-parse", "HEAD:llmcc.yaml").strip()


def test_file_ids_skip_what_is_not_a_regular_file_and_never_wait_on_a_fifo(git_repo: GitRepo) -> None:
    """A FIFO or socket among the listed files has no id (git takes neither); one put where a listed
    file was (after the listing) is unknown (None) at once: it is opened without waiting for a writer."""
    from compiler.audit.revisions import _blob_id

    git_repo.write("environments/base.yaml", "vars: {}\n")
    git_repo.write("environments/empty.yaml", "")
    os.mkfifo(git_repo.path / "environments/pipe.yaml")
    ids = worktree_file_ids(git_repo.path, ["environments"])
    assert set(ids) == {"environments/base.yaml", "environments/empty.yaml"}
    assert ids["environments/empty.yaml"] == git_repo.git("hash-object", "environments/empty.yaml").strip()
    assert _blob_id(str(git_repo.path / "environments/pipe.yaml")) is None
