#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""keel against HAProxy and nginx, side by side, in the same run (`make bench`).

Method and fairness choices: bench/README.md. In short: three nginx backends (1 worker each,
a small fixed body, connections never recycled) serve; keel, HAProxy and nginx proxy to them,
each tuned as its documentation recommends (bench/configs.py cites the pages), with the same
number of workers/threads and keep-alive to the servers. For every load point (connections x
wrk threads x proxy workers) the proxies run back to back, in an order that rotates, each
started fresh, warmed up, then loaded by wrk --latency. Measured per run: req/s, p50/p99
latency, CPU time per request (utime+stime from /proc/<pid>/stat of the proxy and all its
processes and threads, over the run), peak RSS, and the server connections the proxy opened
during the run (the backends' stub_status accept counters; 0 once its pool holds the load). Then keel's web role against nginx serving
static files, the memory each proxy takes per idle keep-alive client connection, and the
proxies terminating TLS with the same certificate (ECDSA P-256, RSA 2048): requests over
kept-alive TLS connections (wrk https), full and resumed handshakes per second (tls_load.c,
one request per connection; a resumed rate only where the server resumed the sessions).

Output: one table per section, then `RATIO keel/<peer> <metric> <point> <value>` lines and,
per point, keel against the better peer (the one with more req/s).

A report, never a test: exits 0 unless a server failed to start or answer.

Environment (defaults in brackets):
  BENCH_SECONDS [10]       wrk duration per run     BENCH_WARMUP_SECONDS [1]  wrk warm-up
  BENCH_ROUNDS [2]         runs per point (median)  BENCH_PAUSE [0]  seconds idle between runs
  BENCH_CONNS ["64 256 1000"]  BENCH_THREADS ["1 2"] (wrk -t)  BENCH_WORKERS ["1"] (proxies)
  BENCH_PROXIES ["keel haproxy nginx"]  BENCH_PATH ["/"]
  BENCH_STATIC ["1k 64k"] ("" skips)  BENCH_STATIC_CONNS ["64 256"]
  BENCH_IDLE_CONNS [9000] ("0" skips)  BENCH_SECTIONS ["proxy static idle tls"]
  BENCH_TLS_KEYS ["ecdsa rsa"]  BENCH_TLS_MODES ["ka new resume"]  BENCH_TLS_CONNS ["64 256"]
  BENCH_TLS_THREADS ["2"] (wrk -t over kept-alive TLS)  BENCH_TLS_CLIENTS ["8"] (tls_load
  threads for new and resumed handshakes)
  BENCH_KEEL_KEEPALIVE (keel's keepalive; default: the connection count, as nginx's pool)
  KEEL_BIN [build/keel]    KEEL_BASE_BIN (adds "keel-base", another build, to every section:
                           a before/after comparison measured interleaved in the same run)
  BENCH_KEEP_TMP (keep the temp dir with configs and logs)
"""
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time

from benchlib import (CLK_TCK, TMP, accepts, cleanup, cpu_ticks, descendants, log, mem_kib,
                      record_pids, spawn, status_kib, stop, tail, wait_http, run_wrk)
import configs

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def env_list(name, default, conv=str):
    return [conv(x) for x in os.environ.get(name, default).split()]


SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
WARMUP = int(os.environ.get("BENCH_WARMUP_SECONDS", "1"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
PAUSE = float(os.environ.get("BENCH_PAUSE", "0"))
CONNS = env_list("BENCH_CONNS", "64 256 1000", int)
THREADS = env_list("BENCH_THREADS", "1 2", int)
WORKERS = env_list("BENCH_WORKERS", "1", int)
PATH = os.environ.get("BENCH_PATH", "/")
STATIC = env_list("BENCH_STATIC", "1k 64k")
STATIC_CONNS = env_list("BENCH_STATIC_CONNS", "64 256", int)
IDLE_CONNS = int(os.environ.get("BENCH_IDLE_CONNS", "9000"))
SECTIONS = env_list("BENCH_SECTIONS", "proxy static idle tls")
TLS_KEYS = env_list("BENCH_TLS_KEYS", "ecdsa rsa")
TLS_MODES = env_list("BENCH_TLS_MODES", "ka new resume")
TLS_CONNS = env_list("BENCH_TLS_CONNS", "64 256", int)
TLS_THREADS = env_list("BENCH_TLS_THREADS", "2", int)
TLS_CLIENTS = env_list("BENCH_TLS_CLIENTS", "8", int)
# a resumed-handshake rate is reported only when the server resumed at least this share of
# the sessions offered
TLS_MIN_RESUMED = 0.99

# name -> (kind, binary); "keel-base" is a second keel build measured alongside
BINARIES = {"keel": ("keel", os.environ.get("KEEL_BIN", os.path.join(ROOT, "build", "keel"))),
            "haproxy": ("haproxy", "haproxy"), "nginx": ("nginx", "nginx")}
PROXIES = env_list("BENCH_PROXIES", "keel haproxy nginx")
if os.environ.get("KEEL_BASE_BIN"):
    BINARIES["keel-base"] = ("keel", os.environ["KEEL_BASE_BIN"])
    PROXIES.insert(PROXIES.index("keel") + 1 if "keel" in PROXIES else 0, "keel-base")
PEERS = [p for p in PROXIES if BINARIES[p][0] != "keel"]

_last_load_end = [0.0]


def pace():
    """BENCH_PAUSE: leave the machine idle between two loaded runs (a shared machine)."""
    wait = _last_load_end[0] + PAUSE - time.monotonic()
    if PAUSE > 0 and wait > 0:
        time.sleep(wait)


def sized(conns):
    """Connection ceilings and idle server pools for a load of `conns` client connections:
    every proxy may hold all of them, and keep one idle server connection per client."""
    return {"conns": conns, "maxconn": max(4096, conns + 1000), "pool": max(64, conns)}


def proc_pids(p):
    return [p.pid] + descendants(p.pid)


def worker_pids(name, p):
    """Memory is summed over these: nginx's workers (the master holds no connection), the
    single process otherwise."""
    if BINARIES[name][0] == "nginx":
        return descendants(p.pid) or [p.pid]
    return [p.pid]


def one_run(name, start, conns, threads, path, ports=(), load=None, tls=False):
    """Start `name` via start(binary, logname) -> (Popen, port), load it, stop it. ports: the
    backends whose accepted connections count the server connections the proxy opened during
    the measured interval (a pool smaller than the load reconnects all the time). load:
    load(port, seconds) -> the result of run_wrk or an equivalent (requests, rps, p50, p99,
    errors); wrk by default. tls: the server speaks TLS (its readiness is asked over TLS)."""
    kind, binary = BINARIES[name]
    if load is None:
        def load(port, seconds):
            return run_wrk(port, conns, threads, seconds, path)
    pace()
    p, port = start(binary, name)
    try:
        wait_http(port, p, name, path, tls=tls)
        if WARMUP > 0:
            load(port, WARMUP)
        a0 = accepts(ports) if ports else None
        c0 = cpu_ticks(proc_pids(p))
        w = load(port, SECONDS)
        c1 = cpu_ticks(proc_pids(p))
        a1 = accepts(ports) if ports else None
        _last_load_end[0] = time.monotonic()
        rss = sum(status_kib(pid, "VmHWM") for pid in worker_pids(name, p))
        if p.poll() is not None:
            raise RuntimeError("%s died during the run:\n%s" % (name, tail(name)))
    finally:
        stop(p)
        record_pids()
    w["cpu_us"] = (c1 - c0) / CLK_TCK / w["requests"] * 1e6 if w["requests"] \
        else float("nan")
    w["rss_mib"] = rss / 1024.0
    # a1 counts its own connections to the backends, one each
    w["srv_conns"] = a1 - a0 - len(ports) if a0 is not None and a1 is not None \
        else float("nan")
    return w


def med(xs):
    xs = [x for x in xs if x == x]    # drop NaN
    return statistics.median(xs) if xs else float("nan")


def ratio(a, b):
    return a / b if b and b == b and a == a else float("nan")


def medians(runs):
    m = {k: med([r[k] for r in runs]) for k in ("rps", "p50", "p99", "cpu_us", "rss_mib",
                                                "srv_conns")}
    m["errors"] = sum(r["errors"] for r in runs)
    if any(r.get("offered") for r in runs):    # resumed handshakes: the share the server took
        offered = sum(r.get("offered", 0) for r in runs)
        m["resumed"] = sum(r.get("reused", 0) for r in runs) / offered if offered \
            else float("nan")
    return m


def print_table(title, label, points, names, med_of):
    print()
    print(title)
    print("%-10s %-20s %11s %9s %9s %11s %8s %6s %9s" % (
        label, "point", "req/s", "p50 ms", "p99 ms", "cpu us/req", "rss MiB", "errors",
        "srv conns"))
    for pt in points:
        for name in names:
            m = med_of[(name,) + pt[1:]]
            print("%-10s %-20s %11.0f %9.3f %9.3f %11.2f %8.1f %6d %9.0f" % (
                name, pt[0], m["rps"], m["p50"], m["p99"], m["cpu_us"], m["rss_mib"],
                m["errors"], m["srv_conns"]))


def print_ratios(prefix, points, keels, peers, med_of):
    """RATIO lines for keel against every peer and every other keel build (keel-base), then
    keel against the best peer of each point (more req/s); cpu/req and p99 below 1 are
    better for keel."""
    print()
    for k in [x for x in keels if x == "keel"]:
        for other in peers + [x for x in keels if x != k]:
            for metric, key in (("req/s", "rps"), ("cpu/req", "cpu_us"), ("p99", "p99")):
                for pt in points:
                    print("RATIO %s/%s %s%s %s %.2f" % (
                        k, other, prefix, metric, pt[0],
                        ratio(med_of[(k,) + pt[1:]][key], med_of[(other,) + pt[1:]][key])))
    if "keel" not in keels or not peers:
        return
    print()
    print("keel against the better peer (x = keel/peer; goal: req/s >= 1.1, cpu/req <= 0.9,"
          " p99 <= 1.0)")
    print("%-24s %-8s %9s %9s %9s" % ("point", "peer", "req/s x", "cpu/req x", "p99 x"))
    for pt in points:
        # a peer without a rate (it did not resume) is never the better one
        measured = [o for o in peers if med_of[(o,) + pt[1:]]["rps"] ==
                    med_of[(o,) + pt[1:]]["rps"]]
        if not measured:
            print("%-24s %-8s %9s" % (prefix + pt[0], "-", "no peer measured"))
            continue
        best = max(measured, key=lambda o: med_of[(o,) + pt[1:]]["rps"])
        k, b = med_of[("keel",) + pt[1:]], med_of[(best,) + pt[1:]]
        print("%-24s %-8s %9.2f %9.2f %9.2f" % (
            prefix + pt[0], best, ratio(k["rps"], b["rps"]), ratio(k["cpu_us"], b["cpu_us"]),
            ratio(k["p99"], b["p99"])))


def run_matrix(section, names, points, starter_for, path_for, ports=(), load_for=None,
               tls=False):
    """Every point, ROUNDS times, the names back to back in an order that rotates with the
    round and the point, so that drift hits all alike. Returns medians per (name,)+point.
    load_for(pt): the point's load (one_run's load; None: wrk)."""
    results = {}
    for rnd in range(ROUNDS):
        for i, pt in enumerate(points):
            shift = (rnd + i) % len(names)
            for name in names[shift:] + names[:shift]:
                r = one_run(name, starter_for(name, pt), pt[2], pt[3], path_for(pt), ports,
                            load=load_for(pt) if load_for else None, tls=tls)
                results.setdefault((name,) + pt[1:], []).append(r)
                log("%s round %d %-9s %-20s %9.0f req/s  p99 %7.3f ms  cpu %6.2f us/req"
                    "  rss %6.1f MiB  errors %d  srv conns %.0f%s" % (
                        section, rnd + 1, name, pt[0], r["rps"], r["p99"], r["cpu_us"],
                        r["rss_mib"], r["errors"], r["srv_conns"],
                        "  resumed %d/%d" % (r["reused"], r["offered"]) if "offered" in r
                        else "") + ("  [%s]" % r["info"] if "info" in r else ""))
    return {k: medians(v) for k, v in results.items()}


# ---------------------------------------------------------------------------------------------
# sections

def proxy_section(backends):
    points = [("c=%d t=%d w=%d" % (c, t, w), w, c, t) for w in WORKERS for c in CONNS
              for t in THREADS if t <= c]

    def starter_for(name, pt):
        kind = BINARIES[name][0]
        return lambda binary, logname: configs.PROXY_STARTERS[kind](
            binary, logname, backends, pt[1], sized(pt[2]))
    med_of = run_matrix("proxy", PROXIES, points, starter_for, lambda pt: PATH,
                        [port for _, port in backends])
    print_table("proxy, path %s, medians of %d rounds of %ds" % (PATH, ROUNDS, SECONDS),
                "proxy", points, PROXIES, med_of)
    print_ratios("", points, [p for p in PROXIES if BINARIES[p][0] == "keel"], PEERS, med_of)


# ---------------------------------------------------------------------------------------------
# TLS termination: the proxies of the proxy section with a TLS listener, the same certificate
# for all three (ECDSA P-256, RSA 2048), made here by openssl.

def tls_material():
    """{key type: {"cert", "key", "pem" (certificate then key: HAProxy's crt)}}, self-signed
    for bench.test, and the tls_load client compiled from bench/tls_load.c."""
    d = os.path.join(TMP, "tls")
    os.makedirs(d, exist_ok=True)
    out = {}
    for kind in TLS_KEYS:
        newkey = {"ecdsa": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
                  "rsa": ["-newkey", "rsa:2048"]}[kind]
        cert, key, pem = (os.path.join(d, kind + ext) for ext in (".crt", ".key", ".pem"))
        subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "7", "-subj",
                        "/CN=bench.test", "-addext", "subjectAltName=DNS:bench.test",
                        "-keyout", key, "-out", cert] + newkey, check=True,
                       capture_output=True, timeout=60)
        with open(pem, "w") as f:
            f.write(open(cert).read() + open(key).read())
        out[kind] = {"cert": cert, "key": key, "pem": pem}
    binary = os.path.join(TMP, "tls_load")
    subprocess.run(["cc", "-O2", "-o", binary, os.path.join(ROOT, "bench", "tls_load.c"),
                    "-lssl", "-lcrypto", "-pthread"], check=True, capture_output=True,
                   timeout=120)
    return out, binary


def tls_load(binary, mode, clients):
    """A load for one_run: tls_load with `clients` threads, `mode` new or resume."""
    def load(port, seconds):
        r = subprocess.run([binary, "127.0.0.1", str(port), "bench.test", "/", str(seconds),
                            str(clients), mode], capture_output=True, text=True,
                           timeout=seconds + 60)
        words = r.stdout.split()
        kv = dict(zip(words[0::2], words[1::2]))
        if r.returncode != 0 or "conns" not in kv:
            raise RuntimeError("tls_load failed: %s%s" % (r.stdout, r.stderr))
        secs = float(kv["secs"]) or float(seconds)
        return {"requests": int(kv["conns"]), "rps": int(kv["conns"]) / secs,
                "p50": float(kv["p50_ms"]), "p99": float(kv["p99_ms"]),
                "errors": int(kv["errors"]), "reused": int(kv["reused"]),
                "offered": int(kv["offered"]),
                "info": " ".join("%s %s" % (k, kv.get(k, "?"))
                                 for k in ("version", "cipher", "group", "key", "bits"))}
    return load


def tls_section(backends):
    material, binary = tls_material()
    points = []
    for kind in TLS_KEYS:
        for w in WORKERS:
            if "ka" in TLS_MODES:
                points += [("ka %s c=%d t=%d w=%d" % (kind, c, t, w), w, c, t, kind, "ka")
                           for c in TLS_CONNS for t in TLS_THREADS if t <= c]
            for mode in ("new", "resume"):
                if mode in TLS_MODES:
                    points += [("%s %s n=%d w=%d" % (mode, kind, n, w), w, n, 0, kind, mode)
                               for n in TLS_CLIENTS]

    def starter_for(name, pt):
        kind = BINARIES[name][0]
        size = dict(sized(pt[2]), tls=material[pt[4]], http_reuse="always")
        return lambda binary_, logname: configs.PROXY_STARTERS[kind](
            binary_, logname, backends, pt[1], size)

    def load_for(pt):
        if pt[5] == "ka":
            return lambda port, seconds: run_wrk(port, pt[2], pt[3], seconds, PATH, "https")
        return tls_load(binary, pt[5], pt[2])
    med_of = run_matrix("tls", PROXIES, points, starter_for, lambda pt: PATH,
                        [port for _, port in backends], load_for=load_for, tls=True)
    # a resumed rate counts only where the server resumed (nearly) every session offered
    for key, m in med_of.items():
        if key[-1] == "resume" and not m.get("resumed", float("nan")) >= TLS_MIN_RESUMED:
            log("tls: %s resumed %.1f%% of the sessions offered at %s: no rate reported" % (
                key[0], 100 * m["resumed"], key[1:]))
            for k in ("rps", "p50", "p99", "cpu_us"):
                m[k] = float("nan")
    print_table("TLS termination (ka: wrk over kept-alive TLS, req/s; new/resume: tls_load, "
                "one request per connection, handshakes/s; cpu us per request or handshake), "
                "medians of %d rounds of %ds" % (ROUNDS, SECONDS), "proxy", points, PROXIES,
                med_of)
    print()
    print("resumed handshakes: the share of offered sessions each server resumed")
    for pt in [p for p in points if p[5] == "resume"]:
        print("%-20s %s" % (pt[0], "  ".join(
            "%s %.1f%%" % (name, 100 * med_of[(name,) + pt[1:]].get("resumed", float("nan")))
            for name in PROXIES)))
    print_ratios("tls-", points, [p for p in PROXIES if BINARIES[p][0] == "keel"], PEERS,
                 med_of)


def static_root():
    root = os.path.join(TMP, "www")
    if not os.path.isdir(root):
        os.makedirs(root)
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write("bench\n")
        for size in STATIC:
            n = int(size[:-1]) * 1024 if size.endswith("k") else int(size)
            with open(os.path.join(root, "static-%s.bin" % size), "wb") as f:
                f.write(os.urandom(n))
    return root


def static_section():
    names = [p for p in PROXIES if BINARIES[p][0] in configs.STATIC_STARTERS]
    if not STATIC or "nginx" not in names:
        return
    root = static_root()
    points = [("%s c=%d t=%d w=%d" % (s, c, t, w), w, c, t, s) for s in STATIC
              for w in WORKERS for c in STATIC_CONNS for t in THREADS if t <= c]

    def starter_for(name, pt):
        kind = BINARIES[name][0]
        return lambda binary, logname: configs.STATIC_STARTERS[kind](
            binary, logname, root, pt[1], sized(pt[2]))
    med_of = run_matrix("static", names, points, starter_for,
                        lambda pt: "/static-%s.bin" % pt[4])
    print_table("static files, medians of %d rounds of %ds" % (ROUNDS, SECONDS), "server",
                points, names, med_of)
    keels = [p for p in names if BINARIES[p][0] == "keel"]
    print_ratios("static-", points, keels, ["nginx"], med_of)


def settle(pids, timeout=10.0):
    """Wait until the RSS of pids stops moving (two readings 0.5 s apart within 64 KiB)."""
    deadline = time.monotonic() + timeout
    prev = mem_kib(pids)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        cur = mem_kib(pids)
        if abs(cur[0] - prev[0]) <= 64:
            return cur
        prev = cur
    return prev


def idle_one(name, backends, n):
    kind, binary = BINARIES[name]
    size = {"conns": n, "maxconn": n + 500, "pool": 64}
    pace()
    p, port = configs.PROXY_STARTERS[kind](binary, name, backends, WORKERS[0], size)
    client = None
    try:
        wait_http(port, p, name)
        pids = worker_pids(name, p)
        before = settle(pids)
        client = spawn([sys.executable, os.path.join(ROOT, "bench", "idle_clients.py"),
                        str(port), str(n)], "idle-" + name, stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE)
        ready, _, _ = select.select([client.stdout], [], [], 120)
        line = client.stdout.readline().decode().split() if ready else []
        _last_load_end[0] = time.monotonic()
        if len(line) != 3 or line[0] != "ready":
            raise RuntimeError("idle clients did not get ready: %r\n%s" % (
                line, tail("idle-" + name)))
        ok, failed = int(line[1]), int(line[2])
        after = settle(pids)
    finally:
        if client is not None:
            client.stdin.close()
            stop(client)
        stop(p)
        record_pids()
    return {"ok": ok, "failed": failed, "rss0": before[0], "rss1": after[0],
            "pss0": before[1], "pss1": after[1]}


def idle_section(backends):
    if IDLE_CONNS <= 0:
        return
    res = {}
    for name in PROXIES:
        r = idle_one(name, backends, IDLE_CONNS)
        res[name] = r
        log("idle %-9s %d ok %d failed  rss %.1f -> %.1f MiB  pss %.1f -> %.1f MiB" % (
            name, r["ok"], r["failed"], r["rss0"] / 1024, r["rss1"] / 1024, r["pss0"] / 1024,
            r["pss1"] / 1024))
    print()
    print("memory per idle keep-alive client connection (%d connections, one request each, "
          "w=%d)" % (IDLE_CONNS, WORKERS[0]))
    print("%-10s %8s %8s %10s %10s %12s %12s" % (
        "proxy", "ok", "failed", "rss0 MiB", "rss1 MiB", "rss KiB/conn", "pss KiB/conn"))
    per = {}
    for name, r in res.items():
        n = max(r["ok"] + r["failed"], 1)
        per[name] = ((r["rss1"] - r["rss0"]) / n, (r["pss1"] - r["pss0"]) / n)
        print("%-10s %8d %8d %10.1f %10.1f %12.2f %12.2f" % (
            name, r["ok"], r["failed"], r["rss0"] / 1024, r["rss1"] / 1024, per[name][0],
            per[name][1]))
    print()
    for k in [p for p in PROXIES if BINARIES[p][0] == "keel"]:
        for other in [p for p in PROXIES if p != k]:
            print("RATIO %s/%s idle-rss/conn %.2f" % (k, other, ratio(per[k][0],
                                                                        per[other][0])))


def main():
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(128 + s))
    signal.signal(signal.SIGINT, lambda s, f: sys.exit(128 + s))
    for name in PROXIES:
        kind, binary = BINARIES[name]
        if kind == "keel" and not os.access(binary, os.X_OK):
            log("bench: %s not built" % binary)
            return 1
        if kind != "keel" and shutil.which(binary) is None:
            log("bench: %s not found (scripts/deps.sh installs it)" % binary)
            return 1
    for tool in ("wrk", "nginx") + (("openssl", "cc") if "tls" in SECTIONS else ()):
        if shutil.which(tool) is None:
            log("bench: %s not found (scripts/deps.sh installs it)" % tool)
            return 1
    backends = []
    for name in ("a", "b", "c"):
        p, port = configs.start_backend(name)
        wait_http(port, p, "backend-" + name)
        backends.append((name, port))
    npts = len(WORKERS) * sum(1 for c in CONNS for t in THREADS if t <= c)
    nstat = len(STATIC) * len(WORKERS) * sum(1 for c in STATIC_CONNS for t in THREADS if t <= c)
    ntls = len(TLS_KEYS) * len(WORKERS) * (
        ("ka" in TLS_MODES) * sum(1 for c in TLS_CONNS for t in TLS_THREADS if t <= c) +
        (("new" in TLS_MODES) + ("resume" in TLS_MODES)) * len(TLS_CLIENTS))
    est = ROUNDS * (SECONDS + WARMUP + 1 + PAUSE) * (
        npts * len(PROXIES) * ("proxy" in SECTIONS) +
        nstat * (1 + ("keel-base" in PROXIES) + 1) * ("static" in SECTIONS) +
        ntls * len(PROXIES) * ("tls" in SECTIONS))
    log("bench: nginx backends %s; %ds runs, %d rounds, conns %s, wrk threads %s, workers %s;"
        " about %d min; temp %s" % (backends, SECONDS, ROUNDS, CONNS, THREADS, WORKERS,
                                    est / 60 + 1, TMP))
    if "proxy" in SECTIONS:
        proxy_section(backends)
    if "static" in SECTIONS:
        static_section()
    if "idle" in SECTIONS:
        idle_section(backends)
    if "tls" in SECTIONS:
        tls_section(backends)
    return 0


if __name__ == "__main__":
    rc = 1
    try:
        rc = main()
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    except Exception as e:  # noqa: BLE001 - report, clean up, fail
        log("bench: %s" % e)
        rc = 1
    finally:
        cleanup()
    sys.exit(rc)
