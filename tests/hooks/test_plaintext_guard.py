"""Issue 9 §4: plaintext lands where git can take it.

- ``pull --decrypt --out`` refuses a path git could commit; ``--force`` warns.
- ``git add prod.json && git commit`` of a decrypted bundle is blocked by the real pre-commit hook.
- A committed age key, PEM key, OpenSSH key, AWS access key or API token is caught by
  ``validate`` and by ``llmcc hook secrets-guard`` without arguments, at file:line, value never printed.
- Siblings: ``keys generate`` and ``llmcc init --keys-dir`` write private keys; the same rule holds.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyrage
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from compiler.cli import main
from compiler.cli.init import scaffold_files
from tests.conftest import DEMO_IDENTITY, GIT_ENV, REPO_ROOT, GitRepo
from tests.secrets._secrets_support import new_canary

pytestmark = pytest.mark.usefixtures("issue6_commands")

BIN = Path(sys.executable).parent
SIGNING_KEY = REPO_ROOT / "keys" / "demo-signing.pem"


def run(capsys: pytest.CaptureFixture[str], root: Path, *argv: str) -> tuple[int, str, str]:
    cwd = os.getcwd()
    os.chdir(root)  # pre-commit and CI run at the repository root
    try:
        code = main(["-C", str(root), *argv])
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def git(root: Path, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **GIT_ENV, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("SOPS_AGE_KEY_FILE", None)  # hooks need no identity
    proc = subprocess.run(["git", *argv], cwd=root, env=env, capture_output=True, text=True, check=False, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {argv} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def _alnum(n: int, alphabet: str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _pem() -> str:
    key = Ed25519PrivateKey.generate()
    fmt = serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def _openssh() -> str:
    key = Ed25519PrivateKey.generate()
    fmt = serialization.PrivateFormat.OpenSSH
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


# kind -> (value maker, the kind the guard names). Every value is made fresh: none is in this file.
SECRETS: dict[str, tuple[Callable[[], str], str]] = {
    "age": (lambda: str(pyrage.x25519.Identity.generate()), "age identity"),
    "pem": (_pem, "PEM private key"),
    "openssh": (_openssh, "OpenSSH private key"),
    "aws": (lambda: "AKIA" + _alnum(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), "AWS Access Key"),
    "openai": (lambda: f"sk-proj-{_alnum(20)}T3Blbk" + f"FJ{_alnum(20)}", "OpenAI Token"),
    "anthropic": (lambda: "sk-ant-" + f"api03-{_alnum(93)}AA", "Anthropic API key"),
    "github": (lambda: "gh" + f"p_{_alnum(36)}", "GitHub Token"),
}


def plant(root: Path, kind: str) -> tuple[str, str, str]:
    """A file ``ops/<kind>.txt`` whose line 2 starts the secret; the line also carries a canary."""
    make, label = SECRETS[kind]
    value = make()
    canary = new_canary()
    first, *rest = value.splitlines()
    rel = f"ops/{kind}.txt"
    (root / "ops").mkdir(exist_ok=True)
    (root / rel).write_text("ops notes\n" + "\n".join([f"{first}  # {canary}", *rest]) + "\n")
    return rel, value, label


def assert_reported(err: str, rel: str, value: str, label: str) -> None:
    assert f"{rel}:2:1: {label}: " in err, err
    for line in value.splitlines():
        assert line not in err  # not the value, nor any line of a key block
    assert "canary-" not in err


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_a_committed_key_or_token_is_caught_by_validate_and_the_bare_hook(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    root = example_repo.path
    rel, value, label = plant(root, kind)
    example_repo.commit(f"add {rel}")
    code, out, err = run(capsys, root, "validate")
    assert code == 1
    assert_reported(err + out, rel, value, label)
    assert err.splitlines()[-1] == "llmcc: validate FAILED: 6 targets, 1 error, 0 warnings"
    code, out, err = run(capsys, root, "hook", "secrets-guard")
    assert (code, out) == (1, "")
    assert_reported(err, rel, value, label)
    assert err.splitlines()[-1].startswith("llmcc: secrets-guard FAILED: 1 finding in ")
    code, _, err = run(capsys, root, "validate", "--rev", "HEAD", "--format", "json")
    assert code == 1
    (root / rel).unlink()  # the canary stays only in git's compressed objects


def test_the_bare_hook_scans_every_file_git_can_take(example_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    root = example_repo.path
    code, _, err = run(capsys, root, "hook", "secrets-guard")
    assert code == 0
    files = len(example_repo.git("ls-files").splitlines())
    # the example's demo keys pass only because llmcc.yaml names them with their sha256, and each is listed
    assert err.splitlines() == [
        "llmcc: secrets-guard: allowed by llmcc.yaml secrets_guard.allow: "
        f"keys/{name}: DEMO key, publicly known (keys/README.md)"
        for name in ("demo-acme.agekey", "demo-signing.pem", "demo.agekey")
    ] + [f"llmcc: secrets-guard ok: {files} files"]
    # untracked and not ignored counts: git add -A would take it
    rel, value, label = plant(root, "aws")
    code, _, err = run(capsys, root, "hook", "secrets-guard")
    assert code == 1
    assert_reported(err, rel, value, label)
    (root / rel).unlink()


def test_an_allowed_key_that_changed_is_a_finding_again(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    root = example_repo.path
    key = root / "keys/demo.agekey"
    fresh = str(pyrage.x25519.Identity.generate())
    key.write_text(key.read_text().rsplit("\n", 2)[0] + f"\n{fresh}\n")
    line = key.read_text().splitlines().index(fresh) + 1
    code, _, err = run(capsys, root, "validate")
    assert code == 1
    assert f"keys/demo.agekey:{line}:1: age identity: private key material in the repository" in err
    assert "llmcc.yaml secrets_guard.allow lets keys/demo.agekey through only at sha256 9a18a41a" in err
    assert fresh not in err


def test_the_bare_hook_needs_git(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import copy_example

    root = copy_example(tmp_path / "plain")
    code, _, err = run(capsys, root, "hook", "secrets-guard")
    assert code == 2
    assert err == f"llmcc: {root}: not a git work tree; name the files: llmcc hook secrets-guard FILE...\n"
    assert run(capsys, root, "validate")[0] == 0  # outside git nothing can be committed: nothing to scan


def test_a_link_out_of_the_repository_is_scanned_as_git_commits_it(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text(f"{_alnum(4)} AKIA{_alnum(16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567')}\n")  # git never takes it
    (example_repo.path / "link.txt").symlink_to(outside)  # git commits the link's target name only: scanned
    code, _, err = run(capsys, example_repo.path, "hook", "secrets-guard")
    assert code == 0, err
    assert "link.txt" not in err
    (example_repo.path / "bin.dat").write_bytes(b"\0" + b"AKIA" + b"Q" * 16)  # binary: not text, not scanned
    assert run(capsys, example_repo.path, "hook", "secrets-guard", "bin.dat")[:2] == (0, "")


# --- decrypted bundles: pull --decrypt --out, and the commit that would take it -----------------


@pytest.fixture
def published(example_repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> tuple[GitRepo, str]:
    """The example with prod's db password set to a canary and published to the file store."""
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(DEMO_IDENTITY))
    monkeypatch.setenv("LLMCC_SIGNING_KEY_FILE", str(SIGNING_KEY))
    canary = new_canary()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(canary.encode())))
    root = example_repo.path
    rotate = ["data-pipeline.db.password", "--target", "prod", "--value-from-stdin"]
    assert main(["-C", str(root), "--quiet", "secrets", "rotate", *rotate]) == 0
    (root / ".gitignore").write_text(".llmcc/\n")  # the store is not the repository's business
    example_repo.commit("prod: a new db password")
    assert main(["-C", str(root), "--quiet", "publish", "-t", "prod"]) == 0
    return example_repo, canary


