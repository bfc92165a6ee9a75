"""Compile every target at BASE and HEAD in memory and list what changed, secrets masked.

A target whose inputs are byte-identical on both sides (the ``config`` scope of
``compiler.incremental.inputs``: manifest, schemas, templates and its own layer
files, compared by git blob id) cannot change and is not compiled; so a change
to one tenant's file compiles that tenant only, and a change to ``base.yaml``
compiles everything once per side. Module values are compared structurally
(``compiler.diff.structural``): equal subtrees cost one C-level comparison, so
the diff costs what changed, not the document size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from compiler.compile.pipeline import CompileCaches, compile_target
from compiler.compile.repository import Repository
from compiler.compile.types import CompileResult
from compiler.diff.masking import Masked, SecretDigest, mask_secrets, secret_fields
from compiler.diff.structural import ChangePath, Kind, Memo, diff_values, format_change_path
from compiler.errors import InputError, UnknownTargetError
from compiler.incremental.inputs import CONFIG_ROOTS, InputDigests
from compiler.jsonpath import JsonPath
from compiler.project import Target, parse_target
from compiler.secrets.access import ReaderChange, Role, data_key_changes, reader_changes, target_readers
from compiler.secrets.keyfile import key_file_path

# The paths under which a target's effective config is read (compiler.incremental.inputs).
INPUT_ROOTS = CONFIG_ROOTS

Status = Literal["changed", "unchanged", "added", "removed"]
FileIds = Mapping[str, str | None]  # repository path -> git blob id; None: unknown (always compile)


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One value that differs. A secret change carries no values (``old``/``new`` are None).

    A ``moved`` list item has its old and new index in ``old`` and ``new``, and
    the item itself in ``item`` when the list is not keyed (the key names it).
    """

    target: str
    module: str
    path: ChangePath
    kind: Kind
    old: Masked = None
    new: Masked = None
    item: Masked = None
    secret: bool = False

    @property
    def location(self) -> str:
        return format_change_path(self.path)


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetDiff:
    target: str
    status: Status
    changes: list[Change]
    compiled: bool  # False when its inputs were identical and compiling was skipped
    readers: list[ReaderChange] = field(default_factory=list)  # who can open its secrets (issue 9 §1)

    @property
    def modules(self) -> list[str]:
        return sorted({c.module for c in self.changes})


@dataclass(frozen=True, slots=True, kw_only=True)
class DiffResult:
    base: str  # labels: "HEAD~1 (a1b2c3d)", "working tree"
    head: str
    targets: list[TargetDiff]
    secrets_by_ciphertext: bool  # no identity: SOPS ciphertexts were compared, not values

    @property
    def changed(self) -> list[TargetDiff]:
        return [t for t in self.targets if t.changes or t.readers or t.status in ("added", "removed")]

    @property
    def count(self) -> int:
        return sum(len(t.changes) for t in self.targets)

    @property
    def access(self) -> list[TargetDiff]:
        """Targets whose readers change: the first thing a review should see."""
        return [t for t in self.targets if t.readers]

    @property
    def reader_count(self) -> int:
        return sum(len(t.readers) for t in self.targets)


@dataclass(frozen=True, slots=True, kw_only=True)
class Side:
    """One side of the diff: the repository at a revision, and its files' blob ids when known."""

    repo: Repository
    label: str
    files: FileIds | None = None
    cache: dict[str, CompileResult] = field(default_factory=dict)  # by target name
    caches: CompileCaches = field(default_factory=CompileCaches)  # this revision's; ``render`` may be shared


def compute_diff(
    base: Side,
    head: Side,
    *,
    key: bytes,
    only: Iterable[str] | None = None,
    opaque: bool = False,
    progress: Callable[[str], None] | None = None,
) -> DiffResult:
    """Compare the effective configuration of every target (or ``only`` these) at BASE and HEAD.

    Args:
        key: the HMAC key secrets are digested with (random per run; never stored).
        opaque: no identity was given, so secret values are SOPS ciphertext stand-ins.

    Raises:
        UsageError: a target in ``only`` exists on neither side.
        LlmccError: a side does not compile (bad YAML, missing file, ...).
    """
    targets = select_targets(base.repo, head.repo, only)
    before, after = _digests(base), _digests(head)
    out: list[TargetDiff] = []
    memo: Memo = {}
    secrets_seen = False
    for n, (target, in_base, in_head) in enumerate(targets, 1):
        if progress:
            progress(f"[{n}/{len(targets)}] {target}")
        readers = target_reader_changes(base.repo, head.repo, target, in_base=in_base, in_head=in_head)
        if in_base and in_head and _same_inputs(before, after, target):
            out.append(TargetDiff(target=target.name, status="unchanged", changes=[], compiled=False, readers=readers))
            continue
        old = _compile(base, target) if in_base else None
        if old is not None and _same_inputs(before, after, Target(target.environment)):
            # Same environment files on both sides: HEAD starts from BASE's merged environment.
            _share_environment(base, head, target.environment)
        new = _compile(head, target) if in_head else None
        paths = _secret_paths(old, new)
        secrets_seen = secrets_seen or any(paths.values())
        old_mods = _masked(old, paths, key)
        new_mods = _masked(new, paths, key)
        changes = list(compare_modules(target.name, old_mods, new_mods, memo))
        status: Status = "added" if not in_base else "removed" if not in_head else "changed"
        if status == "changed" and not changes:
            status = "unchanged"
        out.append(TargetDiff(target=target.name, status=status, changes=changes, compiled=True, readers=readers))
    return DiffResult(base=base.label, head=head.label, targets=out, secrets_by_ciphertext=opaque and secrets_seen)


