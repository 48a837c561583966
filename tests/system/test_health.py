# SPDX-License-Identifier: MIT
"""Active health checks: detection time, recovery, HTTP status ranges, backup, disabled."""
import collections
import socket
import struct
import threading
import time

import pytest

import keeltest as kt

INTERVAL, TIMEOUT, RISE, FALL = 0.2, 0.2, 2, 2
CHECK = ("http method GET path /healthz status 200-399 interval 200ms timeout 200ms "
         "rise %d fall %d" % (RISE, FALL))
# The operator must act when a whole backend is down: an expected [error] in these tests.
NO_SERVER = r"backend web has no server available"
# Log lines and metric polls are seen a little after the event itself.
SLACK = 0.25


def count(port, n, path="/"):
    c = collections.Counter()
    conn = kt.KeepAlive(port)
    try:
        for i in range(n):
            st, h, body = conn.request(path)
            assert st == 200, "request %d: %s %r" % (i, st, body)
            c[kt.server_of(h, body)] += 1
    finally:
        conn.close()
    return c


def user_requests(backend, prefix="/user"):
    return backend.requests(prefix)


def wait_transition(k, server, word, mark, timeout):
    """Time at which keel reported server `word` ("down"/"up"): its log line or its metric."""
    rx = r"backend web/server %s: server %s" % (server, word)
    want = 0 if word == "down" else 1
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        hit = k.log.find(rx, mark)
        if hit:
            return hit[0][0]
        try:
            if k.server_up("web", server) == want:
                return time.monotonic()
        except (OSError, AssertionError):
            pass
        time.sleep(0.01)
    raise AssertionError("server %s not reported %s within %.1fs; log:\n%s"
                         % (server, word, timeout, k.tail()))


def test_killed_server_down_in_time_then_back_after_rise(env):
    bs = env.backends(3)
    k = env.lb(bs, check=CHECK)
    for b in bs:
        k.wait_server_state("web", b.bname, up=True)
    mark = k.log.mark()
    t0 = time.monotonic()
    bs[1].kill9()
    t_down = wait_transition(k, "b", "down", mark, timeout=5)
    took = t_down - t0
    bound = FALL * INTERVAL + TIMEOUT
    print("down detected after %.3fs (bound %.3fs)" % (took, bound))
    assert took <= bound + SLACK, "down after %.3fs, bound %.3fs" % (took, bound)
    assert k.server_up("web", "b") == 0
    # Marked down: no request goes to it (none fails either).
    c = count(k.port, 60)
    assert dict(c) == {"a": 30, "c": 30}

    # Back on the same port: up after `rise` good checks, then it gets its share again.
    mark = k.log.mark()
    t0 = time.monotonic()
    b2 = env.restart_backend(bs[1])
    t_up = wait_transition(k, "b", "up", mark, timeout=5)
    took = t_up - t0
    bound = RISE * INTERVAL + TIMEOUT
    print("up detected after %.3fs (bound %.3fs)" % (took, bound))
    assert took <= bound + SLACK, "up after %.3fs, bound %.3fs" % (took, bound)
    # and not before `rise` checks: at least rise-1 intervals after the restart
    assert took >= (RISE - 1) * INTERVAL - 0.05, "up after only %.3fs" % took
    c = count(k.port, 30, path="/user")
    assert dict(c) == {"a": 10, "b": 10, "c": 10}
    assert len(user_requests(b2)) == 10


@pytest.mark.parametrize("path,statuses,expect_up", [
    ("/status?code=500", "200-399", False),
    ("/status?code=404", "200-399", False),
    ("/status?code=302", "200-399", True),
    ("/status?code=500", "500-599", True),
])
def test_http_check_status_range(env, path, statuses, expect_up):
    bs = env.backends(2)
    check = ("http method GET path %s status %s interval 200ms timeout 200ms rise 2 fall 2"
             % (path, statuses))
    k = env.lb(bs, check=check, allow_errors=[NO_SERVER])
    # The check really ran against the path given.
    for b in bs:
        b.wait_request(r"GET %s" % path.replace("?", r"\?"), timeout=3)
    # Servers may start up: wait until each has seen `rise`/`fall` verdicts of the kind
    # expected, then the state must follow.
    result = "ok" if expect_up else "fail"
    for b in bs:
        kt.deadline_poll(lambda: k.metrics().get("keel_server_check_total", backend="web",
                                                  server=b.bname, result=result) >= 2, 5,
                         what="2 checks with result=%s for %s" % (result, b.bname))
        k.wait_server_state("web", b.bname, up=expect_up, timeout=5)
    m = k.metrics()
    other = "fail" if expect_up else "ok"
    for b in bs:
        v = m.get("keel_server_check_total", backend="web", server=b.bname, result=other)
        assert not v, "keel_server_check_total{result=%s} for %s: %s" % (other, b.bname, v)
    if expect_up:
        assert dict(count(k.port, 10, path="/user")) == {"a": 5, "b": 5}
    else:
        for _ in range(5):
            st, _, body = kt.http_get(k.port, "/user")
            assert st == 503 and b"no server available" in body.lower(), (st, body)
        for b in bs:
            assert user_requests(b) == [], "a down server got requests"


