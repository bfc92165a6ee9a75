"""``llmcc secrets encrypt|edit|rotate`` with the real sops binary."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import pytest

from compiler.cli import Context
from compiler.cli import secrets as secrets_cmd
from compiler.errors import LlmccError, SecretsError, UsageError
from compiler.jsonpath import format_path
from compiler.load.yaml import load_document
from compiler.secrets.identity import load_identities
from compiler.secrets.rotation import read_rotation
from compiler.secrets.sops import decrypt_sops, encrypt_sops, is_sops_document
from tests.secrets._secrets_support import AgeKeys, new_canary

PROD = "environments/prod.secrets.sops.yaml"


def run(root: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="llmcc secrets")
    secrets_cmd.add_arguments(parser)
    return secrets_cmd.run(parser.parse_args(argv), Context(root=root, quiet=True, debug=False))


def opened(repo: Path, rel: str, key: Path) -> object:
    plain = decrypt_sops((repo / rel).read_bytes(), path=rel, identities=load_identities(key, {}))
    return load_document(plain, path=rel, layer="t").value


def put_secret(repo: Path, rel: str, module: str, tree: dict[str, object]) -> None:
    import json

    data = encrypt_sops(json.dumps({"modules": {module: tree}}).encode(), path=rel, cwd=repo)
    (repo / rel).parent.mkdir(parents=True, exist_ok=True)
    (repo / rel).write_bytes(data)


def stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))


# --- encrypt -----------------------------------------------------------------------------------------


def test_encrypt_in_place(repo: Path, age_keys: AgeKeys, capsys: pytest.CaptureFixture[str], clean_env: Path) -> None:
    secret = new_canary()
    (repo / PROD).write_text(f"modules:\n  data-pipeline:\n    db:\n      password: {secret}\n")
    assert run(repo, "encrypt", PROD) == 0
    assert capsys.readouterr().out == f"encrypted {PROD}\n"
    data = (repo / PROD).read_bytes()
    assert secret.encode() not in data
    assert opened(repo, PROD, age_keys.compiler.file) == {"modules": {"data-pipeline": {"db": {"password": secret}}}}
    with pytest.raises(UsageError, match="already SOPS-encrypted"):
        run(repo, "encrypt", PROD)


def test_encrypt_to_the_sops_name_removes_the_plaintext(
    repo: Path, age_keys: AgeKeys, capsys: pytest.CaptureFixture[str], clean_env: Path
) -> None:
    secret = new_canary()
    src = repo / "environments/tenants/acme.secrets.yaml"
    src.parent.mkdir(parents=True)
    src.write_text(f"modules:\n  data-pipeline:\n    token: {secret}\n")
    assert run(repo, "encrypt", str(src)) == 0  # an absolute path works too
    dest = "environments/tenants/acme.secrets.sops.yaml"
    assert capsys.readouterr().out == (
        f"encrypted environments/tenants/acme.secrets.yaml to {dest} "
        "and removed the plaintext environments/tenants/acme.secrets.yaml\n"
    )
    assert not src.exists()
    for key in (age_keys.compiler, age_keys.acme):  # the tenant's creation rule was used
        assert opened(repo, dest, key.file) == {"modules": {"data-pipeline": {"token": secret}}}


def test_encrypt_refuses_a_file_outside_the_repository(repo: Path, clean_env: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.secrets.yaml"
    outside.write_text("modules: {}\n")
    with pytest.raises(UsageError, match="outside the config repository"):
        run(repo, "encrypt", str(outside))
    assert outside.exists()


def test_encrypt_refusals(repo: Path, clean_env: Path) -> None:
    (repo / "environments/dev.secrets.yaml").write_text("modules: {}\n")
    (repo / "environments/dev.secrets.sops.yaml").write_text("modules: {}\n")
    with pytest.raises(UsageError, match="already exists"):
        run(repo, "encrypt", "environments/dev.secrets.yaml")
    (repo / "environments/list.sops.yaml").write_text("- 1\n")
    with pytest.raises(LlmccError, match="must be a mapping"):
        run(repo, "encrypt", "environments/list.sops.yaml")
    # the new-user trial: a file without modules: was encrypted, then every compile refused it
    (repo / "environments/flat.secrets.yaml").write_text("modules: {}\nassistant:\n  api_key: x\n")
    with pytest.raises(LlmccError, match=r"flat\.secrets\.yaml:2:1: unknown top-level key 'assistant' in a secrets"):
        run(repo, "encrypt", "environments/flat.secrets.yaml")
    assert not (repo / "environments/flat.secrets.sops.yaml").exists()
    (repo / "other.sops.yaml").write_text("modules: {}\n")
    with pytest.raises(SecretsError, match=r"no creation rule in \.sops\.yaml matches this path"):
        run(repo, "encrypt", "other.sops.yaml")
    with pytest.raises(LlmccError, match="cannot read"):
        run(repo, "encrypt", "environments/missing.sops.yaml")


# --- edit ------------------------------------------------------------------------------------------------


def editor(tmp_path: Path, body: str) -> str:
    script = tmp_path / "editor.py"
    script.write_text(f"#!{sys.executable}\nimport os, sys\npath = sys.argv[-1]\n{body}\n")
    script.chmod(0o755)
    return str(script)


def test_edit_with_the_editor(
    repo: Path, age_keys: AgeKeys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: Path
) -> None:
    old, new = new_canary(), new_canary()
    put_secret(repo, PROD, "data-pipeline", {"db": {"password": old}})
    body = (
        "text = open(path).read()\n"
        "open(path, 'w').write(text.replace(os.environ['OLD_VALUE'], os.environ['NEW_VALUE']))"
    )
    monkeypatch.setenv("EDITOR", editor(tmp_path, body))
    monkeypatch.setenv("OLD_VALUE", old)
    monkeypatch.setenv("NEW_VALUE", new)
    assert run(repo, "edit", PROD, "--identity", str(age_keys.compiler.file)) == 0
    assert new.encode() not in (repo / PROD).read_bytes()
    assert opened(repo, PROD, age_keys.compiler.file) == {"modules": {"data-pipeline": {"db": {"password": new}}}}


def test_edit_without_change_and_failures(
    repo: Path, age_keys: AgeKeys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: Path
) -> None:
    put_secret(repo, PROD, "data-pipeline", {"db": {"password": new_canary()}})
    monkeypatch.setenv("EDITOR", editor(tmp_path, "pass"))
    before = (repo / PROD).read_bytes()
    assert run(repo, "edit", PROD, "--identity", str(age_keys.compiler.file)) == 0
    assert (repo / PROD).read_bytes() == before
    with pytest.raises(SecretsError, match="sops could not edit: no identity could open its data key"):
        run(repo, "edit", PROD, "--identity", str(age_keys.outsider.file))


# --- rotate ----------------------------------------------------------------------------------------------


def test_rotate_from_stdin_in_the_most_specific_layer(
    repo: Path,
    age_keys: AgeKeys,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    clean_env: Path,
) -> None:
    base_value, prod_value, other, new = new_canary(), new_canary(), new_canary(), new_canary()
    base = "environments/base.secrets.sops.yaml"
    put_secret(repo, base, "data-pipeline", {"db": {"password": base_value}})
    put_secret(repo, PROD, "data-pipeline", {"db": {"password": prod_value, "user": other}})
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(age_keys.compiler.file))
    stdin(monkeypatch, new + "\n")
    assert run(repo, "rotate", "data-pipeline.db.password", "--target", "prod@acme", "--value-from-stdin") == 0
    out = capsys.readouterr().out
    assert out == (
        f"rotated data-pipeline.db.password in {PROD}; rotated_at recorded in environments/prod.secrets.rotation.yaml\n"
    )
    assert opened(repo, PROD, age_keys.compiler.file) == {
        "modules": {"data-pipeline": {"db": {"password": new, "user": other}}}
    }
    assert opened(repo, base, age_keys.compiler.file) == {
        "modules": {"data-pipeline": {"db": {"password": base_value}}}
    }
    side = repo / "environments/prod.secrets.rotation.yaml"
    rotated = read_rotation(side.read_bytes(), path="r")
    assert list(rotated) == ["data-pipeline.db.password"]
    assert new not in side.read_text()
    assert not [p.name for p in (repo / "environments").iterdir() if p.name.startswith(".")]

    # staging has no prod layer: the base file is the most specific that sets it
    stdin(monkeypatch, new_canary())
    assert run(repo, "rotate", "data-pipeline.db.password", "--target", "staging", "--value-from-stdin") == 0
    assert "in environments/base.secrets.sops.yaml" in capsys.readouterr().out
    assert (repo / "environments/base.secrets.rotation.yaml").exists()


def test_rotate_creates_the_targets_own_file(
    repo: Path, age_keys: AgeKeys, capsys: pytest.CaptureFixture[str], clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(age_keys.compiler.file))
    assert run(repo, "rotate", "data-pipeline.tokens[0]", "--target", "prod@acme", "--generate", "40") == 0
    rel = "environments/prod/tenants/acme.secrets.sops.yaml"
    assert f"in {rel};" in capsys.readouterr().out
    value = opened(repo, rel, age_keys.acme.file)  # the tenant rule of .sops.yaml applied
    token = value["modules"]["data-pipeline"]["tokens"][0]  # type: ignore[index]
    assert len(token) == 40
    assert token.isalnum()
    assert list(
        read_rotation((repo / "environments/prod/tenants/acme.secrets.rotation.yaml").read_bytes(), path="r")
    ) == ["data-pipeline.tokens[0]"]


def test_rotate_refuses_a_field_that_is_not_secret(repo: Path, clean_env: Path) -> None:
    for address in ("data-pipeline.db.username", "data-pipeline.nosuch", "data-pipeline.db"):
        with pytest.raises(UsageError, match="not a secret field"):
            run(repo, "rotate", address, "--target", "prod", "--generate", "32")
    assert not (repo / PROD).exists()


def test_rotate_refusals(repo: Path, age_keys: AgeKeys, monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    with pytest.raises(UsageError, match="unknown module 'nope'"):
        run(repo, "rotate", "nope.x", "--target", "prod", "--generate", "32")
    with pytest.raises(UsageError, match=r"expected MODULE\.PATH"):
        run(repo, "rotate", "data-pipeline", "--target", "prod", "--generate", "32")
    with pytest.raises(UsageError, match="unknown target"):
        run(repo, "rotate", "data-pipeline.x", "--target", "qa", "--generate", "32")
    with pytest.raises(SecretsError, match="--identity FILE"):
        run(repo, "rotate", "data-pipeline.x", "--target", "prod", "--generate", "32")
    key = str(age_keys.compiler.file)
    with pytest.raises(UsageError, match="between 16 and 4096"):
        run(repo, "rotate", "data-pipeline.x", "--target", "prod", "--generate", "8", "--identity", key)
    stdin(monkeypatch, "\n")
    with pytest.raises(UsageError, match="stdin is empty"):
        run(repo, "rotate", "data-pipeline.x", "--target", "prod", "--value-from-stdin", "--identity", key)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xff\xfe")))
    with pytest.raises(UsageError, match="not UTF-8"):
        run(repo, "rotate", "data-pipeline.x", "--target", "prod", "--value-from-stdin", "--identity", key)
    secret = new_canary()
    put_secret(repo, PROD, "data-pipeline", {"x": new_canary()})
    stdin(monkeypatch, secret)
    outsider = str(age_keys.outsider.file)
    with pytest.raises(SecretsError, match=f"{PROD}: sops could not update") as info:
        run(repo, "rotate", "data-pipeline.x", "--target", "prod", "--value-from-stdin", "--identity", outsider)
    assert secret not in str(info.value)
    assert not (repo / "environments/prod.secrets.rotation.yaml").exists()
    assert is_sops_document(load_document((repo / PROD).read_bytes(), path=PROD, layer="t").value)


def test_rotate_a_list_item_where_it_is_set(
    repo: Path, age_keys: AgeKeys, capsys: pytest.CaptureFixture[str], clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keep, old, new = new_canary(), new_canary(), new_canary()
    put_secret(repo, PROD, "data-pipeline", {"tokens": [keep, old]})
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(age_keys.compiler.file))
    stdin(monkeypatch, new)
    assert run(repo, "rotate", "data-pipeline.tokens.1", "--target", "prod", "--value-from-stdin") == 0
    assert f"in {PROD};" in capsys.readouterr().out
    assert opened(repo, PROD, age_keys.compiler.file) == {"modules": {"data-pipeline": {"tokens": [keep, new]}}}
    # tokens[2] does not exist: sops would rewrite the whole list, so a new item is an edit, not a rotation
    stdin(monkeypatch, new_canary())
    with pytest.raises(UsageError, match=r"data-pipeline.tokens\[2\] does not exist; add list items with"):
        run(repo, "rotate", "data-pipeline.tokens[2]", "--target", "prod", "--value-from-stdin")
    assert opened(repo, PROD, age_keys.compiler.file) == {"modules": {"data-pipeline": {"tokens": [keep, new]}}}
    # "tokens.x" does not index a list, and "7" is no field of the module: neither is a secret field
    for address in ("data-pipeline.tokens.x", "data-pipeline.7"):
        stdin(monkeypatch, new_canary())
        with pytest.raises(UsageError, match="not a secret field"):
            run(repo, "rotate", address, "--target", "prod", "--value-from-stdin")


def test_rotate_keys_that_need_quotes_and_digit_keys(
    repo: Path, age_keys: AgeKeys, capsys: pytest.CaptureFixture[str], clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10 §5: a dotted key and a digit-only key are secret fields too; the schema tells index from key."""
    schema = repo / "schemas" / "data-pipeline.schema.json"
    schema.write_text(
        schema.read_text().replace(
            '"x": {', '"keys": {"type": "object", "additionalProperties": {"type": "string", "x-secret": true}}, "x": {'
        )
    )
    put_secret(repo, PROD, "data-pipeline", {"tokens": [new_canary()]})
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(age_keys.compiler.file))
    for address in ("data-pipeline.keys['a.b']", "data-pipeline.keys.404", "data-pipeline$.tokens[0]"):
        assert run(repo, "rotate", address, "--target", "prod", "--generate", "20") == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" in ")[0] for line in out] == [
        "rotated data-pipeline.keys['a.b']",
        "rotated data-pipeline.keys['404']",
        "rotated data-pipeline.tokens[0]",
    ]
    value = opened(repo, PROD, age_keys.compiler.file)
    assert sorted(value["modules"]["data-pipeline"]["keys"]) == ["404", "a.b"]  # type: ignore[index]
    side = read_rotation((repo / "environments/prod.secrets.rotation.yaml").read_bytes(), path="r")
    assert sorted(side) == ["data-pipeline.keys['404']", "data-pipeline.keys['a.b']", "data-pipeline.tokens[0]"]
    with pytest.raises(UsageError, match=r"\[field=value\] does not address a secret"):
        run(repo, "rotate", "data-pipeline.tokens[name=x]", "--target", "prod", "--generate", "20")
    with pytest.raises(UsageError, match="is not a path"):
        run(repo, "rotate", "data-pipeline.keys[a.b]", "--target", "prod", "--generate", "20")


