"""Jinja's immutable sandbox, bounded (``compiler.render.jinja`` describes the bounds).

Loaded on the first template scalar that is not plain (``jinja._plain_expr``): a
repository whose scalars are all plain starts without Jinja (issue 14 §1). The
bounds' limits are read from ``compiler.render.jinja`` when used.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined, UndefinedError, nodes, pass_environment, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.filters import make_attrgetter
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range
from jinja2.utils import generate_lorem_ipsum
from jinja2.utils import missing as _MISSING

from compiler.errors import InputError
from compiler.render import jinja
from compiler.render.jinja import _BUDGET, GLOBALS, LimitError, TemplateFailure, _built, _charge, _Expr, _weight


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


def _check_size(size: int) -> None:
    if size > jinja.MAX_OUTPUT_CHARS:
        raise TemplateError("result too large")


def _bounded_concat(parts: Iterable[Any]) -> str:
    """``"".join`` that stops as soon as the joined text would pass ``jinja.MAX_OUTPUT_CHARS``.

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
        if spec.isdigit() and (len(spec) > 9 or int(spec) > jinja.MAX_OUTPUT_CHARS):
            raise TemplateError("result too large")
    if "*" in specs or "{" in specs:  # widths taken from the arguments
        values = args.values() if isinstance(args, Mapping) else args if isinstance(args, tuple) else (args,)
        for v in values:
            if isinstance(v, int) and v > jinja.MAX_OUTPUT_CHARS:
                raise TemplateError("result too large")


def _check_replace(text: str, old: str, new: str) -> None:
    _check_size(len(text) + (text.count(old) if old else len(text) + 1) * max(len(new) - len(old), 0))


_MAX_STRIP_WORK = 64 * jinja.MAX_OUTPUT_CHARS  # characters times distinct characters to strip (about 0.1 s)


def _strip(text: str, how: str, chars: Any) -> str:  # noqa: ANN401
    """``text.strip(chars)`` (or ``lstrip``, ``rstrip``): the C loop looks up each character of
    ``text`` in ``chars`` and no timer stops it ('a' * 400000 stripped of 'b' * 400000 + 'a': 1.8 s)."""
    if isinstance(chars, str):
        chars = "".join(dict.fromkeys(chars))
        if len(text) * len(chars) > _MAX_STRIP_WORK:
            raise LimitError(f"{how}: {len(chars):,} distinct characters to strip from {len(text):,} is too costly")
    return getattr(text, how)(chars)  # type: ignore[no-any-return]


def _check_str_call(owner: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a ``str`` method call whose result would pass ``jinja.MAX_OUTPUT_CHARS``."""
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
            _check_size(_weight(left, jinja.MAX_OUTPUT_CHARS) * right)
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
            if _BUDGET.depth >= jinja.MAX_MACRO_DEPTH:
                raise LimitError(f"macro calls nested deeper than {jinja.MAX_MACRO_DEPTH}")
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


class UndefinedVariableError(UndefinedError):
    """A name no layer defines (``{{ missing }}``), as opposed to a missing attribute or item of a value."""

    def __init__(self, message: str, *, name: str) -> None:
        super().__init__(message)
        self.name = name


class _Undefined(StrictUndefined):
    """``StrictUndefined`` whose error says by its type whether a variable is undefined (not by its words)."""

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = _MISSING,  # noqa: ANN401 - jinja's signature
        name: str | None = None,
        exc: type[UndefinedError] = UndefinedError,
    ) -> None:
        if obj is _MISSING and hint is None and isinstance(name, str) and exc is UndefinedError:
            exc = functools.partial(UndefinedVariableError, name=name)  # type: ignore[assignment]
        super().__init__(hint, obj, name, exc)


def _environment() -> _Sandbox:
    # optimized=False: Jinja's optimizer evaluates constant expressions while compiling,
    # outside the bounds of any rendering ([1]|batch(10000000, 'x') ran there unbounded).
    env = _Sandbox(undefined=_Undefined, autoescape=False, keep_trailing_newline=True, optimized=False)
    _bound_filters(env.filters)
    env.globals.update({"range": _range, "lipsum": _lipsum, _LOOP: _counted})
    return env


ENV = _environment()


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


def compile_source(source: str, *, where: str) -> _Expr:
    if _nesting(source) > jinja.MAX_NESTING:
        raise InputError(f"{where}: template error: brackets or blocks nested deeper than {jinja.MAX_NESTING}")
    try:
        ast = ENV.parse(source)
        # Every name the scalar loads, not jinja2.meta's "undeclared" ones: those leave out
        # names of globals (`namespace`, `range`), which a variable of that name shadows.
        names = tuple(sorted({n.name for n in ast.find_all(nodes.Name) if n.ctx == "load"}))
        for loop in ast.find_all(nodes.For):  # every iteration of every loop is a step
            loop.iter = nodes.Call(nodes.Name(_LOOP, "load"), [loop.iter], [], None, None)
        single = _single_expression(source, ast)
        if single is not None:
            fn = ENV.compile_expression(single, undefined_to_none=False)
            return _Expr(source, True, names, _settled(lambda v: fn(**v)))
        tmpl = ENV.from_string(ast)
        return _Expr(source, False, names, _settled(tmpl.render))
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


def _settled(run: Callable[[Mapping[str, Any]], Any]) -> Callable[[Mapping[str, Any]], Any]:
    """``run``, whose Jinja errors (an undefined result among them) become ``TemplateFailure``."""

    def settled(variables: Mapping[str, Any]) -> Any:  # noqa: ANN401
        try:
            result = run(variables)
            if isinstance(result, Undefined):
                result._fail_with_undefined_error()
            return result
        except UndefinedVariableError as e:
            raise TemplateFailure(str(e.message if e.message else e), undefined=e.name) from e
        except TemplateError as e:
            raise TemplateFailure(str(e.message if e.message else e)) from e

    return settled


def _check_globals() -> None:
    if set(ENV.globals) != GLOBALS:  # jinja._plain_expr leaves these names to Jinja unless a variable shadows one
        raise AssertionError(f"the sandbox's globals are {sorted(ENV.globals)}, not jinja.GLOBALS")


_check_globals()
