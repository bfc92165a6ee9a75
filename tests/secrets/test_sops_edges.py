"""SOPS edges that leak or change values (issue 9 §5), with the real sops binary and real age keys.

1. A plaintext value in a SOPS file makes sops fail with an error that quotes it: llmcc finds it
   first (file:line, key path) and never relays sops's own words, in every command that runs sops.
2. sops reads plaintext with YAML 1.1 habits: ``secrets encrypt`` and ``secrets edit`` refuse an
   unquoted value the two readers would read differently.
3. A SOPS file re-encrypted for other recipients than its creation rule names is an error at the
   file, and ``diff`` shows its secret as changed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.errors import SecretsError
from compiler.secrets.sops import PLAINTEXT_IN_SOPS, run_sops, sops_binary
from tests.conftest import DEMO_IDENTITY, GitRepo
from tests.secrets._secrets_support import new_canary

DEV = "environments/dev.secrets.sops.yaml"
ACME = "environments/tenants/acme.secrets.sops.yaml"
DEMO_RECIPIENT = (Path(__file__).resolve().parents[2] / "keys" / "demo.agekey.pub").read_text().strip()


def llmcc(root: Path, *argv: str) -> int:
    return main(["-C", str(root), *argv])


def sops(root: Path, *argv: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {"PATH": os.environ.get("PATH", ""), "SOPS_AGE_KEY_FILE": str(DEMO_IDENTITY), "HOME": "/nonexistent"}
    return subprocess.run(
        [sops_binary(), "--disable-version-check", *argv], input=stdin, capture_output=True, cwd=root, env=env
    )


def by_hand(root: Path, rel: str, key: str, text: str) -> str:
    """Replace the ciphertext of the first ``key:`` in ``rel`` with ``text``; returns ``rel:line:col``."""
    lines = (root / rel).read_text().splitlines(keepends=True)
    n = next(i for i, line in enumerate(lines) if line.lstrip().startswith(f"{key}: ENC["))
    indent = lines[n].index(key)
    lines[n] = f"{' ' * indent}{key}: {text}\n"
    (root / rel).write_text("".join(lines))
    return f"{rel}:{n + 1}:{indent + 1}"


@pytest.fixture
def example(example_repo: GitRepo, demo_identity: Path) -> Iterator[GitRepo]:
    yield example_repo
    for file in (example_repo.path / "environments").rglob("*.yaml"):
        if "canary-" in file.read_text():
            file.unlink()  # a plaintext value put there by hand: not left for the canary sweep


# --- 1. sops's stderr quotes plaintext: never relayed ---------------------------------------------------


@pytest.mark.parametrize("kind", ["string", "number", "bool", "list"])
def test_a_plaintext_value_in_a_sops_file_is_named_never_printed(
    example: GitRepo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """sops exits 25 quoting a string, panics (exit 2) on a number or a boolean: llmcc names the key."""
    root = example.path
    canary = new_canary()
    text = {"string": canary, "number": "12345", "bool": "true", "list": f"[{canary}]"}[kind]
    where = by_hand(root, DEV, "password", text)
    path = "$.modules.data-pipeline.db.password" + ("[0]" if kind == "list" else "")
    for argv in (
        ["compile", "-t", "dev"],
        ["validate", "-t", "dev"],
        ["secrets", "edit", DEV],
        ["secrets", "rotate", "data-pipeline.db.password", "--target", "dev", "--generate", "32"],
    ):
        assert llmcc(root, *argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(f"llmcc: {where if kind != 'list' else where.rsplit(':', 1)[0]}"), err
        assert f"{path}: {PLAINTEXT_IN_SOPS} {DEV}" in err
        assert canary not in err
        assert "12345" not in err
        assert "panic" not in err
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    assert llmcc(root, "validate", "-t", "dev") == 1  # no identity needed to see it
    err = capsys.readouterr().err
    assert f"data-pipeline $.{path.removeprefix('$.modules.data-pipeline.')}: {PLAINTEXT_IN_SOPS}" in err
    assert canary not in err


def test_mac_only_encrypted_keeps_a_plaintext_value_that_sops_then_quotes(
    example: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """With ``mac_only_encrypted`` a value sops does not encrypt can be added; one it decrypts cannot."""
    root = example.path
    (root / ".sops.yaml").write_text(
        "creation_rules:\n"
        f"  - age: {DEMO_RECIPIENT}\n    encrypted_regex: ^(password|api_key)$\n    mac_only_encrypted: true\n"
    )
    plain = sops(root, "decrypt", DEV)
    assert plain.returncode == 0
    proc = sops(root, "encrypt", "--filename-override", DEV, "--input-type", "yaml", "--output-type", "yaml",
                "/dev/stdin", stdin=plain.stdout)  # fmt: skip
    assert proc.returncode == 0
    canary = new_canary()
    text = proc.stdout.decode().replace("    data-pipeline:\n", f"    data-pipeline:\n        api_key: {canary}\n", 1)
    (root / DEV).write_text(text.replace("        db:\n", "        db:\n            username: app\n", 1))
    assert llmcc(root, "compile", "-t", "dev") == 2
    err = capsys.readouterr().err
    assert f"$.modules.data-pipeline.api_key: {PLAINTEXT_IN_SOPS}" in err
    assert canary not in err


def test_run_sops_never_relays_its_stderr(example: GitRepo) -> None:
    """Past the pre-check too (a file fed straight to sops): our words, the exit code's class."""
    root = example.path
    canary = new_canary()
    by_hand(root, DEV, "password", canary)
    env = {"PATH": os.environ.get("PATH", ""), "SOPS_AGE_KEY_FILE": str(DEMO_IDENTITY)}
    with pytest.raises(SecretsError) as info:
        run_sops(["decrypt", str(root / DEV)], stdin=None, env=env, path=DEV, action="decrypt")
    assert str(info.value) == (
        f"{DEV}: sops could not decrypt: a value is not sops ciphertext or does not decrypt (changed by hand?)"
    )
    assert canary not in str(info.value)


