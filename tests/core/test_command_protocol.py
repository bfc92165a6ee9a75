"""Every command in the table is a :class:`~compiler.cli._commands.Command` (issue 14 §5).

mypy checks the loaders' return type statically; this checks what they
really return, with the signatures ``cli.main`` calls them with.
"""

from __future__ import annotations

import inspect

import pytest

from compiler.cli import _commands
from compiler.cli._commands import COMMANDS, Command


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_registered_command_satisfies_the_protocol(name: str) -> None:
    _, load = COMMANDS[name]
    module = load()
    assert isinstance(module, Command)
    assert list(inspect.signature(module.add_arguments).parameters) == ["p"]
    assert list(inspect.signature(module.run).parameters) == ["args", "ctx"]


def test_an_object_without_run_is_not_a_command() -> None:
    class ArgumentsOnly:
        def add_arguments(self, p: object) -> None: ...

    assert not isinstance(ArgumentsOnly(), Command)
    assert _commands.Command is Command
