# SPDX-License-Identifier: MIT
"""Helpers for bench/bench.py: child processes stopped by PID, free ports, readiness, /proc
readings (CPU ticks, RSS, PSS) and wrk runs. No policy here: bench.py decides what to run."""
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
TMP = tempfile.mkdtemp(prefix="keel-bench.")
# run.sh's trap kills the PIDs listed here if bench.py dies without cleaning up
PIDFILE = os.environ.get("BENCH_PIDFILE") or os.path.join(TMP, "pids")
children = []                           # every Popen we started, stopped by PID at exit


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# processes

def spawn(argv, name, **kw):
    out = open(os.path.join(TMP, name + ".log"), "ab")
    p = subprocess.Popen(argv, stdin=kw.pop("stdin", subprocess.DEVNULL), stdout=kw.pop(
        "stdout", out), stderr=out, start_new_session=True, **kw)
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


def _kill(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def stop(p, timeout=10):
    """SIGTERM the process and its descendants (by PID), then SIGKILL what is left."""
    if p.poll() is not None:
        return
    pids = [p.pid] + descendants(p.pid)
    _kill(pids, signal.SIGTERM)
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        _kill(pids, signal.SIGKILL)
        p.wait(5)
    # nginx workers exit after their master; make sure none outlives it
    deadline = time.monotonic() + 5
    for pid in pids[1:]:
        while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if os.path.exists("/proc/%d" % pid):
            _kill([pid], signal.SIGKILL)


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


def tail(name, n=20):
    try:
        with open(os.path.join(TMP, name + ".log"), errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------
# ports and readiness

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


def _no_verify():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def http_get(port, path="/", timeout=1.0, tls=False):
    """One GET over a fresh connection (TLS, unverified, when tls); returns the raw response
    head (b"" on failure)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
            s = _no_verify().wrap_socket(raw, server_hostname="bench.test") if tls else raw
            s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: bench\r\n"
                      b"Connection: close\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                d = s.recv(65536)
                if not d:
                    break
                data += d
            return data
    except OSError:
        return b""


def accepts(ports):
    """Connections the nginx backends on ports accepted so far (stub_status), this reading's
    own connections included; None when one does not answer."""
    total = 0
    for port in ports:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"GET /bench-status HTTP/1.1\r\nHost: bench\r\n"
                          b"Connection: close\r\n\r\n")
                data = b""
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    data += d
        except OSError:
            return None
        m = re.search(rb"server accepts handled requests\s+(\d+)", data)
        if m is None:
            return None
        total += int(m.group(1))
    return total


def wait_http(port, proc, what, path="/", timeout=10.0, tls=False):
    """Wait until GET path answers 200 through port (over TLS when tls)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s; see its log:\n%s" % (
                what, proc.returncode, tail(what)))
        data = http_get(port, path, tls=tls)
        if re.match(rb"HTTP/1\.[01] 200", data):
            return
        last = data[:80]
        time.sleep(0.05)
    raise RuntimeError("%s did not answer 200 on port %d (%r)" % (what, port, last))


# ---------------------------------------------------------------------------------------------
# /proc readings

def cpu_ticks(pids):
    """utime + stime of each process (all its threads, live and exited), summed."""
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


def status_kib(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def mem_kib(pids):
    """(VmRSS, Pss) summed over pids, in KiB."""
    return (sum(status_kib(p, "VmRSS") for p in pids), sum(pss_kib(p) for p in pids))


# ---------------------------------------------------------------------------------------------
# wrk

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(text):
    m = re.match(r"^([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def run_wrk(port, conns, threads, seconds, path, scheme="http"):
    argv = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds, "--latency",
            "%s://127.0.0.1:%d%s" % (scheme, port, path)]
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
