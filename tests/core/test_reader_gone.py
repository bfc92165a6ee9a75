"""A reader that goes away (EPIPE) ends no command: it runs to its end and exits with its own code.

``llmcc compile | true`` dropped the summary line; with a target failing it exited 0 (the
BrokenPipeError of the first ``print`` reached the error boundary, which reads EPIPE as "the
reader has what it wanted") and printed none of the findings; with a block-buffered stdout the
write failed at exit instead and the interpreter made the code 120 ("Exception ignored ...").
Real processes of the console script, stdout (or stderr) a pipe whose reading end is closed
before the command starts: every write to it fails with EPIPE.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEMO_IDENTITY, GitRepo

LLMCC = str(Path(sys.executable).parent / "llmcc")
NOISE = ("Traceback", "Exception ignored", "BrokenPipeError", "internal error")


def run_gone(repo: GitRepo, *args: str, stream: str = "stdout", buffered: bool = True) -> tuple[int, str]:
    """``llmcc -C repo ARGS`` with ``stream`` a pipe nobody reads; its exit code and what the other stream got."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write
    env = {**os.environ, "SOPS_AGE_KEY_FILE": str(DEMO_IDENTITY), "LLMCC_SIGNING_KEY_FILE": str(SIGNING)}
    env.pop("PYTHONUNBUFFERED", None)
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    other = subprocess.PIPE
    streams = {"stdout": write_end, "stderr": other} if stream == "stdout" else {"stdout": other, "stderr": write_end}
    try:
        done = subprocess.run([LLMCC, "-C", str(repo.path), *args], env=env, check=False, **streams)  # type: ignore[call-overload]
    finally:
        os.close(write_end)
    out = (done.stderr if stream == "stdout" else done.stdout).decode()
    return done.returncode, out


SIGNING = Path(__file__).resolve().parents[2] / "keys/demo-signing.pem"


def break_prod(repo: GitRepo) -> None:
    layer = repo.path / "environments/prod.yaml"
    layer.write_text(layer.read_text().replace("hot_days: 14", "hot_days: -5"))


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
def test_compile_into_a_gone_reader_finishes_and_says_so(example_repo: GitRepo, buffered: bool) -> None:
    code, err = run_gone(example_repo, "compile", "--no-cache", buffered=buffered)
    assert code == 0, err
    assert err.splitlines()[-1].startswith("llmcc: compiled 6 targets in "), err
    assert not any(word in err for word in NOISE), err
    assert len(list((example_repo.path / "dist").glob("*.bundle.json"))) == 6


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
def test_a_failing_compile_into_a_gone_reader_still_fails(example_repo: GitRepo, buffered: bool) -> None:
    break_prod(example_repo)
    code, err = run_gone(example_repo, "compile", "--no-cache", buffered=buffered)
    assert code == 1, err
    assert "environments/prod.yaml:46:7: observatory $.retention.hot_days: -5 is less than the minimum of 1" in err
    assert err.splitlines()[-1] == "llmcc: 3 of 6 targets failed validation: prod, prod@acme, prod@globex"
    assert not any(word in err for word in NOISE), err
    assert sorted(p.name for p in (example_repo.path / "dist").iterdir()) == [
        "dev.bundle.json",
        "staging.bundle.json",
        "staging@acme.bundle.json",
    ]


@pytest.mark.parametrize(
    ("args", "code", "last"),
    [
        (["validate", "--no-cache"], 1, "llmcc: validate FAILED: 6 targets, 3 errors, 0 warnings"),
        (["validate", "--no-cache", "--format", "json"], 1, None),  # its one document went nowhere
        (["diff", "HEAD"], 0, None),
        (["hook", "validate", "environments/prod.yaml"], 1, "llmcc: validate FAILED: 3 targets, 3 errors, 0 warnings"),
        (["hook", "secrets-guard"], 0, "llmcc: secrets-guard ok: "),
        (["hook", "diff"], 0, None),
        (["--version"], 0, None),
        (["--help"], 0, None),
    ],
    ids=["validate", "validate-json", "diff", "hook-validate", "hook-secrets-guard", "hook-diff", "version", "help"],
)
def test_every_printing_command_keeps_its_exit_code(
    example_repo: GitRepo, args: list[str], code: int, last: str | None
) -> None:
    break_prod(example_repo)
    got, err = run_gone(example_repo, *args)
    assert got == code, err
    assert not any(word in err for word in NOISE), err
    if last is not None:
        assert err.splitlines()[-1].startswith(last), err


def test_publish_and_verify_into_a_gone_reader(example_repo: GitRepo) -> None:
    code, err = run_gone(example_repo, "publish", "--allow-worktree-store")
    assert code == 0, err
    assert not any(word in err for word in NOISE), err
    code, err = run_gone(example_repo, "verify")
    assert code == 0, err
    assert not any(word in err for word in NOISE), err


def test_validate_with_its_stderr_reader_gone_still_fails(example_repo: GitRepo) -> None:
    """``llmcc validate 2>&1 | head -1`` in a script: exit 0 would pass a broken configuration."""
    break_prod(example_repo)
    code, out = run_gone(example_repo, "validate", "--no-cache", stream="stderr")
    assert code == 1
    assert out == ""


@pytest.mark.parametrize("write_through", [False, True])
def test_a_tolerant_stream_drops_what_a_gone_reader_would_read(write_through: bool) -> None:
    """In-process: the stream ``outlive_gone_readers`` puts in place, over a pipe whose reader is gone."""
    import io

    from compiler.cli._streams import _tolerant

    read_end, write_end = os.pipe()
    original = io.TextIOWrapper(open(write_end, "wb", closefd=False), write_through=write_through)  # noqa: SIM115
    stream = _tolerant(original)
    assert stream is not None
    assert stream is not original
    assert not stream.isatty()
    stream.write("read\n")
    stream.flush()
    assert os.read(read_end, 100) == b"read\n"
    os.close(read_end)
    stream.write("dropped\n" * 10_000)
    stream.flush()  # no BrokenPipeError
    stream.close()
    os.close(write_end)
    assert _tolerant(None) is None
    capture = io.StringIO()
    assert _tolerant(capture) is capture  # type: ignore[arg-type]


def test_streams_that_are_no_descriptors_are_left_as_they_are() -> None:
    """An in-memory text stream, a closed one: nothing to outlive; a descriptor's stream is replaced."""
    import io

    from compiler.cli._streams import _tolerant, outlive_gone_readers

    before = (sys.stdout, sys.stderr)
    try:
        outlive_gone_readers()  # pytest's fd capture: text streams over descriptors, so replaced
        assert [s.fileno() for s in (sys.stdout, sys.stderr)] == [s.fileno() for s in before]
    finally:
        sys.stdout, sys.stderr = before
    memory = io.TextIOWrapper(io.BytesIO())
    assert _tolerant(memory) is memory  # no file descriptor
    memory.close()
    assert _tolerant(memory) is memory
