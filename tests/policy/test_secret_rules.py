"""Rules that read a secret field (issue 10 §4): the real value with the identity, a refusal without.

Every case starts from ``llmcc init``, adds a ``vault`` module whose
``admin_password`` is ``x-secret`` and sets it in the SOPS file with the real
``sops``.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.policy.reads import ANY, INSIDE, config_reads, secrets_read
from compiler.secrets.sops import encrypt_sops
from tests.conftest import init_repo
from tests.secrets._secrets_support import new_canary

pytestmark = pytest.mark.usefixtures("issue6_commands")

VENDOR_DEFAULT = "vendor-default-passw0rd"
SCHEMA = {
    "type": "object",
    "properties": {"admin_password": {"type": "string", "x-secret": True}, "enabled": {"type": "boolean"}},
}


def vault_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, password: str, rules: str) -> tuple[Path, Path]:
    """An ``llmcc init`` repository with ``vault.admin_password`` set to ``password``; returns (repo, identity)."""
    for name in ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    dest = tmp_path / "conf"
    assert main(["init", str(dest)]) == 0
    identity = tmp_path / "config-home/llmcc/keys/conf/age.key"
    (dest / "schemas/vault.schema.json").write_text(json.dumps(SCHEMA))
    (dest / "templates/vault.yaml").write_text("enabled: true\n")
    plain = f"modules:\n  assistant:\n    api_key: {new_canary()}\n  vault:\n    admin_password: {password}\n"
    sealed = encrypt_sops(plain.encode(), path="environments/prod.secrets.sops.yaml", cwd=dest)
    (dest / "environments/prod.secrets.sops.yaml").write_bytes(sealed)
    (dest / "policies/vault.yaml").write_text(textwrap.dedent(rules))
    init_repo(dest)
    return dest, identity


def run(capsys: pytest.CaptureFixture[str], repo: Path, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()  # what llmcc init printed
    code = main(["-C", str(repo), "validate", "--target", "prod", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


NOT_DEFAULT = f"""\
- name: vault-password-not-default
  rule: config.vault.admin_password != "{VENDOR_DEFAULT}"
"""


def test_a_rule_on_a_secret_judges_the_real_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, identity = vault_repo(tmp_path, monkeypatch, VENDOR_DEFAULT, NOT_DEFAULT)
    code, _, err = run(capsys, repo, "--identity", str(identity))
    assert code == 1  # before: exit 0, the rule compared "<secret>" with the vendor default
    assert (
        "policies/vault.yaml:1:3: policy vault-password-not-default failed: "
        f'config.vault.admin_password != "{VENDOR_DEFAULT}" is false '
        "(values not shown: the rule reads secret vault.admin_password)"
    ) in err


def test_a_rule_on_a_secret_passes_on_a_good_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, identity = vault_repo(tmp_path, monkeypatch, new_canary(), NOT_DEFAULT)
    assert run(capsys, repo, "--identity", str(identity))[0] == 0


LENGTH = """\
- name: vault-password-long
  rule: size(config.vault.admin_password) >= 16
- name: vault-password-very-long
  severity: warning
  rule: size(config.vault.admin_password) >= 64
"""


def test_the_length_of_a_secret_is_its_own_and_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    password = new_canary()  # 43 characters
    repo, identity = vault_repo(tmp_path, monkeypatch, password, LENGTH)
    code, out, err = run(capsys, repo, "--identity", str(identity), "--format", "json")
    assert code == 0  # before: exit 1, "is 8" (the length of "<secret>")
    (finding,) = json.loads(out)["diagnostics"]
    assert finding["rule"] == "vault-password-very-long"
    assert finding["message"] == (
        "policy vault-password-very-long failed: size(config.vault.admin_password) >= 64 is false "
        "(values not shown: the rule reads secret vault.admin_password)"
    )
    assert "43" not in out + err
    assert password not in out + err


def test_without_the_identity_a_rule_on_a_secret_refuses_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _ = vault_repo(tmp_path, monkeypatch, VENDOR_DEFAULT, NOT_DEFAULT)
    code, _, err = run(capsys, repo)
    assert code == 2
    assert err.splitlines()[0] == (
        "llmcc: policies/vault.yaml:1:3: policy vault-password-not-default reads secret vault.admin_password: "
        "evaluating it needs the compiler identity (set SOPS_AGE_KEY_FILE or pass --identity FILE)"
    )


SHAPE_ONLY = """\
- name: vault-password-set
  rule: has(config.vault.admin_password) && config.vault.enabled
"""


def test_a_rule_that_reads_no_secret_value_runs_without_the_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _ = vault_repo(tmp_path, monkeypatch, VENDOR_DEFAULT, SHAPE_ONLY)
    assert run(capsys, repo)[0] == 0


QUOTING = """\
- name: vault-password-numeric
  rule: int(config.vault.admin_password) > 0
- name: vault-password-char
  rule: config.vault.admin_password.charAt(100) == "x"
- name: vault-password-as-key
  rule: config.vault[config.vault.admin_password] == 1
