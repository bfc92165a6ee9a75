"""Jinja2 expressions in template scalars (README "How it works"), sandboxed and strict.

A scalar that is exactly one ``{{ expression }}`` keeps the expression's native
type; any other text renders to a string. Rendering runs in Jinja's immutable
sandbox with ``StrictUndefined``: no attribute access to Python internals, no
mutation, no file or environment access, and an undefined variable is an error
naming the template's file:line.

A template is planned once per process (``plan_template``): its static tree is
shared by every target, and only the scalars holding Jinja are evaluated per
target, with each result cached by the values of the variables it reads. The
rendered tree shares every static subtree (copy-on-write), so rendering a
500-key template for 200 targets costs the Jinja scalars, not the tree.

Every rendering of a template is bounded (issue 10 §8; README "Limits"), and
what passes a bound is an input error at the Jinja scalar's file:line:

- steps (deterministic): each loop iteration, each element ``range`` makes,
  each macro call and each ``lipsum`` word counts one step, at most
  ``MAX_STEPS`` per Jinja scalar (its outcome is cached by its source and the
  values it reads, so it must not depend on what other scalars ran before it);
- sizes (deterministic): every string, and every list, tuple and dict a
  template builds (literals, operators, filters, globals, methods), counted
  with everything inside it as if shared parts were copies, at most
  ``MAX_OUTPUT_CHARS`` characters or elements: no single value handed to a C
  function (``str``, ``tojson``, ``==``) is bigger than that;
- nesting (deterministic): macro calls at most ``MAX_MACRO_DEPTH`` deep,
  brackets and blocks in a scalar at most ``MAX_NESTING`` deep, values at most
  ``MAX_VALUE_DEPTH`` deep;
- CPU time and memory (backstops for work inside one C call, which no
  counter sees): ``MAX_CPU_SECONDS`` of process CPU time and
  ``MAX_MEMORY_BYTES`` of address space above what the process used when the
  template started, per template. They need the main thread of a
  single-threaded process (the CLI, and each forked compile worker).

Nothing is evaluated while compiling (Jinja's constant folding is off), and a
scalar's error is cached like its value, so a template that passes a bound
pays for it once per process, not once per target; a value or error the cache
holds is read without setting the bounds up (nothing runs).

Most scalars are plain (``{{ name }}`` in text, key look-ups ``{{ a.b['c'] }}``,
``default(literal)``, ``upper``, ``lower``: ``_plain_expr``) and are evaluated here; Jinja itself, the sandbox and
the compiling, is ``compiler.render._sandbox``, loaded with the first scalar that
is not plain (issue 14 §1: a validate of plain templates starts without Jinja).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeAlias

from compiler.errors import InputError
from compiler.jsonpath import JsonPath
from compiler.load.yaml import Document, Tagged, Value

MAX_OUTPUT_CHARS = 4 * 1024 * 1024
MAX_STEPS = 1_000_000
MAX_MACRO_DEPTH = 50
MAX_NESTING = 32
MAX_VALUE_DEPTH = 100  # containers in a value a template builds (YAML values nest at most 64)
MAX_CPU_SECONDS = 1.5
MAX_MEMORY_BYTES = 128 * 1024 * 1024
_MAX_INT_BITS = 14_000  # about 4,200 digits: Python's int/str conversion limit is 4,300


class TemplateFailure(Exception):
    """A scalar failed in Jinja: its ``TemplateError`` (``message`` as Jinja words it), or a bound.

    ``undefined`` is the name of the variable when the failure is a name no layer defines
    (``{{ missing }}``), known by the error's type, not its words (issue 14 §5).
    """

    def __init__(self, message: str, *, undefined: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.undefined = undefined


class LimitError(TemplateFailure):
    """A template passed one of the bounds of its rendering."""


# The sandbox's globals (``compiler.render._sandbox`` checks it): a name a scalar reads that no
# variable defines is one of these in Jinja, so a plain scalar reading one that no variable
# shadows is left to Jinja.
GLOBALS = frozenset({"range", "lipsum", "dict", "cycler", "joiner", "namespace", "_llmcc_loop"})


@dataclass(slots=True)
class _Budget:
    steps: int = 0
    depth: int = 0
    # id -> (container, weight) of the heavy containers weighed so far (kept alive: ids stay unique).
    weights: dict[int, tuple[object, int, int]] = field(default_factory=dict)


_BUDGET = _Budget()


def _charge(steps: int) -> None:
    _BUDGET.steps += steps
    if _BUDGET.steps > MAX_STEPS:
        raise LimitError(f"rendering takes over {MAX_STEPS:,} steps (loop iterations, range elements, macro calls)")


_CONTAINERS = (list, tuple, dict)
_SCALARS = frozenset({int, float, bool, type(None)})
_MEMO_FROM = 1024  # containers lighter than this are weighed again rather than remembered


def _weight(value: Any, limit: int) -> int:  # noqa: ANN401
    """Elements of ``value`` counted with the elements (or characters) of everything inside it,
    as if shared sublists were copies; a result over ``limit`` means "over"."""
    return _measure(value, limit)[0]


def _measure(value: Any, limit: int) -> tuple[int, int]:  # noqa: ANN401
    """``value``'s weight (``_weight``) and the depth of its containers.

    A container shared many times (``[x, x]`` doubled in a loop) is measured once per
    template rendering; a flat list costs one pass in C (``map(type, ...)``).

    Raises:
        LimitError: containers nested deeper than ``MAX_VALUE_DEPTH``.
    """
    if isinstance(value, str):
        return len(value), 0
    if not isinstance(value, _CONTAINERS):
        return 1, 0
    known = _BUDGET.weights.get(id(value))
    if known is not None and known[0] is value:
        return known[1], known[2]
    items = list(value.values()) if isinstance(value, dict) else value
    total, depth = len(items), 1
    kinds = set(map(type, items))
    if kinds == {str}:
        total += sum(map(len, items))  # in C
    elif not kinds <= _SCALARS:
        for item in items:
            if isinstance(item, (str, *_CONTAINERS)):
                weight, inner = _measure(item, limit)
                total += weight
                depth = max(depth, inner + 1)
                if depth > MAX_VALUE_DEPTH:
                    raise LimitError(f"a value nested deeper than {MAX_VALUE_DEPTH} levels")
                if total > limit:
                    break
    if total >= _MEMO_FROM or depth >= _MEMO_FROM // 32:
        _BUDGET.weights[id(value)] = (value, total, depth)
    return total, depth


def _built(value: Any) -> Any:  # noqa: ANN401
    """``value``, if it is not a container heavier than ``MAX_OUTPUT_CHARS`` (see ``_weight``).

    Every list, tuple and dict a template builds passes here, so no single value
    it can hand to a C function (``str``, ``tojson``, ``==``) is bigger than that.
    """
    if isinstance(value, _CONTAINERS) and _weight(value, MAX_OUTPUT_CHARS) > MAX_OUTPUT_CHARS:
        raise LimitError("result too large")
    return value


@dataclass(frozen=True, slots=True)
class _Expr:
    """One Jinja scalar, compiled (or known to compile: ``resolve``)."""

    source: str
    native: bool
    # The names its cache key fingerprints: for a plain scalar those it reads, for one Jinja
    # compiles every name of its source (``key_names``), a superset of those it reads.
    names: tuple[str, ...]
    run: Callable[[Mapping[str, Any]], Any]
    plain: bool = False  # evaluated without Jinja (``_plain_expr``): no loop, call or macro
    reads: tuple[str, ...] = ()  # the names it reads (Jinja's parse): what ``llmcc explain`` shows
    # A scalar an earlier run compiled (``_deferred``): its Jinja compile, done on first use.
    resolve: Callable[[], _Expr] | None = None
    kept: bool = True  # whether a later run may take it as known (``compiled_expressions``)


@dataclass(slots=True)
class TemplatePlan:
    """A template document with its Jinja scalars located and compiled."""

    document: Document
    static: Value
    # A tree mirroring ``static`` that holds only the branches leading to Jinja scalars.
    slots: dict[str | int, Any] = field(default_factory=dict)
    exprs: dict[JsonPath, _Expr] = field(default_factory=dict)
    # variable name -> paths of the scalars that read it
    readers: dict[str, list[JsonPath]] = field(default_factory=dict)
    # a set of changed variables -> the paths of the scalars that read one, sorted (compile.inherit)
    changed_slots: dict[frozenset[str], list[JsonPath]] = field(default_factory=dict)
    plain: bool = False  # every Jinja scalar is plain: rendering needs no bounds (``Renderer.render``)
    # False for a template that sets an x-secret field (a plaintext secret the secrets guard refuses):
    # what its scalars render is never written to disk (``UNKEPT``).
    keep: bool = True


def plan_template(doc: Document, body: Value) -> TemplatePlan:
    """Compile every Jinja scalar of ``body`` (the template without ``extends``)."""
    plan = TemplatePlan(document=doc, static=body)
    _collect(plan, body, (), plan.slots)
    for path, expr in plan.exprs.items():
        for name in expr.names:
            plan.readers.setdefault(name, []).append(path)
    plan.plain = all(expr.plain for expr in plan.exprs.values())
    return plan


def _collect(plan: TemplatePlan, value: Value, path: JsonPath, slots: dict[str | int, Any]) -> None:
    if isinstance(value, Tagged):
        sub: dict[str | int, Any] = {}
        _collect(plan, value.value, path, sub)
        if sub:
            raise InputError(f"{value.origin.location()}: Jinja inside a tagged node is not supported")
        return
    items: Iterator[tuple[str | int, Value]]
    if isinstance(value, dict):
        items = iter(value.items())
    elif isinstance(value, list):
        items = iter(enumerate(value))
    else:
        if isinstance(value, str) and ("{{" in value or "{%" in value or "{#" in value):
            plan.exprs[path] = _compile(value, doc=plan.document, path=path)
            slots[path[-1] if path else ""] = None
        return
    for key, child in items:
        if isinstance(key, str) and ("{{" in key or "{%" in key or "{#" in key):
            where = plan.document.origin((*path, key)).location()
            raise InputError(f"{where}: Jinja syntax in a key is never rendered (only string values of templates are)")
        if isinstance(child, (dict, list, Tagged)):
            sub = {}
            _collect(plan, child, (*path, key), sub)
            if sub and not isinstance(child, Tagged):
                slots[key] = sub
        elif isinstance(child, str) and ("{{" in child or "{%" in child or "{#" in child):
            # a leaf, inline: most of a template's nodes are, and a call and a path tuple each cost
            # more than the test (planning the 20 xlarge templates, 14,848 nodes: issue 14 §2)
            at = (*path, key)
            plan.exprs[at] = _compile(child, doc=plan.document, path=at)
            slots[key] = None


_COMPILED: dict[str, _Expr] = {}
# Sources of scalars Jinja compiled in an earlier run. The result cache keeps them with the rendered
# values (compiler.incremental.parsed), so planning a template takes these from it and Jinja compiles
# one only when it renders (a value not in the cache). Only that it compiled is taken from the cache:
# the names its key reads come from its source (``key_names``), its type from the compile.
_KNOWN: set[str] = set()


def _compile(source: str, *, doc: Document, path: JsonPath) -> _Expr:
    expr = _COMPILED.get(source)
    if expr is None:
        # The location is for errors: a plain scalar needs it only if it falls back to Jinja, so a
        # template of plain scalars never builds its position table (issue 14 §3).
        expr = _plain_expr(source, partial(_location, doc, path))
        if expr is None:
            where = doc.origin(path).location()
            names = key_names(source) if source in _KNOWN else None
            expr = _compile_jinja(source, where=where) if names is None else _deferred(source, where, names)
        _COMPILED[source] = expr
    return expr


def _location(doc: Document, path: JsonPath) -> str:
    return doc.origin(path).location()


def _compile_jinja(source: str, *, where: str) -> _Expr:
    """The scalar compiled by Jinja, its key reading ``key_names(source)``: the same names as when a
    later run takes it as known (``_deferred``). Where those miss a name Jinja's parse found (a
    source the tokenizer does not follow), the key reads both and no later run takes it as known."""
    expr = _compile_source(source, where=where)
    names = key_names(source)
    if names is not None and set(expr.names) <= set(names):
        return replace(expr, names=names, reads=expr.names)
    return replace(expr, names=tuple(sorted({*expr.names, *(names or ())})), reads=expr.names, kept=False)


def _deferred(source: str, where: str, names: tuple[str, ...]) -> _Expr:
    """A scalar an earlier run compiled (``_KNOWN``), compiled by Jinja when it first runs.

    Raises (when it runs) InputError: the source does not compile after all; RuntimeError (a bug, exit 70): its
    names (``key_names``) miss one Jinja's parse found, which no run stores as known.
    """
    compiled: list[_Expr] = []

    def resolve() -> _Expr:
        if not compiled:
            expr = _compile_jinja(source, where=where)
            if expr.names != names:
                _KNOWN.discard(source)
                raise RuntimeError(f"{where}: the cache key of this scalar misses a name it reads")  # a bug: exit 70
            compiled.append(expr)
        return compiled[0]

    def run(variables: Mapping[str, Any]) -> Any:  # noqa: ANN401
        return resolve().run(variables)

    return _Expr(source, False, names, run, resolve=resolve)


def names_read(expr: _Expr) -> tuple[str, ...]:
    """The variables ``expr`` reads (Jinja's parse; a known scalar is compiled for it)."""
    return expr.resolve().reads if expr.resolve is not None else expr.reads


def compiled_expressions() -> list[str]:
    """Sources of the Jinja scalars this process planned that a later run may take as known."""
    return [s for s, e in _COMPILED.items() if not e.plain and e.kept]


def learn_expressions(known: Iterable[str]) -> None:
    """Take the sources of scalars an earlier run compiled (``compiled_expressions`` of the same renderer's code)."""
    _KNOWN.update(known)


# Names for the cache key of a scalar Jinja compiles, from its source alone (issue 14 §2: a key
# read from the cache could leave out a name, and the stale value would be served). Jinja's lexer,
# followed far enough to know which text is data and which is a string literal; every identifier
# in a tag or ``{{ }}`` outside string literals (names, attributes, filters, keywords) counts: a
# superset of the names Jinja's parse loads. A source this does not follow returns None.
_RAW = re.compile(r"\{%[-+]?\s*raw")  # raw blocks: not followed (the cache keeps no such scalar as known)
_OPENS = re.compile(r"\{\{[-+]?|\{%[-+]?|\{#")
_ENDS = {"{{": re.compile(r"-?\}\}"), "{%": re.compile(r"[-+]?%\}")}
_STRING = re.compile(r"'[^'\\]*(?:\\.[^'\\]*)*'" r'|"[^"\\]*(?:\\.[^"\\]*)*"', re.S)  # Jinja's string_re
_WORD = re.compile(r"[^\s!-/:-@\[-^`{-~]+")  # any run without ASCII punctuation or space: names and numbers
_PAIRS = {")": "(", "]": "[", "}": "{"}


def key_names(source: str) -> tuple[str, ...] | None:
    """Every identifier in the tags and ``{{ }}`` of ``source`` outside string literals, sorted; None
    when the source has a raw block or does not lex as Jinja's lexer does (then Jinja reports it)."""
    if _RAW.search(source):
        return None
    names: set[str] = set()
    pos = 0
    while (m := _OPENS.search(source, pos)) is not None:
        if m.group() == "{#":  # a comment ends at the first #}
            pos = source.find("#}", m.end()) + 2
            if pos == 1:
                return None
            continue
        end = _tag_names(source, m.end(), _ENDS[m.group()[:2]], names)
        if end is None:
            return None
        pos = end
    return tuple(sorted(names))


def _tag_names(source: str, pos: int, end: re.Pattern[str], names: set[str]) -> int | None:
    """Add the identifiers of the tag from ``pos`` to ``names``; where it ends, or None."""
    brackets: list[str] = []
    while pos < len(source):
        if not brackets and (m := end.match(source, pos)) is not None:  # Jinja: no end inside brackets
            return m.end()
        c = source[pos]
        if c in "'\"":
            m = _STRING.match(source, pos)
            if m is None:
                return None
            pos = m.end()
        elif c in "([{":
            brackets.append(c)
            pos += 1
        elif c in ")]}":
            if not brackets or brackets.pop() != _PAIRS[c]:
                return None
            pos += 1
        elif (m := _WORD.match(source, pos)) is not None:
            word = m.group()
            # A name, or a number a name may follow (``1e5x``, ``0xfg``): each suffix that is an identifier.
            names.update(
                word[i:] for i in range(len(word)) if word[i:].isidentifier() and (i == 0 or not word.isidentifier())
            )
            pos = m.end()
        else:
            pos += 1
    return None


# A plain scalar: text (no CR, no {{, {% or {#), and expressions ``{{ name }}``, each followed by
# key look-ups ``.key`` or ``['key']`` and filtered by ``default(literal)``, ``upper`` or ``lower``
# at most. Most template scalars are plain, and compiling one with Jinja costs about a
# millisecond (issue 14 §1: validate's start), so a plain scalar is evaluated here, the way Jinja
# evaluates it; whatever this does not settle (an undefined name without a default, a key the
# value does not hold, a value that is not a map, a result over the size bound) is compiled with
# Jinja and rendered by it, which gives the same value or the same error
# (tests/core/test_render_plain.py).
_PLAIN_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# A key in brackets: a string literal of printable ASCII without quotes, backslash, brackets,
# braces, parentheses or bar (Jinja reads such a literal as its characters).
_PLAIN_KEY = r"""\[(?:'[ !#-&*-Z^-z~]*'|"[ !#-&*-Z^-z~]*")\]"""
_PLAIN_EXPR = re.compile(
    r"\{\{ *(" + _PLAIN_NAME + r")((?:\." + _PLAIN_NAME + "|" + _PLAIN_KEY + r")*)"
    r"((?: *\| *(?:upper|lower|default\( *[^()]* *\)))*) *\}\}"
)
_PLAIN_STEP = re.compile(r"\.(" + _PLAIN_NAME + r")|\[['\"](.*?)['\"]\]")
_PLAIN_FILTER = re.compile(r" *\| *(upper|lower|default\( *([^()]*?) *\))")
_PLAIN_TEXT = re.compile(r"(?:[^{\r]|\{(?![{%#]))*")  # what Jinja's lexer keeps as data, CR aside
# Jinja's literals (true, none), its operators (not), and its tests and keywords: left to Jinja.
_NOT_PLAIN = frozenset({"true", "false", "none", "True", "False", "None", "not", "and", "or", "in", "is", "if", "else"})
_MISSING = object()
_Filter = tuple[str, Any]
# One look-up: (True, key) for ``['key']``, read as an item first; (False, key) for ``.key``,
# read as an attribute first (a key that names a ``dict`` attribute is left to Jinja).
_Step = tuple[bool, str]


def _plain_literal(text: str) -> tuple[bool, Any]:
    """(True, value) for a literal of the plain form; (False, None) for any other."""
    if re.fullmatch(r"0|[1-9][0-9]{0,17}", text):
        return True, int(text)
    if re.fullmatch(r"[0-9]{1,17}\.[0-9]{1,17}", text):
        return True, float(text)
    if re.fullmatch(r"'[ -&(-\[\]-z~]*'|\"[ !#-\[\]-z~]*\"", text):  # printable ASCII; no backslash, brace, bar, quote
        return True, text[1:-1]
    constants = {"true": True, "True": True, "false": False, "False": False, "none": None, "None": None}
    return (True, constants[text]) if text in constants else (False, None)


def _plain_steps(text: str) -> tuple[_Step, ...] | None:
    """The look-ups after a name (``.a['b']``), or None when one of them is left to Jinja."""
    steps: list[_Step] = []
    for m in _PLAIN_STEP.finditer(text):
        if m.group(1) is not None:
            if m.group(1) in _NOT_PLAIN or hasattr(dict, m.group(1)):  # items, get, __class__: an attribute
                return None
            steps.append((False, m.group(1)))
        else:
            steps.append((True, m.group(2)))
    return tuple(steps)


def _look_up(value: Any, steps: tuple[_Step, ...]) -> Any:  # noqa: ANN401
    """``value`` followed down ``steps`` through maps; ``_MISSING`` where Jinja would do anything
    else (a key the map lacks, a value that is not a ``dict``: an attribute, an error)."""
    for _, key in steps:
        if type(value) is not dict:
            return _MISSING
        value = value.get(key, _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


def _plain_expr(source: str, where: str | Callable[[], str]) -> _Expr | None:
    """The scalar as a plain expression, or None when only Jinja can compile it.

    ``where``: the scalar's location, or what computes it (only a fallback to Jinja asks).
    """
    pieces: list[str | tuple[str, tuple[_Step, ...], tuple[_Filter, ...]]] = []
    pos = 0
    while pos < len(source):
        text = _PLAIN_TEXT.match(source, pos)
        assert text is not None  # the pattern matches the empty string
        if text.group():
            pieces.append(text.group())
        pos = text.end()
        if pos == len(source):
            break
        m = _PLAIN_EXPR.match(source, pos)
        if m is None or m.group(1) in _NOT_PLAIN:
            return None
        steps = _plain_steps(m.group(2))
        if steps is None:
            return None
        filters: list[_Filter] = []
        for f in _PLAIN_FILTER.finditer(m.group(3)):
            if f.group(1) in ("upper", "lower"):
                filters.append((f.group(1), None))
                continue
            ok, literal = _plain_literal(f.group(2))
            if not ok:
                return None
            filters.append(("default", literal))
        pieces.append((m.group(1), steps, tuple(filters)))
        pos = m.end()
    exprs = [p for p in pieces if isinstance(p, tuple)]
    if not exprs:
        return None
    native = len(pieces) == 1
    jinja: list[_Expr] = []

    def by_jinja(variables: Mapping[str, Any]) -> Any:  # noqa: ANN401
        if not jinja:
            jinja.append(_compile_source(source, where=where if isinstance(where, str) else where()))
        return jinja[0].run(variables)

    def run(variables: Mapping[str, Any]) -> Any:  # noqa: ANN401
        out: list[str] = []
        for piece in pieces:
            if isinstance(piece, str):
                out.append(piece)
                continue
            name, steps, filters = piece
            value = variables.get(name, _MISSING)
            if value is _MISSING and name in GLOBALS:  # Jinja's range, namespace, ...: a variable shadows it
                return by_jinja(variables)
            if steps:
                value = _look_up(value, steps)
                if value is _MISSING:  # an undefined name or key, an attribute, an error: Jinja's
                    return by_jinja(variables)
            for kind, literal in filters:
                if kind == "default":
                    value = _built(literal if value is _MISSING else value)  # a filter's result passes _built
                elif value is _MISSING:
                    return by_jinja(variables)
                else:  # Jinja's upper and lower: soft_str, then the str method
                    value = getattr(value if isinstance(value, str) else str(value), kind)()
            if value is _MISSING:
                return by_jinja(variables)
            if native:
                return value
            out.append(str(value))
        text = "".join(out)
        return by_jinja(variables) if len(text) > MAX_OUTPUT_CHARS else text

    names = tuple(sorted({name for name, _, _ in exprs}))
    return _Expr(source, native, names, run, plain=True, reads=names)


def _compile_source(source: str, *, where: str) -> _Expr:
    """The scalar compiled with Jinja, in the sandbox (``compiler.render._sandbox``, loaded on first use)."""
    from compiler.render import _sandbox

    return _sandbox.compile_source(source, where=where)


@dataclass(slots=True)
class Renderer:
    """Renders planned templates for one target's variables, caching by variable values."""

    variables: Mapping[str, Any]
    cache: RenderCache
    _prints: dict[str, str] = field(default_factory=dict)

    def fingerprint(self, name: str) -> str:
        fp = self._prints.get(name)
        if fp is None:
            fp = "\0" if name not in self.variables else _fingerprint(self.variables[name])
            self._prints[name] = fp
        return fp

    def render(self, plan: TemplatePlan) -> Value:
        """The template rendered, within the bounds of one template's rendering (module docstring).

        Raises:
            InputError: a scalar fails or passes a bound (at its file:line).
        """
        if not plan.exprs:
            return plan.static
        if plan.plain:  # a plain scalar does work linear in its variables, even when Jinja renders it
            return self._render_node(plan, plan.static, (), plan.slots)
        with bounded(plan.document.path):
            return self._render_node(plan, plan.static, (), plan.slots)

    def value_at(self, plan: TemplatePlan, path: JsonPath) -> Value:
        """The rendered value of the one Jinja scalar at ``path``, bounded like a template.

        A plain scalar, and one whose value (or error) the cache holds, runs no template
        code: it is read without setting up the CPU-time and memory bounds (a timer and
        an address-space limit, set and reset, cost more than the look-up).
        """
        return self._eval(plan, path, bounds=plan.document.path)

    def _render_node(self, plan: TemplatePlan, value: Value, path: JsonPath, slots: dict[str | int, Any]) -> Value:
        if isinstance(value, dict):
            out = dict(value)
            for key, sub in slots.items():
                assert isinstance(key, str)
                child_path = (*path, key)
                out[key] = self._render_node(plan, value[key], child_path, sub) if sub else self._eval(plan, child_path)
            return out
        if isinstance(value, list):
            items = list(value)
            for key, sub in slots.items():
                assert isinstance(key, int)
                child_path = (*path, key)
                items[key] = (
                    self._render_node(plan, value[key], child_path, sub) if sub else self._eval(plan, child_path)
                )
            return items
        return self._eval(plan, path)

    def _eval(self, plan: TemplatePlan, path: JsonPath, *, bounds: str | None = None) -> Value:
        """The scalar's value from the cache, or run: within ``bounded(bounds)`` when given
        and the scalar is not plain (``render`` sets the bounds up once for a template)."""
        expr = plan.exprs[path]
        key = (expr.source, tuple(self.fingerprint(n) for n in expr.names))
        if not plan.keep:
            UNKEPT.add(key)
        try:
            value = self.cache[key]
        except KeyError:
            if bounds is None or expr.plain:
                value = self._run(expr)
            else:
                with bounded(bounds):
                    value = self._run(expr)
            self.cache[key] = value
        if isinstance(value, _Failure):  # the same scalar with the same variables fails the same way
            raise InputError(f"{plan.document.origin(path).location()}: {value.detail}")
        return value

    def _run(self, expr: _Expr) -> Value | _Failure:
        _BUDGET.steps = 0  # per scalar: the cached outcome is a function of the cache key alone
        if expr.resolve is not None:  # known to compile: Jinja compiles it now (its type, how it runs)
            expr = expr.resolve()
        try:
            value = _to_value(expr.run(self.variables), expr.native)
        except TemplateFailure as e:
            return _Failure(f"{_describe(e)} in {_shorten(expr.source)}")
        except MemoryError:
            limit = f"over {MAX_MEMORY_BYTES // 2**20} MiB of memory"
            return _Failure(f"template error: rendering needs {limit} in {_shorten(expr.source)}")
        except (ArithmeticError, TypeError, ValueError, LookupError) as e:
            return _Failure(f"{type(e).__name__}: {e} in {expr.source.strip()!r}")
        if isinstance(value, str) and len(value) > MAX_OUTPUT_CHARS:
            return _Failure(f"rendered value over {MAX_OUTPUT_CHARS} chars")
        return value


@dataclass(frozen=True, slots=True)
class _Failure:
    """A scalar's error, cached like a value: every target with the same variables gets it
    without rendering again (a template that passes a bound costs its bound once)."""

    detail: str


# Keys of the cache whose values must not leave the process (a template that sets an x-secret
# field rendered them): the result cache skips them (compiler.incremental.parsed).
UNKEPT: set[tuple[str, tuple[str, ...]]] = set()
# Sources of scalars that rendered a plaintext secret (``secrets_guard.check_rendered``): none of their
# rendered values is kept, whatever the variables.
UNKEPT_SOURCES: set[str] = set()

# A scalar's rendered value (or its error) by (expression source, fingerprints of the variables it
# reads): a function of those alone, so one cache serves every target and every revision.
RenderCache: TypeAlias = "dict[tuple[str, tuple[str, ...]], Value | _Failure]"


def _shorten(source: str) -> str:
    text = " ".join(source.split())
    return repr(text if len(text) <= 200 else text[:197] + "...")


def _describe(e: TemplateFailure) -> str:
    if e.undefined is not None:
        return f"undefined variable {e.undefined!r}"
    return f"template error: {e.message}"


# JSON in the map's own key order (floats keep their point: 1.0 is not 1); NaN cannot be a variable.
_ORDERED = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False).encode
_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(value: str) -> str:
    # A Jinja escape ('\ud800') can make a lone surrogate, which no UTF-8 bundle can hold:
    # refuse it here, at the template line, rather than when the bundle is written.
    if _SURROGATE.search(value):
        raise ValueError("the result holds a lone surrogate (\\ud800-\\udfff), which is not valid Unicode text")
    return value


def _to_value(result: Any, native: bool) -> Value:  # noqa: ANN401
    if not native:
        return _text(str(result))
    if isinstance(result, float) and not math.isfinite(result):
        raise ValueError(f"{result} is not a JSON number")  # bundles are JSON: no NaN or infinity
    if isinstance(result, int) and result.bit_length() > _MAX_INT_BITS:
        raise ValueError("integer too large")
    if isinstance(result, str):
        return _text(result)
    if result is None or isinstance(result, (bool, int, float)):
        return result
    if isinstance(result, (list, tuple)):
        return [_to_value(v, True) for v in result]
    if isinstance(result, dict):
        for k in result:
            if not isinstance(k, str):  # as in YAML (compiler.load.yaml): str(k) would be "True" or merge "1" and 1
                raise ValueError(f"mapping keys must be strings, not {type(k).__name__} {k!r}")
        return {_text(k): _to_value(v, True) for k, v in result.items()}
    # a generator (``map``, ``select``), a range, an object: its str() would be Python's, not a value
    raise ValueError(f"a {type(result).__name__} is not a JSON value (add | list)")


def _fingerprint(value: Any) -> str:  # noqa: ANN401
    """``value`` as text that tells apart every two values a template can tell apart: a map's key
    order too (``{{ d }}``, ``{% for k in d %}`` show it), so not canonical JSON, which sorts keys."""
    if isinstance(value, str):
        return "s" + value
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return f"i{value}"
    if isinstance(value, float):
        return f"f{value!r}"
    return "j" + _ORDERED(value)


@contextlib.contextmanager
def bounded(where: str) -> Iterator[None]:
    """The bounds of one template's rendering: steps and depth always; CPU time and memory
    where the process can enforce them (the main thread, no other thread running).

    Re-entrant: inside an active scope, an inner one adds nothing.

    Raises:
        InputError: a bound was passed outside any scalar (named by ``where``).
    """
    global _ACTIVE
    if _ACTIVE:
        yield
        return
    _BUDGET.steps = _BUDGET.depth = 0
    _BUDGET.weights.clear()
    _ACTIVE = True
    try:
        with _memory_limit(), _cpu_limit():  # the timer stops before the memory limit is restored
            yield
    except LimitError as e:  # the timer fired between two scalars
        raise InputError(f"{where}: template error: {e.message}") from e
    except MemoryError as e:
        raise InputError(f"{where}: template error: rendering needs over {MAX_MEMORY_BYTES // 2**20} MiB") from e
    finally:
        _ACTIVE = False
        _BUDGET.weights.clear()


_ACTIVE = False


def _enforceable() -> bool:
    return threading.current_thread() is threading.main_thread() and threading.active_count() == 1


@contextlib.contextmanager
def _cpu_limit() -> Iterator[None]:
    """SIGPROF after ``MAX_CPU_SECONDS`` of process CPU time; the handler raises between two bytecodes."""
    if not _enforceable() or not hasattr(signal, "setitimer"):
        yield
        return

    def _expired(signum: int, frame: object) -> None:
        raise LimitError(f"rendering took over {MAX_CPU_SECONDS:g}s of CPU time")

    previous = signal.signal(signal.SIGPROF, _expired)
    signal.setitimer(signal.ITIMER_PROF, MAX_CPU_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


@contextlib.contextmanager
def _memory_limit() -> Iterator[None]:
    """RLIMIT_AS lowered to the current address space plus ``MAX_MEMORY_BYTES``: an allocation
    past it fails with MemoryError (inside one C call too, which no timer interrupts)."""
    import resource

    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            used = int(f.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError):  # not Linux: the counted bounds still hold
        used = 0
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = used + MAX_MEMORY_BYTES
    lowers = (soft == resource.RLIM_INFINITY or soft > limit) and (hard == resource.RLIM_INFINITY or hard >= limit)
    if not (used and lowers and _enforceable()):
        yield
        return
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


__all__ = ["Renderer", "TemplatePlan", "plan_template"]
