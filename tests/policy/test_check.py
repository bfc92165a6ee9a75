"""Policies on compiled targets of the example repository: secret metadata, the policy clock, the example rules."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from compiler.compile.pipeline import compile_target
from compiler.compile.repository import Repository
from compiler.policy import PolicyCheck, policy_time
from compiler.policy.secretmeta import period_days, rotate_every, secret_entry
from compiler.project import Target
from compiler.secrets.sources import SopsOpener
from compiler.sources.base import SourceInfo
from compiler.sources.worktree import WorkTree
from compiler.validate.schema import ModuleSchema
from tests.conftest import GitRepo

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def open_repo(root: Path) -> Repository:
    return Repository(WorkTree(root), open_secrets=SopsOpener(None))


def test_the_example_repository_passes_all_its_policies(example_repo: GitRepo) -> None:
    repo = open_repo(example_repo.path)
    check = PolicyCheck(repo)
    assert len(check.policies.policies) >= 9
    for target in repo.project.targets():
        result = compile_target(repo, target)
        assert result.diagnostics == []
        assert [d.format() for d in check.check(result, NOW)] == [], target


def test_secret_metadata_comes_from_the_sidecar_else_the_sops_file(example_repo: GitRepo) -> None:
    sidecar = example_repo.path / "environments/prod.secrets.rotation.yaml"
    sidecar.write_text('rotated_at:\n  "inference-engine.providers.openai.api_key": "2026-07-01T00:00:00Z"\n')
    repo = open_repo(example_repo.path)
    result = compile_target(repo, Target("prod"))
    meta = PolicyCheck(repo).secret_metadata(result, NOW)
    assert meta["inference-engine.providers.openai.api_key"] == {
        "module": "inference-engine",
        "path": "providers.openai.api_key",
        "file": "environments/prod.secrets.sops.yaml",
        "rotated_at": "2026-07-01T00:00:00Z",
        "rotated_at_source": "rotation",
        "rotate_every": "90d",
        "rotate_every_days": 90,
        "age_days": 153,
        "placeholder": None,  # no identity: the value is not at hand
    }
    db = meta["data-pipeline.db.password"]
    assert isinstance(db, dict)
    assert (db["rotated_at_source"], db["rotate_every_days"]) == ("sops", 30)
    assert db["rotated_at"] == "2026-11-22T14:08:48Z"
    assert all("ENC[" not in str(v) for v in meta.values())  # metadata only


def test_an_old_api_key_fails_its_policy_naming_the_key(example_repo: GitRepo) -> None:
    sidecar = example_repo.path / "environments/prod.secrets.rotation.yaml"
    sidecar.write_text('rotated_at:\n  "inference-engine.providers.openai.api_key": "2026-07-01T00:00:00Z"\n')
    repo = open_repo(example_repo.path)
    diags = PolicyCheck(repo).check(compile_target(repo, Target("prod", "globex")), NOW)
    assert [d.format().splitlines()[0] for d in diags if d.rule == "prod-api-keys-rotated"] == [
        "policies/production.yaml:20:3: warning: policy prod-api-keys-rotated failed: "
        'secrets["inference-engine.providers.openai.api_key"].age_days is 153, expected <= 90 '
        "(target prod@globex)"
    ]


def test_a_policy_violation_in_a_layer_is_reported_at_the_policy(example_repo: GitRepo) -> None:
    prod = example_repo.path / "environments/prod.yaml"
    prod.write_text(prod.read_text().replace("  temperature: 0.3\n", "  temperature: 1.4\n"))
    repo = open_repo(example_repo.path)
    check = PolicyCheck(repo)
    failing = {t.name: [d.rule for d in check.check(compile_target(repo, t), NOW)] for t in repo.project.targets()}
    assert failing["prod"] == ["prod-temperature-bounded"]
    assert failing["prod@globex"] == ["prod-temperature-bounded"]
    assert failing["prod@acme"] == []  # acme's own layer sets 0.2
    assert failing["staging"] == []


def test_policy_time_is_the_commit_time_of_a_clean_tree() -> None:
    wall = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    info = SourceInfo(commit="c", author="a", committed_at="2026-01-02T03:04:05+01:00", message="m", dirty=False)
    assert policy_time(info, wall=wall) == dt.datetime(2026, 1, 2, 2, 4, 5, tzinfo=dt.UTC)
    dirty = SourceInfo(commit="c", author="a", committed_at="2026-01-02T03:04:05+01:00", message="m", dirty=True)
    assert policy_time(dirty, wall=wall) == wall
    assert policy_time(None, wall=wall) == wall


@pytest.mark.parametrize(
    ("text", "days"),
    [("90d", 90), ("2w", 14), (" 30 d", 30), ("3m", None), ("d", None), ("\uff19\uff10d", None)],
)
def test_rotation_periods(text: str, days: int | None) -> None:
    assert period_days(text) == days


def test_rotate_every_follows_refs_and_combinators() -> None:
    schema = {
        "$defs": {"key": {"type": "string", "x-secret": True, "x-rotate-every": "30d"}},
        "properties": {
            "a": {"properties": {"k": {"$ref": "#/$defs/key"}}},
            "b": {"additionalProperties": {"allOf": [{"x-secret": True, "x-rotate-every": "7d"}]}},
            "c": {"items": {"x-secret": True}},
        },
    }
    ms = ModuleSchema.load("m", "schemas/m.schema.json", json.dumps(schema).encode())
    assert rotate_every(ms, ("a", "k")) == "30d"
    assert rotate_every(ms, ("b", "anything")) == "7d"
    assert rotate_every(ms, ("c", 3)) is None
    assert rotate_every(ms, ("zzz",)) is None


def test_check_target_and_an_empty_policy_set(example_repo: GitRepo) -> None:
    from compiler.policy import check_target, evaluate_policies
    from compiler.policy.rules import PolicySet

    repo = open_repo(example_repo.path)
    result = compile_target(repo, Target("dev"))
    assert check_target(repo, result, NOW) == []
    assert evaluate_policies(PolicySet(), result, {}, now=NOW) == []
    assert PolicyCheck(repo, PolicySet()).check(result, NOW) == []


def test_a_policy_finding_names_the_line_that_set_the_value(example_repo: GitRepo) -> None:
    prod = example_repo.path / "environments/prod.yaml"
    prod.write_text(prod.read_text().replace("  temperature: 0.3\n", "  temperature: 1.4\n"))
    acme = example_repo.path / "environments/prod/tenants/acme.yaml"
    repo = open_repo(example_repo.path)
    [diag] = PolicyCheck(repo).check(compile_target(repo, Target("prod")), NOW)
    assert diag.notes[0] == "environments/prod.yaml:7:3: the value comes from variable 'temperature' set here"
    # a value a layer sets directly under modules: that line
    acme.write_text(acme.read_text() + "  inference-engine:\n    model:\n      temperature: 1.3\n")
    repo = open_repo(example_repo.path)
    [diag] = PolicyCheck(repo).check(compile_target(repo, Target("prod", "acme")), NOW)
    assert diag.notes[0] == "environments/prod/tenants/acme.yaml:20:7: the value is set here (layer prod/tenants/acme)"


@pytest.mark.parametrize(
    ("path", "key", "shown"),
    [
        (("db", "password"), "m.db.password", "db.password"),
        (("a.b",), "m['a.b']", "['a.b']"),
        (("404", 0), "m['404'][0]", "['404'][0]"),
        (("keys", "it's"), "m.keys['it\\'s']", "keys['it\\'s']"),
    ],
)
def test_secret_entry_path_is_the_printed_path_without_the_module(
    path: tuple[str | int, ...], key: str, shown: str
) -> None:
    """``secrets[k].path`` of a top-level key that needs quotes lost its first character (``'a.b']``)."""
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    got = secret_entry("m", path, file=None, rotated_at=None, source=None, every=None, now=now)
    assert (got[0], got[1]["path"]) == (key, shown)
