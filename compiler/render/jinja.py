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
  ``MAX_STEPS`` per template;
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
pays for it once per process, not once per target.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from jinja2 import StrictUndefined, TemplateError, Undefined, nodes, pass_environment, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.filters import make_attrgetter
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range
from jinja2.utils import generate_lorem_ipsum

from compiler.bundle.canonical import canonical_json
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


class LimitError(TemplateError):
    """A template passed one of the bounds of its rendering."""


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


def _counted(iterable: Any) -> Iterator[Any]:  # noqa: ANN401
    """The iterable of a ``{% for %}`` loop, one step per iteration."""
    for item in iterable:
        _charge(1)
        yield item


def _range(*args: int) -> range:
    rng = safe_range(*args)
    _charge(len(rng))
    return rng


def _lipsum(n: Any = 5, html: bool = True, min: Any = 20, max: Any = 100) -> str:  # noqa: ANN401
    """Jinja's ``lipsum``, one step per word it may write (``n`` paragraphs of at most ``max`` words)."""
    if not (isinstance(n, int) and isinstance(max, int)):
        raise LimitError("lipsum takes integer n and max")
    _charge((n if n > 0 else 0) * (max if max > 0 else 0))
    return generate_lorem_ipsum(n, html, min, max)


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


def _check_size(size: int) -> None:
    if size > MAX_OUTPUT_CHARS:
        raise TemplateError("result too large")


def _bounded_concat(parts: Iterable[Any]) -> str:
    """``"".join`` that stops as soon as the joined text would pass ``MAX_OUTPUT_CHARS``.

    Jinja joins a template's output, ``{% set %}`` blocks, macros and ``~`` with
    this, so a loop repeating a large string fails here instead of allocating
    gigabytes in one C call that no alarm can interrupt.
    """
    out: list[str] = []
    size = 0
    for part in parts:
        text = str(part)
        size += len(text)
        _check_size(size)
        out.append(text)
    return "".join(out)


class _CodeGenerator(CodeGenerator):
    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self.write("environment.built(")
        super().visit_List(node, frame)
        self.write(")")

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self.write("environment.built(")
        super().visit_Dict(node, frame)
        self.write(")")

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx != "load":  # an assignment target: {% for a, b in ... %}
            super().visit_Tuple(node, frame)
            return
        self.write("environment.built(")
        super().visit_Tuple(node, frame)
        self.write(")")

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # `a ~ b` joins through the bounded concat too: repeated doubling stops at the bound.
        self.write("environment.concat(map(str, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(")))")

    def visit_Const(self, node: nodes.Const, frame: Frame) -> None:
        # Jinja writes a float constant as str(value): a folded `'nan' | float` or a literal `1e400`
        # became the undefined names `nan`/`inf` (NameError, exit 70). Spell them so the value
        # reaches the JSON check and fails at the template's line (issue 10 §6).
        value = node.as_const(frame.eval_ctx)
        if isinstance(value, float) and not math.isfinite(value):
            self.write(f"float({str(value)!r})")
        else:
            super().visit_Const(node, frame)


# printf-style conversions (`%-*.*d`) and the spec part of str.format fields (`{:>{w}}`).
_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_FORMAT_SPEC = re.compile(r"\{[^{}]*:([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")


def _check_format(fmt: str, args: Any, *, printf: bool) -> None:  # noqa: ANN401
    """Refuse a format string whose widths or precisions would build a huge string."""
    if printf:
        specs = [g for m in _PRINTF_SPEC.finditer(fmt) for g in m.groups() if g]
    else:
        specs = re.findall(r"\d+|\{", " ".join(_FORMAT_SPEC.findall(fmt)))
    for spec in specs:
        if spec.isdigit() and (len(spec) > 9 or int(spec) > MAX_OUTPUT_CHARS):
            raise TemplateError("result too large")
    if "*" in specs or "{" in specs:  # widths taken from the arguments
        values = args.values() if isinstance(args, Mapping) else args if isinstance(args, tuple) else (args,)
        for v in values:
            if isinstance(v, int) and v > MAX_OUTPUT_CHARS:
                raise TemplateError("result too large")


def _check_replace(text: str, old: str, new: str) -> None:
    _check_size(len(text) + (text.count(old) if old else len(text) + 1) * max(len(new) - len(old), 0))


_MAX_STRIP_WORK = 64 * MAX_OUTPUT_CHARS  # characters times distinct characters to strip (about 0.1 s)


