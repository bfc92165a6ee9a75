"""What a process that ends with ``os._exit`` leaves to the operating system instead of freeing it.

A cold compile's parent holds every parsed input, each environment's merged
modules and the text of their maps: a few hundred thousand objects. Freeing them
one by one when the functions that hold them return cost ~20 ms of a 0.6 s cold
compile of 53 targets (issue 14 §3), after the last bundle was written, in a
process that ends a moment later with ``os._exit`` (``compiler.cli.EXIT_AT_ONCE``),
which frees nothing. ``keep`` holds them to that end.

Only the process's entry point turns this on (``leave_to_os``), for a command
that ends with ``os._exit`` once it succeeds; a caller of ``main(argv)`` or of the
library keeps ``keep`` a no-op, so nothing outlives its call there. A command
that fails ends the usual way, freeing what was kept at the interpreter's exit.
"""

from __future__ import annotations

_kept: list[object] | None = None


def leave_to_os() -> None:
    """From now on ``keep`` holds what it is given until the process ends."""
    global _kept
    if _kept is None:
        _kept = []


def keep(*objects: object) -> None:
    """Hold ``objects`` to the end of the process when ``leave_to_os`` was called; else nothing."""
    if _kept is not None:
        _kept.extend(objects)


__all__ = ["keep", "leave_to_os"]
