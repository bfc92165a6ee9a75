"""The runtime tier loads no compile-time package (issue 11, "Layout and install footprint").

A service installs ``llm-config-compiler`` without the ``cli`` extra, so the
modules the runtime client is built from must import without pydantic,
ruamel.yaml, Jinja, JSON Schema, CEL, GitPython, deepdiff or detect-secrets.
Nor may they load a compile-side module of ours (compiler.project,
compiler.sources, ...): only the tier itself. Each module is imported in a
fresh interpreter (``sys.modules`` of this one holds everything); a failure
names the package and the chain of imports that loaded it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PROBE = Path(__file__).with_name("_probe.py")

# module -> the forbidden packages it may load (its backend's client library).
RUNTIME_TIER: dict[str, tuple[str, ...]] = {
    "compiler": (),
    "compiler.errors": (),
    "compiler.fileops": (),
    "compiler.jsontypes": (),
    "compiler.jsonpath": (),
    "compiler.masking": (),
    "compiler.extras": (),
    "compiler.names": (),
    "compiler.limits": (),
    "compiler.suggestions": (),
    "compiler.reader": (),
    "compiler.freshness": (),
    "compiler.verify": (),
    "compiler.delta": (),
    "compiler.bundle": (),
    "compiler.bundle.canonical": (),
    "compiler.bundle.dsse": (),
    "compiler.bundle.model": (),
    "compiler.storage": (),
    "compiler.storage.base": (),
    "compiler.storage.file": (),
    "compiler.storage.oci": (),
    "compiler.storage.seen": (),
    "compiler.storage._registry": (),
    "compiler.storage._registry_auth": (),
    "compiler.storage._registry_transport": (),
    "compiler.storage.s3": ("boto3", "botocore", "s3transfer"),
    "compiler.secrets": (),
    "compiler.secrets.reader": (),
    "compiler.secrets.envelope": (),
    "compiler.secrets.bundlekek": (),
    "compiler.secrets.identity": (),
    "compiler.secrets.kek": (),
    "compiler.secrets.kek.base": (),
    "compiler.secrets.kek.age": (),
    "compiler.secrets.kek.awskms": ("boto3", "botocore", "s3transfer"),
    "compiler.secrets.kek.vault_transit": ("hvac",),
}
if (REPO_ROOT / "compiler" / "client" / "__init__.py").exists():
    RUNTIME_TIER["compiler.client"] = ()
# The compiler modules the tier may load: itself, the client's own modules, and any
# module of the packages that are runtime through and through (a new store module
# is probed for forbidden packages through the modules that import it).
TIER = [*RUNTIME_TIER, "compiler.client.*", "compiler.storage.*", "compiler.bundle.*", "compiler.secrets.kek.*"]


def leaked_packages(module: str, allowed: tuple[str, ...] = ()) -> dict[str, str]:
    """Forbidden package or compile-side module -> import chain, for ``module`` imported in a fresh interpreter."""
    request = {"module": module, "allowed": allowed, "tier": TIER}
    proc = subprocess.run(
        [sys.executable, str(PROBE), json.dumps(request)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    leaked: dict[str, str] = json.loads(proc.stdout)
    return leaked


@pytest.mark.parametrize(("module", "allowed"), RUNTIME_TIER.items(), ids=list(RUNTIME_TIER))
def test_runtime_module_loads_no_compile_time_package(module: str, allowed: tuple[str, ...]) -> None:
    leaked = leaked_packages(module, allowed)
    assert not leaked, f"{module} loads compile-time packages:\n" + "\n".join(
        f"  {name}: {chain}" for name, chain in leaked.items()
    )


def test_the_probe_names_the_module_that_imported_a_forbidden_package() -> None:
    # compiler.manifest_schema is compile-time: it must be caught, with the line that imported pydantic.
    leaked = leaked_packages("compiler.manifest_schema")
    assert "pydantic" in leaked
    assert leaked["pydantic"].startswith("pydantic <- compiler.manifest_schema (")
    assert "compiler/manifest_schema.py:" in leaked["pydantic"]


def test_the_probe_names_a_compile_side_module_of_ours() -> None:
    # compiler.sources.base loads nothing heavy, but it is compile-side: the tier may not import it.
    leaked = leaked_packages("compiler.sources.base")
    assert list(leaked) == ["compiler.sources", "compiler.sources.base"]
    assert leaked["compiler.sources"] == "compiler.sources <- the probe's import"


def test_an_allowed_backend_package_is_not_reported() -> None:
    assert "hvac" not in leaked_packages("compiler.secrets.kek.vault_transit", ("hvac",))
    assert "hvac" in leaked_packages("compiler.secrets.kek.vault_transit")
