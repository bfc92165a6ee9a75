"""Four clones at four commits publish ``prod`` at once through the real CLI, per backend (issue 4).

Each clone commits a different prod temperature, so the four bundles differ.
Four ``llmcc publish`` processes start together behind a file barrier; all must
succeed, the store must then hold exactly versions 1-4 of ``prod`` in one
linear chain that ``llmcc verify`` accepts, one version per clone commit.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compiler.bundle.dsse import Keyring, load_public_key
from compiler.storage import open_store
from compiler.verify import verify_chain
from tests.conftest import GitRepo, copy_example, init_repo
from tests.storage._oci_auth import basic_entry, docker_config
from tests.storage._support import StoreSpec
from tests.storage.conftest import AuthRegistry

CLONES = 4
TEMPERATURES = ["0.31", "0.42", "0.53", "0.64"]  # prod.yaml has 0.3; the policy allows 0.0-1.0
BARRIER_TIMEOUT = 30.0
PUBLISH_TIMEOUT = 120.0

# Imports the CLI, says it is ready, waits for the go file, then runs `llmcc ARGV`:
# the four publishers start their work within a few milliseconds of each other.
_BARRIER = """
import os, sys, time
from compiler.cli import main
ready, go, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
open(ready, "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("barrier: no go signal within 60s")
    time.sleep(0.001)
raise SystemExit(main(argv))
"""


def _store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, list[str]]:
    """(store URL, extra CLI flags) for an empty store on ``backend``."""
    if backend == "file":
        return f"file://{tmp_path / 'store'}", []
    if backend == "s3":
        s3: StoreSpec = request.getfixturevalue("s3_spec")
        return f"s3://{s3.bucket}/{s3.prefix}", ["--endpoint-url", s3.endpoint_url]
    if backend == "oci-auth":  # TLS, bearer tokens, a helper-free docker config.json (issue 13 §5)
        registry: AuthRegistry = request.getfixturevalue("token_registry")
        home: Path = request.getfixturevalue("docker_home")
        docker_config(home, {"auths": {registry.service.host: basic_entry(registry.user, registry.password)}})
        return registry.store_url(), []
    oci: StoreSpec = request.getfixturevalue("oci_spec")
    return f"oci://{oci.registry}/{oci.repository}", []


def _clones(tmp_path: Path) -> list[GitRepo]:
    """The example committed once, cloned four times, each clone one commit further with its own temperature."""
    origin = init_repo(tmp_path / "origin")
    copy_example(origin.path)
    origin.commit("Example platform config")
    clones = []
    for i, temperature in enumerate(TEMPERATURES):
        path = tmp_path / f"clone{i}"
        subprocess.run(["git", "clone", "-q", str(origin.path), str(path)], check=True, capture_output=True)
        clone = GitRepo(path)
        prod = path / "environments" / "prod.yaml"
        text = prod.read_text()
        assert "  temperature: 0.3\n" in text
        prod.write_text(text.replace("  temperature: 0.3\n", f"  temperature: {temperature}\n"))
        clone.commit(f"prod: temperature {temperature}", author=f"Clone {i} <clone{i}@example.com>")
        clones.append(clone)
    return clones


def _wait_for(paths: list[Path], procs: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + BARRIER_TIMEOUT
    while not all(p.exists() for p in paths):
        for proc in procs:
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"a publisher exited {proc.returncode} before the barrier:\n{out}\n{err}")
        if time.monotonic() > deadline:
            pytest.fail(f"publishers not ready within {BARRIER_TIMEOUT}s")
        time.sleep(0.01)


def publish_at_once(
    barrier: Path, runs: list[tuple[list[str], dict[str, str]]]
) -> tuple[list[subprocess.Popen[str]], list[tuple[str, str]]]:
    """Start ``llmcc ARGV`` for each (argv, env) of ``runs``, release them together behind a file
    barrier in ``barrier`` (created), and wait: (processes, (stdout, stderr) of each)."""
    barrier.mkdir()
    go = barrier / "go"
    procs: list[subprocess.Popen[str]] = []
    ready: list[Path] = []
    try:
        for i, (argv, env) in enumerate(runs):
            ready.append(barrier / f"ready{i}")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", _BARRIER, str(ready[i]), str(go), *argv],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        _wait_for(ready, procs)
        go.touch()
        results = [proc.communicate(timeout=PUBLISH_TIMEOUT) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return procs, results


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["file", "s3", "oci", "oci-auth"])
def test_four_clones_publish_prod_at_once(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url, flags = _store(backend, request, tmp_path)  # s3, oci-auth: credentials now in os.environ
    clones = _clones(tmp_path)
    heads = [c.git("rev-parse", "HEAD").strip() for c in clones]
    assert len(set(heads)) == CLONES

    env_base = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}  # OCI publish locks stay in this test
    runs = []
    for clone in clones:
        keys = clone.path / "keys"
        env = {
            **env_base,
            "SOPS_AGE_KEY_FILE": str(keys / "demo.agekey"),
            "LLMCC_SIGNING_KEY_FILE": str(keys / "demo-signing.pem"),
        }
        runs.append((["-C", str(clone.path), "publish", "--store", url, *flags, "-t", "prod"], env))
    procs, results = publish_at_once(tmp_path / "barrier", runs)

    report = "\n".join(
        f"clone{i}: exit {p.returncode}\n{out}{err}"
        for i, (p, (out, err)) in enumerate(zip(procs, results, strict=True))
    )
    assert [p.returncode for p in procs] == [0] * CLONES, report
    published = sorted(int(out.split("published version ")[1].split()[0]) for out, _ in results)
    assert published == [1, 2, 3, 4], report

    origin = clones[0].path
    verify = subprocess.run(
        [sys.executable, "-m", "compiler", "-C", str(origin), "verify", "--store", url, *flags, "-t", "prod"],
        env=env_base,
        capture_output=True,
        text=True,
        timeout=PUBLISH_TIMEOUT,
    )
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout.startswith("prod: versions 1-4 verified, latest sha256:"), verify.stdout

    store = open_store(url, root=tmp_path, endpoint_url=flags[1] if flags else None)
    assert store.targets() == ["prod"]
    assert store.versions("prod") == [1, 2, 3, 4]
    keyring = Keyring([load_public_key((origin / "keys" / "demo-signing.pub").read_bytes())])
    chain = verify_chain("prod", [(v, store.read("prod", v)) for v in (1, 2, 3, 4)], keyring)
    commits = [str(b.metadata["source"]["commit"]) for b in chain]  # type: ignore[index,call-overload]
    assert sorted(commits) == sorted(heads)
    temperatures = {b.bundle["modules"]["inference-engine"]["model"]["temperature"] for b in chain}  # type: ignore[index,call-overload]
    assert temperatures == {float(t) for t in TEMPERATURES}
    for earlier, later in itertools.pairwise(chain):
        assert later.metadata["previous"] == earlier.digest
