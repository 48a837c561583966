# SPDX-License-Identifier: MIT
"""The system-test library: processes (keel, keel backend), ports, raw HTTP, metrics.

Everything here polls with a deadline and never sleeps blindly; every process it starts is
stopped by PID (SIGTERM, then SIGKILL) by the fixtures in conftest.py, even when a test fails.
Only the stdlib is used (the tests run under Debian's python3-pytest).
"""
import http.client
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KEEL = os.environ.get("KEEL_BIN", os.path.join(ROOT, "build", "keel"))

# Sanitizer reports and crash traces: always a failure, in keel and in keel backend alike.
SANITIZER_RE = re.compile(
    r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|ThreadSanitizer"
    r"|runtime error:|Segmentation fault|stack-buffer|heap-use-after-free|double free")
ERROR_RE = re.compile(r"\[error\]")


def deadline_poll(fn, timeout, interval=0.02, what="condition"):
    """Call fn() until it returns a truthy value, or raise AssertionError after timeout s."""
    end = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
        except (OSError, http.client.HTTPException, ValueError) as e:
            last = None
            err = e
        else:
            err = None
        if last:
            return last
        if time.monotonic() >= end:
            raise AssertionError("timed out after %.1fs waiting for %s%s" % (
                timeout, what, " (last error: %r)" % (err,) if err else ""))
        time.sleep(interval)


