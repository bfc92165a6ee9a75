"""``llmcc policy test`` through the real entry point: one line per case, exit 0 / 1 / 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.cli import main
from tests.conftest import GitRepo

pytestmark = pytest.mark.usefixtures("issue6_commands")

CASES = """\
- name: cool prod passes
  target: prod
  config: {m: {t: 0.5}}
  expect: {bounded: pass}

- name: hot prod is expected to pass but fails
  target: prod@acme
  config: {m: {t: 1.5}}
  expect: {bounded: pass}

- name: dev is skipped
  target: dev
  config: {m: {t: 1.5}}
  expect: {bounded: skip}
"""


def run(capsys: pytest.CaptureFixture[str], root: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["-C", str(root), *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_the_example_policy_tests_pass(example_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, example_repo.path, "policy", "test")
    assert code == 0, out
    lines = out.splitlines()
    assert len(lines) >= 25
    assert all(line.startswith("PASS policies/tests/") for line in lines)
    assert "PASS policies/tests/production.yaml:10: a production temperature above 1.0 fails" in out
    assert err.startswith(f"llmcc: policy test ok: {len(lines)} passed, 0 failed")


def write(root: Path, files: dict[str, str]) -> Path:
    (root / "llmcc.yaml").parent.mkdir(parents=True, exist_ok=True)
    (root / "llmcc.yaml").write_text("project: p\nenvironments: {dev: {}, prod: {}}\n")
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


POLICY = '- {name: bounded, match: {environments: [prod]}, rule: "config.m.t <= 1.0"}\n'


def test_a_failing_case_says_why_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write(tmp_path, {"policies/p.yaml": POLICY, "policies/tests/p.yaml": CASES})
    code, out, err = run(capsys, root, "policy", "test")
    assert code == 1
    assert out.splitlines() == [
        "PASS policies/tests/p.yaml:1: cool prod passes",
        "FAIL policies/tests/p.yaml:6: hot prod is expected to pass but fails: "
        "bounded: expected pass, got fail (config.m.t is 1.5, expected <= 1.0)",
        "PASS policies/tests/p.yaml:11: dev is skipped",
    ]
    assert err == "llmcc: policy test FAILED: 2 passed, 1 failed\n"


def test_only_the_files_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = "- {name: one, target: prod, config: {m: {t: 0}}, expect: {bounded: pass}}\n"
    root = write(tmp_path, {"policies/p.yaml": POLICY, "policies/tests/p.yaml": CASES, "policies/tests/q.yaml": one})
    code, out, _ = run(capsys, root, "-q", "policy", "test", str(root / "policies/tests/q.yaml"))
    assert (code, out) == (0, "PASS policies/tests/q.yaml:1: one\n")


@pytest.mark.parametrize(
    ("tests", "message"),
    [
        (
            "- {name: x, target: prod, expect: {nope: pass}}\n",
            "llmcc: policies/tests/p.yaml:1:36: expect: unknown policy 'nope'\n",
        ),
        (
            "- {name: x, target: prod, expect: {bounded: maybe}}\n",
            "llmcc: policies/tests/p.yaml:1:36: [0].expect.bounded: Input should be 'pass', 'fail', 'error' or",
        ),
        (
            "- {name: x, target: Prod, expect: {bounded: pass}}\n",
            "llmcc: policies/tests/p.yaml:1:13: 'Prod' is not a target",
        ),
        (
            "- {name: x, target: prod, secrets: {m.k: {age: 3}}, expect: {bounded: pass}}\n",
            "llmcc: policies/tests/p.yaml:1:43: unknown secret metadata field 'age'\n",
        ),
        ("{name: x}\n", "llmcc: policies/tests/p.yaml:1:1: a policy test file is a list of cases"),
    ],
)
def test_a_bad_test_file_is_exit_2_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tests: str, message: str
) -> None:
    root = write(tmp_path, {"policies/p.yaml": POLICY, "policies/tests/p.yaml": tests})
    code, out, err = run(capsys, root, "policy", "test")
    assert (code, out) == (2, "")
    assert err.startswith(message)


def test_a_broken_rule_is_exit_2_at_the_policies_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write(tmp_path, {"policies/p.yaml": "- name: x\n  rule: config.m.t <=\n"})
    code, _, err = run(capsys, root, "policy", "test")
    assert code == 2
    assert err.startswith("llmcc: policies/p.yaml:2:3: policy x: rule is not valid CEL: Syntax error: ")


def test_no_cases_is_not_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write(tmp_path, {})
    assert run(capsys, root, "policy", "test") == (0, "", "llmcc: policy test: no test cases in policies/tests/\n")
