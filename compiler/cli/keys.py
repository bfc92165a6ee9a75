"""``llmcc keys generate|rotate|update``: age and signing keys, per-target data keys (docs/bundle-format.md).

A relative FILE is taken from the config repository (``-C DIR``), like
``--out``; ``--identity FILE`` from the current directory, as everywhere.
Results go to stdout, one line per file written; private key material never does.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.cli._context import MANIFEST, Context
from compiler.cli._repo import add_identity_arg
from compiler.errors import InputError, LlmccError, UsageError
from compiler.fileops import write_atomic

if TYPE_CHECKING:
    from compiler.project import Project, Target
    from compiler.secrets.identity import Identities
    from compiler.sources.worktree import WorkTree


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="keys_command", metavar="SUBCOMMAND", required=True)
    gen = sub.add_parser("generate", help="write a new private key to FILE and its public key to FILE.pub")
    kind = gen.add_mutually_exclusive_group(required=True)
    kind.add_argument("--age", metavar="FILE", help="an age identity (for SOPS files and data keys)")
    kind.add_argument("--signing", metavar="FILE", help="an Ed25519 signing key, PKCS#8 PEM")
    gen.add_argument("--force", action="store_true", help="write FILE even where git can commit it; warns")
    rot = sub.add_parser(
        "rotate",
        help="create or replace the data key of each TARGET (every target when none is named) in keys/targets/",
    )
    rot.add_argument("target", nargs="*", metavar="TARGET")
    add_identity_arg(rot)
    upd = sub.add_parser(
        "update",
        help="bring every data key in line with llmcc.yaml: create missing ones, re-wrap for added readers, "
        "rotate when a reader was removed, remove those of no target",
    )
    upd.add_argument("--target", action="append", metavar="T", help="only this target (repeatable)")
    add_identity_arg(upd)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from compiler.project import load_project
    from compiler.secrets.identity import load_identities
    from compiler.secrets.keyfile import KEY_DIR, dump_target_key, key_file_path, rotate_target_key
    from compiler.sources.worktree import WorkTree

    command: str = args.keys_command
    if command == "generate":
        return _generate(args, ctx)
    project = load_project(read_file(ctx.root / MANIFEST, MANIFEST), path=MANIFEST)
    identities = load_identities(args.identity, os.environ, required=False)
    now = datetime.now(UTC)
    if command == "rotate":
        targets = project.select(args.target)
        WorkTree(ctx.root).list_dir(KEY_DIR)  # refuses a keys/targets/ that leads out of the repository
        for target in targets:
            kf = rotate_target_key(project, target, identities=identities, now=now)
            write_file(ctx.root / key_file_path(target.name), dump_target_key(kf), mode=0o644)
            print(f"rotated {key_file_path(target.name)} (new data key, created {kf.created_at})")
        return 0
    return _update(project, args.target, identities, ctx, now)


def _update(project: Project, names: list[str] | None, identities: Identities, ctx: Context, now: datetime) -> int:
    """Every selected target in one run; a target that cannot be brought in line is named, and the rest go on."""
    from compiler.secrets.access import key_commitments, orphan_names
    from compiler.secrets.keyfile import KEY_DIR
    from compiler.sources.worktree import WorkTree

    changed = 0
    failures: list[LlmccError] = []
    tree = WorkTree(ctx.root)  # reads as validate does: no symlink out of the repository, bounded size
    # Raises for a keys/targets/ that leads out of the repository: nothing is written or removed there.
    existing = tree.list_dir(KEY_DIR)
    commitments = key_commitments(tree, project)
    for target in project.select(names):
        try:
            line = _update_one(project, target, identities, tree, commitments, now)
        except LlmccError as e:
            failures.append(e)
            continue
        if line is not None:
            print(line)
            changed += 1
    if not names:
        for name in orphan_names(project, existing):
            (ctx.root / KEY_DIR / name).unlink()
            print(f"removed {KEY_DIR}/{name} (no such target in llmcc.yaml)")
            changed += 1
    for failure in failures[:-1]:
        print(f"llmcc: {failure}", file=sys.stderr)
    if failures:
        raise failures[-1]
    if changed == 0:
        ctx.progress("keys update: every data key matches llmcc.yaml")
    return 0


def _update_one(
    project: Project, target: Target, identities: Identities, tree: WorkTree, commitments: dict[str, str], now: datetime
) -> str | None:
    """What was done to ``target``'s key file, as a line to print (None: it was in line).

    ``commitments`` (``access.key_commitments``) is kept current as key files are rewritten.
    """
    from compiler.secrets.access import sharing_targets
    from compiler.secrets.keyfile import (
        dump_target_key,
        key_file_path,
        read_target_key,
        rotate_target_key,
        update_target_key,
    )

    rel = key_file_path(target.name)
    file = tree.root / rel
    try:
        current = read_target_key(tree.read(rel), path=rel) if tree.exists(rel) else None
    except InputError as e:
        raise InputError(f"{e}; run: llmcc keys rotate {target}") from e
    if current is None:
        kf = rotate_target_key(project, target, identities=identities, now=now)
        write_file(file, dump_target_key(kf), mode=0o644)
        commitments[target.name] = kf.commitment
        return f"created {rel} (new data key for {target})"
    if current.target != target.name:
        raise InputError(f"{rel}: holds the key of target {current.target!r}, not {target.name!r}")
    shared = sharing_targets(target.name, commitments)
    result = update_target_key(project, target, current, identities=identities, now=now, shared_with=shared)
    if result.action == "unchanged":
        return None
    write_file(file, dump_target_key(result.keyfile), mode=0o644)
    commitments[target.name] = result.keyfile.commitment
    return f"{result.action} {rel} ({result.reason})"


def _generate(args: argparse.Namespace, ctx: Context) -> int:
    import pyrage
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from compiler.secrets.rotation import rfc3339
    from compiler.sources.exposure import refuse_committable

    if args.age:
        path = resolve_arg(ctx, args.age)
        identity = pyrage.x25519.Identity.generate()
        recipient = str(identity.to_public())
        created = rfc3339(datetime.now(UTC))
        private = f"# created: {created}\n# public key: {recipient}\n{identity}\n".encode("ascii")
        public = f"{recipient}\n".encode("ascii")
    else:
        path = resolve_arg(ctx, args.signing)
        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    refuse_committable(path, what="a private key", force=args.force)
    pub = path.with_name(path.name + ".pub")
    for p in (path, pub):
        if p.exists() or p.is_symlink():
            raise UsageError(f"{p}: already exists; refusing to overwrite a key (move it away first)")
    _create_new(path, private, mode=0o600)
    _create_new(pub, public, mode=0o644)
    print(f"wrote {path} (private key, mode 0600) and {pub}")
    return 0


def resolve_arg(ctx: Context, name: str) -> Path:
    p = Path(name).expanduser()
    return p if p.is_absolute() else ctx.root / p


def read_file(path: Path, rel: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise InputError(f"{rel}: cannot read: {e.strerror}") from e


def _create_new(path: Path, data: bytes, *, mode: int) -> None:
    """Create ``path`` exclusively with ``mode`` from the start: a private key is never world-readable."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as e:
        raise UsageError(f"{path}: already exists; refusing to overwrite a key") from e
    except OSError as e:
        raise InputError(f"{path}: cannot create: {e.strerror}") from e
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)  # the umask may have narrowed it; make it exactly this


def write_file(path: Path, data: bytes, *, mode: int) -> None:
    """Replace ``path`` atomically: readers see the old file or the new one, never a part (R14)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data, mode=mode)
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror}") from e
