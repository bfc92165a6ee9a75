"""Finding age identities the way sops does."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.errors import SecretsError
from compiler.secrets.identity import Identities, default_key_file, load_identities, parse_identities
from tests.secrets._secrets_support import AgeKeys


def test_explicit_identity_wins_over_the_environment(age_keys: AgeKeys, tmp_path: Path) -> None:
    env = {"SOPS_AGE_KEY_FILE": str(age_keys.default.file), "SOPS_AGE_KEY": age_keys.acme.identity}
    ids = load_identities(age_keys.compiler.file, env)
    assert ids.recipients() == [age_keys.compiler.recipient]
    assert ids.sources == [str(age_keys.compiler.file)]


def test_environment_sources_are_combined_like_sops(age_keys: AgeKeys, tmp_path: Path) -> None:
    env = {
        "SOPS_AGE_KEY_FILE": str(age_keys.default.file),
        "SOPS_AGE_KEY": f"# two keys\n{age_keys.acme.identity}\n\n{age_keys.outsider.identity}\n",
    }
    ids = load_identities(None, env)
    assert sorted(ids.recipients()) == sorted(
        [age_keys.default.recipient, age_keys.acme.recipient, age_keys.outsider.recipient]
    )
    assert len(ids) == 3


def test_default_file_respects_xdg_config_home(age_keys: AgeKeys, tmp_path: Path) -> None:
    keys = tmp_path / "xdg" / "sops" / "age" / "keys.txt"
    keys.parent.mkdir(parents=True)
    keys.write_text(age_keys.compiler.file.read_text())
    ids = load_identities(None, {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "nohome")})
    assert ids.recipients() == [age_keys.compiler.recipient]
    assert default_key_file({"HOME": "/h"}) == Path("/h/.config/sops/age/keys.txt")
    assert default_key_file({}) is None


def test_default_file_from_home(age_keys: AgeKeys, tmp_path: Path) -> None:
    keys = tmp_path / ".config" / "sops" / "age" / "keys.txt"
    keys.parent.mkdir(parents=True)
    keys.write_text(age_keys.acme.file.read_text())
    assert load_identities(None, {"HOME": str(tmp_path)}).recipients() == [age_keys.acme.recipient]


def test_default_file_is_skipped_when_key_file_is_set(age_keys: AgeKeys, tmp_path: Path) -> None:
    keys = tmp_path / ".config" / "sops" / "age" / "keys.txt"
    keys.parent.mkdir(parents=True)
    keys.write_text(age_keys.acme.file.read_text())
    env = {"HOME": str(tmp_path), "SOPS_AGE_KEY_FILE": str(age_keys.default.file)}
    assert load_identities(None, env).recipients() == [age_keys.default.recipient]


def test_missing_identity_gives_advice(tmp_path: Path) -> None:
    with pytest.raises(SecretsError, match="set SOPS_AGE_KEY_FILE or pass --identity FILE"):
        load_identities(None, {"HOME": str(tmp_path)})
    empty = load_identities(None, {}, required=False)
    assert not empty
    with pytest.raises(SecretsError, match="--identity FILE"):
        empty.age_identities()


def test_unreadable_identity_file(tmp_path: Path) -> None:
    with pytest.raises(SecretsError, match="cannot read identity file"):
        load_identities(tmp_path / "missing.agekey", {})
    with pytest.raises(SecretsError, match="SOPS_AGE_KEY_FILE: cannot read"):
        load_identities(None, {"SOPS_AGE_KEY_FILE": str(tmp_path / "missing")})
    (tmp_path / "bin").write_bytes(b"\xff\xfe")
    with pytest.raises(SecretsError, match="not UTF-8"):
        load_identities(tmp_path / "bin", {})


def test_explicit_file_without_identity(tmp_path: Path) -> None:
    f = tmp_path / "empty.agekey"
    f.write_text("# nothing here\n")
    with pytest.raises(SecretsError, match="holds no identity"):
        load_identities(f, {})


def test_bad_lines_are_named_by_place_not_content(tmp_path: Path) -> None:
    f = tmp_path / "bad.agekey"
    f.write_text("# ok\nAGE-SECRET-KEY-1NOTREALLYAKEYcanarytext\n")
    with pytest.raises(SecretsError) as info:
        load_identities(f, {})
    assert str(info.value) == f"{f}:2: not a valid age identity"
    with pytest.raises(SecretsError) as info2:
        parse_identities("ssh-ed25519 AAAAsecretish\n", source="SOPS_AGE_KEY")
    assert "AAAAsecretish" not in str(info2.value)
    assert "SOPS_AGE_KEY:1" in str(info2.value)


def test_identities_never_show_the_key(age_keys: AgeKeys) -> None:
    ids = load_identities(age_keys.default.file, {})
    secret = age_keys.default.identity
    for text in (repr(ids), str(ids), f"{ids}", repr([ids])):
        assert secret not in text
        assert "redacted" in text
    with pytest.raises(TypeError, match="cannot be pickled"):
        ids.__reduce__()


def test_sops_env_hands_exactly_these_keys(age_keys: AgeKeys) -> None:
    ids = load_identities(None, {"SOPS_AGE_KEY": f"{age_keys.default.identity}\n{age_keys.acme.identity}"})
    env = ids.sops_env()
    assert env["SOPS_AGE_KEY"].splitlines() == [age_keys.default.identity, age_keys.acme.identity]
    assert env["SOPS_AGE_KEY_FILE"] == "/dev/null"
    assert Identities().sops_env()["SOPS_AGE_KEY"] == ""


def test_a_bad_line_leaves_the_other_keys_in_no_frame_of_the_error(age_keys: AgeKeys) -> None:
    """The traceback keeps parse_identities' frame: its locals held the whole file, private keys included."""
    from tests.secrets.test_envelope import _reachable_text

    text = f"{age_keys.acme.identity}\nnot-a-key\n"
    with pytest.raises(SecretsError, match="SOPS_AGE_KEY:2: not an age identity") as info:
        parse_identities(text, source="SOPS_AGE_KEY")
    del text
    assert age_keys.acme.identity.removeprefix("AGE-SECRET-KEY-") not in _reachable_text(info.value)
