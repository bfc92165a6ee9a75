"""Where a config repository's bytes come from (STYLE R2: the IO edge)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from compiler.errors import InputError
from compiler.jsontypes import JSONObject


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceInfo:
    """The git commit a tree was read from (``metadata.source`` of a bundle)."""

    commit: str
    author: str
    committed_at: str
    message: str
    dirty: bool

    def to_json(self) -> JSONObject:
        return {
            "commit": self.commit,
            "author": self.author,
            "committed_at": self.committed_at,
            "message": self.message,
            "dirty": self.dirty,
        }


class SourceTree(Protocol):
    """A read-only view of the config repository: the working tree or a git revision."""

    @property
    def rev(self) -> str | None: ...

    def read(self, path: str) -> bytes:
        """The bytes of a repository-relative file. Raises InputError when missing or unsafe."""
        ...

    def exists(self, path: str) -> bool: ...

    def list_dir(self, path: str) -> list[str]:
        """Names of the files directly in a repository-relative directory (sorted; [] when missing)."""
        ...

    def list_tree(self, path: str) -> list[str]:
        """Repository-relative paths of every file below a directory, at any depth (sorted; [] when missing)."""
        ...

    def unlisted(self, path: str) -> list[str]:
        """Names directly in ``path`` that ``list_dir`` leaves out because they are not regular files:
        a dangling symlink, a directory, a symlink in a revision (sorted). With ``path`` not a
        directory, ``[""]`` when something else is there, ``[]`` when nothing is."""
        ...

    def source_info(self) -> SourceInfo | None:
        """The commit this tree corresponds to, or None outside git."""
        ...

    def committable_files(self) -> list[str] | None:
        """Repository-relative paths of every file git can take (sorted), or None outside git.

        The working tree: tracked, staged and untracked files that git does not
        ignore. A revision: every file of that commit. The secrets guard scans these.
        """
        ...


def check_relative(path: str) -> str:
    """Refuse paths that could escape the repository (``..``, absolute, backslashes, NUL)."""
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or "\0" in path or any(p in ("", ".", "..") for p in parts):
        raise InputError(f"{path!r}: path escapes the repository or is not a plain relative path")
    return path
