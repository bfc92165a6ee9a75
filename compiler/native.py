"""Calls into native (PyO3) libraries: a Rust panic becomes our typed error, never a traceback.

A panic surfaces as ``pyo3_runtime.PanicException``, a ``BaseException``
(``compiler.errors.is_panic``): ``except Exception`` lets it through, and in a
``-j`` worker it would end the process and leave the build waiting for ever.
``panics_as`` turns it into an ``LlmccError`` where the call is made, so it
is reported like any other error of that call (a schema that cannot compile:
exit 2 at its file; a failed validation: exit 70). Rust's panic hook also
writes its own report to file descriptor 2 before Python sees the exception;
``quiet=True`` sends that descriptor to ``/dev/null`` for the call (only for
calls made once per schema: two system calls each way).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator

from compiler.errors import LlmccError, is_interrupt_panic, is_panic, panic_message


@contextlib.contextmanager
def panics_as(error: Callable[[str], LlmccError], *, quiet: bool = False) -> Iterator[None]:
    """Raise ``error(first line of the panic's message)`` for a panic inside the block.

    Raises:
        LlmccError: what ``error`` makes, chained to the panic.
    """
    saved = _silence_stderr() if quiet else None
    try:
        yield
    except BaseException as e:
        if not is_panic(e):
            raise
        if is_interrupt_panic(e):
            raise KeyboardInterrupt from e
        raise error(panic_message(e)) from e
    finally:
        if saved is not None:
            _restore_stderr(saved)


def _silence_stderr() -> int | None:
    """Point descriptor 2 at ``/dev/null``; the saved descriptor (None when it cannot be done)."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        return None
    try:
        null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.dup2(null, 2)
        finally:
            os.close(null)
    except OSError:
        os.close(saved)
        return None
    return saved


def _restore_stderr(saved: int) -> None:
    try:
        os.dup2(saved, 2)
    finally:
        os.close(saved)
