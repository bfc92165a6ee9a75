"""Run as a script in a fresh interpreter: import one module, report the compile-time packages it loaded.

``python _probe.py '{"module": M, "allowed": [...], "tier": [...]}'`` imports
M and prints one JSON object: each module that ended up in ``sys.modules``
although it should not -> the chain of imports that brought it in
(``pydantic <- compiler.project (compiler/project.py:14) <- compiler.freshness
(compiler/freshness.py:43) <- ...``). Not allowed: a forbidden top-level
package (below) unless ``allowed`` names it (boto3 for the S3 store), and a
``compiler`` module outside ``tier`` (an entry ``compiler.client.*`` admits
the package and everything below it).

A script, not a module of the suite: it must import nothing but the standard
library before the module under test.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import json
import os
import sys
from collections.abc import Sequence
from types import FrameType

# Top-level import names of the packages only the `cli` extra installs (and what
# they pull in): the runtime tier must not load them.
FORBIDDEN = frozenset(
    {
        "jinja2",
        "markupsafe",
        "jsonschema",
        "jsonschema_rs",
        "celpy",
        "cel",
        "git",
        "gitdb",
        "ruamel",
        "pydantic",
        "pydantic_core",
        "deepdiff",
        "detect_secrets",
        "yaml",
        "boto3",
        "botocore",
        "s3transfer",
        "hvac",
    }
)

_IMPORTLIB = ("importlib", "_frozen_importlib")


def _importer(frame: FrameType | None) -> str:
    """The first frame outside importlib: the module whose import statement ran, with file:line."""
    while frame is not None:
        name = str(frame.f_globals.get("__name__", "?"))
        if name == __name__:
            return "the probe's import"
        if not name.startswith(_IMPORTLIB):
            path = frame.f_code.co_filename
            if path.startswith(os.getcwd() + os.sep):
                path = os.path.relpath(path)
            return f"{name} ({path}:{frame.f_lineno})"
        frame = frame.f_back
    return "?"


class _ImportSpy(importlib.abc.MetaPathFinder):
    """Records who first imported each module; finds nothing itself."""

    def __init__(self) -> None:
        self.importer: dict[str, str] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        self.importer.setdefault(fullname, _importer(sys._getframe(1)))
        return None


def _chain(name: str, importer: dict[str, str], root: str) -> str:
    links = [name]
    seen = {name}
    while name != root and name in importer:
        by = importer[name]
        links.append(by)
        name = by.split(" ", 1)[0]
        if name in seen:
            break
        seen.add(name)
    return " <- ".join(links)


def _in_tier(name: str, tier: Sequence[str]) -> bool:
    return any(name == t or (t.endswith(".*") and (name == t[:-2] or name.startswith(t[:-1]))) for t in tier)


def main(argv: list[str]) -> int:
    request = json.loads(argv[0])
    module, allowed, tier = request["module"], frozenset(request["allowed"]), request["tier"]
    spy = _ImportSpy()
    sys.meta_path.insert(0, spy)
    importlib.import_module(module)
    leaked = sorted(({name.partition(".")[0] for name in sys.modules} & FORBIDDEN) - allowed)
    leaked += sorted(n for n in sys.modules if n.partition(".")[0] == "compiler" and not _in_tier(n, tier))
    print(json.dumps({name: _chain(name, spy.importer, module) for name in leaked}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