def test_all_down_503_immediately(env):
    bs = env.backends(2)
    k = env.lb(bs, check=CHECK, allow_errors=[NO_SERVER])
    for b in bs:
        k.wait_server_state("web", b.bname, up=True)
    for b in bs:
        b.kill9()
    for b in bs:
        k.wait_server_state("web", b.bname, up=False, timeout=5)
    for i in range(3):
        t0 = time.monotonic()
        st, h, body = kt.http_get(k.port, "/", timeout=5)
        took = time.monotonic() - t0
        assert st == 503, (st, body)
        assert b"no server available" in body.lower(), body
        assert took < 1.0, "503 took %.3fs" % took


def test_backup_only_when_all_normal_down(env):
    a, b, c = env.backends(3)
    k = env.lb([("a", a.addr), ("b", b.addr), ("c", c.addr, "backup")], check=CHECK)
    for s in "abc":
        k.wait_server_state("web", s, up=True)
    assert dict(count(k.port, 30, path="/user")) == {"a": 15, "b": 15}
    assert user_requests(c) == []

    a.kill9()
    k.wait_server_state("web", "a", up=False)
    assert dict(count(k.port, 10, path="/user")) == {"b": 10}
    assert user_requests(c) == [], "backup used while b was up"

    b.kill9()
    k.wait_server_state("web", "b", up=False)
    assert dict(count(k.port, 10, path="/user")) == {"c": 10}

    a2 = env.restart_backend(a)
    k.wait_server_state("web", "a", up=True)
    before = len(user_requests(c))
    assert dict(count(k.port, 10, path="/user")) == {"a": 10}
    assert len(user_requests(c)) == before
    kt.deadline_poll(lambda: len(user_requests(a2)) == 10, 3, what="10 requests logged by a2")


def test_disabled_server_gets_nothing(env):
    a, b, c = env.backends(3)
    k = env.lb([("a", a.addr), ("b", b.addr), ("c", c.addr, "disabled")], check=CHECK)
    for s in "ab":
        k.wait_server_state("web", s, up=True)
    assert dict(count(k.port, 60, path="/user")) == {"a": 30, "b": 30}
    assert user_requests(c) == []
    assert k.server_up("web", "c") == 0


def _interim_then_final(parts):
    """A server that answers every request head with the byte strings of parts, each in its
    own send() (a short pause between them), then closes."""
    def handler(conn):
        head, _ = kt.read_http_head(conn)
        if head is None:
            return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i, p in enumerate(parts):
            if i > 0:
                time.sleep(0.05)
            conn.sendall(p)
    return handler


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
HINTS = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
FINAL_200 = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
FINAL_503 = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize("parts,expect_up", [
    ([CONTINUE + FINAL_200], True),
    ([CONTINUE + HINTS + FINAL_200], True),
    ([CONTINUE, FINAL_200], True),
    ([CONTINUE + FINAL_503], False),
    ([CONTINUE, FINAL_503], False),
], ids=["1xx+200-one-send", "two-1xx+200-one-send", "1xx,200-two-sends",
        "1xx+503-one-send", "1xx,503-two-sends"])
def test_regression_check_reparses_bytes_after_an_interim_response(env, parts, expect_up):
    """The health check skipped a 1xx head without parsing the bytes already read after it:
    a server sending "100 Continue" and its final response in one segment was judged by a
    read that never came (closed: failed check), so a healthy server went down."""
    s = env.tiny(_interim_then_final(parts))
    k = env.lb([("s1", s.addr)], check=CHECK, allow_errors=[NO_SERVER])
    result, other = ("ok", "fail") if expect_up else ("fail", "ok")

    def verdicts():
        return k.metrics().get("keel_server_check_total", backend="web", server="s1",
                               result=result) or 0
    kt.deadline_poll(lambda: verdicts() >= FALL + 1, 10,
                     what="%d checks with result=%s" % (FALL + 1, result))
    k.wait_server_state("web", "s1", up=expect_up, timeout=5)
    v = k.metrics().get("keel_server_check_total", backend="web", server="s1", result=other)
    assert not v, "keel_server_check_total{result=%s}: %s; log:\n%s" % (other, v, k.tail())


class Clients:
    """Client threads, one per source address, each sending GET path on fresh connections
    until stop() (bounded: at most `limit` requests and `budget` seconds each). Statuses
    (or exceptions) are collected per source."""

    def __init__(self, port, sources, path="/", limit=2000, budget=30.0):
        self.port, self.path, self.limit, self.budget = port, path, limit, budget
        self.results = {s: [] for s in sources}
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(s,), daemon=True)
                        for s in sources]
        for t in self.threads:
            t.start()

    def _run(self, source):
        end = time.monotonic() + self.budget
        for _ in range(self.limit):
            if self.stopping.is_set() or time.monotonic() > end:
                break
            try:
                st = kt.http_get(self.port, self.path, timeout=5, source=source)[0]
            except Exception as e:  # noqa: BLE001 - every failure is recorded
                st = repr(e)
            self.results[source].append(st)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(10)
        assert not any(t.is_alive() for t in self.threads), "client threads hung"
        return self.results


