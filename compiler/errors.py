"""The one exception tree (STYLE R4): the exit code is a class attribute.

Grouped by who is at fault: the user's input (2), the user's config content (1),
a published artefact (3). Anything else that escapes is a bug (70).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from compiler.diagnostics import Diagnostic


class LlmccError(Exception):
    """An input or usage problem: bad YAML, missing file, bad key. Exit 2."""

    exit_code = 2


class InputError(LlmccError):
    """A file of the config repository cannot be read or parsed."""


class TooLargeError(InputError):
    """A file over the loader's size limit (``compiler.load.yaml.MAX_FILE_BYTES``): not read, so not checked."""


class UsageError(LlmccError):
    """The command line asks for something that does not exist."""


class SecretsError(LlmccError):
    """A secret cannot be decrypted, wrapped or unwrapped (wrong or missing identity)."""


class StorageError(LlmccError):
    """A store cannot be read or written."""


class ConfigCheckError(LlmccError):
    """Validation or policy failed. Exit 1. Carries every diagnostic found."""

    exit_code = 1

    def __init__(self, message: str, diagnostics: Sequence[Diagnostic] = ()) -> None:
        super().__init__(message)
        self.diagnostics = list(diagnostics)


class VerificationError(LlmccError):
    """A published bundle failed verification: signature, digest, chain. Exit 3."""

    exit_code = 3
