"""``llmcc secrets encrypt|edit|rotate``: SOPS workflows with the repository's ``.sops.yaml`` rules.

- ``encrypt FILE``: like ``sops encrypt --in-place``. ``x.secrets.sops.yaml``
  is encrypted in place; any other name (``x.secrets.yaml``) is encrypted to
  its ``.sops.yaml`` sibling, and the plaintext file is then removed, so no
  plaintext is left to be committed by accident.
- ``edit FILE``: ``sops edit`` (``$EDITOR``), new files get the creation rule;
  ``rotated_at`` of every value the edit added or changed is recorded in the
  sidecar, as ``rotate`` does (``compiler.secrets.editcheck`` names them).
- ``rotate MODULE.PATH --target T``: a new value (stdin or generated) goes
  into the most specific SOPS file of T's layers that sets it (else T's own
  layer's secrets file), through ``sops set`` (decrypted in sops's memory
  only), and ``rotated_at`` is recorded in the plaintext sidecar
  (``compiler.secrets.rotation``).

A relative FILE is taken from the config repository (``-C DIR``); ``--identity FILE``
from the current directory.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.cli._context import MANIFEST, Context
from compiler.cli._repo import add_identity_arg, whole_number
from compiler.cli.keys import read_file, write_file
from compiler.errors import ConfigCheckError, InputError, SecretsError, UsageError
from compiler.fileops import write_atomic
from compiler.jsonpath import ItemKey, JsonPath, Query, format_path, split_address

if TYPE_CHECKING:
    from compiler.load.yaml import Value
    from compiler.secrets.envelope import SecretValue
    from compiler.secrets.identity import Identities

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_SOPS_NOT_MODIFIED = 200  # sops's exit code when the editor saved no change


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="secrets_command", metavar="SUBCOMMAND", required=True)
    enc = sub.add_parser("encrypt", help="encrypt a plaintext YAML file with the .sops.yaml rules")
    enc.add_argument("file", metavar="FILE", help="x.secrets.sops.yaml (in place) or x.secrets.yaml")
    edit = sub.add_parser("edit", help="edit a SOPS file in $EDITOR (sops edit)")
    edit.add_argument("file", metavar="FILE")
    add_identity_arg(edit)
    rot = sub.add_parser("rotate", help="set a new value for a secret and record rotated_at")
    rot.add_argument("address", metavar="MODULE.PATH", help="e.g. data-pipeline.db.password")
    rot.add_argument("--target", required=True, metavar="T", help="the target whose layers hold the secret")
    value = rot.add_mutually_exclusive_group(required=True)
    value.add_argument("--value-from-stdin", action="store_true", help="read the new value from stdin")
    value.add_argument("--generate", type=whole_number, metavar="N", help="generate N random characters [A-Za-z0-9]")
    add_identity_arg(rot)


def run(args: argparse.Namespace, ctx: Context) -> int:
    command: str = args.secrets_command
    if command == "encrypt":
        return _encrypt(ctx.path(args.file), ctx)
    if command == "edit":
        return _edit(args, ctx)
    return _rotate(args, ctx)


def _encrypt(src: Path, ctx: Context) -> int:
    from compiler.load.yaml import load_document
    from compiler.secrets.scalars import refuse_ambiguous
    from compiler.secrets.sops import encrypt_sops, is_sops_document

    if not src.resolve().is_relative_to(ctx.root.resolve()):
        # .sops.yaml's creation rules match repository paths: outside it no rule applies
        raise UsageError(f"{src}: outside the config repository {ctx.root}")
    rel_src = _relative(ctx, src)
    plaintext = read_file(src, rel_src)
    doc = load_document(plaintext, path=rel_src, layer="secrets")
    if is_sops_document(doc.value):
        raise UsageError(f"{rel_src}: already SOPS-encrypted; change it with: llmcc secrets edit {rel_src}")
    if not isinstance(doc.value, dict):
        raise InputError(f"{rel_src}:1:1: a secrets file must be a mapping (modules: ...)")
    for key in doc.value:
        # a SOPS layer holds modules: only; compile would refuse anything else after encryption
        if key != "modules":
            raise InputError(
                f"{doc.origin((key,)).location()}: unknown top-level key {key!r} in a secrets file "
                "(expected modules: <module>: <fields>); nothing was encrypted"
            )
    refuse_ambiguous(plaintext, rel_src)
    dest = src if src.name.endswith(".sops.yaml") else src.with_name(_sops_name(src.name))
    rel_dest = _relative(ctx, dest)
    if dest != src and (dest.exists() or dest.is_symlink()):
        raise UsageError(f"{rel_dest}: already exists; merge into it with: llmcc secrets edit {rel_dest}")
    ciphertext = encrypt_sops(plaintext, path=rel_dest, cwd=ctx.root)
    write_file(dest, ciphertext, mode=0o644)
    if dest == src:
        print(f"encrypted {rel_src}")
    else:
        src.unlink()
        print(f"encrypted {rel_src} to {rel_dest} and removed the plaintext {rel_src}")
    return 0


def _sops_name(name: str) -> str:
    for suffix in (".yaml", ".yml"):
        if name.endswith(suffix):
            return name[: -len(suffix)] + ".sops.yaml"
    return name + ".sops.yaml"


def _edit(args: argparse.Namespace, ctx: Context) -> int:
    from compiler.diagnostics import diagnostic_from_message, plural
    from compiler.load.yaml import load_document
    from compiler.secrets import editcheck
    from compiler.secrets.identity import load_identities
    from compiler.secrets.rotation import dump_rotation, is_rfc3339, read_rotation, rfc3339, rotation_path
    from compiler.secrets.sops import check_decryptable, sops_binary, sops_reason
    from compiler.secrets.sopsfile import sops_metadata

    file = ctx.path(args.file)
    rel = _relative(ctx, file)
    lastmodified: object = None
    if file.exists():
        # sops would fail on a plaintext value while quoting it: refuse first, at its line.
        old = load_document(read_file(file, rel), path=rel, layer="secrets", quote_values=False)
        check_decryptable(old)
        # the age of values the edit keeps, when no sidecar entry has it: sops moves lastmodified on any save
        lastmodified = sops_metadata(old.value).get("lastmodified")
    env = dict(os.environ)
    if args.identity:
        env.update(load_identities(args.identity, os.environ).sops_env())
    env[editcheck.USER_EDITOR] = env.get("SOPS_EDITOR") or env.get("EDITOR", "")
    env["SOPS_EDITOR"] = shlex.join(editcheck.editor_command())
    env[editcheck.SHOWN_PATH] = rel
    argv = [sops_binary(), "--disable-version-check", "edit", rel]
    with tempfile.TemporaryDirectory(prefix="llmcc-edit-") as tmp:
        report = Path(tmp) / "report"
        env[editcheck.REPORT] = str(report)
        changed_file = Path(tmp) / "changed"
        env[editcheck.CHANGED] = str(changed_file)
        try:
            # sops and the editor own the terminal (stdin, stdout); sops's stderr is captured
            # because it can quote values (issue 9 §5): we say what failed in our own words.
            proc = subprocess.run(argv, cwd=ctx.root, env=env, stderr=subprocess.PIPE, check=False)
        except OSError as e:
            raise SecretsError(f"{rel}: cannot run sops: {e.strerror}") from e
        problems = report.read_text(encoding="utf-8").splitlines() if report.exists() else []
        values = changed_file.read_text(encoding="utf-8").splitlines() if changed_file.exists() else []
    if problems:
        raise ConfigCheckError(
            f"{rel}: not saved: {plural(len(problems), 'problem')} in the edited text (lines of the decrypted text)",
            [diagnostic_from_message(p) for p in problems],
        )
    if proc.returncode == _SOPS_NOT_MODIFIED:
        ctx.progress(f"{rel}: not modified")
        return 0
    if proc.returncode != 0:
        raise SecretsError(f"{rel}: sops could not edit: {sops_reason(proc.returncode, proc.stderr)}")
    changed = [line.split(" ", 1)[1] for line in values if line.startswith("changed ")]
    kept = [line.split(" ", 1)[1] for line in values if line.startswith("kept ")]
    side_rel = rotation_path(rel)
    side = ctx.root / side_rel
    entries = read_rotation(read_file(side, side_rel), path=side_rel) if side.exists() else {}
    known = dict(entries)
    entries |= dict.fromkeys(changed, rfc3339(datetime.now(UTC)))
    if isinstance(lastmodified, str) and is_rfc3339(lastmodified):
        entries |= {k: lastmodified for k in kept if k not in entries}
    if entries != known:
        write_file(side, dump_rotation(entries, sops_path=rel), mode=0o644)
    if not changed:
        print(f"edited {rel}")
        return 0
    print(f"edited {rel}; rotated_at of {plural(len(changed), 'value')} recorded in {side_rel}: {', '.join(changed)}")
    return 0


def _rotate(args: argparse.Namespace, ctx: Context) -> int:
    from compiler.load.layers import resolve_layers
    from compiler.project import load_project
    from compiler.secrets.identity import load_identities
    from compiler.secrets.rotation import record_rotation, rotation_key, rotation_path
    from compiler.secrets.sops import encrypt_sops, sops_index
    from compiler.sources.worktree import WorkTree
    from compiler.validate.schema import ModuleSchema
    from compiler.validate.schemafiles import SchemaFiles
    from compiler.validate.secretwalk import secret_paths

    schemas = ctx.root / "schemas"
    known = sorted(f.name.removesuffix(".schema.json") for f in schemas.glob("*.schema.json") if f.is_file())
    module, query = split_address(str(args.address), known)
    if not query:
        raise UsageError(f"{args.address!r}: expected MODULE.PATH, e.g. data-pipeline.db.password")
    tree = WorkTree(ctx.root)
    rel = f"schemas/{module}.schema.json"
    schema = ModuleSchema.load(module, rel, tree.read(rel), SchemaFiles(tree))
    path = next((p for p in _readings(query) if any(p[: len(s)] == s for s in secret_paths(schema, _probe(p)))), None)
    if path is None:
        raise UsageError(f"{args.address}: not a secret field (its schema does not mark it x-secret)")
    project = load_project(read_file(ctx.root / MANIFEST, MANIFEST), path=MANIFEST)
    (target,) = project.select([args.target])
    identities = load_identities(args.identity, os.environ)
    value = _new_value(args)
    refs = [r for r in resolve_layers(project, target) if r.secrets]
    chosen = next((r.path for r in reversed(refs) if _sets(ctx.root / r.path, r.path, module, path)), None)
    rel = chosen or refs[-1].path
    file = ctx.root / rel
    key = rotation_key(module, path)
    if chosen is None and not file.exists():
        # JSON is YAML: sops reads it as the plaintext of a new file, on stdin.
        plain = {"modules": {module: _nest(path, value.reveal().decode("utf-8"))}}
        ciphertext = encrypt_sops(json.dumps(plain, ensure_ascii=False).encode("utf-8"), path=rel, cwd=ctx.root)
        write_file(file, ciphertext, mode=0o644)
    else:
        at = _lookup(file, rel, ("modules", module, *path))
        if at not in ("set", "absent"):
            raise UsageError(f"{rel}: cannot set {key}: {at} holds a value of another shape")
        if at == "absent" and any(isinstance(p, int) for p in path):
            # sops would create or replace the whole list; a new list item is an edit, not a rotation
            raise UsageError(f"{rel}: {key} does not exist; add list items with `llmcc secrets edit {rel}`")
        value_json = json.dumps(value.reveal().decode("utf-8"), ensure_ascii=False).encode("utf-8")
        _set_in_place(file, rel, sops_index(("modules", module, *path)), value_json, identities)
    side_rel = rotation_path(rel)
    side = ctx.root / side_rel
    old = read_file(side, side_rel) if side.exists() else None
    write_file(side, record_rotation(old, sops_path=rel, key=key, now=datetime.now(UTC)), mode=0o644)
    print(f"rotated {key} in {rel}; rotated_at recorded in {side_rel}")
    return 0


def _readings(query: Query) -> list[JsonPath]:
    """The concrete paths ``query`` may mean, list indexes first: an unquoted ``0`` is an index or a key.

    The file holds ciphertext, so the schema decides (the first reading it marks secret).
    """
    out: list[JsonPath] = [()]
    for part in query:
        if isinstance(part, ItemKey):
            raise UsageError(f"{format_path(query)}: [field=value] does not address a secret to rotate; use [N]")
        options: list[str | int] = [part, str(part)] if isinstance(part, int) else [part]
        out = [(*p, o) for p in out for o in options][:64]
    return out


def _probe(path: JsonPath) -> object:
    """An instance with a value exactly at ``path`` (list items before an index are null)."""
    node: object = "x"
    for part in reversed(path):
        node = [*([None] * part), node] if isinstance(part, int) else {part: node}
    return node


def _nest(path: JsonPath, leaf: str) -> object:
    """``("a", "b")`` -> ``{"a": {"b": leaf}}`` (a list index nests as a one-item list)."""
    node: object = leaf
    for part in reversed(path):
        node = [node] if isinstance(part, int) else {part: node}
    return node


def _set_in_place(file: Path, rel: str, index: str, value_json: bytes, identities: Identities) -> None:
    """``sops set`` on a copy of the (encrypted) file, then an atomic replace (STYLE R14)."""
    from compiler.secrets.sops import set_sops_value

    write_atomic(
        file,
        read_file(file, rel),  # ciphertext: safe on disk
        mode=0o600,
        suffix=".yaml",  # sops picks the format by extension
        edit=lambda tmp: set_sops_value(tmp, index, value_json, path=rel, identities=identities),
    )


def _sets(file: Path, rel: str, module: str, path: JsonPath) -> bool:
    """Whether an existing SOPS file sets ``modules.<module>.<path>`` (sops keeps keys in plaintext)."""
    return file.is_file() and _lookup(file, rel, ("modules", module, *path)) == "set"


def _lookup(file: Path, rel: str, keys: JsonPath) -> str:
    """``set``, ``absent``, or the dotted prefix whose value cannot hold the next key."""
    from compiler.load.yaml import load_document
    from compiler.secrets.rotation import rotation_key

    node: Value = load_document(read_file(file, rel), path=rel, layer="secrets", quote_values=False).value
    for n, key in enumerate(keys):
        if isinstance(node, dict) and isinstance(key, str):
            if key not in node:
                return "absent"
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int):
            if not 0 <= key < len(node):
                return "absent"
            node = node[key]
        else:
            return rotation_key(str(keys[1]), keys[2:n]) if n > 1 else ".".join(map(str, keys[:n]))
    return "set"


def _new_value(args: argparse.Namespace) -> SecretValue:
    from compiler.secrets.envelope import SecretValue

    if args.value_from_stdin:
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
        data = data.removesuffix(b"\n").removesuffix(b"\r")
        if not data:
            raise UsageError("--value-from-stdin: stdin is empty")
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UsageError("--value-from-stdin: the value is not UTF-8 text") from e
        return SecretValue(data)
    n = int(args.generate)
    if not 16 <= n <= 4096:
        raise UsageError("--generate N: N must be between 16 and 4096")
    out = bytearray()
    while len(out) < n:
        for b in os.urandom(n):
            if b < 248 and len(out) < n:  # 248 = 4 * 62: rejection sampling keeps the choice uniform
                out.append(_ALPHABET[b % 62])
    return SecretValue(bytes(out))


def _relative(ctx: Context, path: Path) -> str:
    try:
        return path.resolve().relative_to(ctx.root.resolve()).as_posix()
    except ValueError:
        return str(path)
