"""Jinja2 expressions in template scalars (DESIGN §2), sandboxed and strict.

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
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from compiler.bundle.canonical import canonical_json
from compiler.errors import InputError
from compiler.jsonpath import JsonPath
from compiler.load.yaml import Document, Tagged, Value

MAX_OUTPUT_CHARS = 4 * 1024 * 1024
MAX_SECONDS = 10.0


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus bounds on output size from `*` and `**`."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:  # noqa: ANN401
        if operator_name == "**" and isinstance(right, int) and abs(right) > 1000:
            raise TemplateError("exponent too large")
        if (
            operator_name == "*"
            and isinstance(left, (str, list))
            and isinstance(right, int)
            and len(left) * right > MAX_OUTPUT_CHARS
        ):
            raise TemplateError("result too large")
        if (
            operator_name == "*"
            and isinstance(right, (str, list))
            and isinstance(left, int)
            and len(right) * left > MAX_OUTPUT_CHARS
        ):
            raise TemplateError("result too large")
        return super().call_binop(context, operator_name, left, right)


def _environment() -> _Sandbox:
    return _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


_ENV = _environment()


@dataclass(frozen=True, slots=True)
class _Expr:
    """One Jinja scalar, compiled."""

    source: str
    native: bool
    names: tuple[str, ...]
    run: Callable[[Mapping[str, Any]], Any]


@dataclass(slots=True)
class TemplatePlan:
    """A template document with its Jinja scalars located and compiled."""

    document: Document
    static: Value
    # A tree mirroring ``static`` that holds only the branches leading to Jinja scalars.
    slots: dict[str | int, Any] = field(default_factory=dict)
    exprs: dict[JsonPath, _Expr] = field(default_factory=dict)


def plan_template(doc: Document, body: Value) -> TemplatePlan:
    """Compile every Jinja scalar of ``body`` (the template without ``extends``)."""
    plan = TemplatePlan(document=doc, static=body)
    _collect(plan, body, (), plan.slots)
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


def _compile_source(source: str, *, where: str) -> _Expr:
    try:
        ast = _ENV.parse(source)
        # Every name the scalar loads, not jinja2.meta's "undeclared" ones: those leave out
        # names of globals (`namespace`, `range`), which a variable of that name shadows.
        names = tuple(sorted({n.name for n in ast.find_all(nodes.Name) if n.ctx == "load"}))
        single = _single_expression(source, ast)
        if single is not None:
            fn = _ENV.compile_expression(single, undefined_to_none=False)
            return _Expr(source, True, names, lambda v: fn(**v))
        tmpl = _ENV.from_string(ast)
        return _Expr(source, False, names, tmpl.render)
    except TemplateError as e:
        raise InputError(f"{where}: template error: {e}") from e


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
    cache: dict[tuple[str, tuple[str, ...]], Any]
    _prints: dict[str, str] = field(default_factory=dict)

    def fingerprint(self, name: str) -> str:
        fp = self._prints.get(name)
        if fp is None:
            fp = "\0" if name not in self.variables else _fingerprint(self.variables[name])
            self._prints[name] = fp
        return fp

    def render(self, plan: TemplatePlan) -> Value:
        if not plan.exprs:
            return plan.static
        with _deadline(MAX_SECONDS, plan.document.path):
            return self._render_node(plan, plan.static, (), plan.slots)

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
            return self.cache[key]  # type: ignore[no-any-return]
        except KeyError:
            pass
        try:
            value = _to_value(expr.run(self.variables), expr.native)
        except TemplateError as e:
            where = plan.document.origin(path).location()
            raise InputError(f"{where}: {_describe(e)} in {expr.source.strip()!r}") from e
        except (ArithmeticError, TypeError, ValueError, LookupError) as e:
            where = plan.document.origin(path).location()
            raise InputError(f"{where}: {type(e).__name__}: {e} in {expr.source.strip()!r}") from e
        if isinstance(value, str) and len(value) > MAX_OUTPUT_CHARS:
            raise InputError(f"{plan.document.origin(path).location()}: rendered value over {MAX_OUTPUT_CHARS} chars")
        self.cache[key] = value
        return value


def _describe(e: TemplateError) -> str:
    msg = str(e.message if e.message else e)
    if msg.endswith(" is undefined"):
        return "undefined variable " + msg[: -len(" is undefined")]
    return f"template error: {msg}"


def _to_value(result: Any, native: bool) -> Value:  # noqa: ANN401
    if isinstance(result, Undefined):
        result._fail_with_undefined_error()
    if not native:
        return str(result)
    if result is None or isinstance(result, (str, bool, int, float)):
        return result
    if isinstance(result, (list, tuple)):
        return [_to_value(v, True) for v in result]
    if isinstance(result, dict):
        return {str(k): _to_value(v, True) for k, v in result.items()}
    return str(result)


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
def _deadline(seconds: float, where: str) -> Iterator[None]:
    """Bound rendering time with SIGALRM where we can (the main thread of a process)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def _expired(signum: int, frame: object) -> None:
        raise InputError(f"{where}: rendering took longer than {seconds:g}s")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


__all__ = ["Renderer", "TemplatePlan", "plan_template"]
