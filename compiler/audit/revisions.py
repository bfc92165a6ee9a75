"""Revisions and file ids from git: default diff base, blob ids, commits that touched files.

Every call runs ``git -C ROOT``; paths are relative to ROOT, which may be a
subdirectory of the git work tree (git resolves pathspecs against its cwd).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import InputError, UsageError

# Where the default branch lives, most authoritative first: the remote's HEAD
# (set by `git clone`), then the usual local and remote-tracking names.
DEFAULT_BRANCHES = ("origin/HEAD", "main", "master", "origin/main", "origin/master")
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_SYMLINK_MODE = "120000"


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitInfo:
    """One commit as a reviewer reads it."""

    sha: str
    author: str  # "Name <email>"
    date: str  # author date, ISO 8601
    subject: str

    @property
    def short(self) -> str:
        return self.sha[:7]


def git(root: Path, *args: str) -> tuple[int, str, str]:
    """Run git in ``root``: (exit code, stdout, stderr). Never raises on a git failure."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C", "GIT_PAGER": "cat"},
        )
    except FileNotFoundError as e:
        raise InputError("git is not installed") from e
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


def is_commit_id(text: str) -> bool:
    """A full lowercase SHA-1 or SHA-256 object id (never an option or a revision expression)."""
    return bool(_SHA.match(text))


