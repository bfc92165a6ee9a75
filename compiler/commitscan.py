"""The secrets guard on each commit a merge request brings into history: ``llmcc hook secrets-guard --since REV``.

The guard on the working tree judges the merge request's last state. History keeps
every commit: a credential committed with ``git commit --no-verify`` and removed
again by a later commit, or two commits back when the author amended, is pushed
with the branch although no tree the hooks saw at the end holds it. So each commit
of ``REV..HEAD`` (``git rev-list``: the merge request's commits, a merge's other
side too) is scanned as that commit has its files: the files it changed against
its first parent (every file of a root commit), by every rule of
``compiler.plaintext.scan_files``, with that commit's own ``llmcc.yaml`` (its
``secrets_guard.allow``) and ``schemas/``. This is what gitleaks' ``detect
--log-opts REV..HEAD`` does for its rules; the hooks cannot (README "Trust model").

A commit whose ``llmcc.yaml`` or ``schemas/`` cannot be loaded cannot be judged by
rules 1-2: it is an input error naming the commit (exit 2), never skipped.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from compiler.compile.repository import Repository
from compiler.errors import LlmccError, UsageError
from compiler.plaintext import GuardScan, scan_files
from compiler.secrets.sources import SopsOpener
from compiler.sources.gitrev import GitRevTree
from compiler.sources.worktree import run_git


def commits_since(root: Path, since: str) -> list[tuple[str, str | None]]:
    """``(commit, its first parent or None)`` of every commit in ``since..HEAD``, oldest first.

    Raises:
        UsageError: ``since`` names no commit, or there is no HEAD.
    """
    for rev in (since, "HEAD"):
        if run_git(root, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}", check=False) is None:
            raise UsageError(f"--since {since}: unknown revision {rev!r} (fetch it: git fetch origin)")
    out = run_git(root, "rev-list", "--reverse", "--parents", f"{since}..HEAD", "--") or ""
    commits: list[tuple[str, str | None]] = []
    for line in out.splitlines():
        ids = line.split()
        if ids:
            commits.append((ids[0], ids[1] if len(ids) > 1 else None))
    return commits


def changed_files(root: Path, commit: str, parent: str | None) -> list[str]:
    """The files (below ``root``, relative to it) ``commit`` adds or changes against ``parent``."""
    against = [parent, commit] if parent is not None else ["--root", commit]
    args = ("diff-tree", "-r", "-z", "--no-renames", "--no-commit-id", "--name-only", "--relative")
    out = run_git(root, *args, "--diff-filter=d", *against, "--", names=True) or ""
    return sorted(p for p in out.split("\0") if p)


def scan_commits(root: Path, since: str) -> tuple[GuardScan, int]:
    """Every rule of the secrets guard on each commit of ``since..HEAD`` (see the module doc);
    the findings say which commit holds them. Returns the scan and how many commits it read.

    Raises:
        UsageError: ``since`` names no commit.
    """
    total = GuardScan()
    commits = commits_since(root, since)
    for commit, parent in commits:
        short = commit[:12]
        where = f"in commit {short} of {since}..HEAD, which history keeps"
        try:
            repo = Repository(GitRevTree(root, commit), open_secrets=SopsOpener(None))
            scan = scan_files(repo, changed_files(root, commit, parent))
        except LlmccError as e:
            total.inputs[f"commit {short}: {e} (the secrets guard cannot judge this commit)"] = e.exit_code
            continue
        total.diagnostics += [replace(d, message=f"{d.message} ({where})") for d in scan.diagnostics]
        total.allowed += [a for a in scan.allowed if a not in total.allowed]
        for message, code in scan.inputs.items():
            total.inputs[f"commit {short}: {message}"] = code
        total.scanned += scan.scanned
    return total, len(commits)
