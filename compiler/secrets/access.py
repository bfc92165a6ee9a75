"""Who can open a target's data key: the readers llmcc.yaml names against those its key file is wrapped for.

Issue 9 §1: a reader rule changed in llmcc.yaml without ``llmcc keys update``
used to compile and publish bundles the new reader could not open and the
removed one still could. Recipients are public, so every check here works
without an identity. ``check_key_file`` refuses, for one target:

1. secret fields and no ``keys/targets/<target>.yaml``;
2. a key file that does not parse, or holds another target's key;
3. llmcc.yaml naming no key for the target (or no ``keys.compiler``);
4. a wrap (consumer or compiler) for another provider, key id or set of age
   recipients than llmcc.yaml names now (an added, removed or replaced one);
5. an age wrap whose header does not carry exactly one X25519 stanza per
   recipient it names, or carries a stanza of another kind
   (``kek.age.unnamed_readers``): a hand-edited file cannot hide an extra
   reader behind an unchanged ``key_id``.

What it cannot see without an identity: a wrap that opens to another data key
than the commitment names (compile checks that when it unwraps), and which
consumer a KMS or transit ciphertext was really made for.

``check_sops_recipients`` is the same check for the SOPS files a target reads:
each must be encrypted for every ``keys.compiler`` recipient, or compile fails.

A key file of a target that llmcc.yaml no longer defines is an orphan
(``orphan_key_files``): harmless, but stale; ``llmcc keys update`` removes it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from compiler.diagnostics import Diagnostic, Origin, Severity, diagnostic_from_message
from compiler.errors import InputError, SecretsError, UsageError
from compiler.load.yaml import Document
from compiler.project import KeySpec, Project, Target, parse_target
from compiler.secrets.kek import spec_key_id
from compiler.secrets.kek.age import AgeKeyProvider, shown_key, unnamed_readers
from compiler.secrets.kek.base import WrappedKey
from compiler.secrets.keyfile import KEY_DIR, key_file_path, read_target_key
from compiler.secrets.sources import SOPS_KEY
from compiler.sources.base import SourceTree

if TYPE_CHECKING:
    from compiler.compile.types import CompileResult

FIX = "run: llmcc keys update"
Role = Literal["readers", "compiler"]
ChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Readers:
    """Who can open a wrap: a provider and what it wraps for (age: each recipient; otherwise the key id).

    Ids are compared as written; an id holding private key material is shown as
    ``kek.age.PRIVATE_SHOWN`` in every message and diff (issue 9: never print a secret).
    """

    provider: str
    ids: frozenset[str]

    @classmethod
    def of(cls, provider: str, key_id: str) -> Readers:
        ids = key_id.split(",") if provider == "age" else [key_id]
        return cls(provider=provider, ids=frozenset(i for i in ids if i))

    @classmethod
    def of_spec(cls, spec: KeySpec) -> Readers:
        return cls.of(spec.provider, spec_key_id(spec.kek()))

    @classmethod
    def of_wrap(cls, wrapped: WrappedKey) -> Readers:
        return cls.of(wrapped.provider, wrapped.key_id)

    def describe(self) -> str:
        return f"{self.provider} ({', '.join(sorted(map(shown_key, self.ids))) or 'no key'})"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReaderChange:
    """One change of who can read: ``what`` is ``recipient age1...``, ``key <id>`` or ``provider A -> B``."""

    role: Role
    kind: ChangeKind
    what: str

    def describe(self) -> str:
        prefix = "compiler " if self.role == "compiler" else ""
        return f"{prefix}{self.what} {self.kind}"


def reader_changes(old: Readers | None, new: Readers | None, role: Role) -> list[ReaderChange]:
    """From ``old`` to ``new`` readers (None: the target or key is absent on that side).

    A provider change is one ``changed`` line naming both sides; otherwise one
    line per recipient or key id added or removed, sorted.
    """
    if old == new:
        return []
    if old is not None and new is not None and old.provider != new.provider:
        return [ReaderChange(role=role, kind="changed", what=f"provider {old.describe()} -> {new.describe()}")]
    side = new if new is not None else old
    assert side is not None  # both None are equal, handled above
    noun = "recipient" if side.provider == "age" else "key"
    before = old.ids if old is not None else frozenset()
    after = new.ids if new is not None else frozenset()
    return [
        *(ReaderChange(role=role, kind="removed", what=f"{noun} {shown_key(i)}") for i in sorted(before - after)),
        *(ReaderChange(role=role, kind="added", what=f"{noun} {shown_key(i)}") for i in sorted(after - before)),
    ]


def data_key_changes(old: bytes | None, new: bytes | None, target: Target) -> list[ReaderChange]:
    """A data key replaced between two revisions of ``target``'s key file: one line, or [].

    llmcc.yaml may name the same readers on both sides while the key file
    changes: a rotation, or a key file put back to an older one whose data key
    a removed reader still holds. Either way a review must see it. The key is
    named by its commitment; an absent side, or one that does not parse (which
    validate refuses), shows nothing here.
    """
    if old is None or new is None or old == new:
        return []
    path = key_file_path(target.name)
    try:
        before, after = read_target_key(old, path=path), read_target_key(new, path=path)
    except InputError:
        return []
    if before.commitment == after.commitment:
        return []
    older = ", older than the key it replaces" if after.created_at < before.created_at else ""
    what = f"data key (created {before.created_at}, now {after.created_at}{older})"
    return [ReaderChange(role="readers", kind="changed", what=what)]


def target_readers(project: Project, target: Target) -> dict[Role, Readers]:
    """The readers llmcc.yaml names for ``target``: its consumer key and the compiler, when set."""
    out: dict[Role, Readers] = {}
    consumer = project.key_spec(target)
    if consumer is not None:
        out["readers"] = Readers.of_spec(consumer)
    if project.manifest.keys.compiler is not None:
        out["compiler"] = Readers.of_spec(project.manifest.keys.compiler)
    return out


def check_key_file(project: Project, target: Target, data: bytes | None, *, needed: bool) -> Diagnostic | None:
    """The one finding for ``target``'s key file (None when it is in line with llmcc.yaml).

    Args:
        data: the bytes of ``keys/targets/<target>.yaml``, None when it does not exist.
        needed: the target has secret fields, so its bundles need a data key.
    """
    path = key_file_path(target.name)
    if data is None and not needed:
        return None
    spec_problem = _spec_problem(project, target)
    if spec_problem is not None:
        return spec_problem
    if data is None:
        return _finding(target, path, f"target {target} has secret fields but no data key; {FIX}")
    try:
        keyfile = read_target_key(data, path=path)
    except InputError as e:
        return unreadable_key_file(target, e)
    if keyfile.target != target.name:
        return _finding(
            target,
            path,
            f"holds the data key of target {keyfile.target!r}, not {target.name!r}; run: llmcc keys rotate {target}",
        )
    wanted = target_readers(project, target)
    problems: list[str] = []
    for role, readers in wanted.items():
        wrapped = keyfile.consumer if role == "readers" else keyfile.compiler
        changes = reader_changes(Readers.of_wrap(wrapped), readers, role)
        if changes:
            problems += [_since(c) for c in changes]
        elif wrapped.provider == "age":
            problems += _age_stanza_problems(wrapped, role)
    if not problems:
        return None
    where = project.document.origin(("keys", "targets", project.key_selector(target) or "*")).location()
    return _finding(
        target,
        path,
        f"data key readers differ from llmcc.yaml: {', '.join(problems)}; {FIX}",
        notes=(f"{where}: the readers of {target} are named here",),
    )


def orphan_names(project: Project, names: list[str]) -> list[str]:
    """The ``*.yaml`` names among ``names`` (files of ``keys/targets/``) that are the key file of no target."""
    known = {f"{t.name}.yaml" for t in project.targets()}
    return [n for n in names if n.endswith(".yaml") and not n.startswith(".") and n not in known]


def orphan_key_files(project: Project, names: list[str]) -> list[Diagnostic]:
    """Warnings for the orphans among ``names`` (the file names in ``keys/targets/``)."""
    out = []
    for name in orphan_names(project, names):
        stem = name.removesuffix(".yaml")
        try:
            parse_target(stem)
            why = f"llmcc.yaml defines no target {stem}"
        except UsageError:
            why = f"{stem!r} is not a target name"
        origin = Origin(path=f"{KEY_DIR}/{name}", line=1, column=1, layer="keys")
        message = f"orphan data key: {why}; run: llmcc keys update (it removes the file)"
        out.append(Diagnostic(message=message, severity=Severity.WARNING, origin=origin))
    return out


def _age_stanza_problems(wrapped: WrappedKey, role: Role) -> list[str]:
    prefix = "compiler " if role == "compiler" else ""
    return [f"{prefix}{p.removeprefix('the ')}" for p in unnamed_readers(wrapped)]


def _since(change: ReaderChange) -> str:
    """A change from the key file's point of view: what llmcc.yaml added or removed since it was wrapped."""
    prefix = "keys.compiler " if change.role == "compiler" else ""
    if change.kind == "changed":
        return f"{prefix}{change.what.replace(' -> ', ' in the key file, llmcc.yaml names ', 1)}"
    state = "not wrapped for" if change.kind == "added" else "still wrapped for"
    return f"{prefix}{state} {change.what}"


