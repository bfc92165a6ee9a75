"""Parse each file once per run, however many revisions hold it: a ``Repository`` keyed by git blob id.

``diff`` reads two revisions and ``history`` dozens, and most of their files
are byte-identical between revisions. ``SharingRepository`` asks a shared
``ParseCache`` before parsing: a layer file by (path, blob id, module set),
the template chains by the blob ids of all of ``templates/``, a schema by
(path, blob id), or by the blob ids of all of ``schemas/`` too when it
references another file there. ``render`` is the rendered-scalar cache
(``compiler.render.jinja.RenderCache``, keyed by expression and variable values)
that the revisions' ``CompileCaches`` share.

Equal blob ids mean equal bytes, and parsing is a function of the bytes, the
path and the module set, so a shared parse is the parse this revision would
make. Only origins' ``rev`` may name the other revision; diff and history
print no origins.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from compiler.compile.repository import SCHEMA_SUFFIX, SCHEMAS, TEMPLATES, Repository
from compiler.compile.types import LayerDoc, SecretsOpener
from compiler.load.layers import LayerRef
from compiler.render.jinja import RenderCache, TemplatePlan
from compiler.sources.base import SourceTree
from compiler.validate.schema import ModuleSchema

FileIds = Mapping[str, str | None]  # repository path -> git blob id; None: unknown (never shared)


@dataclass(slots=True)
class ParseCache:
    layers: dict[tuple[str, str, tuple[str, ...]], LayerDoc | None] = field(default_factory=dict)
    templates: dict[tuple[str, str], list[TemplatePlan]] = field(default_factory=dict)
    # (path, blob id, "") or, for a schema that references other files, (path, blob id, id of schemas/)
    schemas: dict[tuple[str, str, str], ModuleSchema] = field(default_factory=dict)
    render: RenderCache = field(default_factory=dict)


class SharingRepository(Repository):
    """A ``Repository`` that shares parsed files with other revisions through ``cache``."""

    def __init__(
        self,
        tree: SourceTree,
        *,
        files: FileIds | None,
        cache: ParseCache,
        open_secrets: SecretsOpener | None = None,
        secrets_opaque: bool = True,
    ) -> None:
        super().__init__(tree, open_secrets=open_secrets, secrets_opaque=secrets_opaque)
        self._files = files or {}
        self._cache = cache
        self._templates_id = _dir_id(self._files, f"{TEMPLATES}/") if files is not None else None
        self._schemas_id = _dir_id(self._files, f"{SCHEMAS}/") if files is not None else None

    def layer(self, ref: LayerRef) -> LayerDoc | None:
        blob = self._files.get(ref.path)
        if blob is None:
            return super().layer(ref)
        key = (ref.path, blob, tuple(self.modules))
        if key not in self._cache.layers:
            self._cache.layers[key] = super().layer(ref)
        return self._cache.layers[key]

    def templates(self, module: str) -> list[TemplatePlan]:
        if self._templates_id is None:
            return super().templates(module)
        key = (module, self._templates_id)
        plans = self._cache.templates.get(key)
        if plans is None:
            plans = self._cache.templates[key] = super().templates(module)
        return plans

    def schema(self, module: str) -> ModuleSchema:
        path = f"{SCHEMAS}/{module}{SCHEMA_SUFFIX}"
        blob = self._files.get(path)
        if blob is None:
            return super().schema(module)
        ms = self._cache.schemas.get((path, blob, ""))
        if ms is not None and ms.external:
            # Compiled against the other files under schemas/: shared only when all of them are the same.
            ms = self._cache.schemas.get((path, blob, self._schemas_id)) if self._schemas_id else None
        if ms is None:
            ms = super().schema(module)
            self._cache.schemas.setdefault((path, blob, ""), ms)
            if ms.external and self._schemas_id:
                self._cache.schemas[(path, blob, self._schemas_id)] = ms
        return ms


def _dir_id(files: FileIds, prefix: str) -> str | None:
    """One id for every file under ``prefix``; None when any of them is unknown."""
    entries = sorted((p, i) for p, i in files.items() if p.startswith(prefix))
    if any(i is None for _, i in entries):
        return None
    return hashlib.sha256(repr(entries).encode()).hexdigest()
