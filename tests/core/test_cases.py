"""Golden cases: each folder of tests/cases/ is a mini config repository.

- ``positive/<name>/expected/<target>.json``: the modules of every target's bundle
  (`llmcc validate` passes; `llmcc compile` gives exactly these modules).
- ``negative/<name>/expected.txt``: the exact stderr of `llmcc validate`;
  ``exit_code``: its exit code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.bundle.canonical import canonical_json
from compiler.cli import main

CASES = Path(__file__).resolve().parent.parent / "cases"
# The cases are compiled where they are, in the source tree: --no-cache, so a run never writes
# .llmcc/cache/ there, and never passes from an entry an earlier build of llmcc wrote.
POSITIVE = sorted(p for p in (CASES / "positive").iterdir() if p.is_dir())
NEGATIVE = sorted(p for p in (CASES / "negative").iterdir() if p.is_dir())


def test_there_are_enough_cases() -> None:
    assert len(POSITIVE) >= 4
    assert len(NEGATIVE) >= 8


@pytest.mark.parametrize("case", NEGATIVE, ids=[p.name for p in NEGATIVE])
def test_negative_case(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["-C", str(case), "validate", "--no-cache"])
    out, err = capsys.readouterr()
    assert err == (case / "expected.txt").read_text(encoding="utf-8")
    assert code == int((case / "exit_code").read_text())
    assert code in (1, 2)
    assert out == ""


@pytest.mark.parametrize("case", NEGATIVE, ids=[p.name for p in NEGATIVE])
def test_negative_case_does_not_compile(case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["-C", str(case), "-q", "compile", "--no-cache", "--out", str(tmp_path / "out")])
    _, err = capsys.readouterr()
    assert code == int((case / "exit_code").read_text())
    assert "Traceback" not in err
    # compile names the same culprits as validate (its targets come in manifest order)
    assert err.splitlines()[0] in (case / "expected.txt").read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("case", POSITIVE, ids=[p.name for p in POSITIVE])
def test_positive_case(case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-C", str(case), "validate", "--no-cache"]) == 0
    assert capsys.readouterr().err.startswith("llmcc: validate ok: ")
    out = tmp_path / "out"
    assert main(["-C", str(case), "-q", "compile", "--no-cache", "--out", str(out)]) == 0
    capsys.readouterr()
    expected = sorted(p.name for p in (case / "expected").iterdir())
    assert sorted(p.name.replace(".bundle.json", ".json") for p in out.iterdir()) == expected
    for name in expected:
        modules = json.loads((out / name.replace(".json", ".bundle.json")).read_bytes())["modules"]
        want = json.loads((case / "expected" / name).read_bytes())
        # canonical bytes, so 1.0 and 1 differ as they do in the bundle
        assert canonical_json(modules) == canonical_json(want), f"{case.name}/{name}"
