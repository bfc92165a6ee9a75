"""The ``cel`` package (common-expression-language) without its interactive shell (issue 14 §1).

``cel/__init__.py`` runs ``from . import cli``: a REPL that imports typer,
prompt_toolkit, pygments and rich, ~0.3 s before the first rule compiles. Rules
need the Rust extension ``cel.cel`` and the pure-Python ``cel.stdlib`` only. So
``cel`` is registered as a bare package over its own directory (its ``__init__``
not run), those two submodules are imported into it, and the extension's names
are copied onto it as ``from .cel import *`` would. ``import cel.cli`` still works
afterwards. If the package's layout ever differs, the ordinary ``import cel`` is used.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType


def load_cel() -> ModuleType:
    """The ``cel`` package with ``compile``, ``Context`` and ``stdlib``."""
    loaded = sys.modules.get("cel")
    if loaded is not None:
        return loaded
    spec = importlib.util.find_spec("cel")
    if spec is None or spec.submodule_search_locations is None:
        return _import_cel()  # not a package here: the ordinary import says what is wrong
    package = types.ModuleType("cel")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    package.__file__ = spec.origin
    sys.modules["cel"] = package
    try:
        native = importlib.import_module("cel.cel")
        package.stdlib = importlib.import_module("cel.stdlib")  # type: ignore[attr-defined]
    except ImportError:
        for name in [m for m in sys.modules if m == "cel" or m.startswith("cel.")]:
            del sys.modules[name]
        return _import_cel()
    for name in getattr(native, "__all__", None) or [n for n in dir(native) if not n.startswith("_")]:
        setattr(package, name, getattr(native, name))
    return package


def _import_cel() -> ModuleType:
    import cel

    return cel
