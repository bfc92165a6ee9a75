"""What a full compile does less of before its workers start, and the fsyncs it overlaps (issue 14 §3)."""

from __future__ import annotations

import contextlib
import gc
import os
import pstats
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

from compiler.cli import main
from compiler.compile.build import BuildRequest, build_targets
from compiler.compile.pipeline import CompileCaches, compile_target
from compiler.distdir import OLD_BUNDLES, BundleDir
from compiler.errors import InputError
from compiler.load.positions import Positions
from compiler.load.yaml import load_document
from compiler.project import Target
from compiler.render.jinja import Renderer, plan_template
from compiler.sources.worktree import WorkTree
from tests.core._repos import REPO_ROOT, many_targets_repo, mini_repo, open_repo


def test_the_parent_warms_only_the_environments_several_targets_start_from(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=5)  # dev alone; staging and prod with 5 tenants each
    repo = open_repo(root)
    targets = repo.project.targets()
    caches = CompileCaches()
    request = BuildRequest(repo=repo, source=None, out_dir=tmp_path / "out", caches=caches)
    outcomes = build_targets(request, targets, jobs=2)
    assert all(o.size and o.error is None for o in outcomes)
    # dev's merged modules were computed by the worker that compiled dev, not before the fork
    assert sorted(caches.env_bases) == ["prod", "staging"]
    serial = build_targets(BuildRequest(repo=open_repo(root), source=None, keep_bytes=True), targets, jobs=1)
    for outcome in serial:
        assert (tmp_path / "out" / f"{outcome.target}.bundle.json").read_bytes() == outcome.data


def test_a_repository_without_policy_files_never_loads_the_policy_engine(tmp_path: Path) -> None:
    repo = open_repo(mini_repo(tmp_path / "repo"))
    assert not (tmp_path / "repo" / "policies").exists()
    caches = CompileCaches()
    assert compile_target(repo, Target("prod"), caches=caches).ok
    assert caches.no_policies
    assert caches.policy is None


def test_a_policies_directory_without_yaml_files_counts_as_none(tmp_path: Path) -> None:
    root = mini_repo(tmp_path / "repo", {"policies/README.md": "notes\n", "policies/tests/case.yaml": "cases: []\n"})
    caches = CompileCaches()
    assert compile_target(open_repo(root), Target("prod"), caches=caches).ok
    assert caches.no_policies


def test_planning_a_template_of_plain_scalars_locates_none_of_them(tmp_path: Path) -> None:
    doc = load_document(b"a:\n  b: '{{ x }}'\n  c: 'v-{{ y.z }}'\n", path="templates/t.yaml", layer="template")
    plan = plan_template(doc, doc.value)
    assert plan.plain
    assert isinstance(doc.positions, Positions)
    assert isinstance(doc.positions._data, list)  # the position table was never built
    assert Renderer({"x": 1, "y": {"z": "w"}}, {}).render(plan) == {"a": {"b": 1, "c": "v-w"}}


def test_a_plain_scalar_that_falls_back_to_jinja_still_names_its_line(tmp_path: Path) -> None:
    # a source no other test plans: a compiled scalar is shared by source, with its first location
    doc = load_document(b"a:\n  b: '{{ cold_x.cold_y }}'\n", path="templates/t.yaml", layer="template")
    plan = plan_template(doc, doc.value)
    with pytest.raises(InputError, match=r"^templates/t\.yaml:2:3: template error: 'int object' has no attribute"):
        Renderer({"cold_x": 5}, {}).render(plan)  # `.cold_y` of an int: Jinja decides


# --- bundles synced as they arrive ---------------------------------------------------------------


def test_a_bundle_synced_as_it_arrived_is_installed(tmp_path: Path) -> None:
    bundles = BundleDir(tmp_path / "dist", ["a", "b"])
    with bundles.staged() as staging:
        for name in ("a", "b"):
            (staging / f"{name}.bundle.json").write_bytes(b"{}")
        bundles.sync_soon("a")  # b is synced by install, with the others
        bundles.install(["a", "b"])
    assert sorted(p.name for p in (tmp_path / "dist").iterdir()) == ["a.bundle.json", "b.bundle.json"]


