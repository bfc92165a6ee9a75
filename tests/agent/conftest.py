"""A published copy of the example platform with a canary secret, shared by the agent tests."""

from __future__ import annotations

import io
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from compiler.cli import main
from tests.agent._agent import SIGNING_KEY
from tests.conftest import DEMO_IDENTITY, copy_example, init_repo
from tests.secrets._secrets_support import new_canary
from tests.storage.conftest import fake_aws, moto_server  # noqa: F401 - fixtures


@dataclass(frozen=True)
class Published:
    root: Path  # the config repository; its store is root/.llmcc/store
    canary: str  # prod's data-pipeline.db.password

    @property
    def store(self) -> str:
        return f"file://{self.root / '.llmcc' / 'store'}"


def publish(root: Path, *targets: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOPS_AGE_KEY_FILE", str(DEMO_IDENTITY))
        argv = ["-C", str(root), "--quiet", "publish", "--allow-dirty", "--signing-key", str(SIGNING_KEY)]
        assert main([*argv, *(a for t in targets for a in ("-t", t))]) == 0


def set_value(root: Path, old: str, new: str) -> None:
    path = root / "environments" / "prod.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.fixture(scope="module")
def published_base(tmp_path_factory: pytest.TempPathFactory) -> Published:
    repo = init_repo(tmp_path_factory.mktemp("agent") / "platform")
    copy_example(repo.path)
    (repo.path / ".gitignore").write_text(".llmcc/\n")
    canary = new_canary()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOPS_AGE_KEY_FILE", str(DEMO_IDENTITY))
        mp.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(canary.encode())))
        rotate = ["data-pipeline.db.password", "--target", "prod", "--value-from-stdin"]
        assert main(["-C", str(repo.path), "--quiet", "secrets", "rotate", *rotate]) == 0
    repo.commit("prod: a canary db password")
    publish(repo.path, "prod", "prod@acme", "dev")
    return Published(repo.path, canary)


@pytest.fixture
def published(published_base: Published, tmp_path: Path) -> Published:
    """A private copy (tests publish into it and break its store)."""
    root = tmp_path / "platform"
    shutil.copytree(published_base.root, root, symlinks=True)
    return Published(root, published_base.canary)
