"""The templates a parallel build parses in a forked helper while it compiles the schemas (issue 14 §3)."""

from __future__ import annotations

import os
import select
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from compiler.compile.build import BuildRequest, build_targets
from compiler.compile.preparse import Preparse, ReparsedPositions
from compiler.compile.types import parse_only
from compiler.diagnostics import Origin
from compiler.load.yaml import Tagged, load_document
from compiler.sources.worktree import WorkTree
from tests.core._repos import ENGINE_TEMPLATE, many_targets_repo, open_repo

PATHS = ["templates/engine.yaml", "templates/engine1.yaml", "templates/engine2.yaml"]
FILES = [(path, "template") for path in PATHS]


def _load(preparse: Preparse, root: Path, path: str) -> object:
    data = (root / path).read_bytes()
    return preparse.loader(parse_only)(data, path=path, layer="template")


def test_a_parallel_build_takes_the_helpers_templates_with_the_same_bundles(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=5)
    repo = open_repo(root)
    targets = repo.project.targets()
    helper = threading.active_count() == 1  # a thread an earlier test left running: no fork (next test)
    outcomes = build_targets(BuildRequest(repo=repo, source=None, out_dir=tmp_path / "out"), targets, jobs=2)
    assert all(o.size and o.error is None for o in outcomes)
    for module in repo.modules:
        (plan,) = repo.templates(module)
        assert (type(plan.document.positions) is ReparsedPositions) is helper  # the value came from the helper
    assert repo.parse is parse_only  # put back after the warm-up
    serial = build_targets(BuildRequest(repo=open_repo(root), source=None, keep_bytes=True), targets, jobs=1)
    for outcome in serial:
        assert (tmp_path / "out" / f"{outcome.target}.bundle.json").read_bytes() == outcome.data


def test_no_helper_is_forked_while_another_thread_runs(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=5)
    repo = open_repo(root)
    release = threading.Event()
    waiting = threading.Thread(target=release.wait)
    waiting.start()
    try:
        outcomes = build_targets(
            BuildRequest(repo=repo, source=None, out_dir=tmp_path / "out"), repo.project.targets(), jobs=2
        )
    finally:
        release.set()
        waiting.join()
    assert all(o.size and o.error is None for o in outcomes)
    for module in repo.modules:
        assert type(repo.templates(module)[0].document.positions) is not ReparsedPositions


def test_a_preparsed_document_is_the_parsers_with_the_same_positions(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=1)
    preparse = Preparse(WorkTree(root), FILES)
    data = (root / PATHS[0]).read_bytes()
    doc = preparse.loader(parse_only)(data, path=PATHS[0], layer="template")
    parsed = load_document(data, path=PATHS[0], layer="template")
    assert type(doc.positions) is ReparsedPositions
    assert (doc.value, doc.nodes, doc.tagged, doc.rev) == (parsed.value, parsed.nodes, False, None)
    assert dict(doc.positions) == dict(parsed.positions)
    assert doc.origin(("model", "name")) == parsed.origin(("model", "name"))


def test_a_file_changed_after_the_helper_read_it_is_parsed_again(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=1)
    preparse = Preparse(WorkTree(root), FILES)
    preparse.collect()  # the helper read the old bytes
    (root / PATHS[0]).write_text(ENGINE_TEMPLATE.replace("small", "changed"))
    doc = _load(preparse, root, PATHS[0])
    assert doc.value["fallbacks"] == ["changed"]  # type: ignore[attr-defined]
    assert type(doc.positions) is not ReparsedPositions  # type: ignore[attr-defined]


def test_a_broken_or_tagged_template_is_left_to_the_parent(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=1)
    (root / PATHS[1]).write_text("model: [unclosed\n")
    (root / PATHS[2]).write_text("model: !override {name: x}\n")
    preparse = Preparse(WorkTree(root), [*FILES, ("templates/missing.yaml", "template")])
    assert sorted(preparse.collect()) == [FILES[0], FILES[2]]
    tagged = _load(preparse, root, PATHS[2])
    assert isinstance(tagged.value["model"], Tagged)  # type: ignore[attr-defined]