def write_secret(path, data):
    """Write a cluster secret file as an operator must: mode 0600 (keel refuses a secret file
    that the group or others can read)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT
    return path


class BackgroundLoad:
    """Calls fn() over and over in a thread until stop(): the load behind an assertion window
    ("requests go on succeeding while X happens"). It must outlast the window, so it ends
    when the test says so, never after a fixed count: max_s and max_n are only a safety net,
    and reaching either before stop() is a test failure (check(), poll() and stop() raise),
    since the load then no longer covers the window. An exception in fn ends it too."""

    def __init__(self, fn, max_s=120.0, max_n=1000000, name="load"):
        self.fn, self.max_s, self.max_n = fn, max_s, max_n
        self.n = 0
        self.ended = None      # why the load ended on its own (a bound, an exception)
        self._halt = threading.Event()
        self._t = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, exc_type, *a):
        self.stop(check=exc_type is None)

    def _run(self):
        end = time.monotonic() + self.max_s
        try:
            while not self._halt.is_set():
                if self.n >= self.max_n or time.monotonic() >= end:
                    self.ended = "its bound (%d calls, %.0f s) was reached at %d calls" % (
                        self.max_n, self.max_s, self.n)
                    return
                self.fn()
                self.n += 1
        except Exception as e:  # noqa: BLE001 - reported by check()
            self.ended = "it raised %r after %d calls" % (e, self.n)

    def check(self):
        if self.ended is not None:
            raise AssertionError("the background load ended before the test stopped it: %s"
                                 % self.ended)

    def poll(self, fn, timeout, interval=0.02, what="condition"):
        """deadline_poll(fn), failing at once if the load has ended meanwhile."""
        def ok():
            self.check()
            return fn()
        return deadline_poll(ok, timeout, interval=interval, what=what)

    def stop(self, check=True):
        self._halt.set()
        self._t.join(30)
        assert not self._t.is_alive(), "the background load did not stop within 30 s"
        if check:
            self.check()


# --------------------------------------------------------------------------------------------
# Ports: a per-process range below the kernel's ephemeral range, so a port handed out here is
# never taken meanwhile by an outgoing connection's source port (which bind(0)-then-release
# cannot promise under load).

def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


class PortAllocator:
    def __init__(self):
        high = min(_ephemeral_low(), 65535) - 1
        low = 20000 if high > 21000 else 10000
        self._lock = threading.Lock()
        span = high - low
        self._next = low + (os.getpid() * 97) % span
        self._low, self._high = low, high
        self._given = set()

    @staticmethod
    def _free(port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
        return True

    def get(self):
        with self._lock:
            for _ in range(self._high - self._low):
                p = self._next
                self._next += 1
                if self._next >= self._high:
                    self._next = self._low
                if p not in self._given and self._free(p):
                    self._given.add(p)
                    return p
        raise RuntimeError("no free port")


PORTS = PortAllocator()

# --------------------------------------------------------------------------------------------
# TLS frontends: a test that runs over TLS (conftest's `transport`, env.lb) registers the
# frontend's port here, and the clients below (Raw, raw_request, http_get, KeepAlive,
# tls_connect) speak TLS to it; every other port stays plain. env removes its ports at
# teardown. The certificate is not what these tests check: the clients do not verify it.

TLS_PORTS = set()
TLS_SNI = "keel.test"


def tls_client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def tls_connect(port, host="127.0.0.1", timeout=5.0, source=None):
    """A connected socket to host:port, wrapped in TLS (handshake done) when the port is a
    registered TLS frontend."""
    sock = socket.create_connection((host, port), timeout=timeout,
                                    source_address=(source, 0) if source else None)
    if port in TLS_PORTS:
        try:
            sock = tls_client_context().wrap_socket(sock, server_hostname=TLS_SNI)
        except BaseException:
            sock.close()
            raise
    return sock


def make_test_certificate(d, name="tls"):
    """A self-signed ECDSA P-256 certificate for TLS_SNI in d: (cert path, key path)."""
    cert, key = os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")
    r = subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "2", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:P-256", "-subj", "/CN=" + TLS_SNI,
                        "-addext", "subjectAltName=DNS:" + TLS_SNI, "-keyout", key, "-out",
                        cert], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return cert, key


def free_port():
    return PORTS.get()


def port_accepts(port, host="127.0.0.1", timeout=0.2):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(port, timeout=10.0, host="127.0.0.1", proc=None):
    def ok():
        if proc is not None and proc.poll() is not None:
            raise AssertionError("process exited with %s before port %d accepted" % (
                proc.returncode, port))
        return port_accepts(port, host)
    deadline_poll(ok, timeout, interval=0.02, what="port %d to accept" % port)


def wait_port_closed(port, timeout=10.0, host="127.0.0.1"):
    deadline_poll(lambda: not port_accepts(port, host), timeout,
                  what="port %d to stop accepting" % port)


# --------------------------------------------------------------------------------------------
# Processes

class LogReader:
    """Reads a pipe line by line in a thread; lines are kept with their arrival time."""

    def __init__(self, stream, name):
        self.lines = []        # list of (monotonic_time, str)
        self._cond = threading.Condition()
        self._stream = stream
        self.closed = False
        self._t = threading.Thread(target=self._run, name="log-" + name, daemon=True)
        self._t.start()

    def _run(self):
        for raw in iter(self._stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                self.lines.append((time.monotonic(), line))
                self._cond.notify_all()
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def join(self, timeout=5):
        self._t.join(timeout)

    def text(self):
        with self._cond:
            return [l for _, l in self.lines]

    def mark(self):
        with self._cond:
            return len(self.lines)

    def find(self, pattern, start=0):
        rx = re.compile(pattern)
        with self._cond:
            return [(t, l) for t, l in self.lines[start:] if rx.search(l)]

    def wait(self, pattern, timeout=5.0, start=0):
        """Wait for a line matching pattern (regex) at index >= start; return (time, line)."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        i = start
        with self._cond:
            while True:
                while i < len(self.lines):
                    t, l = self.lines[i]
                    i += 1
                    if rx.search(l):
                        return t, l
                left = end - time.monotonic()
                if left <= 0 or self.closed:
                    tail = "\n".join(l for _, l in self.lines[-30:])
                    raise AssertionError("no log line matching %r within %.1fs; log tail:\n%s"
                                         % (pattern, timeout, tail))
                self._cond.wait(min(left, 0.1))


