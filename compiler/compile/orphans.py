"""A forked child of a build (a ``-j`` worker, the YAML pre-parse helper) dies with its parent.

A child whose parent is killed would otherwise go on running, re-parented to init,
holding the parent's stdout and stderr open (``llmcc compile 2>&1 | tee log`` then
never sees the end of its input; attacker, issue 14).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # linux/prctl.h

_prctl: Callable[..., int] | None = None  # libc's prctl(2), once ``prepare`` found it
_prepared = False


def prepare() -> None:
    """Find ``prctl`` now, in the parent, so that every child forked after it calls it without
    importing ctypes first (3-7 ms at the start of each worker and of the pre-parse helper,
    before it did any work: issue 14 §3). Called again, it does nothing."""
    global _prctl, _prepared
    if _prepared:
        return
    _prepared = True
    if not sys.platform.startswith("linux"):  # pragma: no cover - CI runs Linux
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        _prctl = ctypes.CDLL(None, use_errno=True).prctl


def die_with_parent(parent: int) -> None:
    """SIGKILL this process when its parent dies (Linux ``prctl(2)`` ``PR_SET_PDEATHSIG``; elsewhere nothing).

    ``parent``: the pid of the process that forked this one, as it was before the fork; a
    parent already gone by the time the request took effect ends this process at once.
    """
    if not sys.platform.startswith("linux"):  # pragma: no cover - CI runs Linux
        return
    prepare()  # a child of a parent that did not: found here
    if _prctl is not None:
        with contextlib.suppress(OSError):
            _prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