def target_reader_changes(
    base: Repository, head: Repository, target: Target, *, in_base: bool, in_head: bool
) -> list[ReaderChange]:
    """Who can open ``target``'s secrets, BASE to HEAD, as llmcc.yaml names them (``validate`` holds the
    key files to it), and a data key its key file replaced (``access.data_key_changes``). A target on one
    side only shows its consumer readers; the compiler, who reads every target, shows where it changes."""
    old = target_readers(base.project, target) if in_base else {}
    new = target_readers(head.project, target) if in_head else {}
    roles: tuple[Role, ...] = ("readers", "compiler") if in_base and in_head else ("readers",)
    changes = [c for role in roles for c in reader_changes(old.get(role), new.get(role), role)]
    return changes + data_key_changes(_key_file(base, target), _key_file(head, target), target)


def _key_file(repo: Repository, target: Target) -> bytes | None:
    """The bytes of ``target``'s key file at that revision; None when absent or unreadable (validate's to name)."""
    path = key_file_path(target.name)
    try:
        return repo.tree.read(path) if repo.tree.exists(path) else None
    except InputError:
        return None


def _share_environment(base: Side, head: Side, env: str) -> None:
    if env in base.caches.env_bases and env not in head.caches.env_bases:
        head.caches.env_bases[env] = base.caches.env_bases[env]


def select_targets(base: Repository, head: Repository, only: Iterable[str] | None) -> list[tuple[Target, bool, bool]]:
    """(target, in BASE, in HEAD): HEAD's targets in manifest order, then those only BASE has."""
    in_base = base.project.targets()
    in_head = head.project.targets()
    every = [*in_head, *(t for t in in_base if t not in in_head)]
    names = list(only or [])
    if names:
        chosen = []
        for text in names:
            target = parse_target(text)
            if target not in every:
                from compiler.suggestions import unknown_target  # difflib: only on this error

                raise UnknownTargetError(unknown_target(text, [str(t) for t in every], holder="targets on either side"))
            chosen.append(target)
        every = [t for t in every if t in chosen]
    return [(t, t in in_base, t in in_head) for t in every]


def compare_modules(
    target: str, old: Mapping[str, Masked], new: Mapping[str, Masked], memo: Memo | None = None
) -> Iterable[Change]:
    """The changes between two targets' modules; a module on one side only is added or removed whole."""
    for module in sorted({*old, *new}):
        if module not in old:
            yield _change(target, module, "added", (), None, new[module])
        elif module not in new:
            yield _change(target, module, "removed", (), old[module], None)
        else:
            for d in diff_values(old[module], new[module], memo=memo):
                yield _change(target, module, d.kind, d.path, d.old, d.new, d.item)


def _change(
    target: str, module: str, kind: Kind, path: ChangePath, old: Masked, new: Masked, item: Masked = None
) -> Change:
    if kind != "moved" and (isinstance(old, SecretDigest) or isinstance(new, SecretDigest)):
        return Change(target=target, module=module, path=path, kind=kind, secret=True)
    return Change(target=target, module=module, path=path, kind=kind, old=old, new=new, item=item)


def _compile(side: Side, target: Target) -> CompileResult:
    result = side.cache.get(target.name)
    if result is None:
        result = side.cache[target.name] = compile_target(side.repo, target, validate=False, caches=side.caches)
    return result


def _secret_paths(*results: CompileResult | None) -> dict[str, set[JsonPath]]:
    """Per module, every path that is secret on either side (its schema says so, or a SOPS file set it)."""
    paths: dict[str, set[JsonPath]] = {}
    for result in results:
        if result is None:
            continue
        for module, found in secret_fields(result).items():
            paths.setdefault(module, set()).update(found)
    return paths


def _masked(result: CompileResult | None, paths: Mapping[str, set[JsonPath]], key: bytes) -> dict[str, Masked]:
    if result is None:
        return {}
    return {m: mask_secrets(v, paths.get(m, ()), key) for m, v in result.modules.items()}


def _digests(side: Side) -> InputDigests | None:
    return None if side.files is None else InputDigests(project=side.repo.project, files=side.files, scope="config")


def _same_inputs(base: InputDigests | None, head: InputDigests | None, target: Target) -> bool:
    """Every input of ``target`` has the same blob id (or is absent) on both sides, and none is unknown."""
    if base is None or head is None or base.shared is None or base.shared != head.shared:
        return False  # the same shared inputs first: the same manifest, so the same layers to compare
    old = base.target(target)
    return old is not None and old == head.target(target)
