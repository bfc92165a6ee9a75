"""One exact text of a merge-tagged value, for cache keys (issue 14 §2): carry keys and module verdicts."""

from __future__ import annotations

import hashlib
import json

from compiler.load.yaml import Tagged

_TAG = "\u0000tag"


def exact_digest(value: object) -> str | None:
    """SHA-256 of ``value`` as canonical JSON with each merge tag written as ``{"\\u0000tag": [tag, value]}``;
    None when it cannot be written exactly (a value JSON has no form for, a key spelt like the marker)."""
    tags = 0

    def tagged(o: object) -> object:
        nonlocal tags
        if not isinstance(o, Tagged):
            raise TypeError(type(o).__name__)
        tags += 1
        return {_TAG: [o.tag, o.value]}

    try:
        text = json.dumps(value, sort_keys=True, ensure_ascii=True, allow_nan=False, default=tagged)
    except (TypeError, ValueError, RecursionError):
        return None
    if text.count(json.dumps(_TAG)) != tags:
        return None  # a key spelt like the marker: the text would not tell them apart
    return hashlib.sha256(text.encode()).hexdigest()


__all__ = ["exact_digest"]
