"""``--shard I/N`` (issue 14 §4): the partition rule of compiler/shards.py, and the commands that take it."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.cli import main
from compiler.compile.build import BuildRequest, build_targets
from compiler.compile.pipeline import CompileCaches
from compiler.compile.types import parse_only
from compiler.errors import UsageError
from compiler.load.yaml import Document
from compiler.project import Target
from compiler.shards import MAX_SHARDS, Shard, assign_shards, parse_shard, select_shard, shard_groups
from tests.core._repos import many_targets_repo, mini_repo, open_repo

ENVS = ["dev", "prod", "qa", "staging", "eu", "us"]


@st.composite
def target_sets(draw: st.DrawFn) -> list[Target]:
    """Distinct targets over a few environments: with or without the environment's own target, and
    tenants each in some of the environments (as ``tenants:`` in llmcc.yaml lists them)."""
    envs = draw(st.lists(st.sampled_from(ENVS), unique=True, max_size=len(ENVS)))
    out = [Target(env) for env in envs if draw(st.booleans())]
    if envs:
        for i in range(draw(st.integers(min_value=0, max_value=60))):
            out += [Target(env, f"t{i:03d}") for env in draw(st.lists(st.sampled_from(envs), unique=True))]
    return out


def _limit(count: int, total: int) -> int:
    cap = math.ceil(count / total)
    return cap + cap // 8


@settings(max_examples=300, deadline=None)
@given(targets=target_sets(), total=st.integers(min_value=1, max_value=40), data=st.data())
def test_every_target_is_in_exactly_one_shard(targets: list[Target], total: int, data: st.DataObject) -> None:
    shards = assign_shards(targets, total)
    assert len(shards) == total
    placed = [t for part in shards for t in part]
    assert sorted(placed, key=str) == sorted(targets, key=str)  # each exactly once
    assert [select_shard(targets, Shard(i + 1, total)) for i in range(total)] == shards
    for part in shards:  # each in the order of the input
        assert part == [t for t in targets if t in part]
    assert max(map(len, shards)) <= _limit(len(targets), total)
    # a tenant's targets read its layer files: one shard holds them all, except a tenant cut where a
    # shard reached its fair share (which then takes nothing more)
    holders: dict[str, set[int]] = {}
    for i, part in enumerate(shards):
        for t in part:
            if t.tenant is not None:
                holders.setdefault(t.tenant, set()).add(i)
    assert sum(len(h) > 1 for h in holders.values()) <= total - 1
    # the groups (the environments a tenant reads): a group is split only where a shard reaches its
    # fair share, when the unit cut there fits in the slack above it
    groups = shard_groups(targets)
    assert sorted((t for g in groups for t in g), key=str) == sorted(targets, key=str)
    unit = max((sum(t.tenant == name for t in targets) for name in holders), default=1)
    if unit - 1 <= math.ceil(len(targets) / total) // 8:
        group_of = {t: i for i, g in enumerate(groups) for t in g}
        assert sum(len({group_of[t] for t in part}) for part in shards) <= len(groups) + total - 1
    # the rule reads the set of targets, not their order or the machine
    shuffled = data.draw(st.permutations(targets))
    assert [sorted(p, key=str) for p in assign_shards(shuffled, total)] == [sorted(p, key=str) for p in shards]


@pytest.mark.parametrize(("groups", "total"), [(4, 4), (8, 4), (12, 4), (6, 3), (3, 1)])
def test_equal_groups_that_fit_are_never_split(groups: int, total: int) -> None:
    targets = [Target(f"e{g:02d}", f"t{g}-{i}") for g in range(groups) for i in range(5)]
    shards = assign_shards(targets, total)
    assert [len({t.environment for t in p}) for p in shards] == [groups // total] * total
    assert [len(p) for p in shards] == [5 * groups // total] * total


def test_the_bench_workload_keeps_each_tenant_in_one_shard() -> None:
    """gen_workload --tenants 500: dev, staging and prod, 500 tenants in staging and prod (1,003 targets).

    Each tenant's two targets read its tenant file: in one shard it is parsed once, not once in each
    of two shards (grouped by environment, a shard spent 45 % more CPU per target than one runner).
    """
    targets = [Target("dev"), Target("staging"), Target("prod")]
    targets += [Target(env, f"t{i:04d}") for env in ("staging", "prod") for i in range(500)]
    shards = assign_shards(targets, 4)
    assert [len(p) for p in shards] == [252, 252, 252, 247]
    assert [sorted({t.environment for t in p}) for p in shards] == [
        ["prod", "staging"],
        ["prod", "staging"],
        ["prod", "staging"],
        ["dev", "prod", "staging"],
    ]
    for part in shards:
        tenants = {t.tenant for t in part if t.tenant is not None}
        assert len(part) - len(tenants) * 2 in (0, 1, 2)  # both targets of each tenant, and environments'
    assert [len(p) for p in shard_groups(targets)] == [1002, 1]  # staging and prod with their tenants; dev


def test_a_group_is_cut_between_tenants_and_inside_one_only_when_it_alone_overfills_a_shard() -> None:
    """A tenant in more environments than a shard's fair share: cut where the shard is full. Else the
    cut moves to the start of the tenant it fell in (the next shard takes it whole)."""
    targets = [Target(f"e{e}", "big") for e in range(6)] + [Target("e0", "small")]
    shards = assign_shards(targets, 2)
    assert [len(p) for p in shards] == [4, 3]
    assert shards[1] == [Target("e4", "big"), Target("e5", "big"), Target("e0", "small")]
    # fair share 2, no slack: the cut at 2 falls inside b, which goes whole to the next shard
    targets = [Target("prod"), Target("prod", "b"), Target("staging", "b")]
    assert [[t.name for t in p] for p in assign_shards(targets, 2)] == [["prod"], ["prod@b", "staging@b"]]
    # 2 tenants of 2 environments, 3 shards: fair share 2, no slack; each tenant whole
    targets = [Target(e, t) for t in ("a", "b") for e in ("prod", "staging")] + [Target("dev")]
    assert [[t.name for t in p] for p in assign_shards(targets, 3)] == [
        ["prod@a", "staging@a"],
        ["prod@b", "staging@b"],
        ["dev"],
    ]


def test_a_unit_past_the_fair_share_goes_whole_within_the_slack() -> None:
    """The cut at the fair share (8 of 15) falls inside a tenant: the tenant goes whole (9 <= 8 + 1)."""
    targets = [Target("staging"), *(Target(e, f"t{i}") for i in range(7) for e in ("prod", "staging"))]
    shards = assign_shards(targets, 2)
    assert [len(p) for p in shards] == [9, 6]
    assert {t.tenant for t in shards[0]} & {t.tenant for t in shards[1]} == set()


def test_fewer_groups_than_shards_splits_them_and_leaves_no_shard_idle() -> None:
    targets = [Target("prod"), *(Target("prod", f"t{i}") for i in range(7))]
    assert [len(p) for p in assign_shards(targets, 4)] == [2, 2, 2, 2]
    assert assign_shards(targets, 4)[0] == [Target("prod"), Target("prod", "t0")]  # the environment's own first


def test_more_shards_than_targets_leaves_empty_shards() -> None:
    assert select_shard([Target("dev"), Target("prod")], None) == [Target("dev"), Target("prod")]  # no --shard
    assert assign_shards([Target("dev"), Target("prod")], 3) == [[Target("dev")], [Target("prod")], []]
    assert assign_shards([], 2) == [[], []]


def test_a_group_within_the_slack_stays_whole() -> None:
    # 17 targets over 2 shards: fair share 9, slack 1; prod (10) fits in 9 + 1
    targets = [*(Target("prod", f"p{i}") for i in range(10)), *(Target("dev", f"d{i}") for i in range(7))]
    shards = assign_shards(targets, 2)
    assert [{t.environment for t in p} for p in shards] == [{"prod"}, {"dev"}]


def test_an_environment_target_goes_with_the_largest_group_of_its_tenants() -> None:
    tenants = [Target("prod", "a"), Target("prod", "b"), *(Target(e, t) for t in "cd" for e in ("prod", "staging"))]
    groups = shard_groups([Target("prod"), *tenants])
    assert [[t.name for t in g] for g in groups] == [
        ["prod", "prod@c", "staging@c", "prod@d", "staging@d"],  # the environment's own target first
        ["prod@a", "prod@b"],
    ]
    # groups of equal size: the smaller set of environments (as a sorted tuple), then alone
    groups = shard_groups([Target("dev"), Target("prod"), *tenants[:3], Target("staging", "c")])
    assert [[t.name for t in g] for g in groups] == [["prod", "prod@a", "prod@b"], ["prod@c", "staging@c"], ["dev"]]


@pytest.mark.parametrize(
    ("text", "shard"), [("1/1", Shard(1, 1)), ("2/4", Shard(2, 4)), (" 4/4 ", Shard(4, 4)), ("007/10", Shard(7, 10))]
)
def test_parse_shard(text: str, shard: Shard) -> None:
    assert parse_shard(text) == shard
    assert str(shard) == f"{shard.index}/{shard.total}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2", "'2' is not a shard: expected I/N, e.g. 2/4 (shard 2 of 4, counting from 1)"),
        ("a/4", "'a/4' is not a shard: expected I/N"),
        ("-1/4", "'-1/4' is not a shard: expected I/N"),
        ("1/", "'1/' is not a shard: expected I/N"),
        ("1/2/3", "'1/2/3' is not a shard: expected I/N"),
        ("0/4", "'0/4': the shard index I must be between 1 and N (4), counting from 1"),
        ("5/4", "'5/4': the shard index I must be between 1 and N (4), counting from 1"),
        ("0/0", f"'0/0': the number of shards N must be between 1 and {MAX_SHARDS}"),
        (f"1/{MAX_SHARDS + 1}", f"'1/{MAX_SHARDS + 1}': the number of shards N must be between 1 and {MAX_SHARDS}"),
    ],
)
def test_parse_shard_refuses(text: str, message: str) -> None:
    with pytest.raises(UsageError, match="^" + re.escape(message)):
        parse_shard(text)


def test_a_shard_is_checked_when_made() -> None:
    with pytest.raises(UsageError, match=r"^3/2 is not a shard"):
        Shard(3, 2)
    with pytest.raises(UsageError, match=r"^1/0 is not a shard"):
        assign_shards([Target("dev")], 0)


def test_a_shard_computes_each_of_its_environments_base_once(tmp_path: Path) -> None:
    """A shard merges the bases of its targets' environments only (compiler/compile/build.py)."""
    root = mini_repo(tmp_path)
    targets = open_repo(root).project.targets()  # dev, staging, prod, staging@acme, prod@acme
    parts = [select_shard(targets, Shard(i, 3)) for i in (1, 2, 3)]
    assert [[t.name for t in p] for p in parts] == [["staging", "prod"], ["staging@acme", "prod@acme"], ["dev"]]
    for part in parts:
        caches = CompileCaches()
        request = BuildRequest(repo=open_repo(root), source=None, keep_bytes=True, caches=caches)
        outcomes = build_targets(request, part, jobs=1)
        assert [o.target for o in outcomes] == [t.name for t in part]
        assert set(caches.env_bases) == {t.environment for t in part}  # dev: not staging, nor prod


