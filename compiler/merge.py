"""Layer merge rules (README "How it works"): maps deep-merge; scalars and lists replace;
``!override`` replaces a subtree, ``!append``/``!prepend`` extend lists,
``!delete`` removes a key.

Invariants:

1. Inputs are never mutated. The result shares every subtree the patch does
   not touch (copy-on-write), so merging one small layer over a large tree
   costs the size of the layer, not of the tree.
2. The result holds no ``Tagged`` node.
3. A tag that does not fit what it lands on (``!append`` onto a map,
   ``!delete`` outside a map) is an ``InputError`` at the tag's file:line.
"""

from __future__ import annotations

from compiler.errors import InputError
from compiler.load.yaml import Tagged, Value, type_name


def merge_value(base: Value, patch: Value, *, tagged: bool = True) -> Value:
    """Merge ``patch`` (a layer's node, may carry tags) over ``base`` (tag-free).

    ``tagged=False`` promises that ``patch`` holds no tag (its file had none),
    which saves walking new subtrees for tags.
    """
    if isinstance(patch, Tagged):
        return _merge_tagged(base, patch)
    if isinstance(patch, dict):
        if not isinstance(base, dict):
            return strip_tags(patch) if tagged else patch
        return _merge_maps(base, patch, tagged)
    if isinstance(patch, list):
        return strip_tags(patch) if tagged else patch
    return patch


def _merge_maps(base: dict[str, Value], patch: dict[str, Value], tagged: bool) -> dict[str, Value]:
    out: dict[str, Value] | None = None
    for key, p in patch.items():
        if isinstance(p, Tagged) and p.tag == "delete":
            if key in base:
                if out is None:
                    out = dict(base)
                out.pop(key, None)
            continue
        old = base.get(key)
        new = merge_value(old, p, tagged=tagged)
        if new is old and key in base:
            continue
        if out is None:
            out = dict(base)
        out[key] = new
    return base if out is None else out


def _merge_tagged(base: Value, patch: Tagged) -> Value:
    if patch.tag == "override":
        return strip_tags(patch.value)
    if patch.tag == "delete":
        raise InputError(f"{patch.origin.location()}: !delete only removes a key of a map")
    items = strip_tags(patch.value)
    assert isinstance(items, list)  # checked by the loader
    if base is None:
        return items
    if not isinstance(base, list):
        raise InputError(f"{patch.origin.location()}: !{patch.tag} onto {type_name(base)}; it extends lists only")
    return [*base, *items] if patch.tag == "append" else [*items, *base]


def strip_tags(value: Value) -> Value:
    """The value a tagged subtree stands for when nothing lies below it.

    Returns ``value`` itself (no copy) when it holds no tag.
    """
    if isinstance(value, Tagged):
        if value.tag == "delete":
            raise InputError(f"{value.origin.location()}: !delete only removes a key of a map")
        return strip_tags(value.value)
    if isinstance(value, dict):
        out: dict[str, Value] | None = None
        for k, v in value.items():
            if isinstance(v, Tagged) and v.tag == "delete":
                if out is None:
                    out = dict(value)
                del out[k]
            elif isinstance(v, (Tagged, dict, list)):
                new = strip_tags(v)
                if new is not v:
                    if out is None:
                        out = dict(value)
                    out[k] = new
        return value if out is None else out
    if isinstance(value, list):
        items: list[Value] | None = None
        for i, v in enumerate(value):
            if isinstance(v, (Tagged, dict, list)):
                new = strip_tags(v)
                if new is not v:
                    if items is None:
                        items = list(value)
                    items[i] = new
        return value if items is None else items
    return value


def merge_layers(base: Value, patches: list[tuple[Value, bool]]) -> Value:
    """Merge each ``(patch, tagged)`` in order (lowest precedence first) over a tag-free ``base``."""
    out = base
    for patch, tagged in patches:
        out = merge_value(out, patch, tagged=tagged)
    return out
