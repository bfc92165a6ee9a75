"""Whether git can take a file we are about to write (issue 9 §4: plaintext lands where git can take it).

Decrypted bundles and private keys must not be written where ``git add -A``
or ``git commit -a`` would pick them up: inside a git work tree, at a path
that git does not ignore. ``git check-ignore`` answers with the repository's
own rules (``.gitignore`` files, ``.git/info/exclude``, ``core.excludesFile``),
so nothing here re-implements gitignore matching.
"""

from __future__ import annotations

import sys
from pathlib import Path

from compiler.errors import InputError, UsageError
from compiler.sources.worktree import run_git


def git_can_take(path: Path) -> Path | None:
    """The root of the git work tree that could commit ``path``, or None when none could.

    None when ``path`` is outside every work tree (or inside ``.git``), when git
    ignores it, or when git is not installed (a deployment host: nothing there
    can commit it). A tracked file is never ignored. ``path`` need not exist yet.
    """
    full = path.expanduser().absolute()
    anc = full.parent
    while not anc.is_dir() and anc != anc.parent:
        anc = anc.parent  # the nearest directory that exists: git runs there
    target = anc.resolve() / full.relative_to(anc)  # symlinked directories resolved, the file name kept
    try:
        top = run_git(anc, "rev-parse", "--show-toplevel", check=False)
    except InputError:
        return None  # git is not installed: nothing on this machine can commit it
    if not top or not top.strip():
        return None  # outside any work tree, or inside a .git directory
    root = Path(top.strip()).resolve()
    try:
        rel = target.relative_to(root).as_posix()
    except ValueError:
        return root  # cannot name it inside the work tree: fail closed
    # check-ignore exits 0 when ignored, 1 when not; a tracked file is reported as not ignored
    if run_git(root, "check-ignore", "-q", "--", rel, check=False) is not None:
        return None
    return root


def refuse_committable(path: Path, *, what: str, force: bool) -> None:
    """Refuse to write ``what`` to a path git can take, unless ``force`` (then warn on stderr).

    Raises:
        UsageError: ``path`` is in a git work tree and not ignored, and not ``force``.
    """
    root = git_can_take(path)
    if root is None:
        return
    if force:
        print(f"llmcc: warning: writing {what} to {path}, where git can commit it (work tree {root})", file=sys.stderr)
        return
    raise UsageError(
        f"{path}: refusing to write {what} inside the git work tree {root} at a path git does not ignore; "
        "write it outside the repository, add it to .gitignore, or pass --force"
    )
