"""stdout and stderr of the ``llmcc`` process, made to outlive a reader that went away (docs/exit-codes.md).

``llmcc compile | true``, ``llmcc validate 2>&1 | head -1``: the reader closes its end
and the next write fails with EPIPE (Python ignores SIGPIPE). Raised from a ``print``, that
``BrokenPipeError`` ended the command where it stood: the summary line and the findings still
to print were lost, and the exit code was 0 (the error boundary's reading of a reader gone),
also for a compile whose targets failed; with a block-buffered stdout the write failed only at
exit, and the interpreter turned the code into 120 with an "Exception ignored" message.

Here every write to a stream whose reader is gone is dropped, the command runs to its end
(dist/ as any run leaves it) and exits with its own code. Any other write error (a full disk:
ENOSPC) is raised as before: the error boundary makes it exit 2.
"""

from __future__ import annotations

import io
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from typing_extensions import Buffer


class _ReaderGoneSink(io.RawIOBase):
    """A file descriptor's writes, each written in full; once EPIPE says the reader is gone, dropped."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd
        self.gone = False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return os.isatty(self._fd)

    def write(self, data: Buffer, /) -> int:
        view = memoryview(data).cast("B")
        at = 0
        while at < len(view) and not self.gone:
            try:
                at += os.write(self._fd, view[at:])
            except BrokenPipeError:
                self.gone = True  # the reader is gone: what it would have read goes nowhere
        return len(view)


def _tolerant(stream: TextIO | None) -> TextIO | None:
    """A text stream like ``stream`` over a ``_ReaderGoneSink``; ``stream`` itself when it is not a
    file descriptor's (a caller's capture) or is closed (``>&-``: ``print`` drops its lines)."""
    if not isinstance(stream, io.TextIOWrapper) or stream.closed:
        return stream
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return stream
    stream.flush()
    raw = _ReaderGoneSink(fd)
    # unbuffered (python -u, PYTHONUNBUFFERED): every write goes out at once, as before
    binary: Any = raw if stream.write_through else io.BufferedWriter(raw)
    return io.TextIOWrapper(
        binary,
        encoding=stream.encoding,
        errors=stream.errors,
        newline=None,
        line_buffering=stream.line_buffering,
        write_through=stream.write_through,
    )


def outlive_gone_readers() -> None:
    """Put tolerant streams in place of ``sys.stdout`` and ``sys.stderr`` (the ``llmcc`` process only)."""
    sys.stdout = _tolerant(sys.stdout)
    sys.stderr = _tolerant(sys.stderr)