def _spec_problem(project: Project, target: Target) -> Diagnostic | None:
    if project.key_spec(target) is None:
        message = f'keys.targets names no reader for target {target} (add an entry for it or "*"; then {FIX})'
        return Diagnostic(message=message, origin=project.document.origin(("keys",)), target=target.name)
    if project.manifest.keys.compiler is None:
        message = f"keys.compiler is not set: the compiling identity needs a key (set it; then {FIX})"
        return Diagnostic(message=message, origin=project.document.origin(("keys",)), target=target.name)
    consumer = ("keys", "targets", project.key_selector(target) or "*")
    for where, spec in ((("keys", "compiler"), project.manifest.keys.compiler), (consumer, project.key_spec(target))):
        problem = spec_error(spec)  # type: ignore[arg-type]  # both are set: checked above
        if problem is not None:
            message = f"{'.'.join(where)}: {problem}"
            return Diagnostic(message=message, origin=project.document.origin(where), target=target.name)
    return None


def spec_error(spec: KeySpec) -> str | None:
    """Why no data key can be wrapped for ``spec`` (checked without contacting a provider), or None."""
    if spec.provider != "age":
        return None if spec.key_id else f"a {spec.provider} key needs key_id"
    try:
        AgeKeyProvider(spec.recipients)
    except SecretsError as e:
        return str(e)
    return None


