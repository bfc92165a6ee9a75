"""The output directory of ``llmcc compile``: a bundle is there only if this run made it.

A later step (publish from ``dist/``, a deploy job, ``ls``) cannot tell a bundle
of this run from one of an earlier run, so a run that does not finish must not
leave old bundles looking current (issue 10 §7). The rules, in order:

1. At the start, the old ``<target>.bundle.json`` of every target of the run is
   removed (but for those left in place, below), so a target that then fails
   for any reason (exit 1, 2 or 70, an interrupt, even SIGKILL) has no bundle.
   Its name leaves ``DIR`` at once; the file itself is first linked into the
   staging directory and freed with it, from the moment the build's first bundle
   arrives (``sync_soon``): freeing the blocks of 53 bundles (14 MB) took
   17-150 ms on this ext4, before any target started (issue 14 §3).
2. Bundles are written into a private staging directory
   ``DIR/.llmcc-staging-<pid>/`` on the same file system, never into ``DIR``;
   they are fsynced before the first move (each as soon as it is written when
   the build says so, ``sync_soon``; the rest together), and ``DIR`` after the
   last, so after a power loss a moved bundle is whole.
3. When the build returns, the bundles of the targets that succeeded are
   moved into ``DIR`` with ``os.replace`` while SIGINT and SIGTERM are held
   back, so an interrupt lands before the first move or after the last one.
4. The staging directory is removed on every exit path; one left by a killed
   run (its process no longer exists) is removed by the next run.

A bundle this run would write byte for byte is not old (issue 14 §2): with
``leave``, a target whose bundle in ``DIR`` is the one
``compiler.incremental.run.bundles_in_place`` checked (the file the last run
recorded for this run's result-cache key and source, by its SHA-256 and stat)
and whose stat, change time included, is still the checked one here is left
where it is, untouched -- not removed, linked, written or moved -- and is not
one of the targets rules 1-3 remove, stage and install (``left``). So its
recorded stat stays true and the next run does not read it again. A run whose
every bundle is in place leaves ``DIR`` as it is.

A bundle named for no target of ``llmcc.yaml`` (a target since removed, or a
tenant no longer in an environment) is removed at the start of every run too,
whatever targets the run selects: it can never be current.

So after an interrupt ``DIR`` holds, of the run's targets, only the bundles it
left in place (byte for byte what it would have written, as checked at the
start) and none of the targets it was rebuilding; after a run with failures it
holds exactly the bundles of the targets that succeeded. A write into a left
bundle by another process after that check is not this run's: it moves the
change time, so the bundle is not recorded as checked, and the next run reads
it and writes it anew.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from compiler import fileops
from compiler.errors import InputError

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

SUFFIX = ".bundle.json"
STAGING_PREFIX = ".llmcc-staging-"
OLD_BUNDLES = "old"  # the subdirectory of the staging directory holding the old bundles set aside
_HELD = {signal.SIGINT, signal.SIGTERM}


def bundle_name(target: str) -> str:
    return f"{target}{SUFFIX}"


class BundleDir:
    """``DIR/<target>.bundle.json`` for the targets of one compile run."""

    def __init__(self, out: Path, targets: Sequence[str], *, known: Collection[str] | None = None) -> None:
        """``targets``: this run's; ``known``: every target of llmcc.yaml (``None``: keep other bundles)."""
        self.out = out
        self.targets = list(targets)
        self.known = None if known is None else frozenset(known)
        self.staging = out / f"{STAGING_PREFIX}{os.getpid()}"
        self._syncer: ThreadPoolExecutor | None = None
        self._syncing: dict[str, Future[None]] = {}  # bundle name -> its fsync, started by sync_soon
        self._aside: list[Path] = []  # links in staging to the old bundles removed from DIR (``_set_aside``)
        self.left: set[str] = set()  # targets whose bundle ``staged(leave=...)`` left in DIR as it is

    @contextlib.contextmanager
    def staged(self, *, leave: Callable[[str, os.stat_result], bool] | None = None) -> Iterator[Path]:
        """Clear the run's old bundles and yield the staging directory (removed on exit).

        ``leave(target, lstat)``: whether the bundle in ``DIR`` is the one checked
        earlier, its stat unchanged (``compiler.incremental.run.Reuse.unchanged``):
        then it is left as it is and ``target`` put in ``left`` (see the module doc).

        Raises:
            InputError: ``DIR`` cannot be created or an old bundle cannot be removed.
        """
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            _remove_abandoned(self.out)
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging.mkdir()
            (self.staging / OLD_BUNDLES).mkdir()
            for stale in self._stale():
                self._set_aside(stale)
            for target in self.targets:
                old = self.out / bundle_name(target)
                if leave is not None:
                    with contextlib.suppress(OSError):  # then it is removed, and written anew
                        st = old.lstat()
                        if stat.S_ISREG(st.st_mode) and leave(target, st):
                            self.left.add(target)
                            continue
                self._set_aside(old)
        except OSError as e:
            self.left.clear()
            for target in self.targets:  # rule 1 holds on this path too
                with contextlib.suppress(OSError):
                    (self.out / bundle_name(target)).unlink(missing_ok=True)
            shutil.rmtree(self.staging, ignore_errors=True)  # rule 4, with the old bundles set aside in it
            raise InputError(f"{self.out}: cannot prepare the output directory: {e.strerror or e}") from e
        try:
            yield self.staging
        finally:
            self._stop_syncing()
            shutil.rmtree(self.staging, ignore_errors=True)

    def sync_soon(self, target: str) -> None:
        """Start making ``target``'s staged bundle durable now, in a background thread.

        Called in the building process as each bundle is written, the syncs run
        while the other targets are still compiling (the process waits for its
        workers meanwhile) instead of after the last one; ``install`` waits for
        them and re-raises a failed one's OSError. Only after the build: a thread
        started before it would keep ``build_targets`` from forking workers.
        """
        # An interrupt raised inside the executor's or its queue's lock, as it is taken, leaves that lock
        # held, and the shutdown on the way out waits for it for ever: SIGINT and SIGTERM wait meanwhile.
        with _signals_held():
            if self._syncer is None:
                from concurrent.futures import ThreadPoolExecutor

                self._syncer = ThreadPoolExecutor(max_workers=4, thread_name_prefix="llmcc-fsync")
                if self._aside:  # the old bundles' blocks are freed while the build goes on
                    self._syncer.submit(_remove_files, self._aside)
                    self._aside = []
            name = bundle_name(target)
            self._syncing[name] = self._syncer.submit(fileops.fsync_file, self.staging / name)

    def _set_aside(self, path: Path) -> None:
        """Remove ``path`` from ``DIR`` now, its file freed later (rule 1): a hard link to it is kept
        in the staging directory, removed with it. Anything that cannot be linked there (a directory,
        a file gone meanwhile) is unlinked at once, as before.

        Raises:
            OSError: ``path`` cannot be removed (a directory: IsADirectoryError).
        """
        aside = self.staging / OLD_BUNDLES / path.name
        try:
            os.link(path, aside, follow_symlinks=False)  # a symlink itself, not the file it names
        except OSError:
            path.unlink(missing_ok=True)
            return
        self._aside.append(aside)
        path.unlink(missing_ok=True)

    def _stop_syncing(self) -> None:
        """Wait for the syncs under way and drop those not started (staging is about to go)."""
        if self._syncer is not None:
            self._syncer.shutdown(wait=True, cancel_futures=True)
            self._syncer = None

    def _stale(self) -> list[Path]:
        """Bundles in ``DIR`` named for no target of llmcc.yaml."""
        if self.known is None:
            return []
        names = {bundle_name(t) for t in self.known}
        return [p for p in self.out.glob(f"*{SUFFIX}") if p.name not in names]

    def install(self, targets: Iterable[str]) -> None:
        """Move the staged bundles of ``targets`` into ``DIR`` with interrupts held back (``left``: not moved).

        Raises:
            InputError: a bundle cannot be moved.
        """
        names = [bundle_name(t) for t in targets if t not in self.left]
        if not names:
            return
        try:
            # The bundles were written without a sync each (fileops.write_new): their data
            # reaches the disk before any rename can make one visible -- here, together, for
            # those whose sync did not start as they were written (``sync_soon``).
            synced: set[str] = set()
            for name in names:
                started = self._syncing.pop(name, None)
                if started is not None:
                    started.result()  # re-raises its OSError
                    synced.add(name)
            fileops.sync_files([self.staging / name for name in names if name not in synced])
            with _signals_held():
                try:
                    for name in names:
                        os.replace(self.staging / name, self.out / name)  # same file system: atomic per file
                    fileops.fsync_dir(self.out)  # the renames survive a power loss only once DIR is synced
                except OSError:
                    for name in names:  # all or none of this run's bundles
                        (self.out / name).unlink(missing_ok=True)
                    raise
        except OSError as e:
            raise InputError(f"{self.out}: cannot install the bundles: {e.strerror or e}") from e


def _remove_files(paths: list[Path]) -> None:
    """Unlink ``paths``; one already gone or that cannot be removed is left to the staging directory's removal."""
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()


def _remove_abandoned(out: Path) -> None:
    """Staging directories of runs that were killed (SIGKILL, power loss): their process is gone."""
    for entry in out.glob(f"{STAGING_PREFIX}*"):
        pid = entry.name.removeprefix(STAGING_PREFIX)
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Block SIGINT and SIGTERM; a signal that arrives meanwhile is delivered on exit."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


__all__ = ["OLD_BUNDLES", "STAGING_PREFIX", "SUFFIX", "BundleDir", "bundle_name"]
