#!/usr/bin/env python3
"""Runtime client benchmark (issue 11 "Benchmarks"): compiler.client.ConfigClient.

1. ``get()`` from memory, warm (timeit): median per call. Target < 1 us.
2. Cold start from the disk cache of a 500-key bundle with 50 secrets: a new
   client loads the cache file, verifies the envelope, unwraps the data key
   (age) and decrypts all 50 secrets. Target < 10 ms.
3. Refresh with a new version (one value changed) over a file store and over
   the S3 test server (moto, on loopback): time and bytes read; and a refresh
   that finds nothing new.
4. 10,000 update attempts (2,500 each: valid, tampered, rolled back, mixed)
   while 4 reader threads read continuously: torn reads (must be 0), bad
   updates refused (must be 100 %), the last good version kept; swap latency
   p50/p99.

Medians throughout. Writes its section to bench/NOTES.md (bench/run.py copies
NOTES.md into RESULTS.md) and replaces the same section in bench/RESULTS.md.

    .venv/bin/python bench/client.py [--quick]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import timeit
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _sections import write_section  # bench/_sections.py (scripts run with bench/ on sys.path)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import pyrage  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from compiler.bundle.canonical import canonical_json  # noqa: E402
from compiler.bundle.dsse import Signer  # noqa: E402
from compiler.client import ConfigClient  # noqa: E402
from compiler.errors import VerificationError  # noqa: E402
from compiler.publish import publish_target  # noqa: E402
from compiler.secrets.envelope import ALG, dek_commitment, new_dek  # noqa: E402
from compiler.secrets.kek.age import AgeKeyProvider  # noqa: E402
from compiler.secrets.reader import seal_modules  # noqa: E402
from compiler.storage.base import Listing  # noqa: E402
from compiler.storage.file import FileStore  # noqa: E402

BEGIN, END = "<!-- client:begin -->", "<!-- client:end -->"
MODULES, KEYS, SECRETS_PER_MODULE = 10, 50, 5  # 500 keys, 50 secrets


# --- a 500-key bundle with 50 secrets ------------------------------------------------------


class Keys:
    def __init__(self, tmp: Path) -> None:
        private = Ed25519PrivateKey.generate()
        self.signer = Signer(private)
        self.public_pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        identity = pyrage.x25519.Identity.generate()
        self.identity_file = tmp / "reader.agekey"
        self.identity_file.write_text(f"{identity}\n")
        self.provider = AgeKeyProvider([str(identity.to_public())])
        self.dek = new_dek()
        wrapped = self.provider.wrap(self.dek)
        self.encryption = {
            "alg": ALG,
            "kek": {"provider": wrapped.provider, "key_id": wrapped.key_id},
            "wrapped_dek": wrapped.to_json(),
            "commitment": dek_commitment(self.dek),
        }


def big_body(keys: Keys, n: int, target: str = "prod") -> dict:
    """500 keys in 10 modules, 5 secrets each; ``n`` changes one value (m00.k010)."""
    modules = {
        f"m{m:02d}": {f"k{k:03d}": f"value-{m}-{k}" if k >= SECRETS_PER_MODULE else f"s-{m}-{k}" for k in range(KEYS)}
        for m in range(MODULES)
    }
    modules["m00"]["k010"] = n
    secret_paths = [(f"m{m:02d}", (f"k{k:03d}",)) for m in range(MODULES) for k in range(SECRETS_PER_MODULE)]
    return _body(target, n, seal_modules(modules, secret_paths, keys.dek, target), keys.encryption)


def small_body(n: int, target: str = "prod") -> dict:
    """One module whose 20 values all equal ``n``: a reader sees a mix at once."""
    return _body(target, n, {"m": {f"k{k:02d}": n for k in range(20)}}, None)


def _body(target: str, n: int, modules: dict, encryption: dict | None) -> dict:
    return {
        "apiVersion": "llmcc/v1",
        "kind": "Bundle",
        "metadata": {
            "project": "bench",
            "target": target,
            "source": {
                "commit": f"{n:040x}",
                "author": "bench <bench@example.com>",
                "committed_at": "2026-01-01T00:00:00Z",
                "message": f"change {n}",
                "dirty": False,
            },
            "compiler": "llmcc bench",
        },
        "modules": modules,
        "encryption": encryption,
    }


# --- stores --------------------------------------------------------------------------------


class CountingStore:
    """Any Store, counting the bytes read through it."""

    def __init__(self, store: object) -> None:
        self._store = store
        self.bytes = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    def read(self, target: str, version: int) -> bytes:
        data = self._store.read(target, version)  # type: ignore[attr-defined]
        self.bytes += len(data)
        return data

    def read_pointer(self, target: str) -> bytes | None:
        data = self._store.read_pointer(target)  # type: ignore[attr-defined]
        self.bytes += len(data or b"")
        return data

    def read_delta(self, target: str, version: int) -> bytes | None:
        if not self.deltas:
            return None  # as a store from before deltas: every new version is read whole
        data = self._store.read_delta(target, version)  # type: ignore[attr-defined]
        self.bytes += len(data or b"")
        return data

    deltas = True


class MemoryStore:
    """An in-memory Store (the Protocol of compiler/storage/base.py) whose served state can be set."""

    url = location = "memory://bench"

    def __init__(self) -> None:
        self.versions: dict[int, bytes] = {}
        self.pointer: bytes | None = None
        self.served: tuple[dict[int, bytes], bytes | None] | None = None  # a state to serve instead

    def _state(self) -> tuple[dict[int, bytes], bytes | None]:
        return self.served if self.served is not None else (self.versions, self.pointer)

    def targets(self) -> list[str]:
        return ["prod"]

    def versions_of(self) -> list[int]:
        return sorted(self._state()[0])

    def listing(self, target: str) -> Listing:
        versions, pointer = self._state()
        return Listing(versions=tuple(sorted(versions)), pointer=pointer is not None, strays=())

    def read(self, target: str, version: int) -> bytes:
        return self._state()[0][version]

    def read_pointer(self, target: str) -> bytes | None:
        return self._state()[1]

    def swap_pointer(self, target: str, envelope: bytes, *, expected: bytes | None) -> bool:
        if self.pointer != expected:
            return False
        self.pointer = envelope
        return True

    def create(self, target: str, version: int, envelope: bytes, *, previous: bytes | None = None) -> bool:
        if version in self.versions:
            return False
        self.versions[version] = envelope
        return True

    def read_delta(self, target: str, version: int) -> bytes | None:
        return None

    def create_delta(self, target: str, version: int, delta: bytes) -> bool:
        return True


# --- measurements --------------------------------------------------------------------------


def bench_get(client: ConfigClient, number: int) -> float:
    """Median ns per warm ``client.get`` (timeit, 7 repeats)."""
    client.get("m00.k020")
    timer = timeit.Timer("get(path)", globals={"get": client.get, "path": "m00.k020"})
    return statistics.median(t / number * 1e9 for t in timer.repeat(repeat=7, number=number))


def bench_cold_start(store_url: str, keys: Keys, cache: Path, runs: int) -> tuple[float, int]:
    """Median ms of: new client from the disk cache, verified, every secret decrypted."""
    paths = [f"m{m:02d}.k{k:03d}" for m in range(MODULES) for k in range(SECRETS_PER_MODULE)]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        client = ConfigClient(store_url, "prod", [keys.public_pem], identity=keys.identity_file, cache_dir=cache)
        opened = [client.secret(p).reveal() for p in paths]
        times.append((time.perf_counter() - start) * 1e3)
        assert client.status.source == "cache"
        assert len(opened) == 50
    return statistics.median(times), len(paths)


def bench_refresh(
    store: object, keys: Keys, cache: Path, rounds: int, *, deltas: bool = True
) -> tuple[float, int, float, int]:
    """(median ms, median bytes) of a refresh that swaps in a new version; the same for one that finds none.

    ``deltas`` False: the store serves no delta, so a new version is read whole.
    """
    counting = CountingStore(store)
    counting.deltas = deltas
    client = ConfigClient(counting, "prod", [keys.public_pem], identity=keys.identity_file, cache_dir=cache)  # type: ignore[arg-type]
    n = 1
    publish_target(store, "prod", big_body(keys, n), keys.signer)  # type: ignore[arg-type]
    client.refresh()
    new_t, new_b, same_t, same_b = [], [], [], []
    for _ in range(rounds):
        n += 1
        publish_target(store, "prod", big_body(keys, n), keys.signer)  # type: ignore[arg-type]
        counting.bytes = 0
        start = time.perf_counter()
        assert client.refresh() is True
        new_t.append((time.perf_counter() - start) * 1e3)
        new_b.append(counting.bytes)
        counting.bytes = 0
        start = time.perf_counter()
        assert client.refresh() is False
        same_t.append((time.perf_counter() - start) * 1e3)
        same_b.append(counting.bytes)
    return (
        statistics.median(new_t),
        int(statistics.median(new_b)),
        statistics.median(same_t),
        int(statistics.median(same_b)),
    )


def _tamper(envelope: bytes) -> bytes:
    env = json.loads(envelope)
    payload = bytearray(base64.b64decode(env["payload"]))
    payload[payload.index(b'"k00":') + 6] ^= 1  # one digit of the first value
    env["payload"] = base64.b64encode(bytes(payload)).decode()
    return canonical_json(env)


def bench_swaps(per_kind: int, readers: int = 4) -> dict[str, object]:
    """Update attempts against a client while ``readers`` threads read; see the module doc."""
    signer = Signer(Ed25519PrivateKey.generate())
    store = MemoryStore()
    # the valid chain: one version per valid attempt, plus the ones the mixed run needs
    valid_needed = per_kind + per_kind // 3 + 3
    states: list[tuple[dict[int, bytes], bytes | None]] = [({}, None)]
    for n in range(1, valid_needed + 1):
        publish_target(store, "prod", small_body(n), signer)  # type: ignore[arg-type]
        states.append((dict(store.versions), store.pointer))
    client = ConfigClient(store, "prod", [_public_pem(signer)])  # type: ignore[arg-type]
    store.served = states[1]
    client.refresh()

    stop = threading.Event()
    torn = [0] * readers
    reads = [0] * readers

    def read(i: int) -> None:
        last = 0
        while not stop.is_set():
            module = client.module("m")
            values = set(module.values())
            version = next(iter(values))
            if len(values) != 1 or version < last:
                torn[i] += 1
            last = version
            reads[i] += 1

    threads = [threading.Thread(target=read, args=(i,)) for i in range(readers)]
    for t in threads:
        t.start()
    at = 1  # the version served and held
    swap_ms: list[float] = []
    refused_ms: list[float] = []
    bad = refused = kept = 0
    counts = {"valid": 0, "tampered": 0, "rolled back": 0}

    def attempt(kind: str) -> None:
        nonlocal at, bad, refused, kept
        counts[kind] += 1
        if kind == "valid":
            store.served = states[at + 1]
            start = time.perf_counter()
            assert client.refresh() is True
            swap_ms.append((time.perf_counter() - start) * 1e3)
            at += 1
            return
        bad += 1
        if kind == "tampered":
            versions, pointer = states[at + 1]
            versions = dict(versions)
            versions[at + 1] = _tamper(versions[at + 1])
            store.served = (versions, pointer)
        else:
            store.served = states[max(1, at - 1 - (bad % 5))]
        start = time.perf_counter()
        try:
            client.refresh()
        except VerificationError:
            refused += 1
        refused_ms.append((time.perf_counter() - start) * 1e3)
        kept += client.version == at

    for kind in ("valid", "tampered", "rolled back"):
        for _ in range(per_kind):
            attempt(kind)
    for i in range(per_kind):  # mixed: valid, tampered, rolled back in turn
        attempt(("valid", "tampered", "rolled back")[i % 3])
    stop.set()
    for t in threads:
        t.join()
    swap_ms.sort()
    return {
        "attempts": sum(counts.values()),
        "counts": counts,
        "bad": bad,
        "refused": refused,
        "kept": kept,
        "torn": sum(torn),
        "reads": sum(reads),
        "swaps": len(swap_ms),
        "swap_p50": statistics.median(swap_ms),
        "swap_p99": swap_ms[int(len(swap_ms) * 0.99) - 1],
        "refuse_p50": statistics.median(refused_ms),
        "final_version": client.version,
        "expected_version": at,
    }


def _public_pem(signer: Signer) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(signer.public_key.raw).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@contextmanager
def moto_s3(tmp: Path) -> Iterator[tuple[str, str]]:
    """(bucket, endpoint URL) on a moto server started for the run."""
    import boto3

    from tools.loopback import start_moto  # on ROOT, as compiler/ is (sys.path above)

    os.environ.update(dict.fromkeys(("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), "testing"))
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    (tmp / "moto").mkdir()
    service = start_moto(tmp / "moto")
    try:
        boto3.session.Session().client("s3", endpoint_url=service.url).create_bucket(Bucket="bench")
        yield "bench", service.url
    finally:
        service.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer rounds; print only, NOTES.md/RESULTS.md untouched")
    a = ap.parse_args()
    rounds, per_kind, number = (3, 250, 20_000) if a.quick else (11, 2_500, 200_000)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        keys = Keys(tmp)
        file_store = FileStore(tmp / "store")
        r_file = bench_refresh(file_store, keys, tmp / "cache-file", rounds)
        print(_refresh_line("file store", r_file), flush=True)
        r_whole = bench_refresh(FileStore(tmp / "store-whole"), keys, tmp / "cache-whole", rounds, deltas=False)
        print(_refresh_line("file store, no deltas", r_whole), flush=True)
        store_url = f"file://{tmp / 'store'}"
        warm = ConfigClient(store_url, "prod", [keys.public_pem], identity=keys.identity_file, cache_dir=tmp / "cache")
        warm.refresh()
        get_ns = bench_get(warm, number)
        print(f"get() warm: {get_ns:.0f} ns median", flush=True)
        cold_ms, n_secrets = bench_cold_start(store_url, keys, tmp / "cache", 21)
        size = (tmp / "store" / "prod" / "00000001.dsse.json").stat().st_size
        print(
            f"cold start from the disk cache (500 keys, {n_secrets} secrets decrypted): {cold_ms:.2f} ms median",
            flush=True,
        )
        with moto_s3(tmp) as (bucket, endpoint):
            from compiler.storage.s3 import S3Store

            r_s3 = bench_refresh(S3Store(bucket, "bundles", endpoint_url=endpoint), keys, tmp / "cache-s3", rounds)
        print(_refresh_line("S3 (moto)", r_s3), flush=True)
    swaps = bench_swaps(per_kind)
    quiet = bench_swaps(per_kind // 5, readers=0)  # the same without readers: what the GIL costs
    swaps["quiet_p50"], swaps["quiet_p99"] = quiet["swap_p50"], quiet["swap_p99"]
    print(
        f"swaps: {swaps['attempts']:,} attempts {swaps['counts']}, {swaps['reads']:,} reads by 4 threads, "
        f"torn {swaps['torn']}, bad refused {swaps['refused']}/{swaps['bad']}, "
        f"last good kept {swaps['kept']}/{swaps['bad']}, "
        f"swap p50 {swaps['swap_p50']:.3f} ms p99 {swaps['swap_p99']:.3f} ms",
        flush=True,
    )
    ok = swaps["torn"] == 0 and swaps["refused"] == swaps["bad"] == swaps["kept"]
    ok = ok and swaps["final_version"] == swaps["expected_version"]
    if not a.quick:
        write_notes(get_ns, cold_ms, size, r_file, r_whole, r_s3, swaps)
    return 0 if ok else 1


def _refresh_line(label: str, r: tuple) -> str:
    return f"refresh, {label}: new version {r[0]:.2f} ms, {r[1]:,} bytes; unchanged {r[2]:.2f} ms, {r[3]:,} bytes"


def _kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n >= 1024 else f"{n} bytes"


def write_notes(
    get_ns: float, cold_ms: float, size: int, r_file: tuple, r_whole: tuple, r_s3: tuple, swaps: dict
) -> None:
    refused = 100.0 * swaps["refused"] / swaps["bad"]
    lines = [
        BEGIN,
        "## Runtime client (`bench/client.py`)",
        "",
        "`compiler.client.ConfigClient`, one process, medians. The bundle: 500 keys in 10 modules,",
        f"50 of them secrets (age-wrapped data key); its signed envelope is {size / 1024:.0f} KiB.",
        "",
        "| measure | result | target |",
        "|---|---:|---:|",
        f"| `get()` from memory, warm (timeit) | {get_ns:.0f} ns | < 1 us |",
        f"| cold start from the disk cache: load + verify + decrypt all 50 secrets | {cold_ms:.2f} ms | < 10 ms |",
        f"| refresh, new version (one value changed), file store, delta "
        f"| {r_file[0]:.2f} ms, {_kib(r_file[1])} read | |",
        f"| the same, read whole (a store without deltas) | {r_whole[0]:.2f} ms, {_kib(r_whole[1])} read | |",
        f"| refresh, nothing new, file store | {r_file[2]:.2f} ms, {_kib(r_file[3])} read | |",
        f"| refresh, new version, S3 (moto server on loopback) | {r_s3[0]:.2f} ms, {_kib(r_s3[1])} read | |",
        f"| refresh, nothing new, S3 | {r_s3[2]:.2f} ms, {_kib(r_s3[3])} read | |",
        "",
        "Bytes are the objects read (pointer, envelopes, deltas; the listing request is not counted).",
        "A new version costs its delta on the held version (a JSON Patch plus signatures), or its",
        "whole envelope from a store without deltas. A swap's time includes the cache file and the",
        "high-water mark written durably (each fsynced, renamed, directory fsynced).",
        "",
        f"Update attempts: {swaps['attempts']:,} ({', '.join(f'{v:,} {k}' for k, v in swaps['counts'].items())};",
        "2,500 each of valid, tampered, rolled back, then 2,500 mixed) while 4 reader threads read the",
        f"module continuously ({swaps['reads']:,} reads):",
        "",
        "| measure | result |",
        "|---|---:|",
        f"| torn reads (a module view mixing versions, or a version going back) | {swaps['torn']} |",
        f"| bad updates refused | {swaps['refused']:,} / {swaps['bad']:,} ({refused:.0f} %) |",
        f"| last good version kept after a bad update | {swaps['kept']:,} / {swaps['bad']:,} |",
        f"| swap latency (refresh that swaps), p50 / p99 | {swaps['swap_p50']:.3f} ms / {swaps['swap_p99']:.3f} ms |",
        f"| refusal latency, p50 | {swaps['refuse_p50']:.3f} ms |",
        f"| swap latency, no readers, p50 / p99 | {swaps['quiet_p50']:.3f} ms / {swaps['quiet_p99']:.3f} ms |",
        "",
        "The readers spin without pause: a refresh competes with them for the GIL (5 ms switch",
        "interval), which is what p99 shows; on this shared 2-core machine other processes ran too.",
        END,
    ]
    for name in ("NOTES.md", "RESULTS.md"):
        write_section(HERE / name, "\n".join(lines), BEGIN, END)


if __name__ == "__main__":
    raise SystemExit(main())
