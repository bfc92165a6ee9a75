"""The start-up fast paths of ``compiler.cli.main`` decide nothing argparse would decide otherwise.

``main`` builds only the named command's parser (``_command_in`` scans the words before it) and
prints ``--version`` without a parser. A word the scan cannot read with certainty (a cluster
``-qC DIR``, an abbreviation) must fall back to every command's parser; a failed write of the
output is one line and a documented exit code, never a traceback (docs/exit-codes.md).
"""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.cli import build_parser, error_boundary, main
from tests.conftest import copy_example

LLMCC = str(Path(sys.executable).parent / "llmcc")  # the installed console script: the real CLI


def full_parse(argv: list[str]) -> int:
    """What argparse says with every command's parser built: the reference for ``main``."""
    with error_boundary(debug=False) as result:
        try:
            parser = build_parser()
            if parser.parse_args(argv).command is None:
                parser.print_help(sys.stderr)  # as main does
                result.code = 2
        except SystemExit as e:  # --help, --version
            result.code = int(e.code or 0)
    return result.code


def run_main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # --help, --version: argparse's exit, left to the interpreter
        return int(e.code or 0)


# Each ends in --help, --version or a usage error, so main stops where the parse does. The exit code
# and first line are 432f82d's too, except the first case: 432f82d printed validate's help without
# its own options (-t, --rev, ...), and the code before this fix said "unknown command".
CASES = [
    ["-qC", "policy", "validate", "--help"],  # a cluster whose value is a command's name
    ["-qC", "policy", "validat"],
    ["-qC", "policy"],
    ["-Cpolicy", "validate", "--help"],
    ["-C=policy", "validate", "--help"],  # argparse: the directory "=policy"
    ["-q", "-C", "policy", "validate", "--help"],
    ["--quiet", "--debug", "-C", "policy", "validate", "--help"],
    ["--qui", "validate", "--help"],  # abbreviations of long options
    ["--deb", "policy", "test", "--help"],
    ["validate", "-qC", "x", "--help"],  # options after the command
    ["policy", "-qC", "validate", "test", "--help"],
    ["--", "validate", "--help"],
    ["-C", "--help", "validate"],  # -C with no value
    ["-C", "validate", "policy", "--help"],
    ["--help", "validate"],  # help before the command: every command listed
    ["-h"],
    ["validat", "--help"],
    ["policy", "tst"],
    ["-x", "validate"],
    ["--version", "validate"],
    ["--vers"],
]


@pytest.mark.parametrize("argv", CASES, ids=" ".join)
def test_main_says_what_the_full_parser_says(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    expected = full_parse(argv), capsys.readouterr()
    assert (run_main(argv), capsys.readouterr()) == expected


def test_a_cluster_naming_a_command_gets_the_commands_own_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["-qC", "policy", "validate", "--help"]) == 0
    assert "--rev REV" in capsys.readouterr().out  # validate's own options, not only the global ones


FULL = "llmcc: cannot write the output: No space left on device"


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["validate", "--help"], ["-qC", "x", "validate", "-h"]])
def test_a_full_output_is_exit_2_in_one_line(argv: list[str]) -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run([LLMCC, *argv], stdout=full, stderr=subprocess.PIPE, text=True, check=False)
    assert (done.returncode, done.stderr.splitlines()) == (2, [FULL])


def _validate_into_full(root: Path, target: str) -> subprocess.CompletedProcess[str]:
    with open("/dev/full", "w") as full:
        return subprocess.run(
            [LLMCC, "-q", "-C", str(root), "validate", "-t", target, "--format", "json"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )


def test_a_command_whose_output_is_full_is_exit_2_in_one_line(tmp_path: Path) -> None:
    done = _validate_into_full(copy_example(tmp_path / "example"), "dev")
    assert (done.returncode, done.stderr.splitlines()) == (2, [FULL])


def test_a_json_error_document_that_cannot_be_written_is_the_stderr_line(tmp_path: Path) -> None:
    done = _validate_into_full(copy_example(tmp_path / "example"), "nope")
    assert done.returncode == 2
    assert [line[:29] for line in done.stderr.splitlines()] == ["llmcc: unknown target 'nope';"]


@pytest.mark.parametrize(("argv", "first"), [(["--version"], "llmcc "), (["--help"], "usage: llmcc ")])
def test_with_stdout_closed_version_and_help_go_to_stderr(argv: list[str], first: str) -> None:
    closed = ["sh", "-c", 'exec "$0" "$@" >&-', LLMCC, *argv]  # file descriptor 1 closed, as `llmcc --version >&-`
    done = subprocess.run(closed, capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout, done.stderr.startswith(first)) == (0, "", True)


@pytest.mark.parametrize("words", [["--form", "json"], ["--forma=json"], ["--format", "json"]])
def test_an_abbreviated_format_json_still_reports_the_error_as_json(
    words: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # main reads --format json from the words before parsing, then from argparse's parse
    root = copy_example(tmp_path / "example")
    assert main(["-q", "-C", str(root), "validate", "-t", "nope", *words]) == 2
    out, err = capsys.readouterr()
    assert (json.loads(out)["exit_code"], err) == (2, "")


class FullStream(io.StringIO):
    """A stdout on a full disk: every write fails with ENOSPC (as /dev/full), in this process."""

    def write(self, s: str) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize(
    ("argv", "err"),
    [
        (["--version"], [FULL]),
        (["-h"], [FULL]),
        (["-q", "-C", "{root}", "validate", "-t", "dev", "--format", "json"], [FULL]),
        (["-q", "-C", "{root}", "validate", "-t", "nope", "--format", "json"], ["llmcc: unknown target 'nope';"]),
    ],
)
def test_a_full_stdout_in_process(
    argv: list[str], err: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = copy_example(tmp_path / "example")
    monkeypatch.setattr(sys, "stdout", FullStream())
    assert run_main([a.format(root=root) for a in argv]) == 2
    assert [line[: len(e)] for line, e in zip(capsys.readouterr().err.splitlines(), err, strict=True)] == err
