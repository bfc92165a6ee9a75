"""Shared by the policy, hook and init tests: issue-6 commands, a tree in memory, compiled policies."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from compiler.cli import _commands
from compiler.policy.rules import PolicySet, parse_policy_file
from compiler.sources.worktree import WorkTree

# Until compiler/cli/_commands.py lists them, tests register them for the test's duration.
ISSUE6_COMMANDS = {
    "policy": "run the policy test cases in policies/tests/",
    "hook": "pre-commit hook entries: validate (affected targets), secrets-guard, diff",
    "init": "scaffold a new config repository in DIR (fresh keys outside it)",
}
REGISTERED_AT_IMPORT = frozenset(_commands.COMMANDS)


@pytest.fixture
def issue6_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    from compiler.cli import hook, init, policy

    modules = {"policy": policy, "hook": hook, "init": init}
    for name, helptext in ISSUE6_COMMANDS.items():
        if name not in _commands.COMMANDS:
            monkeypatch.setitem(_commands.COMMANDS, name, (helptext, modules[name]))


def policies_from(text: str, path: str = "policies/test.yaml") -> PolicySet:
    policies, waivers = parse_policy_file(textwrap.dedent(text).encode(), path=path)
    return PolicySet(policies=tuple(policies), waivers=tuple(waivers))


def write_tree(root: Path, files: dict[str, str]) -> WorkTree:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text), encoding="utf-8")
    return WorkTree(root)
