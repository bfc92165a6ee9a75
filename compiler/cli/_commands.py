"""The command table: name -> (help, loader). Explicit, no entry points (STYLE R8).

Each loader returns its command module typed as :class:`Command`, so mypy
checks that every module in the table has ``add_arguments`` and ``run`` with
the signatures ``cli.main`` calls (PEP 544: a module implements a Protocol).

Each loader imports its command module only when that command runs, so
`llmcc validate` does not pay for boto3, GitPython or the OCI client. In an
install without the ``cli`` extra a loader fails with one line naming it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from compiler.errors import UsageError
from compiler.extras import CLI_PACKAGES, is_missing, needs_extra

if TYPE_CHECKING:
    from compiler.cli._context import Context


@runtime_checkable
class Command(Protocol):
    """What a command module provides: its arguments, and the run that returns the exit code (docs/exit-codes.md)."""

    def add_arguments(self, p: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace, ctx: Context) -> int: ...


def _compile() -> Command:
    from compiler.cli import compile as m

    return m


def _validate() -> Command:
    from compiler.cli import validate as m

    return m


def _diff() -> Command:
    from compiler.cli import diff as m

    return m


def _explain() -> Command:
    from compiler.cli import explain as m

    return m


def _history() -> Command:
    from compiler.cli import history as m

    return m


def _publish() -> Command:
    from compiler.cli import publish as m

    return m


def _verify() -> Command:
    from compiler.cli import verify as m

    return m


def _pull() -> Command:
    from compiler.cli import pull as m

    return m


def _exec() -> Command:
    from compiler.cli import execute as m

    return m


def _agent() -> Command:
    from compiler.cli import agent as m

    return m


def _policy() -> Command:
    from compiler.cli import policy as m

    return m


def _secrets() -> Command:
    from compiler.cli import secrets as m

    return m


def _keys() -> Command:
    from compiler.cli import keys as m

    return m


def _hook() -> Command:
    from compiler.cli import hook as m

    return m


def _init() -> Command:
    from compiler.cli import init as m

    return m


def _ci() -> Command:
    from compiler.cli import ci as m

    return m


COMMANDS: dict[str, tuple[str, Callable[[], Command]]] = {
    "compile": ("render, validate and encrypt; write DIR/<target>.bundle.json", _compile),
    "validate": ("schema, secrets and policy checks; writes nothing but the result cache", _validate),
    "diff": (
        "compare the effective configs of BASE (default: merge-base with the default branch) "
        "and HEAD (default: the working tree)",
        _diff,
    ),
    "explain": ("effective value of MODULE.PATH, the lines that set it and the commits that wrote them", _explain),
    "history": ("the commits that changed the effective value of MODULE.PATH, newest first", _history),
    "publish": ("compile, sign and push new bundle versions to the store", _publish),
    "verify": ("check signatures, digests and the hash chain of published bundles", _verify),
    "pull": ("verify, then print a published bundle's modules (JSON, YAML, env, dotenv)", _pull),
    "exec": ("verify a target, then run CMD with its config in the environment or a private file", _exec),
    "agent": ("serve verified config over local HTTP to services in any language (sidecar)", _agent),
    "policy": ("run the policy test cases in policies/tests/", _policy),
    "secrets": ("SOPS workflows: encrypt, edit, rotate", _secrets),
    "keys": ("generate identities; rotate or re-wrap target data keys", _keys),
    "hook": ("pre-commit hook entries: validate (affected targets), secrets-guard, diff", _hook),
    "init": ("scaffold a new config repository in DIR (fresh keys outside it)", _init),
    "ci": ("CI steps: comment (the pull request's one diff comment, updated in place)", _ci),
}


# Commands that run on the base install (standard library and the runtime tier only): a CI job
# that only posts the diff comment needs no compile stack (tests/packaging/test_client_install.py).
RUNTIME_COMMANDS = frozenset({"ci"})


# Every extra a command needs beyond the base install (default: cli), named together when one is
# missing, so the user installs once instead of learning the next extra after the first install.
EXTRAS: dict[str, tuple[str, ...]] = {"agent": ("cli", "agent")}


def extras_for(name: str) -> tuple[str, ...]:
    """The extras command ``name`` needs: ``("cli",)``, or more (``agent``: ``("cli", "agent")``)."""
    return EXTRAS.get(name, ("cli",))


def _needs_cli(name: str, load: Callable[[], Command]) -> Callable[[], Command]:
    """``load``, with a missing ``cli`` extra reported as one line (exit 2) naming every extra the command needs."""

    def guarded() -> Command:
        try:
            return load()
        except ModuleNotFoundError as e:
            if not is_missing(e, CLI_PACKAGES):
                raise  # a bug of ours: exit 70
            raise UsageError(needs_extra(name, *extras_for(name))) from e

    return guarded


COMMANDS = {
    name: (text, load if name in RUNTIME_COMMANDS else _needs_cli(name, load))
    for name, (text, load) in COMMANDS.items()
}
