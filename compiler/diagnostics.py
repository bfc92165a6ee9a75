"""Origins of values and the diagnostics that name them (STYLE R3, R7)."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from compiler.jsonpath import JsonPath, format_path

# The ``layer`` the loader gives files that are not configuration layers: what kind of file it is.
# "(layer policy)" after a finding in a policies file names no layer (issue 13 §6), so it is not printed.
FILE_KINDS = frozenset(
    {"template", "schema", "policy", "policy-test", "manifest", "keys", "rotation", "sops", "sops-config", "secrets"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """Where a value was written: repository-relative path, 1-based line and column."""

    path: str
    line: int
    column: int
    layer: str
    rev: str | None = None

    def location(self) -> str:
        """``path:line:column``, the path's control characters escaped (``printable_path``)."""
        return f"{printable_path(self.path)}:{self.line}:{self.column}"

    @property
    def layer_name(self) -> str | None:
        """The configuration layer (``prod``, ``tenants/acme``), None for a template, policy or other file."""
        return self.layer if self.layer and self.layer not in FILE_KINDS else None


# C0 and C1 controls, DEL, and the Unicode line and paragraph separators: what can end or rewrite a
# line on a terminal or in a CI log.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")  # a lone surrogate: a byte not UTF-8


def printable_path(path: str) -> str:
    """``path`` with each control character written as a Python escape (``\\n``, ``\\x1b``, ``\\u2028``),
    and each byte that is not UTF-8 (a lone surrogate, ``os.fsdecode``) as ``\\udcff``: raw, it cannot be printed.

    Git takes any byte but NUL and ``/`` in a file name, so a name can hold a newline; printed
    raw, a staged file named ``x\\nllmcc: secrets-guard ok`` forged a line of the hook's output
    (attacker, issue 14). ``--format json`` escapes names by itself.
    """
    if _CONTROL.search(path) is None:
        return path
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], path)


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostic:
    """One finding. Printed as ``path:line:col: module $.path: message (layer prod)``."""

    message: str
    severity: Severity = Severity.ERROR
    origin: Origin | None = None
    module: str | None = None
    path: JsonPath | None = None
    target: str | None = None
    rule: str | None = None
    notes: tuple[str, ...] = field(default=())
    # A policy finding's ``origin`` is the rule; this is the layer line that set the value the rule
    # judged, where a CI annotation belongs (issue 13 §3). None when the finding names no one value.
    value_origin: Origin | None = None
    # The config path (module first) of the value a policy finding judged, as the evaluator found it
    # in the rule's syntax tree (issue 14 §5); ``value_origin`` is looked up from it.
    value_path: JsonPath | None = None

    def sort_key(self) -> tuple[str, str, int, int, str, str]:
        o = self.origin
        return (
            self.target or "",
            o.path if o else "",
            o.line if o else 0,
            o.column if o else 0,
            self.module or "",
            self.message,
        )

    def format(self) -> str:
        head = f"{self.origin.location()}: " if self.origin else ""
        where = ""
        if self.module is not None:
            where = self.module + (f" {format_path(self.path)}" if self.path is not None else "") + ": "
        tail = []
        if self.target:
            tail.append(f"target {self.target}")
        if self.origin and self.origin.layer_name:
            tail.append(f"layer {self.origin.layer_name}")
        suffix = f" ({', '.join(tail)})" if tail else ""
        sev = "warning: " if self.severity is Severity.WARNING else ""
        text = f"{head}{sev}{where}{hang_lines(self.message, 4)}{suffix}"
        return "\n".join([text, *(f"    {hang_lines(n, 6)}" for n in self.notes)])

    def to_json(self) -> dict[str, object]:
        o = self.origin
        return {
            "severity": str(self.severity),
            "message": self.message,
            "target": self.target,
            "module": self.module,
            "path": format_path(self.path) if self.path is not None else None,
            "rule": self.rule,
            "file": o.path if o else None,
            "line": o.line if o else None,
            "column": o.column if o else None,
            "layer": o.layer if o else None,
            "notes": list(self.notes),
        }


_LOCATED = re.compile(r"^(?P<file>[^\s:]+):(?P<line>\d+)(?::(?P<column>\d+))?: (?P<message>.*)$", re.S)


def diagnostic_from_message(message: str, *, target: str | None = None) -> Diagnostic:
    """A diagnostic for an error message, its ``path:line[:col]:`` prefix turned into an origin."""
    m = _LOCATED.match(message)
    if m is None:
        return Diagnostic(message=message, target=target)
    origin = Origin(path=m["file"], line=int(m["line"]), column=int(m["column"] or 1), layer="")
    return Diagnostic(message=m["message"], origin=origin, target=target)


def plural(n: int, noun: str) -> str:
    """``1 target``, ``2 targets``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def sort_diagnostics(diags: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(diags, key=Diagnostic.sort_key)


_LINE_BREAK = re.compile(r"\r\n?|\n")


def hang_lines(text: str, indent: int = 4) -> str:
    """``text`` with every line after its first indented by ``indent`` spaces (at least 4).

    A policy's description, a waiver's reason or a rule are the repository's
    text, maybe several lines: indented, none of them starts a line of the
    report, so none can pass for a finding, or close the code fence a CI
    comment puts the report in (CommonMark 4.5: a closing fence is indented
    at most 3 spaces; ``\\r`` ends a line too).
    """
    return _LINE_BREAK.sub("\n" + " " * indent, text)
