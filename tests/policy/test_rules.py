"""Loading ``policies/*.yaml``: both file shapes, and every broken input is exit 2 at file:line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from compiler.errors import InputError
from compiler.policy.rules import load_policies
from compiler.project import Target
from tests.policy._support import policies_from, write_tree

RULE = """\
- name: prod-temperature-bounded
  description: Production temperature at most 1.0
  match: {environments: [prod]}
  rule: config["inference-engine"].model.temperature <= 1.0
"""


def test_a_list_of_rules_with_defaults() -> None:
    ps = policies_from(RULE)
    (p,) = ps.policies
    assert (p.name, p.severity, p.description) == (
        "prod-temperature-bounded",
        "error",
        "Production temperature at most 1.0",
    )
    assert p.origin.location() == "policies/test.yaml:1:3"
    assert p.rule == 'config["inference-engine"].model.temperature <= 1.0'
    assert p.program.modules == frozenset({"inference-engine"})
    assert p.applies(Target("prod"), {})
    assert p.applies(Target("prod", "acme"), {})
    assert not p.applies(Target("staging"), {})


def test_a_mapping_with_rules_and_waivers() -> None:
    ps = policies_from(
        """\
        rules:
          - name: always
            severity: warning
            match: {tenants: [acme], modules: [engine]}
            rule: "true"
        waivers:
          - policy: always
            targets: ["prod@*"]
            reason: migration
            owner: team@example.com
            expires: 2027-01-31
        """
    )
    (p,) = ps.policies
    assert p.severity == "warning"
    assert p.applies(Target("prod", "acme"), {"engine": 1})
    assert not p.applies(Target("prod", "acme"), {})
    assert not p.applies(Target("prod"), {"engine": 1})
    (w,) = ps.waivers
    assert w.origin.location() == "policies/test.yaml:7:5"
    assert w.expires == dt.date(2027, 1, 31)
    assert w.covers("always", Target("prod", "acme"))
    assert not w.covers("always", Target("prod"))
    assert not w.expired(dt.date(2027, 1, 31))
    assert w.expired(dt.date(2027, 2, 1))


def test_no_policies_directory_is_an_empty_set(tmp_path: Path) -> None:
    assert not load_policies(write_tree(tmp_path, {"llmcc.yaml": "project: x\n"}))


def test_files_load_in_name_order_and_tests_are_not_rules(tmp_path: Path) -> None:
    tree = write_tree(
        tmp_path,
        {
            "policies/b.yaml": '- {name: b, rule: "true"}\n',
            "policies/a.yaml": '- {name: a, rule: "true"}\n',
            "policies/README.md": "not yaml",
            "policies/tests/a.yaml": "- {name: x}\n",
        },
    )
    assert [p.name for p in load_policies(tree).policies] == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- name: x\n", "policies/test.yaml:1:3: [0].rule: Field required"),
        (
            '- {name: x, rule: "true", severity: fatal}\n',
            "policies/test.yaml:1:27: [0].severity: Input should be 'error' or 'warning'",
        ),
        ('- {name: x, rule: "true", when: prod}\n', "policies/test.yaml:1:27: [0].when: unknown field"),
        (
            '- {name: "bad name", rule: "true"}\n',
            "policies/test.yaml:1:4: [0].name: must be a name of letters, digits, . _ -",
        ),
        ("- name: x\n  rule: config.a <=\n", "policies/test.yaml:2:3: policy x: rule is not valid CEL: Syntax error:"),
        (
            "- name: x\n  rule: cfg.a == 1\n",
            "policies/test.yaml:2:3: policy x: rule uses unknown variable 'cfg' (rules see config, target, secrets)",
        ),
        (
            "- name: x\n  rule: config.a.frobnicate()\n",
            "policies/test.yaml:2:3: policy x: rule calls unknown function frobnicate()",
        ),
        ("rules: 3\n", "policies/test.yaml:1:1: rules: Input should be a valid list"),
        ("42\n", "policies/test.yaml:1:1: a policies file is a list of rules"),
        (
            'waivers: [{policy: x, reason: r, owner: o, expires: "31.1.2027"}]\n',
            "policies/test.yaml:1:44: waivers[0].expires: must be YYYY-MM-DD",
        ),
        (
            'waivers: [{policy: x, reason: r, owner: o, expires: "2027-02-30"}]\n',
            "policies/test.yaml:1:44: expires: '2027-02-30' is not a date (YYYY-MM-DD)",
        ),
    ],
)
def test_a_broken_policies_file_is_an_input_error_at_its_line(text: str, message: str) -> None:
    with pytest.raises(InputError) as e:
        policies_from(text)
    assert e.value.exit_code == 2
    assert str(e.value).startswith(message)


def test_names_are_unique_across_files_and_waivers_name_a_policy(tmp_path: Path) -> None:
    files = {"policies/a.yaml": '- {name: x, rule: "true"}\n', "policies/b.yaml": '\n- {name: x, rule: "false"}\n'}
    with pytest.raises(
        InputError, match=r"^policies/b.yaml:2:3: policy name 'x' is already used at policies/a.yaml:1:3$"
    ):
        load_policies(write_tree(tmp_path / "dup", files))
    waiver = "waivers:\n  - {policy: y, reason: r, owner: o, expires: 2027-01-01}\n"
    with pytest.raises(InputError, match=r"^policies/a.yaml:2:5: waiver of unknown policy 'y'$"):
        load_policies(write_tree(tmp_path / "w", {"policies/a.yaml": waiver}))


def test_the_example_policies_load() -> None:
    from compiler.sources.worktree import WorkTree
    from tests.conftest import REPO_ROOT

    names = [p.name for p in load_policies(WorkTree(REPO_ROOT)).policies]
    assert {
        "prod-temperature-bounded",
        "prod-gateway-routes-tls",
        "prod-api-keys-rotated",
        "prod-db-credentials-rotated",
        "no-prod-hosts-outside-prod",
        "observatory-sampling-bounds",
        "rate-limit-tier-caps",
        "prompt-templates-at-most-1mb",
        "cost-alert-thresholds-ascending",
    } <= set(names)
