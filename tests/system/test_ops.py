# SPDX-License-Identifier: MIT
"""Operations: keel check, reload, drain, access logs, metrics, status, keep-alive pool."""
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

import keeltest as kt

CHECK = "http method GET path /healthz status 200-399 interval 200ms timeout 200ms rise 2 fall 2"


# ---------------------------------------------------------------------------------------------
# keel check

def keel_check(path):
    p = subprocess.run([kt.KEEL, "check", "-c", path], capture_output=True, text=True,
                       timeout=20)
    return p.returncode, p.stdout + p.stderr


def write(env, name, text):
    path = os.path.join(env.tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_check_ok_exits_0(env):
    path = write(env, "ok.conf", kt.lb_config(env.port(), [("a", "127.0.0.1:1")], env.port()))
    rc, out = keel_check(path)
    assert rc == 0, out


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_secret_file_readable_by_group_or_others_is_refused(env, mode):
    """Issue 10: the cluster secret's mode was not checked. Like ssh with a private key, keel
    refuses a secret file that the group or others can read, in `keel check` and `keel run`,
    naming the file and its mode; 0600 is accepted."""
    secret = kt.write_secret(os.path.join(env.tmp, "cluster.key"), os.urandom(32))
    os.chmod(secret, mode)
    cfg = ("cluster t {\n    secret_file %s;\n}\n" % secret
           + kt.lb_config(env.port(), [("a", "127.0.0.1:1")], env.port()))
    path = write(env, "secret.conf", cfg)
    rc, out = keel_check(path)
    assert rc == 1, out
    assert re.search(r"^%s:2:17: error: the cluster secret %s has mode %04o: the group or others"
                     r" can access it \(chmod 600 %s\)$" % (re.escape(path), re.escape(secret),
                                                            mode, re.escape(secret)),
                     out, re.M), out
    p = subprocess.run([kt.KEEL, "run", "-c", path], capture_output=True, text=True, timeout=20)
    assert p.returncode == 1 and "has mode %04o" % mode in p.stderr, (p.returncode, p.stderr)
    os.chmod(secret, 0o600)
    rc, out = keel_check(path)
    assert rc == 0, out


def test_check_unknown_directive_file_line_col(env):
    text = ("frontend www {\n"
            "    bind 127.0.0.1:%d;\n"
            "    bnd 127.0.0.1:1;\n"
            "    backend web;\n"
            "}\n"
            "backend web {\n"
            "    server a 127.0.0.1:1;\n"
            "}\n" % env.port())
    path = write(env, "bad.conf", text)
    rc, out = keel_check(path)
    assert rc == 1, out
    assert re.search(r"^%s:3:5: error: .*bnd" % re.escape(path), out, re.M), out


def test_check_reports_every_error(env):
    text = ("frontend www {\n"
            "    bind 127.0.0.1:%d;\n"
            "    backend web;\n"
            "    timeout_header 10q;\n"
            "}\n"
            "backend web {\n"
            "    balance fastest;\n"
            "    server a 127.0.0.1:1;\n"
            "}\n" % env.port())
    path = write(env, "bad2.conf", text)
    rc, out = keel_check(path)
    assert rc == 1, out
    lines = [l for l in out.splitlines() if re.match(r"^%s:\d+:\d+: error: " % re.escape(path), l)]
    got = sorted({int(l[len(path) + 1:].split(":")[0]) for l in lines})
    # the bad duration and the bad balance mode are both reported, each at its line
    assert {4, 7} <= set(got), out
    col = re.search(r"^%s:4:(\d+):" % re.escape(path), out, re.M)
    assert col and int(col.group(1)) == 20, "column of the bad value 10q: %s" % out


def test_check_unknown_backend_reference(env):
    text = ("frontend www {\n"
            "    bind 127.0.0.1:%d;\n"
            "    backend nosuch;\n"
            "}\n"
            "backend web {\n"
            "    server a 127.0.0.1:1;\n"
            "}\n" % env.port())
    path = write(env, "xref.conf", text)
    rc, out = keel_check(path)
    assert rc == 1, out
    assert re.search(r"^%s:3:\d+: error: .*nosuch" % re.escape(path), out, re.M), out


def test_check_syntax_error(env):
    path = write(env, "syn.conf", "global {\n    workers 2\n}\n")
    rc, out = keel_check(path)
    assert rc == 1, out
    assert re.search(r"^%s:\d+:\d+: error: " % re.escape(path), out, re.M), out


# ---------------------------------------------------------------------------------------------
# Reload

class Load:
    """Bounded background load: THREADS keep-alive clients until stop() or MAX per thread."""
    THREADS, MAX, DEADLINE_S = 3, 20000, 60

    def __init__(self, port):
        self.port = port
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.done = 0
        self.errors = []
        self.servers = collections.Counter()
        self.deadline = time.monotonic() + self.DEADLINE_S
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(self.THREADS)]
        for t in self.threads:
            t.start()

    def run(self, idx):
        # thread 0 opens a new connection per request; the others keep theirs alive
        fresh = idx == 0
        conn = kt.KeepAlive(self.port, timeout=10)
        for i in range(self.MAX):
            if self.stop_ev.is_set() or time.monotonic() > self.deadline:
                break
            if fresh:
                conn.close()
            try:
                st, h, body = conn.request("/")
                err = None if st == 200 else "status %s %r" % (st, body[:80])
                who = kt.server_of(h, body)
            except Exception as e:  # noqa: BLE001 - every failure counts
                err, who = repr(e), None
                conn.close()
                conn = kt.KeepAlive(self.port, timeout=10)
            with self.lock:
                self.done += 1
                if err:
                    self.errors.append("thread %d request %d: %s" % (idx, i, err))
                else:
                    self.servers[who] += 1
        conn.close()

    def progress(self, before, n=500, timeout=20):
        """Wait until n more requests are done; fail at once if the load ended on its own
        (MAX or DEADLINE_S reached: it no longer covers the window being checked)."""
        def ok():
            assert any(t.is_alive() for t in self.threads), \
                "the load ended (%d per thread or %d s) before the test stopped it" % (
                    self.MAX, self.DEADLINE_S)
            return self.done >= before + n
        kt.deadline_poll(ok, timeout, what="load progress")

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(self.DEADLINE_S)
        assert not any(t.is_alive() for t in self.threads)