def _finding(target: Target, path: str, message: str, *, notes: tuple[str, ...] = ()) -> Diagnostic:
    origin = Origin(path=path, line=1, column=1, layer="keys")
    return Diagnostic(message=message, origin=origin, target=target.name, notes=notes)


def unreadable_key_file(target: Target, error: InputError) -> Diagnostic:
    """The finding for a key file that cannot be read or parsed, at the line the error names."""
    found = diagnostic_from_message(str(error), target=target.name)
    origin = found.origin or Origin(path=key_file_path(target.name), line=1, column=1, layer="keys")
    message = f"cannot read the data key: {found.message}; run: llmcc keys rotate {target}"
    return replace(found, message=message, origin=replace(origin, layer="keys"))


@dataclass(slots=True)
class KeyFileCheck:
    """The build's ``check_keys`` hook: a compiled target's key file, and the SOPS files it reads.

    It reads every target's key file once, when made (before the build forks),
    to find a data key that two targets share (``shared_data_key``).
    """

    tree: SourceTree
    project: Project
    commitments: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.commitments = key_commitments(self.tree, self.project)

    def __call__(self, result: CompileResult) -> list[Diagnostic]:
        target = result.target
        path = key_file_path(target.name)
        found: list[Diagnostic] = []
        try:
            data = self.tree.read(path) if self.tree.exists(path) else None
        except InputError as e:
            found.append(unreadable_key_file(target, e))
        else:
            finding = check_key_file(self.project, target, data, needed=bool(result.secrets))
            finding = finding or shared_data_key(target, self.commitments)
            found += [] if finding is None else [finding]
        compiler = self.project.manifest.keys.compiler
        if compiler is not None and compiler.provider == "age":
            for layer in result.stack.layers:
                found += check_sops_recipients(layer.document, set(compiler.recipients), target)
        return found

    def orphans(self) -> list[Diagnostic]:
        return orphan_key_files(self.project, self.tree.list_dir(KEY_DIR))


