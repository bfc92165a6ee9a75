"""Diff reports: ``text`` (ANSI colour only on a terminal), ``markdown`` (a pull-request comment), ``json``.

Each starts with the blast radius: whose access to which target changes (an
access change is the most important line of a review, so it comes first), then
which targets change and how many values each. Targets whose changes are identical (tenants inheriting one environment
change) are shown once, as a group. Secrets print as ``<secret changed>`` /
``<secret added>`` / ``<secret removed>``; a multi-line string that changed
prints as a unified line diff with three lines of context, never as two
whole values. A map or list that appears or goes whole (a new target, a new
module, a new key holding a map) prints in full as indented JSON, in markdown
inside a collapsed ``<details>`` block (issue 13 §3), never as a cut one-line
blob.
"""

from __future__ import annotations

import difflib
import html
import json
import re
import string
from collections.abc import Callable, Iterator

from compiler.diagnostics import plural
from compiler.diff.compute import Change, DiffResult, TargetDiff
from compiler.diff.masking import Masked, public
from compiler.secrets.access import ReaderChange

MARKDOWN_LIMIT = 60_000
CONTEXT_LINES = 3
CIPHERTEXT_NOTE = "secrets compared by SOPS ciphertext; provide an identity to compare values"
_MAX_VALUE = 200
_MAX_MD_DIFF_LINES = 400
_MAX_NAMES = 8
_SEE_BELOW = "in full below"
_SIGNS = {"added": "+", "removed": "-", "changed": "~", "moved": ">"}
_PLAIN = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
_COLOURS = {"+": "32", "-": "31", "~": "33", ">": "36", "@": "36", "#": "1"}


def describe(change: Change) -> tuple[str, str]:
    """(old, new) as short display text; a moved item gives its indexes."""
    if change.secret:
        return "", f"<secret {change.kind}>"
    if change.kind == "moved":
        item = "" if change.item is None else f": {show_value(change.item)}"
        return f"index {change.old}", f"index {change.new}{item}"
    old = "" if change.kind == "added" else show_value(change.old)
    new = "" if change.kind == "removed" else show_value(change.new)
    return old, new


def show_value(value: Masked) -> str:
    text = json.dumps(public(value), ensure_ascii=False, sort_keys=True)
    return text if len(text) <= _MAX_VALUE else f"{text[: _MAX_VALUE - 1]}… ({len(text)} chars)"


def line_diff(change: Change) -> list[str] | None:
    """A unified diff of a multi-line string that changed, appeared or went (None otherwise)."""
    if change.secret or change.kind == "moved":
        return None
    old = change.old if change.kind != "added" else ""
    new = change.new if change.kind != "removed" else ""
    if not isinstance(old, str) or not isinstance(new, str) or ("\n" not in old and "\n" not in new):
        return None
    return list(difflib.unified_diff(old.splitlines(), new.splitlines(), n=CONTEXT_LINES, lineterm=""))[2:]


def whole_values(change: Change) -> dict[str, list[str]]:
    """The maps and lists a change adds, removes or replaces whole, as indented JSON lines, by side.

    ``{"new": lines}`` for an added container, ``{"old": lines}`` for a removed
    one, either or both for a change of type (``"x"`` to a map); empty for
    scalars, empty containers, secrets and moves.
    """
    if change.secret or change.kind == "moved":
        return {}
    sides = {
        "old": change.old if change.kind != "added" else None,
        "new": change.new if change.kind != "removed" else None,
    }
    return {
        side: json.dumps(public(value), indent=2, ensure_ascii=False, sort_keys=True).split("\n")
        for side, value in sides.items()
        if isinstance(value, (dict, list)) and value
    }


