"""stdout carries results, stderr diagnostics and progress; reporters by --format (STYLE R7)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # light at import: `llmcc validate --help` reads REPORTERS (issue 14 §1)
    from compiler.diagnostics import Diagnostic


def report_text(diags: Sequence[Diagnostic], summary: dict[str, object]) -> None:
    for d in diags:
        print(d.format(), file=sys.stderr)


def report_json(diags: Sequence[Diagnostic], summary: dict[str, object]) -> None:
    import json  # `--format json` only: `validate --help` does without it

    doc = {**summary, "diagnostics": [d.to_json() for d in diags]}
    print(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False))


def report_github(diags: Sequence[Diagnostic], summary: dict[str, object]) -> None:
    """GitHub Actions workflow commands: findings show inline on the pull request.

    A policy finding is annotated on the layer line that set the value the rule
    judged (``Diagnostic.value_origin``), the line a pull request changed, not
    on the rule in ``policies/`` (issue 13 §3); the message keeps the rule's
    name, its file:line and its text.
    """
    from compiler.diagnostics import Severity

    for d in diags:
        level = "error" if d.severity is Severity.ERROR else "warning"
        origin = d.value_origin or d.origin
        props = []
        if origin:
            props += [f"file={_escape_prop(origin.path)}", f"line={origin.line}", f"col={origin.column}"]
        title = f"llmcc {d.target or ''}" + (f" policy {d.rule}" if d.rule else "")
        props.append("title=" + _escape_prop(title.strip()))
        if d.value_origin is not None and d.origin is not None:
            shown = replace(d, origin=d.value_origin)
            first = shown.format().split("\n", 1)[0].split(": ", 1)[-1]
            rule = f"{d.origin.location()}: policy {d.rule}" if d.rule else d.origin.location()
            body = "\n".join([first, rule, *d.notes[1:]])
        else:
            text = d.format().split("\n", 1)
            body = text[0].split(": ", 1)[-1] if d.origin else text[0]
        print(f"::{level} {','.join(props)}::{_escape_data(body)}")


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_prop(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


REPORTERS: dict[str, Callable[[Sequence[Diagnostic], dict[str, object]], None]] = {
    "text": report_text,
    "json": report_json,
    "github": report_github,
}


def add_format_arg(p: argparse.ArgumentParser, choices: Sequence[str] = ("text", "json")) -> None:
    """``--format text|json``: json prints one document on stdout, errors included (``error_boundary``)."""
    p.add_argument("--format", choices=list(choices), default="text", help="output format (default text)")


def print_json(doc: object) -> None:
    import json  # a command's JSON output only

    print(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False))
