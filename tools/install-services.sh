#!/usr/bin/env bash
# Installs the test services that PyPI does not ship, so `make test` and `.ci/run` need only
# Python 3.11+, make and git on a fresh Debian machine. Everything else a test starts (the moto
# S3 server, OpenBao, sops) comes from PyPI wheels in .venv.
#
#   docker-registry  the CNCF distribution registry (Debian package), for the OCI store tests.
#   wrk              the HTTP load generator `make bench` drives the sidecar with
#                    (`tools/install-services.sh wrk`; bench/agent.py).
#
# Usage: tools/install-services.sh [PACKAGE] (default docker-registry; the package's binary has
# its name). As root it uses apt-get install; otherwise it unpacks the Debian package into
# .cache/services (apt-get download + dpkg-deb, no root needed), where tests/services.py and the
# Makefile's bench target look for it.
set -euo pipefail
cd "$(dirname "$0")/.."
local_root=.cache/services

pkg=${1:-docker-registry}
case "$pkg" in
  docker-registry|wrk) ;;
  *) echo "install-services: unknown package $pkg (docker-registry, wrk)" >&2; exit 2 ;;
esac

have_registry() {
  command -v "$pkg" >/dev/null 2>&1 || [ -x "/usr/bin/$pkg" ] || [ -x "$local_root/usr/bin/$pkg" ]
}

if have_registry; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-services: $pkg is missing and apt-get is not available" >&2
  exit 1
fi
if [ "$(id -u)" = 0 ]; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get download -qq "$pkg" >/dev/null)
  mkdir -p "$local_root"
  dpkg-deb -x "$work/${pkg}"_*.deb "$local_root"
fi
have_registry || { echo "install-services: $pkg could not be installed" >&2; exit 1; }