def test_old_bundles_leave_the_directory_at_once_and_are_freed_while_the_build_goes_on(tmp_path: Path) -> None:
    """Unlinking 53 old bundles (14 MB) took 17-150 ms on this ext4 before any target started: their names
    leave DIR at once (rule 1), their files stay linked in the staging directory until the first bundle
    arrives (``sync_soon``), or to its removal."""
    out = tmp_path / "dist"
    out.mkdir()
    for name in ("a", "b", "gone"):  # gone: a target no longer in llmcc.yaml
        (out / f"{name}.bundle.json").write_text(f"old {name}")
    inodes = {p.name: p.stat().st_ino for p in out.iterdir()}
    (tmp_path / "elsewhere").write_text("not a bundle")
    (out / "b.bundle.json").unlink()
    (out / "b.bundle.json").symlink_to(tmp_path / "elsewhere")
    bundles = BundleDir(out, ["a", "b"], known=["a", "b"])
    with bundles.staged() as staging:
        assert [p.name for p in out.iterdir()] == [staging.name]
        aside = staging / OLD_BUNDLES
        assert {p.name: p.lstat().st_ino for p in aside.iterdir() if not p.is_symlink()} == {
            "a.bundle.json": inodes["a.bundle.json"],
            "gone.bundle.json": inodes["gone.bundle.json"],
        }
        assert (aside / "b.bundle.json").is_symlink()  # the link itself, not the file it names
        (staging / "a.bundle.json").write_text("new a")
        bundles.sync_soon("a")  # the first bundle: the old ones are freed meanwhile
        bundles.install(["a"])
    assert [p.name for p in out.iterdir()] == ["a.bundle.json"]
    assert (out / "a.bundle.json").read_text() == "new a"
    assert (tmp_path / "elsewhere").read_text() == "not a bundle"


def test_old_bundles_set_aside_go_with_the_staging_directory_when_no_bundle_arrives(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    out.mkdir()
    (out / "a.bundle.json").write_text("old a")
    with BundleDir(out, ["a"]).staged() as staging:
        assert (staging / OLD_BUNDLES / "a.bundle.json").read_text() == "old a"
    assert list(out.iterdir()) == []


def test_a_directory_in_place_of_an_old_bundle_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    (out / "a.bundle.json").mkdir(parents=True)
    (out / "b.bundle.json").write_text("old b")
    with (
        pytest.raises(InputError, match="cannot prepare the output directory: Is a directory"),
        BundleDir(out, ["b", "a"]).staged(),
    ):
        pass
    assert [p.name for p in out.iterdir()] == ["a.bundle.json"]  # no staging directory left, b gone (rule 1)


def test_an_early_sync_that_failed_fails_the_install_and_installs_nothing(tmp_path: Path) -> None:
    bundles = BundleDir(tmp_path / "dist", ["a", "gone"])
    with bundles.staged() as staging:
        (staging / "a.bundle.json").write_bytes(b"{}")
        bundles.sync_soon("gone")  # its staged file does not exist: the sync fails
        with pytest.raises(InputError, match="cannot install the bundles"):
            bundles.install(["a", "gone"])
    assert list((tmp_path / "dist").iterdir()) == []


def test_compile_outcomes_call_written_for_each_bundle_in_the_parent(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=4)
    (root / "environments/tenants/t01.yaml").write_text("modules:\n  engine:\n    model: {max_tokens: 0}\n")
    repo = open_repo(root)
    seen: list[str] = []
    request = BuildRequest(repo=repo, source=None, out_dir=tmp_path / "out", written=seen.append)
    outcomes = build_targets(request, repo.project.targets(), jobs=2)
    good = sorted(o.target for o in outcomes if o.size)
    assert sorted(seen) == good
    assert "staging@t01" not in seen  # failed its schema: no bundle, nothing to sync


# --- the work tree: symlinks out refused on every read (no directory memo) ---------------------------


def _refused_outside(tree: WorkTree, path: str) -> None:
    """Both ways of asking for ``path`` refuse it, naming it."""
    for ask in (tree.read, tree.exists):
        with pytest.raises(InputError, match=rf"^{re.escape(path)}: points outside the repository"):
            ask(path)


def test_a_directory_read_then_swapped_for_a_symlink_out_is_refused_by_the_same_tree(tmp_path: Path) -> None:
    # The attacker's race: a run read env/, then env/ became a symlink out of the repository; a memo of
    # resolved directories (tried this session) served the outside file to the rest of the run.
    root, outside = tmp_path / "repo", tmp_path / "outside"
    (root / "env").mkdir(parents=True)
    outside.mkdir()
    (root / "env" / "a.yaml").write_text("a: 1\n")
    (root / "env" / "b.yaml").write_text("b: 1\n")
    (outside / "b.yaml").write_text("b: EVIL\n")
    tree = WorkTree(root)
    assert tree.read("env/a.yaml") == b"a: 1\n"
    (root / "env").rename(root / "moved")
    (root / "env").symlink_to(outside)
    _refused_outside(tree, "env/b.yaml")


def test_a_symlink_out_of_the_root_in_a_directory_already_read_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "repo", tmp_path / "outside"
    (root / "env").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.yaml").write_text("a: 1\n")
    (root / "env" / "ok.yaml").write_text("b: 1\n")
    (root / "env" / "link.yaml").symlink_to(outside / "secret.yaml")
    tree = WorkTree(root)
    assert tree.read("env/ok.yaml") == b"b: 1\n"
    _refused_outside(tree, "env/link.yaml")


def test_a_directory_missing_when_asked_and_made_a_symlink_out_later_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "repo", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "x.yaml").write_text("a: 1\n")
    tree = WorkTree(root)
    assert not tree.exists("gone/x.yaml")
    assert not tree.exists("gone/y.yaml")  # still missing: answered from the one lstat
    (root / "gone").symlink_to(outside)
    with pytest.raises(InputError, match=r"^gone/x\.yaml: points outside the repository"):
        tree.read("gone/x.yaml")