def test_rotate_keys_with_quotes_backslashes_and_newlines_set_that_key(
    repo: Path, age_keys: AgeKeys, clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sops's path syntax has no escapes: ``["say \\"hi\\""]`` set the key ``say \\"hi\\"`` and reported success."""
    schema = repo / "schemas" / "data-pipeline.schema.json"
    schema.write_text(
        schema.read_text().replace(
            '"x": {', '"keys": {"type": "object", "additionalProperties": {"type": "string", "x-secret": true}}, "x": {'
        )
    )
    weird = ['say "hi"', "back\\slash", "line\nbreak", "x]y", ""]
    old = {k: new_canary() for k in weird}
    put_secret(repo, PROD, "data-pipeline", {"keys": old})
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(age_keys.compiler.file))
    for key in weird:
        address = "data-pipeline$.keys" + format_path((key,))[1:]
        assert run(repo, "rotate", address, "--target", "prod", "--generate", "20") == 0
    keys = opened(repo, PROD, age_keys.compiler.file)["modules"]["data-pipeline"]["keys"]  # type: ignore[index]
    assert sorted(keys) == sorted(weird)
    assert all(keys[k] != old[k] for k in weird)
    before = (repo / PROD).read_bytes()
    with pytest.raises(SecretsError, match=r"sops cannot address the key \"a\[b\"") as e:
        run(repo, "rotate", "data-pipeline.keys['a[b']", "--target", "prod", "--generate", "20")
    assert e.value.exit_code == 2
    assert (repo / PROD).read_bytes() == before