def watch_up(k, servers, seconds, until=None):
    """Poll keel_server_up of servers for `seconds` (or until until() is true); returns the
    servers ever seen down."""
    seen_down = set()
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (until and until()):
        for s in servers:
            if k.server_up("web", s) == 0:
                seen_down.add(s)
        time.sleep(0.05)
    return seen_down


@pytest.mark.timeout(90)
def test_regression_one_slow_client_cannot_take_servers_down(env):
    """A few requests the servers answered after timeout_server, all from one client,
    counted as passive failures and marked every server down: everyone else got 503.
    Failures from one client now need the active check's confirmation (it passes here)."""
    a, b = env.backends(2)
    check = "http path /healthz interval 1s timeout 500ms rise 2 fall 2"
    k = env.lb([a, b], check=check, backend_extra="    timeout_server 300ms;\n",
               allow_errors=[NO_SERVER])
    for s in "ab":
        k.wait_server_state("web", s, up=True)
    mark = k.log.mark()
    good = Clients(k.port, ["127.0.0.2", "127.0.0.3"])
    slow = []

    def bad_client():
        for _ in range(8):  # 4 per server with round robin: twice `fall` each
            try:
                slow.append(kt.http_get(k.port, "/slow?ms=1000", timeout=5)[0])
            except Exception as e:  # noqa: BLE001
                slow.append(repr(e))
    t = threading.Thread(target=bad_client, daemon=True)
    t.start()
    seen_down = watch_up(k, "ab", 30, until=lambda: not t.is_alive())
    t.join(10)
    # and a little after the last slow request: its failure is drained every 100 ms
    seen_down |= watch_up(k, "ab", 1.0)
    results = good.stop()
    assert slow == [504] * 8, slow
    assert not seen_down, "servers marked down by one client: %s; log:\n%s" % (
        sorted(seen_down), k.tail())
    assert not k.log.find(r"server (a|b): server down", mark), k.tail()
    for src, sts in results.items():
        assert sts and all(s == 200 for s in sts), "%s: %s" % (
            src, collections.Counter(map(str, sts)))


def _reset_at_once(conn):
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@pytest.mark.timeout(90)
@pytest.mark.parametrize("sources", [["127.0.0.1"], ["127.0.0.1", "127.0.0.2"]],
                         ids=["one-client", "two-clients"])
def test_passive_failures_from_several_clients_mark_down(env, sources):
    """Server b resets every request while its check (port of a healthy helper) passes:
    failures from two clients take it down at once; from one client only they never do
    (its check refutes them). Clients see 200 throughout (GETs are retried on a)."""
    a, helper = env.backends(2)
    b = env.tiny(_reset_at_once)
    check = "http path /healthz port %d interval 1s timeout 500ms rise 2 fall 2" % helper.port
    k = env.lb([("a", a.addr), ("b", b.addr)], check=check, backend_extra="    retries 1;\n")
    for s in "ab":
        k.wait_server_state("web", s, up=True)
    mark = k.log.mark()
    clients = Clients(k.port, sources)
    try:
        if len(sources) > 1:
            t0 = time.monotonic()
            hit = k.log.wait(r"server b: server down \(.*from several clients", timeout=5,
                             start=mark)
            print("b down after %.3fs: %s" % (time.monotonic() - t0, hit))
            assert k.server_up("web", "b") == 0
            assert k.server_up("web", "a") == 1
        else:
            kt.deadline_poll(lambda: b.accepted >= 40, 20, what="40 requests reset by b")
            assert not watch_up(k, "b", 0.5), k.tail()
            assert not k.log.find(r"server b: server down", mark), k.tail()
    finally:
        results = clients.stop()
    for src, sts in results.items():
        assert sts and all(s == 200 for s in sts), "%s: %s" % (
            src, collections.Counter(map(str, sts)))


@pytest.mark.timeout(60)
def test_dead_server_is_down_before_its_next_check(env):
    """Passive detection still finds a really dead server fast, even with one client: its
    failures ask for a check at once, the check fails and confirms them (the interval of
    10 s would otherwise take up to 10 s + fall intervals)."""
    a, b = env.backends(2)
    check = "http path /healthz interval 10s timeout 500ms rise 2 fall 2"
    k = env.lb([a, b], check=check, backend_extra="    retries 1;\n")
    for s in "ab":
        k.wait_server_state("web", s, up=True)
    mark = k.log.mark()
    b.kill9()
    t0 = time.monotonic()
    clients = Clients(k.port, ["127.0.0.1"])
    try:
        k.log.wait(r"server b: server down \(.*confirmed by a failed check", timeout=5,
                   start=mark)
        took = time.monotonic() - t0
        print("b down after %.3fs" % took)
        assert took < 3, took
    finally:
        results = clients.stop()
    sts = results["127.0.0.1"]
    assert sts and all(s == 200 for s in sts), collections.Counter(map(str, sts))