def test_a_directory_missing_then_made_is_read(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    tree = WorkTree(root)
    assert not tree.exists("later/x.yaml")
    (root / "later").mkdir()
    (root / "later" / "x.yaml").write_text("a: 1\n")
    assert tree.read("later/x.yaml") == b"a: 1\n"


def test_a_symlinked_directory_out_of_the_root_is_refused_naming_the_path_asked(tmp_path: Path) -> None:
    root, outside = tmp_path / "repo", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "x.yaml").write_text("a: 1\n")
    (root / "env").symlink_to(outside)
    (root / "file").write_text("not a directory\n")
    tree = WorkTree(root)
    for _ in range(2):  # nothing of the refusal is remembered
        with pytest.raises(InputError, match=r"^env/x\.yaml: points outside the repository \(symlink to "):
            tree.read("env/x.yaml")
    assert not tree.exists("file/x.yaml")  # below a file: nothing


def test_a_name_lstat_refuses_is_resolved_whole_as_before(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "env").mkdir(parents=True)
    tree = WorkTree(root)
    long = "env/" + "x" * 300  # ENAMETOOLONG from lstat
    assert tree._resolve(long) == tree._resolve_full(long) == root.resolve() / long


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: (p / "policies/p.yaml").symlink_to(p / "nowhere.yaml"), "policies/p.yaml: not a regular file"),
        (lambda p: (p / "policies/x.yml").mkdir(), "policies/x.yml: not a regular file"),
        (lambda p: (p / "policies").write_text("rules: []\n"), "policies: not a directory"),
    ],
    ids=["dangling-symlink", "directory", "policies-a-file"],
)
def test_a_policy_file_that_is_not_a_file_is_refused_not_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Callable[[Path], object], message: str
) -> None:
    # Attacker: compile skipped these silently, so the rules they held did not apply (fail open).
    root = mini_repo(tmp_path / "repo")
    if message != "policies: not a directory":
        (root / "policies").mkdir(exist_ok=True)
    make(root)
    for command in ("validate", "compile"):
        assert main(["-q", "-C", str(root), command, "--no-cache"]) == 2
        assert message in capsys.readouterr().err


def test_a_symlinked_policy_file_in_a_revision_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = mini_repo(tmp_path / "repo")
    (root / "policies").mkdir(exist_ok=True)
    (root / "rules.yaml").write_text("rules: []\n")
    (root / "policies/p.yaml").symlink_to("../rules.yaml")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "x"]):
        subprocess.run(["git", *args], cwd=root, check=True, env={**os.environ, **env})
    assert main(["-q", "-C", str(root), "validate", "--rev", "HEAD"]) == 2
    assert "policies/p.yaml: not a regular file" in capsys.readouterr().err


