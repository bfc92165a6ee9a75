"""The manifest llmcc.yaml: pydantic models, errors that name the field and line, targets."""

from __future__ import annotations

import pytest

from compiler.errors import InputError, UsageError
from compiler.project import Target, load_project, parse_target
from tests.core._repos import dedent

MANIFEST = dedent(
    """
    project: llm-platform
    environments:
      dev: {}
      staging: {}
      prod: {extends: staging}
    tenants:
      acme: {environments: [staging, prod]}
      globex: {environments: [prod]}
    """
)


def manifest_error(text: str) -> str:
    with pytest.raises(InputError) as exc:
        load_project(dedent(text).encode())
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_targets_environments_in_order_then_tenant_targets() -> None:
    project = load_project(MANIFEST.encode())
    assert project.name == "llm-platform"
    assert [t.name for t in project.targets()] == ["dev", "staging", "prod", "staging@acme", "prod@acme", "prod@globex"]


def test_select_keeps_manifest_order_and_refuses_unknown_targets() -> None:
    project = load_project(MANIFEST.encode())
    assert [t.name for t in project.select(["prod@acme", "dev"])] == ["dev", "prod@acme"]
    assert project.select(None) == project.targets()
    # every target named, backwards and twice over: each once, in manifest order
    names = [t.name for t in project.targets()][::-1] * 2
    assert project.select(names) == project.targets()
    with pytest.raises(UsageError) as exc:
        project.select(["dev@acme"])
    assert str(exc.value) == (
        "unknown target 'dev@acme' (did you mean 'prod@acme'?); "
        "llmcc.yaml defines: dev, staging, prod, staging@acme, prod@acme, prod@globex"
    )


def test_env_chain_is_root_first() -> None:
    project = load_project(
        dedent(
            """
            project: p
            environments:
              dev: {}
              qa: {extends: dev}
              staging: {extends: qa}
              prod: {extends: staging}
            """
        ).encode()
    )
    assert project.env_chain("prod") == ["dev", "qa", "staging", "prod"]
    assert project.env_chain("dev") == ["dev"]


@pytest.mark.parametrize(
    ("text", "target"),
    [("prod", Target("prod")), ("prod@acme", Target("prod", "acme")), ("a-b_1@c2", Target("a-b_1", "c2"))],
)
def test_parse_target(text: str, target: Target) -> None:
    assert parse_target(text) == target
    assert str(parse_target(text)) == text


@pytest.mark.parametrize(
    "text", ["Prod", "prod@", "@acme", "prod@Acme", "a/b", "prod@acme@x", "", "../x", "1prod", "prod\n", "prod@acme\n"]
)
def test_parse_target_refuses_bad_names(text: str) -> None:
    with pytest.raises(UsageError, match="is not a target"):
        parse_target(text)