"""


def test_errors_of_a_rule_on_a_secret_quote_no_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    password = new_canary()
    repo, identity = vault_repo(tmp_path, monkeypatch, password, QUOTING)
    capfd.readouterr()
    code = main(["-C", str(repo), "validate", "--target", "prod", "--identity", str(identity)])
    out, err = capfd.readouterr()
    assert code == 1
    for name in ("numeric", "char", "as-key"):
        assert (
            f"policy vault-password-{name} could not be evaluated: the rule cannot be evaluated "
            "(values not shown: the rule reads secret vault.admin_password)"
        ) in err
    # The library prints a failing function's exception to stderr; guarded functions never raise.
    assert "Python function" not in err
    assert password not in out + err


@pytest.mark.parametrize(
    ("rule", "reads_secret"),
    [
        ('config.vault.admin_password != "x"', True),
        ('config["vault"]["admin_password"] == "x"', True),
        ("size(config.vault.admin_password) >= 16", True),
        ("has(config.vault.admin_password)", False),
        ("config.vault.enabled", False),
        ('config.vault.all(k, k != "x")', True),  # iterating a map: the variable may be any value below
        ('config.vault.exists(k, config.vault[k] == "x")', True),
        ("size(config.vault) > 1", True),  # a value used whole reads everything below it
        ("config.vault == {}", True),
        ('sets.contains([config.vault], [{"admin_password": "x"}])', True),  # passed whole to a function
        ('config.vault.filter(k, true)[0] == "x"', True),
        ('(true ? config.vault : {}).admin_password == "x"', True),
        ('config.vault.map(k, k).exists(v, v == "x")', True),
        ('[config.vault.admin_password][0] == "x"', True),
        ('config.vault[?"admin_password"].orValue("") == "x"', True),
        ('config.vault["admin\\x5fpassword"] == "x"', True),  # an escaped key: any key
        ("config.vault.enabled && secrets.all(k, secrets[k].age_days < 90)", False),
        ("config == {}", True),
        ("config.all(m, has(config[m].x))", True),  # a module's name is a key, but fail closed
        ("has(config.vault.admin_password.x)", True),  # inside a secret: masked, it has no fields
        ("has(config.assistant.x)", False),
    ],
)
def test_which_rules_read_a_secret(rule: str, reads_secret: bool) -> None:
    secrets = {"vault": [("admin_password",)], "assistant": [("api_key",)]}
    assert bool(secrets_read(config_reads(rule), secrets)) is reads_secret


def test_reads_are_paths_with_wildcards() -> None:
    assert config_reads('config["data-pipeline"].sources.all(s, s.host != "")') == frozenset(
        {("data-pipeline", "sources", ANY, "host")}
    )
    assert config_reads("has(config.a.b)") == frozenset({("a", INSIDE)})  # a presence test
    assert config_reads("(((") == frozenset({()})  # cannot parse: reads everything


def test_string_keys_in_a_rule() -> None:
    from compiler.policy.reads import unquote

    assert repr(ANY) == "*"
    assert unquote('"a.b"') == "a.b"
    assert unquote("'''a'''") == "a"
    assert unquote(r'r"a\b"') == r"a\b"
    assert unquote(r'"a\x62"') is ANY
    assert unquote("a") is ANY


OBJECT_SCHEMA = {
    "type": "object",
    "properties": {"pin": {"type": "integer", "x-secret": True}, "creds": {"type": "object", "x-secret": True}},
}
ON_OBJECTS = """\
- name: creds-have-a-user
  rule: has(config.vault.creds.user)
- name: pin-range
  rule: lists.range(config.vault.pin).size() > 0
"""


def test_presence_inside_a_secret_and_a_cost_from_a_secret_show_no_placeholder_nor_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, identity = vault_repo(tmp_path, monkeypatch, new_canary(), ON_OBJECTS)
    (repo / "schemas/vault.schema.json").write_text(json.dumps(OBJECT_SCHEMA))
    user, pin = new_canary(), 987654321
    plain = f"modules:\n  vault:\n    pin: {pin}\n    creds: {{user: {user}}}\n"
    sops_file = repo / "environments/prod.secrets.sops.yaml"
    sops_file.write_bytes(encrypt_sops(plain.encode(), path="environments/prod.secrets.sops.yaml", cwd=repo))
    code, _, err = run(capsys, repo)
    # Before: has() ran on the "<secret>" stand-in without the identity ("no such overload", exit 1).
    assert code == 2
    assert "policy creds-have-a-user reads secret vault.creds: evaluating it needs the compiler identity" in err
    code, out, err = run(capsys, repo, "--identity", str(identity))
    assert code == 2
    # Before: "could take 987,654,329 steps": the pin, give or take the rule's own steps.
    assert err.startswith(
        "llmcc: policies/vault.yaml:3:3: policy pin-range: evaluating the rule could take over 2,000,000 steps "
        "for this target, over the limit of 2,000,000 (see policies/README.md; values not shown: the rule reads "
        "secret vault.pin)"
    )
    assert "987" not in (out + err).replace(",", "")
    (repo / "policies/vault.yaml").write_text(ON_OBJECTS.split("- name: pin-range")[0])
    assert run(capsys, repo, "--identity", str(identity))[0] == 0  # the real map has a user