def _strip(text: str, how: str, chars: Any) -> str:  # noqa: ANN401
    """``text.strip(chars)`` (or ``lstrip``, ``rstrip``): the C loop looks up each character of
    ``text`` in ``chars`` and no timer stops it ('a' * 400000 stripped of 'b' * 400000 + 'a': 1.8 s)."""
    if isinstance(chars, str):
        chars = "".join(dict.fromkeys(chars))
        if len(text) * len(chars) > _MAX_STRIP_WORK:
            raise LimitError(f"{how}: {len(chars):,} distinct characters to strip from {len(text):,} is too costly")
    return getattr(text, how)(chars)  # type: ignore[no-any-return]


def _check_str_call(owner: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a ``str`` method call whose result would pass ``MAX_OUTPUT_CHARS``."""
    first = args[0] if args else next(iter(kwargs.values()), None)
    if name in ("ljust", "rjust", "center", "zfill") and isinstance(first, int):
        _check_size(first)
    elif name == "expandtabs" and isinstance(first, int):
        _check_size(len(owner) + owner.count("\t") * first)
    elif name == "format":
        _check_format(owner, (*args, *kwargs.values()), printf=False)
    elif name == "format_map":
        _check_format(owner, first, printf=False)
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        _check_replace(owner, args[0], args[1])
    elif name == "join" and isinstance(first, list):
        _check_size(len(owner) * max(len(first) - 1, 0))


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus bounds on the size of what a template can build.

    Output is joined by ``_bounded_concat``; the operators, ``str`` methods and
    filters that multiply a string's size check the size before computing it.
    """

    code_generator_class = _CodeGenerator
    concat = staticmethod(_bounded_concat)
    built = staticmethod(_built)
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:  # noqa: ANN401
        if operator_name == "**" and isinstance(right, int) and abs(right) > 1000:
            raise TemplateError("exponent too large")
        if operator_name == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
            _check_size(left.bit_length() * right // 3)  # about the digits of the result
        if operator_name == "%" and isinstance(left, str):
            _check_format(left, right, printf=True)
        if operator_name == "+" and isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            _check_size(len(left) + len(right))  # repeated doubling in a loop stops at the bound
        if operator_name == "*" and isinstance(left, int) and isinstance(right, (str, list, tuple)):
            left, right = right, left
        if operator_name == "*" and isinstance(left, (str, list, tuple)) and isinstance(right, int) and right > 0:
            # Lists count with the lists inside them: [[1] * 4000000] * 4000000 is 16e12 elements.
            _check_size(_weight(left, MAX_OUTPUT_CHARS) * right)
        return _built(super().call_binop(context, operator_name, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        target = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str):
            name = getattr(target, "__name__", "")
            if name == "join" and args and not isinstance(args[0], list):
                args = (list(args[0]), *args[1:])
            _check_str_call(owner, name, args, kwargs)
            if name in ("strip", "lstrip", "rstrip") and len(args) == 1 and not kwargs:
                return _strip(owner, name, args[0])
        if isinstance(__obj, (Macro, LoopContext)):  # a macro, or a recursive loop's loop(...)
            _charge(1)
            if _BUDGET.depth >= MAX_MACRO_DEPTH:
                raise LimitError(f"macro calls nested deeper than {MAX_MACRO_DEPTH}")
            _BUDGET.depth += 1
            try:
                return super().call(__context, __obj, *args, **kwargs)
            finally:
                _BUDGET.depth -= 1
        return _built(super().call(__context, __obj, *args, **kwargs))  # dict(), str.split(), ...


def _bound_filters(filters: dict[str, Callable[..., Any]]) -> None:
    """The built-in filters that multiply a string's size, with the size checked first."""
    center, indent, fmt, join, replace = (filters[n] for n in ("center", "indent", "format", "join", "replace"))
    total = filters["sum"]

    def do_center(value: Any, width: int = 80) -> str:  # noqa: ANN401
        _check_size(int(width))
        return center(value, width)  # type: ignore[no-any-return]

    def do_indent(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:  # noqa: ANN401
        text = str(s)
        pad = len(width) if isinstance(width, str) else int(width)
        _check_size(len(text) + pad * (text.count("\n") + 1))
        return indent(s, width, first, blank)  # type: ignore[no-any-return]

    def do_format(value: Any, *args: Any, **kwargs: Any) -> str:  # noqa: ANN401
        _check_format(str(value), kwargs or args, printf=True)
        return fmt(value, *args, **kwargs)  # type: ignore[no-any-return]

    @pass_eval_context
    def do_join(ctx: EvalContext, value: Any, d: str = "", attribute: Any = None) -> str:  # noqa: ANN401
        items = list(value)
        _check_size(len(str(d)) * max(len(items) - 1, 0))
        return join(ctx, items, d, attribute)  # type: ignore[no-any-return]

    @pass_eval_context
    def do_replace(ctx: EvalContext, s: Any, old: Any, new: Any, count: int | None = None) -> str:  # noqa: ANN401
        _check_replace(str(s), str(old), str(new))
        return replace(ctx, s, old, new, count)  # type: ignore[no-any-return]

    @pass_environment
    def do_sum(env: ImmutableSandboxedEnvironment, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:  # noqa: ANN401
        if not isinstance(start, (list, tuple)):
            return total(env, iterable, attribute, start)
        # builtins.sum copies the growing list at each item, in one C call no timer stops
        # ([[1]] * 100000 | sum(start=[]) ran 20 s): join the lists in one pass instead.
        items = list(iterable if attribute is None else map(make_attrgetter(env, attribute), iterable))
        out = list(start)
        for item in items:
            if not isinstance(item, type(start)):
                raise TypeError(f"can only concatenate {type(start).__name__} (not {type(item).__name__})")
            out.extend(item)
        return type(start)(out)

    def do_trim(value: Any, chars: str | None = None) -> str:  # noqa: ANN401
        return _strip(str(value), "strip", chars)

    filters.update(center=do_center, indent=do_indent, format=do_format, join=do_join, replace=do_replace)
    filters.update(sum=do_sum, trim=do_trim)
    for name, fn in list(filters.items()):
        filters[name] = _checked(fn)


def _checked(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A filter whose result passes ``_built`` (``batch(n, fill)``, ``list`` and ``map`` build lists)."""

    @functools.wraps(fn)  # keeps jinja_pass_arg (pass_context, pass_eval_context)
    def checked(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        return _built(fn(*args, **kwargs))

    return checked


_LOOP = "_llmcc_loop"


def _environment() -> _Sandbox:
    # optimized=False: Jinja's optimizer evaluates constant expressions while compiling,
    # outside the bounds of any rendering ([1]|batch(10000000, 'x') ran there unbounded).
    env = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, optimized=False)
    _bound_filters(env.filters)
    env.globals.update({"range": _range, "lipsum": _lipsum, _LOOP: _counted})
    return env


_ENV = _environment()


@dataclass(frozen=True, slots=True)
class _Expr:
    """One Jinja scalar, compiled."""

    source: str
    native: bool
    names: tuple[str, ...]
    run: Callable[[Mapping[str, Any]], Any]
    # A look-up (``_direct``): no loop, no call, nothing to build, so nothing for the
    # render bounds to stop; they are not set up for it alone (``Renderer.value_at``).
    lookup: bool = False


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


def plan_template(doc: Document, body: Value) -> TemplatePlan:
    """Compile every Jinja scalar of ``body`` (the template without ``extends``)."""
    plan = TemplatePlan(document=doc, static=body)
    _collect(plan, body, (), plan.slots)
    for path, expr in plan.exprs.items():
        for name in expr.names:
            plan.readers.setdefault(name, []).append(path)
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
        sub = {}
        _collect(plan, child, (*path, key), sub)
        if sub:
            slots[key] = sub if isinstance(child, (dict, list)) else None


_COMPILED: dict[str, _Expr] = {}


def _compile(source: str, *, doc: Document, path: JsonPath) -> _Expr:
    expr = _COMPILED.get(source)
    if expr is None:
        expr = _COMPILED[source] = _compile_source(source, where=doc.origin(path).location())
    return expr


_DELIMITERS = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}")
_BLOCK = re.compile(r"\{%[-+]?\s*(end)?(?:for|if|macro|call|filter|with|block)\b")


def _nesting(source: str) -> int:
    """The deepest nesting of brackets and blocks in a scalar (brackets in string literals count: fail closed)."""
    events = [(m.start(), -1 if m.group(1) else 1) for m in _BLOCK.finditer(source)]
    bare = _DELIMITERS.sub("  ", source)
    events += [(m.start(), 1 if m.group() in "([{" else -1) for m in re.finditer(r"[(\[{)\]}]", bare)]
    depth = deepest = 0
    for _, step in sorted(events):
        depth += step
        deepest = max(deepest, depth)
    return deepest


# ``{{ name }}``, ``{{ name.key.key }}``, ``text{{ name.key }}text`` and ``{{ name | default(123) }}``:
# most scalars of a template. Compiling one with Jinja costs about a millisecond; these are read
# directly. Text around the expression holds no brace, ``%``, ``#`` or ``\r``, so Jinja's lexer
# would pass it through unchanged.
_LOOKUP = re.compile(r"([^{}%#\r]*)\{\{ *([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z_][A-Za-z0-9_]*)*) *\}\}([^{}%#\r]*)")
_DEFAULT = re.compile(r"\{\{ *([A-Za-z_][A-Za-z0-9_]*) *\| *default\( *(0|[1-9][0-9]*) *\) *\}\}")
# Words Jinja's parser reads as something other than a name or a key in these positions.
_WORDS = frozenset(
    {"true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if", "else", "elif"}
    | {"for", "recursive", "block", "extends", "include", "import", "from", "as", "with", "without"}
    | {"context", "set", "macro", "call", "filter", "raw"}
)
_PLAIN = frozenset({str, int, float, bool, type(None)})
_MISSING = object()


def _direct(source: str) -> _Expr | None:
    """The scalar as a direct look-up, when it is one of the simple forms above, else None.

    The result is the one Jinja's template gives whenever the look-up finds its value
    (a plain dict key on every step; for ``default`` or inside text, a scalar or, for
    ``default``, nothing); anything else -- a missing name or key (a missing name may
    be a Jinja global: ``range``), a key that is also a ``dict`` attribute (``items``),
    a value of another type -- runs the Jinja template, compiled on first use, so
    errors and their messages are Jinja's own.
    """
    m = _LOOKUP.fullmatch(source)
    d = None if m else _DEFAULT.fullmatch(source)
    if m is None and d is None:
        return None
    name = m.group(2) if m else d.group(1)  # type: ignore[union-attr]
    keys = tuple(m.group(3).split(".")[1:]) if m else ()
    if name in _WORDS or any(k in _WORDS or hasattr(dict, k) for k in keys):
        return None
    jinja: list[Callable[[Mapping[str, Any]], Any]] = []

    def slow(variables: Mapping[str, Any]) -> Any:  # noqa: ANN401
        if not jinja:
            jinja.append(_compile_jinja(source, where="").run)
        return jinja[0](variables)

    if d is not None:
        fallback = int(d.group(2))
        shadows = name in _ENV.globals

        def run_default(variables: Mapping[str, Any]) -> Any:  # noqa: ANN401
            value = variables.get(name, _MISSING)
            if value is _MISSING:
                return slow(variables) if shadows else fallback
            return value if type(value) in _PLAIN else slow(variables)

        return _Expr(source, True, (name,), run_default, lookup=True)

    def lookup(variables: Mapping[str, Any]) -> Any:  # noqa: ANN401
        value = variables.get(name, _MISSING)
        for key in keys:
            if type(value) is not dict:
                return _MISSING
            value = value.get(key, _MISSING)
        return value

    assert m is not None
    before, after = m.group(1), m.group(4)
    if not before and not after:

        def run(variables: Mapping[str, Any]) -> Any:  # noqa: ANN401
            value = lookup(variables)
            return slow(variables) if value is _MISSING else value

        return _Expr(source, True, (name,), run, lookup=True)

    def run_text(variables: Mapping[str, Any]) -> Any:  # noqa: ANN401
        value = lookup(variables)
        if type(value) not in _PLAIN:  # also _MISSING
            return slow(variables)
        text = before + str(value) + after
        return text if len(text) <= MAX_OUTPUT_CHARS else slow(variables)

    return _Expr(source, False, (name,), run_text, lookup=True)


def _compile_source(source: str, *, where: str) -> _Expr:
    return _direct(source) or _compile_jinja(source, where=where)


def _compile_jinja(source: str, *, where: str) -> _Expr:
    if _nesting(source) > MAX_NESTING:
        raise InputError(f"{where}: template error: brackets or blocks nested deeper than {MAX_NESTING}")
    try:
        ast = _ENV.parse(source)
        # Every name the scalar loads, not jinja2.meta's "undeclared" ones: those leave out
        # names of globals (`namespace`, `range`), which a variable of that name shadows.
        names = tuple(sorted({n.name for n in ast.find_all(nodes.Name) if n.ctx == "load"}))
        for loop in ast.find_all(nodes.For):  # every iteration of every loop is a step
            loop.iter = nodes.Call(nodes.Name(_LOOP, "load"), [loop.iter], [], None, None)
        single = _single_expression(source, ast)
        if single is not None:
            fn = _ENV.compile_expression(single, undefined_to_none=False)
            return _Expr(source, True, names, lambda v: fn(**v))
        tmpl = _ENV.from_string(ast)
        return _Expr(source, False, names, tmpl.render)
    except TemplateError as e:
        raise InputError(f"{where}: template error: {e}") from e
    except RecursionError as e:  # nesting of another kind than _nesting counts
        raise InputError(f"{where}: template error: nested too deeply") from e


def _single_expression(source: str, ast: nodes.Template) -> str | None:
    """The expression's source when the scalar is exactly ``{{ expr }}``.

    Checked twice: the text is one ``{{ ... }}`` and the parsed template is one
    output node with no literal text.
    """
    text = source.strip()
    if not (text.startswith("{{") and text.endswith("}}")):
        return None
    inner = text[2:-2]
    if "{{" in inner or "}}" in inner or "{%" in inner:
        return None
    body = ast.body
    if len(body) != 1 or not isinstance(body[0], nodes.Output) or len(body[0].nodes) != 1:
        return None
    if isinstance(body[0].nodes[0], nodes.TemplateData):
        return None
    return inner.strip().removeprefix("-").removeprefix("+").removesuffix("-").strip()


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
        with bounded(plan.document.path):
            return self._render_node(plan, plan.static, (), plan.slots)

    def value_at(self, plan: TemplatePlan, path: JsonPath) -> Value:
        """The rendered value of the one Jinja scalar at ``path``, bounded like a template.

        A value already in the cache, or a plain look-up (``{{ a.b }}``), is had without
        entering the bounds: setting them up (a timer, a memory limit) costs more than
        the look-up, and nothing runs that they could stop.
        """
        expr = plan.exprs[path]
        key = (expr.source, tuple(self.fingerprint(n) for n in expr.names))
        if key in self.cache:
            hit = self.cache[key]
            if not isinstance(hit, _Failure):
                return hit
        if expr.lookup:
            return self._eval(plan, path)
        with bounded(plan.document.path):
            return self._eval(plan, path)

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

    def _eval(self, plan: TemplatePlan, path: JsonPath) -> Value:
        expr = plan.exprs[path]
        key = (expr.source, tuple(self.fingerprint(n) for n in expr.names))
        try:
            value = self.cache[key]
        except KeyError:
            value = self.cache[key] = self._run(expr)
        if isinstance(value, _Failure):  # the same scalar with the same variables fails the same way
            raise InputError(f"{plan.document.origin(path).location()}: {value.detail}")
        return value

    def _run(self, expr: _Expr) -> Value | _Failure:
        try:
            value = _to_value(expr.run(self.variables), expr.native)
        except TemplateError as e:
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


# A scalar's rendered value (or its error) by (expression source, fingerprints of the variables it
# reads): a function of those alone, so one cache serves every target and every revision.
RenderCache: TypeAlias = "dict[tuple[str, tuple[str, ...]], Value | _Failure]"


def _shorten(source: str) -> str:
    text = " ".join(source.split())
    return repr(text if len(text) <= 200 else text[:197] + "...")


def _describe(e: TemplateError) -> str:
    msg = str(e.message if e.message else e)
    if msg.endswith(" is undefined"):
        return "undefined variable " + msg[: -len(" is undefined")]
    return f"template error: {msg}"


_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(value: str) -> str:
    # A Jinja escape ('\ud800') can make a lone surrogate, which no UTF-8 bundle can hold:
    # refuse it here, at the template line, rather than when the bundle is written.
    if _SURROGATE.search(value):
        raise ValueError("the result holds a lone surrogate (\\ud800-\\udfff), which is not valid Unicode text")
    return value


def _to_value(result: Any, native: bool) -> Value:  # noqa: ANN401
    if isinstance(result, Undefined):
        result._fail_with_undefined_error()
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
    if isinstance(value, str):
        return "s" + value
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return f"i{value}"
    if isinstance(value, float):
        return f"f{value!r}"
    return "j" + canonical_json(value).decode()


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
