"""The one way a bench script writes its section of bench/NOTES.md and bench/RESULTS.md.

A section is the text between its two marker lines (``<!-- name:begin -->`` and
``<!-- name:end -->``, markers included); writing it again replaces it in place,
so each script owns its part of the file and the rest is kept.
"""

from __future__ import annotations

from pathlib import Path


def write_section(path: Path, section: str, begin: str, end: str, *, create: bool = True) -> None:
    """Put ``section`` (which starts with ``begin`` and ends with ``end``) into ``path``.

    Replaced where the markers are; else appended after a blank line. A file
    that does not exist is created only when ``create``.
    """
    if not path.exists() and not create:
        return
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) :]
    else:
        text = (text.rstrip() + "\n\n" if text.strip() else "") + section + "\n"
    path.write_text(text)
