#!/usr/bin/env bash
# Installs the test services that PyPI does not ship, so `make test` and `.ci/run` need only
# Python 3.11+, make and git on a fresh Debian machine. Everything else a test starts (the moto
# S3 server, OpenBao, sops) comes from PyPI wheels in .venv.
#
#   docker-registry  the CNCF distribution registry (Debian package), for the OCI store tests.
#
# As root it uses apt-get install; otherwise it unpacks the Debian package into .cache/services
# (apt-get download + dpkg-deb, no root needed), where tests/services.py looks for it.
set -euo pipefail
cd "$(dirname "$0")/.."
local_root=.cache/services

have_registry() {
  command -v docker-registry >/dev/null 2>&1 || [ -x /usr/bin/docker-registry ] \
    || [ -x "$local_root/usr/bin/docker-registry" ]
}

if have_registry; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-services: docker-registry is missing and apt-get is not available" >&2
  exit 1
fi
if [ "$(id -u)" = 0 ]; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get download -qq docker-registry >/dev/null)
  mkdir -p "$local_root"
  dpkg-deb -x "$work"/docker-registry_*.deb "$local_root"
fi
have_registry || { echo "install-services: docker-registry could not be installed" >&2; exit 1; }
