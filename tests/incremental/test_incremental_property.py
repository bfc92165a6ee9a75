"""The law of the cache: after any sequence of edits, a compile through it is byte-identical to a clean one.

Random sequences of edits (values, variables, tags, layer files added and
removed, manifest changes, policies, commits, a layer directory turned into a
symlink) on a small repository; after each, ``llmcc compile`` with the cache
and ``llmcc compile --no-cache`` must give the same exit code, the same
findings and the same bundle bytes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.cli import main
from tests.conftest import init_repo
from tests.core._repos import MANIFEST, mini_repo

TENANT = "vars:\n  temperature: {t}\nmodules:\n  engine:\n    tags: {{tenant: acme}}\n"
POLICY = (
    "- name: cool\n  description: temperature at most {limit}\n  rule: config.engine.model.temperature <= {limit}\n"
)

Edit = tuple[str, str | None]  # (path, new text or None to remove) or ("commit", None)
temperatures = st.sampled_from(["0.1", "0.4", "0.9", "1.5"])  # 1.5 breaks the schema's maximum
edits = st.one_of(
    st.builds(
        lambda t: ("environments/base.yaml", f"vars:\n  model: big\n  temperature: {t}\n  region: r1\n"), temperatures
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
            ("commit", None),
            ("link", None),  # environments/tenants becomes a symlink to a directory: later edits go through it
        ]
    ),
)


def compile_to(root: Path, out: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    code = main(["-q", "-C", str(root), "compile", "-o", out, *extra])
    stdout, stderr = capsys.readouterr()
    return code, stdout.replace(f"{out}/", ""), stderr


def bundles(root: Path, out: str) -> dict[str, bytes]:
    d = root / out
    return {p.name: p.read_bytes() for p in sorted(d.glob("*.bundle.json"))} if d.is_dir() else {}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(edits, min_size=1, max_size=5))
def test_incremental_compile_equals_a_clean_compile(steps: list[Edit], capsys: pytest.CaptureFixture[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="llmcc-incremental-") as tmp:
        repo = init_repo(Path(tmp) / "repo")
        mini_repo(repo.path)
        # the outputs are ignored, as `llmcc init` sets up: else a commit takes them, and writing them dirties the tree
        (repo.path / ".gitignore").write_text("cached/\nclean/\n.llmcc/\n")
        repo.commit("start")
        compile_to(repo.path, "cached", capsys)  # fill the cache
        for path, text in steps:
            if path == "commit":
                repo.git("add", "-A")
                repo.git("commit", "-q", "--allow-empty", "-m", "step")
                continue
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
            cached = compile_to(repo.path, "cached", capsys)
            clean = compile_to(repo.path, "clean", capsys, "--no-cache")
            assert cached == clean, path
            assert bundles(repo.path, "cached") == bundles(repo.path, "clean"), path
