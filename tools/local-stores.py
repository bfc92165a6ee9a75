#!/usr/bin/env python3
"""Local stores for the README's "Publishing to S3 or an OCI registry": run until Ctrl-C.

Starts, on loopback, what that section publishes to:

- an S3 server (moto, installed in .venv) on 127.0.0.1:5055 with the bucket
  ``llmcc-bundles`` (moto takes any AWS credentials);
- an OCI registry (Debian's ``docker-registry``; ``make services`` installs it) on
  127.0.0.1:5056, plain HTTP, no login;
- a second registry on 127.0.0.1:5443 over TLS with a certificate of a private CA
  and htpasswd basic auth (user ``ci``, password ``s3cret-demo``).

Everything it writes goes to DIR (default ``$TMPDIR/llmcc-stores``, i.e.
``/tmp/llmcc-stores``), outside the repository: ``pki/ca.pem`` (the CA to trust),
``pki/other-ca.pem`` (an unrelated CA), ``pki/server.pem`` and ``pki/server.key``
(the registry's certificate and private key: inside a repository, ``llmcc
validate`` would rightly refuse the key), ``htpasswd``, the registries' configs,
storage and logs. DIR is made anew on each start (a non-empty DIR it did not make is refused).

    .venv/bin/python tools/local-stores.py [--dir DIR] [--s3-port N] [--oci-port N] [--oci-auth-port N]

Prints one line per store, then ``local-stores: ready``; Ctrl-C (or SIGTERM)
stops them. Exit 2 when a server cannot start (docker-registry missing, a port taken).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

import loopback  # tools/loopback.py: this script's directory is on sys.path

BUCKET = "llmcc-bundles"
MARKER = ".local-stores"  # DIR is removed on start only when it holds this (or nothing)
USER, PASSWORD = "ci", "s3cret-demo"  # the demo registry's login (README: `auth ci:s3cret-demo`)


class StartError(Exception):
    """A store did not start (exit 2)."""


def registry_binary() -> str:
    found = loopback.registry_binary()
    if found is None:
        raise StartError("docker-registry is not installed (make services)")
    return found


def wait(url: str, proc: subprocess.Popen[bytes], log: Path, cafile: Path | None = None) -> None:
    """Until URL answers (any HTTP status), at most 30 s; raises StartError if PROC ends first."""
    if not loopback.wait_ready(url, proc, loopback.START_TIMEOUT, cafile):
        if proc.poll() is not None:
            raise StartError(f"{url}: the server exited ({proc.returncode}): {log.read_text(errors='replace')[-500:]}")
        raise StartError(f"{url} did not answer within 30 s")


def start_registry(
    directory: Path, name: str, port: int, *, tls: tuple[Path, Path] | None = None, htpasswd: Path | None = None
) -> subprocess.Popen[bytes]:
    http = f'http: {{addr: "127.0.0.1:{port}", secret: {name}'
    if tls:
        http += f", tls: {{certificate: {tls[0]}, key: {tls[1]}}}"
    lines = [
        "version: 0.1",
        "log: {level: error, accesslog: {disabled: true}}",
        f"storage: {{filesystem: {{rootdirectory: {directory / name}}}, delete: {{enabled: true}}}}",
        http + "}",
    ]
    if htpasswd:
        lines.append(f"auth: {{htpasswd: {{realm: {name}, path: {htpasswd}}}}}")
    config = directory / f"{name}.yml"
    config.write_text("\n".join(lines) + "\n")
    log = directory / f"{name}.log"
    with log.open("wb") as out:
        return subprocess.Popen([registry_binary(), "serve", str(config)], stdout=out, stderr=subprocess.STDOUT)


def start(directory: Path, s3_port: int, oci_port: int, auth_port: int) -> list[subprocess.Popen[bytes]]:
    """Start the three stores; returns their processes (the caller stops them)."""
    from demo_pki import htpasswd, make_pki  # tools/demo_pki.py: this script's directory is on sys.path

    procs: list[subprocess.Popen[bytes]] = []
    try:
        moto = shutil.which("moto_server", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        if moto is None:
            raise StartError("moto_server is not installed (make .venv/.installed-stamp)")
        log = directory / "moto.log"
        with log.open("wb") as out:
            procs.append(
                subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(s3_port)], stdout=out, stderr=subprocess.STDOUT)
            )
        wait(f"http://127.0.0.1:{s3_port}/", procs[-1], log)
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{s3_port}",
            aws_access_key_id="test",  # moto takes any credentials
            aws_secret_access_key="test",  # noqa: S106 - moto's, not a secret
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket=BUCKET)
        print(f"s3://{BUCKET}  at http://127.0.0.1:{s3_port} (moto; any AWS credentials)", flush=True)

        procs.append(start_registry(directory, "registry", oci_port))
        wait(f"http://127.0.0.1:{oci_port}/v2/", procs[-1], directory / "registry.log")
        print(f"oci://127.0.0.1:{oci_port}  (plain HTTP, no login)", flush=True)

        pki = make_pki(directory / "pki")
        users = htpasswd(directory / "htpasswd", {USER: PASSWORD})
        procs.append(start_registry(directory, "registry-auth", auth_port, tls=(pki.cert, pki.key), htpasswd=users))
        wait(f"https://127.0.0.1:{auth_port}/v2/", procs[-1], directory / "registry-auth.log", pki.ca)
        print(
            f"oci://127.0.0.1:{auth_port}  (TLS, CA {pki.ca}; login {USER} / {PASSWORD}; another CA {pki.other_ca})",
            flush=True,
        )
    except BaseException:
        stop(procs)
        raise
    return procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    default_dir = Path(tempfile.gettempdir()) / "llmcc-stores"
    parser.add_argument("--dir", type=Path, default=default_dir, help=f"where everything goes (default {default_dir})")
    parser.add_argument("--s3-port", type=int, default=5055)
    parser.add_argument("--oci-port", type=int, default=5056)
    parser.add_argument("--oci-auth-port", type=int, default=5443)
    args = parser.parse_args(argv)
    directory = args.dir.resolve()
    if directory.exists() and any(directory.iterdir()) and not (directory / MARKER).exists():
        print(f"local-stores: {directory}: not empty and not made by local-stores; pass another --dir", file=sys.stderr)
        return 2
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    (directory / MARKER).touch()
    signal.signal(signal.SIGTERM, _terminated)
    try:
        procs = start(directory, args.s3_port, args.oci_port, args.oci_auth_port)
    except StartError as e:
        print(f"local-stores: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print("local-stores: ready; Ctrl-C stops them", flush=True)
    try:
        while all(proc.poll() is None for proc in procs):
            time.sleep(0.5)
        print("local-stores: a server exited; stopping the others", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    finally:
        stop(procs)


if __name__ == "__main__":
    raise SystemExit(main())