def wait_serving_only(port, names, timeout=5.0):
    """Poll until 12 consecutive requests all come from the server set `names`."""
    def ok():
        seen = set()
        for _ in range(12):
            st, h, body = kt.http_get(port, "/probe")
            if st != 200:
                return False
            seen.add(kt.server_of(h, body))
        return seen == set(names)
    kt.deadline_poll(ok, timeout, interval=0.05, what="serving only from %s" % sorted(names))


@pytest.mark.timeout(120)
def test_sighup_reload_under_load_loses_nothing(env):
    bs = {b.bname: b for b in env.backends(3)}
    port, admin = env.port(), env.port()

    def cfg(names):
        return kt.lb_config(port, [(n, bs[n].addr) for n in names], admin)
    k = env.keel(cfg("ab"), ports=[port], admin=admin)
    wait_serving_only(port, "ab")
    load = Load(port)
    try:
        for names in ("c", "ac", "b"):
            load.progress(load.done)
            k.reload(cfg(names))
            wait_serving_only(port, names)
        load.progress(load.done)
    finally:
        load.stop()
    print("requests:", load.done, dict(load.servers))
    assert load.errors == [], "%d failed, first: %s" % (len(load.errors), load.errors[:10])
    assert load.done > 2000
    assert set(load.servers) == {"a", "b", "c"}, dict(load.servers)
    assert k.alive()


def test_reload_reaches_existing_keepalive_connections(env):
    """A server removed by a reload stops getting requests, also from clients that keep
    their connection open (HAProxy and nginx close old connections gracefully on reload)."""
    bs = {b.bname: b for b in env.backends(3)}
    port, admin = env.port(), env.port()

    def cfg(names):
        return kt.lb_config(port, [(n, bs[n].addr) for n in names], admin)
    k = env.keel(cfg("ab"), ports=[port], admin=admin)
    conn = kt.KeepAlive(port)
    assert kt.server_of(*conn.request("/")[1:]) in ("a", "b")
    k.reload(cfg("c"))
    wait_serving_only(port, "c")
    seen = []

    def on_new_set():
        st, h, body = conn.request("/")   # http.client reconnects after Connection: close
        assert st == 200, (st, body)
        seen.append(kt.server_of(h, body))
        return seen[-1] == "c"
    try:
        kt.deadline_poll(on_new_set, 5, interval=0.05,
                         what="the open keep-alive connection to reach the new server set")
    finally:
        conn.close()
    print("requests on the old connection after reload:", seen)


