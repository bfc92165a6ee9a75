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

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """SIGKILL this process when its parent dies (Linux ``prctl(2)`` ``PR_SET_PDEATHSIG``; elsewhere nothing).

    ``parent``: the pid of the process that forked this one, as it was before the fork; a
    parent already gone by the time the request took effect ends this process at once.
    """
    if not sys.platform.startswith("linux"):  # pragma: no cover - CI runs Linux
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
