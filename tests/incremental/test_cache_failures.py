"""The result cache is best-effort (issue 14 §2): no failure of its I/O fails a command or loses bundles.

A concurrent deleter (``rm -rf .llmcc`` while a compile runs) cannot be timed, so it runs at a
fixed step: right after the run's first cache entry (under ``v1/``) is renamed into place (``os.replace``, the
last step of every cache write), the cache is removed. A full disk or a refused permission is
``os.replace`` failing for the cache's files only. A file where a directory should be is made
between runs.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.incremental.store import CACHE_DIR
from tests.core._repos import mini_repo


@pytest.fixture(autouse=True)
def _cache_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMCC_NO_CACHE", raising=False)


def run(root: Path, *argv: str) -> int:
    return main(["-q", "-C", str(root), *argv])


def on_cache_write(monkeypatch: pytest.MonkeyPatch, root: Path, act: Callable[[str], None], *, before: bool) -> None:
    """Call ``act(dst)`` at each rename into ``root``'s result cache (an entry put in place) and at each
    create-only open of a blob there (a blob is written in place), before it (``act`` may raise) or after it."""
    real_replace, real_open = os.replace, os.open
    cache = str(root / CACHE_DIR)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        into = str(dst).startswith(cache)
        if into and before:
            act(str(dst))
        real_replace(src, dst)
        if into and not before:
            act(str(dst))

    def open_(path: str | os.PathLike[str], flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        blob = flags & os.O_EXCL and str(path).startswith(f"{cache}/v1/blobs/")
        if blob and before:
            act(str(path))
        fd = real_open(path, flags, mode, dir_fd=dir_fd)
        if blob and not before:
            act(str(path))
        return fd

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "open", open_)


def bundles(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "dist").glob("*.bundle.json"))


def every_bundle(root: Path) -> list[str]:
    """The bundles of every target (``mini_repo`` has five)."""
    names = bundles(root)
    assert len(names) == 5
    return names


@pytest.mark.parametrize("gone", [".llmcc", CACHE_DIR, f"{CACHE_DIR}/v1"])
@pytest.mark.parametrize("command", ["compile", "validate"])
def test_a_cache_deleted_while_a_command_runs_fails_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], gone: str, command: str
) -> None:
    # Was: internal error FileNotFoundError '.llmcc/cache/v1' from the eviction (exit 70), and dist/
    # left without a bundle although every target compiled.
    root = mini_repo(tmp_path / "repo")
    deleted: list[bool] = []

    def deleter(dst: str) -> None:
        if not deleted and "/v1/" in dst:
            shutil.rmtree(root / gone)
            deleted.append(True)

    on_cache_write(monkeypatch, root, deleter, before=False)
    assert run(root, command) == 0
    assert deleted
    err = capsys.readouterr().err
    assert "internal error" not in err
    assert len([line for line in err.splitlines() if "warning" in line]) <= 1
    if command == "compile":
        every_bundle(root)
    monkeypatch.undo()
    monkeypatch.delenv("LLMCC_NO_CACHE", raising=False)
    assert run(root, command) == 0  # and the next run rebuilds it
    assert (root / CACHE_DIR / "v1").is_dir()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EROFS])
def test_a_cache_that_cannot_be_written_fails_nothing_and_warns_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], code: int
) -> None:
    root = mini_repo(tmp_path / "repo")

    def refuse(dst: str) -> None:
        raise OSError(code, os.strerror(code))

    on_cache_write(monkeypatch, root, refuse, before=True)
    assert run(root, "compile") == 0
    every_bundle(root)
    [warning] = [line for line in capsys.readouterr().err.splitlines() if line]
    assert warning.startswith("llmcc: warning: ")
    assert os.strerror(code) in warning
    assert run(root, "validate") == 0
    assert len(capsys.readouterr().err.splitlines()) == 1


@pytest.mark.parametrize("where", [".llmcc", CACHE_DIR, f"{CACHE_DIR}/v1", "v1/kk", "v1/blobs"])
def test_a_file_where_a_cache_directory_should_be_fails_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    root = mini_repo(tmp_path / "repo")
    assert run(root, "compile") == 0
    paths = {
        "v1/kk": [d for d in (root / CACHE_DIR / "v1").iterdir() if d.name != "blobs"],
        "v1/blobs": [root / CACHE_DIR / "v1/blobs"],
    }.get(where, [root / where])
    for path in paths:
        shutil.rmtree(path)
        path.write_text("not a directory\n")
    (root / "environments/base.yaml").write_text(
        "vars:\n  model: other\n  temperature: 0.5\n  region: us-east-1\n"
    )  # every target misses
    shutil.rmtree(root / "dist")
    assert run(root, "compile") == 0
    assert run(root, "validate") == 0
    every_bundle(root)
    assert "internal error" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("value", "off"),
    [
        ("1", True),
        ("TRUE", True),
        ("yes", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
        ("", False),
    ],
)
def test_llmcc_no_cache_takes_the_documented_values(value: str, off: bool) -> None:
    from compiler.incremental.plan import cache_disabled

    assert cache_disabled(False, {"LLMCC_NO_CACHE": value}) is off
    assert cache_disabled(True, {"LLMCC_NO_CACHE": value})


def test_any_other_llmcc_no_cache_value_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Was: `yes` turned the cache off, `0` did not, and a typo (`ture`) turned it off unnoticed.
    root = mini_repo(tmp_path / "repo")
    monkeypatch.setenv("LLMCC_NO_CACHE", "ture")
    assert run(root, "validate") == 2
    assert capsys.readouterr().err == "llmcc: LLMCC_NO_CACHE='ture': expected 1, true, yes, on, or 0, false, no, off\n"
    assert not (root / CACHE_DIR).exists()


def test_validate_help_says_it_writes_the_result_cache(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["validate", "--help"])
    out = capsys.readouterr().out
    assert "nothing written" not in out
    assert "result cache" in out


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_blob_a_build_worker_cannot_write_is_warned_about_by_the_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], jobs: str
) -> None:
    # The sealed modules are stored where the bundle is built (a forked worker with -j 2), so only
    # digests travel back; the worker's first write failure must still reach the parent's warning.
    root = mini_repo(tmp_path / "repo")

    def refuse(dst: str) -> None:
        if "/blobs/" in dst:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    on_cache_write(monkeypatch, root, refuse, before=True)
    assert run(root, "compile", "-j", jobs) == 0
    every_bundle(root)
    [warning] = [line for line in capsys.readouterr().err.splitlines() if line]
    assert warning.startswith("llmcc: warning: ")
    assert os.strerror(errno.ENOSPC) in warning
    monkeypatch.undo()
    monkeypatch.delenv("LLMCC_NO_CACHE", raising=False)
    assert run(root, "compile", "-j", jobs) == 0  # the entries without their blobs are rebuilt
    assert not capsys.readouterr().err
    every_bundle(root)
