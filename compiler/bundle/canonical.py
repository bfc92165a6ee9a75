"""The one canonical JSON encoding of bundles (docs/bundle-format.md, STYLE R13)."""

from __future__ import annotations

import hashlib
import json
import math
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]

from compiler.jsontypes import JSONValue

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_ENCODE = _ENCODER.encode
# The C encoder that ``_ENCODE`` builds on every call (json.encoder.JSONEncoder.iterencode),
# built once: the same arguments, so the same text, without the per-call set-up that cost
# more than encoding a small map. No circular-reference markers: loaded values are trees
# (a YAML alias refers to a node already complete), and a cycle would still fail, as a
# RecursionError. None where the C accelerator is missing.
_C_ENCODER = (
    None
    if c_make_encoder is None
    else c_make_encoder(None, _ENCODER.default, encode_basestring, None, ":", ",", True, False, False)
)


def _whole(obj: object) -> str:
    return _ENCODE(obj) if _C_ENCODER is None else "".join(_C_ENCODER(obj, 0))


def _value(obj: object) -> str:
    """``_whole(obj)``; a string or an int (most leaves) without the encoder's set-up, as it spells them."""
    if type(obj) is str:
        text: str = encode_basestring(obj)
        return text
    if type(obj) is int:  # not a bool, a subclass
        return int.__repr__(obj)
    return _whole(obj)


def canonical_text(obj: JSONValue) -> str:
    """``canonical_json(obj)`` as text, for a small value (no cache; ValueError as ``json`` raises it)."""
    return _whole(obj)


class InvalidJsonError(ValueError):
    """Bytes that are not strict JSON (``loads_strict``'s rules): bad UTF-8, a repeated key, NaN, ..."""


class NotCanonicalError(ValueError):
    """Strict JSON, but not byte for byte its canonical form (``canonical_json``)."""


# id(dict) -> (the dict, its canonical text, each member's text '"key":value' by key in sorted
# order, or None for a map with a key that is not a string). Holding the dict keeps its id from
# being reused.
EncodingCache = dict[int, tuple[object, str, dict[str, str] | None]]
# id(dict) -> (the dict, each member's text by key in sorted order): the maps ``like`` assembled
# from their members, so a caller can find where a path's value sits in the text.
Members = dict[int, tuple[object, dict[str, str]]]


def canonical_json(
    obj: JSONValue,
    *,
    cache: EncodingCache | None = None,
    store: bool = False,
    like: JSONValue = None,
    members: Members | None = None,
) -> bytes:
    """``json.dumps(sort_keys, no whitespace, ensure_ascii=False)`` in UTF-8.

    Floats keep their decimal point (``1.0`` stays ``1.0``); NaN and infinities
    are refused because JSON has no spelling for them.

    ``cache`` reuses the text of maps already encoded. ``store`` encodes ``obj``
    and keeps the text of every map in it, and of each member, in the cache.
    ``like`` is a value of the same shape whose maps were stored before: where
    ``obj`` holds, at the same path, the very map ``like`` holds (``is``), its text
    is reused; where it holds a copy that changed some members, only those members
    are encoded and spliced among the stored ones. Merged configurations are such
    copies -- a tenant's modules share every subtree its layers did not change with
    its environment's (``compiler.compile.inherit``) -- so a tenant's bundle
    encodes only what its layers changed, and the walk visits only the maps on the
    way to a change. Values must not be mutated after they were stored (the
    pipeline never mutates). The bytes are the same with or without the cache.
    ``members`` (with ``like``) receives the member texts of every map the walk
    assembled from members (the other maps' are in ``cache`` or were encoded whole).
    """
    try:
        if cache is None:
            text = _ENCODE(obj)
        elif store:
            text = _store(obj, cache)
        else:
            text = _like(obj, like, cache, members)
    except ValueError as e:
        raise ValueError(f"not representable in JSON: {e}") from e
    return text.encode("utf-8")


# '"key":' by key: the same few hundred keys recur in every target's modules.
_KEYS: dict[str, str] = {}


def _key(k: str) -> str:
    text = _KEYS.get(k)
    if text is None:
        text = _KEYS[k] = encode_basestring(k) + ":"
    return text