def test_invalid_reload_refused_old_keeps_serving(env):
    a, b = env.backends(2)
    port, admin = env.port(), env.port()
    good = kt.lb_config(port, [("a", a.addr), ("b", b.addr)], admin)
    k = env.keel(good, ports=[port], admin=admin, allow_errors=[r"."])
    wait_serving_only(port, "ab")
    mark = k.reload(good.replace("balance roundrobin;", "balance nonsense;\n    bogus 1;"))
    k.log.wait(r"\[error\]", timeout=5, start=mark)
    assert k.alive()
    wait_serving_only(port, "ab", timeout=2)
    # and a good config afterwards is taken
    k.reload(kt.lb_config(port, [("b", b.addr)], admin))
    wait_serving_only(port, "b")


# ---------------------------------------------------------------------------------------------
# SIGTERM drain

def test_sigterm_drains_in_flight_request(env):
    (a,) = env.backends(1)
    k = env.lb([a], drain="10s")
    result = {}

    def slow():
        try:
            result["resp"] = kt.http_get(k.port, "/slow?ms=1500", timeout=15)
        except Exception as e:  # noqa: BLE001
            result["err"] = e
    t = threading.Thread(target=slow, daemon=True)
    t.start()
    a.wait_request(r"GET /slow", timeout=3)
    t0 = time.monotonic()
    k.signal(signal.SIGTERM)
    k.stopped_by_test = True
    # stops accepting while the request is still in flight
    kt.wait_port_closed(k.port, timeout=1.0)
    t.join(15)
    assert "err" not in result, result.get("err")
    st, h, body = result["resp"]
    assert st == 200 and body == b"a\n", (st, body)
    rc = k.wait(12)
    took = time.monotonic() - t0
    assert rc == 0, "keel exit code %s after drain" % rc
    assert took < 10, "drain took %.1fs" % took


def test_sigterm_idle_keepalive_does_not_hold_drain(env):
    (a,) = env.backends(1)
    k = env.lb([a], drain="10s")
    idle = kt.KeepAlive(k.port)
    assert idle.request("/")[0] == 200
    t0 = time.monotonic()
    k.signal(signal.SIGTERM)
    k.stopped_by_test = True
    rc = k.wait(12)
    took = time.monotonic() - t0
    idle.close()
    assert rc == 0
    assert took < 3, "an idle keep-alive connection held the drain for %.1fs" % took


# ---------------------------------------------------------------------------------------------
# Access log

def wait_lines(path, n, timeout=5.0):
    def ok():
        if not os.path.exists(path):
            return None
        with open(path) as f:
            lines = [l for l in f.read().splitlines() if l.strip()]
        return lines if len(lines) >= n else None
    return kt.deadline_poll(ok, timeout, what="%d lines in %s" % (n, path))


def send_logged_requests(port):
    hdr = {"User-Agent": "pytest-ua/1.0", "Referer": "http://ref.test/x"}
    assert kt.http_get(port, "/foo?x=1", headers=hdr)[0] == 200
    assert kt.http_get(port, "/status?code=404", headers=hdr)[0] == 404


def test_access_log_combined(env):
    (a,) = env.backends(1)
    path = os.path.join(env.tmp, "access.log")
    k = env.lb([a], frontend_extra="    access_log %s combined;\n" % path)
    send_logged_requests(k.port)
    lines = wait_lines(path, 2)
    # Workers buffer their lines until the end of a loop iteration, so two requests served
    # by two workers may be logged in either order.
    lines.sort(key=lambda l: "/status" in l)
    # Apache's combined format; keel may append fields after the user agent
    assert re.match(r'^127\.0\.0\.1 - \S+ \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] '
                    r'"GET /foo\?x=1 HTTP/1\.1" 200 \d+ "http://ref\.test/x" "pytest-ua/1\.0"'
                    r'( .*)?$', lines[0]), lines[0]
    assert re.match(r'^127\.0\.0\.1 .*"GET /status\?code=404 HTTP/1\.1" 404 ', lines[1]), lines[1]


@pytest.mark.parametrize("which", ["access_log", "error_log"])
def test_symlinked_log_path_is_refused(env, which):
    """Issue 10: log files were opened following symbolic links, so whoever can write the log
    directory could make keel (root) append to any file. A log path that is a symbolic link
    is refused with a clear error, and the file it names is not touched."""
    target = os.path.join(env.tmp, "precious")
    with open(target, "w") as f:
        f.write("untouched\n")
    link = os.path.join(env.tmp, which + ".log")
    os.symlink(target, link)
    port, admin = env.port(), env.port()
    cfg = kt.lb_config(port, [("a", "127.0.0.1:1")], admin,
                       frontend_extra=("    access_log %s;\n" % link
                                       if which == "access_log" else ""),
                       global_extra="    error_log %s;\n" % link if which == "error_log" else "")
    path = write(env, "symlog.conf", cfg)
    p = subprocess.run([kt.KEEL, "run", "-c", path], capture_output=True, text=True, timeout=20)
    out = p.stdout + p.stderr
    # 1 for the error log (checked with the configuration), 3 for an access log (opened when
    # the frontends start), as for any other log that cannot be opened
    assert p.returncode in (1, 3), "keel run exited %s with a symlinked %s:\n%s" % (
        p.returncode, which, out)
    assert link in out and "symbolic link" in out, out
    with open(target) as f:
        assert f.read() == "untouched\n"


