"""What every command gets besides its own arguments."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    root: Path
    quiet: bool
    debug: bool

    def progress(self, message: str) -> None:
        """Progress goes to stderr, only on a terminal and only without --quiet.

        One line, rewritten in place; an empty message clears it.
        """
        if not self.quiet and sys.stderr.isatty():
            print(f"\r\033[K{message}", end="", file=sys.stderr, flush=True)
