"""The body of the marked review comment: its marker, and a cut that keeps the markdown whole.

Pure text functions; ``compiler.ci.forges`` posts the result.

A platform refuses a comment over its size limit (GitHub 65,536 characters,
GitLab 1,000,000), so an over-long body is cut at a line boundary, its open
code fence and ``<details>`` blocks closed, and a note appended that points at
the job artifact holding the whole diff.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^(`{3,}|~{3,})")
_MARKER_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def marker_line(name: str) -> str:
    """The hidden HTML comment a marked comment starts with: ``<!-- llmcc:NAME -->``.

    Raises:
        ValueError: ``name`` is not 1-64 of ``A-Z a-z 0-9 . _ -`` (it must not close the comment).
    """
    if not _MARKER_NAME.match(name):
        raise ValueError(f"marker {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return f"<!-- llmcc:{name} -->"


def is_marked(body: str, marker: str) -> bool:
    """Whether a comment's body is the marked comment (its first line is ``marker``)."""
    return body.lstrip("\ufeff").split("\n", 1)[0].strip() == marker


def comment_body(text: str, marker: str, *, limit: int, artifact: str | None) -> str:
    """``marker``, then ``text``, cut to at most ``limit`` characters with a pointer to ``artifact``.

    Args:
        text: the markdown to post (``llmcc diff --format markdown``, maybe with more before it).
        limit: the platform's limit in characters (Python ``str`` length).
        artifact: where the whole text can be read (a URL or a description), named in the note.
    """
    head = marker + "\n"
    if len(head) + len(text) <= limit:
        return head + text
    where = f" in the job artifact: {artifact}" if artifact else " in this job's artifacts"
    note = (
        f"\n\n> **Cut:** this comment shows the first {{shown:,}} of {len(text):,} characters"
        f" (the limit of a comment is {limit:,}); the whole diff is{where}\n"
    )
    budget = limit - len(head) - len(note) - 16
    lines = text[: max(budget, 0)].split("\n")
    if len(lines) > 1:
        lines.pop()  # the last line may be cut in the middle
    kept = "\n".join(lines)
    closing = _closers(lines)
    while kept and len(kept) + len(closing) > budget:
        lines.pop()
        kept = "\n".join(lines)
        closing = _closers(lines)
    return head + kept + closing + note.format(shown=len(kept))


def _closers(lines: list[str]) -> str:
    """What closes the code fence and ``<details>`` blocks that ``lines`` leave open."""
    fence: str | None = None
    details = 0
    for line in lines:
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
        elif fence is not None and line.strip() == fence:
            fence = None
        elif fence is None:
            details += line.count("<details>") - line.count("</details>")
    out = f"\n{fence}" if fence else ""
    return out + "\n</details>" * max(details, 0)
