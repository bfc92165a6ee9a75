"""The values the compile stages hand to each other (a leaf: it imports no stage and no engine module).

``load`` produces ``LayerDoc``s, ``compiler.compile.pipeline.load_stack`` a
``TargetStack``, and ``compile_target`` a ``CompileResult``; ``validate``,
``policy``, ``provenance``, ``diff`` and ``secrets`` read them. Keeping them here
lets those stages name them without importing the orchestrator (issue 14 §5;
``tests/core/test_layering.py`` checks this module's imports).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from compiler.diagnostics import Diagnostic
from compiler.jsonpath import JsonPath
from compiler.load.layers import LayerRef
from compiler.load.yaml import Document, Value, load_document
from compiler.project import Target


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerDoc:
    """A parsed layer file: its variables and its per-module patches."""

    ref: LayerRef
    document: Document
    vars: dict[str, Value]
    modules: dict[str, Value]


class DocumentLoader(Protocol):
    """Parses a YAML file as ``compiler.load.yaml.load_document`` does (the result cache keeps parsed
    files across runs: ``compiler.incremental.parsed``)."""

    def __call__(
        self,
        data: bytes,
        *,
        path: str,
        layer: str,
        rev: str | None = None,
        quote_values: bool = True,
        keep: Callable[[Document], bool] | None = None,
    ) -> Document:
        """The parsed document; ``keep`` says whether it may be kept on disk (default: yes)."""
        ...


def parse_only(
    data: bytes,
    *,
    path: str,
    layer: str,
    rev: str | None = None,
    quote_values: bool = True,
    keep: Callable[[Document], bool] | None = None,
) -> Document:
    """``load_document``: the ``DocumentLoader`` that keeps nothing."""
    return load_document(data, path=path, layer=layer, rev=rev, quote_values=quote_values)


# Opens a SOPS layer: given the ref, its parsed (encrypted) document and raw bytes,
# returns the document's value with secrets decrypted or replaced by opaque stand-ins.
SecretsOpener = Callable[[LayerRef, Document, bytes], Value]


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetStack:
    """The layers present for a target, lowest precedence first, and its merged variables."""

    target: Target
    layers: list[LayerDoc]
    variables: dict[str, Value]


@dataclass(frozen=True, slots=True, kw_only=True)
class CompileResult:
    """One target's effective modules, its diagnostics, and per module the paths of its secret fields."""

    target: Target
    stack: TargetStack
    modules: dict[str, Value]
    diagnostics: list[Diagnostic]
    secrets: dict[str, list[JsonPath]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


# What the secrets guard found, by (file path, module): the same file gives the same findings
# in every target that stacks it (``compiler.validate.secrets_guard.check_stack``).
GuardCache = dict[tuple[str, str], list[Diagnostic]]
