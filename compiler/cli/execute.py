"""``llmcc exec -t TARGET -- CMD ARGS``: run a program with a verified target's config (issue 12 §3).

The habit of ``sops exec-env`` / ``sops exec-file``, with verification first:
the target is read and verified exactly as ``pull`` reads it (the listing, the
signed pointer, the chain, this reader's high-water mark, which it advances),
its secrets are opened with the caller's identity, and only then is CMD started.

- Default: the flattened config (``compiler.exports``) is added to the child's
  environment; a config variable replaces an inherited one of the same name
  (``--prefix`` keeps them apart).
- ``--file``: the config is written to ``config.<format>`` (mode 0600) in a
  fresh private directory (mode 0700) under ``$XDG_RUNTIME_DIR``, else
  ``/dev/shm``, else the temp directory (``--tmpdir`` picks one); its path is in
  ``$LLMCC_CONFIG_FILE`` and replaces every argument that is exactly ``{}``.
  The directory is removed when the child exits, and when llmcc is stopped by
  SIGTERM, SIGINT or SIGHUP (forwarded to the child first). SIGKILL cannot be
  caught: a killed llmcc leaves the directory, which is why it is on a tmpfs
  where there is one.

Plaintext goes only to the child: nothing is printed. The exit code is the
child's, 128+N when signal N ended it (as a shell reports it), 127 when CMD is
not found and 126 when it cannot be run (as ``env(1)``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

from compiler.cli import Context
from compiler.cli._repo import whole_number
from compiler.cli._store import add_reader_args, add_store_args
from compiler.cli.pull import read_modules
from compiler.errors import LlmccError, UsageError
from compiler.exports import FORMATS, RENDERERS, flatten, render_dotenv, render_env

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


class ChildStartError(LlmccError):
    """CMD could not be started: 127 not found, 126 not runnable (as ``env(1)``)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--target", required=True, metavar="TARGET", help="the target, e.g. prod or prod@acme")
    add_store_args(p)
    p.add_argument("--version", type=whole_number, metavar="N", help="this version (default: the latest)")
    add_reader_args(p, identity_for="for the secrets")
    p.add_argument("--prefix", default="", metavar="P", help="put P before every variable name")
    p.add_argument(
        "--file",
        action="store_true",
        help="write the config to a private temp file instead ($LLMCC_CONFIG_FILE; {} in ARGS)",
    )
    p.add_argument("--format", choices=FORMATS, default="json", help="with --file: the file's format (default json)")
    p.add_argument("--tmpdir", metavar="DIR", type=Path, help="with --file: where the private directory goes")
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ARGS", help="the program to run")


def run(args: argparse.Namespace, ctx: Context) -> int:
    command = list(args.argv)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError("exec: no command: llmcc exec -t TARGET -- CMD [ARGS]")
    if not args.file and (args.format != "json" or args.tmpdir is not None):
        raise UsageError("--format and --tmpdir apply to --file only")
    from compiler.project import parse_target  # imported here: --help loads no pydantic

    target = parse_target(args.target).name
    _, modules = read_modules(args, ctx, target, decrypt=True)  # verified, before anything runs
    # From here until CMD ends, SIGTERM & co are remembered, then forwarded to CMD: one that
    # comes while the --file directory is made and written stops the run before CMD starts,
    # and the directory is still removed (no plaintext left behind by a well-timed signal).
    if not args.file:
        env = {**os.environ, **flatten(modules, prefix=args.prefix)}
        with _forwarding() as child:
            return child.run(command, env)
    if args.format in ("env", "dotenv"):
        variables = flatten(modules, prefix=args.prefix)
        text = render_env(variables) if args.format == "env" else render_dotenv(variables)
    else:
        text = RENDERERS[args.format](modules)
    with _forwarding() as child, _private_dir(args.tmpdir) as directory:
        path = directory / f"config.{args.format}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        argv = [str(path) if a == "{}" else a for a in command]
        return child.run(argv, {**os.environ, "LLMCC_CONFIG_FILE": str(path)})


def default_tmpdir(env: dict[str, str] | os._Environ[str]) -> Path:
    """``$XDG_RUNTIME_DIR`` (a per-user tmpfs), else ``/dev/shm``, else the temp directory."""
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK):
        return Path(runtime)
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):  # noqa: S108 - a tmpfs, 0700 dir below
        return Path("/dev/shm")  # noqa: S108
    return Path(tempfile.gettempdir())


@contextlib.contextmanager
def _private_dir(parent: Path | None) -> Iterator[Path]:
    """A fresh 0700 directory, removed on exit and on SIGTERM/SIGINT/SIGHUP (STYLE R15)."""
    base = parent if parent is not None else default_tmpdir(os.environ)
    try:
        directory = Path(tempfile.mkdtemp(prefix="llmcc-exec-", dir=base))  # mode 0700 (mkdtemp)
    except OSError as e:
        raise UsageError(f"{base}: cannot create a private directory: {e.strerror or e}") from e
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class _Child:
    """CMD, with the signals in ``FORWARDED`` remembered before it starts and forwarded after."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.pending: list[int] = []

    def forward(self, signum: int, _frame: FrameType | None) -> None:
        if self.process is None:
            self.pending.append(signum)
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signum)

    def run(self, argv: Sequence[str], env: dict[str, str]) -> int:
        """Start ``argv`` and wait; its exit code (128+N for signal N).

        A signal that came before: nothing is started, and the code is 128+N, as if
        CMD had started and been stopped by it.

        Raises:
            ChildStartError: CMD not found (127) or not runnable (126).
        """
        if self.pending:
            return 128 + self.pending[0]
        try:
            self.process = subprocess.Popen(argv, env=env, close_fds=True)  # the user's own command
        except FileNotFoundError:
            raise ChildStartError(f"exec: {argv[0]}: command not found", 127) from None
        except OSError as e:
            raise ChildStartError(f"exec: {argv[0]}: cannot run: {e.strerror or e}", 126) from None
        for signum in self.pending:  # came while Popen ran
            self.process.send_signal(signum)
        code = self.process.wait()
        return 128 - code if code < 0 else code


@contextlib.contextmanager
def _forwarding() -> Iterator[_Child]:
    """Handlers for ``FORWARDED`` in place for the block (restored after): see :class:`_Child`."""
    child = _Child()
    previous = {s: signal.signal(s, child.forward) for s in FORWARDED}
    try:
        yield child
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