def _store(obj: JSONValue, cache: EncodingCache) -> str:
    if type(obj) is not dict:
        return _whole(obj)
    hit = cache.get(id(obj))
    if hit is not None and hit[0] is obj:
        return hit[1]
    if not all(type(k) is str for k in obj):
        text = _whole(obj)  # non-string keys: let json coerce or report exactly as it would
        cache[id(obj)] = (obj, text, None)
        return text
    parts = {k: _key(k) + (_store(v, cache) if type(v) is dict else _value(v)) for k, v in sorted(obj.items())}
    text = "{" + ",".join(parts.values()) + "}"
    cache[id(obj)] = (obj, text, parts)
    return text


def _like(obj: JSONValue, like: JSONValue, cache: EncodingCache, members: Members | None = None) -> str:
    if type(obj) is not dict or type(like) is not dict:
        return _whole(obj)
    hit = cache.get(id(like))
    if hit is None or hit[0] is not like:  # not stored (a caller's wrapper): walk it key by key
        if not all(type(k) is str for k in obj):
            return _whole(obj)
        keys = sorted(obj)
        texts = [_key(k) + _like(obj[k], like.get(k), cache, members) for k in keys]
        if members is not None:
            members[id(obj)] = (obj, dict(zip(keys, texts, strict=True)))
        return "{" + ",".join(texts) + "}"
    if obj is like:
        return hit[1]
    stored = hit[2]
    if stored is None:
        return _whole(obj)
    if obj.keys() != stored.keys():
        if not all(type(k) is str for k in obj):
            return _whole(obj)
        keys = sorted(obj)
        texts = [_member(k, obj[k], like, stored, cache, members) for k in keys]
        if members is not None:
            members[id(obj)] = (obj, dict(zip(keys, texts, strict=True)))
        return "{" + ",".join(texts) + "}"
    changed = [k for k, v in obj.items() if v is not like[k]]
    if len(changed) == len(stored) and not any(type(v) is dict for v in obj.values()):
        return _whole(obj)  # nothing shared, nothing below to share: one call of the C encoder
    parts = stored.copy()  # in sorted key order, as stored
    for k in changed:
        v = obj[k]
        parts[k] = _key(k) + (_like(v, like[k], cache, members) if type(v) is dict else _value(v))
    if members is not None:
        members[id(obj)] = (obj, parts)
    return "{" + ",".join(parts.values()) + "}"


def _member(
    k: str,
    v: JSONValue,
    like: dict[str, JSONValue],
    stored: dict[str, str],
    cache: EncodingCache,
    members: Members | None,
) -> str:
    if k not in like:
        return _key(k) + _value(v)
    old = like[k]
    return stored[k] if v is old else _key(k) + _like(v, old, cache, members)


def reject_duplicate_keys(pairs: list[tuple[str, JSONValue]]) -> dict[str, JSONValue]:
    """``object_pairs_hook`` for ``json.loads``: a repeated key is a ValueError, not last-wins."""
    out = dict(pairs)  # built in C; a repeated key leaves fewer entries than pairs
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return out


def loads_strict(data: bytes) -> JSONValue:
    """JSON from UTF-8 bytes; bad UTF-8 and repeated keys are ValueErrors (UnicodeDecodeError is one).

    So are ``NaN``/``Infinity`` (Python's extension, not JSON: RFC 8259 section 6),
    a number beyond a double's range, which ``json`` would read as infinity, and
    nesting deeper than the interpreter's recursion limit (RecursionError in ``json``).
    """
    try:
        value: JSONValue = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=reject_duplicate_keys,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except RecursionError as e:  # json's C scanner: nesting past the interpreter's recursion limit
        raise ValueError("nested too deep") from e
    return value


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or infinity)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is beyond the range of a double")
    return value


def loads_canonical(data: bytes) -> JSONValue:
    """Parse ``data`` and check it is exactly its canonical form.

    Raises:
        InvalidJsonError: not strict JSON (``"not valid JSON: ..."``).
        NotCanonicalError: valid, but not canonical (``"not canonical"``).
    """
    try:
        value = loads_strict(data)
        canonical = canonical_json(value)
    except ValueError as e:
        raise InvalidJsonError(f"not valid JSON: {e}") from e
    if canonical != data:
        raise NotCanonicalError("not canonical")
    return value


def digest(data: bytes) -> str:
    """``sha256:<lowercase hex>``, the form of ``metadata.previous``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()
