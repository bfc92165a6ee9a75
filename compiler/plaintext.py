"""Plaintext secrets in individual files, for ``llmcc hook secrets-guard`` and ``validate``: no identity needed.

The per-target check runs in ``validate`` (``compiler.validate.secrets_guard``);
this one looks at files: the staged ones (the hook), or every file git can
take (the hook without FILE, and ``validate``):

1. A ``*.sops.yaml`` file (not the sops configuration ``.sops.yaml``) must be
   SOPS-encrypted, and every field the schema marks ``x-secret`` in it encrypted.
2. A plain layer file (``environments/**.yaml``) or template must not set an
   ``x-secret`` field (templates are checked through the modules whose
   ``extends`` chain holds them).
3. No file may hold private key material (age, PEM, OpenSSH, ...) or a
   well-known credential (``compiler.validate.credentials``), unless
   ``secrets_guard.allow`` in ``llmcc.yaml`` names the file with its SHA-256.
4. No file may be a decrypted llmcc bundle: JSON whose modules (this
   repository's) hold a plaintext value in an ``x-secret`` field, nor the
   plaintext input of ``llmcc secrets encrypt`` (``*.secrets.yaml``).

Rules 1-2 run in the hook only (``validate`` checks them per target); 3-4 in
both (``scan_committable``). Findings name file:line:column, never a value.

What git commits is the index, not the working tree: run as a bare git hook
(no pre-commit framework stashing unstaged changes), a file staged with a
secret and then cleaned in the working tree would pass a scan of the working
tree. So in a git work tree each file whose index entry differs from the bytes
read (or that the working tree lacks) has its staged content scanned as well,
by the same rules (``_scan_staged``); its findings say "in the staged content".
"Staged" is against HEAD's parent, so ``git commit --amend`` is judged as what it
commits (``WorkTree.staged_changes``); each commit of a range: ``compiler.commitscan``.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from compiler.compile.repository import SCHEMAS, TEMPLATES, Repository
from compiler.diagnostics import Diagnostic, Origin, printable_path
from compiler.errors import LlmccError, TooLargeError
from compiler.load.layers import ENVIRONMENTS
from compiler.load.yaml import MAX_FILE_BYTES, Document, Tagged, Value, load_document
from compiler.project import AllowedFile
from compiler.secrets.sops import is_sops_document
from compiler.secrets.sources import unencrypted_leaves
from compiler.sources.worktree import WorkTree
from compiler.validate.credentials import PRIVATE_KEY, find_credentials, redact
from compiler.validate.secrets_guard import LEFT_PLAIN, MESSAGE, NOT_SOPS
from compiler.validate.secretwalk import secret_paths

if TYPE_CHECKING:  # the findings cache loads with a cache: `validate --no-cache` does without (issue 14 §1)
    from compiler.incremental.guard import GuardFindings
    from compiler.incremental.store import ResultCache

SOPS_CONFIG = ".sops.yaml"
PRIVATE_KEY_MESSAGE = (
    "private key material in the repository: keep private keys outside it "
    "(a CI secret, a KMS, or ~/.config/llmcc/keys/) and commit only the public half"
)
CREDENTIAL_MESSAGE = (
    "credential in plaintext: put it in a *.secrets.sops.yaml file (llmcc secrets encrypt FILE) "
    "or a CI secret, and revoke it if it was ever pushed"
)
BUNDLE_MESSAGE = (
    "decrypted llmcc bundle: secret fields hold plaintext; keep `llmcc pull --decrypt` output outside the "
    "repository, and rotate these secrets if the file was ever pushed"
)
# `llmcc secrets encrypt x.secrets.yaml` turns this plaintext into x.secrets.sops.yaml and removes it
PLAINTEXT_SUFFIXES = (".secrets.yaml", ".secrets.yml")
PLAINTEXT_FILE_MESSAGE = (
    "plaintext secrets file: encrypt it with `llmcc secrets encrypt FILE` "
    "(writes the *.secrets.sops.yaml file and removes this one)"
)
_BINARY_PROBE = 8000  # git's own heuristic: a NUL byte in the first 8000 bytes means binary
_GZIP = b"\x1f\x8b"  # RFC 1952 member header
# checked in this order: a UTF-32-LE BOM starts with the UTF-16-LE one
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(slots=True, kw_only=True)
class GuardScan:
    """Findings, plus the files ``secrets_guard.allow`` let through (``path: reason``), never silently.

    ``inputs``: the files rules 1-2 could not parse (invalid YAML, a broken
    schema), message -> exit code. Rules 3-4 read such a file as text all the
    same, so a credential in it is a finding next to the parse error.
    """

    diagnostics: list[Diagnostic] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)
    inputs: dict[str, int] = field(default_factory=dict)
    scanned: int = 0  # files whose text was scanned (not taken from the findings cache)
    read: int = 0  # files whose bytes were read (not vouched for by their stat and the findings cache)
    staged: int = 0  # staged contents scanned because they differ from the working tree (never cached)


def scan_files(repo: Repository, files: Iterable[str]) -> GuardScan:
    """Every rule (1-4) on ``files`` (repository-relative), and on their staged content where it differs
    (see the module doc); files that exist in neither are skipped."""
    scan = GuardScan()
    templates: list[str] = []
    read: dict[str, bytes | None] = {}
    for path in sorted({f.removeprefix("./") for f in files}):
        data = read[path] = _read_one(repo, path, scan)
        if data is None:
            continue
        _leaks(repo, path, data, scan)  # the text, whatever its syntax
        if _per_file(repo, path, data, scan):
            templates.append(path)
    _judge_staged(repo, _scan_staged(repo, read, scan), scan)
    if templates:
        try:
            scan.diagnostics += _templates(repo, set(templates))
        except LlmccError as e:
            scan.inputs[str(e)] = e.exit_code
    return scan


def _per_file(repo: Repository, path: str, data: bytes, scan: GuardScan, *, staged: bool = False) -> bool:
    """Rules 1-2 on one layer or SOPS file into ``scan``; True for a template (rule 2 checks those together)."""
    name = PurePosixPath(path).name
    try:
        if name.endswith(".sops.yaml") and name != SOPS_CONFIG:
            _report(repo, path, data, _marked(_sops_file(repo, data, path), staged=staged), scan)
        elif path.startswith(f"{ENVIRONMENTS}/") and name.endswith((".yaml", ".yml")):
            found = _layer_file(repo, load_document(data, path=path, layer=_layer_name(path)))
            scan.diagnostics += _marked(found, staged=staged)
        elif path.startswith(f"{TEMPLATES}/") and name.endswith((".yaml", ".yml")):
            return True
    except LlmccError as e:  # invalid YAML, a broken schema: reported after the findings of every file
        scan.inputs[f"{e} (the staged content)" if staged else str(e)] = e.exit_code
    return False


STAGED = "in the staged content, which git commits; the working tree differs"
STAGED_TEMPLATE = (
    "the staged content differs from the working tree, and the index cannot be read as a tree to check it: "
    "stage the file (git add) or run the hook under pre-commit, which stashes unstaged changes"
)
# what rules 1-2 read besides the file itself: a staged change here changes every file's verdict
_RULE_INPUTS = (f"{SCHEMAS}/", f"{TEMPLATES}/", "llmcc.yaml")


def _judge_staged(repo: Repository, staged: list[tuple[str, bytes]], scan: GuardScan) -> None:
    """Rules 1-2 on the staged contents ``staged`` (path, bytes) that differ from the working tree,
    judged as the commit will hold them: against the index's schemas, templates and ``llmcc.yaml``.

    A template is checked through the modules that extend it, so its staged content needs
    the whole index as a tree (``GitRevTree.index``); so does a layer whose schema is staged
    otherwise than the working tree has it. When a file rules 1-2 read besides the one they
    judge (a schema, a template, ``llmcc.yaml``) is among ``staged``, every layer, SOPS file
    and template of the index is judged again (a field a staged schema newly marks secret).
    Before, a template staged in part (``git add -p``) was refused whatever it held. When the
    index cannot be read as a tree (an unresolved conflict), each staged layer is judged
    against the working tree's schemas and a staged template is refused (exit 2, fail closed).
    """
    judged = {path: data for path, data in staged if path.startswith(_RULE_INPUTS) or _ruled(path)}
    if not judged:  # only files rules 3-4 judge (done): no need to read the index as a tree
        return
    from compiler.sources.gitrev import GitRevTree

    assert isinstance(repo.tree, WorkTree), "only a work tree has staged content (_scan_staged)"
    try:
        tree = GitRevTree.index(repo.tree.root)
    except LlmccError:
        for path, data in judged.items():
            if _per_file(repo, path, data, scan, staged=True):
                scan.inputs[f"{path}: {STAGED_TEMPLATE}"] = 2
        return
    try:
        index = Repository(tree, open_secrets=None)
        if any(path.startswith(_RULE_INPUTS) for path in judged):
            for path in index.tree.committable_files() or []:
                if path not in judged and _ruled(path) and tree.read_link(path) is None:  # a link: rules 3-4
                    judged[path] = index.tree.read(path)
        templates = {path for path, data in sorted(judged.items()) if _per_file(index, path, data, scan, staged=True)}
        if templates:
            scan.diagnostics += _marked(_templates(index, templates), staged=True)
    except LlmccError as e:  # a staged llmcc.yaml or schema that does not load: what the commit would hold
        scan.inputs[f"{e} (the staged content)"] = e.exit_code


def _ruled(path: str) -> bool:
    """Whether rules 1-2 judge ``path``: a layer or template (YAML), or a SOPS file anywhere."""
    name = PurePosixPath(path).name
    if name.endswith(".sops.yaml") and name != SOPS_CONFIG:
        return True
    return path.startswith((f"{ENVIRONMENTS}/", f"{TEMPLATES}/")) and name.endswith((".yaml", ".yml"))


def _marked(found: list[Diagnostic], *, staged: bool) -> list[Diagnostic]:
    return [replace(d, message=f"{d.message} ({STAGED})") for d in found] if staged else found


def _scan_staged(repo: Repository, read: dict[str, bytes | None], scan: GuardScan) -> list[tuple[str, bytes]]:
    """Rules 3-4 on the staged content of each file in ``read`` (path -> the bytes read from the
    working tree, None when it has none) whose index entry differs; that content, for the caller's other rules.

    Only a change counts, against HEAD's parent (``WorkTree.staged_changes``): an index entry
    that is HEAD's parent's is in history already, and ``--amend`` re-commits HEAD's own change
    (a file whose fix is not staged yet is judged as the index holds it: the amend takes that).
    Blobs are compared by their git id, so a clean/smudge filter or line-ending conversion
    (``.gitattributes``) makes a file differ too: scanned twice, never skipped. A blob over the
    read limit or missing from the object store is a finding (not scanned), as a file is.
    """
    if not isinstance(repo.tree, WorkTree):  # a revision has no index: what it holds is what was committed
        return []
    staged = repo.tree.staged_changes()
    wanted = [
        (path, ident)
        for path, data in read.items()
        for ident in staged.get(path, ())
        if data is None or ident != _blob_id(data, len(ident))
    ]
    blobs = repo.tree.read_blobs(sorted({ident for _, ident in wanted}))
    out = []
    for path, ident in wanted:
        data = blobs.get(ident)
        if data is None:
            why = "over the read limit" if ident in blobs else "not in the object store"
            origin = Origin(path=redact(path), line=1, column=1, layer="")
            scan.diagnostics.append(Diagnostic(message=f"not scanned: the staged content is {why}", origin=origin))
            continue
        _report(repo, path, data, _marked(_found(repo, path, data), staged=True), scan)
        scan.staged += 1
        out.append((path, data))
    return out


def _blob_id(data: bytes, length: int) -> str:
    """The git blob id of ``data`` in a repository whose ids are ``length`` hex digits (SHA-1 or SHA-256)."""
    algorithm = hashlib.sha1 if length == 40 else hashlib.sha256  # as `git hash-object` in each object format
    return algorithm(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def scan_committable(repo: Repository, files: Iterable[str], *, cache: ResultCache | None = None) -> GuardScan:
    """Rules 3-4 (keys, credentials, decrypted bundles) on ``files``: what ``validate`` adds to its targets;
    on a file's staged content that differs (see the module doc), rules 1-2 too (``inputs``: what did not parse).

    With ``cache``, a file whose blob id is the one recorded there is not scanned
    again: its findings come from the record (``compiler.incremental.guard``).
    Every file is read, whatever its stat says: a stat can stay unchanged while
    the bytes change (a write through a shared memory map into a page already
    dirty moves neither the modification nor the change time), and a verdict of
    "no secret here" must be about the bytes git will take.
    """
    scan = GuardScan()
    index = _findings_index(repo, cache) if cache is not None and cache.usable() else None
    read: dict[str, bytes | None] = {}
    for path in sorted({f.removeprefix("./") for f in files}):
        data = read[path] = _read_one(repo, path, scan)
        if data is None:
            continue
        if index is None or (not path.isascii() and not _utf8(path)):  # the index is JSON: UTF-8 names only
            _leaks(repo, path, data, scan)
            continue
        from compiler.incremental.guard import blob_id  # imported already by _findings_index

        blob = blob_id(data)
        found = index.get(path, blob)
        if found is None:
            found = _found(repo, path, data)
            index.put(path, blob, found)
            scan.scanned += 1
        _plaintext_file(path, scan)
        _report(repo, path, data, found, scan)
    if index is not None:
        index.save()
    # staged content: rules 1-2 as well, since validate checks those per target on the working tree only
    _judge_staged(repo, _scan_staged(repo, read, scan), scan)
    return scan


def _utf8(path: str) -> bool:
    """Whether ``path`` is UTF-8 on disk (not a name with a lone surrogate, ``os.fsdecode``)."""
    try:
        path.encode()
    except UnicodeEncodeError:
        return False
    return True


def _findings_index(repo: Repository, cache: ResultCache) -> GuardFindings | None:
    """The recorded findings for this repository's detectors, module names and schema files.

    None (scan every file) when a file under ``schemas/`` cannot be read: the
    targets report it.
    """
    from compiler.incremental.guard import GuardFindings, context_key

    try:
        schemas = [(p, repo.tree.read(p)) for p in repo.tree.list_tree(SCHEMAS)]
    except LlmccError:
        return None
    return GuardFindings(cache, context_key(repo.modules, schemas))


def _read_one(repo: Repository, path: str, scan: GuardScan) -> bytes | None:
    """The bytes git commits for ``path``; None when it is gone (nothing there, a directory).

    A symlink's bytes are its target's name, as git commits it (its blob), in the
    working tree and in a revision alike: a credential as the target of a dangling
    link was taken for gone (attacker, issue 14). A file over the read limit is a
    finding (git commits it, unscanned it cannot pass); a path that is there but cannot
    be read (a FIFO, no permission, a directory on the way that leads outside the
    repository) is refused (``inputs``, exit 2), never skipped (fail closed).
    """
    try:
        data = _link_text(repo, path)
        if data is not None:
            pass
        elif isinstance(repo.tree, WorkTree):
            data = repo.tree.read_present(path)  # one resolve of the path, not one for each call
            if data is None:
                return None
        elif not repo.tree.exists(path):
            return None
        else:
            data = repo.tree.read(path)
    except TooLargeError as e:
        origin = Origin(path=redact(path), line=1, column=1, layer="")
        scan.diagnostics.append(Diagnostic(message=f"not scanned: {e}", origin=origin))
        return None
    except LlmccError as e:
        message = f"{printable_path(redact(str(e)))} (not scanned: git commits it, so it cannot pass)"
        scan.inputs[message] = 2
        return None
    scan.read += 1
    return data


def _link_text(repo: Repository, path: str) -> bytes | None:
    """The target name of the symlink at ``path`` (its git blob), or None where no symlink is."""
    if isinstance(repo.tree, WorkTree):
        return repo.tree.read_link(path)
    from compiler.sources.gitrev import GitRevTree

    return repo.tree.read_link(path) if isinstance(repo.tree, GitRevTree) else None


def _leaks(repo: Repository, path: str, data: bytes, scan: GuardScan) -> None:
    _plaintext_file(path, scan)
    _report(repo, path, data, _found(repo, path, data), scan)
    scan.scanned += 1


def _found(repo: Repository, path: str, data: bytes) -> list[Diagnostic]:
    """Rules 3-4 on one file, before ``secrets_guard.allow``. Never a value: what the findings cache keeps."""
    found = _name(path)
    text = _text(data)
    if text is not None:
        found += _credentials(text, path)
        if text.lstrip().startswith("{"):  # JSON under any name: `pull --decrypt > prod.txt` is a bundle too
            found += _decrypted_bundle(repo, text, path)
        elif _yaml_outside_layers(path) and _may_name_modules(repo, text):  # `pull --decrypt | yq -P > prod.yaml`
            found += _decrypted_bundle(repo, text, path, yaml=True)
    return found


def _plaintext_file(path: str, scan: GuardScan) -> None:
    """The plaintext input of ``llmcc secrets encrypt`` (``*.secrets.yaml``): never committed, never allowed."""
    if PurePosixPath(path).name.endswith(PLAINTEXT_SUFFIXES):
        origin = Origin(path=redact(path), line=1, column=1, layer="")  # a name can hold a credential too
        scan.diagnostics.append(Diagnostic(message=PLAINTEXT_FILE_MESSAGE, origin=origin))


def _report(repo: Repository, path: str, data: bytes, found: list[Diagnostic], scan: GuardScan) -> None:
    """``found`` into the scan, unless llmcc.yaml ``secrets_guard.allow`` names the file at exactly this content."""
    if not found:
        return
    entry = _allowance(repo.project.manifest.secrets_guard.allow, path)
    if entry is not None and hashlib.sha256(data).hexdigest() == entry.sha256:
        if (allowed := f"{path}: {entry.reason}") not in scan.allowed:
            scan.allowed.append(allowed)
        return
    if entry is not None:
        note = f"llmcc.yaml secrets_guard.allow lets {path} through only at sha256 {entry.sha256}; the file changed"
        found = [replace(d, notes=(note,)) for d in found]
    scan.diagnostics += found


def _allowance(allow: list[AllowedFile], path: str) -> AllowedFile | None:
    return next((a for a in allow if a.path == path), None)


def _text(data: bytes) -> str | None:
    """The text of a file as an editor would show it, or None when it is binary.

    A gzip file (RFC 1952) is read decompressed, every member, bounded by the loader's size
    limit; UTF-32 and UTF-16 by their BOM, or, without one, UTF-16 by its NUL
    in every other byte of ASCII text. Otherwise a NUL byte in the first 8000
    bytes means binary, as git decides.
    """
    if data.startswith(_GZIP):
        try:
            data = _gunzip(data)
        except zlib.error:
            return None  # not gzip after all: binary
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data.decode(codec, "replace")
    probe = data[:_BINARY_PROBE]
    if b"\0" not in probe:
        return data.decode("utf-8", "replace")
    if len(probe) >= 2 and not any(probe[1::2]):
        return data.decode("utf-16-le", "replace")
    if len(probe) >= 2 and not any(probe[0::2]):
        return data.decode("utf-16-be", "replace")
    return None


def _gunzip(data: bytes) -> bytes:
    """Every member of a gzip file (RFC 1952 §2.2: a file is a series of members; ``gunzip`` and
    ``zcat`` write them all out), decompressed up to ``MAX_FILE_BYTES`` in all. Bytes after the
    last member that start no member are kept as they are: scanned, never dropped (attacker,
    issue 14: a credential in a second member passed).

    Raises:
        zlib.error: the first member is not gzip.
    """
    out: list[bytes] = []
    left = MAX_FILE_BYTES
    rest = data
    while rest and left > 0:
        if out and not rest.startswith(_GZIP):
            out.append(rest[:left])  # trailing data that is no member: read as it is
            break
        member = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            chunk = member.decompress(rest, left)
        except zlib.error:
            if not out:
                raise
            out.append(rest[:left])  # a later member that does not inflate: its bytes as they are
            break
        out.append(chunk)
        left -= len(chunk)
        if not member.eof:  # truncated, or the bound reached
            break
        rest = member.unused_data
    return b"".join(out)


def _name(path: str) -> list[Diagnostic]:
    """A credential in the file's name: git commits names too."""
    found = find_credentials(path)
    if not found:
        return []
    f = found[0]
    message = PRIVATE_KEY_MESSAGE if f.family == PRIVATE_KEY else CREDENTIAL_MESSAGE
    origin = Origin(path=redact(path), line=1, column=1, layer="")
    return [Diagnostic(message=f"{f.kind} in the file name: {message}", origin=origin)]


