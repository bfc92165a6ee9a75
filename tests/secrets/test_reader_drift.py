"""Issue 9 §1 and issue 10 §1 end to end: reader keys that drift from llmcc.yaml are refused, all in one run.

The issue's case, through ``main()`` on a real git repository from ``llmcc init``:
a tenant and a reader rule ``"*@initech": {provider: age, recipients: [<new key>]}``
are added and committed without ``llmcc keys update``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyrage
import pytest

from compiler.cli import main
from compiler.errors import SecretsError
from compiler.project import KeySpec
from compiler.secrets.identity import load_identities
from compiler.secrets.kek import provider_for
from compiler.secrets.keyfile import read_target_key
from compiler.secrets.reader import open_secrets
from compiler.secrets.sops import encrypt_sops
from tests.conftest import GitRepo, init_repo
from tests.secrets._secrets_support import new_canary

SECRETS = "environments/prod.secrets.sops.yaml"


class Initech:
    """A repository from ``llmcc init`` with a canary API key, committed, plus reader keys to add."""

    def __init__(self, root: Path, keys_dir: Path, readers: Path) -> None:
        self.root = root
        self.git: GitRepo = init_repo(root)
        self.compiler_key = keys_dir / "age.key"
        self.signing_key = keys_dir / "signing.pem"
        self.readers = readers
        self.manifest = (root / "llmcc.yaml").read_text()

    def put_secret(self, value: str) -> None:
        """prod's API key, encrypted by the real sops per .sops.yaml (plaintext never on disk)."""
        plain = json.dumps({"modules": {"assistant": {"api_key": value}}}).encode()
        (self.root / SECRETS).write_bytes(encrypt_sops(plain, path=SECRETS, cwd=self.root))

    def reader(self, name: str) -> tuple[str, Path]:
        """A fresh age identity (file outside the repository) and its recipient."""
        ident = pyrage.x25519.Identity.generate()
        file = self.readers / f"{name}.agekey"
        file.write_text(f"{ident}\n")
        return str(ident.to_public()), file

    def set_manifest(self, tenants: str, rules: str = "") -> None:
        text = self.manifest.replace("tenants: {}", f"tenants: {tenants}")
        anchor = '    "*": {provider: age'
        text = text.replace(anchor, rules + anchor) if rules else text
        (self.root / "llmcc.yaml").write_text(text)


