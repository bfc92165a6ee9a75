"""``llmcc pull TARGET``: verify one published version, then print its modules (JSON, YAML, env, dotenv).

Nothing of a bundle's content is printed or written before it verifies: the
listing, the signed pointer and the chain (compiler/reader.py), against the
version this reader accepted last time (its high-water mark, which it then
advances).
``--format env|dotenv`` flattens them (``compiler.exports``) and needs
``--decrypt`` when the bundle holds secrets: a variable holding ``ENC[...]``
would be passed on as if it were the value.
``--decrypt --out FILE`` refuses a FILE that git could commit (``--force`` warns
and writes; ``compiler.sources.exposure``).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.cli._context import Context
from compiler.cli._repo import whole_number
from compiler.cli._store import (
    add_reader_args,
    add_store_args,
    load_keyring,
    open_store_from,
    read_project,
    resolve,
    seen_file,
)
from compiler.errors import LlmccError, SecretsError, StorageError, UsageError, VerificationError
from compiler.exports import FORMATS, RENDERERS, flatten, render_dotenv, render_env
from compiler.fileops import write_atomic

if TYPE_CHECKING:
    from compiler.jsontypes import JSONObject, JSONValue
    from compiler.verify import VerifiedBundle


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="TARGET", help="the target, e.g. prod or prod@acme")
    add_store_args(p)
    p.add_argument("--version", type=whole_number, metavar="N", help="this version (default: the latest)")
    p.add_argument("--decrypt", action="store_true", help="open secret values with your age identity")
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="json",
        help="json (default), yaml, env (export NAME='value', for sh) or dotenv; env formats flatten the keys",
    )
    p.add_argument("--prefix", default="", metavar="P", help="with --format env|dotenv: put P before every name")
    p.add_argument("-o", "--out", metavar="FILE", type=Path, help="write to FILE instead of stdout (- is stdout)")
    p.add_argument(
        "--force",
        action="store_true",
        help="with --decrypt: write FILE even where git can commit it (in a work tree, not ignored); warns",
    )
    add_reader_args(p, identity_for="for --decrypt")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from compiler.project import parse_target
    from compiler.sources.exposure import refuse_committable

    target = parse_target(args.target).name
    if args.out == Path("-"):
        args.out = None  # the usual spelling of standard output, not a file named "-"
    if args.decrypt and args.out is not None:
        # before anything is fetched or opened: decrypted secrets never land where git can take them
        refuse_committable(resolve(ctx.root, args.out), what="decrypted secrets", force=args.force)
    if args.prefix and args.format not in ("env", "dotenv"):
        raise UsageError("--prefix applies to --format env and dotenv only")
    verified, modules = read_modules(args, ctx, target, decrypt=args.decrypt)
    if args.format in ("env", "dotenv"):
        if not args.decrypt and has_secrets(modules):
            raise UsageError(
                f"{target} version {verified.version} holds secrets: --format {args.format} needs --decrypt "
                "(--format json shows them as ciphertext)"
            )
        variables = flatten(modules, prefix=args.prefix)
        text = render_env(variables) if args.format == "env" else render_dotenv(variables)
    else:
        text = RENDERERS[args.format](modules)
    if args.out is None:
        sys.stdout.write(text)
    else:
        _write_private(resolve(ctx.root, args.out), text.encode("utf-8"), private=args.decrypt)
    ctx.progress(f"{target} version {verified.version} {verified.digest}")
    return 0


def read_modules(
    args: argparse.Namespace, ctx: Context, target: str, *, decrypt: bool
) -> tuple[VerifiedBundle, JSONObject]:
    """Verify ``target`` (``--version`` or the latest), advance the mark, and return its modules.

    Uses ``args.store``, ``args.endpoint_url``, ``args.trusted_key``, ``args.state_dir``,
    ``args.version`` and, with ``decrypt``, ``args.identity``.

    Raises:
        VerificationError: the store does not verify (exit 3).
        UnknownTargetError: nothing published for ``target``, and llmcc.yaml (if any) does not define it.
        StorageError: nothing published, or no such version.
        LlmccError: the secrets cannot be opened.
    """
    from compiler.reader import check_known, read_target

    project = read_project(ctx.root, required=False)
    keyring = load_keyring(args, ctx.root, project)
    store = open_store_from(args, ctx.root, project)
    marks = seen_file(args, ctx.root, store)
    state = read_target(
        store, target, keyring, now=datetime.now(UTC), seen=marks.load().get(target), wanted=args.version
    )
    if state.latest is None or state.seen is None:
        # a name neither the store nor llmcc.yaml knows is a typo, not "nothing published yet"
        check_known(store, [target], defined=[t.name for t in project.targets()] if project is not None else ())
        raise StorageError(f"{store.url}: nothing published for {target}")
    latest = state.latest.version
    version = latest if args.version is None else args.version
    if not 1 <= version <= latest:
        raise StorageError(f"{store.url}: {target} has no version {version} (latest is {latest})")
    marks.advance({target: state.seen})
    verified = state.version(version)
    modules = verified.bundle.get("modules")
    if not isinstance(modules, dict):
        raise VerificationError(f"{target} version {version}: bundle has no modules object")
    if decrypt:
        modules = _decrypt(verified, args)
    return verified, modules


def has_secrets(value: JSONValue) -> bool:
    """Whether any leaf of ``value`` is an ``ENC[...]`` ciphertext."""
    from compiler.secrets.envelope import is_enc  # imported here: --help loads no cryptography

    if isinstance(value, dict):
        return any(has_secrets(v) for v in value.values())
    if isinstance(value, list):
        return any(has_secrets(v) for v in value)
    return is_enc(value)


def _decrypt(verified: VerifiedBundle, args: argparse.Namespace) -> JSONObject:
    """The modules with every secret opened by the caller's identity (KEK named by the bundle)."""
    # imported here: only --decrypt needs age, KMS and Vault clients
    from compiler.secrets.bundlekek import bundle_key_provider
    from compiler.secrets.identity import load_identities
    from compiler.secrets.reader import open_secrets

    bundle = verified.bundle
    if bundle.get("encryption") is None:
        modules = bundle.get("modules")
        return modules if isinstance(modules, dict) else {}  # no secret fields: nothing to open
    try:
        provider = bundle_key_provider(
            bundle, lambda name: load_identities(args.identity, os.environ, required=name == "age")
        )
    except SecretsError as e:
        raise LlmccError(f"{verified.target} version {verified.version}: {e}") from None
    return open_secrets(bundle, provider)


def _write_private(path: Path, data: bytes, *, private: bool) -> None:
    """Atomically and durably (:func:`~compiler.fileops.write_atomic`); mode 0600 when it holds decrypted secrets."""
    try:
        write_atomic(path, data, mode=0o600 if private else 0o644)
    except OSError as e:
        raise LlmccError(f"{path}: cannot write: {e.strerror or e}") from e
