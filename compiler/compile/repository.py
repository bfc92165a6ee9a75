"""Everything targets share, loaded once per process: manifest, schemas, templates, layer files.

A ``Repository`` reads through a ``SourceTree`` (the working tree or a git
revision) and caches each parsed file, so compiling 200 targets parses the
shared layers once. It is safe to fork after loading: worker processes inherit
the parsed files. It holds parsed inputs only: what compiling derives from them
(rendered values, findings, environments' merged modules, compiled policies) is
kept by the caller in a ``compiler.compile.pipeline.CompileCaches``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from compiler.compile.types import DocumentLoader, LayerDoc, SecretsOpener, parse_only
from compiler.errors import InputError
from compiler.load.layers import LayerRef
from compiler.load.yaml import Document, Tagged, Value, load_document
from compiler.project import MANIFEST, Project, load_project
from compiler.sources.base import SourceTree

if TYPE_CHECKING:
    from compiler.render.jinja import TemplatePlan
    from compiler.validate.schema import CheckedSchemas, ModuleSchema
    from compiler.validate.schemafiles import SchemaFiles

# Templates, schemas and the schema engine are imported when first read: a run whose targets
# all come from the result cache reads none of them (issue 14 §2).

SCHEMAS = "schemas"
TEMPLATES = "templates"
SCHEMA_SUFFIX = ".schema.json"
LAYER_KEYS = ("vars", "modules")
MAX_EXTENDS = 32  # templates in one chain of extends, the module's own included (README "Limits")


class Repository:
    """The shared, parsed inputs of one config repository at one revision."""

    def __init__(
        self, tree: SourceTree, *, open_secrets: SecretsOpener | None = None, secrets_opaque: bool = True
    ) -> None:
        self.tree = tree
        self.project: Project = load_project(tree.read(MANIFEST))
        self.modules: list[str] = sorted(
            n[: -len(SCHEMA_SUFFIX)] for n in tree.list_dir(SCHEMAS) if n.endswith(SCHEMA_SUFFIX)
        )
        if not self.modules:
            raise InputError(f"{SCHEMAS}/: no <module>{SCHEMA_SUFFIX} files; every module needs a schema")
        self._open_secrets = open_secrets
        # Without an identity, SOPS values stand in opaquely; schema checks skip them.
        self.secrets_opaque = secrets_opaque
        self._schemas: dict[str, ModuleSchema] = {}
        # Validators compiled when first used (``ModuleSchema.load(lazy=True)``): the result cache sets it,
        # as its validity verdicts (compiler.incremental.verdicts) may leave a run needing none.
        self.lazy_schemas = False
        # Schemas that passed the load checks before (the result cache's, with ``lazy_schemas``).
        self.schema_checks: CheckedSchemas | None = None
        self._templates: dict[str, list[TemplatePlan]] = {}
        self._layers: dict[str, LayerDoc | None] = {}
        # The time policies are checked at (secret ages, waiver expiry): see compiler.policy.policy_time.
        self.policy_now: datetime | None = None
        # Parses templates and plain layer files; the result cache puts its parsed-file tier here
        # (compiler.incremental.plan). SOPS files always go to the parser itself.
        self.parse: DocumentLoader = parse_only
        # Templates and plain layers that set an x-secret field (``_sets_no_secret`` said no): kept
        # nowhere on disk, not as parsed files nor as the values their scalars rendered.
        self.unkept: set[str] = set()
        # Drops the kept parsed copy of a file (the result cache sets it: ``ParsedDocuments.forget``).
        self.forget: Callable[[str], None] = _forget_nothing
        # Variables a template in ``unkept`` reads: a plain layer that defines one is not kept either
        # (its value may be what the template renders into an x-secret field; issue 14 §2).
        self._unkept_names: set[str] = set()
        self._files_checked = False  # check_schema_files passed

    @cached_property
    def schema_files(self) -> SchemaFiles:
        """What a ``$ref`` to another file under ``schemas/`` reads."""
        from compiler.validate.schemafiles import SchemaFiles

        return SchemaFiles(self.tree)

    def check_schema_files(self) -> None:
        """Check every JSON file under ``schemas/`` that is not a module's schema, referenced or not.

        A ``$ref`` may name any of them, so each must be what a referenced one must be
        (``compiler.validate.schema.check_shared``: JSON, a 2020-12 schema, every
        ``x-secret`` where the secret walk sees it, references that resolve). Before,
        one that no module referenced was never read: an invalid file sat there silently,
        and passed until the day a reference reached it. The module schemas check
        themselves as they load. Files not ending in ``.json`` are not schemas (a
        ``$ref`` to one is refused). One ``list_tree`` when there is none (the example).

        Raises:
            InputError: at the file:line of the first fault.
        """
        if self._files_checked:
            return
        modules = {f"{SCHEMAS}/{m}{SCHEMA_SUFFIX}" for m in self.modules}
        if any(p.endswith(".json") and p not in modules for p in self.tree.list_tree(SCHEMAS)):
            from compiler.validate.schema import check_shared

            check_shared(self.schema_files)
        self._files_checked = True

    def schema(self, module: str) -> ModuleSchema:
        ms = self._schemas.get(module)
        if ms is None:
            from compiler.validate.schema import ModuleSchema

            path = f"{SCHEMAS}/{module}{SCHEMA_SUFFIX}"
            ms = self._schemas[module] = ModuleSchema.load(
                module,
                path,
                self.tree.read(path),
                self.schema_files,
                lazy=self.lazy_schemas,
                checked=self.schema_checks,
            )
        return ms

    def templates(self, module: str) -> list[TemplatePlan]:
        """The module's template and the templates it ``extends``, base first ([] when none)."""
        plans = self._templates.get(module)
        if plans is None:
            plans = self._templates[module] = self._load_chain(f"{module}.yaml")
        return plans

    def _load_chain(self, name: str) -> list[TemplatePlan]:
        """The chain of ``extends`` from ``name`` up, base first; at most ``MAX_EXTENDS`` templates."""
        if not self.tree.exists(f"{TEMPLATES}/{name}"):
            return []
        from compiler.render.jinja import plan_template
        from compiler.validate.literal_jinja import COMMENT_MESSAGE, has_jinja, jinja_in_comments

        seen: list[str] = []
        plans: list[TemplatePlan] = []
        while True:
            path = f"{TEMPLATES}/{name}"
            if name in seen:
                raise InputError(f"{TEMPLATES}/{seen[-1]}: extends cycle {' -> '.join([*seen, name])}")
            data = self.tree.read(path)
            doc = self.parse(data, path=path, layer="template", rev=self.tree.rev, keep=self._sets_no_secret)
            for line, col in jinja_in_comments(data):
                raise InputError(f"{path}:{line}:{col}: {COMMENT_MESSAGE}")
            body = doc.value
            if body is None:
                body = {}
            if not isinstance(body, dict):
                raise InputError(f"{doc.origin(()).location()}: a template must be a mapping")
            seen.append(name)
            parent = body.get("extends")
            if parent is not None:
                where = doc.origin(("extends",)).location()
                if isinstance(parent, str) and has_jinja(parent):
                    raise InputError(f"{where}: extends is not rendered: name the template file")
                if not isinstance(parent, str) or not parent.endswith(".yaml"):
                    raise InputError(f"{where}: extends takes a template file name")
                if len(seen) >= MAX_EXTENDS:
                    raise InputError(f"{where}: a chain of extends is at most {MAX_EXTENDS} templates long")
                body = {k: v for k, v in body.items() if k != "extends"}
            plan = plan_template(doc, body)
            plan.keep = path not in self.unkept  # its rendered scalars stay off disk too
            if not plan.keep:
                self.unkeep_layers_read_by(set(plan.readers))
            plans.append(plan)
            if parent is None:
                return plans[::-1]
            name = parent

    def layer(self, ref: LayerRef) -> LayerDoc | None:
        """The parsed layer file, or None when an optional layer does not exist."""
        if ref.path in self._layers:
            return self._layers[ref.path]
        if not self.tree.exists(ref.path):
            if ref.required:
                raise InputError(f"{ref.path}: missing layer file for environment {ref.name!r} (see llmcc.yaml)")
            self._layers[ref.path] = None
            return None
        data = self.tree.read(ref.path)
        if ref.secrets:  # a SOPS file's parse is never kept
            doc = load_document(data, path=ref.path, layer=ref.name, rev=self.tree.rev, quote_values=False)
        else:
            doc = self.parse(data, path=ref.path, layer=ref.name, rev=self.tree.rev, keep=self._layer_kept)
        value = doc.value
        if ref.secrets:
            if self._open_secrets is None:
                raise InputError(f"{ref.path}: SOPS files need the secrets support")
            value = self._open_secrets(ref, doc, data)
        layer = self._check_layer(ref, doc, value)
        self._layers[ref.path] = layer
        return layer

    def unkeep_layers_read_by(self, names: set[str]) -> None:
        """Keep no plain layer that defines one of ``names`` (read by a template that is not kept): those
        parsed already have their kept copy dropped, those parsed later are not kept (``_layer_kept``).

        Fail-closed: every variable the template reads counts, not only those its x-secret fields read.
        """
        self._unkept_names |= names
        for path, layer in self._layers.items():
            if layer is not None and not layer.ref.secrets and names & set(layer.vars):
                self.unkept.add(path)
                self.forget(path)

    def _layer_kept(self, doc: Document) -> bool:
        """Whether the plain layer ``doc`` may be kept on disk: it sets no x-secret field
        (``_sets_no_secret``) and defines no variable a template that is not kept reads."""
        if not self._sets_no_secret(doc):
            return False
        lvars = doc.value.get("vars") if isinstance(doc.value, dict) else None
        if isinstance(lvars, dict) and self._unkept_names & set(lvars):
            self.unkept.add(doc.path)
            return False
        return True

    def _sets_no_secret(self, doc: Document) -> bool:
        """Whether no value in the template or plain layer ``doc`` sits where a module's schema marks a
        field ``x-secret`` (such a value is a plaintext secret the secrets guard refuses: not kept on
        disk). Every module's schema is asked, about the whole document and about each module's patch.
        """
        from compiler.validate.secretwalk import secret_paths

        value = doc.value
        patches = value.get("modules") if isinstance(value, dict) else None
        for module in self.modules:
            schema = self.schema(module)
            if next(secret_paths(schema, value), None) is not None:
                self.unkept.add(doc.path)
                return False
            patch = patches.get(module) if isinstance(patches, dict) else None
            if patch is not None and next(secret_paths(schema, patch), None) is not None:
                self.unkept.add(doc.path)
                return False
        return True

    def _check_layer(self, ref: LayerRef, doc: Document, value: Value) -> LayerDoc:
        if value is None:
            return LayerDoc(ref=ref, document=doc, vars={}, modules={})
        if not isinstance(value, dict):
            raise InputError(f"{doc.origin(()).location()}: a layer file must be a mapping with vars: and modules:")
        allowed = ("modules",) if ref.secrets else LAYER_KEYS
        for key in value:
            if key not in allowed:
                raise InputError(
                    f"{doc.origin((key,)).location()}: unknown top-level key {key!r} (expected {', '.join(allowed)})"
                )
        lvars = value.get("vars") or {}
        modules = value.get("modules") or {}
        if not isinstance(lvars, dict):
            raise InputError(f"{doc.origin(('vars',)).location()}: vars must be a mapping")
        if not isinstance(modules, dict):
            raise InputError(f"{doc.origin(('modules',)).location()}: modules must be a mapping")
        for name, patch in modules.items():
            if name not in self.modules:
                raise InputError(
                    f"{doc.origin(('modules', name)).location()}: unknown module {name!r} "
                    f"(no {SCHEMAS}/{name}{SCHEMA_SUFFIX})"
                )
            if isinstance(patch, Tagged) and patch.tag == "delete":
                raise InputError(f"{patch.origin.location()}: a whole module cannot be deleted")
        return LayerDoc(ref=ref, document=doc, vars=lvars, modules=modules)


def _forget_nothing(path: str) -> None:
    """No parsed copy is kept (the result cache is off)."""