# A compile run as a process (the `llmcc` script, `python -m compiler`) ends with os._exit once it succeeded,
# its output flushed (compiler.cli.EXIT_AT_ONCE): an atexit handler registered before main() never runs then.
_RUN_MAIN = """
import atexit, sys
atexit.register(lambda: print("teardown", file=sys.stderr))
sys.argv = ["llmcc", *sys.argv[1:]]
from compiler.cli import main
sys.exit(main())
"""


def _run_main(
    tmp_path: Path,
    *args: str,
    stdout: int | IO[str] = subprocess.PIPE,
    buffered: bool = False,
    closed_stdout: bool = False,
    script_text: str = _RUN_MAIN,
) -> subprocess.CompletedProcess[str]:
    """``main()`` of a fresh process with ``args`` (under coverage when the suite is: its os._exit saves the data);
    ``closed_stdout``: started with descriptor 1 closed (``sys.stdout`` is then None)."""
    script = tmp_path / "run_main.py"
    script.write_text(script_text)
    command = [sys.executable, str(script), *args]
    with contextlib.suppress(ImportError):
        import coverage

        if coverage.Coverage.current() is not None:
            command = [
                sys.executable,
                "-m",
                "coverage",
                "run",
                f"--rcfile={REPO_ROOT / 'pyproject.toml'}",
                *command[1:],
            ]
    if closed_stdout:
        command = ["sh", "-c", 'exec "$@" >&-', "sh", *command]
    env = {**os.environ, "COVERAGE_FILE": str(REPO_ROOT / ".coverage")}
    if buffered:
        env.pop("PYTHONUNBUFFERED", None)
    return subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, text=True, check=False, env=env, cwd=tmp_path)


def test_a_compile_process_ends_at_once_with_its_output_whole(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=40)  # 83 targets: more output than a pipe's buffer
    done = _run_main(tmp_path, "-C", str(root), "compile")
    assert done.returncode == 0, done.stderr
    names = sorted(t.name for t in open_repo(root).project.targets())
    assert sorted(done.stdout.splitlines()) == sorted(f"dist/{n}.bundle.json" for n in names)
    assert re.fullmatch(r"llmcc: compiled 83 targets in \d+\.\d\ds\n", done.stderr)  # no "teardown"
    assert sorted(p.name for p in (root / "dist").iterdir()) == sorted(f"{n}.bundle.json" for n in names)


def test_a_failed_compile_or_version_exit_as_usual(tmp_path: Path) -> None:
    root = mini_repo(tmp_path / "repo")
    version = _run_main(tmp_path, "--version")  # no command ran
    assert (version.returncode, version.stderr) == (0, "teardown\n")
    (root / "environments/prod.yaml").write_text("vars: [not, a, mapping]\n")
    failed = _run_main(tmp_path, "-C", str(root), "compile", "-q")
    assert failed.returncode == 2
    assert failed.stderr.endswith("teardown\n")


def test_output_that_cannot_be_flushed_is_one_line_and_exit_2(tmp_path: Path) -> None:
    root = mini_repo(tmp_path / "repo")
    with open("/dev/full", "w") as full:  # every write fails: ENOSPC, here when the buffered lines are flushed
        done = _run_main(tmp_path, "-C", str(root), "compile", "-q", stdout=full, buffered=True)
    assert done.returncode == 2  # one line, as for a write that fails while the command runs
    assert done.stderr == "llmcc: cannot write the output: No space left on device\nteardown\n"


def test_a_compile_started_with_stdout_closed_ends_at_once_too(tmp_path: Path) -> None:
    root = mini_repo(tmp_path / "repo")
    done = _run_main(tmp_path, "-C", str(root), "compile", "-q", closed_stdout=True)
    assert (done.returncode, done.stderr) == (0, "")  # no "teardown"
    assert sorted(p.name for p in (root / "dist").iterdir()) == [
        f"{t.name}.bundle.json" for t in sorted(open_repo(root).project.targets(), key=lambda t: t.name)
    ]


def test_main_called_in_a_process_returns_its_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = mini_repo(tmp_path / "repo")
    assert main(["-C", str(root), "compile", "-q"]) == 0  # still here: only the process's entry exits at once
    names = [t.name for t in open_repo(root).project.targets()]
    assert capsys.readouterr().out.splitlines() == [f"dist/{n}.bundle.json" for n in names]


