"""``llmcc init DIR``: a new config repository that validates, tests and compiles, with keys kept outside it."""

from __future__ import annotations

import io
import json
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.cli.init import project_name, shell_path
from tests.conftest import init_repo

pytestmark = pytest.mark.usefixtures("issue6_commands")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture
def keys_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "config-home"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


def test_init_then_git_init_then_validate_passes(
    tmp_path: Path, keys_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "My Config"
    code, out, err = run(capsys, "init", str(dest))
    assert (code, err) == (0, "")
    keys = keys_home / "llmcc" / "keys" / "my-config"
    assert out.splitlines()[:4] == [
        f"llmcc: created config repository {dest} (project my-config)",
        "  private keys, outside the repository (back them up; never commit them):",
        f"    {keys / 'age.key'}",
        f"    {keys / 'signing.pem'}",
    ]
    for rel in (
        "llmcc.yaml",
        ".sops.yaml",
        ".gitignore",
        ".pre-commit-config.yaml",
        ".github/workflows/llmcc.yaml",
        "README.md",
        "schemas/assistant.schema.json",
        "templates/assistant.yaml",
        "environments/base.yaml",
        "environments/dev.yaml",
        "environments/staging.yaml",
        "environments/prod.yaml",
        "environments/prod.secrets.sops.yaml",
        "environments/prod.secrets.rotation.yaml",
        "policies/assistant.yaml",
        "policies/tests/assistant.yaml",
        "keys/compiler.age.pub",
        "keys/signing.pub",
        "keys/targets/prod.yaml",
    ):
        assert (dest / rel).is_file(), rel
    assert not (dest / "compiler").exists()
    init_repo(dest)
    assert run(capsys, "-C", str(dest), "validate")[0] == 0
    code, out, _ = run(capsys, "-C", str(dest), "policy", "test")
    assert code == 0
    assert out.count("PASS ") == 7


def test_private_keys_stay_outside_the_repository(
    tmp_path: Path, keys_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "conf"
    assert run(capsys, "init", str(dest))[0] == 0
    keys = keys_home / "llmcc" / "keys" / "conf"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    for name in ("age.key", "signing.pem"):
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600
    recipient = (dest / "keys/compiler.age.pub").read_text().strip()
    assert f"# public key: {recipient}" in (keys / "age.key").read_text()
    assert recipient in (dest / "llmcc.yaml").read_text()
    assert recipient in (dest / ".sops.yaml").read_text()
    for path in dest.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not re.search(rb"AGE-SECRET-KEY-1[0-9A-Z]{58}|BEGIN PRIVATE[ ]KEY", data), path
    sops = (dest / "environments/prod.secrets.sops.yaml").read_text()
    assert "ENC[AES256_GCM," in sops
    assert "replace-me" not in sops


def test_fresh_keys_every_time(tmp_path: Path, keys_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "init", str(tmp_path / "a"))[0] == 0
    assert run(capsys, "init", str(tmp_path / "b"))[0] == 0
    assert (tmp_path / "a/keys/compiler.age.pub").read_text() != (tmp_path / "b/keys/compiler.age.pub").read_text()


def test_compile_works_with_the_printed_identity(
    tmp_path: Path, keys_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "conf"
    assert run(capsys, "init", str(dest))[0] == 0
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(keys_home / "llmcc/keys/conf/age.key"))
    # the scaffold's placeholder key: a warning in every target, an error in prod (its policy marks production)
    code, _out, err = run(capsys, "-C", str(dest), "compile")
    assert code == 1
    assert err.splitlines()[0] == (
        "environments/prod.secrets.sops.yaml:4:9: warning: assistant $.api_key: placeholder secret (written by "
        "llmcc init): set the real value with llmcc secrets rotate assistant.api_key --target prod "
        "--value-from-stdin (target prod, layer prod (secrets))"
    )
    assert "policies/assistant.yaml:21:3: policy prod-no-placeholder-secrets failed" in err
    assert err.splitlines()[-1] == "llmcc: 1 of 3 targets failed validation: prod"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"sk-" + b"a1" * 20 + b"\n")))
    assert (
        run(
            capsys, "-C", str(dest), "secrets", "rotate", "assistant.api_key", "--target", "prod", "--value-from-stdin"
        )[0]
        == 0
    )
    code, _out, err = run(capsys, "-C", str(dest), "compile")
    assert (code, "placeholder" in err) == (0, False)
    bundle = json.loads((dest / "dist/prod.bundle.json").read_text())
    assert bundle["modules"]["assistant"]["temperature"] == 0.3
    assert str(bundle["modules"]["assistant"]["api_key"]).startswith("ENC[")