def group_targets(result: DiffResult) -> list[list[TargetDiff]]:
    """Changed targets, those with identical changes together, in first-seen order."""
    groups: dict[str, list[TargetDiff]] = {}
    for t in result.changed:
        sig = json.dumps(
            [
                t.status,
                [r.describe() for r in t.readers],
                *(
                    [c.module, c.location, c.kind, c.secret, public(c.old), public(c.new), public(c.item)]
                    for c in t.changes
                ),
            ],
            sort_keys=True,
            default=str,
        )
        groups.setdefault(sig, []).append(t)
    return list(groups.values())


def _names(group: list[TargetDiff], fmt: str = "{}") -> str:
    shown = [fmt.format(t.target) for t in group[:_MAX_NAMES]]
    more = f" and {len(group) - _MAX_NAMES} more" if len(group) > _MAX_NAMES else ""
    count = f" ({len(group)} targets)" if len(group) > 1 else ""
    return ", ".join(shown) + more + count


def _target_note(t: TargetDiff) -> str:
    modules = t.modules
    listed = ", ".join(modules[:3]) + (f" and {plural(len(modules) - 3, 'more module')}" if len(modules) > 3 else "")
    access = [plural(len(t.readers), "reader change")] if t.readers else []
    if t.status in ("added", "removed"):
        return ", ".join([f"target {t.status} ({plural(len(modules), 'module')})", *access])
    n = len(t.changes)
    return ", ".join([*access, *([f"{plural(n, 'value')} in {listed}"] if n or not access else [])])


def _headline(result: DiffResult) -> str:
    """The blast radius; an access change leads, as the most important line of a review (issue 9 §1)."""
    changed = result.changed
    if not changed:
        return f"no changes in {plural(len(result.targets), 'target')}"
    access = result.access
    lead = f"{plural(result.reader_count, 'reader change')} in {plural(len(access), 'target')}; " if access else ""
    return f"{lead}{len(changed)} of {plural(len(result.targets), 'target')} change, {plural(result.count, 'value')}"


def _reader_line(r: ReaderChange) -> str:
    return f"{_SIGNS[r.kind]} {r.describe()}"


def render_text(result: DiffResult, *, colour: bool = False) -> str:
    lines = [f"llmcc diff {result.base} -> {result.head}: {_headline(result)}"]
    width = max((len(t.target) for t in result.changed), default=0)
    lines += [f"  ! {t.target}: readers {', '.join(r.describe() for r in t.readers)}" for t in result.access]
    lines += [f"  {t.target:<{width}}  {_target_note(t)}" for t in result.changed]
    if result.secrets_by_ciphertext:
        lines.append(f"note: {CIPHERTEXT_NOTE}")
    for group in group_targets(result):
        first = group[0]
        status = f" (target {first.status})" if first.status in ("added", "removed") else ""
        lines += ["", f"# {_names(group)}{status}"]
        if first.readers:
            lines += ["readers:", *(f"  {_reader_line(r)}" for r in first.readers)]
        module = None
        for c in first.changes:
            if c.module != module:
                module = c.module
                lines.append(f"{module}:")
            lines += _text_change(c)
    text = "\n".join(lines)
    return _colourise(text) if colour else text


def _text_change(c: Change) -> list[str]:
    sign = _SIGNS[c.kind]
    diff = line_diff(c)
    if diff is not None:
        return [f"  {sign} {c.location}:", *(f"      {d}" for d in diff)]
    whole = whole_values(c)
    if whole:
        old, new = describe(c)
        head = f"  {sign} {c.location}:"
        if c.kind == "changed":
            head += f" {'' if 'old' in whole else old + ' '}->{'' if 'new' in whole else ' ' + new}"
        return [
            head,
            *(f"    - {line}" if c.kind == "changed" else f"    {sign} {line}" for line in whole.get("old", [])),
            *(f"    + {line}" if c.kind == "changed" else f"    {sign} {line}" for line in whole.get("new", [])),
        ]
    old, new = describe(c)
    if c.kind == "changed" and not c.secret:
        return [f"  {sign} {c.location}: {old} -> {new}"]
    if c.kind == "moved":
        item = "" if c.item is None else f"{show_value(c.item)} "
        return [f"  {sign} {c.location}: {item}moved from index {c.old} to {c.new}"]
    return [f"  {sign} {c.location}: {old or new}"]


