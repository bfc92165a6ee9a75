"""Tenant targets start from their environment's merged modules instead of from scratch.

A tenant target's layers are its environment's layers plus the tenant files on
top (README "How it works"), so its effective module equals the environment's effective
module, with

1. each template scalar re-rendered whose variables the tenant changed --
   unless an environment layer already replaced that value (then the template
   value never showed), and
2. the tenant layers merged on top.

Where that shortcut cannot be shown equal to the full merge -- a changed
template value that an environment layer deep-merges into or extends, a
template with ``extends`` or tags -- the module is merged in full. The result
is always the same as ``pipeline.merge_module``; tests compare both on every
example and on generated workloads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from compiler.jsonpath import JsonPath
from compiler.load.yaml import Tagged, Value
from compiler.merge import merge_layers

if TYPE_CHECKING:
    from compiler.compile.repository import Repository
    from compiler.compile.types import TargetStack
    from compiler.render.jinja import Renderer, TemplatePlan

Reach = Literal["free", "hidden", "complex"]


def changed_variables(base: TargetStack, stack: TargetStack, renderer: Renderer, base_renderer: Renderer) -> set[str]:
    """Top-level variables whose value differs between the environment and the tenant target."""
    candidates = {name for layer in stack.layers[len(base.layers) :] for name in layer.vars}
    return {n for n in candidates if renderer.fingerprint(n) != base_renderer.fingerprint(n)}


def inherit_module(
    repo: Repository,
    module: str,
    base: TargetStack,
    base_value: Value,
    stack: TargetStack,
    changed: set[str],
    renderer: Renderer,
    reach_cache: dict[tuple[str, JsonPath], Reach],
) -> Value | None:
    """The tenant's module built on the environment's, or None when it must be merged in full.

    ``reach_cache`` remembers, per environment, how its layers treat each template path.
    """
    plans = repo.templates(module)
    value = base_value
    if plans:
        if len(plans) > 1 or plans[0].document.tagged:
            return None
        env_patches = [layer.modules[module] for layer in base.layers if module in layer.modules]
        for path in _changed_slots(plans[0], changed):
            reach = reach_cache.get((module, path))
            if reach is None:
                reach = reach_cache[(module, path)] = _reach(env_patches, path)
            if reach == "complex":
                return None
            if reach == "free":
                value = _assoc(value, path, 0, renderer.value_at(plans[0], path))
    patches = [
        (layer.modules[module], layer.document.tagged)
        for layer in stack.layers[len(base.layers) :]
        if module in layer.modules
    ]
    return merge_layers(value, patches)


def _changed_slots(plan: TemplatePlan, changed: set[str]) -> list[JsonPath]:
    """The template's scalars that read a variable of ``changed``, in path order (remembered per set:
    tenants of one environment mostly change the same variables)."""
    if not changed:
        return []
    key = frozenset(changed)
    paths = plan.changed_slots.get(key)
    if paths is None:
        found = {p for name in changed for p in plan.readers.get(name, ())}
        paths = plan.changed_slots[key] = sorted(found, key=lambda p: [str(k) for k in p])
    return paths


def reach(patches: list[Value], path: JsonPath) -> Reach:
    """Whether the template value at ``path`` survives ``patches`` (layers' modules) unchanged:
    ``free``; ``hidden`` when a layer replaces it; ``complex`` when one merges into or extends it."""
    return _reach(patches, path)


def _reach(patches: list[Value], path: JsonPath) -> Reach:
    """Whether the template value at ``path`` survives the environment's layers unchanged."""
    for patch in patches:
        node = patch
        for depth in range(len(path) + 1):
            if isinstance(node, Tagged):
                if node.tag in ("override", "delete"):
                    return "hidden"
                return "complex"  # a list extended around the template's value
            if depth == len(path):
                return "complex" if isinstance(node, dict) else "hidden"
            if not isinstance(node, dict):
                return "hidden"  # replaced at an ancestor
            key = path[depth]
            if not isinstance(key, str):
                return "hidden"  # a map laid over the template's list replaces it
            if key not in node:
                break  # this layer does not reach the path
            node = node[key]
    return "free"


def _assoc(node: Value, path: JsonPath, depth: int, value: Value) -> Value:
    """``node`` with ``value`` at ``path``, copying only the branch on the way (the path exists)."""
    if depth == len(path):
        return value
    key = path[depth]
    if isinstance(node, dict) and isinstance(key, str):
        out = dict(node)
        out[key] = _assoc(node[key], path, depth + 1, value)
        return out
    assert isinstance(node, list)
    assert isinstance(key, int)
    items = list(node)
    items[key] = _assoc(node[key], path, depth + 1, value)
    return items
