"""age identities, found the way sops finds them (README "Key providers").

Where identities come from, in order:

1. ``--identity FILE``: when given, the only source (an explicit choice).
2. ``SOPS_AGE_KEY_FILE``: a file of identities.
3. ``SOPS_AGE_KEY``: identities inline, one per line.
4. sops's default file ``$XDG_CONFIG_HOME/sops/age/keys.txt`` (else
   ``~/.config/...``), read only when ``SOPS_AGE_KEY_FILE`` is unset, as sops does.

Without ``--identity``, sources 2-4 are combined, like sops. In every source,
blank lines and lines starting with ``#`` are skipped; every other line must be
an ``AGE-SECRET-KEY-1...`` X25519 identity. Errors name the source and line,
never the line's text.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.errors import SecretsError
from compiler.fileops import is_key_text

if TYPE_CHECKING:
    import pyrage

    from compiler.secrets.envelope import SecretValue

ADVICE = "set SOPS_AGE_KEY_FILE or pass --identity FILE"
_PREFIX = "AGE-SECRET-KEY-1"


class Identities:
    """Parsed age identities plus their text (for the sops subprocess). The repr is redacted."""

    __slots__ = ("_identities", "_keys", "sources")

    def __init__(self, keys: Sequence[tuple[SecretValue, str]] = ()) -> None:
        """Parse identities from ``(key text, where it came from)`` pairs.

        Raises:
            SecretsError: a key that is not a valid age X25519 identity.
        """
        self._keys = [k for k, _ in keys]
        self._identities: list[pyrage.x25519.Identity] = []
        if keys:  # pyrage loads when there is a key to parse (issue 14 §1: validate without one)
            import pyrage
        for key, where in keys:
            try:
                self._identities.append(pyrage.x25519.Identity.from_str(key.reveal().decode("ascii")))
            except (pyrage.IdentityError, UnicodeDecodeError) as e:
                # pyrage's message does not echo the key; ours names only the place.
                raise SecretsError(f"{where}: not a valid age identity") from e
        self.sources = sorted({where.split(":", 1)[0] for _, where in keys})

    def __bool__(self) -> bool:
        return bool(self._identities)

    def __len__(self) -> int:
        return len(self._identities)

    def __repr__(self) -> str:
        return f"Identities(<{len(self._identities)} age identities redacted>, sources={self.sources})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("Identities cannot be pickled")

    def age_identities(self) -> list[pyrage.x25519.Identity]:
        """The pyrage identities, for decrypting.

        Raises:
            SecretsError: there are none, with advice on how to provide one.
        """
        if not self._identities:
            raise SecretsError(f"no age identity found: {ADVICE}")
        return list(self._identities)

    def recipients(self) -> list[str]:
        """The public ``age1...`` recipients of these identities (safe to print)."""
        return [str(i.to_public()) for i in self._identities]

    def sops_env(self) -> dict[str, str]:
        """The environment that hands exactly these identities to a ``sops`` subprocess.

        ``SOPS_AGE_KEY_FILE`` points at the null device so sops neither reads
        the caller's key file nor falls back to its default file.
        """
        text = "\n".join(k.reveal().decode("ascii") for k in self._keys)
        return {"SOPS_AGE_KEY": text, "SOPS_AGE_KEY_FILE": os.devnull}


def parse_identities(text: str, *, source: str) -> list[tuple[SecretValue, str]]:
    """Split an identity file's text into keys, each with ``source:line``.

    Raises:
        SecretsError: a line that is not an age identity, raised once no local
            here holds the file's text (its other lines are private keys, and a
            traceback keeps this frame).
    """
    from compiler.secrets.envelope import SecretValue  # its module loads the AEAD stack

    out = []
    bad = 0
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith(_PREFIX):
            bad = n
            break
        out.append((SecretValue(line.encode("ascii", "replace")), f"{source}:{n}"))
    if bad:
        text = raw = line = ""
        raise SecretsError(f"{source}:{bad}: not an age identity (expected an {_PREFIX}... line)")
    return out


def load_identities(explicit: Path | None, env: Mapping[str, str], *, required: bool = True) -> Identities:
    """Find age identities as sops does (see the module doc).

    Args:
        explicit: ``--identity FILE``, already resolved by the caller.
        env: the environment (``os.environ`` at the CLI edge).
        required: when false, no identity gives an empty ``Identities`` whose
            use raises the same advice later (wrapping needs no identity).

    Raises:
        SecretsError: an unreadable or invalid source, or none found while required.
    """
    keys: list[tuple[SecretValue, str]] = []
    if explicit is not None:
        keys += parse_identities(_read(explicit, source=str(explicit)), source=str(explicit))
    else:
        key_file = env.get("SOPS_AGE_KEY_FILE")
        if key_file:
            keys += parse_identities(_read(Path(key_file), source="SOPS_AGE_KEY_FILE"), source=key_file)
        if env.get("SOPS_AGE_KEY"):
            keys += parse_identities(env["SOPS_AGE_KEY"], source="SOPS_AGE_KEY")
        default = default_key_file(env)
        if not key_file and default is not None and default.is_file():
            keys += parse_identities(_read(default, source=str(default)), source=str(default))
    identities = Identities(keys)
    if required and not identities:
        where = f"{explicit} holds no identity" if explicit is not None else "no age identity found"
        raise SecretsError(f"{where}: {ADVICE}")
    return identities


def default_key_file(env: Mapping[str, str]) -> Path | None:
    """sops's default identity file, or None when no config directory is known."""
    config = env.get("XDG_CONFIG_HOME")
    if config:
        return Path(config) / "sops" / "age" / "keys.txt"
    home = env.get("HOME")
    return Path(home) / ".config" / "sops" / "age" / "keys.txt" if home else None


def _read(path: Path, *, source: str) -> str:
    if is_key_text(path):
        where = "SOPS_AGE_KEY_FILE" if source == "SOPS_AGE_KEY_FILE" else "the identity file"
        raise SecretsError(
            f"{where} holds key material, not the path of an identity file (not shown): "
            "pass the file's path, or the key in SOPS_AGE_KEY"
        )
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise SecretsError(f"{source}: cannot read identity file {path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise SecretsError(f"{source}: identity file {path} is not UTF-8 text") from e