def _credentials(text: str, path: str) -> list[Diagnostic]:
    out = []
    for f in find_credentials(text):
        message = PRIVATE_KEY_MESSAGE if f.family == PRIVATE_KEY else CREDENTIAL_MESSAGE
        origin = Origin(path=redact(path), line=f.line, column=f.column, layer="")
        out.append(Diagnostic(message=f"{f.kind}: {message}", origin=origin))
    return out


def _yaml_outside_layers(path: str) -> bool:
    """A YAML file that is not a layer, template or SOPS file (those have rules 1-2 and their targets)."""
    name = PurePosixPath(path).name
    if not name.endswith((".yaml", ".yml")) or name.endswith(".sops.yaml"):
        return False
    return not path.startswith((f"{ENVIRONMENTS}/", f"{TEMPLATES}/"))


def _may_name_modules(repo: Repository, text: str) -> bool:
    """Whether YAML ``text`` can have ``modules`` or a module's name as a key (cheap: most YAML files cannot).

    A key is spelt out in the text, but for escapes (``"\\x61pi"``); folding a line break
    into a key leaves a space, which no name holds. Validate parsed every YAML file of
    the repository a second time here (issue 14 §1).
    """
    return "\\" in text or "modules" in text or any(module in text for module in repo.modules)


def _decrypted_bundle(repo: Repository, text: str, path: str, *, yaml: bool = False) -> list[Diagnostic]:
    """A compiled bundle (``modules`` inside) or pulled modules whose x-secret fields are not ``ENC[...]``."""
    doc: Value
    try:
        doc = load_document(text.encode(), path=path, layer="").value if yaml else json.loads(text)
    except (ValueError, RecursionError, LlmccError):  # not JSON / YAML, or nested past the limit: not our output
        return []
    prefix: tuple[str, ...] = ()
    if isinstance(doc, dict) and isinstance(doc.get("modules"), dict):
        doc, prefix = doc["modules"], ("modules",)
    if not isinstance(doc, dict) or not doc or not set(doc) <= set(repo.modules):
        return []
    plain: list[tuple[str, tuple[str | int, ...]]] = []
    for module, value in sorted(doc.items()):
        try:
            schema = repo.schema(module)
        except LlmccError:  # a broken schema is reported by the targets that use it
            continue
        plain += [(module, p) for p in secret_paths(schema, value) if _opened(_get(value, p))]
    if not plain:
        return []
    module, spath = plain[0]
    try:
        origin = load_document(text.encode(), path=path, layer="").origin((*prefix, module, *spath))
    except LlmccError:
        origin = Origin(path=path, line=1, column=1, layer="")
    more = f" (and {len(plain) - 1} more)" if len(plain) > 1 else ""
    return [Diagnostic(message=BUNDLE_MESSAGE + more, origin=origin, module=module, path=spath)]


