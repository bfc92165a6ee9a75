"""`verify --git` core: published commits exist and follow ancestry."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.audit.provenance_check import check_versions_against_git
from compiler.errors import UsageError
from tests.conftest import GitRepo


def _line(repo: GitRepo, n: int) -> list[str]:
    shas = []
    for i in range(n):
        repo.write("f.txt", f"{i}\n")
        shas.append(repo.commit(f"c{i}", author=f"Author {i} <a{i}@example.com>"))
    return shas


def test_a_straight_line_of_versions_is_fine(git_repo: GitRepo) -> None:
    a, b, c = _line(git_repo, 3)
    assert check_versions_against_git(git_repo.path, [(3, c), (1, a), (2, b), (4, c)]) == []
    assert check_versions_against_git(git_repo.path, []) == []


def test_missing_commit_and_not_a_commit_id(git_repo: GitRepo) -> None:
    a, b = _line(git_repo, 2)
    tree = git_repo.git("rev-parse", "HEAD^{tree}").strip()
    problems = check_versions_against_git(git_repo.path, [(1, a), (2, "f" * 40), (3, "HEAD"), (4, tree), (5, b)])
    assert problems == [
        f"version 2: commit {'f' * 12} is not in the repository",
        "version 3: source commit 'HEAD' is not a full commit id",
        f"version 4: commit {tree[:12]} is not in the repository",
    ]


def test_a_publish_from_a_diverged_branch_is_reported(git_repo: GitRepo) -> None:
    a, b = _line(git_repo, 2)
    git_repo.git("checkout", "-q", "-b", "side", a)
    git_repo.write("g.txt", "side\n")
    side = git_repo.commit("side work", author="Eve <eve@example.com>")
    git_repo.git("checkout", "-q", "main")
    git_repo.write("h.txt", "main\n")
    c = git_repo.commit("main work")
    problems = check_versions_against_git(git_repo.path, [(1, a), (2, b), (3, side), (4, c)])
    assert problems == [
        f"version 3: commit {side[:12]} does not descend from version 2's commit {b[:12]}",
        f"version 4: commit {c[:12]} does not descend from version 3's commit {side[:12]}",
    ]


def test_going_back_in_history_is_reported(git_repo: GitRepo) -> None:
    a, b = _line(git_repo, 2)
    assert check_versions_against_git(git_repo.path, [(1, b), (2, a)]) == [
        f"version 2: commit {a[:12]} does not descend from version 1's commit {b[:12]}"
    ]


def test_not_a_git_repository(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a git repository"):
        check_versions_against_git(tmp_path, [(1, "a" * 40)])


def test_the_pointer_commit_is_checked_as_one_more_version(git_repo: GitRepo) -> None:
    """Issue 13 §4: the commit a pointer records for an unchanged target exists and follows the latest version's."""
    a, b, c = _line(git_repo, 3)
    assert check_versions_against_git(git_repo.path, [(1, a), (2, b)], pointer_commit=c) == []
    assert check_versions_against_git(git_repo.path, [(1, a), (2, b)], pointer_commit=b) == []
    assert check_versions_against_git(git_repo.path, [(1, a), (2, b)], pointer_commit=a) == [
        f"pointer: commit {a[:12]} does not descend from version 2's commit {b[:12]}"
    ]
    assert check_versions_against_git(git_repo.path, [(1, a)], pointer_commit="e" * 40) == [
        f"pointer: commit {'e' * 12} is not in the repository"
    ]
    assert check_versions_against_git(git_repo.path, [], pointer_commit="main") == [
        "pointer: source commit 'main' is not a full commit id"
    ]
