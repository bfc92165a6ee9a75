"""A missing extra is one line naming it (exit 2); any other missing module stays a bug (exit 70).

The real thing runs in tests/packaging/test_client_install.py (a venv without
the extras). Here the same branches run in this process, with the package made
unimportable by a ``None`` entry in ``sys.modules`` (how Python blocks an import).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from compiler.cli import _commands, error_boundary, main
from compiler.errors import SecretsError, StorageError, UsageError
from compiler.extras import CLI_PACKAGES, is_missing, needs_extra
from compiler.secrets.kek import KekSpec, provider_for
from compiler.storage import open_store


def _block(monkeypatch: pytest.MonkeyPatch, package: str, *reimported: str) -> None:
    """Make ``package`` unimportable, and ``reimported`` modules import again (so they try)."""
    monkeypatch.setitem(sys.modules, package, None)
    for name in reimported:
        monkeypatch.delitem(sys.modules, name, raising=False)


def test_is_missing_looks_at_the_top_level_package() -> None:
    assert is_missing(ModuleNotFoundError("x", name="ruamel.yaml"), CLI_PACKAGES)
    assert not is_missing(ModuleNotFoundError("x", name="compiler.nothing"), CLI_PACKAGES)
    assert not is_missing(ModuleNotFoundError("x"), CLI_PACKAGES)
    assert needs_extra("compile", "cli") == "compile needs the cli extra: pip install 'llm-config-compiler[cli]'"


def test_a_command_whose_module_needs_the_cli_extra_names_the_command() -> None:
    def load() -> ModuleType:
        raise ModuleNotFoundError("No module named 'jinja2'", name="jinja2")

    with pytest.raises(UsageError, match=r"^compile needs the cli extra: pip install 'llm-config-compiler\[cli\]'$"):
        _commands._needs_cli("compile", load)()


def test_a_missing_module_of_ours_is_not_blamed_on_an_extra() -> None:
    def load() -> ModuleType:
        raise ModuleNotFoundError("No module named 'compiler.nothing'", name="compiler.nothing")

    with pytest.raises(ModuleNotFoundError):
        _commands._needs_cli("compile", load)()


def test_the_boundary_names_the_cli_extra_for_a_package_needed_later(capsys: pytest.CaptureFixture[str]) -> None:
    with error_boundary(debug=False) as result:
        raise ModuleNotFoundError("No module named 'deepdiff'", name="deepdiff")
    assert result.code == 2
    assert capsys.readouterr().err == (
        "llmcc: this command needs the cli extra: pip install 'llm-config-compiler[cli]'\n"
    )
    with error_boundary(debug=False, as_json=True) as result:
        raise ModuleNotFoundError("No module named 'deepdiff'", name="deepdiff")
    out = capsys.readouterr()
    assert (result.code, out.err) == (2, "")
    assert '"exit_code": 2' in out.out
    assert "needs the cli extra" in out.out


def test_the_boundary_keeps_a_missing_module_of_ours_an_internal_error(capsys: pytest.CaptureFixture[str]) -> None:
    with error_boundary(debug=False) as result:
        raise ModuleNotFoundError("No module named 'compiler.nothing'", name="compiler.nothing")
    assert result.code == 70
    assert capsys.readouterr().err.startswith("llmcc: internal error: ModuleNotFoundError")


def test_an_s3_store_without_boto3_names_the_s3_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _block(monkeypatch, "boto3", "compiler.storage.s3")
    with pytest.raises(StorageError) as info:
        open_store("s3://bucket/prefix", root=Path("."))
    assert str(info.value) == (
        "s3://bucket/prefix: an s3:// store needs the s3 extra: pip install 'llm-config-compiler[s3]'"
    )
    assert info.value.exit_code == 2


def test_key_providers_without_their_client_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _block(monkeypatch, "boto3", "compiler.secrets.kek.awskms")
    _block(monkeypatch, "hvac", "compiler.secrets.kek.vault_transit")
    with pytest.raises(SecretsError, match=r"^the awskms key provider needs the kms extra: .*\[kms\]'$"):
        provider_for(KekSpec(provider="awskms", key_id="alias/x"), None)
    with pytest.raises(SecretsError, match=r"^the vault-transit key provider needs the vault extra: .*\[vault\]'$"):
        provider_for(KekSpec(provider="vault-transit", key_id="x"), None)


def test_a_broken_backend_module_is_not_blamed_on_an_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # a module of ours that is missing (a packaging bug) must not read as "install the extra"
    _block(monkeypatch, "compiler.storage.s3")
    _block(monkeypatch, "compiler.secrets.kek.awskms")
    _block(monkeypatch, "compiler.secrets.kek.vault_transit")
    with pytest.raises(ModuleNotFoundError):
        open_store("s3://bucket/prefix", root=Path("."))
    with pytest.raises(ModuleNotFoundError):
        provider_for(KekSpec(provider="awskms", key_id="alias/x"), None)
    with pytest.raises(ModuleNotFoundError):
        provider_for(KekSpec(provider="vault-transit", key_id="x"), None)


AGENT_LINE = "agent needs the cli and agent extras: pip install 'llm-config-compiler[cli,agent]'"


def test_several_extras_are_named_in_one_line_and_one_install() -> None:
    assert needs_extra("agent", "cli", "agent") == AGENT_LINE
    assert needs_extra("x", "cli", "s3", "vault") == (
        "x needs the cli, s3 and vault extras: pip install 'llm-config-compiler[cli,s3,vault]'"
    )


def test_agent_without_the_cli_extra_names_the_agent_extra_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _block(monkeypatch, "pydantic")  # the base install: main's check before the arguments are parsed
    assert main(["agent"]) == 2
    assert capsys.readouterr().err == f"llmcc: {AGENT_LINE}\n"
    assert main(["compile"]) == 2  # a command that needs only cli still names only cli
    assert capsys.readouterr().err == "llmcc: compile needs the cli extra: pip install 'llm-config-compiler[cli]'\n"

    def load() -> ModuleType:
        raise ModuleNotFoundError("No module named 'jinja2'", name="jinja2")

    with pytest.raises(UsageError, match=rf"^{re.escape(AGENT_LINE)}$"):  # found when the module loads
        _commands._needs_cli("agent", load)()


def test_agent_with_the_cli_extra_only_names_both_extras(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``pip install '...[cli]'`` then ``llmcc agent``: the same line as before, not a new extra to learn."""
    agent_modules = [m for m in sys.modules if m == "compiler.agent" or m.startswith("compiler.agent.")]
    _block(monkeypatch, "starlette", *agent_modules)
    _block(monkeypatch, "uvicorn")
    _block(monkeypatch, "prometheus_client")
    argv = ["-C", str(tmp_path), "agent", "-t", "dev", "--token-file", str(tmp_path / "tokens")]
    assert main(argv) == 2
    assert capsys.readouterr().err == f"llmcc: {AGENT_LINE}\n"


def test_agent_with_a_module_of_ours_missing_is_an_internal_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _block(monkeypatch, "compiler.agent.server")
    argv = ["-C", str(tmp_path), "agent", "-t", "dev", "--token-file", str(tmp_path / "tokens")]
    assert main(argv) == 70
    assert capsys.readouterr().err.startswith("llmcc: internal error: ")
