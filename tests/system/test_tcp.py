# SPDX-License-Identifier: MIT
"""TCP mode: byte relay, half-close, balancing and TCP health checks."""
import collections
import os
import socket
import threading
import time

import keeltest as kt

TCP_CHECK = "tcp interval 200ms timeout 200ms rise 2 fall 2"


def echo_handler(name):
    """Greets with NAME\\n, then echoes every byte until the client half-closes."""
    def handler(conn):
        conn.sendall(name.encode() + b"\n")
        while True:
            d = conn.recv(65536)
            if not d:
                return
            conn.sendall(d)
    return handler


def tcp_session(port, payload=b"", timeout=10):
    """Connect, read the greeting, send payload, half-close, read the echo to EOF."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        f = b""
        while b"\n" not in f:
            d = s.recv(4096)
            assert d, "closed before the greeting"
            f += d
        name, rest = f.split(b"\n", 1)
        sender_err = []

        def send():
            try:
                view = memoryview(payload)
                for i in range(0, len(view), 65536):
                    s.sendall(view[i:i + 65536])
                s.shutdown(socket.SHUT_WR)
            except OSError as e:
                sender_err.append(e)
        t = threading.Thread(target=send, daemon=True)
        t.start()
        got = [rest]
        while True:
            d = s.recv(1 << 16)
            if not d:
                break
            got.append(d)
        t.join(timeout)
        assert not sender_err, sender_err
        return name.decode(), b"".join(got)
    finally:
        s.close()


def start_echo(env, names):
    return [env.tiny(echo_handler(n)) for n in names]


def wait_probe_session_done(k):
    """The harness's readiness probe is a TCP session too, and it takes a round-robin turn
    whenever its worker gets to it: on a loaded machine that was after the test's first
    session, which then skewed the counts ({'a': 3, 'b': 1}). Wait until it has been
    accepted and closed."""
    def done():
        m = k.metrics()
        return ((m.get("keel_frontend_connections_total") or 0) >= 1
                and (m.get("keel_frontend_connections_active") or 0) == 0)
    kt.deadline_poll(done, 10, what="the readiness probe's session accepted and closed")


def test_tcp_relay_and_roundrobin(env):
    srvs = start_echo(env, "abc")
    k = env.lb([(n, s.addr) for n, s in zip("abc", srvs)], mode="tcp")
    wait_probe_session_done(k)
    c = collections.Counter()
    for i in range(6):
        payload = os.urandom(256 * 1024 + i)
        name, echo = tcp_session(k.port, payload)
        assert echo == payload, "connection %d: %d bytes echoed of %d" % (i, len(echo),
                                                                          len(payload))
        c[name] += 1
    assert dict(c) == {"a": 2, "b": 2, "c": 2}


def test_tcp_health_check_removes_dead_server(env):
    srvs = start_echo(env, "abc")
    k = env.lb([(n, s.addr) for n, s in zip("abc", srvs)], mode="tcp", check=TCP_CHECK)
    for n in "abc":
        k.wait_server_state("web", n, up=True)
    srvs[1].close()
    k.wait_server_state("web", "b", up=False, timeout=5)
    c = collections.Counter()
    for _ in range(6):
        name, echo = tcp_session(k.port, b"ping")
        assert echo == b"ping"
        c[name] += 1
    assert dict(c) == {"a": 3, "c": 3}
    # back on the same port
    env.tiny(echo_handler("b"), port=srvs[1].port)
    k.wait_server_state("web", "b", up=True, timeout=5)
    c = collections.Counter(tcp_session(k.port, b"x")[0] for _ in range(6))
    assert dict(c) == {"a": 2, "b": 2, "c": 2}


def test_tcp_frontend_to_http_backends(env):
    bs = env.backends(2)
    k = env.lb(bs, mode="tcp", check=TCP_CHECK)
    for b in bs:
        k.wait_server_state("web", b.bname, up=True)
    wait_probe_session_done(k)
    seen = collections.Counter()
    for _ in range(4):
        st, h, body = kt.http_get(k.port, "/")
        assert st == 200
        seen[kt.server_of(h, body)] += 1
    assert dict(seen) == {"a": 2, "b": 2}
    # a TCP frontend relays bytes: no HTTP header is added
    resp = kt.raw_request(k.port, "GET /headers HTTP/1.1\r\nHost: t\r\nX-Mark: m1\r\n\r\n")
    assert b"X-Mark: m1" in resp.body, resp.body
    assert b"x-forwarded-for" not in resp.body.lower(), resp.body


def test_tcp_sessions_are_access_logged(env):
    import json
    srvs = start_echo(env, "a")
    path = os.path.join(env.tmp, "tcp.json")
    k = env.lb([("a", srvs[0].addr)], mode="tcp",
               frontend_extra="    access_log %s json;\n" % path)
    name, echo = tcp_session(k.port, b"hello tcp")
    assert echo == b"hello tcp"

    def lines():
        if not os.path.exists(path):
            return None
        with open(path) as f:
            got = [json.loads(l) for l in f.read().splitlines() if l.strip()]
        # the harness's readiness probe is a session too, with no bytes
        got = [r for r in got if r.get("bytes_in")]
        return got or None
    rec = kt.deadline_poll(lines, 5, what="a tcp access log line")[0]
    assert rec["mode"] == "tcp" and rec["server"] == "a" and rec["backend"] == "web", rec
    assert rec["bytes_in"] == len(b"hello tcp"), rec
    assert rec["bytes_out"] >= len(b"hello tcp"), rec


class RoleServer:
    """A TCP echo service on IP:port and, beside it on IP:health_port, an HTTP health
    endpoint answering 200 or 503 for /primary as self.primary says (an agent's role)."""

    def __init__(self, ip, port, health_port, name):
        self.ip, self.name, self.primary = ip, name, False
        self.stop = threading.Event()
        self.socks = []
        self.threads = []
        for p, fn in ((port, self._echo), (health_port, self._health)):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((ip, p))
            s.listen(64)
            s.settimeout(0.1)
            self.socks.append(s)
            t = threading.Thread(target=self._serve, args=(s, fn), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, s, fn):
        while not self.stop.is_set():
            try:
                c, _ = s.accept()
            except OSError:
                continue
            threading.Thread(target=fn, args=(c,), daemon=True).start()

    def _echo(self, c):
        with c:
            c.sendall(self.name.encode() + b"\n")
            while True:
                try:
                    d = c.recv(65536)
                except OSError:
                    return
                if not d:
                    return
                c.sendall(d)

    def _health(self, c):
        with c:
            c.recv(4096)
            code = b"200 OK" if self.primary else b"503 Service Unavailable"
            c.sendall(b"HTTP/1.1 " + code + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(2)
        for s in self.socks:
            s.close()


def test_tcp_check_port_and_shutdown_on_down(env):
    """The write-port pattern of a database: only the server whose agent says it is primary
    gets sessions, and when the primary changes, sessions still open to the old one are cut
    so that clients reconnect to the new one."""
    port, health = env.port(), env.port()
    a = RoleServer("127.0.0.71", port, health, "a")
    b = RoleServer("127.0.0.72", port, health, "b")
    try:
        a.primary = True
        k = env.lb([("a", "127.0.0.71:%d" % port), ("b", "127.0.0.72:%d" % port)], mode="tcp",
                   check="http path /primary port %d interval 100ms timeout 500ms rise 1 fall 1"
                   % health, backend_extra="    shutdown_on_down on;\n",
                   allow_errors=[r"backend web has no server available"])
        k.wait_server_state("web", "a", up=True)
        k.wait_server_state("web", "b", up=False)
        for _ in range(3):
            assert tcp_session(k.port, b"x")[0] == "a"    # only the primary
        s = socket.create_connection(("127.0.0.1", k.port), timeout=5)
        assert s.recv(64) == b"a\n"
        s.sendall(b"still there")
        assert s.recv(64) == b"still there"
        # failover: b becomes primary, a is demoted
        b.primary, a.primary = True, False
        k.wait_server_state("web", "a", up=False, timeout=3)
        s.settimeout(3)
        assert s.recv(64) == b"", "the session to the old primary was not closed"
        s.close()
        k.wait_server_state("web", "b", up=True, timeout=3)
        assert tcp_session(k.port, b"y")[0] == "b"
    finally:
        a.close()
        b.close()


def read_line(s):
    """The greeting of an echo server, or b"" when keel closed the session first."""
    f = b""
    while b"\n" not in f:
        try:
            d = s.recv(4096)
        except ConnectionResetError:
            return b""
        if not d:
            return f
        f += d
    return f


def test_tcp_queues_at_maxconn_then_times_out(env):
    """TCP queues like HTTP: with its one server at maxconn, a second client waits in the
    backend's queue (keel_backend_queue) and gets through when the first leaves; a third,
    behind the second, is closed after timeout_queue and counted as a queue timeout."""
    (srv,) = start_echo(env, "a")
    k = env.lb([("a", srv.addr, "maxconn 1")], mode="tcp",
               backend_extra="    timeout_queue 2s;\n    queue_max 16;\n")
    wait_probe_session_done(k)

    def queued():
        return k.metrics().get("keel_backend_queue", backend="web") or 0

    first = socket.create_connection(("127.0.0.1", k.port), timeout=10)
    second = third = None
    try:
        assert read_line(first) == b"a\n"
        second = socket.create_connection(("127.0.0.1", k.port), timeout=10)
        kt.deadline_poll(lambda: queued() == 1, 5, what="the second client in the queue")
        assert k.metrics().get("keel_backend_queued_total", backend="web") == 1
        first.close()
        first = None
        assert read_line(second) == b"a\n", "the queued client got no server"
        assert queued() == 0
        # The second holds the slot now: the third waits timeout_queue, then is closed.
        t0 = time.monotonic()
        third = socket.create_connection(("127.0.0.1", k.port), timeout=10)
        got = read_line(third)
        took = time.monotonic() - t0
        assert got == b"", "the third client was served: %r" % got
        assert 1.5 <= took <= 6, "closed after %.2fs with timeout_queue 2s" % took
        kt.deadline_poll(
            lambda: k.metrics().get("keel_backend_queue_timeouts_total", backend="web") == 1,
            5, what="keel_backend_queue_timeouts_total == 1")
        # The second session still relays.
        second.sendall(b"still here")
        echo = b""
        while len(echo) < len(b"still here"):
            d = second.recv(100)
            assert d, "the second session was closed"
            echo += d
        assert echo == b"still here"
    finally:
        for s in (first, second, third):
            if s is not None:
                s.close()
