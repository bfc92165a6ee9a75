"""Name the unknown key of a document, with the closest known one (issue 10, small ones).

A leaf module (difflib only, imported when a name is unknown): the key files readers open use it as well as
llmcc.yaml, and a service that reads bundles does not load pydantic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def unknown_field(name: object, known: Iterable[str]) -> str:
    """``unknown field 'enviroments' (did you mean 'environments'?)``."""
    return f"unknown field {name!r}{suggestion(name, known)}"


def unknown_target(name: str, known: Sequence[str], *, holder: str) -> str:
    """``unknown target 'prdo' (did you mean 'prod'?); llmcc.yaml defines: dev, prod``: one line, every known name.

    ``holder`` says where ``known`` comes from (``llmcc.yaml defines``,
    ``published in s3://b/p``); no known name reads ``HOLDER: nothing``.
    """
    import difflib  # an error's path only (~1 ms at import): not paid by every run that loads a key file

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown target {name!r}{hint}; {holder}: {', '.join(known) or 'nothing'}"


def suggestion(name: object, known: Iterable[str]) -> str:
    """`` (did you mean 'environments'?)``, or the known fields when none is close (difflib's ratio >= 0.6)."""
    import difflib  # an error's path only

    choices = sorted(known)
    close = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (expected one of: {', '.join(choices)})" if choices else ""


__all__ = ["suggestion", "unknown_field", "unknown_target"]
