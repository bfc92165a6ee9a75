"""Published versions against git (``verify --git``): each commit exists and history only moves forward.

The core of the check, without the store: the caller lists each published
version's ``(version, metadata.source.commit)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from compiler.audit.revisions import git, is_ancestor, is_commit_id
from compiler.errors import UsageError


def check_versions_against_git(
    repo_root: Path, versions: Sequence[tuple[int, str]], *, pointer_commit: str | None = None
) -> list[str]:
    """Every problem found, in version order ([] when the versions follow commit ancestry).

    Checks, per version in ascending order:
      1. its commit is a full object id that names a commit in the repository;
      2. its commit is the previous version's commit or a descendant of it
         (``git merge-base --is-ancestor``), so no publish came from a commit
         outside the line of history, e.g. a rewritten or diverged branch.
    A version whose commit is missing is not compared; the next one is compared
    with the last version whose commit exists.
      3. ``pointer_commit``, the newest commit the signed pointer says compiled to
         the latest version's content (issue 13 §4), passes 1 and 2 as if it were
         one more version after the latest.

    Raises:
        UsageError: ``repo_root`` is not in a git repository.
    """
    code, _, _ = git(repo_root, "rev-parse", "--git-dir")
    if code != 0:
        raise UsageError(f"{repo_root}: not a git repository (--git checks published commits against one)")
    problems: list[str] = []
    previous: tuple[int, str] | None = None
    for version, commit in sorted(versions):
        problem, exists = _check_commit(repo_root, f"version {version}", commit, previous)
        problems += problem
        if exists:
            previous = (version, commit)
    if pointer_commit is not None:
        problems += _check_commit(repo_root, "pointer", pointer_commit, previous)[0]
    return problems


def _check_commit(repo_root: Path, what: str, commit: str, previous: tuple[int, str] | None) -> tuple[list[str], bool]:
    """Checks 1 and 2 for one commit (``what`` names it): the problems, and whether the commit exists."""
    if not is_commit_id(commit):
        return [f"{what}: source commit {commit!r} is not a full commit id"], False
    code, out, _ = git(repo_root, "cat-file", "-t", commit)
    if code != 0 or out.strip() != "commit":
        return [f"{what}: commit {commit[:12]} is not in the repository"], False
    if previous is not None and not is_ancestor(repo_root, previous[1], commit):
        return [
            f"{what}: commit {commit[:12]} does not descend from version {previous[0]}'s commit {previous[1][:12]}"
        ], True
    return [], True
