"""CEL for policies: compile once, evaluate per target.

The implementation is ``common-expression-language`` (PyPI; Rust ``cel``
crate via PyO3), chosen over ``cel-python`` (pure Python) after measuring both:

- correctness on our rules: cel-python rejects ``temperature <= 1.0`` when the
  YAML says ``temperature: 1`` (int vs double: "no matching overload") and
  ``x != null`` on an int; both are valid CEL (heterogeneous numeric
  comparison and equality, cel-spec). The Rust one evaluates them.
- speed, 10 rules x 200 targets of a 3.4 MB config: cel-python 248 s
  (1.24 s/target, of which 0.67 s converting the activation), or 106 s with
  the activation narrowed to the modules a rule names; this library 63 s
  whole, 53 s narrowed (0.26 s/target; 0.17 s of it is one rule that indexes a
  300-entry map of 8 KB strings, which this library copies on each selection).
  On the example repository: 9 rules over its 6 targets in 9 ms (200 prod
  targets: 0.2 s), after importing the library once (0.17 s: its package
  also imports its interactive CLI).
- maintenance: both are beta; this one releases often (0.10.0) and ships
  wheels; cel-python pulls pyyaml, lark, pendulum, google-re2 and jmespath.

Activation: ``config`` (the target's modules; secret values replaced by
``"<secret>"``), ``target`` and ``secrets`` (metadata only, never values).
``config`` is narrowed to the modules a rule names (``config["m"]`` or
``config.m``) when it uses ``config`` in no other way: converting Python
values into CEL values is most of the cost. cel-go's extension functions
(``lists.range``, ``sort``, ``math.greatest``, ``split``, ...) come from
``cel.stdlib``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from compiler.jsonpath import JsonPath
from compiler.jsontypes import JSONValue
from compiler.masking import mask_text
from compiler.policy import celast
from compiler.policy.celmodule import load_cel
from compiler.policy.cost import MAX_RULE_COST, UnboundedError, rule_cost
from compiler.policy.reads import Path, tree_reads

if TYPE_CHECKING:
    import cel as _cel

VARIABLES = ("config", "target", "secrets")
# The Rust crate's functions, then cel-go's extensions (cel.stdlib), by their last name part.
_NATIVE = frozenset(
    {
        *("contains", "size", "startsWith", "endsWith", "matches", "duration", "timestamp", "string"),
        *("double", "bytes", "int", "uint", "type", "dyn", "getFullYear", "getMonth", "getDayOfYear"),
        *("getDayOfMonth", "getDate", "getDayOfWeek", "getHours", "getMinutes", "getSeconds", "getMilliseconds"),
    }
)
_NAMESPACES = frozenset({"lists", "math", "sets", "base64", "strings"})
_TYPE_NAMES = frozenset({"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type"})
_BOUND = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_USE = re.compile(r"\bconfig\b")
# A field selection, not a method call (``config.all(m, ...)`` reads every module).
_SELECT = re.compile(r'\bconfig\s*(?:\[\s*"([^"\\]+)"\s*\]|\.\s*([A-Za-z_]\w*)\b(?!\s*\())')
# One literal step of a selection chain: ``.name`` (not a method call), ``["key"]``, ``['key']``, ``[0]``.
_STEP = re.compile(
    r"""\s*(?:\.\s*([A-Za-z_]\w*)\b(?!\s*\()|\[\s*"([^"\\]*)"\s*\]|\[\s*'([^'\\]*)'\s*\]|\[\s*([0-9]+)\s*\])"""
)
MAX_RULE_CHARS = 16 * 1024
# Errors the library raises for a rule that does not fit the data (no such key, no overload, ...).
EVAL_ERRORS = (ValueError, TypeError, RuntimeError, LookupError, ArithmeticError)


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleProgram:
    """A compiled rule, its syntax tree, the modules it selects and the values it selects
    (``None``: it may select any), and the ``config`` paths it reads (``compiler.policy.reads``)."""

    source: str
    program: _cel.Program
    modules: frozenset[str] | None
    paths: tuple[JsonPath, ...] | None = None  # module first: ("m", "model", "temperature")
    tree: celast.Node | None = None
    reads: frozenset[Path] = frozenset({()})


