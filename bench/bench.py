#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""keel against HAProxy and nginx, side by side, in the same run (`make bench`).

Three `keel backend` processes serve; each proxy runs in front of the same three, with
keep-alive to them and no access log. For every (connections, proxy threads) configuration and
every round, each proxy is started fresh, warmed up, then loaded by wrk (2 threads, --latency).
Measured per run: req/s, latency p50/p99, the proxy's CPU time (utime+stime from /proc) per
request, and peak RSS (VmHWM). Rounds interleave the proxies (the order rotates each round) so
that drift in the machine hits all three alike. Medians per configuration are printed, then one
`RATIO keel/<other> <metric> c=<C> t=<T> <value>` line per comparison.

A report, never a test: it exits 0 unless a proxy failed to start or answer.

Environment: BENCH_STATIC ("1k 64k": files served by keel and nginx, "" to skip), BENCH_STATIC_CONNS ("64"),
BENCH_SECONDS (5), BENCH_ROUNDS (3), BENCH_CONNS ("64 256"),
BENCH_THREADS ("1 2"), BENCH_PROXIES ("keel haproxy nginx"), BENCH_PATH ("/"),
BENCH_WARMUP_SECONDS (1), KEEL_BIN (build/keel), BENCH_BACKEND_CMD (a template with {name}
and {port}, default "KEEL_BIN backend --quiet --name {name} --listen 127.0.0.1:{port}"),
BENCH_KEEP_TMP (keep the temp dir with configs and logs).
"""
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
KEEL = os.environ.get("KEEL_BIN", os.path.join(ROOT, "build", "keel"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
WARMUP = int(os.environ.get("BENCH_WARMUP_SECONDS", "1"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONNS = [int(x) for x in os.environ.get("BENCH_CONNS", "64 256").split()]
THREADS = [int(x) for x in os.environ.get("BENCH_THREADS", "1 2").split()]
PROXIES = os.environ.get("BENCH_PROXIES", "keel haproxy nginx").split()
PATH = os.environ.get("BENCH_PATH", "/")
BACKEND_CMD = os.environ.get(
    "BENCH_BACKEND_CMD",
    shlex.quote(KEEL) + " backend --quiet --name {name} --listen 127.0.0.1:{port}")
CLK_TCK = os.sysconf("SC_CLK_TCK")

TMP = tempfile.mkdtemp(prefix="keel-bench.")
# run.sh's trap kills the PIDs listed here if this script dies without cleaning up
PIDFILE = os.environ.get("BENCH_PIDFILE") or os.path.join(TMP, "pids")
children = []                           # every Popen we started, stopped by PID at exit


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# processes

def spawn(argv, name, **kw):
    out = open(os.path.join(TMP, name + ".log"), "ab")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                         start_new_session=True, **kw)
    out.close()
    children.append(p)
    record_pids()
    return p


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir("/proc/%d/task" % p)
        except OSError:
            continue
        for t in tasks:
            try:
                with open("/proc/%d/task/%s/children" % (p, t)) as f:
                    kids = [int(x) for x in f.read().split()]
            except OSError:
                continue
            for k in kids:
                if k not in out:
                    out.append(k)
                    todo.append(k)
    return out


def stop(p, timeout=10):
    """SIGTERM the process and its descendants (by PID), then SIGKILL what is left."""
    if p.poll() is not None:
        return
    pids = [p.pid] + descendants(p.pid)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        p.wait(5)
    # nginx workers exit after their master; make sure none outlives it
    deadline = time.monotonic() + 5
    for pid in pids[1:]:
        while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if os.path.exists("/proc/%d" % pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def record_pids():
    """Keep PIDFILE listing only children still running, so that run.sh's trap never
    signals a PID that has been reaped (and may since belong to someone else)."""
    with open(PIDFILE, "w") as f:
        for p in children:
            if p.poll() is None:
                f.write("%d\n" % p.pid)


def cleanup():
    for p in reversed(children):
        try:
            stop(p, timeout=5)
        except Exception as e:  # noqa: BLE001 - best effort, keep stopping the others
            log("bench: cleanup of %d: %r" % (p.pid, e))
    record_pids()
    if os.environ.get("BENCH_KEEP_TMP"):
        log("bench: temp dir kept: %s" % TMP)
    else:
        shutil.rmtree(TMP, ignore_errors=True)


def on_signal(signum, frame):
    raise SystemExit(128 + signum)


def ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError):
        return 32768


_next_port = [20000 + os.getpid() % 5000]


def free_port():
    """A free port below the ephemeral range (wrk and the proxies take source ports there)."""
    high = ephemeral_low()
    while _next_port[0] < high:
        port = _next_port[0]
        _next_port[0] += 1
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port")


def wait_http(port, proc, what, timeout=10.0):
    """Wait until GET PATH answers 200 through port; returns the X-Server header."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s; see its log:\n%s" % (
                what, proc.returncode, tail(what)))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                data = b""
                while b"\r\n\r\n" not in data:
                    d = s.recv(65536)
                    if not d:
                        break
                    data += d
            if data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.0 200"):
                m = re.search(rb"(?im)^x-server:\s*(\S+)", data)
                return m.group(1).decode() if m else "?"
            last = data[:80]
        except OSError as e:
            last = e
        time.sleep(0.05)
    raise RuntimeError("%s did not answer 200 on port %d (%r)" % (what, port, last))


