"""A policy finding carries the path of the value it judged as data (issue 14 §5).

The line that set the value used to be found by a regex over the finding's
words: it took the first ``config...`` it met (a waiver's reason comes first),
gave up on a key with a CEL escape, and found nothing for a list of scalars,
whose items are named by their values.
"""

from __future__ import annotations

import pytest

from compiler.cli import main
from tests.audit.test_paths import repo
from tests.conftest import GitRepo
from tests.diff._support import write

__all__ = ["repo"]


def _validate(repo: GitRepo, capsys: pytest.CaptureFixture[str], policies: str) -> str:
    write(repo, {"policies/p.yaml": policies})
    capsys.readouterr()
    main(["-C", str(repo.path), "validate", "--target", "prod"])
    return capsys.readouterr().err


def test_a_waiver_reason_naming_another_value_does_not_move_the_note(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    policies = """\
rules:
  - name: pages
    rule: config.engine.error_pages["404"] == "/"
waivers:
  - policy: pages
    reason: until config.engine.labels is renamed
    owner: team@example.com
    expires: 2099-12-31
"""
    err = _validate(repo, capsys, policies)
    assert "policy pages failed (waived until 2099-12-31" in err
    assert "    environments/prod.yaml:10:7: the value is set here (layer prod)\n" in err  # before: line 3, labels


def test_a_key_with_a_cel_escape_is_located(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    err = _validate(repo, capsys, '- name: greeting\n  rule: config.engine.labels["say \\x22hi\\x22"] == "bye"\n')
    assert "policy greeting failed: " in err
    assert "    environments/prod.yaml:7:7: the value is set here (layer prod)\n" in err  # before: no note


def test_an_item_of_a_list_of_scalars_is_located(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    err = _validate(repo, capsys, "- name: low\n  rule: config.engine.ports.all(p, p < 100)\n")
    assert "policy low failed: 443, expected < 100" in err
    assert "    environments/prod.yaml:11:" in err  # before: no note (the item is named by its value)
