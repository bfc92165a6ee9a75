"""A target that reads a SOPS file is reused on a dirty tree (issue 14): its key holds the ages in days of
the timestamps its secrets are dated by, not the wall clock to the microsecond, which missed every run.

The policy time reaches a rule only through the waivers' day and the secrets' ``age_days`` (CEL has no
clock); both are keyed, so an age that moves past a day, a rotation recorded, or a file that cannot be read
still rebuilds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from compiler.audit.revisions import worktree_file_ids
from compiler.cli import main
from compiler.incremental.inputs import CHECK_ROOTS
from compiler.incremental.key import KeyContext, cache_keys
from compiler.project import Target, load_project
from compiler.secrets.rotation import dump_rotation, rotation_path
from tests.conftest import GitRepo
from tests.incremental.test_cache_cli import entries, plant_warning

# the example's SOPS files were last modified at 2026-11-22T14:08:48Z: its secrets' ages step at 14:08:48 UTC
STAMP = dt.datetime(2026, 11, 22, 14, 8, 48, tzinfo=dt.UTC)
DEV = Target("dev")


def keys_at(root: Path, now: dt.datetime, *, read: bool = True) -> dict[str, str]:
    project = load_project((root / "llmcc.yaml").read_bytes())
    files = worktree_file_ids(root, CHECK_ROOTS)
    context = KeyContext(mode="validate", rev=None, opaque=True, recipients=[], policy_now=now)
    reader = (lambda p: (root / p).read_bytes()) if read else None
    return cache_keys(project, files, project.targets(), context, read=reader)


def test_the_key_moves_with_the_secrets_ages_not_with_the_clock(example_repo: GitRepo) -> None:
    root = example_repo.path
    morning = STAMP + dt.timedelta(days=30, hours=-3)  # 30 days old less 3 hours: age 29 days
    keys = keys_at(root, morning)
    assert keys == keys_at(root, morning + dt.timedelta(hours=2, minutes=59))  # still 29 days
    later = keys_at(root, morning + dt.timedelta(hours=3))  # 14:08:48 that day: 30 days
    assert keys["dev"] != later["dev"]  # dev reads environments/dev.secrets.sops.yaml
    # without a reader, the exact time as before
    second = morning + dt.timedelta(seconds=1)
    assert keys_at(root, morning, read=False)["dev"] != keys_at(root, second, read=False)["dev"]


def test_a_rotation_recorded_or_a_sops_file_that_does_not_parse_moves_the_key(example_repo: GitRepo) -> None:
    root = example_repo.path
    now = STAMP + dt.timedelta(days=10)
    keys = keys_at(root, now)
    side = root / rotation_path("environments/dev.secrets.sops.yaml")
    key = "inference-engine.providers.openai.api_key"
    side.write_bytes(dump_rotation({key: "2026-12-01T09:00:00Z"}, sops_path="environments/dev.secrets.sops.yaml"))
    dated = keys_at(root, now)
    assert dated["dev"] != keys["dev"]
    # the sidecar's entry has its own day boundary (09:00:00): crossing it moves the key again
    assert keys_at(root, now.replace(hour=9, minute=0, second=0) - dt.timedelta(seconds=1)) != keys_at(
        root, now.replace(hour=9, minute=0, second=0)
    )
    side.write_text("rotated_at: [not, a, mapping]\n")
    broken = keys_at(root, now)
    assert broken["dev"] != keys_at(root, now + dt.timedelta(seconds=1))["dev"]  # unreadable: the exact time


def dirty(root: Path) -> None:
    notes = root / "policies/README.md"
    notes.write_text(notes.read_text() + "\nedited\n")


def test_validate_on_a_dirty_tree_reuses_a_target_that_reads_a_sops_file(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    root = example_repo.path
    dirty(root)  # policy time: the wall clock of each run
    assert main(["-q", "-C", str(root), "validate", "--target", "dev"]) == 0
    [entry] = entries(root)
    plant_warning(entry, "planted in the cache")  # only a hit can print it
    capsys.readouterr()
    assert main(["-C", str(root), "validate", "--target", "dev"]) == 0
    assert "warning: planted in the cache" in capsys.readouterr().err
    assert len(entries(root)) == 1


def test_an_age_is_whole_days_floored_and_none_for_a_stamp_not_in_rfc_3339() -> None:
    from compiler.policy.secretmeta import age_days, secret_entry

    assert age_days("2026-11-22T14:08:48Z", STAMP + dt.timedelta(days=3, seconds=-1)) == 2
    assert age_days("2026-11-22T14:08:48Z", STAMP - dt.timedelta(seconds=1)) == -1
    assert age_days("last tuesday", STAMP) is None
    # a SOPS file's lastmodified is not checked when it is read: such a secret has no known age
    _, entry = secret_entry(
        "m", ("k",), file="f.sops.yaml", rotated_at="last tuesday", source="sops", every=None, now=STAMP
    )
    assert (entry["rotated_at"], entry["rotated_at_source"], entry["age_days"]) == (None, None, None)
