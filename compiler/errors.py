"""The one exception tree (STYLE R4): the exit code is a class attribute.

Grouped by who is at fault: the user's input (2), the user's config content (1),
a published artefact (3). Anything else that escapes is a bug (70).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

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


class UnknownTargetError(UsageError):
    """A target name nothing proves: not in llmcc.yaml, never published, not held (a typo until proven otherwise)."""


class SecretsError(LlmccError):
    """A secret cannot be decrypted, wrapped or unwrapped (wrong or missing identity)."""


class StorageError(LlmccError):
    """A store cannot be read or written."""


class InternalError(LlmccError):
    """A bug in llmcc or in a library it calls (a native library that panicked). Exit 70.

    Raised where such a fault is caught, so it ends in one line (and, inside a
    ``-j`` worker, travels back as a target's error) instead of a traceback.
    """

    exit_code = 70


class TerminatedError(BaseException):
    """SIGTERM arrived while a ``-j`` build ran: exit 143 (128 + 15) with one line (docs/exit-codes.md).

    A ``BaseException``, as ``KeyboardInterrupt``: no ``except Exception`` takes it
    for a failure of a target; leaving the build's worker pool ends the workers.
    """

    exit_code = 143


def is_panic(error: BaseException) -> bool:
    """Whether ``error`` is a Rust panic surfacing through PyO3 (``pyo3_runtime.PanicException``).

    PyO3 derives it from ``BaseException`` so that ``except Exception`` lets it
    through (PyO3 guide, "Panics"): jsonschema-rs, the CEL package, pyrage and
    cryptography are PyO3 extensions, so each call into them may raise it.
    """
    kind = type(error)
    return kind.__name__ == "PanicException" and kind.__module__ == "pyo3_runtime"


def is_interrupt_panic(error: BaseException) -> bool:
    """Whether ``error`` is a panic that wraps a Ctrl-C: a SIGINT that landed while a PyO3 module ran
    Python code (importing ``decimal`` during its init, say) surfaces as a panic whose message names
    the ``KeyboardInterrupt`` (attacker, issue 14): an interrupt (exit 130), not a bug."""
    return is_panic(error) and "KeyboardInterrupt" in str(error)


def panic_message(error: BaseException) -> str:
    """The first line of a panic's message: for calls whose inputs hold no secret (a panic's
    text is the library's own, and may quote what it was given)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class ConfigCheckError(LlmccError):
    """Validation or policy failed. Exit 1. Carries every diagnostic found."""

    exit_code = 1

    def __init__(self, message: str, diagnostics: Sequence[Diagnostic] = ()) -> None:
        super().__init__(message)
        self.diagnostics = list(diagnostics)


# Why a published artefact was refused: set where the check fails, read by the runtime
# client's refusal counters (compiler/client/metrics.py) instead of the message's wording.
Reason = Literal[
    "verification",  # malformed payload, or no finer reason
    "signature",  # envelope malformed, or no valid signature by a trusted key
    "wrong_target",  # a bundle or pointer of another target
    "wrong_version",  # a bundle stored under another version number than it says
    "gap",  # a version missing from the listing or the chain, or a stray object
    "broken_chain",  # metadata.previous does not link to the version before
    "rewritten_chain",  # a version has another digest than the pointer or the reader's mark
    "rollback",  # older than what the pointer or the reader accepted
    "missing_pointer",  # no signed pointer where versions exist
    "expired_pointer",  # the signed pointer expired (a frozen store)
    "pointer_too_long",  # the signed pointer is valid for longer than allowed (a replay window)
    "unpublished_version",  # versions far above the pointer
]


class VerificationError(LlmccError):
    """A published bundle failed verification: signature, digest, chain. Exit 3.

    ``reason`` names the check that failed (:data:`Reason`).
    """

    exit_code = 3

    def __init__(self, message: str, *, reason: Reason = "verification") -> None:
        super().__init__(message)
        self.reason: Reason = reason
