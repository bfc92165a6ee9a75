"""The editor that ``llmcc secrets edit`` gives sops: the user's editor, then the plaintext checks.

``sops edit`` decrypts to a temporary file, runs ``$SOPS_EDITOR FILE`` and
encrypts what was saved. llmcc sets ``SOPS_EDITOR`` to this module, which:

1. runs the user's editor (``LLMCC_USER_EDITOR``: their ``$SOPS_EDITOR`` or
   ``$EDITOR``; else the first of vim, nano, vi, as sops does) on the file;
2. loads the saved text as llmcc would (valid YAML, string keys, no duplicate
   keys) and looks for unquoted values sops reads differently
   (``compiler.secrets.scalars``);
3. on a problem, writes one line per problem to ``LLMCC_EDIT_REPORT``
   (``path:line:col: why``, line numbers of the decrypted text, never a value)
   and exits 1: sops then saves nothing (exit 201, "could not run editor");
4. otherwise writes to ``LLMCC_EDIT_CHANGED`` the ``module.path`` of every
   value the saved text holds, one a line, ``changed KEY`` when the edit added
   or changed it and ``kept KEY`` when not (names only, never a value), so that
   ``llmcc secrets edit`` records their rotation dates (issue 13 §6).

Without step 2 a file sops cannot parse sends sops into a loop that waits for a
key press, forever when stdin is not a terminal.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from compiler.errors import InputError
from compiler.jsonpath import JsonPath
from compiler.load.yaml import Value, load_document
from compiler.secrets.rotation import rotation_key
from compiler.secrets.scalars import ambiguous_scalars

USER_EDITOR = "LLMCC_USER_EDITOR"
REPORT = "LLMCC_EDIT_REPORT"
SHOWN_PATH = "LLMCC_EDIT_PATH"
CHANGED = "LLMCC_EDIT_CHANGED"
_FALLBACK_EDITORS = ("vim", "nano", "vi")


def editor_command() -> list[str]:
    """This module as sops's editor, for ``SOPS_EDITOR`` (sops splits it like a shell)."""
    return [sys.executable, "-m", "compiler.secrets.editcheck"]


def check_edited(data: bytes, *, path: str) -> list[str]:
    """Problems in the saved plaintext, one line each; none means sops may encrypt it."""
    try:
        doc = load_document(data, path=path, layer="secrets", quote_values=False)
    except InputError as e:
        return [str(e)]
    if not isinstance(doc.value, dict):
        return [f"{path}:1:1: a secrets file must be a mapping (modules: ...)"]
    return ambiguous_scalars(data, path=path)


def changed_keys(before: bytes, after: bytes, *, path: str) -> list[str]:
    """``module.path`` (``rotation_key``) of every value under ``modules`` that ``after`` adds or
    changes, sorted. A value removed is not a rotation; text that does not load counts as empty."""
    return [k for k, changed in compare_values(before, after, path=path) if changed]


def compare_values(before: bytes, after: bytes, *, path: str) -> list[tuple[str, bool]]:
    """Every value ``after`` holds, sorted by key, with whether ``before`` held it otherwise (or not at all)."""
    old, new = _leaves(before, path), _leaves(after, path)
    return [(k, k not in old or old[k] != new[k]) for k in sorted(new)]


def _leaves(data: bytes, path: str) -> dict[str, tuple[str, Value]]:
    try:
        doc = load_document(data, path=path, layer="secrets", quote_values=False)
    except InputError:
        return {}
    modules = doc.value.get("modules") if isinstance(doc.value, dict) else None
    out: dict[str, tuple[str, Value]] = {}

    def walk(module: str, node: Value, at: JsonPath) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                walk(module, child, (*at, key))
        elif isinstance(node, list):
            for i, child in enumerate(node):
                walk(module, child, (*at, i))
        else:
            out[rotation_key(module, at)] = (type(node).__name__, node)  # 1 and true are different values

    for module, patch in (modules or {}).items() if isinstance(modules, dict) else ():
        walk(module, patch, ())
    return out


def main(argv: Sequence[str] | None = None, env: dict[str, str] | None = None) -> int:
    """Run the user's editor on ``argv[-1]``, then check it. Returns the exit status for sops."""
    args = list(sys.argv[1:] if argv is None else argv)
    environ = dict(os.environ if env is None else env)
    if not args:
        print("llmcc: editcheck: no file to edit", file=sys.stderr)
        return 2
    file = Path(args[-1])
    before = file.read_bytes() if file.exists() else b""
    editor = shlex.split(environ.get(USER_EDITOR, "")) or _fallback()
    if not editor:
        print("llmcc: no editor: set $EDITOR", file=sys.stderr)
        return 2
    try:
        # The editor's own messages go to the terminal (stdout): sops's stderr is captured by llmcc.
        code = subprocess.run([*editor, str(file)], check=False, stderr=_stdout_fd()).returncode
    except OSError as e:
        print(f"llmcc: cannot run the editor {editor[0]}: {e.strerror}")
        return 127
    if code != 0:
        return code
    shown = environ.get(SHOWN_PATH, file.name)
    after = file.read_bytes()
    problems = check_edited(after, path=shown)
    if problems:
        report = environ.get(REPORT)
        if report:
            Path(report).write_text("".join(f"{p}\n" for p in problems), encoding="utf-8")
        return 1
    if changed := environ.get(CHANGED):
        lines = [f"{'changed' if c else 'kept'} {k}\n" for k, c in compare_values(before, after, path=shown)]
        Path(changed).write_text("".join(lines), encoding="utf-8")
    return 0


def _stdout_fd() -> int | None:
    try:
        return sys.stdout.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation is both: stdout is not a file
        return None


def _fallback() -> list[str]:
    for name in _FALLBACK_EDITORS:
        found = shutil.which(name)
        if found:
            return [found]
    return []


if __name__ == "__main__":
    raise SystemExit(main())
