"""A parser for CEL source into a small syntax tree, for analysing rules (not evaluating them).

The CEL library evaluates rules but exposes no syntax tree, and two checks
need one: which values of ``config`` a rule reads (``compiler.policy.reads``,
issue 10 §4) and a bound on what evaluating it costs (issue 10 §8). The
grammar is cel-spec's (``langdef.md``, "Syntax"), with the optional-field
syntax (``a.?b``, ``a[?k]``) of cel-go:

    Expr    = Or ["?" Or ":" Expr]
    Or      = And {"||" And};   And = Rel {"&&" Rel}
    Rel     = Add {("<"|"<="|">="|">"|"=="|"!="|"in") Add}
    Add     = Mul {("+"|"-") Mul};  Mul = Unary {("*"|"/"|"%") Unary}
    Unary   = Member | "!" {"!"} Member | "-" {"-"} Member
    Member  = Primary {"." ["?"] IDENT ["(" args ")"] | "[" ["?"] Expr "]"}
    Primary = ["."] IDENT ["(" args ")"] | "(" Expr ")" | "[" elems "]" | "{" entries "}"
            | IDENT {"." IDENT} "{" fields "}" | LITERAL

Every rule is first compiled by the CEL library, so this parser only sees
valid CEL; anything it cannot parse raises ``ValueError`` and the callers
fail closed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Operators and macros are Calls named like the CEL library names them: ``_+_``, ``!_``, ``all``.
MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})


@dataclass(frozen=True, slots=True)
class Lit:
    value: object


@dataclass(frozen=True, slots=True)
class Ident:
    name: str


@dataclass(frozen=True, slots=True)
class Select:
    operand: Node
    field: str


@dataclass(frozen=True, slots=True)
class Index:
    operand: Node
    index: Node


@dataclass(frozen=True, slots=True)
class Call:
    """A function, method (``target`` set), operator or macro call."""

    function: str
    args: tuple[Node, ...]
    target: Node | None = None


@dataclass(frozen=True, slots=True)
class ListLit:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class MapLit:
    entries: tuple[tuple[Node, Node], ...]


Node = Lit | Ident | Select | Index | Call | ListLit | MapLit

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|//[^\n]*)
  | (?P<str>[rR]?[bB]?[rR]?(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"
           |'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))
  | (?P<num>0[xX][0-9a-fA-F]+[uU]?|(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)?[uU]?)
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\|\||&&|<=|>=|==|!=|[-+*/%!<>?:.,()\[\]{}])
    """,
    re.VERBOSE | re.DOTALL,
)
_RELATIONS = ("<", "<=", ">=", ">", "==", "!=", "in")


def _tokens(source: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:
            raise ValueError(f"cannot read the rule at offset {pos}")
        pos = m.end()
        kind = m.lastgroup
        assert kind is not None
        if kind != "ws":
            out.append((kind, m.group()))
    out.append(("end", ""))
    return out


def _literal(kind: str, text: str) -> object:
    if kind == "str":
        return text  # the value does not matter to the analyses, only that it is a literal
    text = text.rstrip("uU")
    if text.lower().startswith("0x"):
        return int(text, 16)
    if any(c in text for c in ".eE"):
        return float(text)
    return int(text)


class _Parser:
    def __init__(self, source: str) -> None:
        self.toks = _tokens(source)
        self.i = 0

    def peek(self, offset: int = 0) -> str:
        kind, text = self.toks[min(self.i + offset, len(self.toks) - 1)]
        return text if kind in ("op", "id") else kind

    def take(self, expected: str | None = None) -> tuple[str, str]:
        tok = self.toks[self.i]
        if expected is not None and self.peek() != expected:
            raise ValueError(f"expected {expected!r}, found {tok[1]!r}")
        self.i += 1
        return tok

    def expr(self) -> Node:
        cond = self.binary(0)
        if self.peek() != "?":
            return cond
        self.take("?")
        yes = self.binary(0)
        self.take(":")
        return Call("_?_:_", (cond, yes, self.expr()))

    _LEVELS: tuple[tuple[str, ...], ...] = (("||",), ("&&",), _RELATIONS, ("+", "-"), ("*", "/", "%"))

    def binary(self, level: int) -> Node:
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek() in self._LEVELS[level]:
            op = self.take()[1]
            left = Call("@in" if op == "in" else f"_{op}_", (left, self.binary(level + 1)))
        return left

    def unary(self) -> Node:
        if self.peek() in ("!", "-"):
            op = self.take()[1]
            return Call(f"{op}_", (self.unary(),))
        return self.member()

    def member(self) -> Node:
        node = self.primary()
        while True:
            if self.peek() == ".":
                self.take()
                if self.peek() == "?":
                    self.take()
                name = self.take()[1]
                node = Call(name, self.args(")"), node) if self.peek() == "(" else Select(node, name)
            elif self.peek() == "[":
                self.take()
                if self.peek() == "?":
                    self.take()
                node = Index(node, self.expr())
                self.take("]")
            else:
                return node

    def args(self, close: str) -> tuple[Node, ...]:
        self.take()
        items: list[Node] = []
        while self.peek() != close:
            if self.peek() == "?":  # an optional list element: [?x]
                self.take()
            items.append(self.expr())
            if self.peek() != ",":
                break
            self.take()
        self.take(close)
        return tuple(items)

    def primary(self) -> Node:
        kind, text = self.toks[self.i]
        if kind in ("str", "num"):
            self.take()
            return Lit(_literal(kind, text))
        if kind == "op" and text == ".":  # a leading dot: the root namespace
            self.take()
            return self.primary()
        if kind == "id":
            self.take()
            if text in ("true", "false", "null"):
                return Lit({"true": True, "false": False, "null": None}[text])
            if self.peek() == "(":
                return Call(text, self.args(")"))
            if self.peek() == "{":  # a message literal: Type{field: value}
                return MapLit(tuple((Lit(k.name) if isinstance(k, Ident) else k, v) for k, v in self.entries()))
            return Ident(text)
        if text == "(":
            self.take()
            inner = self.expr()
            self.take(")")
            return inner
        if text == "[":
            return ListLit(self.args("]"))
        if text == "{":
            return MapLit(tuple(self.entries()))
        raise ValueError(f"unexpected {text!r}")

    def entries(self) -> list[tuple[Node, Node]]:
        self.take("{")
        out: list[tuple[Node, Node]] = []
        while self.peek() != "}":
            if self.peek() == "?":
                self.take()
            key = self.expr()
            self.take(":")
            out.append((key, self.expr()))
            if self.peek() != ",":
                break
            self.take()
        self.take("}")
        return out


MAX_NESTING = 32


def nesting(source: str) -> int:
    """The deepest nesting of brackets in ``source`` (outside string literals).

    Raises:
        ValueError: the text has a character no CEL token starts with.
    """
    depth = deepest = 0
    for kind, text in _tokens(source):
        if kind == "op" and text in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif kind == "op" and text in ")]}":
            depth -= 1
    return deepest


def parse(source: str) -> Node:
    """The syntax tree of one CEL expression.

    Raises:
        ValueError: the text is not an expression this parser reads.
    """
    p = _Parser(source)
    node = p.expr()
    if p.peek() != "end":
        raise ValueError(f"unexpected {p.toks[p.i][1]!r} after the expression")
    return node


def macro_var(call: Call) -> str | None:
    """The variable a comprehension macro binds (``xs.all(x, ...)``), else None."""
    if call.function in MACROS and call.target is not None and len(call.args) in (2, 3):
        first = call.args[0]
        if isinstance(first, Ident):
            return first.name
    return None
