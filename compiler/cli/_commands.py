"""The command table: name -> (help, module). Explicit, no entry points (STYLE R8)."""

from __future__ import annotations

from types import ModuleType

from compiler.cli import compile as compile_cmd
from compiler.cli import explain, keys, secrets, validate

COMMANDS: dict[str, tuple[str, ModuleType]] = {
    "compile": ("render, validate and encrypt; write DIR/<target>.bundle.json", compile_cmd),
    "validate": ("schema, secrets and policy checks; nothing written", validate),
    "explain": ("effective value of MODULE.PATH and the layers that set it", explain),
    "secrets": ("SOPS workflows: encrypt, edit, rotate", secrets),
    "keys": ("generate identities; rotate or re-wrap target data keys", keys),
}