def _colourise(text: str) -> str:
    out = []
    for line in text.split("\n"):
        stripped = line.lstrip()
        code = _COLOURS.get(stripped[:1]) if stripped else None
        out.append(f"\033[{code}m{line}\033[0m" if code else line)
    return "\n".join(out)


def render_markdown(result: DiffResult, *, limit: int = MARKDOWN_LIMIT) -> str:
    """A pull-request comment: summary table, then one collapsible section per group of targets."""
    changed = result.changed
    parts = [f"### llmcc diff {_code(result.base)} → {_code(result.head)}", ""]
    if not changed:
        parts.append(f"No changes in the effective configuration of {plural(len(result.targets), 'target')}.")
        return "\n".join(parts) + "\n"
    parts += [f"**{_headline(result)}.**", ""]
    if result.access:
        parts += [
            "**Access changes** (who can open the target's secrets):",
            "",
            "| target | change | reader |",
            "| --- | --- | --- |",
            *(f"| `{t.target}` | {r.kind} | {_code(r.what)} |" for t in result.access for r in t.readers),
            "",
        ]
    parts += [
        "| target | values | modules |",
        "| --- | ---: | --- |",
        *(f"| `{t.target}` | {_md_count(t)} | {', '.join(map(_plain, t.modules))} |" for t in changed),
    ]
    if result.secrets_by_ciphertext:
        parts += ["", f"> **Note:** {CIPHERTEXT_NOTE}."]
    text = "\n".join(parts) + "\n"
    note = (
        "\n> **Truncated:** {n} not shown (comments are limited to"
        " {limit:,} characters); run `llmcc diff` locally for the whole diff.\n"
    )
    groups = group_targets(result)
    for i, group in enumerate(groups):
        section = _md_section(group, limit - len(text) - len(note) - 20)
        if section is None:
            return text + note.format(n=plural(len(groups) - i, "more section"), limit=limit)
        text += section
    return text


def _md_count(t: TargetDiff) -> str:
    return f"target {t.status}" if t.status in ("added", "removed") else str(len(t.changes))


def _md_section(group: list[TargetDiff], budget: int) -> str | None:
    """One ``<details>`` block, cut to ``budget`` characters (None when not even its head fits)."""
    note = html.escape(_target_note(group[0]))
    head = f"\n<details><summary>{_names(group, '<code>{}</code>')}: {note}</summary>\n"
    tail = "\n</details>\n"
    if len(head) + len(tail) > budget:
        return None
    text = head
    blocks = list(_md_blocks(group[0]))
    for n, block in enumerate(blocks):
        if len(text) + len(block) + len(tail) + 80 > budget:
            text += f"\n_… {len(blocks) - n} more blocks cut to keep the comment short._\n"
            break
        text += block
    return text + tail


def _md_blocks(t: TargetDiff) -> Iterator[str]:
    if t.readers:
        yield "\n**readers**\n\n" + "\n".join(f"- {r.kind}: {_code(r.describe())}" for r in t.readers) + "\n"
    by_module: dict[str, list[Change]] = {}
    for c in t.changes:
        by_module.setdefault(c.module, []).append(c)
    for module, changes in by_module.items():
        rows = ["", f"**{_plain(module)}**", "", "| change | path | old | new |", "| --- | --- | --- | --- |"]
        diffs = []
        wholes = []
        for c in changes:
            diff = line_diff(c)
            whole = whole_values(c)
            old, new = describe(c)
            if diff is not None:
                old, new = "", "see the line diff below"
                diffs.append((c, diff))
            elif whole:
                old = _SEE_BELOW if "old" in whole else old
                new = _SEE_BELOW if "new" in whole else new
                wholes += [(c, side, lines) for side, lines in whole.items()]
            rows.append(f"| {c.kind} | {_code(c.location)} | {_code(old)} | {_code(new)} |")
        yield "\n".join(rows) + "\n"
        for c, side, lines in wholes:
            fence = _fence(lines)
            what = c.kind if c.kind != "changed" else f"{side} value"
            summary = (
                f"<code>{html.escape(module)} {html.escape(c.location)}</code> {what} ({plural(len(lines), 'line')})"
            )
            body = [f"\n<details><summary>{summary}</summary>\n", f"{fence}json", *lines, fence, "</details>"]
            yield "\n".join(body) + "\n"
        for c, diff in diffs:
            shown = diff[:_MAX_MD_DIFF_LINES]
            fence = _fence(shown)
            block = [f"\n{_code(c.location)}:\n", f"{fence}diff", *shown, fence]
            if len(diff) > len(shown):
                block.append(f"_… {len(diff) - len(shown)} more diff lines_")
            yield "\n".join(block) + "\n"


