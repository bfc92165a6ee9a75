"""JSON Schema (draft 2020-12) per module: one engine decides validity and explains it.

``jsonschema-rs`` compiles each module's schema once and reports every error
of an invalid module; the findings here are exactly those errors. Its regular
expressions follow ECMA-262 (``\\p{Lu}``, named groups ``(?<name>...)``) and run
in linear time: a pattern that needs lookaround or a backreference is refused
at the schema's line rather than risk exponential backtracking (issue 10 §2,
§8). Formats are asserted (``FORMATS``); an unknown format is a schema error,
never a silent pass. A schema that cannot compile is an ``InputError`` at its
file:line.

Messages are written here from the failing keyword, never copied from the
validator: its messages quote the instance, and the instance may hold a secret
(STYLE R15).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urldefrag, urljoin

import jsonschema_rs

from compiler.errors import InputError, InternalError, is_panic
from compiler.jsonpath import JsonPath
from compiler.native import panics_as
from compiler.validate.edits import EditCheck
from compiler.validate.schemafiles import (
    SCHEMAS,
    Pointer,
    SchemaFiles,
    build_registry,
    check_identifiers,
    check_uris,
    decode_anchor_refs,
    engine_failed,
    is_local,
    load_json,
    locate,
    path_of,
    references,
    refuse_retrieval,
    subschemas,
    uri_key,
    uri_of,
)
from compiler.validate.secretwalk import (
    ROTATE_KEYWORD,
    SECRET_KEYWORD,
    hollow_edges,
    note_text,
    schema_has_secrets,
    secret_paths,
    unfollowed_keyword,
    unfollowed_marks,
)

__all__ = ["FORMATS", "ROTATE_KEYWORD", "SECRET_KEYWORD", "CheckedSchemas", "ModuleSchema", "SchemaFinding"]
__all__ += ["secret_paths"]
__all__ += ["schema_has_secrets"]

# What `format` asserts (jsonschema-rs with validate_formats; README "Schemas"). Any other name is refused.
FORMATS = (
    "date", "date-time", "time", "duration", "email", "idn-email", "hostname", "idn-hostname", "ipv4", "ipv6",
    "uri", "uri-reference", "iri", "iri-reference", "uri-template", "uuid", "json-pointer",
    "relative-json-pointer", "regex",
)  # fmt: skip
_DRAFT_2020_12 = ("https://json-schema.org/draft/2020-12/schema", "https://json-schema.org/draft/2020-12/schema#")
_OPTIONS: dict[str, Any] = {
    "validate_formats": True,
    "ignore_unknown_formats": False,
    # The `regex` crate: linear time in the input, no lookaround, no backreferences.
    "pattern_options": jsonschema_rs.RegexOptions(),
    # RFC 5321 Mailbox, as 2020-12 validation §7.3.2 says: an address, not `Name <address>`.
    "email_options": jsonschema_rs.EmailOptions(allow_display_text=False),
    "retriever": refuse_retrieval,
}


@dataclass(frozen=True, slots=True)
class SchemaFinding:
    """One schema error: where in the module, and a message that quotes no secret."""

    path: JsonPath
    message: str
    keyword: str


@dataclass(slots=True)
class ModuleSchema:
    """A module's schema, compiled once per process, with the references it reaches."""

    module: str
    path: str
    schema: dict[str, Any]
    external: bool  # it references another file under schemas/ (compiled against all of them)
    _validator: Any  # None: not compiled yet (``load(lazy=True)``)
    _registry: jsonschema_rs.Registry | None
    _lookups: dict[tuple[str, str], tuple[str, Any]] = field(default_factory=dict)
    _patterns: dict[str, Any] = field(default_factory=dict)
    _edits: EditCheck | None = None
    _text: str = ""  # the file's text, for the line of a compile error (``lazy``)
    # ``lazy`` only: SHA-256 over what loading and validating against this schema are a function of,
    # besides the engine's version: this file's bytes, every file under schemas/ when it may reference
    # another, the checking source; "" when one of those files does not load (then nothing is kept)
    digest: str = ""

    @classmethod
    def load(
        cls,
        module: str,
        path: str,
        data: bytes,
        files: SchemaFiles | None = None,
        *,
        lazy: bool = False,
        checked: CheckedSchemas | None = None,
    ) -> ModuleSchema:
        """Parse, check and compile ``schemas/<module>.schema.json``.

        ``files`` holds the other files under ``schemas/`` that a ``$ref`` may
        name; without it only references inside this file resolve. ``lazy``:
        the validator is compiled when first used (``validator``), not here, so
        a fault only the compile finds is raised then (the result cache's runs:
        one whose validity verdicts are all kept compiles none). ``checked``
        (with ``lazy``): a schema of this ``digest`` it says passed these checks
        before is parsed without the duplicate-key hook and not checked against
        the meta-schema again (``check_document``); one that passes is told to it.

        Raises:
            InputError: invalid JSON, not a 2020-12 schema, a reference that does
                not resolve, a pattern or format llmcc cannot check; at file:line.
        """
        # the bytes hold an ASCII keyword where the decoded text does (UTF-8): one search serves both
        refers = any(k in data for k in (b'"$ref"', b'"$dynamicRef"', b"\\u"))
        digest = _digest(data, _others(refers, files)) if lazy else ""
        known = bool(digest) and checked is not None and checked.checked(path, digest)
        schema = _checked_json(path, data) if known else load_json(path, data)
        if not isinstance(schema, dict):
            raise InputError(f"{path}:1:1: a schema must be a JSON object")
        text = data.decode("utf-8")
        check_dialect(path, text, schema)
        base = uri_of(path)
        if not known:
            check_document(path, text, schema)
        note_text(schema, text, refers=refers)
        refs = list(references(schema, base)) if refers else []
        external = any(not is_local(ref) for _, ref, _ in refs)
        registry = None
        check_uris(path, text, refs)
        written: dict[Pointer, str] = {}
        if any("%" in ref for _, ref, _ in refs):  # the walk again only when one may be encoded
            written = decode_anchor_refs(schema, base)
            refs = list(references(schema, base))
        if refs:
            if external and files is not None:
                registry, missing = files.registry(), files.missing
                check_references(path, text, refs, registry, missing, files.names(), written=written)
                check_shared(files)
            else:
                registry, missing = build_registry([(base, schema)])
                check_references(path, text, refs, registry, missing, written=written)
        validator = None if lazy else _compile(path, text, schema, registry)
        if digest and checked is not None and not known:
            checked.learn_checked(path, digest)
        return cls(module, path, schema, external, validator, registry, _text=text, digest=digest)

    def validator(self) -> Any:  # noqa: ANN401 - a jsonschema-rs validator
        """The compiled validator (compiled on first use after ``load(lazy=True)``).

        Raises:
            InputError: the schema does not compile (at its file:line, as ``load`` raises it).
        """
        validator = self._validator
        if validator is None:
            validator = self._validator = _compile(self.path, self._text, self.schema, self._registry)
        return validator

    @property
    def base(self) -> str:
        """The URI this schema's relative references resolve against."""
        return uri_of(self.path)

    def check(self, instance: object, *, valid_base: object = None) -> list[SchemaFinding]:
        """Every schema error of ``instance``, sorted by path.

        ``valid_base``: a document this schema accepts (``is_valid``) of which
        ``instance`` is a copy-on-write edit; when given, only the subtrees that
        are not the same objects in both are validated where that is exact
        (``compiler.validate.edits``), else the whole document.
        """
        if valid_base is not None:
            if self._edits is None:
                self._edits = EditCheck(self.schema, _OPTIONS)
            if self._edits.valid(valid_base, instance):
                return []
        try:  # not `with panics_as(...)`: this is the hot path, and a try costs nothing until it catches
            validator = self._validator if self._validator is not None else self.validator()
            if validator.is_valid(instance):
                return []
            secret = set(secret_paths(self, instance))
            findings = [f for e in validator.iter_errors(instance) for f in _findings(e, secret, instance)]
        except BaseException as e:
            raise self._validation_failed(e) from e
        return sorted(findings, key=lambda f: ([str(p) for p in f.path], f.message))

    def valid_at(self, path: JsonPath, value: object) -> bool:
        """Whether a valid document of this schema with ``value`` put at ``path`` is shown valid,
        with no secret field at, above or below ``path`` (``EditCheck.valid_at``); False: not shown."""
        if self._edits is None:
            self._edits = EditCheck(self.schema, _OPTIONS)
        return self._edits.valid_at(path, value)

    def is_valid(self, instance: object) -> bool:
        """Whether ``instance`` has no schema error.

        Raises:
            InternalError: the engine panicked (exit 70; never a pass).
        """
        validator = self._validator if self._validator is not None else self.validator()
        try:
            return bool(validator.is_valid(instance))
        except BaseException as e:
            raise self._validation_failed(e) from e

    def _validation_failed(self, e: BaseException) -> InternalError:
        """The error for a panic of the engine while validating (any other exception: re-raised as it is)."""
        if not is_panic(e):
            raise e
        # the panic's text is not shown: it may quote the instance, which may hold a secret
        return InternalError(
            f"{self.path}: internal error: the JSON Schema engine (jsonschema-rs) failed validating module "
            f"{self.module!r} against this schema (a bug of the engine; nothing was taken as valid)"
        )

    def resolve(self, base: str, ref: str) -> tuple[str, Any]:
        """The subschema ``ref`` names from a node at ``base``, and its own base URI (memoized)."""
        key = (base, ref)
        hit = self._lookups.get(key)
        if hit is None:
            assert self._registry is not None, "a schema with references has a registry"
            try:
                with panics_as(engine_failed(self.path)):
                    found = self._registry.resolver(base).lookup(ref)
            except jsonschema_rs.ReferencingError as e:  # checked at load: a bug if it happens
                raise InputError(f"{self.path}: $ref {ref!r} does not resolve: {e}") from e
            hit = self._lookups[key] = (found.resolver.base_uri, found.contents)
        return hit

    def matches(self, pattern: str, key: str) -> bool:
        """Whether ``patternProperties`` ``pattern`` matches ``key``, in the validator's own dialect."""
        check = self._patterns.get(pattern)
        if check is None:
            try:
                with panics_as(engine_failed(self.path)):
                    check = jsonschema_rs.validator_for({"pattern": pattern}, **_OPTIONS)
            except jsonschema_rs.ValidationError:
                return True  # cannot happen after load; count it as matching (fail closed)
            self._patterns[pattern] = check
        with panics_as(engine_failed(self.path)):
            return bool(check.is_valid(key))


