"""One definition of a target's inputs: the pre-commit selection, diff and the cache key agree on it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.affected import affected_targets
from compiler.audit.revisions import worktree_file_ids
from compiler.diff.compute import _same_inputs
from compiler.incremental.inputs import CHECK_ROOTS, InputDigests, changed_targets, environment_group
from compiler.project import Project, Target, load_project
from tests.conftest import REPO_ROOT

PROJECT = load_project((REPO_ROOT / "llmcc.yaml").read_bytes())
FILES = worktree_file_ids(REPO_ROOT, CHECK_ROOTS)
TARGETS = PROJECT.targets()
# Paths an edit can touch: the example's inputs, plus files it does not have yet.
NEW = [
    ".sops.yaml",
    "environments/qa.yaml",
    "environments/tenants/initech.yaml",
    "environments/prod/tenants/globex.yaml",
    "environments/dev/tenants/acme.yaml",
    "environments/prod.secrets.rotation.yaml",
    "environments/notes/x.yaml",
    "keys/targets/prod.yaml",
    "keys/targets/prod@acme.yaml",
    "keys/targets/qa.yaml",
    "policies/extra.yaml",
    "policies/tests/extra.yaml",
    "templates/extra.yaml",
]
CANDIDATES = sorted({*FILES, *NEW})

edits = st.dictionaries(st.sampled_from(CANDIDATES), st.sampled_from(["change", "remove"]), max_size=4)


def apply(files: dict[str, str | None], changes: dict[str, str]) -> dict[str, str | None]:
    out = dict(files)
    for path, how in changes.items():
        if how == "remove":
            out.pop(path, None)
        else:
            out[path] = hashlib.sha1(f"{path}{out.get(path)}".encode(), usedforsecurity=False).hexdigest()
    return out


def digests(project: Project, files: dict[str, str | None], scope: str) -> InputDigests:
    return InputDigests(project=project, files=files, scope=scope)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(edits)
def test_affected_diff_and_cache_agree(changes: dict[str, str]) -> None:
    before = dict(FILES)
    after = apply(before, changes)
    touched = [p for p in {*before, *after} if before.get(p) != after.get(p)]
    checks = changed_targets(digests(PROJECT, before, "checks"), digests(PROJECT, after, "checks"), TARGETS)
    config = changed_targets(digests(PROJECT, before, "config"), digests(PROJECT, after, "config"), TARGETS)
    old, new = digests(PROJECT, before, "config"), digests(PROJECT, after, "config")
    compiled = [t for t in TARGETS if not _same_inputs(old, new, t)]
    affected = affected_targets(PROJECT, touched)
    assert compiled == config  # diff compiles exactly the targets whose config inputs changed
    assert set(config) <= set(checks)  # what changes a value can change a finding
    if any(p.startswith("keys/targets/") for p in touched):
        # the cache keys every target on every key file (shared data keys); the hook checks the changed one
        assert set(affected) <= set(checks)
    else:
        assert affected == checks


@pytest.mark.parametrize(
    ("path", "targets"),
    [
        (".sops.yaml", [t.name for t in TARGETS]),  # its recipients are checked against every SOPS file
        ("environments/prod.secrets.rotation.yaml", ["prod", "prod@acme", "prod@globex"]),
        ("policies/tests/production.yaml", []),
    ],
)
def test_a_change_reaches_the_targets_that_read_it(path: str, targets: list[str]) -> None:
    after = apply(dict(FILES), {path: "change"})
    changed = changed_targets(digests(PROJECT, FILES, "checks"), digests(PROJECT, after, "checks"), TARGETS)
    assert [t.name for t in changed] == targets
    assert [t.name for t in affected_targets(PROJECT, [path])] == targets


def test_an_unknown_file_id_is_never_equal() -> None:
    after = {**FILES, "environments/dev.yaml": None}
    assert digests(PROJECT, after, "checks").target(Target("dev")) is None
    assert digests(PROJECT, {}, "checks").shared is None  # no manifest: nothing known
    same = digests(PROJECT, after, "config")
    assert changed_targets(same, same, TARGETS)[0].name == "dev"
    assert environment_group(Target("prod", "acme")) == "prod"


@pytest.mark.parametrize("scope", ["config", "checks"])
@pytest.mark.parametrize("link", ["schemas", "templates", "environments", "environments/tenants"])
def test_a_symlinked_directory_hides_what_is_read_through_it(scope: str, link: str) -> None:
    # WorkTree reads through a symlink that stays inside the repository; the listing does not follow it
    files = {p: i for p, i in FILES.items() if not p.startswith(f"{link}/")}
    files[link] = None
    digests_ = digests(PROJECT, files, scope)
    assert digests_.target(Target("prod", "acme")) is None


def test_a_symlinked_layer_directory_hides_the_unread_files_every_target_reports() -> None:
    files = {**FILES, "environments/prod/tenants": None}
    assert digests(PROJECT, files, "checks").target(Target("dev")) is None
    assert digests(PROJECT, files, "config").target(Target("dev")) is not None  # values: only its own layers
    assert digests(PROJECT, {**FILES, "environments/notes": None}, "checks").target(Target("dev")) is not None


def test_a_name_a_case_insensitive_file_system_opens_is_unknown() -> None:
    # on macOS, environments/dev.yaml opens environments/Dev.yaml: the listed name is not the one read
    files = {p: i for p, i in FILES.items() if p != "environments/dev.yaml"}
    files["environments/Dev.yaml"] = FILES["environments/dev.yaml"]
    assert digests(PROJECT, files, "checks").target(Target("dev")) is None
    files = {**FILES, "environments/tenants/Globex.secrets.sops.yaml": "0" * 40}  # an optional layer of globex
    assert "environments/tenants/globex.secrets.sops.yaml" not in files
    assert digests(PROJECT, files, "config").target(Target("prod", "globex")) is None
    assert digests(PROJECT, files, "config").target(Target("prod", "acme")) is not None


def test_the_listing_names_a_symlinked_directory(tmp_path: Path) -> None:
    (tmp_path / "environments/real").mkdir(parents=True)
    (tmp_path / "environments/real/acme.yaml").write_text("vars: {}\n")
    (tmp_path / "environments/tenants").symlink_to("real")
    ids = worktree_file_ids(tmp_path, ["environments"])
    assert ids == {"environments/real/acme.yaml": ids["environments/real/acme.yaml"], "environments/tenants": None}


def test_what_is_worked_out_once_per_project_follows_an_edited_manifest() -> None:
    """``own_files`` and ``read_by_targets`` are kept per project object, and ``load_project`` gives the
    same object for the same bytes only: a manifest edited in the same process is worked out afresh."""
    from compiler.incremental.inputs import own_files, read_by_targets

    data = (REPO_ROOT / "llmcc.yaml").read_bytes()
    assert load_project(data) is load_project(data)  # hook validate, then validate: loaded once
    target = next(t for t in TARGETS if t.tenant is not None)
    before = own_files(PROJECT, target, "checks")
    assert own_files(PROJECT, target, "checks") == before
    assert set(own_files(PROJECT, target, "config")) < set(before)  # no key file, no rotation sidecars
    # the same tenant, now only in prod: its staging target's files are no one's
    edited = load_project(data.replace(b"environments: [staging, prod]", b"environments: [prod]", 1))
    assert edited is not load_project(data)
    assert len(edited.targets()) < len(TARGETS)
    gone = [t for t in TARGETS if t not in edited.targets()]
    assert gone
    assert read_by_targets(edited) < read_by_targets(PROJECT)
    mutated = own_files(PROJECT, target, "checks")
    mutated.append("x")  # a caller's copy: what is kept is not changed
    assert own_files(PROJECT, target, "checks") == before