def test_refuses_a_non_empty_directory(tmp_path: Path, keys_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    code, out, err = run(capsys, "init", str(dest))
    assert (code, out) == (2, "")
    assert err == (
        f"llmcc: {dest}: exists and is not empty; llmcc init needs a new or empty directory"
        " (or a clone of an empty repository)\n"
    )
    assert [p.name for p in dest.iterdir()] == ["notes.txt"]
    assert not keys_home.exists()


def test_an_empty_directory_is_fine(tmp_path: Path, keys_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "empty"
    dest.mkdir()
    assert run(capsys, "init", str(dest), "--project", "platform")[0] == 0
    assert "project: platform" in (dest / "llmcc.yaml").read_text()


def _empty_clone(tmp_path: Path) -> Path:
    """``git clone`` of a repository just created on a forge: a directory holding only ``.git``."""
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    subprocess.run(["git", "clone", "-q", str(remote), str(tmp_path / "conf")], check=True, capture_output=True)
    return tmp_path / "conf"


def test_a_clone_of_an_empty_repository_is_fine(
    tmp_path: Path, keys_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 13: create the repository on the forge, clone it, ``llmcc init`` into the clone, push."""
    dest = _empty_clone(tmp_path)
    code, out, err = run(capsys, "init", str(dest))
    assert (code, err) == (0, "")
    assert f"cd {dest} && git add -A && git commit -m 'llmcc init'" in out  # no `git init`: it is a clone
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    subprocess.run(["git", "commit", "-qm", "llmcc init"], cwd=dest, check=True)
    subprocess.run(["git", "push", "-q", "origin", "main"], cwd=dest, check=True, capture_output=True)
    listed = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", "main"],
        cwd=tmp_path / "remote.git",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "llmcc.yaml" in listed
    assert not [name for name in listed if name.endswith((".key", ".pem"))]  # private keys stayed outside


def test_a_failure_in_a_clone_keeps_its_git_directory(
    tmp_path: Path, keys_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = _empty_clone(tmp_path)
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr("compiler.secrets.sops.sys.executable", str(tmp_path / "nowhere" / "python"))
    code, _, err = run(capsys, "init", str(dest))
    assert code == 2
    assert "sops" in err
    assert [p.name for p in dest.iterdir()] == [".git"]  # what init wrote is gone, the clone is not
    assert (dest / ".git" / "HEAD").is_file()


def test_never_overwrites_keys(tmp_path: Path, keys_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "init", str(tmp_path / "one" / "conf"))[0] == 0
    code, _, err = run(capsys, "init", str(tmp_path / "two" / "conf"))
    assert code == 2
    assert "already holds keys; refusing to overwrite them (pass --keys-dir DIR)" in err
    assert not (tmp_path / "two" / "conf").exists()
    other = tmp_path / "other-keys"
    assert run(capsys, "init", str(tmp_path / "two" / "conf"), "--keys-dir", str(other))[0] == 0
    assert sorted(p.name for p in other.iterdir()) == ["age.key", "signing.pem"]


def test_keys_inside_the_repository_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "conf"
    code, _, err = run(capsys, "init", str(dest), "--keys-dir", str(dest / "keys"))
    assert code == 2
    assert "private keys must not be inside the repository" in err


def test_a_failure_leaves_nothing_behind(
    tmp_path: Path, keys_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr("compiler.secrets.sops.sys.executable", str(tmp_path / "nowhere" / "python"))
    code, _, err = run(capsys, "init", str(tmp_path / "conf"))
    assert code == 2
    assert "sops" in err
    assert not (tmp_path / "conf").exists()
    assert not (keys_home / "llmcc/keys/conf").exists()


@pytest.mark.parametrize(
    ("text", "name"), [("My Config", "my-config"), ("2024_platform", "platform"), ("___", "config"), ("acme", "acme")]
)
def test_project_names(text: str, name: str) -> None:
    assert project_name(text) == name


@pytest.mark.parametrize("where", ["/proc/llmcc-init-test", "/etc/passwd/x"])
def test_init_where_nothing_can_be_created_is_an_input_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, where: str
) -> None:
    code, _out, err = run(capsys, "init", where, "--keys-dir", str(tmp_path / "keys"))
    assert code == 2
    assert err.startswith(f"llmcc: {where}")
    assert "cannot create" in err
    assert "internal error" not in err


def test_a_placeholder_secret_outside_production_is_a_warning(
    tmp_path: Path, keys_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "conf"
    assert run(capsys, "init", str(dest))[0] == 0
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(keys_home / "llmcc/keys/conf/age.key"))
    (dest / "environments/dev.secrets.yaml").write_text("modules:\n  assistant:\n    api_key: replace-me-later\n")
    assert run(capsys, "-C", str(dest), "secrets", "encrypt", "environments/dev.secrets.yaml")[0] == 0
    assert run(capsys, "-C", str(dest), "keys", "update")[0] == 0
    code, _, err = run(capsys, "-C", str(dest), "validate", "--target", "dev")
    assert code == 0
    assert err.splitlines() == [
        "environments/dev.secrets.sops.yaml:3:9: warning: assistant $.api_key: placeholder secret (written by "
        "llmcc init): set the real value with llmcc secrets rotate assistant.api_key --target dev "
        "--value-from-stdin (target dev, layer dev (secrets))",
        "llmcc: validate ok: 1 target, 0 errors, 1 warning",
    ]
    # without an identity the value is not at hand: nothing to say about it, and the policy does not guess
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    assert run(capsys, "-C", str(dest), "validate")[:2] == (0, "")


def test_the_next_steps_say_what_ci_needs_and_show_keys_under_home_as_tilde(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scaffold's workflow installs from a placeholder LLMCC_GIT and CI refuses the default file:// store."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "init", "conf")
    assert (code, err) == (0, "")
    keys = "~/.config/llmcc/keys/conf"
    assert out.splitlines() == [
        "llmcc: created config repository conf (project conf)",
        "  private keys, outside the repository (back them up; never commit them):",
        f"    {keys}/age.key",
        f"    {keys}/signing.pem",
        "  next:",
        "    cd conf && git init -b main && git add -A && git commit -m 'llmcc init'",
        f"    export SOPS_AGE_KEY_FILE={keys}/age.key LLMCC_SIGNING_KEY_FILE={keys}/signing.pem",
        "    llmcc secrets rotate assistant.api_key --target prod --value-from-stdin   # replaces the placeholder",
        "    llmcc validate && llmcc policy test && llmcc compile",
        "    pre-commit install   # checks every commit (.pre-commit-config.yaml)",
        "  before the first push (CI runs .github/workflows/llmcc.yaml):",
        "    set LLMCC_GIT at the top of .github/workflows/llmcc.yaml to where llmcc is hosted",
        "    set storage.default in llmcc.yaml to an s3:// or oci:// store: CI does not publish to file://",
    ]
    # what the last two lines ask for is what the scaffold leaves undone
    workflow = (tmp_path / "conf/.github/workflows/llmcc.yaml").read_text()
    assert 'LLMCC_GIT: "https://github.com/<org>/llmcc.git"' in workflow
    assert "  default: file://.llmcc/store\n" in (tmp_path / "conf/llmcc.yaml").read_text()
    assert (tmp_path / "home/.config/llmcc/keys/conf/age.key").is_file()


def test_the_printed_commands_are_shell_words_the_shell_reads_back(tmp_path: Path) -> None:
    """A directory or key path with a space is quoted; ``~`` stays outside the quotes, where bash expands it."""
    home = tmp_path / "h"
    paths = [home / "My Keys" / "age.key", home / ".config/llmcc/keys/p/age.key", tmp_path / "a b" / "k", home]
    words = [shell_path(p, home) for p in paths]
    assert words[:2] == ["~/'My Keys/age.key'", "~/.config/llmcc/keys/p/age.key"]
    script = "".join(f"printf '%s\\n' {w}\n" for w in words)
    done = subprocess.run(["bash", "-c", script], env={"HOME": str(home)}, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == [str(p) for p in paths]


def test_the_printed_cd_works_for_a_directory_with_a_space(
    tmp_path: Path, keys_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "init", "My Config")
    assert code == 0
    (cd,) = [line.strip() for line in out.splitlines() if line.strip().startswith("cd ")]
    assert cd.startswith("cd 'My Config' && ")
    done = subprocess.run(["bash", "-c", cd.split(" && ")[0] + " && pwd"], cwd=tmp_path, capture_output=True, text=True)
    assert done.stdout.strip() == str(tmp_path / "My Config")
