"""The one secret masker: every output that may show config values masks secrets here.

The rule (issue 14 §5, README "Secrets"): the value at a secret path is
replaced *whole* by a stand-in -- a scalar, a map, a list and ``null`` alike,
so neither its content nor its shape nor its absence of a value shows. A
path that is enclosed by another secret path adds nothing (the enclosing
stand-in wins). A path that does not exist in the value is skipped (an
optional field). Only the maps and lists on the way to a secret are copied;
everything else is shared with the input, which is never changed.

The stand-in is :data:`SECRET_TEXT` for what people and rules read
(``explain``, policy rules, the agent's masked view) and a keyed digest for
what is compared (``compiler.diff.masking``). Which paths are secret is the
caller's: a schema's ``x-secret`` marks, plus, for outputs of a compiled
target, every value a SOPS file set (``compiler.diff.masking.secret_fields``).

A leaf of the runtime tier: imports nothing but ``compiler.jsonpath``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from compiler.jsonpath import JsonPath

SECRET_TEXT = "<secret>"  # noqa: S105 - the placeholder shown instead of a secret value

T = TypeVar("T")


def mask_paths(value: T, paths: Iterable[JsonPath], stand_in: Callable[[T], T]) -> T:
    """``value`` with the subtree at each of ``paths`` replaced by ``stand_in(subtree)``.

    Args:
        value: JSON-shaped data (maps with string keys, lists, scalars).
        paths: secret paths into ``value``, in any order, duplicates allowed.
        stand_in: what a secret subtree becomes (called once per masked path).
    """
    out = value
    done: set[JsonPath] = set()
    for path in sorted(set(paths), key=len):
        if any(path[:i] in done for i in range(len(path))):
            continue  # an enclosing path is masked already
        done.add(path)
        out = _replace(out, path, stand_in)
    return out


def mask_text(value: T, paths: Iterable[JsonPath]) -> T:
    """``value`` with every secret at ``paths`` shown as :data:`SECRET_TEXT` (:func:`mask_paths`)."""
    return mask_paths(value, paths, _text)


def _text(_: T) -> T:
    return SECRET_TEXT  # type: ignore[return-value]  # a JSON string stands in for any JSON value


def _replace(node: T, path: JsonPath, stand_in: Callable[[T], T]) -> T:
    if not path:
        return stand_in(node)
    head, rest = path[0], path[1:]
    if isinstance(node, dict) and isinstance(head, str) and head in node:
        copy = dict(node)
        copy[head] = _replace(node[head], rest, stand_in)
        return copy  # type: ignore[return-value]  # the same kind of container as node
    if isinstance(node, list) and isinstance(head, int) and 0 <= head < len(node):
        items = list(node)
        items[head] = _replace(node[head], rest, stand_in)
        return items  # type: ignore[return-value]
    return node


__all__ = ["SECRET_TEXT", "mask_paths", "mask_text"]
