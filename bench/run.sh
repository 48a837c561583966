#!/bin/sh
# SPDX-License-Identifier: MIT
# `make bench`: keel against HAProxy and nginx in front of the same three nginx backends, keel
# against nginx serving files, and memory per idle connection; bench/README.md explains the
# method, bench/bench.py lists the BENCH_* knobs. A report, not a test.
set -u
cd "$(dirname "$0")/.." || exit 2
# wrk at c=1000, the idle clients and the proxies need a few fds per connection; 20000 is the
# ceiling here.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
pid=""
pidfile=$(mktemp "${TMPDIR:-/tmp}/keel-bench-pids.XXXXXX") || exit 2
cleanup() {
    # bench.py stops its own children; if it died hard, stop whatever it recorded, by PID.
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    while read -r p; do
        kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
    done <"$pidfile"
    rm -f "$pidfile"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
BENCH_PIDFILE=$pidfile /usr/bin/python3 bench/bench.py "$@" &
pid=$!
wait "$pid"
rc=$?
pid=""
exit "$rc"
