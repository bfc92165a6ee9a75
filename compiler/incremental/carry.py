"""Re-render only the scalars that read a changed variable, starting from a target's previous result.

Issue 14 §2: "a change that touches one variable re-renders only the scalars
that read it". A target's modules are its templates rendered with its
variables, then its layers' ``modules`` merged on top (``compiler.compile``).
When nothing but the variables changed since a compile of the target -- the
same templates, schemas, manifest, keys, SOPS files and the same ``modules`` of
every layer -- the new modules are the previous ones with each template scalar
that reads a changed variable rendered again, wherever no layer reaches that
scalar's path (``compiler.compile.inherit``'s rule, here relative to the
previous result instead of the environment's).

The previous result is a cache entry under the *carry key*
(``compiler.incremental.key.CarryKeys``): the cache key with each plain layer
file's blob id replaced by the digest of that layer's ``modules``
(``layer_digest``), so it is found only when every input but the variables is
what it was. The entry (a *record*) holds the SHA-256 of each variable's
fingerprint (not the values: a variable may hold a secret), the blob of the
modules' canonical text, and where in that text each template scalar sits that
the layers leave free (*slots*: the scalar's index in its template, start and
end, in characters).

What decides which scalars are rendered again comes from this run's inputs:
the changed variables (this run's fingerprints against the record's), the
scalars that read them (the templates' source text) and whether the layers
reach each one (this run's layers). The record only says where a scalar's text
is, and that is checked before it is used: the slot must hold one JSON value
preceded by its key and not overlap another. The check reads the slot's own key,
not its full path: a record whose slot was moved onto another member of the same
name (attacker F2) is spliced there. The record is trusted as far as the cache
trusts any entry (this user's, in directories only this user can write), which
already lets whoever writes one serve any bundle under a result key; walking the
text to each changed slot to check its path costs 5-10 ms a target on xlarge
(json's decoder, ``re``), more than carrying saves (bench/NOTES.md). The store has already checked the
entry (owner, format, compiler version, key, SHA-256) and the blob (SHA-256).
A record is written only for a target that compiled without a finding and
without a secret field, after checking that every slot's text is the canonical
JSON of the value at its path.

Carrying gives up -- the target is compiled in full, which reports what there
is to report -- when anything is not as this rule needs it: a template with
``extends`` or merge tags, a changed scalar a layer extends or deep-merges into,
a scalar inside a list a layer appends to (a list item no layer reaches is
carried), a value the schema does not show valid where it sits
(``compiler.validate.edits``) or that is or holds a secret field, a render
error, a finding of the secrets guard, the literal-Jinja check or the layout
check, policies in the repository, or a record of any other shape. The secrets guard's
``check_rendered`` runs on every module as in a compile, replaced scalars included.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain, pairwise
from json.encoder import encode_basestring
from operator import lt
from typing import TYPE_CHECKING, cast

from compiler.bundle.canonical import EncodingCache, Members, canonical_text
from compiler.compile.inherit import Reach, reach
from compiler.errors import InputError
from compiler.incremental.exact import exact_digest
from compiler.jsonpath import JsonPath
from compiler.jsontypes import JSONObject, JSONValue
from compiler.load.yaml import Value
from compiler.render.jinja import Renderer

if TYPE_CHECKING:
    from compiler.compile.repository import Repository
    from compiler.compile.types import CompileResult, GuardCache, LayerDoc, TargetStack
    from compiler.diagnostics import Diagnostic
    from compiler.render.jinja import TemplatePlan

_DECODER = json.JSONDecoder()
# What a build keeps under the carry key until the target's variables change: that a previous result
# exists. The next variable-only change compiles the target and keeps a whole record.
STUB: JSONObject = {"stub": True}


def layer_digest(layer: LayerDoc) -> str | None:
    """SHA-256 of a plain layer's ``modules`` (merge tags included), None when it cannot be written exactly."""
    return exact_digest(layer.modules)


def layer_digests(stack: TargetStack) -> dict[str, str] | None:
    """{path: ``layer_digest``} of the stack's plain layers; None when one cannot be written."""
    out: dict[str, str] = {}
    for layer in stack.layers:
        if layer.ref.secrets:
            continue
        d = _DIGESTS.get(id(layer))
        if d is None or d[0] is not layer:
            if len(_DIGESTS) > _MAX_KEPT:
                _DIGESTS.clear()  # a process that compiles many repositories (the tests) holds no more
            digest = layer_digest(layer)
            if digest is None:
                return None
            d = _DIGESTS[id(layer)] = (layer, digest)
        out[layer.ref.path] = d[1]
    return out


