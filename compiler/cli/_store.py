"""Options shared by ``publish``, ``verify`` and ``pull``: the store, and the trusted keys.

Light at import (issue 14 §1): the ``add_*`` helpers serve ``llmcc CMD --help``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.cli._context import MANIFEST
from compiler.errors import LlmccError

if TYPE_CHECKING:
    from compiler.bundle.dsse import Keyring, PublicKey
    from compiler.project import Project
    from compiler.storage import Store
    from compiler.storage.seen import SeenFile


def add_store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store",
        metavar="URL",
        help="file://PATH or a plain PATH, s3://BUCKET/PREFIX or oci://REGISTRY/REPO "
        "(default: storage.default of llmcc.yaml); a relative PATH is taken from the config repository",
    )
    p.add_argument("--endpoint-url", metavar="URL", help="S3-compatible endpoint (MinIO, Ceph, ...)")


def add_trust_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trusted-key",
        action="append",
        metavar="FILE",
        type=Path,
        help="Ed25519 public key (PEM) to accept, repeatable (default: signing.trusted of llmcc.yaml)",
    )


def add_state_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        type=Path,
        help="where this reader keeps the versions it has accepted (default: $XDG_STATE_HOME/llmcc/seen)",
    )


def add_reader_args(p: argparse.ArgumentParser, *, identity_for: str) -> None:
    """What a command that reads and opens published bundles takes: trust, state, identity (pull, exec)."""
    add_trust_args(p)
    add_state_args(p)
    p.add_argument(
        "--identity",
        metavar="FILE",
        type=Path,
        help=f"age identity file {identity_for} (default: SOPS_AGE_KEY_FILE, SOPS_AGE_KEY)",
    )


def seen_file(args: argparse.Namespace, root: Path, store: Store) -> SeenFile:
    """The high-water marks this reader keeps for ``store``."""
    from compiler.storage.seen import SeenFile, default_state_dir

    directory = resolve(root, args.state_dir) if args.state_dir else default_state_dir(os.environ)
    return SeenFile(directory, store.location)


def resolve(root: Path, path: Path | str) -> Path:
    """A path given on the command line or in llmcc.yaml, relative to the config repository."""
    return root / Path(path)


def read_project(root: Path, *, required: bool) -> Project | None:
    """llmcc.yaml of the repository, or None when there is none and it is not ``required``."""
    from compiler.project import load_project

    path = root / MANIFEST
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise LlmccError(f"{root}: no {MANIFEST} here (use -C DIR)") from None
        return None
    except OSError as e:
        raise LlmccError(f"{path}: cannot read: {e}") from e
    return load_project(data, path=MANIFEST)


def open_store_from(args: argparse.Namespace, root: Path, project: Project | None) -> Store:
    from compiler.storage import open_store

    url = store_url(args.store) if args.store else (project.manifest.storage.default if project else None)
    if not url:
        raise LlmccError(f"no store: pass --store URL (there is no {MANIFEST} with storage.default here)")
    return open_store(url, root=root, endpoint_url=args.endpoint_url)


def store_url(text: str) -> str:
    """``--store`` as a URL: a plain path (``/srv/store``, ``./store``, ``~/store``) is a file store.

    A relative path is taken from the config repository, like ``file://PATH`` in llmcc.yaml
    and the other path options. Anything with a colon before its first ``/`` and no ``://``
    (``s3:bucket``) is left to ``open_store``, which names the known schemes.
    """
    if "://" in text or ":" in text.split("/", 1)[0]:
        return text
    return f"file://{Path(text).expanduser()}"


def in_ci(env: dict[str, str] | os._Environ[str]) -> bool:
    """Whether a CI runner runs us.

    ``CI``, when set, decides: anything but ``0``, ``false`` or ``no`` (GitHub
    Actions, GitLab CI, CircleCI, Buildkite, Travis set it). Unset or empty: the
    runners that do not set it are recognised by their own variable (Azure
    Pipelines ``TF_BUILD``, Jenkins ``JENKINS_URL``), so a forgotten ``CI`` fails
    closed there too.
    """
    ci = env.get("CI", "").strip().lower()
    if ci:
        return ci not in ("0", "false", "no")
    return env.get("TF_BUILD", "").strip().lower() == "true" or bool(env.get("JENKINS_URL", "").strip())


def check_ci_store(store: Store, root: Path, *, allowed: bool) -> None:
    """Refuse, in CI, a file store inside the git work tree of ``root`` (issue 13 §3).

    A runner's checkout is thrown away after the job: a publish there would
    "succeed" and reach no reader. ``allowed`` (``--allow-worktree-store``) lets
    a job that keeps the directory, as an artifact or a cache, go on.

    Raises:
        LlmccError: in CI, the store is a directory inside the work tree, and not ``allowed``.
    """
    if allowed or not in_ci(os.environ) or not store.location.startswith("file://"):
        return
    from compiler.sources.worktree import run_git

    top = run_git(root, "rev-parse", "--show-toplevel", check=False)
    tree = Path(top.strip()) if top and top.strip() else root
    where = Path(os.path.realpath(store.location.removeprefix("file://")))
    if where.is_relative_to(os.path.realpath(tree)):
        raise LlmccError(
            f"{store.url}: a store inside the work tree {tree}, and CI is set: the runner's disk is thrown away"
            " after the job, so no reader would see this publish; set storage.default to an s3:// or oci:// store,"
            " or pass --allow-worktree-store if the job keeps the directory"
        )


def trusted_key_paths(args: argparse.Namespace, root: Path, project: Project | None) -> list[Path]:
    """The files :func:`load_keyring` reads: ``--trusted-key``, else ``signing.trusted`` of llmcc.yaml.

    Raises:
        LlmccError: none given and none in llmcc.yaml.
    """
    given: list[Path] = args.trusted_key or []
    paths = [resolve(root, p) for p in given] or (
        [resolve(root, p) for p in project.manifest.signing.trusted] if project is not None else []
    )
    if not paths:
        raise LlmccError(_no_trusted_keys(root, project))
    return paths


def _no_trusted_keys(root: Path, project: Project | None) -> str:
    """The error line for no trusted keys: outside a config repository it says so, and names the flag."""
    if project is None:
        return (
            f"no trusted keys: no {MANIFEST} in {root} or a directory above, so no signing.trusted;"
            " pass the publisher's public key with --trusted-key FILE (or use -C DIR for a config repository)"
        )
    return f"no trusted keys: list them in {MANIFEST} signing.trusted or pass --trusted-key FILE"


def load_keyring(args: argparse.Namespace, root: Path, project: Project | None) -> Keyring:
    """``--trusted-key`` files if given, else ``signing.trusted`` of llmcc.yaml; never empty."""
    from compiler.bundle.dsse import Keyring

    given: list[Path] = args.trusted_key or []
    if given:
        sources = [(resolve(root, p), str(p)) for p in given]
    elif project is not None:
        sources = [(resolve(root, p), f"{MANIFEST}: signing.trusted: {p}") for p in project.manifest.signing.trusted]
    else:
        sources = []
    if not sources:
        raise LlmccError(_no_trusted_keys(root, project))
    return Keyring(_read_public_key(path, where) for path, where in sources)


def _read_public_key(path: Path, where: str) -> PublicKey:
    from compiler.bundle.dsse import load_public_key

    try:
        return load_public_key(path.read_bytes(), where=where)
    except OSError as e:
        raise LlmccError(f"{where}: cannot read: {e.strerror or e}") from e