def _opened(value: Value) -> bool:
    """Whether a secret value holds plaintext anywhere (every leaf of a sealed value is ``ENC[...]``)."""
    if isinstance(value, dict):
        return any(_opened(v) for v in value.values())
    if isinstance(value, list):
        return any(_opened(v) for v in value)
    from compiler.secrets.envelope import is_enc  # a JSON file shaped like a bundle: rare

    return value is not None and not is_enc(value)


def _layer_name(path: str) -> str:
    """The layer name compile gives the file (``prod``, ``tenants/acme``, ``prod (secrets)``); "" outside layers."""
    if not path.startswith(f"{ENVIRONMENTS}/"):
        return ""
    stem = path.removeprefix(f"{ENVIRONMENTS}/")
    if stem.endswith(".secrets.sops.yaml"):
        return stem.removesuffix(".secrets.sops.yaml") + " (secrets)"
    return stem.rsplit(".", 1)[0]


def _modules(repo: Repository, doc: Document) -> list[tuple[str, Value]]:
    """The ``modules:`` patches of a layer document, for modules that have a schema."""
    value = doc.value
    patch = value.get("modules") if isinstance(value, dict) else None
    if isinstance(patch, Tagged):
        patch = patch.value
    if not isinstance(patch, dict):
        return []
    return [(m, v) for m, v in patch.items() if m in repo.modules]