class Proc:
    """A child process whose stderr (and stdout) are read into lists of lines."""

    def __init__(self, argv, name, env=None, cwd=None):
        self.argv = argv
        self.name = name
        e = dict(os.environ)
        # Sanitizer builds: keep reports on stderr and make them fatal.
        e.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
        e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        # An illegal state transition aborts keel (src/core/fsm.h), so the test fails.
        e.setdefault("KEEL_FSM_STRICT", "1")
        if env:
            e.update(env)
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=e, cwd=cwd,
                                  start_new_session=True)
        self.pid = self.p.pid
        self.log = LogReader(self.p.stderr, name)
        self.out = LogReader(self.p.stdout, name + "-out")
        self.stopped_by_test = False

    def poll(self):
        return self.p.poll()

    @property
    def returncode(self):
        return self.p.returncode

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.p.poll() is None:
            os.kill(self.pid, sig)

    def kill9(self):
        self.stopped_by_test = True
        self.signal(signal.SIGKILL)
        self.p.wait(10)

    def wait(self, timeout):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=10.0):
        """SIGTERM, wait, then SIGKILL. Returns (returncode, was_killed)."""
        self.stopped_by_test = True
        if self.p.poll() is not None:
            self._close()
            return self.p.returncode, False
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        rc = self.wait(timeout)
        killed = False
        if rc is None:
            killed = True
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            rc = self.p.wait(10)
        self._close()
        return rc, killed

    def _close(self):
        self.log.join(5)
        self.out.join(5)

    def lines(self):
        return self.log.text()

    def tail(self, n=40):
        return "\n".join(self.lines()[-n:])

    def rss_kib(self, field="VmRSS"):
        return proc_status_kib(self.pid, field)


def proc_status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise ValueError("no %s in /proc/%d/status" % (field, pid))


def proc_children(pid):
    """Direct children of pid, from /proc/PID/task/*/children."""
    kids = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return kids
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                kids += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return kids


def proc_descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in proc_children(p):
            if c not in out:
                out.append(c)
                todo.append(c)
    return out


def pid_running(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return False
    state = data[data.rindex(")") + 2:].split()[0]
    return state not in ("Z", "X")


class Backend(Proc):
    """`keel backend --name NAME --listen 127.0.0.1:PORT`."""

    def __init__(self, name, port=None, workers=None, wait=True):
        self.bname = name
        self.port = port or free_port()
        argv = [KEEL, "backend", "--name", name, "--listen", "127.0.0.1:%d" % self.port]
        if workers:
            argv += ["--workers", str(workers)]
        super().__init__(argv, "backend-" + name)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=10.0):
        wait_port(self.port, timeout, proc=self.p)

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def requests(self, path_prefix=None):
        """Request lines logged so far: list of (method, target)."""
        out = []
        for l in self.lines():
            m = re.search(r"backend \S+: request (\S+) (\S+)", l)
            if m and (path_prefix is None or m.group(2).startswith(path_prefix)):
                out.append((m.group(1), m.group(2)))
        return out

    def wait_request(self, pattern, timeout=5.0, start=0):
        return self.log.wait(r"backend %s: request %s" % (re.escape(self.bname), pattern),
                             timeout, start)