def compile_rule(source: str) -> RuleProgram:
    """Compile a rule and check the names it uses.

    Raises:
        ValueError: not valid CEL, an unknown function or variable (a message without a location).
    """
    cel = load_cel()

    if len(source) > MAX_RULE_CHARS:
        # The library's parser took 2.3 s and 950 MB for a 1.3 MB list literal; our analyses 3.5 s more.
        raise ValueError(f"rule is {len(source):,} characters long, over the limit of {MAX_RULE_CHARS:,}")
    try:
        depth = celast.nesting(source)
    except ValueError:
        depth = 0  # not CEL: the library says where
    if depth > celast.MAX_NESTING:
        # The library's parser panics (a Rust stack overflow, or worse) on deep nesting.
        raise ValueError(f"rule nests brackets deeper than {celast.MAX_NESTING}")
    try:
        program = cel.compile(source)
    except ValueError as e:
        raise ValueError(f"rule is not valid CEL: {_syntax_error(str(e))}") from None
    known = _NATIVE | {name.rsplit(".", 1)[-1] for name in cel.stdlib.STDLIB_FUNCTIONS}
    for fn in program.functions():
        if fn[0] not in "_@!" and fn not in known:
            raise ValueError(f"rule calls unknown function {fn}() (llmcc's CEL: the standard functions and macros)")
    bound = set(_BOUND.findall(source))
    for var in program.variables():
        if var not in VARIABLES and var not in bound and var not in _NAMESPACES and var not in _TYPE_NAMES:
            raise ValueError(f"rule uses unknown variable {var!r} (rules see {', '.join(VARIABLES)})")
    try:
        tree = celast.parse(source)
        least = rule_cost(tree, {})  # what the rule costs on empty data
    except UnboundedError as e:
        raise ValueError(f"{e} (a rule's cost must be bounded before it runs: see policies/README.md)") from None
    except (ValueError, RecursionError):
        raise ValueError("rule is too deeply nested or uses syntax llmcc cannot analyse") from None
    if least > MAX_RULE_COST:
        raise ValueError(f"evaluating the rule takes at least {least:,} steps, over the limit of {MAX_RULE_COST:,}")
    return RuleProgram(
        source=source,
        program=program,
        modules=referenced_modules(source),
        paths=referenced_paths(source),
        tree=tree,
        reads=tree_reads(tree),  # parsed once (issue 14 §1)
    )


def _syntax_error(message: str) -> str:
    """The first ``<input>:L:C: ...`` line of the parser's message, as ``at L:C of the rule: ...``."""
    m = re.search(r"<input>:(\d+):(\d+): ([^\n]*)", message)
    if m is None:
        return message.splitlines()[0]
    text = m.group(3)
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{text} (at {m.group(1)}:{m.group(2)} of the rule)"


def referenced_modules(source: str) -> frozenset[str] | None:
    """The modules ``source`` selects from ``config``, or None when it uses ``config`` otherwise.

    Sound by construction: every occurrence of the word ``config`` must be a
    literal selection, else the rule gets every module. A match inside a
    string literal only adds a module, which is harmless.
    """
    uses = len(_USE.findall(source))
    selections = _SELECT.findall(source)
    if uses != len(selections):
        return None
    return frozenset(a or b for a, b in selections)


def referenced_paths(source: str) -> tuple[JsonPath, ...] | None:
    """The values ``source`` selects from ``config``, each as its longest literal selection; None otherwise.

    ``config.m.routes.all(r, r.timeout > 0)`` selects ``("m", "routes")``: the
    chain stops at a method call, a computed index or a string with escapes, so
    what the rule reads is always below a returned path (sound like
    ``referenced_modules``). A bare ``config`` gives None.
    """
    out: list[JsonPath] = []
    for use in _USE.finditer(source):
        pos, path = use.end(), list[str | int]()
        while (step := _STEP.match(source, pos)) is not None:
            ident, dq, sq, index = step.groups()
            path.append(int(index) if index is not None else ident or dq or sq or "")
            pos = step.end()
        if not path or isinstance(path[0], int):
            return None
        out.append(tuple(path))
    return tuple(out)


