"""``CompileCaches``: what compiling derives once per repository, held by the caller, never by the ``Repository``.

A cache is a function of the repository's inputs, so it never changes a result
(issue 14 §5): compiling every target through one shared ``CompileCaches`` gives
what compiling each with a fresh one gives, and a module compiled alone equals
the same module of the whole target.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.compile.pipeline import CompileCaches, compile_target
from compiler.policy import PolicyCheck
from compiler.project import Target
from tests.conftest import copy_example
from tests.core._repos import open_repo


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_example(tmp_path_factory.mktemp("example"))


def test_one_shared_cache_gives_what_fresh_ones_give(example: Path) -> None:
    shared_repo, fresh_repo = open_repo(example), open_repo(example)
    caches = CompileCaches()
    targets = shared_repo.project.targets()
    assert any(t.tenant for t in targets)  # tenants start from their environment's cached merge
    for target in targets:
        shared = compile_target(shared_repo, target, caches=caches)
        fresh = compile_target(fresh_repo, target)
        assert (shared.modules, shared.diagnostics, shared.secrets) == (fresh.modules, fresh.diagnostics, fresh.secrets)


def test_the_stages_write_into_the_caches_they_are_handed(example: Path) -> None:
    repo = open_repo(example)
    caches = CompileCaches()
    before = set(vars(repo))
    result = compile_target(repo, Target("prod", "acme"), caches=caches)
    assert result.ok
    assert set(vars(repo)) - before <= {"_layers", "_schemas", "_templates", "schema_files"}  # parsed inputs only
    assert set(caches.env_bases) == {"prod"}
    assert caches.render
    assert {path for path, _ in caches.guard} >= {layer.ref.path for layer in result.stack.layers}
    assert set(caches.jinja) == {layer.ref.path for layer in result.stack.layers}
    assert isinstance(caches.policy, PolicyCheck)
    assert caches.layout == []
    for name in ("render_cache", "guard_cache", "jinja_findings", "env_bases", "policy_check", "layout_check"):
        assert not hasattr(repo, name)


def test_a_module_compiled_alone_equals_its_part_of_the_target(example: Path) -> None:
    repo = open_repo(example)
    caches = CompileCaches()
    for target in repo.project.targets():
        whole = compile_target(repo, target, validate=False)
        for module in repo.modules:
            alone = compile_target(repo, target, validate=False, inherit=False, modules=[module], caches=caches)
            assert alone.modules == {module: whole.modules[module]}
            assert alone.secrets == {m: p for m, p in whole.secrets.items() if m == module}
            assert alone.diagnostics == []


def test_a_subset_of_modules_is_not_validated(example: Path) -> None:
    repo = open_repo(example)
    with pytest.raises(ValueError, match="without validation"):
        compile_target(repo, Target("prod"), modules=[repo.modules[0]])
