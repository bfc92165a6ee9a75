"""Plaintext secrets in individual files, for ``llmcc hook secrets-guard``: fast, and no identity needed.

The full check runs in ``validate`` per target (``compiler.validate.secrets_guard``);
this one looks only at the files given (the staged ones), with the same rules
and messages:

1. A ``*.sops.yaml`` file (not the sops configuration ``.sops.yaml``) must be
   SOPS-encrypted, and every field the schema marks ``x-secret`` in it encrypted.
2. A plain layer file (``environments/**.yaml``) or template must not set an
   ``x-secret`` field (templates are checked through the modules whose
   ``extends`` chain holds them).
3. No file may hold private key material: an age identity or a PEM private key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePosixPath

from compiler.diagnostics import Diagnostic, Origin
from compiler.load.layers import ENVIRONMENTS
from compiler.load.yaml import Document, Tagged, Value, load_document
from compiler.repository import TEMPLATES, Repository
from compiler.secrets.sops import is_sops_document
from compiler.secrets.sources import unencrypted_leaves
from compiler.validate.secrets_guard import LEFT_PLAIN, MESSAGE, NOT_SOPS
from compiler.validate.secretwalk import secret_paths

SOPS_CONFIG = ".sops.yaml"
_PRIVATE_KEY = re.compile(rb"AGE-SECRET-KEY-1[0-9A-Z]{20,}|-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
PRIVATE_KEY_MESSAGE = (
    "private key material in the repository: keep private keys outside it "
    "(a CI secret, a KMS, or ~/.config/llmcc/keys/) and commit only the public half"
)


def scan_files(repo: Repository, files: Iterable[str]) -> list[Diagnostic]:
    """Findings in ``files`` (repository-relative); files that no longer exist are skipped."""
    out: list[Diagnostic] = []
    templates: list[str] = []
    for path in sorted({f.removeprefix("./") for f in files}):
        if not repo.tree.exists(path):
            continue
        data = repo.tree.read(path)
        out += _private_keys(data, path)
        name = PurePosixPath(path).name
        if name.endswith(".sops.yaml") and name != SOPS_CONFIG:
            out += _sops_file(repo, data, path)
        elif path.startswith(f"{ENVIRONMENTS}/") and name.endswith((".yaml", ".yml")):
            out += _layer_file(repo, load_document(data, path=path, layer=_layer_name(path)))
        elif path.startswith(f"{TEMPLATES}/") and name.endswith((".yaml", ".yml")):
            templates.append(path)
    if templates:
        out += _templates(repo, set(templates))
    return out


def _layer_name(path: str) -> str:
    """The layer name compile gives the file (``prod``, ``tenants/acme``, ``prod (secrets)``); "" outside layers."""
    if not path.startswith(f"{ENVIRONMENTS}/"):
        return ""
    stem = path.removeprefix(f"{ENVIRONMENTS}/")
    if stem.endswith(".secrets.sops.yaml"):
        return stem.removesuffix(".secrets.sops.yaml") + " (secrets)"
    return stem.rsplit(".", 1)[0]


def _private_keys(data: bytes, path: str) -> list[Diagnostic]:
    m = _PRIVATE_KEY.search(data)
    if m is None:
        return []
    line = data.count(b"\n", 0, m.start()) + 1
    return [Diagnostic(message=PRIVATE_KEY_MESSAGE, origin=Origin(path=path, line=line, column=1, layer=""))]


def _modules(repo: Repository, doc: Document) -> list[tuple[str, Value]]:
    """The ``modules:`` patches of a layer document, for modules that have a schema."""
    value = doc.value
    patch = value.get("modules") if isinstance(value, dict) else None
    if isinstance(patch, Tagged):
        patch = patch.value
    if not isinstance(patch, dict):
        return []
    return [(m, v) for m, v in patch.items() if m in repo.modules]


def _sops_file(repo: Repository, data: bytes, path: str) -> list[Diagnostic]:
    doc = load_document(data, path=path, layer=_layer_name(path))
    if not is_sops_document(doc.value):
        return [Diagnostic(message=NOT_SOPS, origin=doc.origin(()))]
    out = []
    for module, patch in _modules(repo, doc):
        for spath in sorted(set(secret_paths(repo.schema(module), patch)), key=str):
            if unencrypted_leaves(_get(patch, spath)):
                origin = doc.origin(("modules", module, *spath))
                out.append(Diagnostic(message=LEFT_PLAIN, origin=origin, module=module, path=spath))
    return out


def _layer_file(repo: Repository, doc: Document) -> list[Diagnostic]:
    out = []
    for module, patch in _modules(repo, doc):
        for spath in sorted(set(secret_paths(repo.schema(module), patch)), key=str):
            origin = doc.origin(("modules", module, *spath))
            out.append(Diagnostic(message=MESSAGE, origin=origin, module=module, path=spath))
    return out


def _templates(repo: Repository, paths: set[str]) -> list[Diagnostic]:
    out = []
    seen: set[tuple[str, tuple[str | int, ...]]] = set()
    for module in repo.modules:
        schema = repo.schema(module)
        for plan in repo.templates(module):
            if plan.document.path not in paths:
                continue
            for spath in sorted(set(secret_paths(schema, plan.static)), key=str):
                if (plan.document.path, spath) in seen:
                    continue
                seen.add((plan.document.path, spath))
                origin = plan.document.origin(spath)
                out.append(Diagnostic(message=MESSAGE, origin=origin, module=module, path=spath))
    return out


def _get(value: Value, path: tuple[str | int, ...]) -> Value:
    for part in path:
        if isinstance(value, Tagged):
            value = value.value
        if isinstance(value, dict) and isinstance(part, str):
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
        else:
            return None
    return value