@pytest.mark.parametrize("total", [2, 3, 4, 7])
def test_the_shards_parse_each_tenant_file_once_between_them(tmp_path: Path, total: int) -> None:
    """Each tenant's targets in staging and prod read environments/tenants/<t>.yaml: the shards
    together parse it once (grouped by environment, once in each of two shards: issue 14 §4's 45 %
    more CPU per target than one runner), but for a tenant cut where a shard is full."""
    root = many_targets_repo(tmp_path, tenants=9)
    targets = open_repo(root).project.targets()
    parsed: Counter[str] = Counter()

    def counting(data: bytes, *, path: str, layer: str, **kw: Any) -> Document:
        parsed[path] += 1
        return parse_only(data, path=path, layer=layer, **kw)

    outcomes = []
    for i in range(1, total + 1):
        repo = open_repo(root)
        repo.parse = counting
        part = select_shard(targets, Shard(i, total))
        outcomes += build_targets(BuildRequest(repo=repo, source=None, keep_bytes=True), part, jobs=1)
    assert sorted(o.target for o in outcomes) == sorted(t.name for t in targets)
    assert all(o.error is None and o.data for o in outcomes)
    tenant_files = {p: n for p, n in parsed.items() if p.startswith("environments/tenants/")}
    assert len(tenant_files) == 9
    assert sum(tenant_files.values()) <= 9 + total - 1