_DIGESTS: dict[int, tuple[LayerDoc, str]] = {}  # per process: the parsed layers live as long
_MAX_KEPT = 10_000


def fingerprints(variables: dict[str, Value]) -> dict[str, str]:
    """SHA-256 of each variable's render fingerprint: what decides the scalars that read it."""
    renderer = Renderer(variables, {})
    out: dict[str, str] = {}
    for name in variables:
        text = renderer.fingerprint(name)
        digest = _PRINTS.get(text)
        if digest is None:
            digest = hashlib.sha256(text.encode()).hexdigest()
            if len(text) <= _SHORT:  # most targets share most variables: hashed once per process
                if len(_PRINTS) > _MAX_KEPT:
                    _PRINTS.clear()
                _PRINTS[text] = digest
        out[name] = digest
    return out


_PRINTS: dict[str, str] = {}  # fingerprint -> its SHA-256, for short ones
_SHORT = 256


def _patches(stack: TargetStack, module: str) -> list[Value]:
    return [layer.modules[module] for layer in stack.layers if module in layer.modules]


def _single(plans: Sequence[TemplatePlan]) -> TemplatePlan | None:
    """The module's one untagged template; None when it has ``extends`` or merge tags (not carried)."""
    if len(plans) > 1 or plans[0].document.tagged:
        return None
    return plans[0]


def make_record(
    repo: Repository,
    result: CompileResult,
    text: str,
    cache: EncodingCache,
    members: Members,
    env: tuple[TargetStack, dict[tuple[str, JsonPath], Reach]] | None = None,
) -> JSONObject | None:
    """The record of ``result`` (modules' canonical ``text``) without its blob digest; None: not carried.

    ``env``: the environment's stack and its reach of each template path (``EnvBase.reach``), lent.
    """
    if result.diagnostics or result.secrets:
        return None
    locate = _Locator(cast("dict[str, JSONValue]", result.modules), cache, members)
    reach_of = _reacher(result.stack, env)
    slots: dict[str, JSONValue] = {}
    closed: list[JSONValue] = []
    for module in repo.modules:
        plans = repo.templates(module)
        if not plans:
            continue
        plan = _single(plans)
        rows: list[tuple[int, int, int]] | None = [] if plan is not None else None
        if plan is not None and rows is not None:
            for i, (path, expr) in enumerate(plan.exprs.items()):
                if not expr.names:
                    continue
                how = reach_of(module, path)
                where = locate((module, *path)) if how == "free" else None
                if how == "complex" or (how == "free" and where is None):
                    rows = None
                    break
                if where is not None:
                    start, end, value = where
                    if text[start:end] != value or not _slot_ok(text, start, end, path[-1] if path else module):
                        return None  # the text is not where the values say: carry nothing
                    rows.append((start, end, i))
        if rows is None:
            closed.append(module)
        elif rows:
            rows.sort()
            slots[module] = [[r[2] for r in rows], [r[0] for r in rows], [r[1] for r in rows]]
    return {"vars": dict(fingerprints(result.stack.variables)), "slots": slots, "closed": closed}


def _reacher(
    stack: TargetStack, env: tuple[TargetStack, dict[tuple[str, JsonPath], Reach]] | None
) -> Callable[[str, JsonPath], Reach]:
    """``reach`` through every layer of ``stack``; the environment's part from its cache when the
    stack starts with the environment's layers (a tenant target's does: ``compiler.compile.inherit``)."""
    n = len(env[0].layers) if env is not None else 0
    if (
        env is None
        or len(stack.layers) < n
        or any(a is not b for a, b in zip(stack.layers, env[0].layers, strict=False))
    ):

        def whole(module: str, path: JsonPath) -> Reach:
            return reach(_patches(stack, module), path)

        return whole
    env_reach = env[1]
    env_layers = env[0].layers
    own = stack.layers[n:]

    def split(module: str, path: JsonPath) -> Reach:
        how = env_reach.get((module, path))
        if how is None:
            how = env_reach[(module, path)] = reach(
                [layer.modules[module] for layer in env_layers if module in layer.modules], path
            )
        if how != "free":
            return how
        patches = [layer.modules[module] for layer in own if module in layer.modules]
        return reach(patches, path) if patches else "free"

    return split


_SHARED: dict[int, tuple[object, dict[str | int, int]]] = {}  # offsets of the maps in the encoding cache