class Keel(Proc):
    """`keel run -c FILE` with a generated config."""

    def __init__(self, config, tmpdir, ports=(), admin=None, allow_errors=(), env=None,
                 wait=True, args=(), conf=None, wrap=None, name="keel"):
        """config: the text to write to TMPDIR/keel.conf, or None to run the file conf as it
        is. wrap(argv): the command line that runs argv (e.g. in a network namespace)."""
        self.tmpdir = tmpdir
        self.conf = conf or os.path.join(tmpdir, "keel.conf")
        if config is not None:
            with open(self.conf, "w") as f:
                f.write(config)
        self.ports = list(ports)
        self.admin = admin
        self.allow_errors = [re.compile(p) for p in allow_errors]
        argv = [KEEL, "run", "-c", self.conf] + list(args)
        super().__init__(wrap(argv) if wrap else argv, name, env=env)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=10.0):
        for p in self.ports:
            wait_port(p, timeout, proc=self.p)
        if self.admin:
            deadline_poll(lambda: self._admin_ok(), timeout, what="admin /metrics")

    def _admin_ok(self):
        if self.p.poll() is not None:
            raise AssertionError("keel exited with %s:\n%s" % (self.p.returncode, self.tail()))
        st, _, _ = http_get(self.admin, "/metrics", timeout=1)
        return st == 200

    def allow_error(self, pattern):
        self.allow_errors.append(re.compile(pattern))

    def write_config(self, config):
        tmp = self.conf + ".new"
        with open(tmp, "w") as f:
            f.write(config)
        os.replace(tmp, self.conf)

    def reload(self, config=None):
        """Write the new config (if given) and send SIGHUP. Returns the log mark before it."""
        if config is not None:
            self.write_config(config)
        mark = self.log.mark()
        self.signal(signal.SIGHUP)
        return mark

    # metrics and status
    def metrics(self):
        st, _, body = http_get(self.admin, "/metrics", timeout=3)
        assert st == 200, "GET /metrics: %s" % st
        return Metrics(body.decode())

    def status(self):
        st, _, body = http_get(self.admin, "/status", timeout=3)
        assert st == 200, "GET /status: %s" % st
        return json.loads(body)

    def server_up(self, backend, server):
        v = self.metrics().get("keel_server_up", backend=backend, server=server)
        return None if v is None else int(v)

    def wait_server_state(self, backend, server, up, timeout=5.0):
        want = 1 if up else 0
        deadline_poll(lambda: self.server_up(backend, server) == want, timeout,
                      what="keel_server_up{backend=%s,server=%s} == %d" % (backend, server, want))

    def unexpected_errors(self):
        bad = []
        for l in self.lines():
            if SANITIZER_RE.search(l):
                bad.append(l)
            elif ERROR_RE.search(l) and not any(r.search(l) for r in self.allow_errors):
                bad.append(l)
        return bad


# --------------------------------------------------------------------------------------------
# Config generation

def lb_config(port, servers, admin, balance="roundrobin", check=None, workers=2,
              frontend_extra="", backend_extra="", global_extra="", mode="http",
              log_level="info", drain="2s", backend_name="web", frontend_name="www",
              tls_cert=None):
    """A config with one frontend on 127.0.0.1:port and one backend.

    servers: list of (name, addr, options) or (name, addr). tls_cert: (cert, key): the
    frontend's port is a `bind ... tls` with that certificate."""
    lines = []
    for s in servers:
        name, addr = s[0], s[1]
        opts = (" " + s[2]) if len(s) > 2 and s[2] else ""
        lines.append("    server %s %s%s;" % (name, addr, opts))
    chk = ("    check %s;\n" % check) if check else ""
    if tls_cert:
        frontend_extra = "    certificate %s %s;\n" % tls_cert + frontend_extra
    return """global {
    workers %(workers)d;
    log_level %(log_level)s;
    admin 127.0.0.1:%(admin)d;
    timeout_drain %(drain)s;
%(global_extra)s}
frontend %(fname)s {
    bind 127.0.0.1:%(port)d%(tls)s;
    mode %(mode)s;
    backend %(bname)s;
%(frontend_extra)s}
backend %(bname)s {
    mode %(mode)s;
    balance %(balance)s;
%(servers)s
%(check)s%(backend_extra)s}
""" % dict(workers=workers, log_level=log_level, admin=admin, drain=drain, port=port,
           mode=mode, balance=balance, servers="\n".join(lines), check=chk,
           frontend_extra=frontend_extra, backend_extra=backend_extra,
           global_extra=global_extra, fname=frontend_name, bname=backend_name,
           tls=" tls" if tls_cert else "")


# --------------------------------------------------------------------------------------------
# Metrics

_METRIC_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$')
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def _unescape(v):
    return v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