def mask_secrets(modules: Mapping[str, JSONValue], secrets: Mapping[str, Iterable[JsonPath]]) -> dict[str, JSONValue]:
    """``modules`` with every secret value shown as ``SECRET_TEXT`` (``compiler.masking``'s rule)."""
    out = dict(modules)
    for module, paths in secrets.items():
        if module in out:
            out[module] = mask_text(out[module], paths)
    return out


class Activation:
    """The variables of one target, converted into CEL values once for all its rules.

    ``modules`` narrows ``config`` to the union of what the target's rules read
    (``None``: every module).
    """

    def __init__(
        self,
        config: Mapping[str, JSONValue],
        target: JSONValue,
        secrets: JSONValue,
        modules: frozenset[str] | None = None,
    ) -> None:
        self.modules = modules
        if modules is not None:
            config = {m: config[m] for m in sorted(modules) if m in config}
        self._variables: dict[str, JSONValue] = {"config": dict(config), "target": target, "secrets": secrets}
        self._context: _cel.Context | None = None
        self._scratch: _cel.Context | None = None  # for explanations: comprehension variables get bound here

    @property
    def variables(self) -> Mapping[str, JSONValue]:
        return self._variables

    def _new_context(self) -> _cel.Context:
        cel = load_cel()
        ctx: _cel.Context = cel.Context(variables=self._variables)
        for name, fn in cel.stdlib.STDLIB_FUNCTIONS.items():
            ctx.add_function(name, _guarded(name, _distinct if name == "distinct" else fn))
        return ctx

    def run(self, program: RuleProgram) -> object:
        """The rule's value; raises one of ``EVAL_ERRORS`` when it cannot be evaluated."""
        if self._context is None:
            self._context = self._new_context()
        return program.program.execute(self._context)

    def evaluate(self, expression: str, bindings: Mapping[str, JSONValue]) -> object:
        """A sub-expression of a rule, with comprehension variables bound (for explanations).

        Raises:
            ValueError: the expression does not parse; or one of ``EVAL_ERRORS``.
        """
        cel = load_cel()
        if not bindings:
            return self.run(RuleProgram(source=expression, program=cel.compile(expression), modules=None))
        if self._scratch is None:
            self._scratch = self._new_context()
        for name, value in bindings.items():
            self._scratch.add_variable(name, value)
        return cel.compile(expression).execute(self._scratch)


CEL_INT_MIN, CEL_INT_MAX = -(2**63), 2**63 - 1  # CEL's int is 64-bit signed (cel-spec, "Values")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def cel_unfit(value: JSONValue, path: JsonPath = ()) -> tuple[JsonPath, int] | None:
    """The first int in ``value`` that CEL's int cannot hold, and its path; None when every int fits.

    The library converts such an int silently (2**63 .. 2**64-1 into a ``uint``,
    anything larger into a ``double`` that drops digits), so a rule would judge
    another value than the bundle holds (issue 10 §6). The walk costs one step
    per node, not per character: long strings are skipped whole.
    """
    if type(value) is int:
        return (path, value) if not CEL_INT_MIN <= value <= CEL_INT_MAX else None
    children = value.items() if type(value) is dict else enumerate(value) if type(value) is list else ()
    for key, child in children:
        found = cel_unfit(child, (*path, key))
        if found is not None:
            return found
    return None


def cel_selection(module: str, path: JsonPath) -> str:
    """``config["m"].labels["a.b"][0]``: how a rule selects the value (and a path ``compiler.jsonpath`` reads)."""
    out = f"config[{json.dumps(module)}]"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.fullmatch(part):
            out += f".{part}"
        else:
            out += f"[{_cel_string(part)}]"
    return out