class CheckedSchemas(Protocol):
    """Schemas that passed ``ModuleSchema.load``'s checks before, by path and ``ModuleSchema.digest``."""

    def checked(self, path: str, digest: str) -> bool:
        """Whether the schema at ``path`` with ``digest`` passed them (False: not known)."""
        ...

    def learn_checked(self, path: str, digest: str) -> None:
        """Keep that the schema at ``path`` with ``digest`` passed them."""
        ...


def _others(refers: bool, files: SchemaFiles | None) -> dict[str, tuple[Any, str]] | None:
    """The files under schemas/ a schema may reference (None: one does not load); ``refers``: its text
    may hold ``$ref`` or ``$dynamicRef`` (``_may_hold``)."""
    if files is None or not refers:
        return {}
    try:
        return files.documents()
    except InputError:
        return None  # the load reports it where it reads them, as without the cache


def _checked_json(path: str, data: bytes) -> Any:  # noqa: ANN401 - a JSON Schema document
    """``load_json`` of bytes that passed it before: the C decoder without the duplicate-key hook."""
    try:
        return json.loads(data.decode("utf-8"))  # UTF-8 only: json.loads(bytes) would read UTF-16/32
    except (ValueError, RecursionError):  # cannot be, they passed: the strict parse reports it
        return load_json(path, data)


