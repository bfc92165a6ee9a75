"""The compile engine's layering (issue 14 §5), read from the source with ``ast``: nothing is imported.

Rules:

1. ``compiler/compile/types.py`` holds the values stages hand to each other and is a
   leaf: it imports no compiler module except true leaves (``LEAVES``: diagnostics,
   jsonpath, errors, jsontypes, ``load.yaml`` values, ``load.layers`` refs, project types).
2. Nothing under ``compiler/compile/`` imports the packages built on the engine:
   ``compiler.cli``, ``compiler.diff``, ``compiler.audit``, ``compiler.agent``, ``compiler.client``.
3. No module the orchestration reaches imports it back: from ``compiler.compile.pipeline``
   and ``compiler.compile.build``, following every import (module level, inside functions,
   and under ``if TYPE_CHECKING:``), the module itself and the orchestration above it are
   not reached again. A stage names the types it
   needs from ``compiler.compile.types``, never "upwards" from the orchestrator.
4. The ``Repository`` is parsed inputs only: ``compiler/compile/repository.py`` reaches
   neither the orchestrator nor ``compiler.policy`` (the old Repository <-> PolicyCheck
   cycle) and types nothing ``Any`` (caches are ``CompileCaches``, passed explicitly).
5. The engine lives in one place: the old module paths are gone, with no re-export shims.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "compiler"
LEAVES = {
    "compiler.diagnostics",
    "compiler.errors",
    "compiler.jsonpath",
    "compiler.jsontypes",
    "compiler.load.layers",
    "compiler.load.yaml",
    "compiler.project",
}
ABOVE_ENGINE = ("compiler.cli", "compiler.diff", "compiler.audit", "compiler.agent", "compiler.client")
ORCHESTRATION = ("compiler.compile.pipeline", "compiler.compile.build")  # lowest first: build drives pipeline
OLD_PATHS = ("pipeline.py", "repository.py", "build.py", "inherit.py", "diff/sharing.py")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@cache
def _imports(name: str) -> tuple[tuple[str, bool], ...]:
    """(compiler module imported, whether under ``if TYPE_CHECKING:``) for every import in ``name``."""
    modules = _modules()
    tree = ast.parse(modules[name].read_text(encoding="utf-8"))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, typing_only)
            return
        if isinstance(node, ast.Import):
            found.extend((a.name, typing_only) for a in node.names if a.name.startswith("compiler"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("compiler"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.append((sub if sub in modules else node.module, typing_only))
        for child in ast.iter_child_nodes(node):
            visit(child, typing_only)

    visit(tree, False)
    return tuple(found)


def _under(name: str, prefixes: tuple[str, ...] | set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _reach(start: str) -> dict[str, str]:
    """Every compiler module ``start`` reaches through any import, each with the module that imports it."""
    seen: dict[str, str] = {}
    todo = [start]
    while todo:
        current = todo.pop()
        for target, _ in _imports(current):
            if target in _modules() and target not in seen:
                seen[target] = current
                todo.append(target)
    return seen


def _path(seen: dict[str, str], start: str, end: str) -> str:
    chain = [end]
    while chain[-1] != start:
        chain.append(seen[chain[-1]])
    return " -> ".join(reversed(chain))


def test_the_types_module_is_a_leaf() -> None:
    assert "compiler.compile.types" in _modules(), "compiler/compile/types.py holds the types stages hand on"
    offenders = sorted({m for m, _ in _imports("compiler.compile.types") if m not in LEAVES and m != "compiler"})
    assert offenders == [], f"compiler/compile/types.py imports beyond the leaves: {offenders}"


def test_the_engine_imports_nothing_built_on_it() -> None:
    offenders = [
        f"{name} imports {target}"
        for name in _modules()
        if _under(name, ("compiler.compile",))
        for target, _ in _imports(name)
        if _under(target, ABOVE_ENGINE)
    ]
    assert offenders == []


def test_nothing_the_orchestration_reaches_imports_it_back() -> None:
    for n, start in enumerate(ORCHESTRATION):
        assert start in _modules(), f"{start}: the engine's orchestration lives in compiler/compile/"
        seen = _reach(start)
        cycles = [_path(seen, start, back) for back in ORCHESTRATION[n:] if back in seen]
        assert cycles == [], f"imported back: {cycles}"


def test_no_stage_names_the_orchestrator_under_type_checking() -> None:
    """The symptom of the old layout, stated on its own: ``if TYPE_CHECKING: from compiler.pipeline import ...``."""
    offenders = [
        f"{name} imports {target} under TYPE_CHECKING"
        for name in _modules()
        if not _under(name, ABOVE_ENGINE)
        for target, typing_only in _imports(name)
        if typing_only
        and (_under(target, ORCHESTRATION) or target in ("compiler.pipeline", "compiler.build"))
        and not _drives(name, target)
    ]
    assert offenders == []


def _drives(name: str, target: str) -> bool:
    """Whether ``name`` is an orchestrator above ``target`` (build names pipeline's types; it imports it lazily)."""
    order = [_under(name, (o,)) for o in ORCHESTRATION], [_under(target, (o,)) for o in ORCHESTRATION]
    return any(order[0]) and any(order[1]) and order[0].index(True) > order[1].index(True)


def test_the_repository_holds_inputs_only() -> None:
    name = "compiler.compile.repository"
    seen = _reach(name)
    assert [m for m in seen if _under(m, ("compiler.policy", *ORCHESTRATION))] == []
    tree = ast.parse(_modules()[name].read_text(encoding="utf-8"))
    uses_any = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "Any"]
    assert uses_any == [], f"compiler/compile/repository.py types with Any at lines {uses_any}"


def test_the_old_module_paths_are_gone() -> None:
    assert [p for p in OLD_PATHS if (PACKAGE / p).exists()] == []
