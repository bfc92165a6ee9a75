"""A partial rebuild leaves the bundles it would write byte for byte in ``dist/`` untouched (issue 14 §2).

Before, every old bundle of the run was linked aside and moved back, which
moved its change time: the next run could not trust its recorded stat and read
and hashed every unchanged bundle again (~48 ms of xlarge's one-tenant-value
run). Now such a bundle is not removed, linked or moved, so its stat stays the
recorded one, and an interrupted run leaves it (byte for byte what the run
would have written) and nothing of the targets it was rebuilding.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from compiler.cli import main
from compiler.distdir import STAGING_PREFIX, SUFFIX
from compiler.incremental.filestat import trusted
from tests.core._repos import many_targets_repo
from tests.incremental.test_cache_cli import record_of, settle

_WATCHING: list[list[str]] = []
_HOOKED = False


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event == "open" and _WATCHING and isinstance(args[0], str | bytes | os.PathLike):
        for opened in _WATCHING:
            opened.append(os.fsdecode(args[0]))


@contextmanager
def _opened() -> Iterator[list[str]]:
    """The paths this process opens meanwhile (the interpreter's "open" audit event, PEP 578)."""
    global _HOOKED
    if not _HOOKED:
        sys.addaudithook(_audit)  # cannot be removed: it records only while a test watches
        _HOOKED = True
    opened: list[str] = []
    _WATCHING.append(opened)
    try:
        yield opened
    finally:
        _WATCHING.remove(opened)


def run(root: Path, *argv: str) -> int:
    return main(["-q", "-C", str(root), *argv])


def stats(out: Path) -> dict[str, tuple[int, int, int]]:
    return {p.name: (p.lstat().st_ino, p.lstat().st_ctime_ns, p.lstat().st_mtime_ns) for p in out.glob(f"*{SUFFIX}")}


def edit_tenant(root: Path, tenant: str, value: str) -> None:
    """A module value of ``tenant`` in prod (not a variable): its prod target is compiled again."""
    path = root / f"environments/prod/tenants/{tenant}.yaml"
    path.write_text(f"modules:\n  engine:\n    region: {value}\n", encoding="utf-8")


def test_a_partial_rebuild_leaves_the_unchanged_bundles_untouched_and_the_next_does_not_read_them(
    tmp_path: Path,
) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=3)
    out = root / "dist"
    assert run(root, "compile") == 0
    settle(out)
    assert run(root, "compile") == 0  # read once (written in the tick of the record), then trusted by stat
    settle(out)
    before = stats(out)
    rebuilt = f"prod@t01{SUFFIX}"
    assert rebuilt in before

    edit_tenant(root, "t01", "r1")
    assert run(root, "compile") == 0
    after = stats(out)
    assert after.keys() == before.keys()
    assert after[rebuilt] != before[rebuilt]
    # not removed, linked or moved: the change time (which no one can set back) is the same
    assert {n: s for n, s in after.items() if n != rebuilt} == {n: s for n, s in before.items() if n != rebuilt}
    # and the record still vouches for them: the next run takes each by its stat, unread
    record = json.loads(record_of(root).read_bytes().partition(b"\n")[2])["bundles"]
    for name in after.keys() - {rebuilt}:
        fact = record[name.removesuffix(SUFFIX)]
        assert trusted(fact[1:], (out / name).lstat()), name

    settle(out)
    edit_tenant(root, "t01", "r2")
    with _opened() as opened:
        assert run(root, "compile") == 0
    read = {Path(p).name for p in opened if Path(p).parent == out and p.endswith(SUFFIX)}
    assert read <= {rebuilt}, sorted(read)  # a second partial rebuild reads none of the unchanged bundles
    assert {n: s for n, s in stats(out).items() if n != rebuilt} == {n: s for n, s in before.items() if n != rebuilt}
    # what the run leaves is what a run without the cache writes
    assert run(root, "compile", "--no-cache", "-o", "fresh") == 0
    fresh = root / "fresh"
    assert {p.name: p.read_bytes() for p in out.glob(f"*{SUFFIX}")} == {
        p.name: p.read_bytes() for p in fresh.glob(f"*{SUFFIX}")
    }


def _first_staged_bundle(out: Path, proc: subprocess.Popen[bytes]) -> bool:
    while proc.poll() is None:
        if any(out.glob(f"{STAGING_PREFIX}*/*{SUFFIX}")):
            return True
        os.sched_yield()
    return False


def test_an_interrupted_partial_rebuild_leaves_the_unchanged_bundles_and_none_of_the_rebuilt(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=99)
    out = root / "dist"
    compile_ = [sys.executable, "-m", "compiler", "-C", str(root), "compile", "-q"]
    for _ in range(2):  # the second run reads each bundle once; after it, all are trusted by their stat
        first = subprocess.run(compile_, capture_output=True, check=False)
        assert first.returncode == 0, first.stderr
        settle(out)
    before = stats(out)
    assert len(before) == 201
    edited = [f"t{i:02d}" for i in range(50)]
    for tenant in edited:
        edit_tenant(root, tenant, "elsewhere")
    rebuilt = {f"prod@{t}{SUFFIX}" for t in edited}
    assert rebuilt <= before.keys()

    proc = subprocess.Popen(compile_, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    assert _first_staged_bundle(out, proc), "the compile ended before a bundle was written"
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate()

    assert proc.returncode == 130, stderr
    assert stderr.decode().splitlines()[-1:] == ["llmcc: interrupted"]
    # the bundles it would have written byte for byte are still there, untouched; none of those it rebuilt
    assert stats(out) == {n: s for n, s in before.items() if n not in rebuilt}
    assert not list(out.glob(f"{STAGING_PREFIX}*"))
