"""An upper bound on what evaluating a rule costs, computed before it runs (issue 10 §8).

The CEL library (Rust) has no cost limit and cannot be interrupted: a rule
with nested comprehensions ran 47 s, another took 65 s and 3.1 GB. So each
rule's cost is bounded from its syntax tree and the sizes of the values it
iterates, which are known before evaluating: deterministic, no clock.

Cost model, in steps (one step is one node evaluated or one element built):

- a literal, a name, a selection, an index or an operator: 1 plus its operands;
- ``xs.all(x, body)`` (and ``exists``, ``exists_one``, ``map``, ``filter``):
  the cost of ``xs``, plus ``size(xs)`` times the cost of its body; ``map``
  and ``filter`` add ``size(xs)`` for the list they build;
- ``lists.range(n)``: ``n`` steps; ``a + b``: also the sizes of ``a`` and ``b``
  (a concatenation copies both);
- a selection from the data: also its size over ``COPY_CHARS_PER_STEP`` (the
  library copies a selected string).

``size(xs)`` is the largest size of the values ``xs`` can be: for a selection
from ``config``, ``target`` or ``secrets`` it is read from the data (the
largest over every element a macro variable can stand for); for literals,
``lists.range(n)``, ``filter``/``map``, ``split``, ``sort``, ``distinct``,
``reverse`` and ``slice`` it follows from their operands. A rule that iterates
over anything else has no bound and is refused when it is loaded
(``rule_cost`` on empty data raises).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from compiler.jsontypes import JSONValue
from compiler.policy.celast import Call, Ident, Index, ListLit, Lit, MapLit, Node, Select, macro_var
from compiler.policy.reads import ANY, unquote

# About one second of evaluation in the CEL library and well under 256 MB (README, "Limits").
MAX_RULE_COST = 2_000_000
COPY_CHARS_PER_STEP = 512
_SAME_SIZE = frozenset({"sort", "distinct", "reverse", "slice"})
_Path = tuple[object, ...]
_Refs = frozenset[_Path]


class UnboundedError(ValueError):
    """A rule iterates over a value whose size cannot be bounded before evaluating it."""


class _Bounds:
    def __init__(self, size_of: Callable[[_Refs], int], int_of: Callable[[_Refs], int]) -> None:
        self.size_of = size_of
        self.int_of = int_of

    def refs(self, node: Node, env: Mapping[str, _Refs]) -> _Refs:
        """The variable paths ``node`` is a selection of (``frozenset()``: a computed value)."""
        if isinstance(node, Ident):
            return env.get(node.name, frozenset({(node.name,)}))
        if isinstance(node, Select):
            return frozenset((*p, node.field) for p in self.refs(node.operand, env))
        if isinstance(node, Index):
            idx = node.index
            key: object = ANY
            if isinstance(idx, Lit) and isinstance(idx.value, (str, int)):
                key = unquote(idx.value) if isinstance(idx.value, str) else idx.value
            return frozenset((*p, key) for p in self.refs(node.operand, env))
        if isinstance(node, Call) and node.function == "filter" and node.target is not None:
            return self.refs(node.target, env)
        return frozenset()

    def size(self, node: Node, env: Mapping[str, _Refs]) -> int:
        """The largest size (elements, entries or characters) ``node``'s value can have."""
        refs = self.refs(node, env)
        if refs:
            return self.size_of(refs)
        if isinstance(node, Lit):
            return _literal_size(node.value)
        if isinstance(node, (ListLit, MapLit)):
            return len(node.items) if isinstance(node, ListLit) else len(node.entries)
        if isinstance(node, Call):
            if node.function == "lists.range" or (
                node.function == "range" and isinstance(node.target, Ident) and node.target.name == "lists"
            ):
                return self.upper(node.args[0], env) if node.args else 0
            if node.function in ("map", "filter") and node.target is not None:
                return self.size(node.target, env)
            if node.function in _SAME_SIZE | {"split"}:
                subject = node.target if node.target is not None else (node.args[0] if node.args else None)
                if subject is not None:
                    return self.size(subject, env) + 1
            if node.function == "_?_:_":
                return max(self.size(node.args[1], env), self.size(node.args[2], env))
        raise UnboundedError("cannot bound the size of a value this rule iterates over")

    def upper(self, node: Node, env: Mapping[str, _Refs]) -> int:
        """An upper bound of an integer expression (the argument of ``lists.range``)."""
        if isinstance(node, Lit) and isinstance(node.value, int):
            return node.value
        refs = self.refs(node, env)
        if refs:
            return self.int_of(refs)
        if isinstance(node, Call):
            args = node.args
            if node.function == "size":
                return self.size(node.target if node.target is not None else args[0], env)
            if node.function == "_+_":
                return self.upper(args[0], env) + self.upper(args[1], env)
            if node.function == "_-_" and isinstance(args[1], Lit) and isinstance(args[1].value, int):
                return self.upper(args[0], env) - args[1].value
            if node.function == "_*_":
                return self.upper(args[0], env) * self.upper(args[1], env)
        raise UnboundedError("cannot bound the argument of lists.range")

    def cost(self, node: Node, env: Mapping[str, _Refs]) -> int:
        if isinstance(node, (Lit, Ident)):
            return 1
        if isinstance(node, Select):
            return 1 + self._copy(node, env) + self.cost(node.operand, env)
        if isinstance(node, Index):
            return 1 + self._copy(node, env) + self.cost(node.operand, env) + self.cost(node.index, env)
        if isinstance(node, ListLit):
            return 1 + sum(self.cost(i, env) for i in node.items)
        if isinstance(node, MapLit):
            return 1 + sum(self.cost(k, env) + self.cost(v, env) for k, v in node.entries)
        var = macro_var(node)
        if var is not None and node.target is not None:
            n = self.size(node.target, env)
            # The variable stands for any element; of a computed list, for a value of unknown size.
            inner = {**env, var: frozenset((*p, ANY) for p in self.refs(node.target, env))}
            body = sum(self.cost(arg, inner) for arg in node.args[1:])
            built = n if node.function in ("map", "filter") else 0
            return self.cost(node.target, env) + n * body + built
        own = 1
        if node.function in ("lists.range", "range") and node.args:
            own += max(self.upper(node.args[0], env), 0)
        elif node.function == "_+_":
            own += self._size_or_zero(node.args[0], env) + self._size_or_zero(node.args[1], env)
        parts = [*node.args] if node.target is None else [node.target, *node.args]
        return own + sum(self.cost(p, env) for p in parts)

    def _copy(self, node: Node, env: Mapping[str, _Refs]) -> int:
        """Steps of copying the selected value: the library copies a selected string (1 MB x 3,000
        selections in a macro took 2.4 s), about 512 characters a step."""
        refs = self.refs(node, env)
        return self.size_of(refs) // COPY_CHARS_PER_STEP if refs else 0

    def _size_or_zero(self, node: Node, env: Mapping[str, _Refs]) -> int:
        try:
            return self.size(node, env)
        except UnboundedError:
            return 0  # a computed operand: its own cost already counts what built it