def test_a_sops_file_whose_regex_python_cannot_read_is_left_to_sops(example: GitRepo) -> None:
    from compiler.secrets.sopsfile import plaintext_leaves

    assert plaintext_leaves({"a": "x", "sops": {"encrypted_regex": "(?<=x"}}) is None
    assert plaintext_leaves(
        {"a": "x", "b": {"c_unencrypted": "y"}, "sops": {"unencrypted_suffix": "_unencrypted"}}
    ) == [("a",)]
    assert plaintext_leaves({"a": "x", "b_enc": ["y"], "sops": {"encrypted_suffix": "_enc"}}) == [("b_enc", 0)]
    assert plaintext_leaves({"a": "x", "skip": "y", "sops": {"unencrypted_regex": "^skip$"}}) == [("a",)]
    assert plaintext_leaves({"a": "", "b": None, "sops": {}}) == []


# --- 2. YAML 1.1 (sops) vs YAML 1.2 (llmcc) --------------------------------------------------------


AMBIGUOUS = {
    "mode: 0755": "sops reads this unquoted value as an octal integer, llmcc (YAML 1.2) as a decimal integer",
    "pin: 012": "sops reads this unquoted value as an octal integer, llmcc (YAML 1.2) as a decimal integer",
    "count: 1_000": "sops reads this unquoted value as an integer (underscores dropped), llmcc (YAML 1.2) as a string",
    "password: 2024-01-01": "sops reads this unquoted value as a timestamp, llmcc (YAML 1.2) as a string",
    "flag: yes": "YAML 1.1 (older sops) reads this unquoted value as a boolean, llmcc (YAML 1.2) as a string",
    "when: 1:30": "YAML 1.1 (older sops) reads this unquoted value as a base-60 integer, llmcc (YAML 1.2) as a string",
    "mask: 0b101": "sops reads this unquoted value as a binary integer, llmcc (YAML 1.2) as a string",
    "id: 12345678901234567890": "sops reads this unquoted value as an integer beyond 64 bits (sops cannot encrypt it), "
    "llmcc (YAML 1.2) as a decimal integer",
}