def _digest(data: bytes, others: dict[str, tuple[Any, str]] | None) -> str:
    """``ModuleSchema.digest``: ``data``, the texts of ``others`` by path, and the checking source."""
    if others is None:
        return ""
    h = hashlib.sha256(b"module-schema/1\0" + hashlib.sha256(data).digest())
    for path in sorted(others):
        h.update(b"%s\0%s\0" % (path.encode(), hashlib.sha256(others[path][1].encode()).digest()))
    h.update(_source_digest())
    return h.hexdigest()


@cache
def _source_digest() -> bytes:
    here = Path(__file__)
    h = hashlib.sha256()
    for source in (here, here.with_name("schemafiles.py"), here.with_name("secretwalk.py"), here.with_name("edits.py")):
        h.update(source.read_bytes() + b"\0")
    return h.digest()


def check_document(path: str, text: str, schema: dict[str, Any] | bool) -> None:
    """The 2020-12 meta-schema check, every ``x-secret`` where the secret walk sees it, every ``$id`` a URI,
    and no URI (``$id``, anchor) naming two subschemas (``check_identifiers``).

    Raises InputError at the line of the first fault.
    """
    try:
        # jsonschema-rs: Python's check_schema costs ~0.5 s per large schema.
        with panics_as(engine_failed(path), quiet=True):
            jsonschema_rs.meta.validate(schema)
    except jsonschema_rs.ValidationError as e:
        raise InputError(_compile_error(path, text, e)) from e
    if _may_hold(text, SECRET_KEYWORD):
        for pointer, why in unfollowed_marks(schema):
            line, col = locate(text, pointer)
            raise InputError(f"{path}:{line}:{col}: {why}; mark fields under properties, items or $defs")
    if _may_hold(text, "$id"):
        _check_ids(path, text, schema)
    if _may_hold(text, "$anchor", "$dynamicAnchor") or (_may_hold(text, "$id") and not _root_id_only(text, schema)):
        check_identifiers(path, text, schema, {})