def _values(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _values(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _values(v)
    else:
        yield obj


def test_access_log_json_lines_are_valid_for_any_header_bytes(env):
    """A User-Agent with bytes that are not UTF-8 (obs-text) still gives a JSON line
    that parses: the bad bytes become U+FFFD, UTF-8 stays as it is (bytes >= 0x80 were once
    copied raw, which made the line invalid UTF-8)."""
    (a,) = env.backends(1)
    path = os.path.join(env.tmp, "access.json")
    k = env.lb([a], frontend_extra="    access_log %s json;\n" % path)
    with kt.Raw(k.port) as r:
        r.send(b"GET /bytes HTTP/1.1\r\nHost: t\r\nUser-Agent: a\xffb c \xc3\xa9\"\\\r\n"
               b"Connection: close\r\n\r\n")
        r.read_response()
    (line,) = wait_lines_bytes(path, 1)
    rec = json.loads(line.decode("utf-8"))
    assert rec["user_agent"] == "a\ufffdb c \u00e9\"\\", rec
    assert rec["target"] == "/bytes", rec


def wait_lines_bytes(path, n, timeout=5.0):
    def ok():
        if not os.path.exists(path):
            return None
        with open(path, "rb") as f:
            lines = [l for l in f.read().splitlines() if l.strip()]
        return lines if len(lines) >= n else None
    return kt.deadline_poll(ok, timeout, what="%d lines in %s" % (n, path))


def test_access_log_json(env):
    (a,) = env.backends(1)
    path = os.path.join(env.tmp, "access.json")
    k = env.lb([a], frontend_extra="    access_log %s json;\n" % path)
    send_logged_requests(k.port)
    lines = wait_lines(path, 2)
    recs = [json.loads(l) for l in lines]
    recs.sort(key=lambda r: "/status" in json.dumps(r))  # two workers: either order
    for rec, status, target in ((recs[0], 200, "/foo"), (recs[1], 404, "/status")):
        vals = [str(v) for v in _values(rec)]
        assert str(status) in vals, rec
        assert any(target in v for v in vals), rec
        assert "127.0.0.1" in " ".join(vals), rec
        assert "pytest-ua/1.0" in vals, rec


# ---------------------------------------------------------------------------------------------
# Metrics and status

def test_metrics_names_and_counts(env):
    a, b = env.backends(2)
    k = env.lb([a, b], check=CHECK)
    for s in "ab":
        k.wait_server_state("web", s, up=True)
    conn = kt.KeepAlive(k.port)
    bytes_body = 0
    for path, n in (("/", 20), ("/status?code=404", 7), ("/status?code=503", 3)):
        for _ in range(n):
            st, h, body = conn.request(path)
            bytes_body += len(body)
    conn.close()

    def fe(m, c):
        return m.get("keel_frontend_requests_total", frontend="www", code=c)

    def be(m, c):
        return m.get("keel_backend_requests_total", backend="web", code=c)
    # Counters are not updated atomically with the response: poll until all have caught up.
    snap = []

    def counted():
        snap[:] = [k.metrics()]
        m = snap[0]
        return ((fe(m, "2xx"), fe(m, "4xx"), fe(m, "5xx")) == (20, 7, 3)
                and (be(m, "2xx"), be(m, "4xx"), be(m, "5xx")) == (20, 7, 3)
                and m.get("keel_backend_request_duration_seconds_count", backend="web") == 30)
    try:
        kt.deadline_poll(counted, 3, what="metrics to count the 30 requests")
    except AssertionError as e:
        raise AssertionError("%s; last scrape:\n%s" % (e, snap[0].text if snap else "")) from None
    m = snap[0]
    for s in "ab":
        assert m.get("keel_server_requests_total", backend="web", server=s) == 15
        assert m.get("keel_server_up", backend="web", server=s) == 1
        kt.deadline_poll(lambda: k.metrics().get("keel_server_check_total", backend="web",
                                                  server=s, result="ok") >= 1, 3,
                         what="a successful check counted for %s" % s)
    assert m.get("keel_server_requests_total", backend="web", code="2xx") == 20
    assert m.get("keel_frontend_bytes_in_total", frontend="www") > 30 * 16
    assert m.get("keel_frontend_bytes_out_total", frontend="www") >= bytes_body
    # histogram: cumulative buckets, +Inf == count, 0.005 bucket present
    buckets = sorted(((float(l["le"]), v) for l, v in
                      m.select("keel_backend_request_duration_seconds_bucket", backend="web")),
                     key=lambda x: x[0])
    assert buckets and buckets[-1][0] == float("inf"), buckets
    assert any(le == 0.005 for le, _ in buckets), buckets
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "buckets must be cumulative: %s" % buckets
    assert buckets[-1][1] == 30
    assert m.get("keel_backend_request_duration_seconds_sum", backend="web") > 0
    for name, typ in (("keel_frontend_requests_total", "counter"),
                      ("keel_server_up", "gauge"),
                      ("keel_backend_request_duration_seconds", "histogram")):
        if m.types:
            assert m.types.get(name) == typ, (name, m.types.get(name))

    # the active-connections gauge follows an open connection
    with kt.Raw(k.port) as r:
        r.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        r.read_response()
        kt.deadline_poll(lambda: k.metrics().get("keel_frontend_connections_active",
                                                  frontend="www") >= 1, 3,
                         what="connections_active >= 1")
    kt.deadline_poll(lambda: k.metrics().get("keel_frontend_connections_active",
                                              frontend="www") == 0, 3,
                     what="connections_active back to 0")


def test_metrics_are_valid_prometheus_text_and_documented(env):
    """The exposition passes promtool's checker (format and lint), and every family in it
    is in docs/metrics.md, which the metric tables generate."""
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed")  # keeltest.check_exposition needs it
    a, b = env.backends(2)
    k = env.lb([a, b], check=CHECK)
    for s in "ab":
        k.wait_server_state("web", s, up=True)
    st, _, _ = kt.http_get(k.port, "/")
    assert st == 200
    text = k.metrics().text
    assert "# TYPE keel_frontend_requests_total counter" in text, text
    assert kt.check_exposition(text)


def find_server(obj, name):
    """The server object for `name` in keel's /status JSON, whatever its nesting: a dict
    with "name": name, or the value under key name inside a "servers" mapping."""
    if isinstance(obj, dict):
        if obj.get("name") == name and any(k in obj for k in STATE_KEYS):
            return obj
        servers = obj.get("servers")
        if isinstance(servers, dict) and isinstance(servers.get(name), dict):
            return servers[name]
        children = obj.values()
    elif isinstance(obj, list):
        children = obj
    else:
        return None
    for v in children:
        found = find_server(v, name)
        if found is not None:
            return found
    return None


STATE_KEYS = ("state", "status", "up", "is_up", "health")


def server_state(obj):
    for key in STATE_KEYS:
        if key in obj:
            v = obj[key]
            return v.lower() if isinstance(v, str) else v
    return None


def test_status_json(env):
    a, b = env.backends(2)
    k = env.lb([a, b], check=CHECK)
    for s in "ab":
        k.wait_server_state("web", s, up=True)
    st = k.status()
    assert '"web"' in json.dumps(st), st
    for name in "ab":
        srv = find_server(st, name)
        assert srv is not None, "no server %s with a state in /status: %s" % (name, st)
        assert server_state(srv) in ("up", True, 1), srv
    b.kill9()
    k.wait_server_state("web", "b", up=False)
    st = k.status()
    assert server_state(find_server(st, "b")) in ("down", False, 0), st
    assert server_state(find_server(st, "a")) in ("up", True, 1), st
    # the admin listener answers HAProxy's default check method and refuses writes
    assert kt.http_get(k.admin, "/healthz", method="OPTIONS")[0] == 200
    assert kt.http_get(k.admin, "/healthz", method="HEAD")[0] == 200
    assert kt.http_get(k.admin, "/healthz", method="POST", body=b"x")[0] == 405


# ---------------------------------------------------------------------------------------------
# Keep-alive pool to servers

def _keepalive_server(conn):
    while True:
        head, rest = kt.read_http_head(conn)
        if head is None:
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Server: p\r\n\r\np\n")


def test_keepalive_pool_reuses_server_connections(env):
    srv = env.tiny(_keepalive_server)
    k = env.lb([("p", srv.addr)], backend_extra="    keepalive 32;\n", workers=1)
    for _ in range(50):
        st, _, body = kt.http_get(k.port, "/")   # a new client connection each time
        assert st == 200 and body == b"p\n", (st, body)
    assert srv.accepted <= 5, "50 requests opened %d server connections" % srv.accepted
