"""Why a rule is false, in words: the offending value, not only the rule text.

Works on the rule's source text, splitting it at its top level (outside
brackets and string literals) and evaluating the pieces again:

1. ``a && b``: explain the first conjunct that is false;
2. ``xs.all(v, body)``: find the first element for which ``body`` is false,
   and explain ``body`` with ``v`` bound to it;
3. ``lhs OP rhs`` (``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``, ``in``):
   show the value of ``lhs`` and what it was compared with;
4. anything else (``||``, ``?:``, ``!``, ``exists``): no explanation; the
   caller shows the rule text.

Runs only for failing rules, so its cost does not matter. Values are shown
as compact JSON, cut at 80 characters; rules never see secret values.

With the sentence comes its *subject* as data: the ``config`` path (module
first) of the value the sentence is about, read from the rule's syntax tree
(``compiler.policy.celast``), so a finding is located at the line that set
the value without reading paths back out of the words (issue 14 §5).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from compiler.jsonpath import JsonPath
from compiler.jsontypes import JSONValue
from compiler.policy import celast
from compiler.policy.cel import EVAL_ERRORS
from compiler.policy.reads import ANY, unquote

Evaluate = Callable[[str, Mapping[str, JSONValue]], object]

_OPEN, _CLOSE = "([{", ")]}"
_RELATIONS = ("<=", ">=", "==", "!=", "<", ">")
_ALL = re.compile(r"\.\s*all\s*\(\s*([A-Za-z_]\w*)\s*,")
MAX_EVALUATIONS = 1_000
_VERBS = {"matches": "match", "startsWith": "start with", "endsWith": "end with", "contains": "contain"}
_PREDICATE = re.compile(r"(!?)\s*(.+?)\.(matches|startsWith|endsWith|contains)(?=\()(.*)", re.DOTALL)


def _top_level(text: str) -> Iterator[int]:
    """Indexes of characters of ``text`` at bracket depth 0 and outside string literals."""
    depth = 0
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            quote = text[i : i + 3] if text[i : i + 3] in ('"""', "'''") else c
            raw = i > 0 and text[i - 1] in "rR"
            i += len(quote)
            while i < n and text[i : i + len(quote)] != quote:
                i += 2 if text[i] == "\\" and not raw else 1
            i += len(quote)
            continue
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        elif depth == 0:
            yield i
        i += 1


def split_top(text: str, op: str) -> list[str]:
    """``text`` split at ``op`` where it occurs at the top level."""
    parts, start = [], 0
    positions = set(_top_level(text))
    i = 0
    while i < len(text):
        if i in positions and text.startswith(op, i) and all(i + k in positions for k in range(len(op))):
            parts.append(text[start:i])
            start = i + len(op)
            i = start
            continue
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _strip_parens(text: str) -> str:
    text = text.strip()
    while text.startswith("(") and _balanced(text):
        text = text[1:-1].strip()
    return text


def _balanced(text: str) -> bool:
    """Whether the bracket at ``text[0]`` closes at the very end (nothing of ``text`` is outside it)."""
    return text[-1:] in _CLOSE and not any(True for _ in _top_level(text))


