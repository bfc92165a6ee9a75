"""``WorkTree.committable_files``: what git can take, in one git process where git works (issue 14 §1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.errors import InputError
from compiler.sources.worktree import WorkTree
from tests.conftest import GitRepo


def test_in_a_work_tree_the_tracked_staged_and_untracked_files_not_ignored(git_repo: GitRepo) -> None:
    git_repo.write(".gitignore", "*.log\n")
    git_repo.write("a.yaml", "a: 1\n")
    git_repo.commit("a")
    git_repo.write("sub/b.yaml", "b: 1\n")
    git_repo.write("c.log", "ignored\n")
    assert WorkTree(git_repo.path).committable_files() == [".gitignore", "a.yaml", "sub/b.yaml"]
    assert WorkTree(git_repo.path / "sub").committable_files() == ["b.yaml"]  # relative to the root given


def test_outside_git_there_is_nothing_git_can_take(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("a: 1\n")
    assert WorkTree(tmp_path).committable_files() is None


def test_inside_git_where_ls_files_fails_its_error_is_raised(git_repo: GitRepo) -> None:
    git_repo.write("a.yaml", "a: 1\n")
    git_repo.commit("a")
    with pytest.raises(InputError, match="git ls-files"):
        WorkTree(git_repo.path / ".git").committable_files()  # git's own directory: not a work tree
