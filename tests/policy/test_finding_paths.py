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


def _no_evaluation(expression: str, bindings: object) -> object:
    return {'"a\\x2eb"': "a.b"}[expression]  # only escaped literals are evaluated


@pytest.mark.parametrize(
    ("text", "paths", "subject"),
    [
        ('config["m"].a[0]', {}, ("m", "a", 0)),
        ("size(config.m.items) > 3", {}, ("m", "items")),
        ("[1, config.m.x]", {}, ("m", "x")),
        ("{'k': config.m.y}", {}, ("m", "y")),
        ("v.port", {"v": ("gw", "routes", 1)}, ("gw", "routes", 1, "port")),
        ("v.port", {"v": None}, None),  # bound to a map key or a computed item: not one value of config
        ("config.all(config, config > 1)", {"config": None}, None),  # a variable named config is not config
        ('config.m["a\\x2eb"]', {}, ("m", "a.b")),
        ("config.m[k].x", {}, ("m",)),  # a computed key ends the chain
        ("config.m[true]", {}, ("m",)),
        ("config.m[1.5]", {}, ("m",)),
        ("1 < 2", {}, None),
        ("config", {}, None),
        ("(", {}, None),
    ],
)
def test_the_subject_is_read_from_the_syntax_tree(text: str, paths: dict, subject: tuple | None) -> None:
    from compiler.policy.explain import subject_of

    assert subject_of(text, paths, _no_evaluation) == subject


def test_a_rule_that_cannot_be_explained_names_its_first_selection() -> None:
    from compiler.policy.explain import rule_subject

    assert rule_subject("config.m.a || config.m.b", _no_evaluation) == ("m", "a")

    def failing(expression: str, bindings: object) -> object:
        raise ValueError(expression)

    assert rule_subject('config.m["\\x41"]', failing) is None
