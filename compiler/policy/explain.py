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
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping

from compiler.jsontypes import JSONValue
from compiler.policy.cel import EVAL_ERRORS

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


def explain(rule: str, evaluate: Evaluate, *, budget: int = MAX_EVALUATIONS) -> str | None:
    """A sentence saying which value makes ``rule`` false, or None when there is none to give.

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
        return _explain(rule, {}, {}, counted, depth=0)
    except (*EVAL_ERRORS, _OutOfBudget):
        return None


def _explain(
    text: str, bindings: dict[str, JSONValue], labels: dict[str, str], evaluate: Evaluate, *, depth: int
) -> str | None:
    text = _strip_parens(text)
    if depth > 8 or not text:
        return None
    if len(split_top(text, "||")) > 1 or "?" in (text[i] for i in _top_level(text)):
        return None
    conjuncts = split_top(text, "&&")
    if len(conjuncts) > 1:
        for part in conjuncts:
            if evaluate(part, bindings) is False:
                return _explain(part, bindings, labels, evaluate, depth=depth + 1) or _label(part, labels) + " is false"
        return None
    found = _comprehension(text)
    if found is not None:
        return _explain_all(*found, bindings, labels, evaluate, depth=depth)
    return _explain_relation(text, bindings, labels, evaluate)


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
    evaluate: Evaluate,
    *,
    depth: int,
) -> str | None:
    items = evaluate(range_text, bindings)
    label = _label(range_text, labels)
    if isinstance(items, dict):
        pairs: list[tuple[JSONValue, str]] = [(k, show(k)) for k in items]
    elif isinstance(items, list):
        pairs = [(v, show(v) if _scalar(v) else f"{label}[{i}]") for i, v in enumerate(items)]
    else:
        return None
    if all(_scalar(v) for v, _ in pairs):
        # CEL maps (and lists ``filter`` makes of them) iterate in hash order, another on each run:
        # sorted, a finding names the same value every time (items named by value, not by index)
        pairs.sort(key=lambda p: (type(p[0]).__name__, p[1]))
    for value, where in pairs:
        inner = {**bindings, var: value}
        if evaluate(body, inner) is False:
            reason = _explain(body, inner, {**labels, var: where}, evaluate, depth=depth + 1)
            shown = "" if _scalar(value) else f" ({show(value)})"
            return reason or f"{where}{shown} fails {_label(body, {**labels, var: where})}"
    return None


def _scalar(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _explain_relation(
    text: str, bindings: dict[str, JSONValue], labels: dict[str, str], evaluate: Evaluate
) -> str | None:
    m = _PREDICATE.fullmatch(text)
    if m is not None and _balanced(text[m.end(3) :]):
        subject, arg = m.group(2), text[m.end(3) + 1 : -1]
        value, wanted = evaluate(subject, bindings), evaluate(arg, bindings)
        negated = "not " if m.group(1) else ""
        verb = _VERBS[m.group(3)]
        return f"{_label(subject, labels)} is {show(value)}, expected it {negated}to {verb} {show(wanted)}"
    for i in _top_level(text):
        op = text[i : i + 2] if text[i : i + 2] in _RELATIONS else text[i] if text[i] in "<>" else None
        if op is None and re.match(r"in\b", text[i:]) and i > 0 and not (text[i - 1].isalnum() or text[i - 1] == "_"):
            op = "in"
        if op is not None:
            return _relation(text[:i].strip(), op, text[i + len(op) :].strip(), bindings, labels, evaluate)
    value = evaluate(text, bindings)
    return f"{_label(text, labels)} is {show(value)}"


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
