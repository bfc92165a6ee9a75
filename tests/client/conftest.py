"""The client's test platform: the example repository with a canary secret, published by the real CLI.

``platform`` is built once per session: prod published three times (temperature
0.3, 0.4, 0.5) into a file store, a copy of the store kept after each publish
(``stores[n]`` holds versions 1..n with the pointer at n), so a test can roll a
store back to a validly signed older state.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.secrets.identity import load_identities
from compiler.secrets.sops import decrypt_sops, encrypt_sops
from tests.conftest import DEMO_IDENTITY, GIT_ENV, REPO_ROOT, GitRepo, copy_example, init_repo
from tests.secrets._secrets_support import new_canary
from tests.storage.conftest import fake_aws, moto_server, oci_spec, registry, s3_spec  # noqa: F401 - fixtures

SECRETS = "environments/prod.secrets.sops.yaml"
TEMPERATURES = (0.3, 0.4, 0.5)
TRUSTED = REPO_ROOT / "keys" / "demo-signing.pub"
SIGNING = REPO_ROOT / "keys" / "demo-signing.pem"


@dataclass
class Platform:
    repo: GitRepo
    canary: str
    stores: dict[int, Path]

    @property
    def root(self) -> Path:
        return self.repo.path

    def set_temperature(self, temperature: float) -> None:
        prod = self.root / "environments" / "prod.yaml"
        text = prod.read_text()
        line = next(x for x in text.splitlines() if x.startswith("  temperature: "))
        prod.write_text(text.replace(line, f"  temperature: {temperature}"))
        self.repo.commit(f"prod: temperature {temperature}")

    def publish(self, store: str, *extra: str, target: str = "prod") -> None:
        argv = ["-C", str(self.root), "publish", "-q", "--signing-key", str(SIGNING), "--store", store]
        assert main([*argv, "-t", target, *extra]) == 0

    def clone(self, dest: Path) -> Platform:
        """A clone of the repository to commit in (the session's stays as it is)."""
        subprocess.run(["git", "clone", "-q", str(self.root), str(dest)], check=True, capture_output=True)
        return Platform(repo=GitRepo(dest), canary=self.canary, stores=self.stores)

    def copy_store(self, n: int, dest: Path) -> Path:
        """A store holding versions 1..n of prod, its pointer at n."""
        shutil.copytree(self.stores[n], dest)
        return dest


def put_canary(root: Path, canary: str) -> None:
    """data-pipeline.db.password of prod becomes ``canary``, encrypted by the real sops (plaintext only in memory)."""
    identities = load_identities(DEMO_IDENTITY, {})
    doc = json.loads(decrypt_sops((root / SECRETS).read_bytes(), path=SECRETS, identities=identities))
    doc["modules"]["data-pipeline"]["db"]["password"] = canary
    (root / SECRETS).write_bytes(encrypt_sops(json.dumps(doc).encode(), path=SECRETS, cwd=root))


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    base = tmp_path_factory.mktemp("client-platform")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in GIT_ENV.items():
            mp.setenv(k, v)
        mp.setenv("HOME", str(base / "home"))
        mp.setenv("XDG_CONFIG_HOME", str(base / "home" / ".config"))
        mp.setenv("XDG_STATE_HOME", str(base / "home" / ".local" / "state"))
        mp.setenv("XDG_CACHE_HOME", str(base / "home" / ".cache"))
        for var in ("SOPS_AGE_KEY", "LLMCC_SIGNING_KEY_FILE"):
            mp.delenv(var, raising=False)
        mp.setenv("SOPS_AGE_KEY_FILE", str(DEMO_IDENTITY))
        repo = init_repo(base / "platform")
        copy_example(repo.path)
        canary = new_canary()
        put_canary(repo.path, canary)
        repo.commit("Example platform config")
        platform = Platform(repo=repo, canary=canary, stores={})
        store = base / "store"
        for n, temperature in enumerate(TEMPERATURES, start=1):
            if n > 1:
                platform.set_temperature(temperature)
            platform.publish(f"file://{store}")
            platform.stores[n] = shutil.copytree(store, base / f"store-{n}")
        yield platform


@pytest.fixture
def publisher_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a test that publishes needs: the demo identity for sops."""
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(DEMO_IDENTITY))