# The same process, telling when what a compile parsed and derived is freed.
_SAYS_FREED = """
import sys
from compiler.compile.pipeline import CompileCaches, EnvBase
from compiler.compile.repository import Repository
for kind in (Repository, CompileCaches, EnvBase):
    kind.__del__ = lambda self: print("freed", type(self).__name__, file=sys.stderr)
sys.argv = ["llmcc", *sys.argv[1:]]
from compiler.cli import main
sys.exit(main())
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_compile_process_leaves_its_parsed_inputs_to_the_os(tmp_path: Path, jobs: str) -> None:
    """Freeing them one by one when ``run`` returned cost ~20 ms of a cold compile of 53 targets, just
    before ``os._exit`` (compiler.lifetime); serial and parallel builds alike."""
    root = many_targets_repo(tmp_path / "repo", tenants=4)
    done = _run_main(tmp_path, "-C", str(root), "compile", "-q", "-j", jobs, script_text=_SAYS_FREED)
    assert (done.returncode, done.stderr) == (0, "")
    assert len(list((root / "dist").iterdir())) == len(open_repo(root).project.targets())


def test_main_called_in_a_process_frees_what_its_compile_parsed(tmp_path: Path) -> None:
    """Only the process's entry point leaves objects to the OS: a caller of ``main(argv)`` keeps nothing."""
    from compiler.compile.pipeline import CompileCaches

    root = many_targets_repo(tmp_path / "repo", tenants=4)
    before = _count(CompileCaches)
    assert main(["-C", str(root), "compile", "-q", "-j", "1"]) == 0
    gc.collect()
    assert _count(CompileCaches) == before


def _count(kind: type) -> int:
    """Live objects of ``kind`` the collector tracks (a parallel build freezes its own: -j 1 here)."""
    return sum(1 for o in gc.get_objects() if isinstance(o, kind))


def test_a_parallel_build_freezes_the_inputs_before_any_collection_walks_them(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=5, modules=12)  # the warm-up makes ~10^4 objects
    repo = open_repo(root)
    warmed: list[int] = []  # freeze count at each collection that started once the templates were parsed

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and repo._templates:
            warmed.append(gc.get_freeze_count())

    gc.unfreeze()  # what earlier tests froze: the count below is this build's
    gc.collect()
    gc.callbacks.append(seen)
    try:
        request = BuildRequest(repo=repo, source=None, out_dir=tmp_path / "out")
        outcomes = build_targets(request, repo.project.targets(), jobs=2)
    finally:
        gc.callbacks.remove(seen)
    assert all(o.size and o.error is None for o in outcomes)
    assert gc.get_freeze_count() > 0
    assert 0 not in warmed  # no collection walked the parsed inputs before they were frozen


def test_a_compile_under_the_profiler_lets_it_write_its_figures(tmp_path: Path) -> None:
    """``os._exit`` skipped cProfile's own exit, so ``-o FILE`` was never written (bench/incremental.py's
    profile of a bar it missed read an empty file)."""
    root = mini_repo(tmp_path / "repo")
    out = tmp_path / "compile.prof"
    argv = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "compiler", "-C", str(root), "compile", "-q"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert pstats.Stats(str(out)).total_calls > 0


_CHILD_AFTER_PREPARE = """
import ctypes.util, os, sys
from compiler.compile import orphans
orphans.prepare()
sys.modules.pop("ctypes", None)  # what the child would import if prepare had not found prctl
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    before = set(sys.modules)
    orphans.die_with_parent(os.getppid())
    imported = sorted(set(sys.modules) - before)
    import ctypes
    signal = ctypes.c_int(0)
    ctypes.CDLL(None).prctl(2, ctypes.byref(signal), 0, 0, 0)  # PR_GET_PDEATHSIG
    os.write(w, repr((imported, signal.value)).encode())
    os._exit(0)
os.close(w)
print(os.read(r, 4096).decode())
os.waitpid(pid, 0)
"""


def test_a_child_forked_after_prepare_dies_with_its_parent_without_importing_ctypes() -> None:
    """Each -j worker and the pre-parse helper imported ctypes (3-7 ms) before any work, to call prctl."""
    done = subprocess.run([sys.executable, "-c", _CHILD_AFTER_PREPARE], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == repr(([], 9))  # nothing imported; SIGKILL when the parent dies
