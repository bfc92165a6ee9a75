"""Private keys and well-known credentials in a file's text (issue 9 §4). Pure: bytes in, findings out.

Two families, each reported at ``file:line:column`` with its kind and never its value:

1. Private key material: age identities (``AGE-SECRET-KEY-1...``, our own key
   format, and ``AGE-PLUGIN-...`` plugin identities) and any PEM / OpenSSH /
   PGP / PuTTY private key block.
2. Credentials with a recognisable format: cloud access keys, model-provider
   API keys, git host tokens and other vendor tokens.

The formats come from Yelp's ``detect-secrets`` (its regex detectors, used
directly: no settings, no plugins loaded by name, never its network
verification) plus four it lacks, written here with the vendors' documented
prefixes: age identities, ``ENCRYPTED PRIVATE KEY`` PEM blocks, Anthropic
keys, Hugging Face and Google API keys. Its entropy and keyword detectors are
left out on purpose: they flag SOPS ciphertext, wrapped data keys and every
``password:`` key name, and a guard that cries wolf gets switched off.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

PRIVATE_KEY = "private key"


@dataclass(frozen=True, slots=True, kw_only=True)
class Detector:
    """A named credential format: ``family`` is ``private key`` or ``credential``."""

    kind: str
    family: str
    patterns: tuple[re.Pattern[str], ...]  # start each with a literal: re then scans for it, ~10x faster


@dataclass(frozen=True, slots=True, kw_only=True)
class CredentialFinding:
    """Where a credential starts (1-based line and column) and what kind it is. No value, by design."""

    kind: str
    family: str
    line: int
    column: int


# Ours: formats detect-secrets 1.5 does not know.
_OWN: tuple[Detector, ...] = (
    Detector(
        kind="age identity",
        family=PRIVATE_KEY,
        # age's Bech32 identities (age spec, "X25519 identity"); plugin identities name their plugin.
        # Bech32 reads either case, so age does too.
        patterns=(
            re.compile(r"AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}|AGE-PLUGIN-[A-Z0-9]+-1[02-9AC-HJ-NP-Z]{20,}", re.I),
        ),
    ),
    Detector(
        kind="OpenSSH private key",
        family=PRIVATE_KEY,
        patterns=(re.compile(r"-----BEGIN OPENSSH PRIVATE[ ]KEY-----"),),  # [ ]: not a match for this line
    ),
    Detector(
        kind="PEM private key",
        family=PRIVATE_KEY,
        # RFC 7468 labels "PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "RSA PRIVATE KEY", ...
        patterns=(re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),),
    ),
    Detector(
        kind="Anthropic API key",
        family="credential",
        patterns=(re.compile(r"sk-ant-(?:api|admin|sid)[0-9]{2}-[A-Za-z0-9_-]{32,}"),),
    ),
    Detector(
        kind="Hugging Face token",
        family="credential",
        patterns=(re.compile(r"hf_[A-Za-z0-9]{34,}(?![A-Za-z0-9])"),),
    ),
    Detector(
        kind="Google API key",
        family="credential",
        patterns=(re.compile(r"AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"),),
    ),
)


@cache
def detectors() -> tuple[Detector, ...]:
    """Every detector, private keys first (they win when two match one line).

    detect-secrets' formats come from ``_credential_patterns`` (generated from the
    installed detect-secrets by ``tools/gen-credential-patterns.py``; a test checks
    it still matches): importing detect-secrets pulls in requests (~0.2 s of every
    ``llmcc validate``, issue 14 §1) to build the same regular expressions.
    """
    from compiler.validate._credential_patterns import PATTERNS

    theirs = [
        Detector(kind=kind, family=family, patterns=tuple(re.compile(p, flags) for p, flags in patterns))
        for kind, family, patterns in PATTERNS
    ]
    return tuple(sorted((*_OWN, *theirs), key=lambda d: d.family != PRIVATE_KEY))


def library_detectors() -> list[Detector]:
    """detect-secrets' regex detectors, read from the library (what ``_credential_patterns`` snapshots)."""
    from detect_secrets.plugins.aws import AWSKeyDetector
    from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
    from detect_secrets.plugins.base import RegexBasedDetector
    from detect_secrets.plugins.discord import DiscordBotTokenDetector
    from detect_secrets.plugins.github_token import GitHubTokenDetector
    from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
    from detect_secrets.plugins.mailchimp import MailchimpDetector
    from detect_secrets.plugins.npm import NpmDetector
    from detect_secrets.plugins.openai import OpenAIDetector
    from detect_secrets.plugins.private_key import PrivateKeyDetector
    from detect_secrets.plugins.pypi_token import PypiTokenDetector
    from detect_secrets.plugins.sendgrid import SendGridDetector
    from detect_secrets.plugins.slack import SlackDetector
    from detect_secrets.plugins.square_oauth import SquareOAuthDetector
    from detect_secrets.plugins.stripe import StripeDetector
    from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
    from detect_secrets.plugins.twilio import TwilioKeyDetector

    library: list[RegexBasedDetector] = [
        PrivateKeyDetector(),
        AWSKeyDetector(),
        AzureStorageKeyDetector(),
        OpenAIDetector(),
        GitHubTokenDetector(),
        GitLabTokenDetector(),
        SlackDetector(),
        StripeDetector(),
        SendGridDetector(),
        TwilioKeyDetector(),
        MailchimpDetector(),
        NpmDetector(),
        PypiTokenDetector(),
        DiscordBotTokenDetector(),
        TelegramBotTokenDetector(),
        SquareOAuthDetector(),
    ]
    return [
        Detector(
            kind=str(d.secret_type),
            family=PRIVATE_KEY if isinstance(d, PrivateKeyDetector) else "credential",
            patterns=tuple(d.denylist),
        )
        for d in library
    ]