def test_a_broken_template_is_reported_as_a_serial_build_reports_it(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=5)
    (root / PATHS[1]).write_text("model: [unclosed\n")
    targets = open_repo(root).project.targets()
    parallel = build_targets(BuildRequest(repo=open_repo(root), source=None, out_dir=tmp_path / "out"), targets, jobs=2)
    serial = build_targets(BuildRequest(repo=open_repo(root), source=None, keep_bytes=True), targets, jobs=1)
    assert [o.error for o in parallel] == [o.error for o in serial]
    assert parallel[0].error is not None
    assert parallel[0].error[0].startswith("templates/engine1.yaml:2:1: invalid YAML")


def test_a_stopped_helper_leaves_every_parse_to_the_parent(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=1)
    preparse = Preparse(WorkTree(root), FILES)
    preparse.stop()  # killed and reaped, whether it had finished or not
    preparse.stop()
    assert preparse.collect() == {}
    doc = _load(preparse, root, PATHS[0])
    assert type(doc.positions) is not ReparsedPositions  # type: ignore[attr-defined]


def test_no_helper_for_a_serial_build(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=5)
    repo = open_repo(root)
    build_targets(BuildRequest(repo=repo, source=None, keep_bytes=True), repo.project.targets(), jobs=1)
    for module in repo.modules:
        assert type(repo.templates(module)[0].document.positions) is not ReparsedPositions


TAGGED_LAYER = """\
vars:
  shared: &s
    keep: 1
    gone: !delete
  again: *s
modules:
  engine:
    model: !override
      name: x
      inner: !append [a, b]
    fallbacks: !prepend [c]
    region: !delete
"""


def test_a_layer_with_merge_tags_comes_back_with_the_same_tags_origins_and_sharing(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=1)
    path = "environments/staging.yaml"
    (root / path).write_text(TAGGED_LAYER)
    preparse = Preparse(WorkTree(root), [(path, "staging")])
    data = (root / path).read_bytes()
    doc = preparse.loader(parse_only)(data, path=path, layer="staging")
    parsed = load_document(data, path=path, layer="staging")
    assert type(doc.positions) is ReparsedPositions
    assert (doc.value, doc.nodes, doc.tagged) == (
        parsed.value,
        parsed.nodes,
        True,
    )  # Tagged compares tag, value, origin
    model = doc.value["modules"]["engine"]["model"]  # type: ignore[index,call-overload]
    assert model.origin == Origin(path=path, line=8, column=12, layer="staging")
    assert isinstance(model.value["inner"], Tagged)
    assert doc.value["vars"]["shared"] is doc.value["vars"]["again"]  # type: ignore[index,call-overload]


def test_a_tagged_root_and_a_tag_reached_through_an_alias(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=1)
    files = {
        "templates/engine1.yaml": "!override\nmodel:\n  name: !delete\n",
        "templates/engine2.yaml": "a: &t !override {x: 1}\nb: *t\n",
    }
    for name, text in files.items():
        (root / name).write_text(text)
    preparse = Preparse(WorkTree(root), [(name, "template") for name in files])
    assert list(preparse.collect()) == [("templates/engine1.yaml", "template")]  # the alias of a tag is the parent's
    for name in files:
        data = (root / name).read_bytes()
        assert (
            preparse.loader(parse_only)(data, path=name, layer="template").value
            == load_document(data, path=name, layer="template").value
        )


def test_the_helper_ignores_ctrl_c_which_is_the_parents(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=1)
    preparse = Preparse(WorkTree(root), FILES)
    os.kill(preparse._pid, signal.SIGINT)  # as a terminal's Ctrl-C reaches the whole process group
    assert sorted(preparse.collect()) == FILES  # it finished its work and exited 0


class _BrokenTree(WorkTree):
    """A tree whose reads fail with what is not an input error (a bug, an unexpected OSError)."""

    def read(self, path: str) -> bytes:
        raise RuntimeError(path)


