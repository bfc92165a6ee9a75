"""``llmcc`` command line: argparse, the command table, and the one error boundary (STYLE R5)."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from compiler import __version__
from compiler.cli._context import Context
from compiler.diagnostics import diagnostic_from_message
from compiler.errors import ConfigCheckError, LlmccError
from compiler.extras import CLI_PACKAGES, is_missing, needs_extra


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse exits 2 itself; route through the boundary for one consistent line.
        raise _ArgparseError(f"{message} (see {self.prog} --help)")


class _ArgparseError(LlmccError):
    exit_code = 2


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``command``, only that command's module is loaded."""
    parser = _Parser(prog="llmcc", description="GitOps declarative config compiler for LLM platforms.")
    parser.add_argument("--version", action="version", version=f"llmcc {__version__}")
    _add_globals(parser, default=None)
    from compiler.cli import _commands

    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (helptext, load) in _commands.COMMANDS.items():
        p = sub.add_parser(name, help=helptext, description=helptext)
        _add_globals(p, default=argparse.SUPPRESS)
        if command is None or command == name:
            load().add_arguments(p)
    return parser


def _add_globals(p: argparse.ArgumentParser, *, default: object) -> None:
    # Accepted both before and after the command name (`llmcc -C x compile` and `llmcc compile -C x`).
    p.add_argument("-C", dest="directory", metavar="DIR", default=default, help="config repository (default .)")
    p.add_argument("-q", "--quiet", action="store_true", default=default, help="no progress output")
    p.add_argument("--debug", action="store_true", default=default, help="show tracebacks of internal errors")


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    as_json = "--format=json" in args_list or ("--format", "json") in itertools.pairwise(args_list)
    with error_boundary(debug=debug, as_json=as_json) as result:
        parser = build_parser(_command_in(args_list))
        args = parser.parse_args(args_list)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        ctx = Context(
            root=Path(args.directory or ".").resolve(),
            quiet=bool(args.quiet),
            debug=bool(args.debug),
        )
        from compiler.cli import _commands

        _, load = _commands.COMMANDS[args.command]
        result.code = load().run(args, ctx)
    return result.code


def _command_in(args: list[str]) -> str | None:
    """The command name in ``args`` (the first word that is one), so only its module loads."""
    from compiler.cli import _commands

    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "-C":
            skip = True
        elif arg in _commands.COMMANDS:
            return arg
        elif not arg.startswith("-"):
            return None
    return None


@dataclass(slots=True)
class _Result:
    code: int = 0
    message: str | None = None


def error_document(message: str, code: int) -> dict[str, object]:
    """The ``--format json`` document for an error that ended the command."""
    return {"ok": False, "exit_code": code, "diagnostics": [diagnostic_from_message(message).to_json()]}


@contextlib.contextmanager
def error_boundary(*, debug: bool, as_json: bool = False) -> Iterator[_Result]:
    """Turn every exception into one line on stderr and an exit code (docs/exit-codes.md).

    With ``as_json`` (``--format json``) an error that ends the command is
    reported as one JSON document on stdout instead, so a consumer always gets one.
    """
    result = _Result()
    try:
        yield result
    except ConfigCheckError as e:
        if not as_json:
            for d in e.diagnostics:
                print(d.format(), file=sys.stderr)
            print(f"llmcc: {e}", file=sys.stderr)
        result.code = e.exit_code
        result.message = str(e)
    except LlmccError as e:
        if not as_json:
            print(f"llmcc: {e}", file=sys.stderr)
        result.code = e.exit_code
        result.message = str(e)
    except KeyboardInterrupt:
        print("llmcc: interrupted", file=sys.stderr)
        result.code = 130
    except BrokenPipeError:
        # `llmcc pull x | head`: the reader went away; not our error.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        result.code = 0
    except Exception as e:  # noqa: BLE001 - the one deliberate catch-all: a bug becomes exit 70
        if isinstance(e, ModuleNotFoundError) and is_missing(e, CLI_PACKAGES):
            # installed without the cli extra, found after the command loaded (cli/_commands.py names the command)
            result.code, result.message = 2, needs_extra("this command", "cli")
            if not as_json:
                print(f"llmcc: {result.message}", file=sys.stderr)
        else:
            if debug:
                traceback.print_exc()
            message = f"internal error: {type(e).__name__}: {e} (run with --debug for the traceback)"
            print(f"llmcc: {message}", file=sys.stderr)
            result.code = 70
            result.message = message
    if as_json and result.code != 0 and result.message is not None:
        print(json.dumps(error_document(result.message, result.code), indent=2, sort_keys=True))


CommandRunner = Callable[[argparse.Namespace, Context], int]
__all__ = ["Context", "ModuleType", "build_parser", "error_boundary", "main"]