def _code(text: str) -> str:
    if not text:
        return ""
    if text.startswith("<secret"):
        return f"*{text.replace('<', '&lt;').replace('>', '&gt;')}*"
    if text in ("see the line diff below", _SEE_BELOW):
        return f"_{text}_"
    body = re.sub(r"\r\n?|\n", " ", text).replace("|", "\\|")
    # a code span ends at the first backtick run exactly as long as its opener (CommonMark 6.1):
    # the opener is longer than every run in the value, so no value can end it early
    ticks = "`" * (max((len(run) for run in re.findall("`+", body)), default=0) + 1)
    pad = " " if ticks != "`" else ""
    return f"{ticks}{pad}{body}{pad}{ticks}"


def _plain(text: str) -> str:
    """``text`` (a module's name: its schema's file name, any character) as literal markdown text.

    HTML-escaped (``<!--`` would open a comment hiding the rest), and every other
    ASCII punctuation backslash-escaped (CommonMark 2.4): no ``|`` ends a table
    cell, no backtick opens a code span, no ``*`` or ``_`` emphasis.
    """
    return "".join(_PLAIN.get(c, "\\" + c if c in string.punctuation else c) for c in text)


def _fence(lines: list[str]) -> str:
    """A code fence longer than every backtick run in ``lines``: no line can close it (CommonMark 4.5).

    Checking only lines that start with backticks is not enough: a closing fence may be
    indented up to three spaces, as an unchanged line of a diff is (its prefix is a space).
    """
    return "`" * max([3, *(len(run) + 1 for line in lines for run in re.findall("`+", line))])


def render_json(result: DiffResult) -> str:
    """Exactly one JSON document; secrets as ``"secret": true`` with no values."""
    doc = {
        "base": result.base,
        "head": result.head,
        "changed": bool(result.changed),
        "secrets_compared_by": "sops-ciphertext" if result.secrets_by_ciphertext else "value",
        "summary": {
            "reader_changes": result.reader_count,
            "access_changed_targets": len(result.access),
            "targets": len(result.targets),
            "changed_targets": len(result.changed),
            "values": result.count,
        },
        "targets": [
            {
                "target": t.target,
                "status": t.status,
                "readers": [{"role": r.role, "kind": r.kind, "reader": r.what} for r in t.readers],
                "changes": [_json_change(c) for c in t.changes],
            }
            for t in result.targets
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


def _json_change(c: Change) -> dict[str, object]:
    out: dict[str, object] = {"module": c.module, "path": c.location, "kind": c.kind, "secret": c.secret}
    if c.secret:
        out["display"] = f"<secret {c.kind}>"
        return out
    out["old"] = public(c.old)
    out["new"] = public(c.new)
    if c.kind == "moved" and c.item is not None:
        out["item"] = public(c.item)
    return out


RENDERERS: dict[str, Callable[[DiffResult], str]] = {
    "text": render_text,
    "markdown": render_markdown,
    "json": render_json,
}
