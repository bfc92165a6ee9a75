"""``llmcc init DIR``: scaffold a new config repository (the layout of README "How it works").

Writes the files of ``compiler/scaffold/`` (``dot-x`` becomes ``.x``) with the
project name and fresh keys filled in, then:

1. a fresh age identity and a fresh Ed25519 signing key. Their private halves
   go OUTSIDE the repository, to ``$XDG_CONFIG_HOME/llmcc/keys/<project>/``
   (``~/.config/...``; ``--keys-dir`` to choose; printed with ``~`` for $HOME), mode 0600 in a 0700
   directory, where sops keeps its own keys too: a ``.gitignore`` entry can be
   bypassed by ``git add -f`` or a copied directory, a file that is not there
   cannot. Their public halves go to ``keys/``;
2. ``environments/prod.secrets.sops.yaml`` with a placeholder API key,
   encrypted by sops to the new identity, and its rotation record; the
   placeholder is a warning wherever it is read and, by the scaffold's
   ``prod-no-placeholder-secrets`` policy, an error in prod
   (``compiler.validate.placeholders``);
3. ``keys/targets/<target>.yaml`` for every target (``llmcc keys rotate``'s
   format), so ``llmcc compile`` works with the new identity.

Refuses a DIR that exists and is not empty (a DIR holding only ``.git``, a
clone of an empty repository, is empty), and never overwrites keys (exit 2).
A failure removes what it wrote and leaves ``.git`` alone.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import shutil
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from compiler import __version__
from compiler.cli._context import MANIFEST, Context
from compiler.errors import InputError, InternalError, LlmccError, UsageError

SECRETS_FILE = "environments/prod.secrets.sops.yaml"
WORKFLOW = ".github/workflows/llmcc.yaml"  # the scaffold's CI workflow; its env pins llmcc's commit
AGE_KEY, SIGNING_KEY = "age.key", "signing.pem"  # the private keys' names in --keys-dir
PLACEHOLDER_SECRETS = (
    b"# Replace the value: llmcc secrets rotate assistant.api_key --target prod --value-from-stdin\n"
    b"modules:\n  assistant:\n    api_key: replace-me-with-the-provider-key\n"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", metavar="DIR", help="a new or empty directory, or a clone of an empty repository")
    p.add_argument("--project", metavar="NAME", help="the project name (default: DIR's name)")
    p.add_argument(
        "--keys-dir",
        metavar="DIR",
        type=Path,
        help="where the private keys go (default: $XDG_CONFIG_HOME/llmcc/keys/<project>/); never inside DIR",
    )


def run(args: argparse.Namespace, ctx: Context) -> int:
    from compiler.names import NAME_PATTERN
    from compiler.sources.exposure import git_can_take

    dest = ctx.path(args.dir).resolve()  # from where llmcc runs, not from a repository above it
    if dest.exists() and (not dest.is_dir() or any(p.name != ".git" for p in dest.iterdir())):
        raise UsageError(
            f"{args.dir}: exists and is not empty; llmcc init needs a new or empty directory"
            " (or a clone of an empty repository)"
        )
    cloned = (dest / ".git").exists()
    project = args.project or project_name(dest.name)
    if not re.match(NAME_PATTERN, project):
        raise UsageError(f"{project!r} is not a project name ([a-z][a-z0-9_-]*); pass --project NAME")
    keys_dir = (args.keys_dir or default_keys_dir(os.environ, project)).expanduser().resolve()
    if keys_dir == dest or dest in keys_dir.parents:
        raise UsageError(f"{keys_dir}: private keys must not be inside the repository")
    if keys_dir.exists() and any(keys_dir.iterdir()):
        raise UsageError(f"{keys_dir}: already holds keys; refusing to overwrite them (pass --keys-dir DIR)")
    for name in (AGE_KEY, SIGNING_KEY):  # nor inside any other repository that would commit them
        if (root := git_can_take(keys_dir / name)) is not None:
            raise UsageError(
                f"{keys_dir / name}: private keys must not be written where git can commit them "
                f"(inside the work tree {root}, not ignored); pass --keys-dir DIR outside it"
            )
    created = [p for p in (dest, keys_dir) if not p.exists()]
    kept = {dest / ".git"}  # an empty clone's own git directory: never removed by an undo
    try:
        age_key, signing_key = scaffold(dest, keys_dir, project, now=datetime.now(UTC))
    except (LlmccError, OSError) as e:
        for path in (dest, keys_dir):  # both were new or empty: leave them as they were
            with contextlib.suppress(OSError):
                _undo(path, created=path in created, keep=kept)
        if isinstance(e, OSError):
            where = e.filename or args.dir
            raise InputError(f"{where}: cannot create: {e.strerror or e}") from e
        raise
    print(f"llmcc: created config repository {args.dir} (project {project})")
    age, signing = shell_path(age_key), shell_path(signing_key)
    print(f"  private keys, outside the repository (back them up; never commit them):\n    {age}\n    {signing}")
    print("  next:")
    git_init = "" if cloned else "git init -b main && "  # the CI templates publish from main
    print(f"    cd {shlex.quote(args.dir)} && {git_init}git add -A && git commit -m 'llmcc init'")
    print(f"    export SOPS_AGE_KEY_FILE={age} LLMCC_SIGNING_KEY_FILE={signing}")
    print("    llmcc secrets rotate assistant.api_key --target prod --value-from-stdin   # replaces the placeholder")
    print("    llmcc validate && llmcc policy test && llmcc compile")
    print("    pre-commit install   # checks every commit (.pre-commit-config.yaml)")
    # the scaffold's CI workflow cannot run as written: every job installs llmcc from LLMCC_GIT (a
    # placeholder URL), and `llmcc publish` refuses the default file:// store when CI=true (exit 2)
    print("  before the first push (CI runs .github/workflows/llmcc.yaml):")
    print("    set LLMCC_GIT at the top of .github/workflows/llmcc.yaml to where llmcc is hosted")
    print("    set storage.default in llmcc.yaml to an s3:// or oci:// store: CI does not publish to file://")
    return 0


def _undo(path: Path, *, created: bool, keep: set[Path]) -> None:
    """Remove what init wrote: the directory it created, or the contents of the empty one it was given.

    ``keep``: entries that were there before (an empty clone's ``.git``).
    """
    children = [path] if created else list(path.iterdir()) if path.is_dir() else []
    for child in (c for c in children if c not in keep):
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def shell_path(path: Path, home: Path | None = None) -> str:
    """PATH as a shell word for the printed commands: under HOME (default ``Path.home()``) as ``~/...``.

    The rest is quoted by ``shlex.quote`` when it needs it (``~/'My Keys'/age.key``: the
    shell expands ``~`` only outside quotes, up to the first ``/``).
    """
    home = Path.home() if home is None else home
    with contextlib.suppress(ValueError):
        rest = path.relative_to(home)
        if rest.parts:
            return "~/" + shlex.quote(rest.as_posix())
    return shlex.quote(str(path))


def project_name(text: str) -> str:
    """A directory name as a project name: lowercase, other characters as ``-``."""
    name = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")
    name = re.sub(r"^[^a-z]+", "", name)[:63]
    return name or "config"


def default_keys_dir(env: Mapping[str, str], project: str) -> Path:
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "llmcc" / "keys" / project


def scaffold(dest: Path, keys_dir: Path, project: str, *, now: datetime) -> tuple[Path, Path]:
    """Write the repository and the private keys; returns the private keys' paths."""
    import pyrage
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from compiler.project import load_project
    from compiler.secrets.keyfile import dump_target_key, key_file_path, rotate_target_key
    from compiler.secrets.rotation import record_rotation, rfc3339, rotation_path
    from compiler.secrets.sops import encrypt_sops

    identity = pyrage.x25519.Identity.generate()
    recipient = str(identity.to_public())
    signing = Ed25519PrivateKey.generate()
    shipped = list(scaffold_files())
    subst = {
        "@PROJECT@": project,
        "@AGE_RECIPIENT@": recipient,
        "@VERSION@": __version__,
        "@COMMIT@": pinned_commit(dict(shipped)[WORKFLOW].decode("utf-8")),
    }
    dest.mkdir(parents=True, exist_ok=True)
    for rel, data in shipped:
        text = data.decode("utf-8")
        for token, value in subst.items():
            text = text.replace(token, value)
        _write(dest / rel, text.encode("utf-8"), mode=0o644)
    _write(dest / "keys" / "compiler.age.pub", f"{recipient}\n".encode("ascii"), mode=0o644)
    public_pem = signing.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write(dest / "keys" / "signing.pub", public_pem, mode=0o644)

    sealed = encrypt_sops(PLACEHOLDER_SECRETS, path=SECRETS_FILE, cwd=dest)
    _write(dest / SECRETS_FILE, sealed, mode=0o644)
    rotation = record_rotation(None, sops_path=SECRETS_FILE, key="assistant.api_key", now=now)
    _write(dest / rotation_path(SECRETS_FILE), rotation, mode=0o644)
    manifest = load_project((dest / MANIFEST).read_bytes())
    for target in manifest.targets():
        keyfile = rotate_target_key(manifest, target, identities=None, now=now)
        _write(dest / key_file_path(target.name), dump_target_key(keyfile), mode=0o644)

    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(keys_dir, 0o700)
    age_key = keys_dir / AGE_KEY
    private_age = f"# created: {rfc3339(now)}\n# public key: {recipient}\n{identity}\n"
    _write(age_key, private_age.encode("ascii"), mode=0o600, exclusive=True)
    signing_key = keys_dir / SIGNING_KEY
    pem = signing.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write(signing_key, pem, mode=0o600, exclusive=True)
    return age_key, signing_key


def pinned_commit(workflow: str) -> str:
    """The 40-hex ``LLMCC_COMMIT`` a workflow's ``env`` pins (the commit its release tag names).

    The scaffold's README shows the same install command as the workflow runs, from this one
    pin. Raises InternalError when the workflow pins none (a broken package, not a user's input).
    """
    m = re.search(r'^  LLMCC_COMMIT: "([0-9a-f]{40})"', workflow, re.M)
    if m is None:
        raise InternalError(f"{WORKFLOW}: the scaffold's workflow pins no LLMCC_COMMIT")
    return m.group(1)


def scaffold_files() -> Iterator[tuple[str, bytes]]:
    """``(relative path, bytes)`` of the package's scaffold, ``dot-`` prefixes turned into ``.``."""
    yield from _walk(files("compiler") / "scaffold", ())


def _walk(node: Traversable, parts: tuple[str, ...]) -> Iterator[tuple[str, bytes]]:
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.name == "__pycache__":
            continue
        name = "." + child.name[4:] if child.name.startswith("dot-") else child.name
        if child.is_dir():
            yield from _walk(child, (*parts, name))
        else:
            yield "/".join((*parts, name)), child.read_bytes()


def _write(path: Path, data: bytes, *, mode: int, exclusive: bool = False) -> None:
    """Create ``path`` with ``mode`` from the start (a private key is never readable by others)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