class Metrics:
    """Prometheus text exposition, parsed into (name, labels dict, value) samples."""

    def __init__(self, text):
        self.text = text
        self.samples = []
        self.types = {}
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 4 and parts[1] == "TYPE":
                    self.types[parts[2]] = parts[3]
                continue
            m = _METRIC_RE.match(line)
            if not m:
                raise ValueError("bad metrics line: %r" % line)
            labels = {}
            if m.group(3):
                pos = 0
                s = m.group(3)
                while pos < len(s):
                    lm = _LABEL_RE.match(s, pos)
                    if not lm:
                        raise ValueError("bad labels in %r" % line)
                    labels[lm.group(1)] = _unescape(lm.group(2))
                    pos = lm.end()
            self.samples.append((m.group(1), labels, float(m.group(4))))

    def select(self, name, **labels):
        return [(l, v) for n, l, v in self.samples
                if n == name and all(l.get(k) == str(x) for k, x in labels.items())]

    def get(self, name, **labels):
        """Sum of matching samples, or None if there is none."""
        s = self.select(name, **labels)
        if not s:
            return None
        return sum(v for _, v in s)

    def names(self):
        return {n for n, _, _ in self.samples}


def check_exposition(text):
    """Assert that every family in the /metrics text is in docs/metrics.md (which the metric
    tables generate) and that the text passes `promtool check metrics` (the format and
    Prometheus' naming lint). Returns False when promtool is not installed (the documentation
    is still checked)."""
    with open(os.path.join(ROOT, "docs", "metrics.md")) as f:
        doc = f.read()
    for name in re.findall(r"^# TYPE (\S+) ", text, re.M):
        assert "`%s`" % name in doc, "%s is not in docs/metrics.md" % name
    promtool = shutil.which("promtool")
    if promtool is None:
        return False
    r = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=30)
    assert r.returncode == 0, "promtool check metrics: %s%s\n%s" % (
        r.stdout.decode(), r.stderr.decode(), text)
    return True


# --------------------------------------------------------------------------------------------
# HTTP clients

def http_get(addr_or_port, path, headers=None, method="GET", body=None, timeout=5,
             source=None):
    """One request on a fresh connection. Returns (status, headers dict lowercased, body)."""
    if isinstance(addr_or_port, int):
        host, port = "127.0.0.1", addr_or_port
    elif isinstance(addr_or_port, str) and ":" in addr_or_port:
        host, port = addr_or_port.rsplit(":", 1)
        port = int(port)
    else:
        host, port = "127.0.0.1", int(addr_or_port)
    c = _http_connection(host, port, timeout, source)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def _http_connection(host, port, timeout, source):
    """http.client's connection to host:port: HTTPS (unverified) to a registered TLS port."""
    src = (source, 0) if source else None
    if port in TLS_PORTS:
        return http.client.HTTPSConnection(host, port, timeout=timeout, source_address=src,
                                           context=tls_client_context())
    return http.client.HTTPConnection(host, port, timeout=timeout, source_address=src)


class KeepAlive:
    """A keep-alive http.client connection; every failure is raised, never retried."""

    def __init__(self, port, host="127.0.0.1", timeout=10, source=None):
        self.c = _http_connection(host, port, timeout, source)

    def request(self, path, method="GET", headers=None, body=None):
        self.c.request(method, path, body=body, headers=headers or {})
        r = self.c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def close(self):
        self.c.close()


def server_of(headers, body):
    """Which backend answered: X-Server, else the first word of the body."""
    s = headers.get("x-server")
    if s:
        return s
    return body.decode(errors="replace").split()[0] if body.strip() else None


class Response:
    def __init__(self, version, status, reason, headers, body, interim):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers          # list of (name, value) as received
        self.body = body
        self.interim = interim          # 1xx responses before it: list of status codes

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def __repr__(self):
        return "<Response %s %s %r>" % (self.status, self.reason, self.body[:200])