# --- errors name the field and its line ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            """
            project: p
            environments:
              dev: {}
              prod: {extends: stagign}
            """,
            "llmcc.yaml:4:10: environments.prod.extends: unknown environment 'stagign'",
        ),
        (
            """
            project: p
            environments:
              dev: {extends: prod}
              staging: {extends: dev}
              prod: {extends: staging}
            """,
            "llmcc.yaml:3:9: environments.dev.extends: cycle dev -> prod -> staging -> dev",
        ),
        (
            """
            project: p
            environments:
              dev: {extends: dev}
            """,
            "llmcc.yaml:3:9: environments.dev.extends: cycle dev -> dev",
        ),
        (
            """
            project: p
            environments:
              dev: {}
            tenants:
              acme:
                environments: [dev, prod]
            """,
            "llmcc.yaml:6:25: tenants.acme.environments: unknown environment 'prod'",
        ),
        (
            """
            project: p
            environments:
              dev: {}
            tenants:
              acme: {environments: [dev, dev]}
            """,
            "llmcc.yaml:5:30: tenants.acme.environments: 'dev' is listed twice",
        ),
        (
            """
            project: p
            environments:
              Prod: {}
            """,
            "llmcc.yaml:3:3: environments.Prod.[key]: names must be lowercase identifiers ([a-z][a-z0-9_-]*)",
        ),
        (
            """
            project: p
            environments:
              a/b: {}
            """,
            "llmcc.yaml:3:3: environments.a/b.[key]: names must be lowercase identifiers ([a-z][a-z0-9_-]*)",
        ),
        (
            """
            project: p
            environments:
              dev: {}
            tenants:
              ../../etc: {environments: [dev]}
            """,
            "llmcc.yaml:5:3: tenants.../../etc.[key]: names must be lowercase identifiers ([a-z][a-z0-9_-]*)",
        ),
        (
            """
            project: p
            environments:
              dev: {}
              prod: {extends: Dev}
            """,
            "llmcc.yaml:4:10: environments.prod.extends: names must be lowercase identifiers ([a-z][a-z0-9_-]*)",
        ),
        (
            """
            project: My Platform
            environments:
              dev: {}
            """,
            "llmcc.yaml:1:1: project: names must be lowercase identifiers ([a-z][a-z0-9_-]*)",
        ),
        (
            """
            project: p
            environments:
              dev: {colour: red}
            """,
            "llmcc.yaml:3:9: environments.dev.colour: unknown field (expected one of: extends)",
        ),
        (
            """
            project: p
            environments:
              dev: {}
            storage:
              default: file://x
              backup: s3://y
            """,
            "llmcc.yaml:6:3: storage.backup: unknown field (expected one of: default, pointer_expiry)",
        ),
        (
            """
            project: p
            environments:
              dev: {}
            enviroments:
              prod: {}
            """,
            "llmcc.yaml:4:1: enviroments: unknown field (did you mean 'environments'?)",
        ),
        (
            """
            environments:
              dev: {}
            """,
            "llmcc.yaml:1:1: project: Field required",
        ),
        (
            """
            project: p
            environments: {}
            """,
            "llmcc.yaml:2:1: environments: Dictionary should have at least 1 item after validation, not 0",
        ),
        (
            """
            project: p
            environments:
              base: {}
            """,
            "llmcc.yaml:3:3: 'base' is a layer applied to every target, not an environment",
        ),
        (
            """
            project: p
            environments:
              dev: {}
            keys:
              targets:
                "*": {provider: gpg}
            """,
            "llmcc.yaml:6:11: keys.targets.*.provider: Input should be 'age', 'awskms' or 'vault-transit'",
        ),
        (
            """
            project: p
            environments:
              dev: {}
            keys:
              targets:
                prd@acme: {provider: age}
            """,
            "llmcc.yaml:6:5: keys.targets: 'prd@acme' names no target (use *, ENV, *@TENANT or ENV@TENANT)",
        ),
        (
            """
            - not a mapping
            """,
            "llmcc.yaml:1:1: llmcc.yaml must be a mapping",
        ),
        (
            """
            project: p
            environments:
              dev: {}
              dev: {}
            """,
            "llmcc.yaml:4:3: duplicate key 'dev'",
        ),
    ],
)
def test_manifest_errors_name_field_and_line(text: str, message: str) -> None:
    assert manifest_error(text) == message


def test_more_errors_are_counted() -> None:
    message = manifest_error(
        """
        project: p
        environments:
          dev: {colour: red, size: 3}
        """
    )
    assert message == "llmcc.yaml:3:9: environments.dev.colour: unknown field (expected one of: extends) (and 1 more)"


# --- key-encryption keys: the most specific match wins ---------------------------------------


KEYS = dedent(
    """
    project: p
    environments:
      dev: {}
      staging: {}
      prod: {extends: staging}
    tenants:
      acme: {environments: [staging, prod]}
      globex: {environments: [prod]}
    keys:
      targets:
        "*": {provider: age, recipients: [age1star]}
        prod: {provider: awskms, key_id: "arn:prod"}
        "*@acme": {provider: age, recipients: [age1acme]}
        prod@acme: {provider: vault-transit, key_id: prod-acme}
    """
)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (Target("dev"), ("age", "age1star")),
        (Target("staging"), ("age", "age1star")),
        (Target("prod"), ("awskms", "arn:prod")),
        (Target("prod", "globex"), ("awskms", "arn:prod")),  # the environment covers its tenant targets
        (Target("staging", "acme"), ("age", "age1acme")),
        (Target("prod", "acme"), ("vault-transit", "prod-acme")),
    ],
)
def test_key_spec_most_specific_match_wins(target: Target, expected: tuple[str, str]) -> None:
    spec = load_project(KEYS.encode()).key_spec(target)
    assert spec is not None
    assert (spec.provider, spec.key_id or spec.recipients[0]) == expected


def test_key_spec_without_a_match_is_none() -> None:
    assert load_project(MANIFEST.encode()).key_spec(Target("prod", "acme")) is None


def test_defaults() -> None:
    project = load_project(MANIFEST.encode())
    m = project.manifest
    assert m.storage.default == "file://.llmcc/store"
    assert m.signing.trusted == []
    assert m.keys.compiler is None
    assert project.document.path == "llmcc.yaml"