def check_dialect(path: str, text: str, schema: dict[str, Any] | bool) -> None:
    """Every ``$schema`` in the document, the root's and an embedded resource's, is 2020-12's.

    jsonschema-rs reads a subschema by the dialect its ``$schema`` names and would fetch an
    unknown meta-schema (network or file://); the checks here are 2020-12's (core §8.1.1).

    Raises:
        InputError: at the line of the first other ``$schema``.
    """
    if not isinstance(schema, dict):
        return
    nodes: Any = [((), schema, "")]
    if "\\u" in text or text.count('"$schema"') > 1 or ('"$schema"' in text and "$schema" not in schema):
        nodes = subschemas(schema, uri_of(path))
    for pointer, node, _ in nodes:
        meta = node.get("$schema")
        if meta is not None and meta not in _DRAFT_2020_12:
            line, col = locate(text, (*pointer, "$schema"))
            raise InputError(f"{path}:{line}:{col}: $schema must be {next(iter(_DRAFT_2020_12))!r}, not {meta!r}")


def _root_id_only(text: str, schema: dict[str, Any] | bool) -> bool:
    """The usual case: the root is the only subschema with an ``$id`` (then no URI is named twice)."""
    return "\\u" not in text and text.count('"$id"') == 1 and isinstance(schema, dict) and "$id" in schema


