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


def test_a_symlink_out_of_the_root_is_refused_even_to_a_sibling_that_shares_its_name(tmp_path: Path) -> None:
    root, sibling = tmp_path / "repo", tmp_path / "repo-evil"
    root.mkdir()
    sibling.mkdir()
    (sibling / "secret.yaml").write_text("a: 1\n")
    (root / "inside.yaml").write_text("b: 1\n")
    (root / "link.yaml").symlink_to(sibling / "secret.yaml")
    (root / "ok.yaml").symlink_to(root / "inside.yaml")
    tree = WorkTree(root)
    with pytest.raises(InputError, match="points outside the repository"):
        tree.read("link.yaml")
    assert tree.read("ok.yaml") == b"b: 1\n"
    assert tree.exists("ok.yaml")