def test_a_helper_that_fails_leaves_every_parse_to_the_parent(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=1)
    preparse = Preparse(_BrokenTree(root), FILES)
    assert preparse.collect() == {}  # it exited 1: nothing of it is used
    doc = _load(preparse, root, PATHS[0])
    assert doc.value == load_document((root / PATHS[0]).read_bytes(), path=PATHS[0], layer="template").value  # type: ignore[attr-defined]


TENANT = "environments/tenants/t00.yaml"


def test_the_helper_then_sends_the_targets_own_layer_files_each_once(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=1)
    preparse = Preparse(WorkTree(root), FILES, lambda: [(TENANT, "tenant"), FILES[0], (TENANT, "tenant")])
    assert sorted(preparse.collect()) == sorted(FILES)  # the shared files first, alone
    parsed = preparse.rest(wait=True)
    assert sorted(parsed) == sorted([*FILES, (TENANT, "tenant")])
    data = (root / TENANT).read_bytes()
    doc = preparse.loader(parse_only)(data, path=TENANT, layer="tenant")
    assert type(doc.positions) is ReparsedPositions
    fresh = load_document(data, path=TENANT, layer="tenant")
    assert doc.value == fresh.value
    assert doc.tagged == fresh.tagged
    assert doc.positions.table() == fresh.positions.table()  # type: ignore[attr-defined]
    assert (TENANT, "tenant") not in preparse.rest()  # taken: a second read parses it


def test_taking_the_rest_never_waits_for_a_file_still_being_parsed(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=1)
    release = os.pipe()

    def later() -> Iterator[tuple[str, str]]:
        os.read(release[0], 1)  # in the helper: blocks until the test lets it go, which it never does
        yield (TENANT, "tenant")

    preparse = Preparse(WorkTree(root), FILES, later)
    try:
        assert sorted(preparse.rest()) == sorted(FILES)  # returns with what has arrived; the helper is killed
    finally:
        os.close(release[0])
        os.close(release[1])
    preparse.stop()  # reaped already: nothing left to do


def test_the_workers_take_the_layer_files_the_helper_parsed_with_the_same_bundles(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=5)
    targets = open_repo(root).project.targets()
    repo = open_repo(root)
    # No environment's modules merged before the fork: the helper's shared layer files are all left for
    # the workers, which then read them through its loader (the targets' own files too, as many as it sent).
    request = BuildRequest(repo=repo, source=None, out_dir=tmp_path / "out", warm_env=lambda _r, _e: False)
    outcomes = build_targets(request, targets, jobs=2)
    assert all(o.size and o.error is None for o in outcomes)
    assert repo.parse is parse_only  # put back after the build
    serial = build_targets(BuildRequest(repo=open_repo(root), source=None, keep_bytes=True), targets, jobs=1)
    for outcome in serial:
        assert (tmp_path / "out" / f"{outcome.target}.bundle.json").read_bytes() == outcome.data


def test_the_helper_is_not_held_up_by_records_the_parent_has_not_read_yet(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=1)
    files = []
    for i in range(24):  # ~10 KB a record: more than a pipe holds by default (64 KB)
        path = f"environments/tenants/big{i:02d}.yaml"
        (root / path).write_text("vars:\n" + "".join(f"  key{k}: value-{i}-{k}\n" for k in range(400)))
        files.append((path, "tenant"))
    done = os.pipe()

    def later() -> Iterator[tuple[str, str]]:
        yield from files
        os.write(done[1], b"x")  # in the helper: every record is written

    preparse = Preparse(WorkTree(root), FILES, later)
    try:
        preparse.collect()
        ready, _, _ = select.select([done[0]], [], [], 120)  # a bound on a hang, not a timing
        assert ready, "the helper stopped on a full pipe"
        parsed = preparse.rest()  # never waits: all of them have arrived
    finally:
        preparse.stop()
        os.close(done[0])
        os.close(done[1])
    assert set(files) <= set(parsed)