def _check_ids(path: str, text: str, schema: dict[str, Any] | bool) -> None:
    """Every ``$id`` is a URI reference. Raises InputError at its line."""
    nodes: Any = subschemas(schema, uri_of(path))
    if _root_id_only(text, schema):
        nodes = [((), schema, "")]
    for pointer, node, _ in nodes:
        if "$id" in node:
            try:
                build_registry([(uri_of(path), {"$id": node["$id"]})])
            except InputError as e:
                line, col = locate(text, (*pointer, "$id"))
                raise InputError(f"{path}:{line}:{col}: $id {node['$id']!r} is not a URI reference") from e


def _may_hold(text: str, *keywords: str) -> bool:
    """Whether a schema's text may hold one of ``keywords``: the walk costs more than the rest of loading it.

    A ``\\u`` escape can spell any key, so a text with one is always walked.
    """
    return "\\u" in text or any(f'"{k}"' in text for k in keywords)


def _compile(path: str, text: str, schema: dict[str, Any] | bool, registry: jsonschema_rs.Registry | None) -> Any:  # noqa: ANN401
    """The compiled validator of one schema document. Raises InputError at the line of a fault."""
    try:
        with panics_as(engine_failed(path), quiet=True):
            return jsonschema_rs.validator_for(schema, registry=registry, base_uri=uri_of(path), **_OPTIONS)
    except jsonschema_rs.ValidationError as e:
        raise InputError(_compile_error(path, text, e)) from e
    except (jsonschema_rs.ReferencingError, ValueError) as e:  # references are checked before: a bug
        raise InputError(f"{path}:1:1: invalid JSON Schema: {str(e).splitlines()[0]}") from e


def check_references(
    path: str,
    text: str,
    refs: list[tuple[Pointer, str, str]],
    registry: jsonschema_rs.Registry,
    missing: set[str],
    names: dict[str, str] | None = None,
    *,
    written: dict[Pointer, str] | None = None,
) -> None:
    """Every reference resolves in ``registry``. Raises InputError at the referring line.

    ``missing``: documents the registry did not hold (``build_registry``);
    ``names``: the file that has each ``$id``, to name it in a message;
    ``written``: a reference's spelling in the file where ``decode_anchor_refs`` rewrote it.
    """
    # the engine records a missing document by its own normal form (`HTTP://H/x.json` as `http://h/x.json`):
    # compared as written, such a reference passed and stood for `false` (under `not`, for anything valid)
    absent = {uri_key(uri) for uri in missing}
    for pointer, ref, base in refs:
        why = None
        target, fragment = urldefrag(urljoin(base, ref))
        if uri_key(target) in absent:
            why = _no_document(target)
        else:
            try:
                with panics_as(engine_failed(path)):
                    registry.resolver(base).lookup(ref)
            except jsonschema_rs.ReferencingError:
                why = f"{path_of(target) or (names or {}).get(target, target)} has no {fragment!r}"
        if why is not None:
            line, col = locate(text, pointer)
            shown = (written or {}).get(pointer, ref)
            raise InputError(f"{path}:{line}:{col}: $ref {shown!r} does not resolve: {why}")
        loop = bare_cycle(registry, path, base, ref)
        if loop is not None:
            line, col = locate(text, pointer)
            shown = (written or {}).get(pointer, ref)
            raise InputError(
                f"{path}:{line}:{col}: $ref {shown!r} enters a reference cycle with no other keyword "
                f"({' -> '.join(loop)}): it would accept any value and hide an x-secret mark"
            )
        keyword = unfollowed_keyword(pointer[:-1])
        if keyword is not None and _reaches_mark(registry, base, ref, set()):
            line, col = locate(text, pointer)
            why = f"reaches an {SECRET_KEYWORD} under {keyword!r}, which the secret walk does not follow"
            raise InputError(f"{path}:{line}:{col}: $ref {ref!r} {why}; mark fields under properties, items or $defs")


