"""The working tree: files on disk under the repository root (HEAD of `diff`)."""

from __future__ import annotations

import os
import stat
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from compiler.errors import InputError, TooLargeError
from compiler.load.yaml import MAX_FILE_BYTES
from compiler.sources.base import SourceInfo, check_relative


class WorkTree:
    """Reads repository-relative paths below ``root``; nothing outside it, even through symlinks."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._inside = str(self.root).rstrip("/") + "/"  # the prefix of every resolved path below the root
        self._info: _Background[SourceInfo | None] | None = None
        self._files: _Background[list[str] | None] | None = None
        self._staged: dict[str, list[str]] | None = None  # staged_changes(), once per process

    def start_git(self, *, files: bool = False) -> None:
        """Start, in the background, the git processes ``source_info`` (and with ``files``,
        ``committable_files``) wait for: they run while the command imports and builds (issue 14 §1).

        Each result is taken once, by the next call; one taken later than its git ran
        lists the files of the moment it ran (``files`` only where the command writes
        nothing in the tree before it scans, as ``validate --no-cache``).
        """
        self._info = _Background(self._source_info)
        if files:
            self._files = _Background(self._committable_files)

    @property
    def rev(self) -> str | None:
        return None

    def _resolve(self, path: str) -> Path:
        """The real path of ``path``, resolved whole on every call (InputError when it leads outside).

        Not memoised per directory: a directory swapped for a symlink out of the
        repository during a run must be refused on the next read (attacker, issue 14).
        """
        check_relative(path)
        return self._resolve_full(path)

    def _resolve_full(self, path: str) -> Path:
        full = self.root / path
        try:
            real = full.resolve()
        except (RuntimeError, OSError) as e:  # a symlink loop (RuntimeError on Python 3.11)
            raise InputError(f"{path}: cannot resolve: {e}") from e
        if real != self.root and not str(real).startswith(self._inside):  # both normalised by resolve()
            raise InputError(f"{path}: points outside the repository (symlink to {real})")
        return real

    def read(self, path: str) -> bytes:
        """The bytes of ``path``, a regular file of at most ``MAX_FILE_BYTES``.

        Opened without blocking and checked on the open descriptor, so a FIFO, socket or
        device there is refused at once (opening a FIFO for reading waits for a writer: a
        build hung on one, attacker, issue 14) and the size checked is the file's read.

        Raises:
            InputError: missing, a directory, not a regular file, or unreadable.
            TooLargeError: over the read limit.
        """
        data = self._read(path, present=False)
        assert data is not None  # raised instead (present=False)
        return data

    def read_present(self, path: str) -> bytes | None:
        """``read``, or None where ``exists`` is False (nothing there, a directory, a path through a
        file): the path resolved once for both (the secrets guard reads every committable file)."""
        return self._read(path, present=True)

    def _read(self, path: str, *, present: bool) -> bytes | None:
        real = self._resolve(path)
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError) as e:
            if present:
                return None
            if isinstance(e, FileNotFoundError):
                raise InputError(f"{path}: no such file") from e
            raise InputError(f"{path}: cannot read: {e.strerror}") from e
        except OSError as e:
            raise InputError(f"{path}: cannot read: {e.strerror}") from e
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                if present:
                    return None
                raise InputError(f"{path}: is a directory")
            if not stat.S_ISREG(st.st_mode):
                raise InputError(f"{path}: not a regular file (a FIFO, socket or device)")
            if st.st_size > MAX_FILE_BYTES:
                raise TooLargeError(f"{path}: file is {st.st_size} bytes; the limit is {MAX_FILE_BYTES}")
            chunks: list[bytes] = []
            left = MAX_FILE_BYTES + 1  # grown since the fstat: still refused
            while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
                chunks.append(chunk)
                left -= len(chunk)
            if left <= 0:
                raise TooLargeError(f"{path}: file is over the limit of {MAX_FILE_BYTES} bytes")
            return b"".join(chunks)
        except OSError as e:
            raise InputError(f"{path}: cannot read: {e.strerror}") from e
        finally:
            os.close(fd)

    def read_link(self, path: str) -> bytes | None:
        """The target name of ``path`` when it is a symlink (not followed: what git commits for it), else None.

        Raises:
            InputError: a directory on the way leads outside the repository, or cannot be read.
        """
        check_relative(path)
        head, _, name = path.rpartition("/")
        parent = self._resolve_full(head) if head else self.root
        try:
            if not stat.S_ISLNK(os.lstat(parent / name).st_mode):
                return None
            return os.readlink(os.fsencode(parent / name))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            raise InputError(f"{path}: cannot read: {e.strerror}") from e

    def exists(self, path: str) -> bool:
        """Whether something other than a directory is at ``path``: a FIFO, socket or device counts,
        so that ``read`` refuses it instead of the caller taking the file for absent."""
        try:
            return not stat.S_ISDIR(os.stat(self._resolve(path)).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as e:
            raise InputError(f"{path}: cannot read: {e.strerror}") from e

    def list_dir(self, path: str) -> list[str]:
        real = self._resolve(path)
        try:
            return sorted(e.name for e in os.scandir(real) if e.is_file())
        except (FileNotFoundError, NotADirectoryError):
            return []

    def unlisted(self, path: str) -> list[str]:
        real = self._resolve(path)
        try:
            return sorted(e.name for e in os.scandir(real) if not e.is_file())
        except FileNotFoundError:
            return []
        except NotADirectoryError:
            return [""]

    def list_tree(self, path: str) -> list[str]:
        real = self._resolve(path)
        found: list[str] = []
        # followlinks=False: a symlinked directory is not walked (a linked file is, and read() checks it).
        for top, dirs, files in os.walk(real):
            dirs.sort()
            rel = Path(top).relative_to(real).as_posix()
            prefix = path if rel == "." else f"{path}/{rel}"
            found += [f"{prefix}/{name}" for name in files if (Path(top) / name).is_file()]
        return sorted(found)

    def source_info(self) -> SourceInfo | None:
        early, self._info = self._info, None
        return early.result() if early is not None else self._source_info()

    def committable_files(self) -> list[str] | None:
        early, self._files = self._files, None
        return early.result() if early is not None else self._committable_files()

    def _source_info(self) -> SourceInfo | None:
        return git_source_info(self.root, "HEAD", worktree=True)

    def _committable_files(self) -> list[str] | None:
        # paths relative to the root (git's default in a subdirectory), NUL-separated: any name survives
        ls_files = ("ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", ".")
        out = run_git(self.root, *ls_files, check=False, names=True)  # one git process where it works (issue 14 §1)
        if out is None:
            if run_git(self.root, "rev-parse", "--is-inside-work-tree", check=False) is None:
                return None  # outside git: nothing git can take
            out = run_git(self.root, *ls_files, names=True)  # inside git, ls-files failed: its error
        return sorted({p for p in (out or "").split("\0") if p})

    def staged_changes(self) -> dict[str, list[str]]:
        """Path (relative to the root) -> the blob ids git's index holds for it, for each path whose index
        entry is not HEAD's parent's: what the next commit holds that its parent does not (one id;
        several while a merge conflicts).

        HEAD's parent, not HEAD: ``git commit --amend`` replaces HEAD by a commit of the index on
        HEAD's parent, and a hook cannot tell that it amends. Compared with HEAD, a file that a
        ``--no-verify`` commit added was "unchanged", and amending (or the next commit) passed
        the guards with it. Compared with HEAD's parent, HEAD's own change is judged again,
        as the index has it (a change a later commit adds is then judged twice: harmless).
        On the root commit, HEAD itself (amending the root commit is not seen: README "Trust
        model"; else every hook run in a one-commit repository would judge every file); before
        the first commit every index entry counts (``git ls-files -s``). Compared by object id
        (``git diff-index --cached``), never by stat. A path the index removes, and a submodule's
        commit, hold no blob and are left out.
        Under ``git commit -a`` or ``git commit FILE`` a hook runs with ``GIT_INDEX_FILE``
        naming the index being committed, and the git run here inherits it. Empty outside git.

        Raises:
            InputError: inside a git work tree, git cannot compare or list its index.
        """
        if self._staged is None:
            self._staged = self._staged_changes()
        return self._staged

    def kept_from_head(self) -> tuple[str, set[str]] | None:
        """HEAD's short id and the paths of ``staged_changes`` whose index entry is HEAD's: HEAD's own
        change, which the next commit (or the amend) keeps, not one staged now. None before the first commit.

        Raises:
            InputError: inside a git work tree, git cannot compare the index with HEAD.
        """
        staged = self.staged_changes()
        head = run_git(self.root, "rev-parse", "--short=12", "HEAD", check=False) if staged else None
        if head is None:
            return None
        diff = ("diff-index", "--cached", "-z", "--name-only", "--no-renames", "--relative", "HEAD", "--")
        changed = set((run_git(self.root, *diff, names=True) or "").split("\0"))
        return head.strip(), {path for path in staged if path not in changed}

    def _staged_changes(self) -> dict[str, list[str]]:
        # HEAD and its parents in one git run; it fails outside git and before the first commit
        heads = run_git(self.root, "rev-list", "-1", "--parents", "HEAD", "--", check=False)
        if heads is None:
            if run_git(self.root, "rev-parse", "--is-inside-work-tree", check=False) is None:
                return {}
            return self._index_entries(None)  # no commit yet
        ids = heads.split()
        base = ids[1] if len(ids) > 1 else ids[0]  # HEAD's first parent; HEAD when it is the root commit
        diff = ("diff-index", "--cached", "-z", "--no-renames", "--relative", "--abbrev=64", base, "--")
        out = run_git(self.root, *diff, names=True) or ""  # a commit to compare with: git failing is an error
        changed: dict[str, list[str]] = {}
        unmerged: set[str] = set()
        words = out.split("\0")
        for meta, path in zip(words[0::2], words[1::2], strict=False):
            fields = meta.split(" ")  # ":oldmode newmode oldid newid status"
            if len(fields) != _RAW_FIELDS:
                continue
            if fields[4].startswith("U"):
                unmerged.add(path)
            elif fields[1] not in ("000000", _GITLINK):
                changed[path] = [fields[3]]
        return {**changed, **self._index_entries(unmerged)} if unmerged else changed

    def _index_entries(self, paths: set[str] | None) -> dict[str, list[str]]:
        """``git ls-files -s``: the blob ids of every index entry, or of those of ``paths``."""
        out = run_git(self.root, "ls-files", "-s", "-z", "--", ".", names=True)
        ids: dict[str, list[str]] = {}
        for entry in (out or "").split("\0"):
            info, tab, path = entry.partition("\t")
            fields = info.split(" ")
            if tab and len(fields) == _STAGE_FIELDS and fields[0] != _GITLINK and (paths is None or path in paths):
                ids.setdefault(path, []).append(fields[1])
        return ids

    def read_blobs(self, ids: list[str]) -> dict[str, bytes | None]:
        """The content of each blob in ``ids`` (``git cat-file --batch``): None for one over the read limit
        (``MAX_FILE_BYTES``); one not in the object store is left out.

        Raises:
            InputError: git cannot be run, or fails.
        """
        if not ids:
            return {}
        try:
            done = subprocess.run(
                ["git", "-C", str(self.root), "cat-file", "--batch"],
                input="".join(f"{i}\n" for i in ids).encode(),
                capture_output=True,
                check=False,
                env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
            )
        except FileNotFoundError as e:
            raise InputError("git is not installed") from e
        if done.returncode != 0:
            err = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise InputError(f"git cat-file: {err[0] if err else 'failed'}")
        out: dict[str, bytes | None] = {}
        data, at = done.stdout, 0
        for ident in ids:
            end = data.index(b"\n", at)
            header = data[at:end].split(b" ")
            at = end + 1
            if len(header) != 3:  # "<id> missing"
                continue
            size = int(header[2])
            out[ident] = data[at : at + size] if size <= MAX_FILE_BYTES else None
            at += size + 1
        return out


_GITLINK = "160000"  # the index mode of a submodule (its commit id, not a blob)
_RAW_FIELDS = 5  # git diff-index's raw line before the path: ":oldmode newmode oldid newid status"
_STAGE_FIELDS = 3  # git ls-files -s before the tab: "mode id stage"


_T = TypeVar("_T")


class _Background(Generic[_T]):
    """``run()`` in a thread of its own; ``result()`` waits for it, then gives what it returned or
    raises what it raised."""

    def __init__(self, run: Callable[[], _T]) -> None:
        self._run = run
        self._value: tuple[_T] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._target, name="llmcc-git")
        self._thread.start()

    def _target(self) -> None:
        try:
            self._value = (self._run(),)
        except Exception as e:  # noqa: BLE001 - raised again by result(), as if its caller had called run()
            self._error = e

    def result(self) -> _T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._value is not None  # _target set one of the two
        return self._value[0]


def run_git(root: Path, *args: str, check: bool = True, names: bool = False) -> str | None:
    """Run git in ``root``; the text of stdout, or None when git fails and ``check`` is off.

    ``names``: stdout lists file names (``-z``), decoded as Python decodes the file system's
    names (``os.fsdecode``: UTF-8, a byte that is not as a lone surrogate), so each names the
    very file; decoded with replacement characters, a name that is not UTF-8 named no file
    and the secrets guard took it for deleted (attacker, issue 14).
    """
    return _git_output(_start_git(root, *args), args, check=check, names=names)


def _start_git(root: Path, *args: str) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            ["git", "-C", str(root), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
        )
    except FileNotFoundError as e:
        raise InputError("git is not installed") from e


def _git_output(
    running: subprocess.Popen[bytes], args: tuple[str, ...], *, check: bool, names: bool = False
) -> str | None:
    """What ``run_git`` returns for the git process ``running`` (started with ``args``), once it ended."""
    stdout, stderr = running.communicate()
    if running.returncode != 0:
        if not check:
            return None
        err = stderr.decode("utf-8", "replace").strip().splitlines()
        raise InputError(f"git {' '.join(args[:2])}: {err[0] if err else 'failed'}")
    return os.fsdecode(stdout) if names else stdout.decode("utf-8", "replace")


def git_source_info(root: Path, rev: str, *, worktree: bool) -> SourceInfo | None:
    """Commit, author, date and message of ``rev``; ``dirty`` only for the working tree."""
    log = ("log", "-1", "--format=%H%x00%an <%ae>%x00%cI%x00%B", rev, "--")
    status = ("status", "--porcelain", "--untracked-files=no", "--", ".")
    # the two git processes run side by side (issue 14 §1: a few ms of each validate)
    running = [_start_git(root, *args) for args in (log, status)] if worktree else [_start_git(root, *log)]
    out, *rest = [_git_output(r, args, check=False) for r, args in zip(running, (log, status), strict=False)]
    if not out:
        return None
    commit, author, date, message = out.split("\0", 3)
    dirty = bool(rest and rest[0] and rest[0].strip())
    return SourceInfo(commit=commit, author=author, committed_at=date, message=message.strip(), dirty=dirty)