# ---- the commands ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["compile", "validate", "publish"])
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("3", "'3' is not a shard: expected I/N"),
        ("0/2", "'0/2': the shard index I must be between 1 and N (2), counting from 1"),
        ("3/2", "'3/2': the shard index I must be between 1 and N (2), counting from 1"),
        ("1/0", "'1/0': the number of shards N must be between 1 and"),
    ],
)
def test_a_bad_shard_is_one_usage_line(
    command: str, value: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = mini_repo(tmp_path)
    assert main(["-C", str(root), command, "--shard", value]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"llmcc: argument --shard: {message}")
    assert lines[0].endswith(f"(see llmcc {command} --help)")
    assert not (root / "dist").exists()


def test_compile_shards_write_every_bundle_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = mini_repo(tmp_path)
    whole = tmp_path / "whole"
    assert main(["-C", str(root), "compile", "-q", "--out", str(whole)]) == 0
    capsys.readouterr()
    written: list[str] = []
    for i in (1, 2, 3):
        out = tmp_path / f"shard{i}"
        assert main(["-C", str(root), "compile", "--shard", f"{i}/3", "--out", str(out)]) == 0
        captured = capsys.readouterr()
        names = sorted(p.name for p in out.glob("*.bundle.json"))
        assert sorted(Path(line).name for line in captured.out.splitlines()) == names
        assert captured.err.startswith(f"llmcc: shard {i}/3: compiled {len(names)} of 5 targets in ")
        for name in names:
            assert (out / name).read_bytes() == (whole / name).read_bytes()
        written += names
    assert sorted(written) == sorted(p.name for p in whole.glob("*.bundle.json"))


def test_validate_shard_summary_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = mini_repo(tmp_path)
    assert main(["-C", str(root), "validate", "--shard", "2/2"]) == 0
    assert capsys.readouterr().err == "llmcc: validate ok: shard 2/2: 2 of 5 targets, 0 errors, 0 warnings\n"
    assert main(["-C", str(root), "validate", "--shard", "2/2", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["targets"] == ["staging@acme", "prod@acme"]
    assert doc["shard"] == {"index": 2, "total": 2, "targets": 2, "all_targets": 5}
    # without --shard nothing changes
    assert main(["-C", str(root), "validate", "--format", "json"]) == 0
    assert "shard" not in json.loads(capsys.readouterr().out)


def test_shard_applies_to_the_targets_selected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = mini_repo(tmp_path)
    argv = ["-C", str(root), "validate", "-t", "prod", "-t", "prod@acme", "-t", "dev", "--format", "json"]
    assert main([*argv, "--shard", "2/2"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["targets"] == ["dev"]
    assert doc["shard"] == {"index": 2, "total": 2, "targets": 1, "all_targets": 3}


def test_an_empty_shard_succeeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = mini_repo(tmp_path)
    assert main(["-C", str(root), "validate", "-t", "dev", "--shard", "2/2"]) == 0
    assert capsys.readouterr().err == "llmcc: validate ok: shard 2/2: 0 of 1 target, 0 errors, 0 warnings\n"
    assert main(["-C", str(root), "compile", "-t", "dev", "--shard", "2/2", "--out", str(tmp_path / "d")]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("llmcc: shard 2/2: compiled 0 of 1 target in ")


def test_every_shard_reports_an_orphan_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A finding about the repository, not about a target: every shard reports it, as a whole run does
    (the check ran only when every target was selected, so no shard ever reported it)."""
    root = mini_repo(tmp_path, files={"keys/targets/nowhere.yaml": "x\n"})
    orphan = "orphan data key: llmcc.yaml defines no target nowhere"
    assert main(["-C", str(root), "validate", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["diagnostics"][0]["message"].startswith(orphan)
    for i in (1, 2):
        assert main(["-C", str(root), "validate", "--shard", f"{i}/2", "--format", "json"]) == 0
        assert json.loads(capsys.readouterr().out)["diagnostics"][0]["message"].startswith(orphan)
    assert main(["-C", str(root), "validate", "-t", "dev", "--format", "json"]) == 0  # a chosen few: not theirs
    assert json.loads(capsys.readouterr().out)["diagnostics"] == []