def bare_cycle(registry: jsonschema_rs.Registry, path: str, base: str, ref: str) -> list[str] | None:
    """The references of a cycle that ``ref`` enters and that never reaches a schema with any other keyword.

    Such a cycle (``l1 -> l2 -> l1``, ``l1 -> l1``, or through ``allOf``/``anyOf``/``oneOf`` of
    subschemas that assert nothing: ``hollow_edges``) constrains nothing: the engine accepts any
    value there, and the secret walk finds no ``x-secret`` mark in it, so a plaintext value would
    pass (issue 14, F6). A cycle through real structure (``{"properties": {"child": {"$ref": "#"}}}``)
    is a recursive schema and legal. Returns the references on the way, the closing one last, or
    None. A reference that does not resolve ends its branch (``check_references`` reports it).
    """
    done: set[tuple[str, str]] = set()
    on_path: set[tuple[str, str]] = set()

    def visit(base: str, node: Any, chain: list[str]) -> list[str] | None:  # noqa: ANN401
        edges = hollow_edges(node)
        if edges is None:
            return None
        key = (base, json.dumps(node, sort_keys=True))
        if key in on_path:
            return chain
        if key in done:
            return None
        on_path.add(key)
        ident = node.get("$id")
        here = urljoin(base, ident) if isinstance(ident, str) else base
        for kind, value in edges:
            if kind == "sub":
                found = visit(here, value, chain)
            else:
                try:
                    with panics_as(engine_failed(path)):
                        resolved = registry.resolver(here).lookup(value)
                except jsonschema_rs.ReferencingError:
                    continue
                found = visit(resolved.resolver.base_uri, resolved.contents, [*chain, value])
            if found is not None:
                return found
        on_path.discard(key)
        done.add(key)
        return None

    try:
        with panics_as(engine_failed(path)):
            resolved = registry.resolver(base).lookup(ref)
    except jsonschema_rs.ReferencingError:
        return None
    return visit(resolved.resolver.base_uri, resolved.contents, [ref])


def _reaches_mark(registry: jsonschema_rs.Registry, base: str, ref: str, seen: set[tuple[str, str]]) -> bool:
    """Whether the subschema ``ref`` names, or one it refers to in turn, holds an ``x-secret`` mark."""
    try:
        with panics_as(engine_failed(path_of(base) or SCHEMAS + "/")):
            resolved = registry.resolver(base).lookup(ref)
    except jsonschema_rs.ReferencingError:
        return False  # reported at its own line (check_references of its file)
    at, target = resolved.resolver.base_uri, resolved.contents
    if (at, json.dumps(target, sort_keys=True)) in seen:
        return False
    seen.add((at, json.dumps(target, sort_keys=True)))
    for _, node, inner in subschemas(target, at):
        if node.get(SECRET_KEYWORD) is True:
            return True
        for key in ("$ref", "$dynamicRef"):
            if isinstance(node.get(key), str) and _reaches_mark(registry, inner, node[key], seen):
                return True
    return False


def check_shared(files: SchemaFiles) -> None:
    """Check the files under ``schemas/`` that are not module schemas (the modules check themselves)."""
    if files.checked:
        return
    shared = {
        path: entry
        for path, entry in files.documents().items()
        if not (path.endswith(".schema.json") and "/" not in path[len(SCHEMAS) + 1 :])
    }
    for path, (doc, text) in shared.items():
        check_dialect(path, text, doc)
        check_document(path, text, doc)
    registry = files.registry()
    for path, (doc, text) in shared.items():
        refs = list(references(doc, uri_of(path)))
        check_references(path, text, refs, registry, files.missing, files.names(), written=files.written.get(path))
        # Every definition, used or not, is checked where it is written: compiling a module
        # that uses it would report the fault at a pointer into this file, without its name.
        for pointer, node, _ in subschemas(doc, uri_of(path)):
            for key, value in _keyword_values(node):
                try:
                    with panics_as(engine_failed(path)):
                        jsonschema_rs.validator_for({key: value}, **_OPTIONS)
                except jsonschema_rs.ValidationError as e:
                    raise InputError(_compile_error(path, text, e, pointer)) from e
        _compile(path, text, doc, registry)
    # Only once every file passed: a caller that catches the error and asks again (the key check
    # looks for secret fields and leaves broken schemas to the targets) must get it again.
    files.checked = True