def resolve_commit(root: Path, rev: str) -> str | None:
    """The full commit id of ``rev``, or None when it names no commit."""
    if rev.startswith("-"):
        return None
    code, out, _ = git(root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
    return out.strip() if code == 0 and out.strip() else None


def default_base(root: Path) -> str:
    """The default BASE of ``llmcc diff``: the merge-base of HEAD with the default branch.

    On a feature branch that is where the branch left the default branch, so the
    diff shows the branch's changes plus uncommitted ones, like a pull request.
    On the default branch itself the merge-base is HEAD, so the diff shows the
    uncommitted changes of the working tree (as ``git diff`` does); a clean
    working tree there shows no changes (use ``llmcc diff HEAD~1 HEAD`` for the
    last commit). Without a default branch, BASE is HEAD.

    Raises:
        UsageError: not a git repository, or no commit yet.
    """
    head = resolve_commit(root, "HEAD")
    if head is None:
        code, _, _ = git(root, "rev-parse", "--git-dir")
        if code != 0:
            raise UsageError(f"{root}: not a git repository (diff compares git revisions)")
        raise UsageError("no commit yet: nothing to diff against (commit first, or give BASE)")
    for branch in DEFAULT_BRANCHES:
        if resolve_commit(root, branch) is None:
            continue
        code, out, _ = git(root, "merge-base", "HEAD", branch)
        if code == 0 and out.strip():
            return out.strip()
    return head


def merge_base(root: Path, base: str, head: str) -> str:
    """The commit ``llmcc diff BASE HEAD`` compares HEAD with: the merge-base of the two (issue 13 §3).

    ``git diff A...B`` semantics: on a branch behind BASE (BASE moved on after
    the branch left it), BASE's own later changes are not shown reversed as if
    the branch had made them. When BASE is an ancestor of HEAD (``HEAD~1``, the
    target branch of an up-to-date merge request) this is BASE itself.

    Args:
        base: a full commit id.
        head: a full commit id.

    Raises:
        UsageError: the two have no common ancestor in the local history (a
            shallow clone: fetch the whole history, e.g. ``fetch-depth: 0``).
    """
    code, out, _ = git(root, "merge-base", base, head)
    if code == 0 and out.strip():
        return out.strip().splitlines()[0]
    shallow = git(root, "rev-parse", "--is-shallow-repository")[1].strip() == "true"
    hint = "unrelated histories"
    if shallow:
        hint = "the clone is shallow: fetch the whole history (git fetch --unshallow; fetch-depth: 0)"
    raise UsageError(f"{base[:7]} and {head[:7]} have no common ancestor ({hint}); nothing to diff against")


def is_ancestor(root: Path, older: str, newer: str) -> bool:
    """Whether commit ``older`` is ``newer`` or one of its ancestors (both full ids)."""
    code, _, err = git(root, "merge-base", "--is-ancestor", older, newer)
    if code in (0, 1):
        return code == 0
    raise InputError(f"git merge-base: {err.strip().splitlines()[0] if err.strip() else 'failed'}")


def rev_file_ids(root: Path, commit: str, paths: Sequence[str]) -> dict[str, str | None]:
    """Blob ids at ``commit`` of the files at or under ``paths``; a symlink maps to None."""
    code, out, err = git(root, "ls-tree", "-r", "-z", commit, "--", *paths)
    if code != 0:
        raise InputError(f"git ls-tree: {err.strip().splitlines()[0] if err.strip() else 'failed'}")
    ids: dict[str, str | None] = {}
    for entry in out.split("\0"):
        if not entry:
            continue
        meta, _, path = entry.partition("\t")
        mode, kind, sha = meta.split(" ")
        if kind == "blob":
            ids[path] = None if mode == _SYMLINK_MODE else sha
    return ids


def worktree_file_ids(root: Path, paths: Sequence[str]) -> dict[str, str | None]:
    """Git blob ids of the files at or under ``paths`` on disk (as ``git hash-object`` computes them).

    A file's id equals a revision's blob id exactly when the bytes are equal, so
    equal ids mean ``WorkTree`` and ``GitRevTree`` read the same content. A
    symlink, to a file or a directory, maps to None: its files are not listed,
    so what is read through it is unknown. Every file is read: an id is never
    taken from a stat (``compiler.incremental.filestat`` says why).
    """
    ids: dict[str, str | None] = {}
    base = root.resolve()
    for rel in paths:
        _list(os.path.join(base, rel), rel, ids)
    return ids


def _list(full: str, key: str, ids: dict[str, str | None]) -> None:
    """Add the id of ``full`` (``key`` relative to the root), or of every file below it, to ``ids``.

    str paths and ``os.scandir``'s file types, no ``Path`` per file: it runs twice in every cached
    compile or validate (before the build and after it, ~170 files on xlarge).
    """
    try:
        st = os.lstat(full)
    except OSError:
        return
    if stat.S_ISLNK(st.st_mode):
        ids[key] = None  # unknown: the target is compiled, and WorkTree judges the link
    elif stat.S_ISREG(st.st_mode):
        ids[key] = _blob_id(full)
    elif stat.S_ISDIR(st.st_mode):
        _list_dir(full, key, ids)


def _list_dir(full: str, key: str, ids: dict[str, str | None]) -> None:
    # os.walk does not enter a symlinked directory, but WorkTree reads through it: listed as unknown
    try:
        with os.scandir(full) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:  # pragma: no cover - an unreadable directory (root reads any): as os.walk, nothing below it
        return
    for entry in entries:
        name = f"{key}/{entry.name}"
        try:  # the type from the directory itself (an lstat only where the file system gives none)
            if entry.is_symlink():
                ids[name] = None
            elif entry.is_file(follow_symlinks=False):
                ids[name] = _blob_id(entry.path)
            elif entry.is_dir(follow_symlinks=False):
                _list_dir(entry.path, name, ids)
        except FileNotFoundError:  # gone since the directory was listed: as an lstat that failed
            continue


def _blob_id(path: str) -> str | None:
    """``git hash-object`` of the file at ``path`` (SHA-1 of ``blob <size>\\0`` and the bytes); None when
    it is no longer a regular file (replaced since it was listed: unknown, never waited on as a FIFO)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        chunks = []
        while chunk := os.read(fd, max(st.st_size, 1 << 16)):
            chunks.append(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    h = hashlib.sha1(b"blob %d\0" % len(data), usedforsecurity=False)
    h.update(data)
    return h.hexdigest()


def log_commits(root: Path, start: str, paths: Sequence[str]) -> list[CommitInfo]:
    """Commits reachable from ``start`` that touched any of ``paths``, newest first."""
    # --first-parent: each listed commit's predecessor in the list is its first parent's state,
    # so old -> new is exact on merge histories; a change made on a merged branch shows as its merge.
    code, out, err = git(
        root, "log", "--first-parent", "-z", "--format=%H%x1f%an <%ae>%x1f%aI%x1f%s", start, "--", *paths
    )
    if code != 0:
        raise InputError(f"git log: {err.strip().splitlines()[0] if err.strip() else 'failed'}")
    commits = []
    for record in out.split("\0"):
        record = record.strip("\n")
        if record:
            sha, author, date, subject = record.split("\x1f", 3)
            commits.append(CommitInfo(sha=sha, author=author, date=date, subject=subject))
    return commits
