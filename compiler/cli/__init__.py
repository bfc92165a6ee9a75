"""``llmcc`` command line: argparse, the command table, and the one error boundary (STYLE R5)."""

from __future__ import annotations

import argparse
import contextlib
import errno
import gc
import importlib.util
import itertools
import os
import re
import sys
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path

from compiler import __version__
from compiler.errors import ConfigCheckError, LlmccError, TerminatedError, is_interrupt_panic
from compiler.extras import CLI_PACKAGES, is_missing, needs_extra

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms); mypy reads the name the same way
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from compiler.cli._context import Context

# Start-up (issue 14 §1): this module, the command table and the parsers import no compile stack;
# a command's module is imported only when that command is named, and heavy imports wait for run().
# `--version` and `--help` import neither dataclasses nor json nor typing (~12 ms): Context (a
# dataclass) is imported when a command runs, json when an error is reported as JSON.


class _SubParsers(argparse._SubParsersAction):  # type: ignore[type-arg]
    """Every subcommand, nested ones too, takes the global options and has a description."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:  # noqa: ANN401 - argparse's own
        kwargs.setdefault("description", kwargs.get("help"))
        parser: argparse.ArgumentParser = super().add_parser(name, **kwargs)
        parser.register("action", "parsers", _SubParsers)  # nested subcommands get the same
        _add_globals(parser, default=argparse.SUPPRESS)
        if isinstance(parser, _Parser):
            parser.is_subcommand = True
        return parser


class _Formatter(argparse.HelpFormatter):
    """argparse's own help layout, with the terminal width found without importing shutil (~2 ms:
    it imports bz2, lzma and zlib); the same width ``shutil.get_terminal_size()`` gives."""

    def __init__(
        self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None
    ) -> None:
        super().__init__(prog, indent_increment, max_help_position, _columns() - 2 if width is None else width)


def _columns() -> int:
    """``shutil.get_terminal_size().columns``: ``$COLUMNS`` when a positive number, else stdout's terminal, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        columns = 0
    return columns or 80


class _Parser(argparse.ArgumentParser):
    """Usage errors become one line that suggests the closest name and points at this command's help."""

    is_subcommand = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401 - argparse's own
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras and self.is_subcommand:
            # the subcommand that got them says so, with its own options to suggest and its own help
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    def _print_message(self, message: str, file: Any = None) -> None:  # noqa: ANN401 - argparse's own
        if message:
            self._write(message, file)

    @staticmethod
    def _write(message: str, file: Any) -> None:  # noqa: ANN401 - a text stream or None
        """argparse's ``_print_message`` (``None``, a closed stdout: stderr), except that a failed
        write is not ignored: it reaches the error boundary (EPIPE exit 0, a full disk exit 2)."""
        (file or sys.stderr).write(message)

    def error(self, message: str) -> NoReturn:
        # argparse exits 2 itself; route through the boundary for one consistent line.
        raise _ArgparseError(f"{_advise(self, message)} (see {self.prog} --help)")


class _ArgparseError(LlmccError):
    exit_code = 2


_CHOICE = re.compile(r"^(?P<head>argument (?P<arg>[^:]+): invalid choice: )'?(?P<word>[^']*)'? \(choose from .*\)$")


def _advise(parser: argparse.ArgumentParser, message: str) -> str:
    """argparse's message with the closest known name: ``... 'valdate' (did you mean 'validate'?)``."""
    if m := _CHOICE.match(message):
        action = next(
            (a for a in parser._actions if a.choices and m["arg"] in (a.metavar, a.dest, *a.option_strings)), None
        )
        known = [str(c) for c in action.choices or ()] if action is not None else []
        what = "unknown command" if isinstance(action, argparse._SubParsersAction) else m["head"].rstrip(": ")
        return f"{what} {m['word']!r}{_closest(m['word'], known)}"
    if message.startswith("unrecognized arguments: "):
        options = [o for a in parser._actions for o in a.option_strings if a.help is not argparse.SUPPRESS]
        words = message.removeprefix("unrecognized arguments: ").split()
        unknown = next((w for w in words if w.startswith("-")), None)
        if unknown is not None:
            return f"unknown option {unknown.split('=')[0]!r}{_closest(unknown.split('=')[0], options)}"
        return f"unexpected argument {words[0]!r}"
    return message