@dataclass(slots=True)
class _Locator:
    """Where the text of the value at a path sits in the canonical text of ``root``."""

    root: dict[str, JSONValue]
    cache: EncodingCache
    members: Members
    _offsets: dict[int, tuple[object, dict[str | int, int]]] = field(default_factory=dict)

    def __call__(self, path: JsonPath) -> tuple[int, int, str] | None:
        node: JSONValue = self.root
        pos = 0
        for key in path:
            offsets = self._member_offsets(node)
            if offsets is None or key not in offsets:
                return None
            pos += offsets[key]
            node = node[key]  # type: ignore[index]
        value = self._text(node)
        return pos, pos + len(value), value

    def _text(self, node: JSONValue) -> str:
        if type(node) is dict:
            hit = self.cache.get(id(node))
            if hit is not None and hit[0] is node:
                return hit[1]
            parts = self.members.get(id(node))
            if parts is not None and parts[0] is node:
                return "{" + ",".join(parts[1].values()) + "}"
        return canonical_text(node)

    def _member_offsets(self, node: JSONValue) -> dict[str | int, int] | None:
        hit = self._offsets.get(id(node))
        if hit is not None and hit[0] is node:
            return hit[1]
        shared = self.cache.get(id(node))
        if shared is not None and shared[0] is node:  # an environment's map: the same for all its targets
            if len(_SHARED) > _MAX_KEPT * 10:
                _SHARED.clear()
            hit = _SHARED.get(id(node))
            if hit is not None and hit[0] is node:
                return hit[1]
        out: dict[str | int, int] = {}
        pos = 1
        if type(node) is dict:
            parts = self._parts(node)
            if parts is None:
                return None
            for k, t in parts.items():
                out[k] = pos + len(encode_basestring(k)) + 1
                pos += len(t) + 1
        elif type(node) is list:
            for i, item in enumerate(node):
                out[i] = pos
                pos += len(self._text(item)) + 1
        else:
            return None
        (_SHARED if shared is not None and shared[0] is node else self._offsets)[id(node)] = (node, out)
        return out

    def _parts(self, node: dict[str, JSONValue]) -> dict[str, str] | None:
        parts = self.members.get(id(node))
        if parts is not None and parts[0] is node:
            return parts[1]
        hit = self.cache.get(id(node))
        if hit is not None and hit[0] is node:
            return hit[2]
        if not all(type(k) is str for k in node):
            return None
        return {k: encode_basestring(k) + ":" + self._text(node[k]) for k in sorted(node)}


def _slot_ok(text: str, start: int, end: int, key: str | int) -> bool:
    """Whether ``text[start:end]`` is one JSON value, a member named ``key`` or a list item."""
    if not 0 < start < end < len(text):
        return False
    if isinstance(key, str):
        head = encode_basestring(key) + ":"
        if start - len(head) < 1 or not text.startswith(head, start - len(head)):
            return False
        if text[start - len(head) - 1] not in "{,":
            return False
    elif text[start - 1] not in "[,":
        return False
    try:
        _, stop = _DECODER.raw_decode(text, start)
    except (ValueError, RecursionError):  # RecursionError: a slot nested past json's limit (attacker F1)
        return False
    return stop == end and text[end] in ",}]"


@dataclass(frozen=True, slots=True)
class Carried:
    """A target re-rendered from its record: the new modules' text and the record that goes with it."""

    text: str
    record: JSONObject


@dataclass(frozen=True, slots=True)
class Checks:
    """What a compile checks beyond the schema that carrying must check too, with their caches."""

    layout: list[Diagnostic]  # the layout check's findings (about the repository)
    jinja: dict[str, list[Diagnostic]]  # layer path -> literal Jinja in it
    guard: GuardCache