def dump_patterns(found: Sequence[Detector]) -> str:
    """The text of ``_credential_patterns.py`` for ``found`` (``tools/gen-credential-patterns.py``)."""
    lines = [
        '"""detect-secrets\' regex detectors as data. Generated by tools/gen-credential-patterns.py: do not edit.',
        "",
        "tests/hooks/test_plaintext_guard.py checks it against the installed detect-secrets.",
        '"""',
        "",
        "PATTERNS: tuple[tuple[str, str, tuple[tuple[str, int], ...]], ...] = (",
    ]
    for d in found:
        # private key markers with every other character escaped: written out, they would be findings of the guard
        show = _escaped if d.family == PRIVATE_KEY else repr
        pats = "".join(f"({show(p.pattern)}, {int(p.flags)}), " for p in d.patterns)
        lines.append(f"    ({d.kind!r}, {d.family!r}, ({pats})),")
    lines.append(")")
    return "\n".join(lines) + "\n"


def _escaped(text: str) -> str:
    """A Python string literal of ``text`` with every character but letters and digits escaped."""
    return '"' + "".join(c if c.isascii() and c.isalnum() else f"\\u{ord(c):04x}" for c in text) + '"'


def find_credentials(text: str, *, only: Sequence[Detector] | None = None) -> list[CredentialFinding]:
    """Private keys and credentials in ``text``, at most one per line (a private key wins), by line.

    A pattern is matched against the whole text (fast on large files); its
    start gives the line and column. A pattern whose required literal the text
    lacks is not run, and the line starts are found only when something matched
    (most texts hold no credential: issue 14 §1). Without ``only``, a pattern is
    compiled only when it runs: setting up all of them cost ~7 ms of every
    process that scans one file (a one-value compile, ``hook validate``: issue 14 §2).
    """
    starts: list[int] | None = None
    found: dict[int, CredentialFinding] = {}
    for kind, family, source, flags, needed in _plan(tuple(only)) if only is not None else _sources():
        if needed and needed not in text:
            continue  # no match can be in this text: the scan of every position is skipped
        pattern = re.compile(source, flags)  # re keeps what it compiled (its own cache)
        for m in pattern.finditer(text):
            # a detector with a group reports the group (AWS secret keys): point at the value
            pos = m.start(1) if pattern.groups and m.start(1) >= 0 else m.start()
            if starts is None:
                starts = [0, *(n.end() for n in re.finditer("\n", text))]
            line = bisect.bisect_right(starts, pos)
            if line not in found:
                found[line] = CredentialFinding(kind=kind, family=family, line=line, column=pos - starts[line - 1] + 1)
    return [found[k] for k in sorted(found)]


_Scan = tuple[str, str, str, int, str]  # kind, family, pattern source, flags, required literal


@cache
def _sources() -> tuple[_Scan, ...]:
    """``_plan(detectors())`` without compiling detect-secrets' patterns: each from its source, in the same order."""
    from compiler.validate._credential_patterns import PATTERNS

    theirs = [
        (kind, family, source, flags, _literal(source, flags))
        for kind, family, patterns in PATTERNS
        for source, flags in patterns
    ]
    ours = [(d.kind, d.family, p.pattern, p.flags, required_literal(p)) for d in _OWN for p in d.patterns]
    return tuple(sorted((*ours, *theirs), key=lambda scan: scan[1] != PRIVATE_KEY))


@cache
def _plan(dets: tuple[Detector, ...]) -> tuple[_Scan, ...]:
    """Each pattern of ``dets`` in scan order, with its detector's kind and family and its required literal."""
    return tuple(
        (det.kind, det.family, pattern.pattern, pattern.flags, required_literal(pattern))
        for det in dets
        for pattern in det.patterns
    )


@cache
def required_literal(pattern: re.Pattern[str]) -> str:
    """The longest run of characters that every match of ``pattern`` holds ('' when there is none to be sure of).

    The runs of literal characters in the pattern's top-level sequence: a match
    is the concatenation of its items' matches, so a text without such a run has
    no match. Patterns that do not start with a literal (Mailchimp's
    ``[0-9a-z]{32}-us[0-9]{1,2}``) make re try every position, about a third
    of validate's credential scan (issue 14 §1); a ``str.find`` tells first. ''
    for a case-insensitive pattern (re folds case otherwise than ``str.lower``),
    a top-level alternation, or a pattern re's parser reads otherwise than here.
    """
    return _literal(pattern.pattern, pattern.flags)


def _literal(source: str, flags: int) -> str:
    """``required_literal`` of the pattern ``re.compile(source, flags)``, from re's parse only (no compile)."""
    from re import _parser  # type: ignore[attr-defined]  # the parser re compiles with (Python >= 3.11)

    try:
        parsed = _parser.parse(source, flags)
        if parsed.state.flags & re.IGNORECASE:
            return ""
        best, run = "", ""
        for op, value in parsed:
            if op is _parser.LITERAL:
                run += chr(value)
            else:
                best, run = max(best, run, key=len), ""
        return str(max(best, run, key=len))
    except (AttributeError, TypeError, ValueError, re.error):  # pragma: no cover - a parser of another shape: scan
        return ""


def redact(text: str) -> str:
    """``text`` with every credential match replaced by ``<redacted>`` (for a file name in a finding)."""
    for det in detectors():
        for pattern in det.patterns:
            text = pattern.sub("<redacted>", text)
    return text
