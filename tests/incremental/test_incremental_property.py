"""The law of the cache: after any sequence of edits, a compile through it is byte-identical to a clean one.

Random sequences of edits (values, variables, tags, layer files added and
removed, manifest changes, policies, templates with Jinja-only expressions,
variables read by many scalars and in list items, variables a tenant overrides,
templates with ``extends``, schema changes,
commits, a layer directory turned into a symlink, the kept parsed files and
rendered scalars damaged, the kept documents' positions damaged behind a right
digest, a bundle of the output directory tampered with) on a
small repository; after each, ``llmcc compile`` with the cache and ``llmcc
compile --no-cache`` must give the same exit code, the same findings and the
same bundle bytes. The second test runs each cached compile in its own
process, so only what the cache directory holds carries over (parsed
documents, rendered scalars, known Jinja expressions).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from compiler.cli import main
from compiler.incremental.store import CACHE_DIR
from tests.conftest import init_repo
from tests.core._repos import ENGINE_SCHEMA, ENGINE_TEMPLATE, MANIFEST, mini_repo

TENANT = "vars:\n  temperature: {t}\nmodules:\n  engine:\n    tags: {{tenant: acme}}\n"
POLICY = (
    "- name: cool\n  description: temperature at most {limit}\n  rule: config.engine.model.temperature <= {limit}\n"
)

BASE, BASE_VARS = "environments/base.yaml", "vars:\n  model: big\n  temperature: {t}\n  region: r1\n"
# Templates whose scalars read a variable many times, in maps and in list items, with text around it
MANY = (
    "model:\n  name: '{{ model }}'\n  temperature: '{{ temperature }}'\n"
    "description: '{{ model }} in {{ region }} \u2713'\ntags: {a: '{{ model }}', b: 'r-{{ region }}'}\n"
    "fallbacks: ['{{ model }}', small]\nregion: '{{ region }}'\n"
)
EXTENDED = "extends: _base.yaml\nmodel:\n  name: '{{ model }}'\n"
PARTIAL = "region: '{{ region }}'\ndescription: 'base {{ model }}'\nmodel:\n  temperature: '{{ temperature }}'\n"
WIDER = json.dumps({**ENGINE_SCHEMA, "properties": {**ENGINE_SCHEMA["properties"], "region": {"enum": ["r1", "r2"]}}})

Edit = tuple[str, str | None]  # (path, new text or None to remove) or ("commit", None)
temperatures = st.sampled_from(["0.1", "0.4", "0.9", "1.5"])  # 1.5 breaks the schema's maximum
edits = st.one_of(
    st.builds(lambda t: (BASE, BASE_VARS.format(t=t)), temperatures),
    # one base variable changed, the rest as they were (non-ASCII: positions are characters, not bytes)
    st.builds(
        lambda m, r: ("environments/base.yaml", f"vars:\n  model: {m}\n  temperature: 0.5\n  region: {r}\n"),
        st.sampled_from(["big", "b\u00efg-\u2713", "small"]),
        st.sampled_from(["r1", "r2", "us-east-1"]),
    ),
    # a tenant that overrides a variable the base changes, and one that overrides nothing
    st.builds(
        lambda m: ("environments/tenants/acme.yaml", f"vars:\n  model: {m}\nmodules:\n  engine:\n    tags: {{t: x}}\n"),
        st.sampled_from(["acme-model", "big"]),
    ),
    st.builds(lambda t: ("environments/tenants/acme.yaml", TENANT.format(t=t)), temperatures),
    st.builds(
        lambda n: ("environments/prod/tenants/acme.yaml", f"modules:\n  engine:\n    model:\n      max_tokens: {n}\n"),
        st.sampled_from(["10", "20", "0"]),  # 0 breaks the schema's minimum
    ),
    st.sampled_from(
        [
            ("environments/prod/tenants/acme.yaml", None),
            ("environments/tenants/acme.yaml", None),
            ("environments/staging.yaml", "modules:\n  engine:\n    fallbacks: !override [solo]\n"),
            ("environments/staging.yaml", "modules:\n  engine:\n    fallbacks: !append [extra]\n"),
            ("environments/staging.yaml", "vars:\n  region: eu-west-1\n"),
            ("environments/qa.yaml", "vars: {}\n"),  # read by no target: a layout finding
            ("environments/qa.yaml", None),
            ("llmcc.yaml", MANIFEST.replace("acme: {environments: [staging, prod]}", "acme: {environments: [prod]}")),
            ("llmcc.yaml", MANIFEST + "  globex: {environments: [dev]}\n"),
            ("llmcc.yaml", MANIFEST),
            ("policies/cool.yaml", POLICY.format(limit="0.8")),
            ("policies/cool.yaml", None),
            ("templates/engine.yaml", "model:\n  name: '{{ model }}'\nregion: '{{ region }}'\n"),
            # Jinja-only expressions (filters that are not plain): planned from kept expressions
            ("templates/engine.yaml", "model:\n  name: \"{{ model | replace('g', 'G') }}\"\nregion: '{{ region }}'\n"),
            ("templates/engine.yaml", "model:\n  name: \"{{ [model, region] | join('+') }}\"\n"),
            ("environments/base.yaml", "vars:\n  model: small\n  temperature: 0.3\n  region: r2\n"),
            (
                "environments/dev.yaml",
                "vars:\n  model: !override tiny\nmodules:\n  engine: !override {model: {name: x}}\n",
            ),
            ("templates/engine.yaml", MANY),
            ("templates/engine.yaml", EXTENDED),
            ("templates/_base.yaml", PARTIAL),
            ("templates/_base.yaml", None),
            ("templates/engine.yaml", ENGINE_TEMPLATE),
            ("schemas/engine.schema.json", WIDER),  # region r1/r2 only: us-east-1 becomes an error
            ("schemas/engine.schema.json", json.dumps(ENGINE_SCHEMA)),
            ("environments/staging.yaml", "vars:\n  region: r2\nmodules:\n  engine:\n    description: set\n"),
            ("damage", None),  # the kept parsed files and rendered scalars overwritten with garbage
            ("positions", None),  # the kept documents' positions damaged, their digests right; a finding reads one
            ("tamper", None),  # a bundle in the output directory edited in place, its modification time put back
            ("commit", None),
            ("link", None),  # environments/tenants becomes a symlink to a directory: later edits go through it
        ]
    ),
)


def compile_to(
    root: Path, out: str, capsys: pytest.CaptureFixture[str], *extra: str, process: bool = False
) -> tuple[int, str, str]:
    argv = ["-q", "-C", str(root), "compile", "-o", out, *extra]
    if process:  # a process of its own: only the cache directory carries over
        env = {k: v for k, v in os.environ.items() if k != "LLMCC_NO_CACHE"}
        proc = subprocess.run(
            [sys.executable, "-m", "compiler", *argv], capture_output=True, text=True, env=env, timeout=120
        )
        code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    else:
        code = main(argv)
        stdout, stderr = capsys.readouterr()
    return code, stdout.replace(f"{out}/", ""), stderr


def damage_kept_entries(root: Path) -> None:
    """Overwrite every kept parsed document and rendered-scalar entry with bytes of the same size."""
    for entry in (root / CACHE_DIR).rglob("*.json"):
        head, _, body = entry.read_bytes().partition(b"\n")
        if body.startswith((b'{"scheme":"document/', b'{"scheme":"rendered/')):
            entry.write_bytes(head + b"\n" + b"{" * len(body))


def damage_kept_positions(root: Path) -> None:
    """Damage the positions line of every kept parsed document, its entry's digest and size made right."""
    for entry in (root / CACHE_DIR).rglob("*.json"):
        head, _, body = entry.read_bytes().partition(b"\n")
        if body.startswith(b'{"scheme":"document/'):
            body = body.partition(b"\n")[0] + b"\n[[1,"
            header = json.loads(head)
            header.update(sha256=hashlib.sha256(body).hexdigest(), size=len(body))
            entry.write_bytes(json.dumps(header).encode() + b"\n" + body)


