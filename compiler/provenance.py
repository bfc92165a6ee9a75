"""Which files set a value: computed on demand from the layers, never stored per value.

Merging keeps no per-value origins (that would cost more than the merge at
200 targets x 10,000 values); an error or ``explain`` asks here, and the
answer is recomputed from the same layer files the merge used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from compiler.diagnostics import Diagnostic, Origin
from compiler.jsonpath import JsonPath
from compiler.load.yaml import Document, Tagged, Value
from compiler.render.jinja import Renderer, names_read

if TYPE_CHECKING:
    from compiler.compile.repository import Repository
    from compiler.compile.types import TargetStack
    from compiler.render.jinja import TemplatePlan

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
                out.extend(_variables(stack, names_read(expr), effective, shadowed=shadowed))
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


def _variables(
    stack: TargetStack, names: tuple[str, ...], effective: bool, *, shadowed: bool = False
) -> list[Contribution]:
    """The layer lines that set each variable: the winning one, or with ``shadowed`` all, top first."""
    out = []
    for name in names:
        first = True
        for layer in reversed(stack.layers):
            if name in layer.vars:
                origin = layer.document.origin(("vars", name))
                out.append(Contribution(kind="variable", origin=origin, detail=name, effective=effective and first))
                first = False
                if not shadowed:
                    break
    return out


Owners = list[list[Contribution]]  # per list item: the lines that put it there


def trace_item(repo: Repository, stack: TargetStack, module: str, path: JsonPath) -> list[Contribution] | None:
    """The lines that put the list item at ``path`` there (its first index picks the item).

    ``trace`` follows a list as a whole, so an item appended by a lower layer
    would be blamed on the top ``!append``. This replays the list's history
    bottom-up instead -- the template's items, then each layer's
    ``!append``/``!prepend`` or replacement -- and returns None when the
    history cannot tell (then ``trace`` answers).
    """
    cut = next((i for i, part in enumerate(path) if isinstance(part, int)), None)
    if cut is None:
        return None
    list_path, index, rest = path[:cut], path[cut], path[cut + 1 :]
    assert isinstance(index, int)
    owners: Owners | None = []
    for plan in repo.templates(module):
        owners = _replay_template(stack, plan, list_path, rest, owners)
    for layer in stack.layers:
        if module in layer.modules:
            step, items = _step(layer.modules[module], list_path)
            owners = _apply(step, items, owners, _layer_item(layer.document, ("modules", module, *list_path), rest))
    if owners is None or not 0 <= index < len(owners):
        return None
    return owners[index]


def _replay_template(
    stack: TargetStack, plan: TemplatePlan, list_path: JsonPath, rest: JsonPath, owners: Owners | None
) -> Owners | None:
    for depth in range(len(list_path), -1, -1):
        expr = plan.exprs.get(list_path[:depth])
        if expr is not None:  # the whole list comes from one expression
            value = Renderer(stack.variables, {}).value_at(plan, list_path[:depth])
            for key in list_path[depth:]:
                value = value.get(key) if isinstance(value, dict) and isinstance(key, str) else None
            if not isinstance(value, list):
                return []
            return [_expr_owner(stack, plan, list_path[:depth])] * len(value)
    step, items = _step(plan.static, list_path)

    def item(j: int, kind: Kind) -> list[Contribution]:
        item_path = (*list_path, j, *rest)
        for depth in range(len(item_path), len(list_path), -1):
            if item_path[:depth] in plan.exprs:
                return _expr_owner(stack, plan, item_path[:depth])
        return [Contribution(kind="template", origin=plan.document.origin(item_path))]

    return _apply(step, items, owners, item)


def _expr_owner(stack: TargetStack, plan: TemplatePlan, path: JsonPath) -> list[Contribution]:
    expr = plan.exprs[path]
    origin = plan.document.origin(path)
    return [
        Contribution(kind="template", origin=origin, detail=expr.source),
        *_variables(stack, names_read(expr), True),
    ]


def _layer_item(doc: Document, prefix: JsonPath, rest: JsonPath) -> Callable[[int, Kind], list[Contribution]]:
    def item(j: int, kind: Kind) -> list[Contribution]:
        return [Contribution(kind=kind, origin=doc.origin((*prefix, j, *rest)))]

    return item


Step = Literal["keep", "replace", "append", "prepend", "unknown"]


def _step(node: Value, list_path: JsonPath) -> tuple[Step, int]:
    """What a patch does to the list at ``list_path``, and how many items it brings."""
    replaced = False
    for key in list_path:
        if isinstance(node, Tagged):
            if node.tag != "override":
                return ("replace", 0) if node.tag == "delete" else ("unknown", 0)
            node, replaced = node.value, True
        if not isinstance(node, dict):
            return "replace", 0  # a non-map above the list: no list left here
        if key not in node:
            return ("replace", 0) if replaced else ("keep", 0)
        node = node[key]
    if isinstance(node, Tagged):
        if node.tag in ("append", "prepend") and isinstance(node.value, list) and not replaced:
            return node.tag, len(node.value)
        node = node.value if node.tag != "delete" else None
    return "replace", len(node) if isinstance(node, list) else 0


def _apply(step: Step, n: int, owners: Owners | None, item: Callable[[int, Kind], list[Contribution]]) -> Owners | None:
    if step == "keep":
        return owners
    if step == "replace":
        return [item(j, "set") for j in range(n)]
    if step == "unknown" or owners is None:
        return None
    new = [item(j, step) for j in range(n)]
    return [*owners, *new] if step == "append" else [*new, *owners]


def diagnose(repo: Repository, stack: TargetStack, module: str, path: JsonPath, message: str) -> Diagnostic:
    """A diagnostic at the line that set the offending value.

    For a value a template expression computed from variables, that is the line
    that set the (first) variable -- where a reviewer's change usually is -- and
    the template line and any other variables come as notes.
    """
    contributions = trace_item(repo, stack, module, path) or trace(repo, stack, module, path)
    origin = contributions[0].origin if contributions else None
    variables = [c for c in contributions if c.kind == "variable"]
    notes: list[str] = []
    if variables and contributions[0].kind == "template":
        template = contributions[0]
        origin = variables[0].origin
        notes.append(f"{template.origin.location()}: via template {template.detail.strip()!r}")
        variables = variables[1:]
    notes += [
        f"{c.origin.location()}: variable {c.detail!r} set here"
        + (f" (layer {name})" if (name := c.origin.layer_name) else "")
        for c in variables
    ]
    return Diagnostic(message=message, origin=origin, module=module, path=path, notes=tuple(notes))
