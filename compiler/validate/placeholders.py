"""Placeholder secrets: a value ``llmcc init`` wrote for the user to replace (issue 13 §6). Pure.

The scaffold's secrets file holds ``replace-me-with-the-provider-key``; any
secret whose value starts with ``replace-me`` is taken for such a placeholder.
Every target that has one gets a warning (with the secrets at hand: an
identity, as compile and publish always have). Policies see it as
``secrets[k].placeholder`` (true, false, or null without an identity), and the
scaffold's ``prod-no-placeholder-secrets`` rule makes it an error for the
targets its ``match`` marks as production.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from compiler.diagnostics import Diagnostic, Severity
from compiler.jsonpath import JsonPath, format_path
from compiler.load.yaml import Value

PLACEHOLDER_PREFIX = "replace-me"


def is_placeholder(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PLACEHOLDER_PREFIX)


def value_at(node: Value, path: JsonPath) -> object:
    """The value at ``path`` in ``node`` (None when there is none)."""
    for part in path:
        if isinstance(node, dict) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return None
    return node


def check_placeholders(
    module: str,
    value: Value,
    paths: list[JsonPath],
    *,
    target: str,
    locate: Callable[[JsonPath, str], Diagnostic],
) -> list[Diagnostic]:
    """A warning at the line that set each placeholder secret of ``module`` (``locate`` finds it)."""
    out = []
    for path in paths:
        if is_placeholder(value_at(value, path)):
            address = module + format_path(path)[1:]
            message = (
                f"placeholder secret (written by llmcc init): set the real value with "
                f"llmcc secrets rotate {address} --target {target} --value-from-stdin"
            )
            out.append(replace(locate(path, message), severity=Severity.WARNING))
    return out
