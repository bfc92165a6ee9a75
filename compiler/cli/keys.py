"""``llmcc keys generate|rotate|update``: age and signing keys, per-target data keys (DESIGN §4, §8).

A relative FILE is taken from the config repository (``-C DIR``), like
``--out``; ``--identity FILE`` from the current directory, as everywhere.
Results go to stdout, one line per file written; private key material never does.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pyrage
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from compiler.cli import Context
from compiler.cli._repo import add_identity_arg
from compiler.errors import InputError, UsageError
from compiler.project import MANIFEST, Project, load_project
from compiler.secrets.identity import Identities, load_identities
from compiler.secrets.keyfile import (
    dump_target_key,
    key_file_path,
    read_target_key,
    rotate_target_key,
    update_target_key,
)
from compiler.secrets.rotation import rfc3339


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="keys_command", metavar="SUBCOMMAND", required=True)
    gen = sub.add_parser("generate", help="write a new private key to FILE and its public key to FILE.pub")
    kind = gen.add_mutually_exclusive_group(required=True)
    kind.add_argument("--age", metavar="FILE", help="an age identity (for SOPS files and data keys)")
    kind.add_argument("--signing", metavar="FILE", help="an Ed25519 signing key, PKCS#8 PEM")
    rot = sub.add_parser("rotate", help="create or replace TARGET's data key in keys/targets/TARGET.yaml")
    rot.add_argument("target", metavar="TARGET")
    add_identity_arg(rot)
    upd = sub.add_parser(
        "update", help="re-wrap data keys after llmcc.yaml's keys changed; rotate when a reader was removed"
    )
    upd.add_argument("--target", action="append", metavar="T", help="only this target (repeatable)")
    add_identity_arg(upd)


def run(args: argparse.Namespace, ctx: Context) -> int:
    command: str = args.keys_command
    if command == "generate":
        return _generate(args, ctx)
    project = load_project(read_file(ctx.root / MANIFEST, MANIFEST), path=MANIFEST)
    identities = load_identities(args.identity, os.environ, required=False)
    now = datetime.now(UTC)
    if command == "rotate":
        (target,) = project.select([args.target])
        kf = rotate_target_key(project, target, identities=identities, now=now)
        write_file(ctx.root / key_file_path(target.name), dump_target_key(kf), mode=0o644)
        print(f"rotated {key_file_path(target.name)} (new data key, created {kf.created_at})")
        return 0
    return _update(project, args.target, identities, ctx, now)


def _update(project: Project, names: list[str] | None, identities: Identities, ctx: Context, now: datetime) -> int:
    changed = 0
    for target in project.select(names):
        rel = key_file_path(target.name)
        file = ctx.root / rel
        if not file.exists():
            if names:
                raise UsageError(f"{rel}: no data key for {target}; run: llmcc keys rotate {target}")
            continue
        current = read_target_key(read_file(file, rel), path=rel)
        if current.target != target.name:
            raise InputError(f"{rel}: holds the key of target {current.target!r}, not {target.name!r}")
        result = update_target_key(project, target, current, identities=identities, now=now)
        if result.action == "unchanged":
            continue
        write_file(file, dump_target_key(result.keyfile), mode=0o644)
        print(f"{result.action} {rel} ({result.reason})")
        changed += 1
    if changed == 0:
        ctx.progress("keys update: every data key matches llmcc.yaml")
    return 0


def _generate(args: argparse.Namespace, ctx: Context) -> int:
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
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror}") from e
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