def carry(
    repo: Repository, stack: TargetStack, renderer: Renderer, record: JSONObject, text: str, checks: Checks
) -> Carried | None:
    """The target of ``stack`` from its previous ``record`` and modules ``text``; None: compile it in full."""
    from compiler.validate import literal_jinja, secrets_guard

    old, slots, closed = _read(record)
    if old is None or slots is None or closed is None:
        return None
    new = fingerprints(stack.variables)
    changed = {n for n in new.keys() | old.keys() if new.get(n) != old.get(n)}
    edits: list[tuple[int, int, str]] = []
    for module in repo.modules:
        plans = repo.templates(module)
        readers = {p for n in changed for plan_ in plans for p in plan_.readers.get(n, ())}
        if not readers:
            continue
        plan = _single(plans)
        if plan is None or module in closed:
            return None
        columns = slots.get(module)
        rows = {} if columns is None else dict(zip(columns[0], range(len(columns[0])), strict=True))
        index = {path: i for i, path in enumerate(plan.exprs)}
        patches = _patches(stack, module)
        schema = repo.schema(module)
        for path in sorted(readers, key=lambda p: index[p]):
            how = reach(patches, path)
            row = rows.get(index[path])  # the slot's row in the module's columns
            if how == "complex" or (how == "free") != (row is not None):
                return None  # a record that does not say what the layers say now
            if row is None:
                continue  # a layer sets the value: the variable does not show
            try:
                value = renderer.value_at(plan, path)
                new_text = canonical_text(value)  # type: ignore[arg-type]
            except (InputError, ValueError):
                return None
            assert columns is not None
            start, end = columns[1][row], columns[2][row]
            if not _slot_ok(text, start, end, path[-1] if path else module):
                return None
            if not schema.valid_at(path, value):
                return None
            edits.append((start, end, new_text))
    found = list(checks.layout)
    for layer in stack.layers:
        got = checks.jinja.get(layer.ref.path)
        if got is None:
            got = checks.jinja[layer.ref.path] = literal_jinja.check_layer(layer)
        found += got
    for module in repo.modules:
        found += secrets_guard.check_stack(repo, stack, module, checks.guard)
        # a map or list an expression renders into an x-secret field, even one a layer then replaces
        # (whose scalar is not rendered again above): a clean compile refuses it, so must this
        found += secrets_guard.check_rendered(repo, stack, module, renderer)
    if found:
        return None
    edits.sort()
    if any(a[1] > b[0] for a, b in pairwise(edits)):
        return None
    record_new: JSONObject = {"vars": dict(new), "slots": _shifted(slots, edits), "closed": list(closed)}
    return Carried(_splice(text, edits), record_new)


Slots = dict[str, tuple[list[int], list[int], list[int]]]  # module -> (expression indexes, starts, ends), by start


def _read(record: JSONObject) -> tuple[dict[str, str] | None, Slots | None, list[str] | None]:
    """The record's variables, slots by module, and closed modules; None parts: malformed."""
    raw_vars, raw_slots, raw_closed = record.get("vars"), record.get("slots"), record.get("closed")
    if not isinstance(raw_vars, dict) or not set(map(type, raw_vars.values())) <= {str}:
        return None, None, None
    if not isinstance(raw_closed, list) or not set(map(type, raw_closed)) <= {str}:
        return None, None, None
    if not isinstance(raw_slots, dict):
        return None, None, None
    slots: Slots = {}
    for module, columns in raw_slots.items():
        if not (isinstance(columns, list) and len(columns) == 3 and all(type(c) is list for c in columns)):
            return None, None, None
        index, starts, ends = cast("tuple[list[int], list[int], list[int]]", tuple(columns))
        if not (len(index) == len(starts) == len(ends)) or not set(map(type, chain(index, starts, ends))) <= {int}:
            return None, None, None
        if not all(map(lt, starts, starts[1:])):
            return None, None, None  # in order, one slot per start
        slots[module] = (index, starts, ends)
    return cast("dict[str, str]", raw_vars), slots, cast("list[str]", raw_closed)


def _splice(text: str, edits: Sequence[tuple[int, int, str]]) -> str:
    pieces: list[str] = []
    pos = 0
    for start, end, new in edits:
        pieces += [text[pos:start], new]
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


def _shifted(slots: Slots, edits: Sequence[tuple[int, int, str]]) -> JSONObject:
    """The slots' positions in the spliced text (``edits`` sorted, not overlapping, each at a slot's start).

    A slot moves by the edits before it; the slots between two edits move alike, so each run of
    them is shifted as one slice (a module holds ~40 slots and one or two edits).
    """
    at = [e[0] for e in edits]
    deltas = [0]
    for start, end, new in edits:
        deltas.append(deltas[-1] + len(new) - (end - start))
    out: JSONObject = {}
    for module, (index, starts, ends) in slots.items():
        moved: list[int] = []
        ends_moved: list[int] = []
        n = len(starts)
        j = 0
        k = bisect_left(at, starts[0]) if starts else 0  # the edits before the module's first slot
        while j < n:
            stop = bisect_left(starts, at[k], j) if k < len(at) else n
            d = deltas[k]
            moved += [x + d for x in starts[j:stop]]
            ends_moved += [x + d for x in ends[j:stop]]
            j = stop
            if j < n and starts[j] == at[k]:  # the slot rewritten: it ends where its new text does
                moved.append(starts[j] + d)
                ends_moved.append(starts[j] + d + len(edits[k][2]))
                j += 1
            k += 1
        out[module] = [
            cast("list[JSONValue]", index),
            cast("list[JSONValue]", moved),
            cast("list[JSONValue]", ends_moved),
        ]
    return out
