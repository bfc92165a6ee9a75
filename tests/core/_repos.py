"""Small config repositories written into temp dirs, for the core tests.

``mini_repo`` writes a complete, valid repository (three environments with
``prod -> staging``, one tenant, one module ``engine`` with a template and a
schema); every argument replaces or adds files, so a test states only the part
it is about. ``None`` as a file's content removes that file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from compiler.compile.repository import Repository
from compiler.secrets.sources import SopsOpener
from compiler.sources.worktree import WorkTree

MANIFEST = """\
project: mini
environments:
  dev: {}
  staging: {}
  prod: {extends: staging}
tenants:
  acme: {environments: [staging, prod]}
"""

ENGINE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["model"],
    "properties": {
        "model": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "temperature": {"type": "number", "minimum": 0, "maximum": 1.0},
                "max_tokens": {"type": "integer", "minimum": 1},
            },
        },
        "fallbacks": {"type": "array", "items": {"type": "string"}},
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
        "region": {"type": "string"},
        "api_key": {"type": "string", "x-secret": True},
        "description": {"type": "string"},
    },
}

ENGINE_TEMPLATE = """\
model:
  name: "{{ model }}"
  temperature: "{{ temperature }}"
  max_tokens: "{{ max_tokens | default(1000) }}"
fallbacks:
  - small
region: "{{ region }}"
"""

BASE = """\
vars:
  model: big
  temperature: 0.5
  region: us-east-1
"""

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_RECIPIENT = (REPO_ROOT / "keys" / "demo.agekey.pub").read_text(encoding="utf-8").strip()

DEFAULT_FILES: dict[str, str] = {
    "llmcc.yaml": MANIFEST,
    # the recipients every SOPS file must be encrypted for (sops_encrypt uses the demo key)
    ".sops.yaml": f"creation_rules:\n  - age: {DEMO_RECIPIENT}\n",
    "schemas/engine.schema.json": json.dumps(ENGINE_SCHEMA, indent=2),
    "templates/engine.yaml": ENGINE_TEMPLATE,
    "environments/base.yaml": BASE,
    "environments/dev.yaml": "vars:\n  model: tiny\n",
    "environments/staging.yaml": "vars:\n  region: eu-west-1\n",
    "environments/prod.yaml": "modules:\n  engine:\n    model:\n      max_tokens: 4000\n",
}


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def write_files(root: Path, files: dict[str, str | dict[str, Any] | None]) -> Path:
    """Write ``files`` (path -> text; a dict is dumped as JSON; None deletes) under ``root``."""
    for rel, content in files.items():
        path = root / rel
        if content is None:
            path.unlink(missing_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(content, indent=2) if isinstance(content, dict) else content
        path.write_text(text, encoding="utf-8")
    return root


def mini_repo(root: Path, files: dict[str, str | dict[str, Any] | None] | None = None) -> Path:
    """The default mini repository with ``files`` written over it."""
    root.mkdir(parents=True, exist_ok=True)
    write_files(root, dict(DEFAULT_FILES))
    return write_files(root, files or {})


def open_repo(root: Path) -> Repository:
    """The repository as ``validate`` opens it without an identity: SOPS values stay opaque."""
    return Repository(WorkTree(root), open_secrets=SopsOpener(None), secrets_opaque=True)


def many_targets_repo(root: Path, *, tenants: int, modules: int = 3) -> Path:
    """A repository with ``3 + 2 * tenants`` targets and ``modules`` modules, every layer different."""
    names = [f"t{i:02d}" for i in range(tenants)]
    manifest = MANIFEST.split("tenants:")[0] + "tenants:\n"
    manifest += "".join(f"  {n}: {{environments: [staging, prod]}}\n" for n in names)
    files: dict[str, str | dict[str, Any] | None] = {"llmcc.yaml": manifest}
    for m in range(1, modules):
        files[f"schemas/engine{m}.schema.json"] = ENGINE_SCHEMA
        files[f"templates/engine{m}.yaml"] = ENGINE_TEMPLATE.replace("small", f"small-{m}")
    for i, n in enumerate(names):
        files[f"environments/tenants/{n}.yaml"] = dedent(
            f"""
            vars:
              temperature: {round(0.01 * i, 2)}
            modules:
              engine:
                tags: {{tenant: {n}, ünïcode: "✓ {i}"}}
                fallbacks: !append [tenant-{n}]
            """
        )
        files[f"environments/prod/tenants/{n}.yaml"] = f"modules:\n  engine:\n    model:\n      max_tokens: {100 + i}\n"
    return mini_repo(root, files)


YAML_IO = ["--input-type", "yaml", "--output-type", "yaml"]


def sops_encrypt(plaintext: str, *, cwd: Path) -> str:
    """``plaintext`` YAML encrypted by the real sops binary for the demo key (keys/demo.agekey)."""
    sops = Path(sys.executable).parent / "sops"
    proc = subprocess.run(
        [str(sops), "--disable-version-check", "encrypt", "--age", DEMO_RECIPIENT, *YAML_IO, "/dev/stdin"],
        input=plaintext.encode(),
        capture_output=True,
        cwd=cwd,  # no .sops.yaml here: the recipient comes from --age
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(cwd)},
        check=True,
    )
    return proc.stdout.decode()