def tail(name, n=20):
    try:
        with open(os.path.join(TMP, name + ".log"), errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------
# proxies: config + argv; each returns (Popen, port)

def start_keel(backends, threads):
    port = free_port()
    conf = os.path.join(TMP, "keel-t%d.conf" % threads)
    servers = "\n".join("    server %s 127.0.0.1:%d;" % (n, p) for n, p in backends)
    with open(conf, "w") as f:
        f.write("""global { workers %d; log_level warn; timeout_drain 1s; }
frontend bench {
    bind 127.0.0.1:%d;
    mode http;
    backend be;
    access_log off;
}
backend be {
    mode http;
    balance roundrobin;
%s
    keepalive 64;
}
""" % (threads, port, servers))
    return spawn([KEEL, "run", "-c", conf], "keel"), port


def start_haproxy(backends, threads):
    port = free_port()
    conf = os.path.join(TMP, "haproxy-t%d.cfg" % threads)
    servers = "\n".join("    server %s 127.0.0.1:%d" % (n, p) for n, p in backends)
    with open(conf, "w") as f:
        f.write("""global
    nbthread %d
    maxconn 4096
defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend bench
    bind 127.0.0.1:%d
    default_backend be
backend be
    balance roundrobin
%s
""" % (threads, port, servers))
    # -db: foreground, no daemon; http-reuse defaults to "safe" (keep-alive to the servers)
    return spawn(["haproxy", "-f", conf, "-db"], "haproxy"), port


def start_nginx(backends, threads):
    port = free_port()
    prefix = os.path.join(TMP, "nginx-t%d" % threads)
    os.makedirs(prefix, exist_ok=True)
    conf = os.path.join(prefix, "nginx.conf")
    servers = "\n".join("        server 127.0.0.1:%d;" % p for _, p in backends)
    with open(conf, "w") as f:
        f.write("""user root;
worker_processes %d;
worker_rlimit_nofile 20000;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 10000; }
http {
    access_log off;
    client_body_temp_path %s/client_body;
    proxy_temp_path %s/proxy;
    fastcgi_temp_path %s/fastcgi;
    uwsgi_temp_path %s/uwsgi;
    scgi_temp_path %s/scgi;
    upstream be {
%s
        keepalive 64;
    }
    server {
        listen 127.0.0.1:%d;
        location / {
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
""" % (threads, prefix, prefix, prefix, prefix, prefix, prefix, prefix, servers, port))
    argv = ["nginx", "-p", prefix + "/", "-e", prefix + "/error.log", "-c", conf,
            "-g", "daemon off;"]
    return spawn(argv, "nginx"), port


STARTERS = {"keel": start_keel, "haproxy": start_haproxy, "nginx": start_nginx}

# ---------------------------------------------------------------------------------------------
# static files: keel's web role against nginx, serving the same directory

STATIC = os.environ.get("BENCH_STATIC", "1k 64k").split()
STATIC_CONNS = [int(x) for x in os.environ.get("BENCH_STATIC_CONNS", "64").split()]


def static_root():
    root = os.path.join(TMP, "www")
    if not os.path.isdir(root):
        os.makedirs(root)
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write("bench\n")    # wait_http asks for /
        for size in STATIC:
            n = int(size[:-1]) * 1024 if size.endswith("k") else int(size)
            with open(os.path.join(root, "static-%s.bin" % size), "wb") as f:
                f.write(os.urandom(n))
    return root


def start_keel_static(backends, threads):
    port = free_port()
    conf = os.path.join(TMP, "keel-static-t%d.conf" % threads)
    with open(conf, "w") as f:
        f.write("""global { workers %d; log_level warn; timeout_drain 1s; }
frontend web {
    bind 127.0.0.1:%d;
    access_log off;
    location / { root %s; }
}
""" % (threads, port, static_root()))
    return spawn([KEEL, "run", "-c", conf], "keel"), port


def start_nginx_static(backends, threads):
    port = free_port()
    prefix = os.path.join(TMP, "nginx-static-t%d" % threads)
    os.makedirs(prefix, exist_ok=True)
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""user root;
worker_processes %d;
worker_rlimit_nofile 20000;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 10000; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path %s/client_body;
    proxy_temp_path %s/proxy;
    fastcgi_temp_path %s/fastcgi;
    uwsgi_temp_path %s/uwsgi;
    scgi_temp_path %s/scgi;
    server {
        listen 127.0.0.1:%d;
        location / { root %s; }
    }
}
""" % (threads, prefix, prefix, prefix, prefix, prefix, prefix, prefix, port, static_root()))
    argv = ["nginx", "-p", prefix + "/", "-e", prefix + "/error.log", "-c", conf,
            "-g", "daemon off;"]
    return spawn(argv, "nginx"), port


STATIC_STARTERS = {"keel": start_keel_static, "nginx": start_nginx_static}


def static_section():
    """keel vs nginx serving files; prints a table and RATIO keel/nginx static-SIZE lines."""
    if not STATIC or shutil.which("nginx") is None:
        return
    results = {}
    for rnd in range(ROUNDS):
        order = ["keel", "nginx"] if rnd % 2 == 0 else ["nginx", "keel"]
        for t in THREADS:
            for c in STATIC_CONNS:
                for size in STATIC:
                    for name in order:
                        r = one_run(name, [], c, t, STATIC_STARTERS[name],
                                    "/static-%s.bin" % size)
                        results.setdefault((name, size, c, t), []).append(r)
                        log("round %d %-6s static-%-4s c=%-4d t=%d %9.0f req/s  p99 %7.3f ms"
                            "  cpu %6.2f us/req  errors %d" % (
                                rnd + 1, name, size, c, t, r["rps"], r["p99"], r["cpu_us"],
                                r["errors"]))
    print()
    print("static files, medians of %d rounds, %ds each, wrk -t2" % (ROUNDS, SECONDS))
    print("%-8s %6s %5s %2s %11s %10s %12s %9s %7s" % (
        "server", "file", "conns", "t", "req/s", "p99 ms", "cpu us/req", "rss MiB", "errors"))
    med_of = {}
    for t in THREADS:
        for c in STATIC_CONNS:
            for size in STATIC:
                for name in ("keel", "nginx"):
                    runs = results[(name, size, c, t)]
                    m = {k: med([r[k] for r in runs]) for k in ("rps", "p99", "cpu_us", "rss_mib")}
                    m["errors"] = sum(r["errors"] for r in runs)
                    med_of[(name, size, c, t)] = m
                    print("%-8s %6s %5d %2d %11.0f %10.3f %12.2f %9.1f %7d" % (
                        name, size, c, t, m["rps"], m["p99"], m["cpu_us"], m["rss_mib"],
                        m["errors"]))
    print()
    for metric, key in (("req/s", "rps"), ("cpu/req", "cpu_us"), ("p99", "p99")):
        for t in THREADS:
            for c in STATIC_CONNS:
                for size in STATIC:
                    a = med_of[("keel", size, c, t)][key]
                    b = med_of[("nginx", size, c, t)][key]
                    ratio = a / b if b and b == b and a == a else float("nan")
                    print("RATIO keel/nginx static-%s %s c=%d t=%d %.2f" % (size, metric, c, t,
                                                                           ratio))


# ---------------------------------------------------------------------------------------------
# measurement

def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])    # utime, stime (fields 14, 15)
    return total


def vm_kib(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def proxy_pids(name, p):
    """CPU is summed over these: nginx master and workers; the single process otherwise."""
    return [p.pid] + (descendants(p.pid) if name == "nginx" else [])


def rss_pids(name, p):
    """Peak RSS is summed over these: nginx workers; the single process otherwise."""
    if name == "nginx":
        return descendants(p.pid) or [p.pid]
    return [p.pid]


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(text):
    m = re.match(r"^([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def run_wrk(port, conns, seconds, path=None):
    argv = ["wrk", "-t2", "-c%d" % conns, "-d%ds" % seconds, "--latency",
            "http://127.0.0.1:%d%s" % (port, path or PATH)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60).stdout
    res = {"requests": 0, "rps": 0.0, "p50": float("nan"), "p99": float("nan"), "errors": 0,
           "raw": out}
    m = re.search(r"(\d+) requests in", out)
    if m:
        res["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        res["rps"] = float(m.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+(\S+)" % pct, out, re.M)
        if m:
            res[key] = to_ms(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        res["errors"] += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        res["errors"] += int(m.group(1))
    return res


def one_run(name, backends, conns, threads, starter=None, path=None):
    p, port = (starter or STARTERS[name])(backends, threads)
    try:
        wait_http(port, p, name)
        if WARMUP > 0:
            run_wrk(port, conns, WARMUP, path)
        pids = proxy_pids(name, p)
        c0 = cpu_ticks(pids)
        w = run_wrk(port, conns, SECONDS, path)
        c1 = cpu_ticks(proxy_pids(name, p))
        rss = sum(vm_kib(pid, "VmHWM") for pid in rss_pids(name, p))
        if p.poll() is not None:
            raise RuntimeError("%s died during the run:\n%s" % (name, tail(name)))
    finally:
        stop(p)
        record_pids()
    cpu_s = (c1 - c0) / CLK_TCK
    w["cpu_us"] = cpu_s / w["requests"] * 1e6 if w["requests"] else float("nan")
    w["rss_mib"] = rss / 1024.0
    return w


# ---------------------------------------------------------------------------------------------
# report

def med(xs):
    xs = [x for x in xs if x == x]    # drop NaN
    return statistics.median(xs) if xs else float("nan")


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for tool in ["wrk"] + [x for x in PROXIES if x != "keel"]:
        if shutil.which(tool) is None:
            log("bench: %s not found (scripts/deps.sh installs it)" % tool)
            return 1
    if "keel" in PROXIES and not os.access(KEEL, os.X_OK):
        log("bench: %s not built" % KEEL)
        return 1
    backends = []
    for name in ("a", "b", "c"):
        port = free_port()
        argv = shlex.split(BACKEND_CMD.format(name=name, port=port))
        p = spawn(argv, "backend-" + name)
        wait_http(port, p, "backend-" + name)
        backends.append((name, port))
    log("bench: backends %s; %ds runs, %d rounds, c=%s, t=%s; temp %s" % (
        backends, SECONDS, ROUNDS, CONNS, THREADS, TMP))

    results = {}    # (proxy, c, t) -> [run dicts]
    for rnd in range(ROUNDS):
        order = PROXIES[rnd % len(PROXIES):] + PROXIES[:rnd % len(PROXIES)]
        for t in THREADS:
            for c in CONNS:
                for name in order:
                    r = one_run(name, backends, c, t)
                    results.setdefault((name, c, t), []).append(r)
                    log("round %d %-8s c=%-4d t=%d  %9.0f req/s  p50 %7.3f ms  p99 %7.3f ms"
                        "  cpu %6.2f us/req  rss %6.1f MiB  errors %d" % (
                            rnd + 1, name, c, t, r["rps"], r["p50"], r["p99"], r["cpu_us"],
                            r["rss_mib"], r["errors"]))

    print()
    print("medians of %d rounds, %ds each, wrk -t2, path %s" % (ROUNDS, SECONDS, PATH))
    print("%-8s %5s %2s %11s %10s %10s %12s %9s %7s" % (
        "proxy", "conns", "t", "req/s", "p50 ms", "p99 ms", "cpu us/req", "rss MiB", "errors"))
    medians = {}
    for t in THREADS:
        for c in CONNS:
            for name in PROXIES:
                runs = results[(name, c, t)]
                m = {k: med([r[k] for r in runs]) for k in ("rps", "p50", "p99", "cpu_us",
                                                            "rss_mib")}
                m["errors"] = sum(r["errors"] for r in runs)
                medians[(name, c, t)] = m
                print("%-8s %5d %2d %11.0f %10.3f %10.3f %12.2f %9.1f %7d" % (
                    name, c, t, m["rps"], m["p50"], m["p99"], m["cpu_us"], m["rss_mib"],
                    m["errors"]))
    print()
    if "keel" in PROXIES:
        for other in [x for x in PROXIES if x != "keel"]:
            for metric, key in (("req/s", "rps"), ("cpu/req", "cpu_us"), ("p99", "p99"),
                                ("rss", "rss_mib")):
                for t in THREADS:
                    for c in CONNS:
                        a, b = medians[("keel", c, t)][key], medians[(other, c, t)][key]
                        ratio = a / b if b and b == b and a == a else float("nan")
                        print("RATIO keel/%s %s c=%d t=%d %.2f" % (other, metric, c, t, ratio))
    static_section()
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