def _keyword_values(node: dict[str, Any]) -> list[tuple[str, Any]]:
    """The keywords of one subschema that compile on their own: patterns and formats."""
    found = [(k, node[k]) for k in ("pattern", "format") if isinstance(node.get(k), str)]
    if isinstance(node.get("patternProperties"), dict):
        found.append(("patternProperties", {p: True for p in node["patternProperties"]}))
    return found


def _no_document(target: str) -> str:
    where = path_of(target)
    if where is None:
        return f"no file under {SCHEMAS}/ has $id {target!r}, and schemas are never fetched"
    if not where.startswith(f"{SCHEMAS}/"):
        return f"{where} is outside {SCHEMAS}/"
    return f"no file {where}" + ("" if where.endswith(".json") else " (schema files end in .json)")


def _compile_error(path: str, text: str, e: jsonschema_rs.ValidationError, prefix: Pointer = ()) -> str:
    """The message for a schema that does not compile; ``prefix``: where the compiled part sits in the file."""
    pointer = (*prefix, *e.instance_path)
    line, col = locate(text, pointer)
    where = "/".join(str(p) for p in pointer) or "(root)"
    kind = e.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Format) and kind.format == "regex":
        pattern = str(e.instance)
        try:
            with panics_as(engine_failed(path)):
                jsonschema_rs.validator_for({"pattern": pattern})  # the backtracking engine reads ECMA-262 in full
        except jsonschema_rs.ValidationError:
            why = "is not an ECMA-262 regular expression"
        else:
            if _BACKTRACKING.search(pattern):
                why = "needs lookaround or a backreference; patterns must run in linear time (no backtracking)"
            else:
                why = "compiles to a matcher over the size limit of the linear-time engine; simplify its repetitions"
        return f"{path}:{line}:{col}: pattern {pattern!r} at {where} {why}"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Custom) and pointer and pointer[-1] == "format":
        return f"{path}:{line}:{col}: unknown format {e.instance!r} at {where}; llmcc asserts {', '.join(FORMATS)}"
    return f"{path}:{line}:{col}: invalid JSON Schema at {where}: {e.message.splitlines()[0]}"


# Lookahead/lookbehind `(?=` `(?!` `(?<=` `(?<!`, backreferences `\1` `\k<name>` (ECMA-262 §22.2).
_BACKTRACKING = re.compile(r"\(\?<?[=!]|\\[1-9]|\\k<")
_K = jsonschema_rs.ValidationErrorKind
_BOUNDS = {
    _K.Minimum: "less than the minimum of",
    _K.Maximum: "greater than the maximum of",
    _K.ExclusiveMinimum: "less than or equal to the exclusive minimum of",
    _K.ExclusiveMaximum: "greater than or equal to the exclusive maximum of",
}
_SIZES = {
    _K.MinLength: ("at least", "characters"),
    _K.MaxLength: ("at most", "characters"),
    _K.MinItems: ("at least", "items"),
    _K.MaxItems: ("at most", "items"),
    _K.MinProperties: ("at least", "properties"),
    _K.MaxProperties: ("at most", "properties"),
}


