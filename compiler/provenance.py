"""Which files set a value: computed on demand from the layers, never stored per value.

Merging keeps no per-value origins (that would cost more than the merge at
200 targets x 10,000 values); an error or ``explain`` asks here, and the
answer is recomputed from the same layer files the merge used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from compiler.diagnostics import Diagnostic, Origin
from compiler.jsonpath import JsonPath
from compiler.load.yaml import Tagged, Value

if TYPE_CHECKING:
    from compiler.pipeline import TargetStack
    from compiler.repository import Repository

Kind = Literal["set", "override", "append", "prepend", "delete", "template", "variable"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Contribution:
    """One file line that shaped a value. ``detail`` names the variable or tag."""

    kind: Kind
    origin: Origin
    detail: str = ""
    effective: bool = True


def trace(
    repo: Repository, stack: TargetStack, module: str, path: JsonPath, *, shadowed: bool = False
) -> list[Contribution]:
    """Every layer line that set or changed ``module`` at ``path``, the top (winning) one first.

    Stops below the line that replaced the value, unless ``shadowed`` asks for
    the overridden lines too (they come back with ``effective=False``).
    A list is traced as a whole: ``path`` is cut at its first index.
    """
    for i, part in enumerate(path):
        if isinstance(part, int):
            path = path[:i]
            break
    out: list[Contribution] = []
    effective = True
    for layer in reversed(stack.layers):
        if module not in layer.modules:
            continue
        found = _walk(layer.modules[module], path)
        if found is None:
            continue
        kind, depth, node = found
        doc = layer.document
        origin = node.origin if isinstance(node, Tagged) else doc.origin(("modules", module, *path[:depth]))
        out.append(Contribution(kind=kind, origin=origin, effective=effective))
        if kind in ("override", "delete") or (kind == "set" and not isinstance(node, dict)):
            if not shadowed:
                return out  # replaced everything below it
            effective = False
    for plan in reversed(repo.templates(module)):
        for depth in range(len(path), -1, -1):
            if path[:depth] in plan.exprs:
                expr = plan.exprs[path[:depth]]
                where = plan.document.origin(path[:depth])
                out.append(Contribution(kind="template", origin=where, detail=expr.source, effective=effective))
                out.extend(_variables(stack, expr.names, effective))
                return out
        if _walk(plan.static, path) is not None:
            out.append(Contribution(kind="template", origin=plan.document.origin(path), effective=effective))
            return out
    return out


def _walk(node: Value, path: JsonPath) -> tuple[Kind, int, Value] | None:
    """How a patch touches ``path``: (kind, depth reached, node there), or None."""
    for depth, key in enumerate(path):
        if isinstance(node, Tagged):
            if node.tag == "override":
                return "override", depth, node
            return None
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    if isinstance(node, Tagged):
        return node.tag, len(path), node
    return "set", len(path), node


def _variables(stack: TargetStack, names: tuple[str, ...], effective: bool) -> list[Contribution]:
    out = []
    for name in names:
        for layer in reversed(stack.layers):
            if name in layer.vars:
                origin = layer.document.origin(("vars", name))
                out.append(Contribution(kind="variable", origin=origin, detail=name, effective=effective))
                break
    return out


def diagnose(repo: Repository, stack: TargetStack, module: str, path: JsonPath, message: str) -> Diagnostic:
    """A diagnostic at the line that set the offending value, with the variable lines as notes."""
    contributions = trace(repo, stack, module, path)
    origin = contributions[0].origin if contributions else None
    notes = tuple(
        f"{c.origin.location()}: variable {c.detail!r} set here (layer {c.origin.layer})"
        for c in contributions
        if c.kind == "variable"
    )
    return Diagnostic(message=message, origin=origin, module=module, path=path, notes=notes)