@pytest.mark.parametrize("line", sorted(AMBIGUOUS))
def test_encrypt_refuses_a_value_sops_reads_otherwise(
    example: GitRepo, capsys: pytest.CaptureFixture[str], line: str
) -> None:
    root = example.path
    plain = root / "environments/staging/extra.secrets.yaml"
    plain.parent.mkdir(parents=True, exist_ok=True)
    plain.write_text(f"modules:\n  data-pipeline:\n    {line}\n")
    assert llmcc(root, "secrets", "encrypt", "environments/staging/extra.secrets.yaml") == 1
    err = capsys.readouterr().err
    col = len("    ") + len(line.split(": ")[0]) + 3
    assert f"environments/staging/extra.secrets.yaml:3:{col}: {AMBIGUOUS[line]}: quote it" in err
    assert "nothing was encrypted" in err
    assert plain.exists()
    assert not (root / "environments/staging/extra.secrets.sops.yaml").exists()
    # quoted, it means the same to both, and is kept exactly
    key, value = line.split(": ")
    plain.write_text(f'modules:\n  data-pipeline:\n    {key}: "{value}"\n')
    assert llmcc(root, "secrets", "encrypt", "environments/staging/extra.secrets.yaml") == 0
    opened = sops(root, "decrypt", "--output-type", "json", "environments/staging/extra.secrets.sops.yaml")
    assert json.loads(opened.stdout) == {"modules": {"data-pipeline": {key: value}}}