def _cel_string(key: str) -> str:
    """A JSON string literal (CEL reads it too), raw where it prints as itself and in NFC, else escaped."""
    text = json.dumps(key, ensure_ascii=False)
    printable = all(ch.isprintable() for ch in text) and unicodedata.is_normalized("NFC", text)
    return text if printable else json.dumps(key)


class _Failed:
    """What a guarded function returns instead of raising: the library cannot convert it, so
    evaluation stops with an error, and (unlike a raised exception) prints nothing to stderr."""


FAILED_CALL = "Failed to convert Python result"
# The message of the last guarded function that failed, for the evaluation error.
last_failure: list[str] = [""]


def _guarded(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (a cel.stdlib function), with its result size bounded and its errors kept quiet.

    The library prints a raised exception's message to stderr, where a secret
    value in an argument would show; and ``lists.range(n)`` builds its list
    in Python before any bound could stop it.
    """

    def call(*args: Any) -> Any:  # noqa: ANN401
        if name == "lists.range" and args and isinstance(args[0], int) and args[0] > MAX_LIST:
            last_failure[0] = f"lists.range({args[0]}) is over the limit of {MAX_LIST} elements"
            return _Failed()
        over = _over_budget(name, args)
        if over is not None:
            last_failure[0] = over
            return _Failed()
        try:
            return fn(*args)
        except Exception as e:  # noqa: BLE001 - any failure of the function is the rule's error
            last_failure[0] = f"{name}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")
            return _Failed()

    return call


MAX_LIST = MAX_RULE_COST  # the cost bound already keeps lists.range below it; this is a second guard
# What one call of a cel.stdlib function may build or compare. Their cost depends on their
# arguments' values, which the cost bound (``compiler.policy.cost``) does not see: nested
# ``replace("", ...)`` grew a string 9-fold per call (345 MB for 8 calls), ``distinct`` and
# ``sets.*`` compare every element with every other (30,000 elements: 5 s).
MAX_GROWTH = 4 * 1024 * 1024  # characters a call may add to a string
MAX_COMPARISONS = MAX_RULE_COST  # element comparisons of one call (well under a second)
_PAIRWISE = frozenset({"distinct", "sets.contains", "sets.equivalent", "sets.intersects"})


def _over_budget(name: str, args: tuple[Any, ...]) -> str | None:
    """Why a cel.stdlib call with ``args`` would pass the bounds above (a message), else None."""
    if name == "replace" and len(args) >= 3 and all(isinstance(a, str) for a in args[:3]):
        text, old, new = args[:3]
        count = text.count(old) if old else len(text) + 1
        limit = args[3] if len(args) > 3 and isinstance(args[3], int) and args[3] >= 0 else count
        if min(count, limit) * max(len(new) - len(old), 0) > MAX_GROWTH:
            return f"replace: the result would grow by over {MAX_GROWTH:,} characters"
    elif name in _PAIRWISE and args and all(isinstance(a, list) for a in args):
        sizes = [len(a) for a in args]
        pairs = sizes[0] * sizes[0] if len(sizes) == 1 else sizes[0] * sizes[-1] * 2
        if pairs > MAX_COMPARISONS and not (name == "distinct" and _hashable(args[0])):
            return f"{name}: comparing {' x '.join(map(str, sizes))} elements is over the limit of {MAX_COMPARISONS:,}"
    return None


def _hashable(items: list[Any]) -> bool:
    return all(isinstance(i, (str, int, float, bool, bytes)) or i is None for i in items)


def _distinct(items: list[Any]) -> list[Any]:
    """cel.stdlib's ``distinct`` in one pass for scalars (the same equality: ``==`` and hash agree)."""
    if _hashable(items):
        return list(dict.fromkeys(items))
    out: list[Any] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def union_modules(programs: Iterable[RuleProgram]) -> frozenset[str] | None:
    """The modules any of ``programs`` reads; None when one of them may read any."""
    out: set[str] = set()
    for p in programs:
        if p.modules is None:
            return None
        out |= p.modules
    return frozenset(out)
