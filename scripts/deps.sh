#!/bin/sh
# SPDX-License-Identifier: MIT
# Install the Debian packages keel needs to build, test and benchmark.
# Idempotent: a fast no-op when everything is already installed.
set -eu
PKGS="build-essential pkg-config libssl-dev libpq-dev libcriterion-dev clang
libfuzzer-14-dev libclang-rt-14-dev haproxy keepalived postgresql etcd-server nginx wrk curl python3-pytest
python3-psycopg2
iproute2 procps nftables strace prometheus pebble openssl testssl.sh"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    exit 0
fi
echo "deps: installing$missing" >&2
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: must run as root to install:$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || apt-get update
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