def test_edit_records_the_rotation_of_the_values_it_changed(
    repo: Path,
    age_keys: AgeKeys,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    clean_env: Path,
) -> None:
    from compiler.cli import main

    old, new, kept = new_canary(), new_canary(), new_canary()
    put_secret(repo, PROD, "data-pipeline", {"db": {"password": old, "user": kept}})
    body = (  # the password changes, and a new field is added next to user (at its indentation)
        "import re\n"
        "new = os.environ['NEW_VALUE']\n"
        "text = open(path).read().replace(os.environ['OLD_VALUE'], new)\n"
        "text = re.sub(r'^( *)user:', lambda m: f'{m[1]}extra: {new}\\n{m[1]}user:', text, flags=re.M)\n"
        "open(path, 'w').write(text)"
    )
    monkeypatch.setenv("EDITOR", editor(tmp_path, body))
    monkeypatch.setenv("OLD_VALUE", old)
    monkeypatch.setenv("NEW_VALUE", new)
    side = "environments/prod.secrets.rotation.yaml"
    doc = load_document((repo / PROD).read_bytes(), path=PROD, layer="t").value
    assert isinstance(doc, dict)
    lastmodified = doc["sops"]["lastmodified"]
    assert main(["-C", str(repo), "secrets", "edit", PROD, "--identity", str(age_keys.compiler.file)]) == 0
    assert capsys.readouterr().out == (
        f"edited {PROD}; rotated_at of 2 values recorded in {side}: data-pipeline.db.extra, data-pipeline.db.password\n"
    )
    recorded = read_rotation((repo / side).read_bytes(), path=side)
    assert recorded["data-pipeline.db.password"] == recorded["data-pipeline.db.extra"]
    # db.user was not changed: it keeps the age it had, not the file's new lastmodified (sops moves it on any save)
    assert recorded["data-pipeline.db.user"] == lastmodified
    assert len(recorded) == 3
    # an edit that saves nothing new records nothing
    monkeypatch.setenv("EDITOR", editor(tmp_path, "pass"))
    before = (repo / side).read_bytes()
    assert main(["-C", str(repo), "secrets", "edit", PROD, "--identity", str(age_keys.compiler.file)]) == 0
    assert (repo / side).read_bytes() == before


def test_the_editor_names_changed_values_never_their_text() -> None:
    from compiler.secrets.editcheck import changed_keys

    before = b"modules:\n  m:\n    a: x\n    b: [1, 2]\n    c: 1\n"
    after = b"modules:\n  m:\n    a: y\n    b: [1, 3, 4]\n    c: true\n  n:\n    d: z\n"
    assert changed_keys(before, after, path="f") == ["m.a", "m.b[1]", "m.b[2]", "m.c", "n.d"]
    assert changed_keys(b"{unclosed", after, path="f") == ["m.a", "m.b[0]", "m.b[1]", "m.b[2]", "m.c", "n.d"]
    assert changed_keys(before, b"- not a mapping\n", path="f") == []
