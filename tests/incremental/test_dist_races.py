"""A concurrent writer of ``dist/`` between the steps of one ``compile`` run never gets its bundle trusted.

``llmcc compile`` checks the bundles already in ``dist/`` (``bundles_in_place``),
prepares the directory (the still-good ones left as they are), builds, installs and
records what it installed (``record_bundles``). Another process (a second
compile of other inputs, an editor, a deploy job) can write a bundle between
any two steps. These tests run the same steps as ``compiler.cli.compile`` and
write between them, as such a process would: what this run installs is what it
checked or built, and what it records for the next run is what it built, so a
bundle someone else wrote is rewritten by the next run, never left as current.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.cli._context import Context
from compiler.cli._repo import open_repository
from compiler.compile.build import BuildRequest
from compiler.distdir import BundleDir
from compiler.incremental.plan import plan_cache
from compiler.incremental.run import Reuse, build_cached, bundles_in_place, record_bundles
from compiler.secrets.access import KeyFileCheck
from compiler.secrets.sealing import KeyFileSealer
from tests.conftest import GitRepo
from tests.incremental.test_cache_cli import settle

STALE = (b'"apiVersion"', b'"apiVersioN"')


def run(root: Path, *argv: str) -> int:
    return main(["-q", "-C", str(root), *argv])


class Steps:
    """``compiler.cli.compile.run`` for ``--target dev``, one step at a time."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.out = root / "dist"
        ctx = Context(root=root, quiet=True, debug=False)
        self.repo, self.source, self.ids = open_repository(ctx, argparse.Namespace(rev=None), need_secrets=True)
        self.targets = [t for t in self.repo.project.targets() if t.name == "dev"]
        plan = plan_cache(root, self.repo, self.targets, mode="compile", source=self.source, identities=self.ids)
        assert plan is not None
        self.plan = plan
        self.source_json = self.source.to_json() if self.source else None

    def check(self) -> Reuse:
        return bundles_in_place(self.plan, self.source_json, self.out)

    def build_and_install(self, reuse: Reuse, after_staging: Callable[[], None] | None = None) -> list[str]:
        known = [t.name for t in self.repo.project.targets()]
        bundles = BundleDir(self.out, [t.name for t in self.targets], known=known)
        reuse = replace(reuse, left=bundles.left)
        with bundles.staged(leave=reuse.unchanged) as staging:
            if after_staging is not None:
                after_staging()
            request = BuildRequest(repo=self.repo, source=self.source, out_dir=staging)

            def complete(r: BuildRequest) -> BuildRequest:
                seal = KeyFileSealer(r.repo.tree, r.repo.project, self.ids if self.ids else None)
                return replace(r, seal=seal, check_keys=KeyFileCheck(r.repo.tree, r.repo.project))

            outcomes = build_cached(request, self.targets, plan=self.plan, reuse=reuse, complete=complete)
            good = [o.target for o in outcomes]
            bundles.install(good)
        self.reuse = reuse
        self.outcomes = outcomes
        return good


def swap_in(path: Path, data: bytes) -> None:
    """Another writer's bundle, put in place as llmcc does (a new file renamed over the old one)."""
    tmp = path.with_name(f".other-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def settled_repo(example_repo: GitRepo) -> tuple[Path, bytes]:
    root = example_repo.path
    assert run(root, "compile", "-t", "dev") == 0
    settle(root / "dist")
    assert run(root, "compile", "-t", "dev") == 0  # read once, then trusted by its stat
    settle(root / "dist")
    return root, (root / "dist/dev.bundle.json").read_bytes()


def test_a_bundle_written_by_another_run_after_the_install_is_not_recorded_as_ours(
    example_repo: GitRepo, demo_identity: Path
) -> None:
    root, good = settled_repo(example_repo)
    bundle = root / "dist/dev.bundle.json"
    bundle.unlink()  # this run builds dev
    steps = Steps(root)
    reuse = steps.check()
    assert "dev" not in reuse.in_place
    good_targets = steps.build_and_install(reuse)
    assert bundle.read_bytes() == good
    swap_in(bundle, good.replace(*STALE, 1))  # a concurrent compile of older inputs installs its bundle now
    record_bundles(steps.plan, steps.source_json, steps.reuse, good_targets)
    settle(root / "dist")
    assert run(root, "compile", "-t", "dev") == 0
    assert bundle.read_bytes() == good  # the other run's bundle was never taken for this run's


def _replace(bundle: Path, good: bytes) -> None:
    swap_in(bundle, good.replace(*STALE, 1))  # replaced before this run decides to leave it


def _edit_in_place(bundle: Path, good: bytes) -> None:
    st = bundle.stat()
    with bundle.open("r+b") as f:  # the same inode and size, its modification time put back
        f.write(good.replace(*STALE, 1))
    os.utime(bundle, ns=(st.st_atime_ns, st.st_mtime_ns))


def _remove(bundle: Path, good: bytes) -> None:
    bundle.unlink()  # nothing to leave


@pytest.mark.parametrize(
    "change",
    [_replace, _edit_in_place, _remove],
    ids=["replaced-written-again", "edited-in-place-written-again", "removed-written-again"],
)
def test_a_bundle_changed_between_its_check_and_the_staging_is_never_left(
    example_repo: GitRepo, demo_identity: Path, change: Callable[[Path, bytes], None]
) -> None:
    root, good = settled_repo(example_repo)
    bundle = root / "dist/dev.bundle.json"
    steps = Steps(root)
    reuse = steps.check()
    assert "dev" in reuse.in_place  # checked: the one the last run made
    change(bundle, good)
    steps.build_and_install(reuse)
    assert bundle.read_bytes() == good
    assert "dev" not in steps.reuse.left


def test_a_bundle_written_through_a_descriptor_after_it_was_left_is_not_recorded_as_ours(
    example_repo: GitRepo, demo_identity: Path
) -> None:
    # A writer holding the bundle open writes one byte after this run decided to leave it in place and puts
    # its modification time back: inode, size and mtime match, only the change time moved. The file is not
    # this run's (it installed nothing for dev); it must not be recorded as checked, so the next run reads it.
    root, good = settled_repo(example_repo)
    bundle = root / "dist/dev.bundle.json"
    steps = Steps(root)
    reuse = steps.check()
    assert "dev" in reuse.in_place
    fd = os.open(bundle, os.O_RDWR)
    try:
        st = os.fstat(fd)

        def tamper() -> None:
            at = good.index(STALE[0])
            os.pwrite(fd, STALE[1], at)
            os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))

        good_targets = steps.build_and_install(reuse, after_staging=tamper)
    finally:
        os.close(fd)
    assert "dev" in steps.reuse.left  # left before the write: this run did not install it
    record_bundles(steps.plan, steps.source_json, steps.reuse, good_targets)
    settle(root / "dist")
    assert run(root, "compile", "-t", "dev") == 0
    assert bundle.read_bytes() == good  # read by the next run and written anew, never trusted by its old stat
