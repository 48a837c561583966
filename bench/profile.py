#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Where keel's CPU goes under load: `perf record -g` on keel while wrk loads it through to
the same nginx backends as `make bench` (bench/configs.py), then `perf report --no-children`.

    bench/profile.py [OUT_DIR]

Environment: PROFILE_CONNS [256], PROFILE_THREADS [2] (wrk -t), PROFILE_WORKERS [1],
PROFILE_SECONDS [15], PROFILE_PROXY [keel] (or haproxy, nginx: the same for a peer),
KEEL_BIN [build/keel; a build with -fno-omit-frame-pointer gives whole call paths:
make BUILD=build-prof OPT="-O2 -g -fno-omit-frame-pointer"].
Writes OUT_DIR/perf.data (default: a temp dir, printed) and prints the top of the report.
Run it as root or with perf_event_paranoid <= 1. Not a test.
"""
import os
import subprocess
import sys
import time

from benchlib import TMP, cleanup, descendants, log, run_wrk, stop, wait_http
import configs

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def main():
    out = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else TMP
    os.makedirs(out, exist_ok=True)
    conns = int(os.environ.get("PROFILE_CONNS", "256"))
    threads = int(os.environ.get("PROFILE_THREADS", "2"))
    workers = int(os.environ.get("PROFILE_WORKERS", "1"))
    seconds = int(os.environ.get("PROFILE_SECONDS", "15"))
    proxy = os.environ.get("PROFILE_PROXY", "keel")
    binary = os.environ.get("KEEL_BIN", os.path.join(ROOT, "build", "keel")) \
        if proxy == "keel" else proxy
    backends = []
    for name in ("a", "b", "c"):
        p, port = configs.start_backend(name)
        wait_http(port, p, "backend-" + name)
        backends.append((name, port))
    size = {"conns": conns, "maxconn": max(4096, conns + 1000), "pool": max(64, conns)}
    p, port = configs.PROXY_STARTERS[proxy](binary, proxy, backends, workers, size)
    wait_http(port, p, proxy)
    run_wrk(port, conns, threads, 1, "/")
    pids = ",".join(str(x) for x in [p.pid] + descendants(p.pid))
    data = os.path.join(out, "perf.data")
    perf = subprocess.Popen(["perf", "record", "-g", "-o", data, "-p", pids, "--",
                             "sleep", str(seconds)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(0.2)
    w = run_wrk(port, conns, threads, seconds, "/")
    perf.wait(seconds + 30)
    stop(p)
    log("profile: %s c=%d t=%d w=%d: %.0f req/s, p99 %.3f ms; %s" % (
        proxy, conns, threads, workers, w["rps"], w["p99"], data))
    rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio",
                          "--percent-limit", "1", "-g", "caller,0.5,callee", "--sort",
                          "symbol"], capture_output=True, text=True)
    print(rep.stdout)
    return 0


if __name__ == "__main__":
    rc = 1
    try:
        rc = main()
    finally:
        if len(sys.argv) < 2:
            os.environ["BENCH_KEEP_TMP"] = "1"    # keep perf.data
        cleanup()
    sys.exit(rc)
