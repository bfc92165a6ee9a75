"""Which values of ``config`` a rule reads: static analysis of its syntax tree (issue 10 §4).

A rule *reads* a value when the value (or any part below it) can decide the
rule's result: it is compared, converted, measured (``size``), passed to a
function, iterated by a macro's body, or is the rule's result. Only
*reaching* a value is not reading it: selecting a field (``config.vault``),
indexing, and ``has(config.vault.admin_password)`` (keys are plaintext, even
in SOPS files).

The analysis over-approximates, so it fails closed:

- a path is a tuple of keys where ``ANY`` stands for every key or index
  (``config.routes.all(r, r.tls)`` reads ``routes[ANY].tls``);
- a value used whole (``size(config.vault)``, ``config.vault == {}``, a macro
  over ``config.vault`` whose variable is compared) reads everything below it;
- a value computed by a function, or the result of ``map``, reads whatever
  went into it, whole;
- a rule this module cannot parse reads all of ``config`` (``ROOT``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from compiler.jsonpath import format_path
from compiler.policy.celast import Call, Ident, Index, ListLit, Lit, MapLit, Node, Select, macro_var, parse


class _Any:
    __slots__ = ()

    def __repr__(self) -> str:
        return "*"


ANY = _Any()
INSIDE = _Any()  # last key of a presence test: reads a secret only at or above the path
Key = str | int | _Any
Path = tuple[Key, ...]
ROOT: frozenset[Path] = frozenset({()})


def config_reads(source: str) -> frozenset[Path]:
    """The ``config`` paths ``source`` reads (module name first); ``ROOT`` when it cannot tell."""
    try:
        tree = parse(source)
    except (ValueError, RecursionError):
        return ROOT
    return tree_reads(tree)


def tree_reads(tree: Node) -> frozenset[Path]:
    """``config_reads`` of a rule already parsed (``celast.parse``)."""
    reads: set[Path] = set()
    _read(_refs(tree, {}, reads), reads)
    return frozenset(reads)


def _read(refs: Iterable[Path], reads: set[Path]) -> None:
    reads.update(refs)


def _precise(node: Node) -> bool:
    """Whether ``node`` denotes exactly the values at its paths (a chain of selections from a name)."""
    while isinstance(node, (Select, Index)):
        node = node.operand
    return isinstance(node, Ident)


def _refs(node: Node, env: Mapping[str, frozenset[Path]], reads: set[Path]) -> frozenset[Path]:
    """The ``config`` paths ``node``'s value may be; records in ``reads`` what it reads on the way."""
    if isinstance(node, Lit):
        return frozenset()
    if isinstance(node, Ident):
        if node.name in env:
            return env[node.name]
        return ROOT if node.name == "config" else frozenset()
    if isinstance(node, Select):
        return frozenset((*p, node.field) for p in _refs(node.operand, env, reads))
    if isinstance(node, Index):
        base = _refs(node.operand, env, reads)
        index = _refs(node.index, env, reads)
        _read(index, reads)
        key: Key = ANY
        if isinstance(node.index, Lit) and isinstance(node.index.value, (str, int)) and _precise(node.operand):
            key = unquote(node.index.value) if isinstance(node.index.value, str) else node.index.value
        return frozenset((*p, key) for p in base)
    if isinstance(node, ListLit):
        for item in node.items:
            _read(_refs(item, env, reads), reads)
        return frozenset()
    if isinstance(node, MapLit):
        for k, v in node.entries:
            _read(_refs(k, env, reads), reads)
            _read(_refs(v, env, reads), reads)
        return frozenset()
    return _call(node, env, reads)


def _call(node: Call, env: Mapping[str, frozenset[Path]], reads: set[Path]) -> frozenset[Path]:
    if node.function == "has" and node.target is None and len(node.args) == 1 and isinstance(node.args[0], Select):
        # Presence only: nothing is read, unless the field would be inside a secret value (a secret
        # map masked as "<secret>" has no fields): then the secret is read.
        reads.update((*p, INSIDE) for p in _refs(node.args[0].operand, env, reads))
        return frozenset()
    var = macro_var(node)
    if var is not None and node.target is not None:
        source = _refs(node.target, env, reads)
        inner = {**env, var: frozenset((*p, ANY) for p in source)}
        for arg in node.args[1:]:  # the predicate, the body: both decide the result
            _read(_refs(arg, inner, reads), reads)
        # A filtered list holds elements of the source; everything else computes new values.
        return source if node.function == "filter" else frozenset()
    if node.function == "_?_:_":
        cond, yes, no = node.args
        _read(_refs(cond, env, reads), reads)
        return _refs(yes, env, reads) | _refs(no, env, reads)
    for arg in node.args if node.target is None else (node.target, *node.args):
        _read(_refs(arg, env, reads), reads)
    return frozenset()


def unquote(literal: str) -> Key:
    """The value of a simple CEL string literal; ``ANY`` for one with escapes (fail closed)."""
    body = literal
    prefix = ""
    while body and body[0] in "rRbB":
        prefix += body[0]
        body = body[1:]
    for quote in ('"""', "'''", '"', "'"):
        if body.startswith(quote) and body.endswith(quote) and len(body) >= 2 * len(quote):
            inner = body[len(quote) : -len(quote)]
            if "\\" in inner and "r" not in prefix.lower():
                return ANY
            return inner
    return ANY


def overlaps(read: Path, secret: Path) -> bool:
    """Whether reading ``read`` (whole) reads ``secret`` or a part of it: the paths agree on their common prefix.

    A presence test (``read`` ending in ``INSIDE``) reads ``secret`` only when the secret holds the
    tested path's parent: ``has(config.vault.creds.user)`` reads secret ``vault.creds``.
    """
    if read and read[-1] is INSIDE:
        read = read[:-1]
        if len(secret) > len(read):
            return False
    return all(a is ANY or b is ANY or a == b for a, b in zip(read, secret, strict=False))


def secrets_read(reads: Iterable[Path], secrets: Mapping[str, Iterable[tuple[str | int, ...]]]) -> list[str]:
    """The secret fields (``module.path``) that ``reads`` touch, sorted."""
    out: set[str] = set()
    for module, paths in secrets.items():
        for path in paths:
            full: Path = (module, *path)
            if any(overlaps(r, full) for r in reads):
                out.add(module + format_path(path)[1:])
    return sorted(out)
