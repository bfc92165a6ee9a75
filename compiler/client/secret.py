"""A secret value handed to the service: shown only when asked (issue 11 §5, STYLE R15).

``repr``, ``str``, ``format`` (so f-strings and ``logging`` arguments),
pickling and ``json.dumps`` never show the value; only :meth:`Secret.reveal`
returns it. The value is decrypted on the first ``reveal()`` and kept in
memory only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

from compiler.jsontypes import JSONScalar

_UNOPENED = object()


class Secret:
    """One secret field of one config version, e.g. ``data-pipeline$.db.password``.

    Immutable: ``copy.copy`` and ``copy.deepcopy`` return the same object.
    Equality is identity (comparing would mean decrypting).
    """

    __slots__ = ("_opener", "_value", "address")

    def __init__(self, address: str, opener: Callable[[], JSONScalar]) -> None:
        """``opener`` returns the plaintext; it is called at most once per successful ``reveal()``.

        Args:
            address: where the secret lives (``module$.path``); safe to show.
            opener: decrypts the value (raises :class:`~compiler.errors.SecretsError`).
        """
        self.address = address
        self._opener = opener
        self._value: object = _UNOPENED

    @classmethod
    def of(cls, address: str, value: JSONScalar) -> Secret:
        """A secret that holds ``value`` already (for callers who build their own)."""
        return cls(address, lambda: value)

    def reveal(self) -> JSONScalar:
        """The plaintext (str, int, float, bool or None). Use it; never print or log it.

        Raises:
            SecretsError: the data key cannot be unwrapped or the value does not open.
        """
        value = self._value
        if value is _UNOPENED:
            # two threads may both open it: the same plaintext, so the race is harmless
            value = self._value = self._opener()
        return value  # type: ignore[return-value]  # set from the opener's JSONScalar

    def __repr__(self) -> str:
        return f"Secret({self.address}, <redacted>)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: object) -> Secret:
        return self

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("a Secret cannot be pickled: call reveal() where the value is used")

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled: call reveal() where the value is used")

    def __getstate__(self) -> NoReturn:
        # object.__getstate__ returns the slots, plaintext included, to any serializer that asks
        raise TypeError("a Secret has no state to export: call reveal() where the value is used")