def show(value: object) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except ValueError:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _OutOfBudget(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a rule is false: the sentence, and the ``config`` path (module first) it is about, if one."""

    text: str
    subject: JsonPath | None = None


# A comprehension variable -> the config path of the item it is bound to (None: not one value of config).
_Paths = dict[str, JsonPath | None]


def explain(rule: str, evaluate: Evaluate, *, budget: int = MAX_EVALUATIONS) -> Explanation | None:
    """A sentence saying which value makes ``rule`` false, and that value's path; None when there is none to give.

    At most ``budget`` evaluations (a count, not a time, so the answer is the
    same on every machine): a rule over a long list of big items gives up
    rather than stall the build.
    """
    calls = 0

    def counted(expression: str, bindings: Mapping[str, JSONValue]) -> object:
        nonlocal calls
        calls += 1
        if calls > budget:
            raise _OutOfBudget
        return evaluate(expression, bindings)

    try:
        return _explain(rule, {}, {}, {}, counted, depth=0)
    except (*EVAL_ERRORS, _OutOfBudget):
        return None


def rule_subject(rule: str, evaluate: Evaluate) -> JsonPath | None:
    """The first ``config`` value ``rule`` selects (for a finding with no explanation), or None."""
    try:
        return subject_of(rule, {}, evaluate)
    except (*EVAL_ERRORS, _OutOfBudget):
        return None


def subject_of(text: str, paths: _Paths, evaluate: Evaluate) -> JsonPath | None:
    """The config path of the first selection chain in ``text`` that starts at ``config`` or a bound item.

    ``config["m"].a[0]`` is ``("m", "a", 0)``; ``v.port`` with ``v`` bound to
    ``config.gw.routes[1]`` is ``("gw", "routes", 1, "port")``. A key the chain
    computes (``config.m[k]``) ends it: no one value is named.
    """
    try:
        tree = celast.parse(text)
    except (ValueError, RecursionError):
        return None
    return _first_chain(tree, paths, evaluate)


def _first_chain(node: celast.Node, paths: _Paths, evaluate: Evaluate) -> JsonPath | None:
    path = _chain(node, paths, evaluate)
    if path:
        return path
    children: tuple[celast.Node, ...] = ()
    if isinstance(node, celast.Call):
        children = node.args if node.target is None else (node.target, *node.args)
    elif isinstance(node, (celast.Select, celast.Index)):
        children = (node.operand,) if isinstance(node, celast.Select) else (node.operand, node.index)
    elif isinstance(node, celast.ListLit):
        children = node.items
    elif isinstance(node, celast.MapLit):
        children = tuple(n for entry in node.entries for n in entry)
    for child in children:
        found = _first_chain(child, paths, evaluate)
        if found:
            return found
    return None


def _chain(node: celast.Node, paths: _Paths, evaluate: Evaluate) -> JsonPath | None:
    """The config path ``node`` denotes when it is a chain of selections from ``config`` or a bound item."""
    keys: list[str | int] = []
    while isinstance(node, (celast.Select, celast.Index)):
        if isinstance(node, celast.Select):
            keys.append(node.field)
        else:
            key = _literal_key(node.index, evaluate)
            if key is None:
                return None
            keys.append(key)
        node = node.operand
    if not isinstance(node, celast.Ident):
        return None
    root = paths.get(node.name, () if node.name == "config" else None)
    if root is None:
        return None
    path = (*root, *reversed(keys))
    return path if path else None


def _literal_key(index: celast.Node, evaluate: Evaluate) -> str | int | None:
    if not isinstance(index, celast.Lit) or isinstance(index.value, bool):
        return None
    if isinstance(index.value, int):
        return index.value
    if not isinstance(index.value, str):
        return None
    key = unquote(index.value)
    if key is ANY:  # escapes: CEL itself reads the literal
        value = evaluate(index.value, {})
        return value if isinstance(value, str) else None
    return key if isinstance(key, str) else None


def _explain(
    text: str,
    bindings: dict[str, JSONValue],
    labels: dict[str, str],
    paths: _Paths,
    evaluate: Evaluate,
    *,
    depth: int,
) -> Explanation | None:
    text = _strip_parens(text)
    if depth > 8 or not text:
        return None
    if len(split_top(text, "||")) > 1 or "?" in (text[i] for i in _top_level(text)):
        return None
    conjuncts = split_top(text, "&&")
    if len(conjuncts) > 1:
        for part in conjuncts:
            if evaluate(part, bindings) is False:
                inner = _explain(part, bindings, labels, paths, evaluate, depth=depth + 1)
                return inner or Explanation(_label(part, labels) + " is false", subject_of(part, paths, evaluate))
        return None
    found = _comprehension(text)
    if found is not None:
        return _explain_all(*found, bindings, labels, paths, evaluate, depth=depth)
    return _explain_relation(text, bindings, labels, paths, evaluate)


def _comprehension(text: str) -> tuple[str, str, str] | None:
    """``(range, var, body)`` when ``text`` is exactly ``range.all(var, body)``."""
    top = set(_top_level(text))
    for m in reversed(list(_ALL.finditer(text))):
        if m.start() not in top or not text.endswith(")"):
            continue
        if not _balanced(text[text.index("(", m.start()) :]):
            continue
        return text[: m.start()].strip(), m.group(1), text[m.end() : -1].strip()
    return None


def _explain_all(
    range_text: str,
    var: str,
    body: str,
    bindings: dict[str, JSONValue],
    labels: dict[str, str],
    paths: _Paths,
    evaluate: Evaluate,
    *,
    depth: int,
) -> Explanation | None:
    items = evaluate(range_text, bindings)
    range_path = subject_of(range_text, paths, evaluate) if _chain_text(range_text) else None
    label = _label(range_text, labels)
    if isinstance(items, dict):
        pairs: list[tuple[JSONValue, str, JsonPath | None]] = [(k, show(k), None) for k in items]
    elif isinstance(items, list):
        pairs = [
            (v, show(v) if _scalar(v) else f"{label}[{i}]", None if range_path is None else (*range_path, i))
            for i, v in enumerate(items)
        ]
    else:
        return None
    if all(_scalar(p[0]) for p in pairs):
        # CEL maps (and lists ``filter`` makes of them) iterate in hash order, another on each run:
        # sorted, a finding names the same value every time (items named by value, not by index)
        pairs.sort(key=lambda p: (type(p[0]).__name__, p[1]))
    for value, where, at in pairs:
        inner = {**bindings, var: value}
        if evaluate(body, inner) is False:
            inner_paths = {**paths, var: at}
            reason = _explain(body, inner, {**labels, var: where}, inner_paths, evaluate, depth=depth + 1)
            shown = "" if _scalar(value) else f" ({show(value)})"
            return reason or Explanation(f"{where}{shown} fails {_label(body, {**labels, var: where})}", at)
    return None


def _chain_text(text: str) -> bool:
    """Whether ``text`` is exactly a chain of selections (``config.gw.routes``), not a computed list."""
    try:
        tree = celast.parse(text)
    except (ValueError, RecursionError):
        return False
    while isinstance(tree, (celast.Select, celast.Index)):
        tree = tree.operand
    return isinstance(tree, celast.Ident)


def _scalar(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _explain_relation(
    text: str, bindings: dict[str, JSONValue], labels: dict[str, str], paths: _Paths, evaluate: Evaluate
) -> Explanation:
    m = _PREDICATE.fullmatch(text)
    if m is not None and _balanced(text[m.end(3) :]):
        subject, arg = m.group(2), text[m.end(3) + 1 : -1]
        value, wanted = evaluate(subject, bindings), evaluate(arg, bindings)
        negated = "not " if m.group(1) else ""
        verb = _VERBS[m.group(3)]
        return Explanation(
            f"{_label(subject, labels)} is {show(value)}, expected it {negated}to {verb} {show(wanted)}",
            subject_of(subject, paths, evaluate) or subject_of(arg, paths, evaluate),
        )
    for i in _top_level(text):
        op = text[i : i + 2] if text[i : i + 2] in _RELATIONS else text[i] if text[i] in "<>" else None
        if op is None and re.match(r"in\b", text[i:]) and i > 0 and not (text[i - 1].isalnum() or text[i - 1] == "_"):
            op = "in"
        if op is not None:
            lhs, rhs = text[:i].strip(), text[i + len(op) :].strip()
            return Explanation(
                _relation(lhs, op, rhs, bindings, labels, evaluate),
                subject_of(lhs, paths, evaluate) or subject_of(rhs, paths, evaluate),
            )
    value = evaluate(text, bindings)
    return Explanation(f"{_label(text, labels)} is {show(value)}", subject_of(text, paths, evaluate))


def _relation(
    lhs: str, op: str, rhs: str, bindings: dict[str, JSONValue], labels: dict[str, str], evaluate: Evaluate
) -> str:
    left = evaluate(lhs, bindings)
    right = evaluate(rhs, bindings)
    expected = f"{op} {show(right)}"
    named = _label(rhs, labels)
    if named != show(right) and rhs != show(right) and len(named) <= 60:
        expected += f" ({named})"
    subject = _label(lhs, labels)
    subject = show(left) if subject == show(left) else f"{subject} is {show(left)}"
    return f"{subject}, expected {expected}"


def _label(text: str, labels: dict[str, str]) -> str:
    """``text`` with comprehension variables replaced by where their value came from."""
    for var, where in labels.items():
        text = re.sub(rf"(?<![\w.\"']){re.escape(var)}\b", where.replace("\\", "\\\\"), text)
    return text
