"""What every command gets besides its own arguments: the config repository, the directory it
was started in, and how to talk to the terminal. Light at import (issue 14 §1): no compile stack."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "llmcc.yaml"  # compiler.project.MANIFEST, repeated so that start-up does not import pydantic


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """``root`` is the config repository (where llmcc.yaml is); ``cwd`` the directory the command
    runs in (``-C DIR``, else the current one), from which relative paths on the command line are
    taken, as git does. ``cwd`` None means ``root``."""

    root: Path
    quiet: bool
    debug: bool
    cwd: Path | None = None

    def path(self, name: str | Path) -> Path:
        """A path given on the command line: relative ones are taken from ``cwd``."""
        p = Path(name).expanduser()
        return p if p.is_absolute() else (self.cwd or self.root) / p

    def progress(self, message: str) -> None:
        """Progress goes to stderr, only on a terminal that can rewrite a line and only without --quiet.

        One line, rewritten in place; an empty message clears it.
        """
        if not self.quiet and terminal_can_rewrite(sys.stderr):
            print(f"\r\033[K{message}", end="", file=sys.stderr, flush=True)

    def clear_progress(self) -> None:
        """Clear the progress line before results are printed."""
        self.progress("")


def find_root(start: Path) -> Path:
    """The config repository that ``start`` is in: the nearest directory upwards holding llmcc.yaml.

    Like git's search for ``.git``, it stops at the top of the git work tree it is in
    (a directory holding ``.git``), so a repository never reaches into an enclosing one.
    ``start`` itself when none is found (commands then say there is no llmcc.yaml here).
    """
    for directory in (start, *start.parents):
        if (directory / MANIFEST).is_file():
            return directory
        if (directory / ".git").exists():
            break
    return start


def terminal_can_rewrite(stream: object) -> bool:
    """Whether ``stream`` is a terminal that understands ANSI escapes (not ``TERM=dumb``)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


def colour_enabled(stream: object) -> bool:
    """Colour only on a capable terminal, and not when ``NO_COLOR`` is set to anything but ""
    (https://no-color.org) or ``TERM=dumb``."""
    return terminal_can_rewrite(stream) and not os.environ.get("NO_COLOR")
