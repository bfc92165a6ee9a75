"""Who last touched a line: ``git blame --porcelain`` at the working tree or a revision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from compiler.audit.revisions import git

_UNCOMMITTED = "0" * 40


@dataclass(frozen=True, slots=True, kw_only=True)
class LineBlame:
    """The commit that last touched one line; ``commit`` is None for a line not committed yet."""

    commit: str | None
    author: str = ""  # "Name <email>"
    date: str = ""  # author date, ISO 8601 with offset
    summary: str = ""

    @property
    def committed(self) -> bool:
        return self.commit is not None

    def describe(self) -> str:
        if self.commit is None:
            return "not committed yet"
        return f"{self.commit[:7]} {self.date[:10]} {self.author}: {self.summary}"


NOT_COMMITTED = LineBlame(commit=None)


def blame_line(root: Path, path: str, line: int, *, rev: str | None = None) -> LineBlame | None:
    """The commit that last touched ``path:line`` at ``rev`` (default: the working tree).

    Returns ``NOT_COMMITTED`` for a line (or file) that no commit holds yet, and
    None when there is no git history to ask (not a repository, or git failed).
    """
    args = ["blame", "--porcelain", "-L", f"{line},{line}"]
    if rev is not None:
        if rev.startswith("-"):
            return None
        args.append(rev)
    code, out, err = git(root, *args, "--", path)
    if code != 0:
        if rev is None and ("no such path" in err or "does not have a valid object name" in err):
            return NOT_COMMITTED  # a file that is not in HEAD yet
        if rev is None and ("no such ref: HEAD" in err or "bad revision 'HEAD'" in err):
            return NOT_COMMITTED  # a repository without commits
        return None
    return parse_porcelain(out)


def parse_porcelain(text: str) -> LineBlame | None:
    """The first entry of ``git blame --porcelain`` output."""
    lines = text.splitlines()
    if not lines:
        return None
    sha = lines[0].split(" ", 1)[0]
    if sha == _UNCOMMITTED:
        return NOT_COMMITTED
    fields: dict[str, str] = {}
    for raw in lines[1:]:
        if raw.startswith("\t"):
            break
        key, _, value = raw.partition(" ")
        fields[key] = value
    return LineBlame(
        commit=sha,
        author=f"{fields.get('author', '')} {fields.get('author-mail', '')}".strip(),
        date=_iso(fields.get("author-time", ""), fields.get("author-tz", "")),
        summary=fields.get("summary", ""),
    )


def _iso(epoch: str, tz: str) -> str:
    try:
        seconds = int(epoch)
        sign = -1 if tz.startswith("-") else 1
        offset = timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5])) * sign
    except (ValueError, IndexError):
        return ""
    return datetime.fromtimestamp(seconds, UTC).astimezone(timezone(offset)).isoformat()