def llmcc(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture
def initech(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Initech:
    for name in ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY_CMD", "LLMCC_SIGNING_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    root = tmp_path / "platform"
    assert llmcc(capsys, "init", str(root))[0] == 0
    readers = tmp_path / "readers"
    readers.mkdir()
    repo = Initech(root, tmp_path / "config/llmcc/keys/platform", readers)
    repo.put_secret(new_canary())
    repo.git.commit("llmcc init")
    return repo


def opens(bundle: dict[str, object], identity: Path, recipient: str) -> bool:
    """Whether ``identity`` opens the bundle's secrets (values compared in memory, never printed)."""
    spec = KeySpec(provider="age", recipients=[recipient])
    try:
        opened = open_secrets(bundle, provider_for(spec.kek(), load_identities(identity, {})))  # type: ignore[arg-type]
    except SecretsError:
        return False
    value = opened["assistant"]["api_key"]  # type: ignore[index,call-overload]
    return isinstance(value, str) and value.startswith("canary-")


def bundle(root: Path, target: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((root / "dist" / f"{target}.bundle.json").read_bytes())
    return data


def test_the_issue_case_new_tenant_and_reader_rule_without_keys_update(
    initech: Initech, capsys: pytest.CaptureFixture[str]
) -> None:
    root, c = initech.root, str(initech.root)
    new, new_file = initech.reader("initech")
    initech.set_manifest(
        "{initech: {environments: [staging, prod]}}", f'    "*@initech": {{provider: age, recipients: [{new}]}}\n'
    )
    initech.git.commit("onboard initech")

    # validate (and so the hook) fails, naming the target and the fix, with no identity at all
    code, _, err = llmcc(capsys, "-C", c, "validate")
    assert code == 1
    assert (
        "keys/targets/prod@initech.yaml:1:1: target prod@initech has secret fields but no data key; "
        "run: llmcc keys update (target prod@initech)"
    ) in err.splitlines()
    assert "staging@initech" not in err  # no secret fields there: no key needed
    code, _, err = llmcc(capsys, "-C", c, "hook", "validate", str(root / "llmcc.yaml"))
    assert code == 1
    assert "prod@initech has secret fields but no data key; run: llmcc keys update" in err

    # compile and publish refuse it too, and publish writes nothing
    key = str(initech.compiler_key)
    code, _, err = llmcc(capsys, "-C", c, "compile", "--identity", key)
    assert code == 1
    assert "prod@initech has secret fields but no data key" in err
    assert not (root / "dist/prod@initech.bundle.json").exists()
    assert (root / "dist/prod.bundle.json").exists()
    publish = ("-C", c, "publish", "--identity", key, "--signing-key", str(initech.signing_key))
    code, out, err = llmcc(capsys, *publish, "-t", "prod@initech")
    assert (code, out) == (1, "")
    assert "1 of 1 target failed validation: prod@initech" in err
    assert not (root / ".llmcc/store").exists()

    # diff names the reader of the new target before anything else
    code, out, _ = llmcc(capsys, "-C", c, "diff", "HEAD~1", "HEAD")
    assert code == 0
    assert out.splitlines()[0].startswith("llmcc diff HEAD~1 (")
    assert "2 reader changes in 2 targets; " in out.splitlines()[0]
    assert out.splitlines()[1:3] == [
        f"  ! staging@initech: readers recipient {new} added",
        f"  ! prod@initech: readers recipient {new} added",
    ]

    # keys update fixes it in one run; no identity needed to create a data key
    code, out, _ = llmcc(capsys, "-C", c, "keys", "update")
    assert code == 0
    assert out.splitlines() == [
        "created keys/targets/staging@initech.yaml (new data key for staging@initech)",
        "created keys/targets/prod@initech.yaml (new data key for prod@initech)",
    ]
    initech.git.commit("keys update")
    assert llmcc(capsys, "-C", c, "validate")[0] == 0
    assert llmcc(capsys, "-C", c, "compile", "--identity", key)[0] == 0
    code, out, _ = llmcc(capsys, *publish, "-t", "prod@initech")
    assert code == 0
    assert out.startswith("prod@initech: published version 1 ")
    sealed = bundle(root, "prod@initech")
    old_recipient = (root / "keys/compiler.age.pub").read_text().strip()
    assert opens(sealed, new_file, new)
    assert not opens(sealed, initech.compiler_key, old_recipient)  # the "*" reader is not initech's


def test_a_replaced_reader_is_refused_then_rotated_out(initech: Initech, capsys: pytest.CaptureFixture[str]) -> None:
    root, c, key = initech.root, str(initech.root), str(initech.compiler_key)
    first, first_file = initech.reader("first")
    second, second_file = initech.reader("second")
    rule = '    "*@initech": {{provider: age, recipients: [{}]}}\n'
    initech.set_manifest("{initech: {environments: [prod]}}", rule.format(first))
    assert llmcc(capsys, "-C", c, "keys", "update")[0] == 0
    initech.git.commit("initech, read by first")
    assert llmcc(capsys, "-C", c, "compile", "--identity", key)[0] == 0
    before = bundle(root, "prod@initech")
    assert opens(before, first_file, first)

    initech.set_manifest("{initech: {environments: [prod]}}", rule.format(second))
    initech.git.commit("initech: second replaces first")
    code, _, err = llmcc(capsys, "-C", c, "validate")
    assert code == 1
    line = (
        "keys/targets/prod@initech.yaml:1:1: data key readers differ from llmcc.yaml: "
        f"still wrapped for recipient {first}, not wrapped for recipient {second}; run: llmcc keys update "
        "(target prod@initech)"
    )
    assert line in err.splitlines()
    assert re.search(r"llmcc\.yaml:\d+:\d+: the readers of prod@initech are named here", err)
    code, _, err = llmcc(capsys, "-C", c, "compile", "--identity", key)
    assert code == 1
    assert line in err.splitlines()

    code, out, _ = llmcc(capsys, "-C", c, "diff", "HEAD~1", "HEAD", "--format", "json")
    doc = json.loads(out)
    assert doc["summary"]["reader_changes"] == 2
    (target,) = [t for t in doc["targets"] if t["readers"]]
    assert target["target"] == "prod@initech"
    assert target["readers"] == [
        {"role": "readers", "kind": "removed", "reader": f"recipient {first}"},
        {"role": "readers", "kind": "added", "reader": f"recipient {second}"},
    ]
    code, out, _ = llmcc(capsys, "-C", c, "diff", "HEAD~1", "HEAD", "--format", "markdown")
    assert "**Access changes** (who can open the target's secrets):" in out
    assert f"| `prod@initech` | removed | `recipient {first}` |" in out
    assert out.index("Access changes") < out.index("| target | values | modules |")

    code, out, _ = llmcc(capsys, "-C", c, "keys", "update")
    assert code == 0
    assert out == f"rotated keys/targets/prod@initech.yaml (consumer key lost recipient {first})\n"
    initech.git.commit("keys update")
    assert llmcc(capsys, "-C", c, "validate")[0] == 0
    assert llmcc(capsys, "-C", c, "compile", "--identity", key)[0] == 0
    after = bundle(root, "prod@initech")
    assert opens(after, second_file, second)
    assert not opens(after, first_file, first)  # the removed reader opens no bundle compiled afterwards
    assert opens(before, first_file, first)  # old bundles keep their own wrapped key


def test_three_targets_without_data_keys_are_all_named_in_one_run(
    initech: Initech, capsys: pytest.CaptureFixture[str]
) -> None:
    c = str(initech.root)
    initech.set_manifest(
        "{hooli: {environments: [prod]}, initech: {environments: [prod]}, umbrella: {environments: [prod]}}"
    )
    initech.git.commit("three tenants")
    missing = [
        f"keys/targets/prod@{t}.yaml:1:1: target prod@{t} has secret fields but no data key; run: llmcc keys update "
        f"(target prod@{t})"
        for t in ("hooli", "initech", "umbrella")
    ]
    code, _, err = llmcc(capsys, "-C", c, "validate")
    assert code == 1
    assert [line for line in err.splitlines() if "no data key" in line] == missing
    code, _, err = llmcc(capsys, "-C", c, "compile", "--identity", str(initech.compiler_key))
    assert code == 1
    assert [line for line in err.splitlines() if "no data key" in line] == missing
    assert err.splitlines()[-1] == "llmcc: 3 of 6 targets failed validation: prod@hooli, prod@initech, prod@umbrella"
    code, out, _ = llmcc(capsys, "-C", c, "validate", "--format", "json")
    doc = json.loads(out)
    assert code == 1
    files = sorted(d["file"] for d in doc["diagnostics"])
    assert files == [f"keys/targets/prod@{t}.yaml" for t in ("hooli", "initech", "umbrella")]


def test_two_unreadable_layers_are_both_named_by_compile(initech: Initech, capsys: pytest.CaptureFixture[str]) -> None:
    c = str(initech.root)
    initech.set_manifest("{hooli: {environments: [dev]}, initech: {environments: [dev]}}")
    for tenant in ("hooli", "initech"):
        initech.git.write(f"environments/tenants/{tenant}.yaml", "modules: [\n")
    code, _, err = llmcc(capsys, "-C", c, "compile", "--identity", str(initech.compiler_key))
    assert code == 2  # an unreadable file is an input error, and every one of them is named
    assert [line.split(":")[1] for line in err.splitlines()] == [
        " environments/tenants/hooli.yaml",
        " environments/tenants/initech.yaml",
    ]
    assert not (initech.root / "dist/dev@hooli.bundle.json").exists()
    assert (initech.root / "dist/dev.bundle.json").exists()


def test_a_new_compiler_key_makes_every_key_file_stale(initech: Initech, capsys: pytest.CaptureFixture[str]) -> None:
    c = str(initech.root)
    old = (initech.root / "keys/compiler.age.pub").read_text().strip()
    new, new_file = initech.reader("ci-2027")
    text = (initech.root / "llmcc.yaml").read_text()
    (initech.root / "llmcc.yaml").write_text(
        text.replace(
            f"compiler: {{provider: age, recipients: [{old}]}}", f"compiler: {{provider: age, recipients: [{new}]}}"
        )
    )
    initech.git.commit("rotate the CI identity")
    code, _, err = llmcc(capsys, "-C", c, "validate")
    assert code == 1
    stale = [line for line in err.splitlines() if "readers differ" in line]
    assert [line.split(":")[0] for line in stale] == [f"keys/targets/{t}.yaml" for t in ("dev", "prod", "staging")]
    assert all(
        f"keys.compiler still wrapped for recipient {old}, keys.compiler not wrapped for recipient {new}" in line
        for line in stale
    )
    code, out, _ = llmcc(capsys, "-C", c, "diff", "HEAD~1", "HEAD")
    assert "6 reader changes in 3 targets; 3 of 3 targets change, 0 values" in out.splitlines()[0]
    assert out.splitlines()[1] == f"  ! dev: readers compiler recipient {old} removed, compiler recipient {new} added"
    assert "readers:" in out.splitlines()
    assert f"  - compiler recipient {old} removed" in out.splitlines()
    code, out, _ = llmcc(capsys, "-C", c, "keys", "update")
    assert code == 0
    assert out.splitlines() == [
        f"rotated keys/targets/{t}.yaml (compiler key lost recipient {old})" for t in ("dev", "staging", "prod")
    ]
    # the SOPS file is still encrypted for the old compiler key only: compile could not open it
    code, _, err = llmcc(capsys, "-C", c, "validate", "-t", "prod")
    assert code == 1
    assert re.search(
        rf"^{SECRETS}:\d+:\d+: SOPS file is not encrypted for keys\.compiler recipient {new}, so compile cannot "
        rf"open it; add it to \.sops\.yaml, then run: sops updatekeys {SECRETS} "
        r"\(target prod, layer prod \(secrets\)\)$",
        err,
        re.M,
    )
    sops_config = initech.root / ".sops.yaml"
    sops_config.write_text(sops_config.read_text().replace(old, new))
    initech.put_secret(new_canary())
    assert llmcc(capsys, "-C", c, "validate")[0] == 0
    assert llmcc(capsys, "-C", c, "compile", "--identity", str(new_file))[0] == 0


def test_orphan_key_files_and_untrusted_paths(initech: Initech, capsys: pytest.CaptureFixture[str]) -> None:
    root, c = initech.root, str(initech.root)
    (root / "keys/targets/prod@gone.yaml").write_bytes((root / "keys/targets/prod.yaml").read_bytes())
    code, _, err = llmcc(capsys, "-C", c, "validate")
    assert code == 0
    assert (
        "keys/targets/prod@gone.yaml:1:1: warning: orphan data key: llmcc.yaml defines no target prod@gone; "
        "run: llmcc keys update (it removes the file)"
    ) in err.splitlines()
    assert "prod@gone" not in llmcc(capsys, "-C", c, "validate", "-t", "prod")[2]
    text = (root / "llmcc.yaml").read_text()
    (root / "llmcc.yaml").write_text(
        text.replace(
            "trusted: [keys/signing.pub]",
            "trusted: [keys/signing.pub, keys/ci.pub, keys/compiler.age.pub, /etc/llmcc/ci.pub]",
        )
    )
    code, _, err = llmcc(capsys, "-C", c, "validate")
    assert code == 1
    lines = [line for line in err.splitlines() if "signing.trusted" in line]
    assert lines[0].startswith("llmcc.yaml:14:")
    assert lines[0].endswith("signing.trusted: keys/ci.pub: no such file; verify and pull would fail on it")
    assert "keys/compiler.age.pub: not a SubjectPublicKeyInfo PEM public key" in lines[1]
    assert len(lines) == 2  # an absolute path is outside the repository: verify and pull read it


@pytest.mark.parametrize("pasted", ["{key}", '" {key}"', '"{lower}"'])
def test_a_private_key_pasted_as_a_reader_is_never_printed(
    initech: Initech, capsys: pytest.CaptureFixture[str], pasted: str
) -> None:
    """A private identity in a reader rule or keys.compiler, even with a prefix, never reaches any output."""
    c = str(initech.root)
    identity = next(line for line in initech.compiler_key.read_text().splitlines() if line.startswith("AGE-SECRET"))
    body = identity.removeprefix("AGE-SECRET-KEY-1")
    item = pasted.format(key=identity, lower=identity.lower())
    text = initech.manifest.replace("recipients: [", f"recipients: [{item}, ")
    assert text.count(item) == 2  # keys.compiler and "*"
    (initech.root / "llmcc.yaml").write_text(text)
    initech.git.commit("a private key pasted as a recipient")
    for argv in (
        ("validate",),
        ("keys", "update"),
        ("compile", "--identity", str(initech.compiler_key)),
        *(("diff", "HEAD~1", "HEAD", "--format", f) for f in ("text", "markdown", "json")),
    ):
        code, out, err = llmcc(capsys, "-C", c, *argv)
        assert body.lower() not in (out + err).lower(), argv
        if argv[0] == "diff":
            assert code == 0
            assert "<private key material, not shown>" in out
        else:
            assert code != 0
            assert "private age identity (AGE-SECRET-KEY-...)" in err


def test_a_copied_key_file_is_refused_and_rotated_apart(initech: Initech, capsys: pytest.CaptureFixture[str]) -> None:
    """Two targets with the same readers: a copied key file changes no reader, but shares one data key."""
    root, c, key = initech.root, str(initech.root), str(initech.compiler_key)
    staging = (root / "keys/targets/staging.yaml").read_text()
    (root / "keys/targets/prod.yaml").write_text(staging.replace('target: "staging"', 'target: "prod"'))
    initech.git.commit("prod: a copy of staging's key file")
    shared = [
        f"keys/targets/{a}.yaml:1:1: shares its data key with target {b} (a copied key file): a reader of either "
        f"target opens the other's bundles; run: llmcc keys update (target {a})"
        for a, b in (("prod", "staging"), ("staging", "prod"))
    ]
    code, _, err = llmcc(capsys, "-C", c, "validate")
    assert code == 1
    assert [line for line in err.splitlines() if "shares" in line] == shared
    code, _, err = llmcc(capsys, "-C", c, "compile", "--identity", key)
    assert code == 1
    assert err.splitlines()[-1] == "llmcc: 2 of 3 targets failed validation: staging, prod"

    code, out, _ = llmcc(capsys, "-C", c, "keys", "update")
    assert (code, out) == (0, "rotated keys/targets/staging.yaml (data key shared with prod)\n")
    assert llmcc(capsys, "-C", c, "validate")[0] == 0
    assert llmcc(capsys, "-C", c, "keys", "update") == (0, "", "")

    # the same copy with its commitment in capitals is not another key: refused as compile would
    staging = (root / "keys/targets/staging.yaml").read_text()
    copy = re.sub(r"hmac-sha256:\w+", lambda m: m[0].upper().replace("HMAC-SHA256", "hmac-sha256"), staging)
    (root / "keys/targets/prod.yaml").write_text(copy.replace('target: "staging"', 'target: "prod"'))
    code, _, err = llmcc(capsys, "-C", c, "validate")
    assert code == 1
    assert re.search(
        r"^keys/targets/prod\.yaml:6:\d+: cannot read the data key: commitment must be hmac-sha256:<64 lowercase "
        r"hex digits>; run: llmcc keys rotate prod \(target prod\)$",
        err,
        re.M,
    )


def test_keys_update_reads_key_files_as_validate_does(
    initech: Initech, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A key file that is a symlink out of the repository: validate refuses it, so keys update may not call it fine."""
    root, c = initech.root, str(initech.root)
    outside = tmp_path / "prod.yaml"
    outside.write_bytes((root / "keys/targets/prod.yaml").read_bytes())
    (root / "keys/targets/prod.yaml").unlink()
    (root / "keys/targets/prod.yaml").symlink_to(outside)
    assert llmcc(capsys, "-C", c, "validate")[0] == 1
    assert llmcc(capsys, "-C", c, "diff", "HEAD")[1].endswith(": no changes in 3 targets\n")  # validate's to name
    code, out, err = llmcc(capsys, "-C", c, "keys", "update")
    assert (code, out) == (2, "")
    assert err == (
        f"llmcc: keys/targets/prod.yaml: points outside the repository (symlink to {outside}); "
        "run: llmcc keys rotate prod\n"
    )
    assert llmcc(capsys, "-C", c, "keys", "rotate", "prod")[0] == 0
    assert not (root / "keys/targets/prod.yaml").is_symlink()
    assert llmcc(capsys, "-C", c, "validate")[0] == 0


def test_a_key_file_put_back_to_an_older_data_key_shows_in_diff(
    initech: Initech, capsys: pytest.CaptureFixture[str]
) -> None:
    """The removed reader's old data key, restored by a commit that touches no reader rule, is an access change.

    Without an identity validate cannot tell (the wrap names the same readers), so
    the review must: ``diff`` names the replaced data key instead of "no changes".
    """
    root, c, key = initech.root, str(initech.root), str(initech.compiler_key)
    first, first_file = initech.reader("first")
    second, second_file = initech.reader("second")
    rule = '    "*@initech": {{provider: age, recipients: [{}]}}\n'
    keyfile = root / "keys/targets/prod@initech.yaml"
    initech.set_manifest("{initech: {environments: [prod]}}", rule.format(first))
    assert llmcc(capsys, "-C", c, "keys", "update", "--identity", key)[0] == 0
    old = keyfile.read_text()
    initech.set_manifest("{initech: {environments: [prod]}}", rule.format(f"{first}, {second}"))
    assert llmcc(capsys, "-C", c, "keys", "update", "--identity", key)[1].startswith("rewrapped ")
    held = read_target_key(keyfile.read_bytes(), path="held").consumer  # second's copy of the old data key
    initech.set_manifest("{initech: {environments: [prod]}}", rule.format(first))
    assert llmcc(capsys, "-C", c, "keys", "update", "--identity", key)[1].startswith("rotated ")
    initech.git.commit("initech, read by first; second has left")
    now = re.search(r'created_at: "(.*)"', keyfile.read_text())
    assert now is not None

    restored = re.sub(r'created_at: ".*"', 'created_at: "2020-01-01T00:00:00Z"', old)
    keyfile.write_text(restored)
    initech.git.commit("tidy keys")
    assert llmcc(capsys, "-C", c, "validate")[0] == 0  # the same readers: only a review can see it
    code, out, _ = llmcc(capsys, "-C", c, "diff", "HEAD~1", "HEAD", "--exit-code")
    assert code == 1
    assert out.splitlines()[:2] == [
        out.splitlines()[0].split(":")[0] + ": 1 reader change in 1 target; 1 of 4 targets change, 0 values",
        f"  ! prod@initech: readers data key (created {now[1]}, now 2020-01-01T00:00:00Z, older than the key it "
        "replaces) changed",
    ]
    code, out, _ = llmcc(capsys, "-C", c, "diff", "HEAD~1", "HEAD", "--format", "json")
    assert json.loads(out)["summary"]["reader_changes"] == 1
    assert llmcc(capsys, "-C", c, "compile", "--identity", key)[0] == 0
    sealed = bundle(root, "prod@initech")
    assert opens(sealed, first_file, first)
    sealed["encryption"].update(wrapped_dek=held.to_json(), kek={"provider": "age", "key_id": held.key_id})  # type: ignore[attr-defined]
    assert opens(sealed, second_file, second)  # what the review line stands for: second reads it again


def test_keys_never_write_or_remove_outside_the_repository(
    initech: Initech, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """keys/targets/ a symlink to another directory: update removed every *.yaml there as an orphan."""
    root, c = initech.root, str(initech.root)
    elsewhere = tmp_path / "elsewhere"
    (root / "keys/targets").rename(elsewhere)
    (root / "keys/targets").symlink_to(elsewhere)
    (elsewhere / "precious.yaml").write_text("precious: true\n")
    before = {p.name: p.read_bytes() for p in elsewhere.iterdir()}
    refused = f"llmcc: keys/targets: points outside the repository (symlink to {elsewhere})\n"
    for argv in (("keys", "update"), ("keys", "rotate", "prod"), ("keys", "rotate")):
        assert llmcc(capsys, "-C", c, *argv) == (2, "", refused), argv
    assert {p.name: p.read_bytes() for p in elsewhere.iterdir()} == before
