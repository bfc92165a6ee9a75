"""The command table: name -> (help, module). Explicit, no entry points (STYLE R8)."""

from __future__ import annotations

from types import ModuleType

from compiler.cli import compile as compile_cmd
from compiler.cli import diff, explain, history, hook, init, keys, policy, publish, pull, secrets, validate, verify

COMMANDS: dict[str, tuple[str, ModuleType]] = {
    "compile": ("render, validate and encrypt; write DIR/<target>.bundle.json", compile_cmd),
    "validate": ("schema, secrets and policy checks; nothing written", validate),
    "diff": (
        "compare the effective configs of BASE (default: merge-base with the default branch) "
        "and HEAD (default: the working tree)",
        diff,
    ),
    "explain": ("effective value of MODULE.PATH, the lines that set it and the commits that wrote them", explain),
    "history": ("the commits that changed the effective value of MODULE.PATH, newest first", history),
    "publish": ("compile, sign and push new bundle versions to the store", publish),
    "verify": ("check signatures, digests and the hash chain of published bundles", verify),
    "pull": ("verify, then print a published bundle's modules as JSON", pull),
    "secrets": ("SOPS workflows: encrypt, edit, rotate", secrets),
    "keys": ("generate identities; rotate or re-wrap target data keys", keys),
    "policy": ("run the policy test cases in policies/tests/", policy),
    "hook": ("pre-commit hook entries: validate (affected targets), secrets-guard, diff", hook),
    "init": ("scaffold a new config repository in DIR (fresh keys outside it)", init),
}
