"""Validity of environments' merged modules kept across runs (issue 14: one tenant value, ``hook validate``).

A tenant target's module is its environment's merged module edited
copy-on-write; when the environment's module is valid against its schema,
only the edits are validated (``compiler.compile.pipeline.EnvBase.valid_base``).
Whether it is valid took compiling every module's full validator and
validating every environment module, in every run that rebuilt a tenant. A
verdict "valid" is kept here under a key made of everything the merged module
and its validation are a function of:

- the schema's ``ModuleSchema.digest`` (its bytes, every file under
  ``schemas/`` when it references another, the validation source) and the
  engine's version;
- the environment and project name, and the cache key of each document the
  module is merged from, in order: every layer of the environment's stack
  (their variables feed the templates) and the module's template chain -- the
  keys ``ParsedDocuments`` read them under (each a SHA-256 of the bytes this
  run read, so a file changed since a run's listing cannot pair old bytes with
  a new verdict);
- the renderer's digest (``render_digest``: its source and Jinja's version);

plus, through the entry header, the llmcc version. Only "valid" is kept: an
invalid module is validated each time and reported as without the cache. A
stack with a SOPS layer (never read through the parsed tier) or a document
whose key is not known gets no verdict. The entry goes through the store's
checks (owner, no symlinks, digest); anything but ``{"valid": true}`` is "not
known", and the module is validated.

A target's module gets a verdict of its own (``module_known``): that its schema finds nothing
in it, kept under the schema's digest and the engine's version as above, the renderer's digest,
the target's name, the keys of its module's template chain, and for each layer of its stack: the
cache key of the file when the layer is one of its environment's own (the same parsed document),
else (a tenant's file) the SHA-256 of that layer's ``vars`` and of its patch of this module only
(merge tags included, ``_patch_digest``). A change to a tenant file's ``vars`` re-renders every
module of its targets, but a module whose patch and variables are what they were is the same
value, so its check (``compiler.validate.edits``, and the validators it compiles) is skipped. The
same rules as above: only "valid" is kept, a SOPS layer or an unknown key gives no verdict.

Likewise a schema file that passed ``ModuleSchema.load``'s checks (strict JSON,
the 2020-12 meta-schema, the ``x-secret`` and ``$id`` rules) is kept as
"checked" under its path, ``ModuleSchema.digest`` and the engine's version: the
next load of the same bytes parses it without the duplicate-key hook and skips
those checks. References are resolved and checked each time; a validator is
compiled when first used.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Protocol

from compiler.incremental.exact import exact_digest
from compiler.incremental.parsed import ParsedDocuments, dist_version, render_digest
from compiler.incremental.store import ResultCache
from compiler.jsontypes import JSONObject

if TYPE_CHECKING:
    from compiler.compile.repository import Repository
    from compiler.compile.types import LayerDoc, TargetStack
    from compiler.validate.schema import ModuleSchema

SCHEME = "base-valid/1"
MODULE_SCHEME = "module-valid/1"
CHECKED_SCHEME = "schema-checked/1"
_VALID = {"valid": True}
_CHECKED = {"checked": True}


class EnvBase(Protocol):
    """What a verdict's key reads of ``compiler.compile.pipeline.EnvBase`` (the orchestrator's type)."""

    @property
    def stack(self) -> TargetStack: ...


class KeptVerdicts:
    """``compiler.compile.pipeline.BaseVerdicts`` in the result cache; ``hits``/``learned`` count what it did."""

    def __init__(self, store: ResultCache, parsed: ParsedDocuments, repo: Repository) -> None:
        self.store = store
        self.parsed = parsed
        self.repo = repo
        self.hits = 0
        self.learned = 0
        self.schema_hits = 0
        self.module_hits = 0
        self.module_learned = 0

    def key(self, base: EnvBase, module: str, schema: ModuleSchema) -> str | None:
        """The verdict's key (module doc), or None when it cannot be made."""
        if not schema.digest:
            return None  # a schema loaded without its digest
        docs = [layer.document for layer in base.stack.layers if not layer.ref.secrets]
        if len(docs) != len(base.stack.layers):
            return None
        docs += [plan.document for plan in self.repo.templates(module)]
        keys = [self.parsed.key_of(doc) for doc in docs]
        if any(k is None for k in keys):
            return None
        names = [self.repo.project.name, base.stack.target.name, module]
        head = f"{SCHEME}\0{schema.digest}\0jsonschema-rs={dist_version('jsonschema_rs')}\0{render_digest()}\0"
        body = json.dumps([names, [[doc.path, k] for doc, k in zip(docs, keys, strict=True)]])
        return hashlib.sha256((head + body).encode()).hexdigest()

    def known(self, base: EnvBase, module: str, schema: ModuleSchema) -> bool:
        key = self.key(base, module, schema)
        if key is None or not _says(self.store.get(key), "valid"):
            return False
        self.hits += 1
        return True

    def learn(self, base: EnvBase, module: str, schema: ModuleSchema) -> None:
        key = self.key(base, module, schema)
        if key is not None:
            self.store.put(key, dict(_VALID))
            self.learned += 1

    def module_key(self, base: EnvBase, stack: TargetStack, module: str, schema: ModuleSchema) -> str | None:
        """The key of the verdict on ``stack``'s ``module`` (module doc), or None when it cannot be made."""
        if not schema.digest:
            return None
        shared = {id(layer.document): layer.document for layer in base.stack.layers}
        parts: list[list[str]] = []
        for layer in stack.layers:
            if layer.ref.secrets:
                return None
            doc = layer.document
            if shared.get(id(doc)) is doc:
                k = self.parsed.key_of(doc)
            else:
                k = _patch_digest(layer, module)
                if k is not None:
                    k = f"own:{k}"
            if k is None:
                return None
            parts.append([layer.ref.path, k])
        for plan in self.repo.templates(module):
            k = self.parsed.key_of(plan.document)
            if k is None:
                return None
            parts.append([plan.document.path, k])
        names = [self.repo.project.name, stack.target.name, module]
        head = f"{MODULE_SCHEME}\0{schema.digest}\0jsonschema-rs={dist_version('jsonschema_rs')}\0{render_digest()}\0"
        return hashlib.sha256((head + json.dumps([names, parts])).encode()).hexdigest()

    def module_known(self, base: EnvBase, stack: TargetStack, module: str, schema: ModuleSchema) -> bool:
        key = self.module_key(base, stack, module, schema)
        if key is None or not _says(self.store.get(key), "valid"):
            return False
        self.module_hits += 1
        return True

    def module_learn(self, base: EnvBase, stack: TargetStack, module: str, schema: ModuleSchema) -> None:
        key = self.module_key(base, stack, module, schema)
        if key is not None:
            self.store.put(key, dict(_VALID))
            self.module_learned += 1

    def _checked_key(self, path: str, digest: str) -> str:
        head = f"{CHECKED_SCHEME}\0{path}\0{digest}\0jsonschema-rs={dist_version('jsonschema_rs')}"
        return hashlib.sha256(head.encode()).hexdigest()

    def checked(self, path: str, digest: str) -> bool:
        """``compiler.validate.schema.CheckedSchemas``: the schema passed the load checks before."""
        if not _says(self.store.get(self._checked_key(path, digest)), "checked"):
            return False
        self.schema_hits += 1
        return True

    def learn_checked(self, path: str, digest: str) -> None:
        self.store.put(self._checked_key(path, digest), dict(_CHECKED))


def _patch_digest(layer: LayerDoc, module: str) -> str | None:
    """SHA-256 of ``layer``'s ``vars`` and its patch of ``module`` (merge tags included, and whether the
    document is tagged); None when they cannot be written exactly (``compiler.incremental.exact``)."""
    return exact_digest([layer.vars, module in layer.modules, layer.modules.get(module), layer.document.tagged])


def _says(payload: JSONObject | None, word: str) -> bool:
    """Whether ``payload`` is ``{word: true}`` exactly (``1`` equals ``True`` in Python: not enough)."""
    return payload is not None and payload.keys() == {word} and payload[word] is True
