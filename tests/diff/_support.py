"""A small config repository with a known git history, and a way to run one command module.

The commands are not in ``compiler.cli._commands`` yet, so ``run_command``
builds each one's parser from its ``add_arguments`` and calls ``run`` inside
the real error boundary (exit codes and one-line errors as ``main`` gives).
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path
from types import ModuleType

from compiler.cli import Context, error_boundary
from compiler.secrets.sops import encrypt_sops
from tests.conftest import DEMO_IDENTITY, GitRepo

DEMO_RECIPIENT = (DEMO_IDENTITY.parent / "demo.agekey.pub").read_text(encoding="utf-8").strip()

MANIFEST = """\
project: review
environments:
  dev: {}
  staging: {}
  prod: {extends: staging}
tenants:
  acme: {environments: [staging, prod]}
  globex: {environments: [prod]}
"""

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "model": {"type": "object"},
        "routes": {"type": "array"},
        "fallbacks": {"type": "array"},
        "prompt": {"type": "string"},
        "api_key": {"type": "string", "x-secret": True},
    },
}

TEMPLATE = """\
model:
  name: "{{ model }}"
  temperature: "{{ temperature }}"
  max_tokens: 1000
fallbacks: [small, medium, large]
routes:
  - {name: chat, timeout: 30}
  - {name: embed, timeout: 10}
  - {name: batch, timeout: 300}
"""

PROMPT = "".join(f"Line {i} of the system prompt.\n" for i in range(1, 21))

FILES = {
    "llmcc.yaml": MANIFEST,
    ".sops.yaml": (
        f"creation_rules:\n  - path_regex: environments/.*\\.secrets\\.sops\\.yaml$\n    age: {DEMO_RECIPIENT}\n"
    ),
    "schemas/engine.schema.json": json.dumps(SCHEMA, indent=2),
    "templates/engine.yaml": TEMPLATE,
    "environments/base.yaml": "vars:\n  model: big\n  temperature: 0.5\nmodules:\n  engine:\n    prompt: |\n"
    + textwrap.indent(PROMPT, "      "),
    "environments/dev.yaml": "vars:\n  model: tiny\n",
    "environments/staging.yaml": "vars:\n  temperature: 0.4\n",
    "environments/prod.yaml": "modules:\n  engine:\n    model:\n      max_tokens: 4000\n",
    "environments/tenants/acme.yaml": "modules:\n  engine:\n    model:\n      max_tokens: 2000\n",
}


def write(repo: GitRepo, files: dict[str, str | None]) -> None:
    for rel, text in files.items():
        if text is None:
            (repo.path / rel).unlink()
        else:
            repo.write(rel, text)


def seed(repo: GitRepo) -> str:
    """The first commit: every file of ``FILES``, by Ada."""
    write(repo, dict(FILES))
    return repo.commit("Initial platform config", author="Ada Author <ada@example.com>", date="2026-01-01T10:00:00Z")


def encrypt(repo: GitRepo, rel: str, plaintext: str) -> None:
    """Write ``rel`` as a SOPS file, encrypted by the real sops for the demo key."""
    repo.write(rel, encrypt_sops(plaintext.encode(), path=rel, cwd=repo.path).decode())


def run_command(module: ModuleType, root: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog=f"llmcc {module.__name__.rsplit('.', 1)[-1]}")
    module.add_arguments(parser)
    args = parser.parse_args(list(argv))
    with error_boundary(debug=False) as result:
        result.code = module.run(args, Context(root=root, quiet=True, debug=False))
    return result.code