class Raw:
    """A raw TCP connection: send exact bytes, read exact responses. To a registered TLS
    port, the bytes go inside TLS (tls_connect)."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0, source=None):
        self.sock = tls_connect(port, host, timeout, source)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.timeout = timeout
        self.eof = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("raw read deadline")
        self.sock.settimeout(left)
        try:
            d = self.sock.recv(65536)
        except ConnectionResetError:
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def _line(self, deadline):
        while b"\r\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise ValueError("line too long")
            if not self._fill(deadline):
                raise ConnectionError("EOF while reading a line (have %r)" % self.buf[:200])
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n, deadline):
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise ConnectionError("EOF with %d of %d body bytes" % (len(self.buf), n))
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_head(self, deadline):
        status_line = self._line(deadline).decode("latin-1")
        m = re.match(r"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", status_line)
        if not m:
            raise ValueError("bad status line %r" % status_line)
        headers = []
        while True:
            l = self._line(deadline)
            if l == b"":
                break
            k, _, v = l.decode("latin-1").partition(":")
            headers.append((k.strip(), v.strip()))
        return m.group(1), int(m.group(2)), m.group(3) or "", headers

    def read_response(self, head=False, timeout=None, max_body=1 << 30):
        """Read one final response (collecting 1xx). head: the request was HEAD."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        interim = []
        while True:
            version, status, reason, headers = self.read_head(deadline)
            if 100 <= status < 200:
                interim.append(status)
                if status == 101:
                    return Response(version, status, reason, headers, b"", interim)
                continue
            break
        r = Response(version, status, reason, headers, b"", interim)
        te = (r.header("transfer-encoding") or "").lower()
        cl = r.header("content-length")
        if head or status in (204, 304):
            return r
        if "chunked" in te:
            body = []
            while True:
                size_line = self._line(deadline).split(b";")[0].strip()
                size = int(size_line, 16)
                if size == 0:
                    while self._line(deadline) != b"":
                        pass
                    break
                body.append(self._exact(size, deadline))
                if self._exact(2, deadline) != b"\r\n":
                    raise ValueError("bad chunk terminator")
            r.body = b"".join(body)
        elif cl is not None:
            r.body = self._exact(int(cl), deadline)
        else:
            while self._fill(deadline):
                if len(self.buf) > max_body:
                    raise ValueError("body too large")
            r.body, self.buf = self.buf, b""
        return r

    def has_data(self):
        """Whether the peer has sent bytes (read into buf) or closed, without waiting. Over TLS,
        records that carry no data (TLS 1.3 session tickets, sent after the handshake) make
        the socket readable: they are not an answer."""
        if self.buf or self.eof:
            return True
        pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0
        if not pending and not select.select([self.sock], [], [], 0)[0]:
            return False
        self.sock.setblocking(False)
        try:
            d = self.sock.recv(65536)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return False
        except ConnectionResetError:
            d = b""
        finally:
            self.sock.settimeout(self.timeout)
        if not d:
            self.eof = True
        self.buf += d
        return True

    def closed_by_peer(self, timeout=3.0):
        """True if the peer closes (EOF or RST) within timeout with no more data.
        Returns the unexpected bytes (truthy str) if data arrives instead."""
        if self.buf:
            return False
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
            if not d:
                return True
            self.buf += d
            return False


def raw_request(port, data, timeout=5.0, head=False):
    with Raw(port, timeout=timeout) as r:
        r.send(data)
        return r.read_response(head=head)


# --------------------------------------------------------------------------------------------
# Tiny Python servers for faults keel backend cannot produce (garbage, echo)

class TinyServer:
    """A threaded TCP server on 127.0.0.1; handler(conn) runs per connection."""

    def __init__(self, handler, port=None):
        self.port = port or free_port()
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", self.port))
        self.lsock.listen(128)
        self.handler = handler
        self.accepted = 0
        self.conns = []
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def _run(self):
        while not self._stop:
            r, _, _ = select.select([self.lsock], [], [], 0.1)
            if not r:
                continue
            try:
                c, _ = self.lsock.accept()
            except OSError:
                break
            self.accepted += 1
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            c.settimeout(10)
            self.handler(c)
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def close(self):
        self._stop = True
        self._t.join(2)
        self.lsock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


def read_http_head(conn, limit=65536):
    """Read from conn up to the end of an HTTP head; returns (head, rest) or (None, data)."""
    data = b""
    while b"\r\n\r\n" not in data:
        d = conn.recv(4096)
        if not d:
            return None, data
        data += d
        if len(data) > limit:
            return None, data
    head, rest = data.split(b"\r\n\r\n", 1)
    return head, rest


def random_token(n=8):
    return "".join(random.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))