def test_encrypt_refuses_tags_sops_drops(example: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    root = example.path
    (root / "environments/x.secrets.sops.yaml").write_text('modules:\n  a: !override {k: "v"}\n  c: !!str 0755\n')
    assert llmcc(root, "secrets", "encrypt", "environments/x.secrets.sops.yaml") == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (
        "environments/x.secrets.sops.yaml:2:6: sops drops or converts the tag !override: a SOPS file holds plain values"
    )
    assert len(err) == 2  # !!str is a core tag: sops and llmcc both read a string
    # llmcc's loader refuses !!binary itself (exit 2)
    (root / "environments/x.secrets.sops.yaml").write_text("modules:\n  b: !!binary aGk=\n")
    assert llmcc(root, "secrets", "encrypt", "environments/x.secrets.sops.yaml") == 2


def test_encrypt_refuses_tagged_and_dotted_numbers_sops_reads_otherwise(
    example: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """``! 0755`` (llmcc: a string), ``!!int "0755"`` (llmcc: 755) and ``.1_0`` reached pull as 493, 493, 0.1."""
    root = example.path
    rel = "environments/x.secrets.sops.yaml"
    (root / rel).write_text('modules:\n  m:\n    a: ! 0755\n    b: !!int "0755"\n    c: .1_0\n    d: ! "0755"\n')
    assert llmcc(root, "secrets", "encrypt", rel) == 1
    err = capsys.readouterr().err
    assert f"{rel}:3:8: sops ignores the tag ! and reads this value as an octal integer" in err
    assert f"{rel}:4:8: with the tag !!int, sops reads this value as an octal integer" in err
    assert f"{rel}:5:8: sops reads this unquoted value as a float, llmcc (YAML 1.2) as a string: quote it" in err
    assert "3 values would change meaning" in err


def editor(tmp_path: Path, new_line: str) -> str:
    """An editor that adds ``new_line`` under ``db:`` in the decrypted file."""
    script = tmp_path / "editor.py"
    script.write_text(
        f"#!{sys.executable}\nimport sys\npath = sys.argv[-1]\ntext = open(path).read()\n"
        f"open(path, 'w').write(text.replace('        db:\\n', '        db:\\n' + {new_line!r} + '\\n', 1))\n"
    )
    script.chmod(0o755)
    return str(script)


def test_edit_refuses_a_value_sops_reads_otherwise(
    example: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = example.path
    before = (root / DEV).read_bytes()
    monkeypatch.setenv("EDITOR", editor(tmp_path, "            pin: 2024-01-01"))
    assert llmcc(root, "secrets", "edit", DEV) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{DEV}:10:18: sops reads this unquoted value as a timestamp, llmcc (YAML 1.2) as a string: quote it",
        f"llmcc: {DEV}: not saved: 1 problem in the edited text (lines of the decrypted text)",
    ]
    assert (root / DEV).read_bytes() == before
    monkeypatch.setenv("EDITOR", editor(tmp_path, '            pin: "2024-01-01"'))
    assert llmcc(root, "secrets", "edit", DEV) == 0
    opened = json.loads(sops(root, "decrypt", "--output-type", "json", DEV).stdout)
    assert opened["modules"]["data-pipeline"]["db"]["pin"] == "2024-01-01"


def test_edit_that_breaks_the_yaml_ends_instead_of_waiting_for_a_key(
    example: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """sops loops on "press a key to return to the editor" while stdin is not a terminal: never reached."""
    root = example.path
    before = (root / DEV).read_bytes()
    monkeypatch.setenv("SOPS_EDITOR", editor(tmp_path, "            pin: [unclosed"))
    monkeypatch.setenv("EDITOR", "/nonexistent/editor")  # SOPS_EDITOR wins, as in sops
    assert llmcc(root, "secrets", "edit", DEV) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{DEV}:11:21: invalid YAML: ")
    assert (root / DEV).read_bytes() == before


def test_edit_with_a_failing_editor_saves_nothing(
    example: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = example.path
    before = (root / DEV).read_bytes()
    monkeypatch.setenv("EDITOR", "false")
    assert llmcc(root, "secrets", "edit", DEV) == 2
    err = capsys.readouterr().err
    assert err == f"llmcc: {DEV}: sops could not edit: the editor failed or was not found; nothing was saved\n"
    assert (root / DEV).read_bytes() == before


# --- 3. recipients must match the creation rule ------------------------------------------------------


def test_a_file_re_encrypted_for_the_compiler_only_is_refused_and_diff_shows_it(
    example: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """Anyone holding the compiler's public recipient can write acme's secrets: visible twice."""
    root = example.path
    assert llmcc(root, "validate") == 0
    capsys.readouterr()
    attacker = json.dumps(
        {
            "modules": {
                "inference-engine": {"providers": {"openai": {"api_key": new_canary()}, "anthropic": {"api_key": "x"}}}
            }
        }
    )
    proc = sops(root, "encrypt", "--age", DEMO_RECIPIENT, "--filename-override", ACME, "--input-type", "json",
                "--output-type", "yaml", "/dev/stdin", stdin=attacker.encode())  # fmt: skip
    assert proc.returncode == 0
    (root / ACME).write_bytes(proc.stdout)
    line = next(i for i, t in enumerate(proc.stdout.decode().splitlines(), 1) if t == "sops:")
    assert llmcc(root, "validate") == 1
    err = capsys.readouterr().err
    assert (
        f"{ACME}:{line}:1: encrypted for other recipients than the .sops.yaml creation rule for this path names "
        "(missing age:age122exdj8qu70444t69gkqdtgr2lagkmrytfp2ttwyfc4zc6e6waks395cre); "
        f"re-encrypted by someone else? check the value, then: sops updatekeys {ACME}"
    ) in err
    example.commit("acme: new key")
    assert llmcc(root, "diff", "HEAD~1", "HEAD") == 0
    out = capsys.readouterr().out
    assert "inference-engine" in out
    assert "<secret changed>" in out


def test_the_same_recipients_in_one_key_group_are_refused(
    example: GitRepo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule: groups [compiler] and [acme], both needed. One group of both opens with either key alone."""
    root = example.path
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")  # validate without an identity: the check needs none
    acme = "age122exdj8qu70444t69gkqdtgr2lagkmrytfp2ttwyfc4zc6e6waks395cre"
    rules = (root / ".sops.yaml").read_text()
    flat = f"    age: >-\n      {DEMO_RECIPIENT},\n      {acme}\n"
    assert flat in rules
    groups = f"    key_groups:\n      - age: [{DEMO_RECIPIENT}]\n      - age: [{acme}]\n"
    (root / ".sops.yaml").write_text(rules.replace(flat, groups))
    plain = sops(root, "decrypt", "--output-type", "json", ACME).stdout
    honest = sops(root, "encrypt", "--filename-override", ACME, "--input-type", "json", "--output-type", "yaml",
                  "/dev/stdin", stdin=plain)  # fmt: skip
    assert honest.returncode == 0
    (root / ACME).write_bytes(honest.stdout)
    assert llmcc(root, "validate", "-t", "prod@acme") == 0
    capsys.readouterr()
    lazy = sops(root, "encrypt", "--age", f"{DEMO_RECIPIENT},{acme}", "--filename-override", ACME,
                "--input-type", "json", "--output-type", "yaml", "/dev/stdin", stdin=plain)  # fmt: skip
    assert lazy.returncode == 0
    (root / ACME).write_bytes(lazy.stdout)
    assert llmcc(root, "validate", "-t", "prod@acme") == 1
    both = ", ".join(sorted([f"age:{DEMO_RECIPIENT}", f"age:{acme}"]))
    one, two = sorted([f"[age:{DEMO_RECIPIENT}]", f"[age:{acme}]"])
    assert (
        "encrypted for the recipients of the .sops.yaml creation rule for this path, but in "
        f"1 key group [{both}] with threshold 1 where the rule names 2 key groups {one} {two} with threshold 2 "
        f"(fewer keys may open it); re-encrypted by someone else? check the value, then: sops updatekeys {ACME}"
    ) in capsys.readouterr().err


def test_key_groups_and_thresholds_are_compared() -> None:
    from compiler.secrets.creation_rules import file_key_groups, recipient_mismatch, rule_key_groups

    config = (
        b"creation_rules:\n"
        b"  - path_regex: three$\n    shamir_threshold: 2\n"
        b"    key_groups: [{age: [age1a]}, {age: [age1b]}, {age: [age1c]}]\n"
        b"  - path_regex: one$\n    key_groups: [{age: [age1a, age1b]}]\n    shamir_threshold: 3\n"
    )
    three = (frozenset({"age:age1a"}), frozenset({"age:age1b"}), frozenset({"age:age1c"}))
    assert rule_key_groups(config, "x/three") == (three, 2)
    assert rule_key_groups(config, "one") == ((frozenset({"age:age1a", "age:age1b"}),), 1)
    groups = [{"age": [{"recipient": r}]} for r in ("age1c", "age1a", "age1b")]
    assert file_key_groups({"key_groups": groups, "shamir_threshold": 2}) == (three, 2)
    assert recipient_mismatch(config, "three", {"key_groups": groups, "shamir_threshold": 2}) is None
    assert recipient_mismatch(config, "one", {"age": [{"recipient": "age1b"}, {"recipient": "age1a"}]}) is None
    lower = recipient_mismatch(config, "three", {"key_groups": groups, "shamir_threshold": 1})
    assert lower is not None
    assert "with threshold 1 where the rule names 3 key groups" in lower
    assert "with threshold 3 where" in (recipient_mismatch(config, "three", {"key_groups": groups}) or "")


def test_a_file_with_an_extra_recipient_or_no_rule_is_refused(
    example: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    root = example.path
    extra = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
    plain = sops(root, "decrypt", "--output-type", "json", DEV).stdout
    proc = sops(root, "encrypt", "--age", f"{DEMO_RECIPIENT},{extra}", "--filename-override", DEV, "--input-type",
                "json", "--output-type", "yaml", "/dev/stdin", stdin=plain)  # fmt: skip
    (root / DEV).write_bytes(proc.stdout)
    assert llmcc(root, "validate", "-t", "dev") == 1
    assert f"(not in the rule age:{extra})" in capsys.readouterr().err
    (root / ".sops.yaml").write_text(f"creation_rules:\n  - path_regex: nothing-matches$\n    age: {DEMO_RECIPIENT}\n")
    assert llmcc(root, "validate", "-t", "dev") == 1
    assert (
        "no creation rule in .sops.yaml matches this path: its recipients cannot be checked" in capsys.readouterr().err
    )
    (root / ".sops.yaml").unlink()
    assert llmcc(root, "validate", "-t", "dev") == 1
    assert "no .sops.yaml: the recipients of this SOPS file cannot be checked" in capsys.readouterr().err


def test_a_path_regex_python_reads_otherwise_than_sops_is_refused(
    example: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """Go: ``[[:alpha:]]`` is a letter; Python: one of ``[:alph`` then ``]``. sops took rule 1 (two keys),
    llmcc took rule 2 (the compiler's only), so a file re-encrypted for the compiler alone passed."""
    root = example.path
    acme = "age122exdj8qu70444t69gkqdtgr2lagkmrytfp2ttwyfc4zc6e6waks395cre"
    (root / ".sops.yaml").write_text(
        "creation_rules:\n"
        f"  - path_regex: environments/[[:alpha:]]+\\.secrets\\.sops\\.yaml$\n    age: {DEMO_RECIPIENT},{acme}\n"
        f"  - age: {DEMO_RECIPIENT}\n"
    )
    plain = sops(root, "decrypt", "--output-type", "json", DEV).stdout
    team = sops(root, "encrypt", "--filename-override", DEV, "--input-type", "json", "--output-type", "yaml",
                "/dev/stdin", stdin=plain)  # fmt: skip
    assert f"recipient: {acme}" in team.stdout.decode()  # sops's choice: rule 1
    lazy = sops(root, "encrypt", "--age", DEMO_RECIPIENT, "--filename-override", DEV, "--input-type", "json",
                "--output-type", "yaml", "/dev/stdin", stdin=plain)  # fmt: skip
    (root / DEV).write_bytes(lazy.stdout)
    assert llmcc(root, "validate", "-t", "dev") == 2
    assert capsys.readouterr().err.startswith(
        "llmcc: .sops.yaml:2:5: path_regex is not a regular expression llmcc reads as sops does: "
        "POSIX classes such as [[:alpha:]] mean something else to Python: write ranges ([a-zA-Z])\n"
    )
    from compiler.secrets.sopsfile import go_regex, plaintext_leaves

    with pytest.raises(re.error, match="Possible set difference"):
        go_regex("[a--b]")
    assert go_regex(r"\d").search("\u0663") is None  # Go's \d is ASCII
    meta = {"mac": "m", "lastmodified": "t", "encrypted_regex": "^[[:alpha:]]+$"}
    assert plaintext_leaves({"k": "v", "sops": meta}) is None  # left to sops, whose errors are not shown


def test_creation_rule_recipients_of_every_kind() -> None:
    from compiler.errors import InputError
    from compiler.secrets.creation_rules import file_recipients, recipient_mismatch, rule_recipients

    config = (
        b"creation_rules:\n"
        b"  - path_regex: groups\\.sops\\.yaml$\n"
        b"    key_groups:\n"
        b"      - age: [age1a]\n        pgp: [FP1]\n        kms: [{arn: 'arn:k1'}]\n"
        b"        gcp_kms: [{resource_id: g1}]\n        hc_vault: ['https://v/v1/transit/keys/k']\n"
        b"        azure_keyvault: [{vaultUrl: 'https://az', key: n, version: '1'}]\n"
        b"  - path_regex: flat\\.sops\\.yaml$\n"
        b"    age: 'age1a, age1b'\n    pgp: FP1\n    kms: 'arn:k1+arn:role'\n"
        b"  - not-a-rule\n"
        b"  - age: [age1c]\n"
    )
    assert rule_recipients(config, "x/groups.sops.yaml") == {
        "age:age1a",
        "pgp:FP1",
        "kms:arn:k1",
        "gcp_kms:g1",
        "hc_vault:https://v/v1/transit/keys/k",
        "azure_kv:https://az/keys/n/1",
    }
    assert rule_recipients(config, "flat.sops.yaml") == {"age:age1a", "age:age1b", "pgp:FP1", "kms:arn:k1"}
    assert rule_recipients(config, "other.sops.yaml") == {"age:age1c"}
    assert rule_recipients(b"creation_rules: []\n", "x") is None
    meta = {
        "key_groups": [
            {
                "age": [{"recipient": "age1a"}],
                "pgp": [{"fp": "FP1"}],
                "kms": [{"arn": "arn:k1"}],
                "gcp_kms": [{"resource_id": "g1"}],
                "hc_vault": [{"vault_address": "https://v", "engine_path": "transit", "key_name": "k"}],
                "azure_kv": [{"vaultUrl": "https://az", "name": "n", "version": "1"}],
            }
        ]
    }
    assert file_recipients(meta) == rule_recipients(config, "groups.sops.yaml")
    assert recipient_mismatch(config, "groups.sops.yaml", meta) is None
    with pytest.raises(InputError, match=r"\.sops\.yaml:2:5: path_regex is not a regular expression"):
        rule_recipients(b"creation_rules:\n  - path_regex: '(?<=x'\n", "x")


def test_several_plaintext_values_are_counted(tmp_path: Path) -> None:
    from compiler.load.yaml import load_document
    from compiler.secrets.sops import check_decryptable

    doc = load_document(b"a: x\nb: y\nsops: {mac: m, lastmodified: t}\n", path="f.sops.yaml", layer="s")
    with pytest.raises(
        SecretsError, match=r"^f\.sops\.yaml:1:1: \$\.a: not encrypted: .* f\.sops\.yaml \(and 1 more\)$"
    ):
        check_decryptable(doc)


def test_a_sops_file_that_llmcc_cannot_load_is_named_never_quoted(
    example: GitRepo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The YAML loader quotes a bad scalar in a plain layer; in a SOPS file it names the place only."""
    root = example.path
    canary = new_canary()
    where = by_hand(root, DEV, "password", f"!!int {canary}")
    for argv in (["compile", "-t", "dev"], ["secrets", "edit", DEV]):
        assert llmcc(root, *argv) == 2
        err = capsys.readouterr().err
        assert err == f"llmcc: {where.rsplit(':', 1)[0]}:{int(where.rsplit(':', 1)[1]) + 10}: not a valid !!int\n"
        assert canary not in err
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    assert llmcc(root, "validate", "-t", "dev") == 2
    assert canary not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (".inf", "the value is not a JSON number (no NaN or infinity in JSON)"),
        ("1e400", "the value is beyond the range of a double (about ±1.8e308): it would become infinity"),
    ],
)
def test_a_float_problem_in_a_sops_file_does_not_show_the_text(text: str, message: str) -> None:
    from compiler.errors import InputError
    from compiler.load.yaml import load_document

    with pytest.raises(InputError) as info:
        load_document(f"a: {text}\n".encode(), path="f.sops.yaml", layer="s", quote_values=False)
    assert str(info.value) == f"f.sops.yaml:1:4: {message}"