def rule_cost(tree: Node, variables: Mapping[str, JSONValue]) -> int:
    """The cost bound of evaluating ``tree`` with ``variables`` (``config``, ``target``, ``secrets``)."""
    sizes: dict[_Refs, int] = {}
    ints: dict[_Refs, int] = {}

    def size_of(refs: _Refs) -> int:
        if refs not in sizes:
            sizes[refs] = max((_size(v) for v in _values(variables, refs)), default=0)
        return sizes[refs]

    def int_of(refs: _Refs) -> int:
        if refs not in ints:
            nums = [v for v in _values(variables, refs) if isinstance(v, int) and not isinstance(v, bool)]
            ints[refs] = max(nums, default=0)
        return ints[refs]

    return _Bounds(size_of, int_of).cost(tree, {})


def _literal_size(value: object) -> int:
    if not isinstance(value, str):
        return 1
    text = unquote(value)
    return len(text) if isinstance(text, str) else len(value)


def _size(value: JSONValue) -> int:
    return len(value) if isinstance(value, (str, list, dict)) else 1


def _values(variables: Mapping[str, JSONValue], refs: Iterable[_Path]) -> Iterable[JSONValue]:
    for path in refs:
        if not path or not isinstance(path[0], str) or path[0] not in variables:
            continue
        level: list[JSONValue] = [variables[path[0]]]
        for key in path[1:]:
            nxt: list[JSONValue] = []
            for v in level:
                if key is ANY:
                    nxt.extend(v.values() if isinstance(v, dict) else v if isinstance(v, list) else ())
                elif isinstance(v, dict) and isinstance(key, str):
                    nxt.extend([v[key]] if key in v else [])
                elif isinstance(v, list) and isinstance(key, int):
                    nxt.extend([v[key]] if -len(v) <= key < len(v) else [])
            level = nxt
        yield from level