def _findings(e: jsonschema_rs.ValidationError, secret: set[JsonPath], root: object) -> list[SchemaFinding]:
    """Our findings for one validator error (one per unexpected property; the best branch of anyOf/oneOf)."""
    path = _real_path(root, tuple(e.instance_path), e.instance)
    kind = e.kind
    keyword = kind.name
    if isinstance(kind, _K.AnyOf | _K.OneOfNotValid):
        branches = [err for branch in kind.context for err in branch]
        if branches:
            # The most telling error of the branches: one of the right type, then the deepest path.
            best = min(branches, key=lambda b: (isinstance(b.kind, _K.Type), -len(b.instance_path)))
            return _findings(best, secret, root)
    if isinstance(kind, _K.AdditionalProperties | _K.UnevaluatedProperties):
        which = "Additional" if isinstance(kind, _K.AdditionalProperties) else "Unevaluated"
        return [
            SchemaFinding((*path, key), f"{which} properties are not allowed ({key!r} was unexpected)", keyword)
            for key in kind.unexpected
        ]
    if isinstance(kind, _K.PropertyNames):
        inner = _findings(kind.error, set(), kind.error.instance)
        return [SchemaFinding(path, f"property name {f.message}", keyword) for f in inner]
    # the value is a secret, holds one, or lies inside one (a secret map's own keys)
    hidden = any(p[: len(path)] == path or path[: len(p)] == p for p in secret)
    return [SchemaFinding(path, _message(kind, _describe(e.instance, hidden)), keyword)]


def _real_path(node: object, path: JsonPath, leaf: object) -> JsonPath:
    """``path`` with the empty-string keys jsonschema-rs (0.61) leaves out of ``instance_path`` put back.

    Finds, in ``node``, the value ``leaf`` at ``path`` with ``""`` keys
    inserted where the instance has them; ``path`` itself when none fits.
    """
    found = _search(node, path, leaf)
    return path if found is None else found


def _search(node: object, rest: JsonPath, leaf: object) -> JsonPath | None:
    if not rest and node == leaf:
        return ()
    if isinstance(node, dict) and "" in node:
        below = _search(node[""], rest, leaf)
        if below is not None:
            return ("", *below)
    if not rest:
        return None
    head = rest[0]
    in_map = isinstance(node, dict) and isinstance(head, str) and head in node
    in_list = isinstance(node, list) and isinstance(head, int) and 0 <= head < len(node)
    if not (in_map or in_list):
        return None
    below = _search(node[head], rest[1:], leaf)  # type: ignore[index]
    return None if below is None else (head, *below)


def _message(kind: Any, desc: str) -> str:  # noqa: ANN401 - a ValidationErrorKind subclass
    match kind:
        case _K.Required():
            return f"{kind.property!r} is a required property"
        case _K.Type():
            return f"{desc} is not of type {_list(kind.types)}"
        case _K.Enum():
            return f"{desc} is not one of {_list(kind.options)}"
        case _K.Constant():
            return f"{desc} is not {json.dumps(kind.expected_value)}"
        case _K.Minimum() | _K.Maximum() | _K.ExclusiveMinimum() | _K.ExclusiveMaximum():
            return f"{desc} is {_BOUNDS[type(kind)]} {kind.limit}"
        case _K.MultipleOf():
            return f"{desc} is not a multiple of {kind.multiple_of}"
        case _K.MinLength() | _K.MaxLength() | _K.MinItems() | _K.MaxItems() | _K.MinProperties() | _K.MaxProperties():
            bound, unit = _SIZES[type(kind)]
            return f"{desc} must have {bound} {kind.limit} {unit}"
        case _K.Pattern():
            return f"{desc} does not match pattern {kind.pattern!r}"
        case _K.Format():
            return f"{desc} is not a valid {kind.format}"
        case _K.UniqueItems():
            return f"{desc} has repeated items"
        case _K.OneOfMultipleValid():
            return f"{desc} matches more than one schema of oneOf"
        case _K.Contains():
            return f"{desc} has no item that matches contains"
        case _K.FalseSchema():
            return f"{desc} is not allowed here (false schema)"
    return f"{desc} fails {kind.name}"


def _list(values: list[Any]) -> str:
    return ", ".join(json.dumps(v) for v in values)


def _describe(value: Any, hidden: bool) -> str:  # noqa: ANN401
    """A short description of a value for a message; a secret is only named by its type."""
    if isinstance(value, dict):
        return "the map"
    if isinstance(value, list):
        return "the list"
    if hidden:
        return "the secret value"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
