"""A repository from ``llmcc init``, with its compiler identity in the environment (issue 10 starts each case so)."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.cli import main
from tests.conftest import replace_placeholder


def init_config(dest: Path, keys_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``llmcc init dest`` with its private keys under ``keys_home``; returns ``dest``."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(keys_home))
    assert main(["-q", "init", str(dest)]) == 0
    replace_placeholder(dest, keys_home / "llmcc/keys" / dest.name / "age.key")
    return dest


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Path:
    root = init_config(tmp_path / "conf", tmp_path / "config-home", monkeypatch)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(tmp_path / "config-home/llmcc/keys/conf/age.key"))
    capsys.readouterr()
    return root
