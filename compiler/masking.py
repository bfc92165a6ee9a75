"""The one secret masker: every output that may show config values masks secrets here.

The walk that masks is also the walk that seals (:func:`replace_paths`).

The rule (issue 14 §5, README "Trust model"): the value at a secret path is
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


def replace_paths(value: T, paths: Iterable[JsonPath], replace: Callable[[JsonPath, T], T]) -> T:
    """``value`` with the subtree at each of ``paths`` replaced by ``replace(path, subtree)``: the one walk.

    The rule of this module: a path enclosed by another of ``paths`` adds
    nothing, a path not in ``value`` is skipped, only the containers on the way
    are copied. Masking uses it, and so does sealing
    (``compiler.secrets.reader.seal_modules``), which needs the path for the AAD.

    Args:
        value: JSON-shaped data (maps with string keys, lists, scalars).
        paths: paths into ``value``, in any order, duplicates allowed.
        replace: what the subtree at a path becomes (called once per replaced path).
    """
    out = value
    done: set[JsonPath] = set()
    for path in sorted(set(paths), key=len):
        if any(path[:i] in done for i in range(len(path))):
            continue  # an enclosing path is replaced already
        done.add(path)
        out = _replace(out, path, 0, replace)
    return out


def mask_paths(value: T, paths: Iterable[JsonPath], stand_in: Callable[[T], T]) -> T:
    """``value`` with the subtree at each of ``paths`` replaced by ``stand_in(subtree)`` (:func:`replace_paths`)."""
    return replace_paths(value, paths, lambda _, secret: stand_in(secret))


def mask_text(value: T, paths: Iterable[JsonPath]) -> T:
    """``value`` with every secret at ``paths`` shown as :data:`SECRET_TEXT` (:func:`mask_paths`)."""
    return mask_paths(value, paths, _text)


def _text(_: T) -> T:
    return SECRET_TEXT  # type: ignore[return-value]  # a JSON string stands in for any JSON value


def _replace(node: T, path: JsonPath, depth: int, replace: Callable[[JsonPath, T], T]) -> T:
    if depth == len(path):
        return replace(path, node)
    head = path[depth]
    if isinstance(node, dict) and isinstance(head, str) and head in node:
        copy = dict(node)
        copy[head] = _replace(node[head], path, depth + 1, replace)
        return copy  # type: ignore[return-value]  # the same kind of container as node
    if isinstance(node, list) and isinstance(head, int) and 0 <= head < len(node):
        items = list(node)
        items[head] = _replace(node[head], path, depth + 1, replace)
        return items  # type: ignore[return-value]
    return node


__all__ = ["SECRET_TEXT", "mask_paths", "mask_text", "replace_paths"]
