"""How one effective value changed across git commits, newest first (README "Commands", ``history``).

1. The files that can shape the value: ``llmcc.yaml``, ``templates/``,
   ``schemas/`` (the module's schema and every file a ``$ref`` may reach; a
   schema decides what is secret), and the target's layer files (with their secrets files)
   under every version of the manifest, since the ``extends`` chain may change.
2. ``git log`` lists the commits that touched them, newest first.
3. At each commit only the asked module is merged (``snapshot_module``), once
   per (commit, target, module) thanks to ``cache``; a value that differs from
   the next older commit's is a change, so an inherited change (a staging commit
   that moves prod's value) counts and a commit that touched the files but not
   this value does not.
4. The walk stops at the commit that introduced the value. Commits where the
   repository does not compile are skipped and reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from compiler.audit.revisions import CommitInfo, log_commits, resolve_commit
from compiler.compile.pipeline import CompileCaches
from compiler.compile.repository import SCHEMAS, TEMPLATES, Repository
from compiler.diagnostics import plural
from compiler.diff.masking import Masked, SecretDigest
from compiler.diff.snapshot import ABSENT, Absent, lookup, snapshot_module
from compiler.diff.structural import same
from compiler.errors import LlmccError, UnknownTargetError, UsageError
from compiler.jsonpath import Query, format_path
from compiler.load.layers import resolve_layers
from compiler.project import MANIFEST, Target
from compiler.render.jinja import RenderCache

Kind = Literal["introduced", "changed", "removed"]
RepoOpener = Callable[[str], Repository]  # full commit id -> the repository at that commit
HistoryCache = dict[tuple[str, str, str], "Masked | Absent"]  # (commit, target, module) -> masked module


@dataclass(frozen=True, slots=True, kw_only=True)
class ValueChange:
    """A commit that changed the effective value. Secret changes carry no values."""

    commit: CommitInfo
    kind: Kind
    old: Masked = None
    new: Masked = None
    secret: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class History:
    target: str
    module: str
    path: Query  # as found at the newest commit that has the value
    changes: list[ValueChange]
    examined: int  # commits compiled
    skipped: list[tuple[CommitInfo, str]] = field(default_factory=list)  # commits that do not compile

    @property
    def location(self) -> str:
        return f"{self.target} {self.module} {format_path(self.path)}"


def value_history(
    root: Path,
    target: Target,
    module: str,
    query: Query,
    *,
    open_repo: RepoOpener,
    key: bytes,
    start: str = "HEAD",
    cache: HistoryCache | None = None,
    progress: Callable[[str], None] | None = None,
) -> History:
    """The commits reachable from ``start`` that changed ``module`` at ``query`` for ``target``.

    Raises:
        UsageError: ``start`` is not a commit, the target or module is unknown at ``start``,
            or no commit that compiles has a value at ``query`` (issue 10: not "0 changes").
    """
    head = resolve_commit(root, start)
    if head is None:
        raise UsageError(f"unknown revision {start!r}")
    repo = open_repo(head)
    if target not in repo.project.targets():
        from compiler.suggestions import unknown_target  # difflib: only on this error

        known = [str(t) for t in repo.project.targets()]
        raise UnknownTargetError(unknown_target(target.name, known, holder=f"{MANIFEST} defines"))
    if module not in repo.modules:
        raise UsageError(f"unknown module {module!r}; modules: {', '.join(repo.modules)}")
    cache = {} if cache is None else cache
    render: RenderCache = {}  # rendered scalars: keyed by expression and variable values, so shared by every commit
    commits = log_commits(root, head, input_paths(root, head, target, module, open_repo))
    states: list[tuple[CommitInfo, Masked | Absent]] = []
    skipped: list[tuple[CommitInfo, str]] = []
    changes: list[ValueChange] = []
    found: list[Query] = []  # the concrete path at each commit that has the value, newest first
    for n, commit in enumerate(commits, 1):
        if progress:
            progress(f"[{n}/{len(commits)}] {commit.short}")
        try:
            state = _module_at(commit.sha, target, module, open_repo, key, cache, render)
        except LlmccError as e:
            skipped.append((commit, str(e)))
            continue
        value, where = lookup(state, query)
        states.append((commit, value))
        if not isinstance(value, Absent):
            found.append(where)
        if len(states) >= 2:
            (newer, new), (_, old) = states[-2], states[-1]
            if not same(old, new):
                changes.append(_change(newer, old, new))
                if isinstance(old, Absent):
                    break  # `newer` introduced the value
    else:
        if states and not isinstance(states[-1][1], Absent):
            changes.append(_change(states[-1][0], ABSENT, states[-1][1]))  # the root commit introduced it
    if not found:
        broken = f"; {len(skipped)} did not compile" if skipped else ""
        raise UsageError(
            f"{target.name}: {module}{format_path(query)}: no value "
            f"in the {plural(len(states) + len(skipped), 'commit')} that touched its files{broken}"
        )
    return History(
        target=target.name, module=module, path=found[0], changes=changes, examined=len(states), skipped=skipped
    )


def input_paths(root: Path, head: str, target: Target, module: str, open_repo: RepoOpener) -> list[str]:
    """Every file that can shape ``module`` for ``target`` at any commit up to ``head``."""
    paths = {MANIFEST, f"{TEMPLATES}/", f"{SCHEMAS}/"}
    for commit in log_commits(root, head, [MANIFEST]):
        try:
            project = open_repo(commit.sha).project
        except LlmccError:
            continue  # a manifest that does not load: that commit is skipped later anyway
        if target in project.targets():
            paths.update(ref.path for ref in resolve_layers(project, target))
    return sorted(paths)


def _module_at(
    sha: str, target: Target, module: str, open_repo: RepoOpener, key: bytes, cache: HistoryCache, render: RenderCache
) -> Masked | Absent:
    k = (sha, target.name, module)
    if k not in cache:
        cache[k] = snapshot_module(open_repo(sha), target, module, key, CompileCaches(render=render))
    return cache[k]


def _change(commit: CommitInfo, old: Masked | Absent, new: Masked | Absent) -> ValueChange:
    kind: Kind = "introduced" if isinstance(old, Absent) else "removed" if isinstance(new, Absent) else "changed"
    if isinstance(old, SecretDigest) or isinstance(new, SecretDigest):
        return ValueChange(commit=commit, kind=kind, secret=True)
    return ValueChange(
        commit=commit,
        kind=kind,
        old=None if isinstance(old, Absent) else old,
        new=None if isinstance(new, Absent) else new,
    )
