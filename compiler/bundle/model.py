"""The bundle document (docs/bundle-format.md), before ``version``/``previous`` are assigned at publish.

Runtime tier: it takes ``metadata.source`` as JSON, so reading a bundle loads
nothing of the compile-side sources (issue 11, install footprint).
"""

from __future__ import annotations

from compiler import __version__
from compiler.jsontypes import JSONObject, JSONValue

API_VERSION = "llmcc/v1"
KIND = "Bundle"
COMPILER = f"llmcc {__version__}"


def build_body(
    *,
    project: str,
    target: str,
    source: JSONObject | None,
    modules: dict[str, JSONValue],
    encryption: JSONObject | None,
    version: int | None = None,
    previous: str | None = None,
) -> JSONObject:
    """The bundle as a JSON object; ``canonical_json`` of it is the bundle's bytes.

    ``source`` is ``metadata.source``: ``SourceInfo.to_json()`` of the commit
    compiled, or None outside git. No build timestamp, no absolute path: the
    same commit gives the same bytes.
    """
    metadata: JSONObject = {
        "project": project,
        "target": target,
        "version": version,
        "previous": previous,
        "source": source,
        "compiler": COMPILER,
    }
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata,
        "modules": modules,
        "encryption": encryption,
    }
