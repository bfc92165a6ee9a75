"""Files of a git revision, read from git objects: never a checkout (README "Commands")."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import git
from gitdb.exc import BadName, BadObject

from compiler.errors import InputError, TooLargeError, UsageError
from compiler.load.yaml import MAX_FILE_BYTES
from compiler.sources.base import SourceInfo, check_relative

_SYMLINK = 0o120000
_INDEX = "index:"  # GitRevTree.index: a tree git write-tree made of the index
_DIR = 0o040000


class GitRevTree:
    """The config repository as it was at ``rev``. ``root`` may be a subdirectory of the git work tree."""

    def __init__(self, root: Path, rev: str) -> None:
        try:
            self._repo = git.Repo(root, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as e:
            raise UsageError(f"{root}: not a git repository (--rev needs one)") from e
        try:
            self._commit: git.Commit | None = self._repo.commit(rev)
            self._tree: git.Tree = self._commit.tree
        except (BadName, BadObject, ValueError, git.GitCommandError) as e:
            if not rev.startswith(_INDEX):
                raise UsageError(f"unknown revision {rev!r}") from e
            tree = git.Tree(self._repo, bytes.fromhex(rev.removeprefix(_INDEX)), _DIR, "")  # path set: `tree / p`
            self._commit, self._tree = None, tree
        work = Path(self._repo.working_tree_dir or root).resolve()
        rel = root.resolve().relative_to(work)
        self._prefix = PurePosixPath(rel.as_posix()) if rel.parts else None
        self._rev = rev if self._commit is not None else "the index"

    @classmethod
    def index(cls, root: Path) -> GitRevTree:
        """The files git's index holds: what the next commit will (``git write-tree``, which honours
        ``GIT_INDEX_FILE``: under ``git commit -a`` a hook gets the index being committed).

        ``write-tree`` stores the index's trees in the object store, as the commit itself
        does next; it writes nothing else.

        Raises:
            InputError: git cannot write the index as a tree (a merge conflict not resolved yet).
        """
        from compiler.sources.worktree import run_git

        out = run_git(root, "write-tree", check=False)
        if out is None:
            raise InputError("the index cannot be read as a tree (git write-tree failed: an unresolved conflict?)")
        return cls(root, _INDEX + out.strip())

    @property
    def rev(self) -> str | None:
        return self._commit.hexsha[:12] if self._commit is not None else None

    def _entry(self, path: str) -> git.Blob | git.Tree | None:
        check_relative(path)
        full = str(self._prefix / path) if self._prefix else path
        try:
            return self._tree / full
        except KeyError:
            return None

    def read(self, path: str) -> bytes:
        entry = self._entry(path)
        if entry is None or entry.type != "blob":
            raise InputError(f"{path}: no such file at {self._rev}")
        if entry.mode == _SYMLINK:
            raise InputError(f"{path}: is a symlink at {self._rev}; symlinks are refused")
        if entry.size > MAX_FILE_BYTES:
            raise TooLargeError(f"{path}: file is {entry.size} bytes; the limit is {MAX_FILE_BYTES}")
        data: bytes = entry.data_stream.read()
        return data

    def read_link(self, path: str) -> bytes | None:
        """The target name of ``path`` when it is a symlink at this revision (its blob), else None."""
        entry = self._entry(path)
        if entry is None or entry.type != "blob" or entry.mode != _SYMLINK:
            return None
        data: bytes = entry.data_stream.read()
        return data

    def exists(self, path: str) -> bool:
        entry = self._entry(path)
        if entry is not None and entry.type == "blob" and entry.mode == _SYMLINK:
            raise InputError(f"{path}: is a symlink at {self._rev}; symlinks are refused")
        return entry is not None and entry.type == "blob"

    def list_dir(self, path: str) -> list[str]:
        entry = self._entry(path)
        if entry is None or entry.type != "tree":
            return []
        return sorted(b.name for b in entry.blobs if b.mode != _SYMLINK)

    def unlisted(self, path: str) -> list[str]:
        entry = self._entry(path)
        if entry is None:
            return []
        if entry.type != "tree":
            return [""]
        return sorted([b.name for b in entry.blobs if b.mode == _SYMLINK] + [t.name for t in entry.trees])

    def list_tree(self, path: str) -> list[str]:
        entry = self._entry(path)
        if entry is None or entry.type != "tree":
            return []
        start = len(str(entry.path)) - len(path)
        found: list[str] = []
        for item in entry.traverse():
            if isinstance(item, git.Blob) and item.mode != _SYMLINK:
                found.append(str(item.path)[start:])
        return sorted(found)

    def committable_files(self) -> list[str] | None:
        top: git.Tree = self._tree
        if self._prefix is not None:
            try:
                top = self._tree / str(self._prefix)
            except KeyError:
                return []
        out = []
        for item in top.traverse():
            # a symlink too: git commits its target's name, which the secrets guard scans (``read_link``)
            if isinstance(item, git.Blob):
                full = PurePosixPath(str(item.path))
                out.append((full.relative_to(self._prefix) if self._prefix else full).as_posix())
        return sorted(out)

    def source_info(self) -> SourceInfo | None:
        c = self._commit
        if c is None:  # the index: no commit yet
            return None
        return SourceInfo(
            commit=c.hexsha,
            author=f"{c.author.name} <{c.author.email}>",
            committed_at=c.committed_datetime.isoformat(),
            message=str(c.message).strip(),
            dirty=False,
        )