def _sops_file(repo: Repository, data: bytes, path: str) -> list[Diagnostic]:
    doc = load_document(data, path=path, layer=_layer_name(path))
    if not is_sops_document(doc.value):
        return [Diagnostic(message=NOT_SOPS, origin=doc.origin(()))]
    out = []
    for module, patch in _modules(repo, doc):
        for spath in sorted(set(secret_paths(repo.schema(module), patch)), key=str):
            if unencrypted_leaves(_get(patch, spath)):
                origin = doc.origin(("modules", module, *spath))
                out.append(Diagnostic(message=LEFT_PLAIN, origin=origin, module=module, path=spath))
    return out


def _layer_file(repo: Repository, doc: Document) -> list[Diagnostic]:
    out = []
    for module, patch in _modules(repo, doc):
        for spath in sorted(set(secret_paths(repo.schema(module), patch)), key=str):
            origin = doc.origin(("modules", module, *spath))
            out.append(Diagnostic(message=MESSAGE, origin=origin, module=module, path=spath))
    return out


def _templates(repo: Repository, paths: set[str]) -> list[Diagnostic]:
    out = []
    seen: set[tuple[str, tuple[str | int, ...]]] = set()
    for module in repo.modules:
        schema = repo.schema(module)
        for plan in repo.templates(module):
            if plan.document.path not in paths:
                continue
            for spath in sorted(set(secret_paths(schema, plan.static)), key=str):
                if (plan.document.path, spath) in seen:
                    continue
                seen.add((plan.document.path, spath))
                origin = plan.document.origin(spath)
                out.append(Diagnostic(message=MESSAGE, origin=origin, module=module, path=spath))
    return out


def _get(value: Value, path: tuple[str | int, ...]) -> Value:
    for part in path:
        if isinstance(value, Tagged):
            value = value.value
        if isinstance(value, dict) and isinstance(part, str):
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
        else:
            return None
    return value