def tamper_bundle(out: Path) -> None:
    """Edit the first bundle in ``out`` in place, the same size, its modification time put back."""
    for bundle in sorted(out.glob("*.bundle.json"))[:1]:
        st = bundle.stat()
        data = bundle.read_bytes()
        bundle.write_bytes(data.replace(b'"apiVersion"', b'"apiVersioN"', 1))
        os.utime(bundle, ns=(st.st_atime_ns, st.st_mtime_ns))


def bundles(root: Path, out: str) -> dict[str, bytes]:
    d = root / out
    return {p.name: p.read_bytes() for p in sorted(d.glob("*.bundle.json"))} if d.is_dir() else {}


def check_edits(steps: list[Edit], capsys: pytest.CaptureFixture[str], *, process: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="llmcc-incremental-") as tmp:
        repo = init_repo(Path(tmp) / "repo")
        mini_repo(repo.path)
        # the outputs are ignored, as `llmcc init` sets up: else a commit takes them, and writing them dirties the tree
        (repo.path / ".gitignore").write_text("cached/\nclean/\n.llmcc/\n")
        repo.commit("start")
        compile_to(repo.path, "cached", capsys, process=process)  # fill the cache
        for path, text in steps:
            if path == "commit":
                repo.git("add", "-A")
                repo.git("commit", "-q", "--allow-empty", "-m", "step")
                continue
            if path == "damage":
                damage_kept_entries(repo.path)
                path = "environments/tenants/acme.yaml"  # and a change, so that targets are built from them
                text = TENANT.format(t="0.7")
            if path == "positions":
                damage_kept_positions(repo.path)
                path = "environments/staging.yaml"  # staging rebuilt: a finding in a kept file reads its line
                text = "vars:\n  region: eu-central-1\n"
            if path == "tamper":
                tamper_bundle(repo.path / "cached")
                path = "environments/prod/tenants/acme.yaml"  # and a change elsewhere: a run that rebuilds a few
                text = "modules:\n  engine:\n    model:\n      max_tokens: 30\n"
            if path == "link":
                tenants = repo.path / "environments/tenants"
                if not tenants.is_symlink():
                    tenants.mkdir(parents=True, exist_ok=True)
                    tenants.rename(repo.path / "tenant-files")
                    tenants.symlink_to(Path("../tenant-files"))
                path = "environments/tenants/acme.yaml"
                text = TENANT.format(t="0.2") if (repo.path / path).is_file() else None
            target = repo.path / path
            if text is None:
                target.unlink(missing_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
            cached = compile_to(repo.path, "cached", capsys, process=process)
            clean = compile_to(repo.path, "clean", capsys, "--no-cache")
            assert cached == clean, path
            assert bundles(repo.path, "cached") == bundles(repo.path, "clean"), path


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(edits, min_size=1, max_size=5))
def test_incremental_compile_equals_a_clean_compile(steps: list[Edit], capsys: pytest.CaptureFixture[str]) -> None:
    check_edits(steps, capsys, process=False)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(edits, min_size=2, max_size=4))
@example(steps=[(BASE, BASE_VARS.format(t="1.5")), ("positions", None)])  # the finding's line from damaged positions
def test_incremental_compile_across_processes_equals_a_clean_compile(
    steps: list[Edit], capsys: pytest.CaptureFixture[str]
) -> None:
    check_edits(steps, capsys, process=True)
