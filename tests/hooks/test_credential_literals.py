"""The credential scan skips a pattern whose required literal a text lacks (issue 14 §1): never a finding less.

``required_literal`` reads a run of literal characters from the pattern's top-level
sequence; every match holds it, so a text without it has no match. Checked here on
strings generated from every detector's own pattern, and against a scan without the skip.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.validate.credentials import CredentialFinding, detectors, find_credentials, required_literal

PATTERNS = [p for d in detectors() for p in d.patterns]


@pytest.mark.parametrize("pattern", PATTERNS, ids=[f"{i}" for i in range(len(PATTERNS))])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_every_match_of_a_detector_holds_its_required_literal(pattern: re.Pattern[str], data: st.DataObject) -> None:
    text = data.draw(st.from_regex(pattern))
    needed = required_literal(pattern)
    for m in pattern.finditer(text):
        assert needed in m.group(0)


def _unfiltered(text: str) -> list[CredentialFinding]:
    """``find_credentials`` as it was before the skip: every pattern scans every text."""
    starts = [0, *(m.end() for m in re.finditer("\n", text))]
    found: dict[int, CredentialFinding] = {}
    for det in detectors():
        for pattern in det.patterns:
            for m in pattern.finditer(text):
                pos = m.start(1) if pattern.groups and m.start(1) >= 0 else m.start()
                line = len([s for s in starts if s <= pos])
                if line not in found:
                    found[line] = CredentialFinding(
                        kind=det.kind, family=det.family, line=line, column=pos - starts[line - 1] + 1
                    )
    return [found[k] for k in sorted(found)]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.text(max_size=40), *(st.from_regex(p) for p in PATTERNS)), max_size=6))
def test_the_scan_finds_what_a_scan_of_every_pattern_finds(lines: list[str]) -> None:
    text = "\n".join(lines)
    assert find_credentials(text) == _unfiltered(text)


@pytest.mark.parametrize(
    ("pattern", "needed"),
    [
        (re.compile(r"[0-9a-z]{32}-us[0-9]{1,2}"), "-us"),  # Mailchimp: no literal prefix, one inside
        (re.compile(r"sk-[A-Za-z0-9]*T3BlbkFJ[A-Za-z0-9]{20}"), "T3BlbkFJ"),  # the longest run
        (re.compile(r"BEGIN[ ]KEY"), "BEGIN KEY"),  # a one-character class is that character
        (re.compile(r"xox(?:a|b)-\d+", re.I), ""),  # re folds case otherwise than str.lower
        (re.compile(r"(?i)xoxb-\d+"), ""),  # so inline
        (re.compile(r"AKIA[0-9A-Z]{16}|BSIA[0-9A-Z]{16}"), ""),  # a top-level alternation: no run sure
        (re.compile(r"AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}"), "A"),  # re's parser takes a common prefix out of it
        (re.compile(r"(?i:abc)def"), "def"),  # a scoped flag leaves the run outside it
        (re.compile(r"ab?c"), "a"),  # an optional character ends the run
    ],
)
def test_required_literal(pattern: re.Pattern[str], needed: str) -> None:
    assert required_literal(pattern) == needed
    assert find_credentials("nothing here") == []


def test_the_scan_that_compiles_on_demand_runs_every_detector_in_order() -> None:
    """Without ``only``, patterns are compiled when a text holds their literal (issue 14 §2): the plan
    read from their sources is the compiled detectors' plan, pattern for pattern, in the same order."""
    from compiler.validate.credentials import _plan, _sources

    assert _sources() == _plan(detectors())
    assert [scan[1] for scan in _sources()] == sorted(
        (scan[1] for scan in _sources()), key=lambda f: f != "private key"
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.text(max_size=40), *(st.from_regex(p) for p in PATTERNS)), max_size=6))
def test_a_pattern_compiled_on_demand_finds_what_the_compiled_detector_finds(lines: list[str]) -> None:
    text = "\n".join(lines)
    re.purge()  # compiled from its source now, not taken from re's cache
    assert find_credentials(text) == find_credentials(text, only=detectors()) == _unfiltered(text)