def test_pull_decrypt_refuses_a_path_git_can_take(
    published: tuple[GitRepo, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    repo, _ = published
    root = repo.path
    capsys.readouterr()
    code, out, err = run(capsys, root, "pull", "prod", "--decrypt", "--out", "prod.json")
    assert (code, out) == (2, "")
    assert err == (
        f"llmcc: {root}/prod.json: refusing to write decrypted secrets inside the git work tree {root} at a path "
        "git does not ignore; write it outside the repository, add it to .gitignore, or pass --force\n"
    )
    assert not (root / "prod.json").exists()
    # a tracked file is never ignored, even when a pattern matches it
    (root / "environments/notes").mkdir()
    for rel in ("environments/notes/prod.json", "keys/targets/prod.json"):
        assert run(capsys, root, "pull", "prod", "--decrypt", "--out", rel)[0] == 2
    # ignored, or outside every work tree: written, private
    for out_path in (root / ".llmcc" / "prod.json", tmp_path / "elsewhere" / "prod.json"):
        out_path.parent.mkdir(exist_ok=True)
        code, _, _ = run(capsys, root, "pull", "prod", "--decrypt", "--out", str(out_path))
        assert code == 0
        assert out_path.stat().st_mode & 0o077 == 0
        out_path.unlink()
    # without --decrypt it is ciphertext: any path will do
    assert run(capsys, root, "pull", "prod", "--out", "prod.enc.json")[0] == 0


def test_a_decrypted_bundle_is_blocked_by_the_real_pre_commit_hook(
    published: tuple[GitRepo, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    repo, canary = published
    root = repo.path
    (root / ".pre-commit-config.yaml").write_bytes(dict(scaffold_files())[".pre-commit-config.yaml"])
    repo.commit("pre-commit hooks")
    home = {"PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    os.environ.update(home)  # restored below; pre-commit reads it from git's environment
    try:
        subprocess.run([sys.executable, "-m", "pre_commit", "install"], cwd=root, check=True, capture_output=True)
        code, _, err = run(capsys, root, "pull", "prod", "--decrypt", "--out", "prod.json", "--force")
        assert code == 0
        assert err.startswith(f"llmcc: warning: writing decrypted secrets to {root}/prod.json, where git can commit")
        assert canary in (root / "prod.json").read_text()
        git(root, "add", "prod.json")
        blocked = git(root, "commit", "-q", "-m", "oops", check=False)
    finally:
        for k in home:
            os.environ.pop(k, None)
        (root / "prod.json").unlink(missing_ok=True)
    output = blocked.stdout + blocked.stderr
    assert blocked.returncode != 0, output
    # the first secret field of the file (json.dumps(indent=2, sort_keys=True) puts it on line 4), and the count
    assert (
        "prod.json:4:7: api-gateway $.auth.hmac_secret: decrypted llmcc bundle: secret fields hold plaintext" in output
    )
    assert "(and 6 more)" in output
    assert canary not in output
    assert git(root, "log", "-1", "--format=%s").stdout.strip() == "pre-commit hooks"


def test_an_encrypted_bundle_is_not_a_finding(
    published: tuple[GitRepo, str], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _ = published
    root = repo.path
    assert run(capsys, root, "pull", "prod", "--out", "prod.json")[0] == 0
    assert run(capsys, root, "compile", "-t", "prod", "--out", "dist")[0] == 0
    code, _, err = run(capsys, root, "hook", "secrets-guard", "prod.json", "dist/prod.bundle.json")
    assert (code, err) == (0, "")


# --- siblings: other commands that write secrets to disk ----------------------------------------


def test_keys_generate_refuses_a_path_git_can_take(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    root = git_repo.path
    git_repo.write(".gitignore", "*.agekey\n")
    code, _, err = run(capsys, root, "keys", "generate", "--signing", "keys/ci.pem")
    assert code == 2
    assert "keys/ci.pem: refusing to write a private key inside the git work tree" in err
    assert not (root / "keys/ci.pem").exists()
    assert run(capsys, root, "keys", "generate", "--age", "keys/ci.agekey")[0] == 0  # ignored
    code, _, err = run(capsys, root, "keys", "generate", "--signing", "keys/ci.pem", "--force")
    assert code == 0
    assert "llmcc: warning: writing a private key to" in err


def test_init_refuses_a_keys_dir_git_can_take(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    keys = git_repo.path / "private"
    code, _, err = run(capsys, git_repo.path, "init", str(git_repo.path.parent / "conf"), "--keys-dir", str(keys))
    assert code == 2
    assert err == (
        f"llmcc: {keys}/age.key: private keys must not be written where git can commit them "
        f"(inside the work tree {git_repo.path}, not ignored); pass --keys-dir DIR outside it\n"
    )
    assert not keys.exists()
    assert not (git_repo.path.parent / "conf").exists()


def test_what_counts_as_a_decrypted_bundle(example_repo: GitRepo) -> None:
    from compiler.compile.repository import Repository
    from compiler.plaintext import scan_committable
    from compiler.secrets.sources import SopsOpener
    from compiler.sources.worktree import WorkTree

    root = example_repo.path
    canary = new_canary()
    files = {
        "a.json": "{not json",
        "b.json": '{"unknown-module": {"db": {"password": "x"}}}',
        "c.json": '{"modules": {\n  "data-pipeline": {"db": {"password": ' + f'"{canary}"' + "}}}}",
        "d.json": "[" * 5000 + "]" * 5000,
        "e.json": '{"data-pipeline": {"db": {"password": [' + f'"{canary}"' + "]}}}",
        # a repeated key: JSON takes the last, our YAML loader refuses it, so the finding is at line 1
        "f.json": '{"data-pipeline": {}, "data-pipeline": {"db": {"password": {"v": ' + f'"{canary}"' + "}}}}",
        "g.json": '{"broken": {"db": {}}}',
    }
    for rel, text in files.items():
        (root / rel).write_text(text)
    (root / "schemas/broken.schema.json").write_text("{")
    repo = Repository(WorkTree(root), open_secrets=SopsOpener(None))
    found = [d.format() for d in scan_committable(repo, files).diagnostics]
    assert [line.split(": decrypted llmcc bundle")[0] for line in found] == [
        "c.json:2:28: data-pipeline $.db.password",
        "e.json:1:27: data-pipeline $.db.password",
        "f.json:1:1: data-pipeline $.db.password",
    ]
    assert not any(canary in line for line in found)
    for rel in files:
        (root / rel).unlink()


def test_a_config_repository_in_a_subdirectory(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import copy_example

    root = copy_example(git_repo.path / "config")
    git_repo.write("elsewhere.txt", "AKIA" + _alnum(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") + "\n")  # outside the config root
    rel, value, label = plant(root, "github")
    git_repo.commit("config in a subdirectory")
    for argv in (["validate"], ["validate", "--rev", "HEAD"], ["hook", "secrets-guard"]):
        code, out, err = run(capsys, root, *argv)
        assert code == 1, argv
        assert_reported(err + out, rel, value, label)
        assert "elsewhere.txt" not in err + out
    (root / rel).unlink()


def test_the_formats_we_add_to_detect_secrets() -> None:
    from compiler.validate.credentials import find_credentials

    age = str(pyrage.x25519.Identity.generate())
    text = "\n".join(
        [
            f"recipient: {pyrage.x25519.Identity.generate().to_public()}",  # public: fine
            "password: ENC[AES256_GCM,data:" + _alnum(40) + ",type:str]",  # SOPS ciphertext: fine
            age.lower(),  # age reads Bech32 in either case
            "-----BEGIN " + "ENCRYPTED PRIVATE KEY-----",
            "token: h" + f"f_{_alnum(34)}",
            "key: AI" + f"za{_alnum(35)}",
            "sk-ant-" + f"admin01-{_alnum(40)}",
        ]
    )
    found = [(f.line, f.column, f.kind) for f in find_credentials(text)]
    assert found == [
        (3, 1, "age identity"),
        (4, 1, "PEM private key"),
        (5, 8, "Hugging Face token"),
        (6, 6, "Google API key"),
        (7, 1, "Anthropic API key"),
    ]


def test_the_plaintext_input_of_secrets_encrypt_is_a_finding(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    canary = new_canary()
    rel = "environments/prod.secrets.yaml"
    example_repo.write(rel, f"modules:\n  data-pipeline:\n    db:\n      password: {canary}\n")
    code, out, err = run(capsys, example_repo.path, "validate")
    assert code == 1
    assert f"{rel}:1:1: plaintext secrets file: encrypt it with `llmcc secrets encrypt FILE`" in err
    assert canary not in out + err
    (example_repo.path / rel).unlink()


def test_this_repository_passes_its_own_guard() -> None:
    """`make demo` validates this repository: its tests and sources must not look like committed secrets."""
    from compiler.compile.repository import Repository
    from compiler.plaintext import scan_committable
    from compiler.secrets.sources import SopsOpener
    from compiler.sources.worktree import WorkTree
    from tests.hooks.test_precommit import _project_files

    repo = Repository(WorkTree(REPO_ROOT), open_secrets=SopsOpener(None))
    scan = scan_committable(repo, _project_files(REPO_ROOT))
    assert [d.format() for d in scan.diagnostics] == []
    assert sorted(a.split(":")[0] for a in scan.allowed) == [
        "keys/demo-acme.agekey",
        "keys/demo-signing.pem",
        "keys/demo.agekey",
    ]


def test_the_credential_patterns_are_detect_secrets_own() -> None:
    # compiler/validate/_credential_patterns.py is generated (tools/gen-credential-patterns.py) so that
    # validate does not import detect-secrets and requests; it must still say what the library says.
    from compiler.validate._credential_patterns import PATTERNS
    from compiler.validate.credentials import dump_patterns, library_detectors

    library = library_detectors()
    assert [(k, f, tuple(p)) for k, f, p in PATTERNS] == [
        (d.kind, d.family, tuple((p.pattern, int(p.flags)) for p in d.patterns)) for d in library
    ]
    namespace: dict[str, object] = {}
    exec(dump_patterns(library), namespace)  # noqa: S102 - our own generated text, round-tripped
    assert namespace["PATTERNS"] == PATTERNS


@pytest.mark.parametrize(
    ("rel", "text"),
    [
        # a flow mapping never closed: not YAML, and the key is still in the text git takes
        ("environments/dev.yaml", "modules: {inference-engine: {api_key: {value}  # {canary}\n"),
        ("environments/prod.secrets.sops.yaml", "modules: [\napi_key: {value}  # {canary}\n"),
        ("templates/api-gateway.yaml", "a: b: {value}  # {canary}\n"),
    ],
)
def test_the_guard_scans_the_text_of_a_file_that_is_not_yaml(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str], rel: str, text: str
) -> None:
    """The key on a line that breaks the YAML is reported at file:line, next to the YAML error."""
    value = SECRETS["anthropic"][0]()
    example_repo.write(rel, text.replace("{value}", value).replace("{canary}", new_canary()))
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "{value}" in t)
    code, out, err = run(capsys, example_repo.path, "hook", "secrets-guard", rel)
    assert (code, out) == (2, "")  # an input error, as validate: the highest code wins
    assert f"{rel}:{line}:" in err, err
    assert ": Anthropic API key: credential in plaintext" in err
    assert f"llmcc: {rel}:" in err  # the YAML error, file:line
    assert err.splitlines()[-1] == "llmcc: secrets-guard FAILED: 1 finding, 1 input error in 1 file"
    assert value not in err
    # the validate hook reports both too
    code, _, err = run(capsys, example_repo.path, "hook", "validate", rel)
    assert code == 2
    assert "Anthropic API key" in err
    assert value not in err
    (example_repo.path / rel).unlink()  # the canary leaves no plaintext file behind


def test_a_file_that_is_not_yaml_and_holds_nothing_is_an_input_error(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    example_repo.write("environments/dev.yaml", "modules: [\n")
    code, out, err = run(capsys, example_repo.path, "hook", "secrets-guard", "environments/dev.yaml")
    assert (code, out) == (2, "")
    assert err.startswith("llmcc: environments/dev.yaml:")
    assert err.splitlines()[-1] == "llmcc: secrets-guard FAILED: 0 findings, 1 input error in 1 file"


def test_an_allowed_unencrypted_sops_file_passes_only_at_its_sha256(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """The allow list covers every finding of the file it names, the not-encrypted rule too.

    Found by a new-user trial: this repository's negative test case (an unencrypted
    ``*.secrets.sops.yaml`` on purpose) failed the CI templates' guard step, and the allow
    list, which covered only keys and credentials, could not name it.
    """
    root = example_repo.path
    case = root / "cases/prod.secrets.sops.yaml"
    case.parent.mkdir()
    case.write_text("modules:\n  engine:\n    note: fake\n")
    code, _, err = run(capsys, root, "hook", "secrets-guard")
    assert code == 1
    assert "cases/prod.secrets.sops.yaml:1:1: not SOPS-encrypted" in err
    digest = hashlib.sha256(case.read_bytes()).hexdigest()
    manifest = root / "llmcc.yaml"
    text = manifest.read_text()
    at = text.index("  allow:\n") + len("  allow:\n")
    entry = f'    - {{path: cases/prod.secrets.sops.yaml, sha256: {digest}, reason: "a test case"}}\n'
    manifest.write_text(text[:at] + entry + text[at:])
    code, _, err = run(capsys, root, "hook", "secrets-guard")
    assert code == 0, err
    assert "allowed by llmcc.yaml secrets_guard.allow: cases/prod.secrets.sops.yaml: a test case" in err
    case.write_text("modules:\n  engine:\n    note: changed\n")
    code, _, err = run(capsys, root, "hook", "secrets-guard")
    assert code == 1
    assert "not SOPS-encrypted" in err


def test_this_repository_passes_its_own_ci_guard_step(capsys: pytest.CaptureFixture[str]) -> None:
    """The templates' first step, run on this repository as a user trying them here would."""
    code, _, err = run(capsys, REPO_ROOT, "hook", "secrets-guard")
    assert code == 0, err
