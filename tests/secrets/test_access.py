"""compiler.secrets.access: every way a key file can drift from llmcc.yaml's readers, found without an identity."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pyrage
import pytest

from compiler.affected import affected_targets
from compiler.project import Project, Target, load_project
from compiler.secrets.access import (
    ReaderChange,
    Readers,
    check_key_file,
    data_key_changes,
    orphan_key_files,
    reader_changes,
)
from compiler.secrets.kek.age import age_stanza_types, unnamed_readers
from compiler.secrets.kek.base import WrappedKey
from compiler.secrets.keyfile import TargetKeyFile, dump_target_key, rotate_target_key, update_target_key
from tests.conftest import GitRepo
from tests.secrets._secrets_support import AgeKeys

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
PROD = Target("prod")
ACME = Target("prod", "acme")
FIX = "run: llmcc keys update"


def project(compiler: str, default: str, *, extra: str = "") -> Project:
    return load_project(
        (
            "project: demo\n"
            "environments: {dev: {}, prod: {}}\n"
            "tenants: {acme: {environments: [prod]}}\n"
            "keys:\n"
            f"  compiler: {compiler}\n"
            "  targets:\n"
            f'    "*": {default}\n' + extra
        ).encode()
    )


def age(*recipients: str) -> str:
    return f"{{provider: age, recipients: [{', '.join(recipients)}]}}"


@pytest.fixture
def base(age_keys: AgeKeys) -> Project:
    return project(age(age_keys.compiler.recipient), age(age_keys.default.recipient))


def key_bytes(p: Project, target: Target = PROD) -> bytes:
    return dump_target_key(rotate_target_key(p, target, identities=None, now=NOW))


def message(p: Project, data: bytes | None, target: Target = PROD, *, needed: bool = True) -> str | None:
    found = check_key_file(p, target, data, needed=needed)
    return None if found is None else found.format()


def test_a_key_file_in_line_is_fine(base: Project) -> None:
    assert check_key_file(base, PROD, key_bytes(base), needed=True) is None
    assert check_key_file(base, PROD, key_bytes(base), needed=False) is None


def test_missing_only_matters_with_secret_fields(base: Project) -> None:
    assert check_key_file(base, PROD, None, needed=False) is None
    assert message(base, None) == (
        f"keys/targets/prod.yaml:1:1: target prod has secret fields but no data key; {FIX} (target prod)"
    )


def test_an_added_reader(base: Project, age_keys: AgeKeys) -> None:
    data = key_bytes(base)
    now = project(age(age_keys.compiler.recipient), age(age_keys.default.recipient, age_keys.outsider.recipient))
    found = check_key_file(now, PROD, data, needed=True)
    assert found is not None
    assert found.message == (
        f"data key readers differ from llmcc.yaml: not wrapped for recipient {age_keys.outsider.recipient}; {FIX}"
    )
    assert found.origin is not None
    assert (found.origin.path, found.target) == ("keys/targets/prod.yaml", "prod")
    assert found.notes == ("llmcc.yaml:7:5: the readers of prod are named here",)


def test_a_removed_reader(age_keys: AgeKeys) -> None:
    before = project(age(age_keys.compiler.recipient), age(age_keys.default.recipient, age_keys.outsider.recipient))
    data = key_bytes(before)
    after = project(age(age_keys.compiler.recipient), age(age_keys.default.recipient))
    text = message(after, data, needed=False)  # a stale key file is refused even without secrets
    assert text is not None
    assert f"still wrapped for recipient {age_keys.outsider.recipient}; {FIX}" in text


def test_a_more_specific_rule_replaces_the_reader(base: Project, age_keys: AgeKeys) -> None:
    data = key_bytes(base, ACME)
    now = project(
        age(age_keys.compiler.recipient),
        age(age_keys.default.recipient),
        extra=f'    "*@acme": {age(age_keys.acme.recipient)}\n',
    )
    found = check_key_file(now, ACME, data, needed=True)
    assert found is not None
    assert found.message == (
        "data key readers differ from llmcc.yaml: "
        f"still wrapped for recipient {age_keys.default.recipient}, "
        f"not wrapped for recipient {age_keys.acme.recipient}; {FIX}"
    )
    assert found.notes == ("llmcc.yaml:8:5: the readers of prod@acme are named here",)


def test_the_compiler_key_changed(base: Project, age_keys: AgeKeys) -> None:
    now = project(age(age_keys.outsider.recipient), age(age_keys.default.recipient))
    text = message(now, key_bytes(base))
    assert text is not None
    assert (
        f"keys.compiler still wrapped for recipient {age_keys.compiler.recipient}, "
        f"keys.compiler not wrapped for recipient {age_keys.outsider.recipient}; {FIX}"
    ) in text


def kms_key_file(key_id: str) -> bytes:
    wrapped = WrappedKey.of("awskms", key_id, b"kms-ciphertext")
    kf = TargetKeyFile(
        target="prod",
        created_at="2026-03-01T12:00:00Z",
        commitment="hmac-sha256:" + "0" * 64,
        consumer=wrapped,
        compiler=wrapped,
    )
    return dump_target_key(kf)


def test_another_provider_or_key_id(age_keys: AgeKeys) -> None:
    arn = "arn:aws:kms:us-east-1:111122223333:key/one"
    kms = project("{provider: awskms, key_id: '" + arn + "'}", "{provider: awskms, key_id: '" + arn + "'}")
    assert check_key_file(kms, PROD, kms_key_file(arn), needed=True) is None
    other = kms_key_file("arn:aws:kms:us-east-1:111122223333:key/two")
    text = message(kms, other)
    assert text is not None
    assert f"still wrapped for key arn:aws:kms:us-east-1:111122223333:key/two, not wrapped for key {arn}" in text
    moved = project(age(age_keys.compiler.recipient), "{provider: awskms, key_id: '" + arn + "'}")
    text = message(moved, key_bytes(project(age(age_keys.compiler.recipient), age(age_keys.default.recipient))))
    assert text is not None
    assert (f"provider age ({age_keys.default.recipient}) in the key file, llmcc.yaml names awskms ({arn})") in text


def test_unreadable_and_wrong_target(base: Project) -> None:
    assert message(base, b"apiVersion: [\n") is not None
    text = message(base, b"apiVersion: x\n")
    assert text is not None
    assert text.startswith("keys/targets/prod.yaml:1:1: cannot read the data key: ")
    assert text.endswith("; run: llmcc keys rotate prod (target prod)")
    text = message(base, key_bytes(base, Target("dev")))
    assert text == (
        "keys/targets/prod.yaml:1:1: holds the data key of target 'dev', not 'prod'; run: llmcc keys rotate prod "
        "(target prod)"
    )


def test_no_reader_or_no_compiler_in_llmcc_yaml(age_keys: AgeKeys) -> None:
    bare = load_project(b"project: demo\nenvironments: {prod: {}}\n")
    assert check_key_file(bare, PROD, None, needed=False) is None
    text = message(bare, None)
    assert text is not None
    assert (
        'keys.targets names no reader for target prod (add an entry for it or "*"; then run: llmcc keys update)' in text
    )
    reader = age(age_keys.default.recipient)
    half = load_project(f'project: demo\nenvironments: {{prod: {{}}}}\nkeys:\n  targets:\n    "*": {reader}\n'.encode())
    text = message(half, None)
    assert text is not None
    assert "keys.compiler is not set: the compiling identity needs a key (set it; then run: llmcc keys update)" in text


def with_consumer(data: bytes, wrapped: WrappedKey) -> bytes:
    from compiler.secrets.keyfile import read_target_key

    return dump_target_key(replace(read_target_key(data, path="k"), consumer=wrapped))


def test_a_hidden_extra_recipient_is_found_by_counting_stanzas(base: Project, age_keys: AgeKeys) -> None:
    # key_id names one recipient, but the wrap also opens to the outsider
    raw = pyrage.encrypt(
        b"k" * 32,
        [pyrage.x25519.Recipient.from_str(r) for r in (age_keys.default.recipient, age_keys.outsider.recipient)],
    )
    forged = WrappedKey.of("age", age_keys.default.recipient, raw)
    assert unnamed_readers(forged) == ["the wrap is for 2 age recipients but names 1"]
    text = message(base, with_consumer(key_bytes(base), forged))
    assert text is not None
    assert f"data key readers differ from llmcc.yaml: wrap is for 2 age recipients but names 1; {FIX}" in text
    # keys update rotates it away: the unnamed reader must not open future bundles
    kf = TargetKeyFile(
        target="prod",
        created_at="2026-03-01T12:00:00Z",
        commitment="hmac-sha256:" + "0" * 64,
        consumer=forged,
        compiler=forged,
    )
    result = update_target_key(base, PROD, kf, identities=None, now=NOW)
    assert result.action == "rotated"
    assert result.reason == "consumer key: the wrap is for 2 age recipients but names 1"
    assert check_key_file(base, PROD, dump_target_key(result.keyfile), needed=True) is None


def test_a_stanza_of_another_kind_or_no_age_file(base: Project, age_keys: AgeKeys) -> None:
    real = pyrage.encrypt(b"k" * 32, [pyrage.x25519.Recipient.from_str(age_keys.default.recipient)])
    head, _, rest = real.partition(b"\n---")
    ssh = head + b"\n-> ssh-ed25519 AAAA abcd\nYWJj" + b"\n---" + rest
    assert age_stanza_types(ssh) is not None
    assert "ssh-ed25519" in (age_stanza_types(ssh) or [])
    assert unnamed_readers(WrappedKey.of("age", age_keys.default.recipient, ssh)) == [
        "the wrap also opens to an unnamed ssh-ed25519 reader"
    ]
    text = message(base, with_consumer(key_bytes(base), WrappedKey.of("age", age_keys.default.recipient, ssh)))
    assert text is not None
    assert "wrap also opens to an unnamed ssh-ed25519 reader" in text
    junk = WrappedKey.of("age", age_keys.default.recipient, b"not age")
    assert age_stanza_types(b"not age") is None
    text = message(base, with_consumer(key_bytes(base), junk))
    assert text is not None
    assert "wrap is not an age file" in text


def test_reader_changes() -> None:
    a = Readers.of("age", "age1a,age1b")
    assert reader_changes(a, a, "readers") == []
    assert reader_changes(a, Readers.of("age", "age1b,age1c"), "readers") == [
        ReaderChange(role="readers", kind="removed", what="recipient age1a"),
        ReaderChange(role="readers", kind="added", what="recipient age1c"),
    ]
    kms = Readers.of("awskms", "arn:1")
    assert reader_changes(a, kms, "compiler") == [
        ReaderChange(role="compiler", kind="changed", what="provider age (age1a, age1b) -> awskms (arn:1)")
    ]
    assert (
        reader_changes(a, kms, "compiler")[0].describe()
        == "compiler provider age (age1a, age1b) -> awskms (arn:1) changed"
    )
    assert [c.describe() for c in reader_changes(None, kms, "readers")] == ["key arn:1 added"]
    assert [c.describe() for c in reader_changes(kms, None, "readers")] == ["key arn:1 removed"]
    assert Readers.of("awskms", "").describe() == "awskms (no key)"


def test_orphan_key_files_and_the_hook(base: Project) -> None:
    names = ["dev.yaml", "prod@acme.yaml", "prod@gone.yaml", "Bad Name.yaml", "README.md", ".x.yaml.tmp"]
    found = orphan_key_files(base, names)
    assert [d.format() for d in found] == [
        "keys/targets/prod@gone.yaml:1:1: warning: orphan data key: llmcc.yaml defines no target prod@gone; "
        "run: llmcc keys update (it removes the file)",
        "keys/targets/Bad Name.yaml:1:1: warning: orphan data key: 'Bad Name' is not a target name; "
        "run: llmcc keys update (it removes the file)",
    ]
    # the validate hook runs a key file's own target; an orphan's, every target (a full run reports it)
    assert affected_targets(base, ["keys/targets/prod@acme.yaml"]) == [ACME]
    assert affected_targets(base, ["keys/targets/prod@gone.yaml"]) == base.targets()
    assert affected_targets(base, ["keys/README.md"]) == []


def test_a_reader_that_cannot_be_wrapped_for_is_named_at_its_line(base: Project, age_keys: AgeKeys) -> None:
    data = key_bytes(base)
    typo = project(age(age_keys.compiler.recipient), age("age1notarecipient"))
    found = check_key_file(typo, PROD, data, needed=True)
    assert found is not None
    assert found.origin is not None
    assert (found.origin.path, found.origin.line) == ("llmcc.yaml", 7)
    assert found.message.startswith("keys.targets.*: 'age1notarecipient' is not an age recipient (age1...)")
    pasted = project(age("AGE-SECRET-KEY-1QQQQ"), age(age_keys.default.recipient))
    text = message(pasted, data)
    assert text is not None
    assert "keys.compiler: a recipient is a private age identity (AGE-SECRET-KEY-...); list age1... keys" in text
    assert "QQQQ" not in text
    no_id = project(age(age_keys.compiler.recipient), "{provider: vault-transit}")
    assert "keys.targets.*: a vault-transit key needs key_id" in (message(no_id, data) or "")


def test_data_key_changes(base: Project) -> None:
    """Named by commitment: a re-wrap of the same key, an absent or unreadable side show nothing."""
    old = key_bytes(base)
    new = key_bytes(base)
    assert data_key_changes(old, old, PROD) == []
    assert data_key_changes(None, new, PROD) == data_key_changes(old, None, PROD) == []
    assert data_key_changes(old, b"consumer: [", PROD) == []
    assert data_key_changes(old, old.replace(b"# llmcc", b"#  llmcc"), PROD) == []
    (change,) = data_key_changes(old, new, PROD)
    assert change.describe() == "data key (created 2026-03-01T12:00:00Z, now 2026-03-01T12:00:00Z) changed"


def test_private_looking_ids_are_compared_as_written_and_never_shown() -> None:
    hidden = "<private key material, not shown>"
    old = Readers.of("vault-transit", "ops PRIVATE KEY 1")
    new = Readers.of("vault-transit", "ops PRIVATE KEY 2")
    assert old != new  # redacted for display only: a change between two of them is still a change
    lines = [c.describe() for c in reader_changes(old, new, "readers")]
    assert lines == [f"key {hidden} removed", f"key {hidden} added"]
    (change,) = reader_changes(Readers.of("age", "age-secret-key-1qqqq"), new, "compiler")
    assert change.describe() == f"compiler provider age ({hidden}) -> vault-transit ({hidden}) changed"


def test_key_commitments_list_the_key_directory_once_and_find_what_each_lookup_finds(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    """One listing of keys/targets/ instead of a lookup per target: the same commitments, a copy included."""
    from compiler.secrets.access import key_commitments
    from compiler.secrets.keyfile import key_file_path, read_target_key
    from compiler.sources.worktree import WorkTree

    root = example_repo.path
    (root / "keys/targets/staging@acme.yaml").write_bytes((root / "keys/targets/prod@acme.yaml").read_bytes())
    (root / "keys/targets/prod.yaml").unlink()
    (root / "keys/targets/nobody.yaml").write_text("not a key file\n")
    tree = WorkTree(root)
    project = load_project(tree.read("llmcc.yaml"))

    def each() -> dict[str, str]:
        out = {}
        for t in project.targets():
            path = key_file_path(t.name)
            if tree.exists(path):
                out[t.name] = read_target_key(tree.read(path), path=path).commitment
        return out

    found = key_commitments(tree, project)
    assert found == each()
    assert "prod" not in found
    assert found["staging@acme"] == found["prod@acme"]
    # a key directory that is a link out of the repository lists nothing: each lookup refuses it too
    outside = tmp_path / "outside"
    shutil.move(root / "keys/targets", outside)
    (root / "keys/targets").symlink_to(outside)
    assert key_commitments(WorkTree(root), project) == {}  # a new run's tree: directories resolved afresh
