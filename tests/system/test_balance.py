# SPDX-License-Identifier: MIT
"""Balancing algorithms seen from outside: which server answered (X-Server / body)."""
import collections
import threading
import time

import pytest

import keeltest as kt

CHECK = "http method GET path /healthz status 200-399 interval 200ms timeout 200ms rise 2 fall 2"


def count(port, n, path="/", keepalive=False, source=None):
    """n sequential GETs; Counter of servers. Every response must be a 200."""
    c = collections.Counter()
    conn = kt.KeepAlive(port, source=source) if keepalive else None
    try:
        for i in range(n):
            if conn:
                st, h, body = conn.request(path)
            else:
                st, h, body = kt.http_get(port, path, source=source)
            assert st == 200, "request %d: %s %r" % (i, st, body)
            c[kt.server_of(h, body)] += 1
    finally:
        if conn:
            conn.close()
    return c


@pytest.mark.parametrize("keepalive", [False, True], ids=["new-conn", "keepalive"])
def test_roundrobin_exact_thirds(env, keepalive):
    bs = env.backends(3)
    k = env.lb(bs, balance="roundrobin")
    c = count(k.port, 300, keepalive=keepalive)
    assert dict(c) == {"a": 100, "b": 100, "c": 100}


def test_roundrobin_weights(env):
    a, b, c = env.backends(3)
    k = env.lb([("a", a.addr, "weight 3"), ("b", b.addr, "weight 2"), ("c", c.addr, "weight 1")])
    got = count(k.port, 600, keepalive=True)
    assert dict(got) == {"a": 300, "b": 200, "c": 100}
    # Smooth weighted round robin interleaves: never 3 "a" in a row within a cycle of 6.
    conn = kt.KeepAlive(k.port)
    seq = "".join(kt.server_of(*conn.request("/")[1:]) for _ in range(12))
    conn.close()
    assert "aaa" not in seq, seq


@pytest.mark.parametrize("workers", [1, 2])
def test_leastconn_avoids_busy_server(env, workers):
    bs = env.backends(3)
    k = env.lb(bs, balance="leastconn", workers=workers,
               backend_extra="    timeout_server 30s;\n")
    held = []
    inflight = collections.Counter({b.bname: 0 for b in bs})
    try:
        # Open 5 slow requests one by one; each must land on a least-loaded server.
        for i in range(5):
            marks = {b.bname: b.log.mark() for b in bs}
            r = kt.Raw(k.port, timeout=15)
            held.append(r)
            r.send("GET /slow?ms=3000&i=%d HTTP/1.1\r\nHost: t\r\n\r\n" % i)
            target = "/slow\\?ms=3000&i=%d" % i

            def landed():
                for b in bs:
                    if b.log.find("request GET " + target, marks[b.bname]):
                        return b.bname
                return None
            name = kt.deadline_poll(landed, 3, what="slow request %d at a backend" % i)
            least = min(inflight.values())
            assert inflight[name] == least, (
                "slow request %d went to %s holding %d, others %s" % (i, name, inflight[name],
                                                                     dict(inflight)))
            inflight[name] += 1
        # 2/2/1: the next (fast, sequential) requests all go to the one least-loaded server.
        least_name = min(inflight, key=lambda n: inflight[n])
        assert sorted(inflight.values()) == [1, 2, 2], dict(inflight)
        got = count(k.port, 30, keepalive=True)
        assert dict(got) == {least_name: 30}, (
            "in flight %s, fast requests went to %s" % (dict(inflight), dict(got)))
        for r in held:
            resp = r.read_response(timeout=10)
            assert resp.status == 200
    finally:
        for r in held:
            r.close()


def test_source_affinity_and_minimal_move(env):
    bs = env.backends(3)
    by_name = {b.bname: b for b in bs}
    k = env.lb(bs, balance="source", check=CHECK)
    for b in bs:
        k.wait_server_state("web", b.bname, up=True)
    clients = ["127.0.0.%d" % i for i in range(10, 70)]
    first = {}
    for ip in clients:
        c = count(k.port, 3, source=ip)
        assert len(c) == 1, "client %s reached several servers: %s" % (ip, dict(c))
        first[ip] = next(iter(c))
    per_server = collections.Counter(first.values())
    assert set(per_server) == {"a", "b", "c"}, "some server got no client: %s" % per_server

    # Kill b: only b's clients move.
    victim = "b"
    by_name[victim].kill9()
    k.wait_server_state("web", victim, up=False, timeout=5)
    moved, stayed_wrong = [], []
    for ip in clients:
        c = count(k.port, 2, source=ip)
        assert len(c) == 1, "client %s reached several servers: %s" % (ip, dict(c))
        now = next(iter(c))
        assert now != victim
        if first[ip] == victim:
            moved.append(ip)
        elif now != first[ip]:
            stayed_wrong.append((ip, first[ip], now))
    assert not stayed_wrong, "clients not on %s moved: %s" % (victim, stayed_wrong)
    frac = len(moved) / len(clients)
    assert 0.1 <= frac <= 0.6, "moved fraction %.2f, expected about a third" % frac

    # b comes back: its clients return to it, the others still stay.
    env.restart_backend(by_name[victim])
    k.wait_server_state("web", victim, up=True, timeout=5)
    for ip in clients:
        c = count(k.port, 1, source=ip)
        assert next(iter(c)) == first[ip], "client %s: %s then %s" % (ip, first[ip], dict(c))


def test_random_spreads(env):
    bs = env.backends(3)
    k = env.lb(bs, balance="random")
    c = count(k.port, 300)
    assert set(c) == {"a", "b", "c"}, dict(c)
    # Binomial(300, 1/3): mean 100, sd 8.2; 60 is ~5 sd away.
    for name in "abc":
        assert c[name] >= 60, dict(c)


def test_maxconn_queues_then_times_out(env):
    (a,) = env.backends(1)
    k = env.lb([("a", a.addr, "maxconn 1")],
               backend_extra="    timeout_queue 2s;\n    queue_max 16;\n")
    results = []

    def slow(i):
        t0 = time.monotonic()
        st, _, _ = kt.http_get(k.port, "/slow?ms=400&i=%d" % i, timeout=10)
        results.append((st, time.monotonic() - t0))
    threads = [threading.Thread(target=slow, args=(i,), daemon=True) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    # maxconn 1: served one after the other, none refused
    assert sorted(st for st, _ in results) == [200, 200, 200], results
    assert max(d for _, d in results) >= 1.15, "not serialized: %s" % results


def test_queue_timeout_503(env):
    (a,) = env.backends(1)
    k = env.lb([("a", a.addr, "maxconn 1")],
               backend_extra="    timeout_queue 300ms;\n    queue_max 16;\n")
    hold = kt.Raw(k.port, timeout=10)
    try:
        hold.send("GET /slow?ms=2000 HTTP/1.1\r\nHost: t\r\n\r\n")
        a.wait_request(r"GET /slow", timeout=3)
        t0 = time.monotonic()
        st, _, body = kt.http_get(k.port, "/", timeout=10)
        took = time.monotonic() - t0
        assert st == 503, (st, body)
        assert body.strip(), "503 carries a short body"
        assert 0.25 <= took <= 1.5, "503 after %.2fs with timeout_queue 300ms" % took
        assert hold.read_response().status == 200
    finally:
        hold.close()