def key_commitments(tree: SourceTree, project: Project) -> dict[str, str]:
    """``{target: commitment}`` of every target's key file that exists and parses (the others are named apart).

    ``keys/targets/`` is listed once and only the targets with a file there are
    looked up (a stat per target cost ~15 ms on 203 targets, issue 14 §2); names
    are compared case- and Unicode-folded, as a case-insensitive file system opens them.
    """
    try:
        listed: set[str] | None = {_fold(name) for name in tree.list_dir(KEY_DIR)}
    except InputError:
        listed = None  # not listable (a link out of the repository): each target's file is asked for
    out: dict[str, str] = {}
    for target in project.targets():
        path = key_file_path(target.name)
        if listed is not None and _fold(path.rpartition("/")[2]) not in listed:
            continue
        try:
            if tree.exists(path):
                out[target.name] = read_target_key(tree.read(path), path=path).commitment
        except InputError:
            continue  # check_key_file names it for its own target
    return out


def _fold(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def sharing_targets(target: str, commitments: dict[str, str]) -> list[str]:
    """The other targets whose key file holds the same data key as ``target``'s (same commitment)."""
    mine = commitments.get(target)
    return [t for t, c in commitments.items() if c == mine and t != target] if mine else []


def shared_data_key(target: Target, commitments: dict[str, str]) -> Diagnostic | None:
    """Refuse a data key that another target's key file holds too (a copied key file).

    Each target has its own data key, so a reader of one target cannot open
    another's bundles; a copied file breaks that without changing any reader
    of llmcc.yaml, and a reader later added to one target would be handed both.
    """
    others = sharing_targets(target.name, commitments)
    if not others:
        return None
    message = (
        f"shares its data key with target {', '.join(others)} (a copied key file): a reader of either target "
        f"opens the other's bundles; run: llmcc keys update"
    )
    return _finding(target, key_file_path(target.name), message)


def check_sops_recipients(doc: Document, compiler: set[str], target: Target) -> list[Diagnostic]:
    """A SOPS file encrypted for age recipients must include every ``keys.compiler`` recipient.

    Otherwise compile cannot decrypt it (a changed ``keys.compiler``, or a file
    re-encrypted without it); the metadata is plaintext, so no identity is needed.
    A file with no age recipients (KMS, PGP) is not judged here.
    """
    meta = doc.value.get(SOPS_KEY) if isinstance(doc.value, dict) else None
    stanzas = meta.get("age") if isinstance(meta, dict) else None
    if not isinstance(stanzas, list) or not stanzas:
        return []
    has = {s.get("recipient") for s in stanzas if isinstance(s, dict)}
    missing = sorted(shown_key(r) for r in compiler - has)
    if not missing:
        return []
    message = (
        f"SOPS file is not encrypted for keys.compiler recipient {', '.join(missing)}, so compile cannot open it; "
        f"add it to .sops.yaml, then run: sops updatekeys {doc.path}"
    )
    return [Diagnostic(message=message, origin=doc.origin((SOPS_KEY, "age")), target=target.name)]