def _closest(word: str, known: Sequence[str]) -> str:
    import difflib  # a usage error's path only: not paid by every start-up

    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (expected one of: {', '.join(sorted(known))})" if known else ""


VERSION = f"llmcc {__version__}"


def build_parser(command: str | None = None, *, commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser. Only the arguments of ``command`` (or of ``commands``; every
    command when neither is given) are added, so only those command modules are imported."""
    from compiler.cli import _commands

    wanted = set(_commands.COMMANDS) if command is None and commands is None else {*(commands or ()), command}
    wanted.discard(None)
    # A command line that names its command gets that command's parser only (each costs ~0.5 ms);
    # one that names none lists every command (its help, the closest name to a typo).
    shown = wanted or set(_commands.COMMANDS)
    parser = _Parser(prog="llmcc", description="GitOps declarative config compiler for LLM platforms.")
    parser.register("action", "parsers", _SubParsers)
    parser.add_argument("--version", action="version", version=VERSION)
    _add_globals(parser, default=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (helptext, load) in _commands.COMMANDS.items():
        if name not in shown:
            continue
        p = sub.add_parser(name, help=helptext)
        if name in wanted:
            load().add_arguments(p)
    return parser


def _command_extras(command: str) -> tuple[str, ...]:
    from compiler.cli import _commands

    return _commands.extras_for(command)


def _runtime_commands() -> frozenset[str]:
    from compiler.cli import _commands

    return _commands.RUNTIME_COMMANDS


def _add_globals(p: argparse.ArgumentParser, *, default: object) -> None:
    # Accepted before and after every command name, nested ones too (`llmcc -C x policy test`,
    # `llmcc policy test -C x`); on a subcommand a missing option leaves the outer value alone.
    p.add_argument("-C", dest="directory", metavar="DIR", default=default, help="run as if started in DIR (as git -C)")
    p.add_argument("-q", "--quiet", action="store_true", default=default, help="no progress output")
    p.add_argument("--debug", action="store_true", default=default, help="show tracebacks of internal errors")


# Commands whose objects need no collection at exit (``main``): they write closed files only.
LEFT_TO_THE_OS = frozenset({"validate"})


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # after "--" the words are another program's (`llmcc exec -t T -- app --format json`)
    ours = args_list[: args_list.index("--")] if "--" in args_list else args_list
    debug = "--debug" in ours
    as_json = _format_json(ours)
    if argv is None:  # the process's own streams: a reader that goes away ends no command (cli/_streams.py)
        from compiler.cli._streams import outlive_gone_readers

        outlive_gone_readers()
    with error_boundary(debug=debug, as_json=as_json) as result:
        if ours == ["--version"]:
            # what argparse's version action prints (stderr when stdout is closed), without building the parser
            _Parser._write(VERSION + "\n", sys.stdout)
            return 0
        command = _command_in(args_list)
        if command not in (None, UNSURE) and command not in _runtime_commands() and not _cli_installed():
            # command modules are light now: say it before their arguments are parsed (issue 11 extras)
            raise LlmccError(needs_extra(command, *_command_extras(command)))
        parser = build_parser() if command == UNSURE else build_parser(commands=[command] if command else [])
        args = parser.parse_args(args_list)
        result.debug = bool(args.debug)  # `--deb` too
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        start = Path(args.directory or ".").resolve()
        if args.directory and not start.is_dir():
            from compiler.errors import UsageError

            what = "not a directory" if start.exists() else "no such directory"
            raise UsageError(f"-C {args.directory}: {what}")
        from compiler.cli._context import Context, find_root

        ctx = Context(root=find_root(start), cwd=start, quiet=bool(args.quiet), debug=bool(args.debug))
        from compiler.cli import _commands

        _, load = _commands.COMMANDS[args.command]
        if argv is None and args.command in EXIT_AT_ONCE and sys.getprofile() is None:
            from compiler import lifetime

            lifetime.leave_to_os()  # the parsed inputs are not freed one by one if it ends with os._exit
        result.code = load().run(args, ctx)
        if argv is None and args.command in LEFT_TO_THE_OS:
            # The process ends with this command (the console script, `python -m compiler`). The
            # interpreter's last collection walks every object it built (~7 ms of a `validate`,
            # issue 14 §1) to run finalizers that Python does not promise at exit; this command's
            # files are closed and its git thread joined, so it leaves them to the OS.
            gc.freeze()
        if argv is None and result.code == 0 and args.command in EXIT_AT_ONCE and sys.getprofile() is None:
            _exit_at_once()  # not under a profiler (`python -m cProfile -o F -m compiler`): it writes F at exit
    return result.code


# Commands whose process ends with ``os._exit`` once they succeed, output flushed: the interpreter's
# teardown frees every parsed input one object at a time (~40 ms of a 0.6 s cold compile of 53 targets;
# issue 14 §3). Only from the process's entry point (``main()`` without ``argv``: the ``llmcc`` script,
# ``python -m compiler``), never for a caller in the same process; nothing of these commands waits for
# exit (their threads and workers are joined, their files written, closed and synced before they return).
EXIT_AT_ONCE = frozenset({"compile"})


def _exit_at_once() -> NoReturn:
    """End the process with exit code 0 now, its output flushed.

    A flush that fails raises inside the error boundary as any write of the command would
    (a full disk: exit 2 with one line; a reader gone: exit 0), and the process exits as usual,
    the lines that did not go out dropped (else the exit's own flush fails again: exit 120).
    """
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:  # the descriptor was closed when the process started: print() drops its lines
            continue
        try:
            stream.flush()
        except OSError:
            setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115 - the process's stream from now on
            raise
    os._exit(0)


def _format_json(words: list[str]) -> bool:
    """Whether ``words`` say ``--format json``, as argparse reads them: ``--format=json``, an
    abbreviation (``--form json``, ``--f=json``) too. Read before parsing, so that a usage error
    is reported as JSON as well."""
    for word, after in itertools.pairwise([*words, ""]):
        name, eq, value = word.partition("=")
        if len(name) >= 3 and "--format".startswith(name) and (value if eq else after) == "json":
            return True
    return False


def _cli_installed() -> bool:
    """Whether the ``cli`` extra is installed; looked up, not imported (a few stat calls)."""
    return all(importlib.util.find_spec(name) is not None for name in ("pydantic", "jinja2", "jsonschema_rs"))


UNSURE = "-"  # no command's name: _command_in cannot tell which command ``args`` name


def _command_in(args: list[str]) -> str | None:
    """The command ``args`` name, so only its module loads; ``None`` when they name none.

    Only the words argparse reads one way are scanned: ``-C DIR`` (two words, DIR not an
    option), ``-q``, ``--quiet``, ``--debug``; ``-h``, ``--help`` and ``--version`` end the
    parse before any command (``None``). Any other word before the command (a cluster
    ``-qC DIR``, ``-CDIR``, an abbreviation ``--qui``, ``--``) gives ``UNSURE``: the caller
    builds every command's parser and argparse decides.
    """
    from compiler.cli import _commands

    skip = False
    for arg in args:
        if skip:
            if arg.startswith("-"):
                return UNSURE  # argparse refuses an option word as -C's value
            skip = False
        elif arg == "-C":
            skip = True
        elif arg in ("-h", "--help", "--version"):
            return None
        elif arg in _commands.COMMANDS:
            return arg
        elif arg.startswith("-") and arg not in ("-q", "--quiet", "--debug"):
            return UNSURE
        elif not arg.startswith("-"):
            return None
    return None


class _Result:
    """What the error boundary found: the exit code and, for an error, its message."""

    __slots__ = ("as_json", "code", "debug", "message")

    def __init__(self, *, debug: bool = False, as_json: bool = False) -> None:
        self.code = 0
        self.message: str | None = None
        # what the words said before parsing; main sets argparse's reading of --debug (`--deb`)
        self.debug, self.as_json = debug, as_json


def error_document(message: str, code: int) -> dict[str, object]:
    """The ``--format json`` document for an error that ended the command."""
    from compiler.diagnostics import diagnostic_from_message

    return {"ok": False, "exit_code": code, "diagnostics": [diagnostic_from_message(message).to_json()]}


@contextlib.contextmanager
def error_boundary(*, debug: bool, as_json: bool = False) -> Iterator[_Result]:
    """Turn every exception into one line on stderr and an exit code (docs/exit-codes.md).

    With ``as_json`` (``--format json``) an error that ends the command is
    reported as one JSON document on stdout instead, so a consumer always gets one.
    """
    result = _Result(debug=debug, as_json=as_json)
    try:
        yield result
    except ConfigCheckError as e:
        from compiler.diagnostics import hang_lines

        if not result.as_json:
            for d in e.diagnostics:
                print(d.format(), file=sys.stderr)
            print(f"llmcc: {hang_lines(str(e))}", file=sys.stderr)
        result.code = e.exit_code
        result.message = str(e)
    except LlmccError as e:
        from compiler.diagnostics import hang_lines

        if not result.as_json:
            print(f"llmcc: {hang_lines(str(e))}", file=sys.stderr)
        result.code = e.exit_code
        result.message = str(e)
    except KeyboardInterrupt:
        print("llmcc: interrupted", file=sys.stderr)
        result.code = 130
    except TerminatedError as e:
        print("llmcc: terminated", file=sys.stderr)
        result.code = e.exit_code
    except BrokenPipeError:
        # `llmcc pull x | head`: the reader went away; not our error.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        result.code = 0
    except Exception as e:  # noqa: BLE001 - the one deliberate catch-all: a bug becomes exit 70
        if isinstance(e, OSError) and e.errno in _WRITE_ERRORS:
            # `llmcc --version >/dev/full`: the environment's fault, not a bug (docs/exit-codes.md)
            result.code, result.message = 2, f"cannot write {e.filename or 'the output'}: {e.strerror}"
            _say(result.message, as_json=result.as_json)
        elif isinstance(e, ModuleNotFoundError) and is_missing(e, CLI_PACKAGES):
            # installed without the cli extra, found after the command loaded (cli/_commands.py names the command)
            result.code, result.message = 2, needs_extra("this command", "cli")
            if not result.as_json:
                print(f"llmcc: {result.message}", file=sys.stderr)
        else:
            _internal_error(e, debug=result.debug, result=result)
    except (SystemExit, GeneratorExit):
        raise
    except BaseException as e:  # noqa: BLE001 - a native library's panic (PyO3 PanicException) is a bug too
        if is_interrupt_panic(e):  # Ctrl-C while a native module ran Python code: still an interrupt
            print("llmcc: interrupted", file=sys.stderr)
            result.code = 130
        else:
            _internal_error(e, debug=result.debug, result=result)
    if result.as_json and result.code != 0 and result.message is not None:
        import json

        try:
            print(json.dumps(error_document(result.message, result.code), indent=2, sort_keys=True))
        except OSError as e:  # stdout is full or gone: the error on stderr instead (never a traceback)
            _say(result.message, as_json=False)
            if e.errno in _WRITE_ERRORS:  # the document was not delivered: at least an input/output error
                result.code = max(result.code, 2)


# A write that failed for want of room: exit 2 with one line (EPIPE, a reader gone, is exit 0).
_WRITE_ERRORS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})


def _say(message: str, *, as_json: bool) -> None:
    """``llmcc: message`` on stderr, unless ``--format json`` reports it; a stderr that fails says nothing."""
    if not as_json:
        with contextlib.suppress(OSError):
            print(f"llmcc: {message}", file=sys.stderr)


def _internal_error(e: BaseException, *, debug: bool, result: _Result) -> None:
    """Exit 70 with one line for an exception that is not one of ours: a bug."""
    if debug:
        import traceback  # --debug on an internal error only

        traceback.print_exc()
    message = f"internal error: {type(e).__name__}: {e} (run with --debug for the traceback)"
    print(f"llmcc: {message}", file=sys.stderr)
    result.code = 70
    result.message = message


CommandRunner = Callable[[argparse.Namespace, "Context"], int]
__all__ = ["Context", "build_parser", "error_boundary", "main"]


def __getattr__(name: str) -> object:
    """``compiler.cli.Context``, imported on first use (a dataclass: not paid by ``--version`` or ``--help``)."""
    if name == "Context":
        from compiler.cli._context import Context

        return Context
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
