# SPDX-License-Identifier: MIT
"""HTTP/1.1 proxying: keep-alive, pipelining, framing, headers, limits, smuggling, timeouts,
and errors from broken servers. Exact bytes go through kt.Raw.

Every case runs twice, over plain TCP and over TLS ([plain] and [tls]: conftest's
`transport`, so the frontend binds with tls and the clients wrap their sockets): a case gives
the same answer over both."""
import os
import re
import socket
import struct
import threading
import time

import pytest

import keeltest as kt

SMUGGLED = "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"


@pytest.fixture(autouse=True)
def _transport(transport):
    """Every case over plain TCP and over TLS."""
    return transport


def start(env, n=2, frontend_extra="", backend_extra="", **kw):
    bs = env.backends(n)
    k = env.lb(bs, frontend_extra=frontend_extra, backend_extra=backend_extra, **kw)
    return k, bs


def assert_closed(raw, timeout=3.0):
    got = raw.closed_by_peer(timeout)
    assert got is True, "connection not closed by keel (extra bytes: %r)" % raw.buf[:200]


def assert_never_logged(backends, pattern, window=0.5):
    """No backend logs pattern during a short window (absence cannot be shown otherwise)."""
    end = time.monotonic() + window
    while True:
        for b in backends:
            hit = b.log.find(pattern)
            assert not hit, "backend %s received %s" % (b.bname, hit)
        if time.monotonic() >= end:
            return
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# Connection management

def test_keepalive_several_requests_one_connection(env):
    k, _ = start(env)
    with kt.Raw(k.port) as r:
        seen = set()
        for i in range(6):
            r.send("GET /ka?i=%d HTTP/1.1\r\nHost: t\r\n\r\n" % i)
            resp = r.read_response()
            assert resp.status == 200, resp
            assert (resp.header("connection") or "").lower() != "close"
            seen.add(resp.header("x-server"))
        assert seen == {"a", "b"}, "requests on one connection are balanced per request"


def test_pipelining_responses_in_order(env):
    k, _ = start(env)
    with kt.Raw(k.port, timeout=10) as r:
        t0 = time.monotonic()
        r.send("GET /slow?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n"
               "GET /headers?p=2 HTTP/1.1\r\nHost: t\r\n\r\n"
               "GET /headers?p=3 HTTP/1.1\r\nHost: t\r\n\r\n")
        r1 = r.read_response()
        t1 = time.monotonic() - t0
        r2 = r.read_response()
        r3 = r.read_response()
    assert [x.status for x in (r1, r2, r3)] == [200, 200, 200]
    assert r1.body.strip() in (b"a", b"b"), r1
    assert t1 >= 0.29
    assert b"GET /headers?p=2 " in r2.body, r2.body
    assert b"GET /headers?p=3 " in r3.body, r3.body


def test_http10_client(env):
    k, _ = start(env)
    with kt.Raw(k.port) as r:
        r.send("GET /headers HTTP/1.0\r\n\r\n")
        resp = r.read_response()
        assert resp.status == 200, resp
        assert resp.version in ("HTTP/1.0", "HTTP/1.1")
        assert b"GET /headers " in resp.body
        assert (resp.header("transfer-encoding") or "") == ""
        assert_closed(r)


def test_http10_keepalive_client(env):
    """HTTP/1.0 with Connection: keep-alive (ab, old clients): kept open, framed by length."""
    k, _ = start(env)
    with kt.Raw(k.port) as r:
        for _ in range(2):
            r.send("GET / HTTP/1.0\r\nHost: t\r\nConnection: keep-alive\r\n\r\n")
            resp = r.read_response()
            assert resp.status == 200
            assert resp.header("content-length") is not None
            assert (resp.header("connection") or "").lower() == "keep-alive", resp.headers


def test_http10_gets_no_chunked_response(env):
    k, bs = start(env, n=1)
    direct = kt.raw_request(bs[0].port, "GET /chunked HTTP/1.1\r\nHost: t\r\n\r\n")
    with kt.Raw(k.port) as r:
        r.send("GET /chunked HTTP/1.0\r\n\r\n")
        resp = r.read_response()
    assert resp.status == 200
    assert "chunked" not in (resp.header("transfer-encoding") or "").lower(), resp.headers
    assert resp.body == direct.body


def test_head(env):
    k, _ = start(env)
    with kt.Raw(k.port) as r:
        r.send("HEAD /size?bytes=5000 HTTP/1.1\r\nHost: t\r\n\r\n")
        resp = r.read_response(head=True)
        assert resp.status == 200
        # no body bytes follow a HEAD response
        assert r.closed_by_peer(0.3) is False and r.buf == b"", r.buf[:100]
        r.send("GET /size?bytes=10 HTTP/1.1\r\nHost: t\r\n\r\n")
        resp = r.read_response()
        assert resp.status == 200 and len(resp.body) == 10


def test_expect_100_continue(env):
    k, _ = start(env)
    with kt.Raw(k.port) as r:
        r.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n"
               "Expect: 100-continue\r\n\r\n")
        version, status, _, _ = r.read_head(time.monotonic() + 3)
        assert status == 100, "expected 100 Continue before the body, got %s" % status
        r.send(b"x" * 1000)
        resp = r.read_response()
        assert resp.status == 200
        assert b"received=1000" in resp.body, resp.body


def test_expect_100_continue_over_max_body_gets_413(env):
    k, _ = start(env, frontend_extra="    max_body 1m;\n")
    with kt.Raw(k.port) as r:
        r.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n"
               "Expect: 100-continue\r\n\r\n" % (2 << 20))
        resp = r.read_response(timeout=3)
        assert resp.status == 413 and resp.interim == [], resp


def test_chunked_upload(env):
    k, _ = start(env)
    sizes = [1, 10, 1000, 65536, 3]
    body = "".join("%x%s\r\n%s\r\n" % (n, ";ext=1" if i == 2 else "", "y" * n)
                   for i, n in enumerate(sizes))
    with kt.Raw(k.port) as r:
        r.send("POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               + body + "0\r\nX-Trailer: t\r\n\r\n")
        resp = r.read_response()
        assert resp.status == 200, resp
        assert b"received=%d" % sum(sizes) in resp.body, resp.body
        # the connection is still usable: the body was framed exactly
        r.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert r.read_response().status == 200


def test_chunked_response(env):
    k, bs = start(env, n=1)
    direct = kt.raw_request(bs[0].port, "GET /chunked HTTP/1.1\r\nHost: t\r\n\r\n")
    assert direct.body
    with kt.Raw(k.port) as r:
        for _ in range(2):
            r.send("GET /chunked HTTP/1.1\r\nHost: t\r\n\r\n")
            resp = r.read_response()
            assert resp.status == 200
            assert resp.body == direct.body


def test_forwarded_headers_and_hop_by_hop_removed(env):
    k, _ = start(env)
    hop = ("Connection: keep-alive, X-Secret-Hop\r\nKeep-Alive: timeout=5\r\n"
           "Proxy-Connection: keep-alive\r\nTE: trailers\r\nUpgrade: foo/1\r\n"
           "Trailer: X-T\r\nX-Secret-Hop: 1\r\n")
    with kt.Raw(k.port, source="127.0.0.7") as r:
        r.send("GET /headers HTTP/1.1\r\nHost: example.test:8080\r\n"
               "X-Forwarded-For: 10.1.2.3\r\nX-Keep: yes\r\n" + hop + "\r\n")
        resp = r.read_response()
        assert resp.status == 200
        got = parse_head(resp.body)
        r.send("GET /headers HTTP/1.1\r\nHost: example.test\r\n\r\n")
        got2 = parse_head(r.read_response().body)
    assert got.get("x-forwarded-for") == ["10.1.2.3, 127.0.0.7"], got
    assert got.get("x-forwarded-proto") == ["https" if k.tls else "http"], got
    assert got.get("x-forwarded-host") == ["example.test:8080"], got
    assert got.get("x-keep") == ["yes"]
    for name in ("keep-alive", "proxy-connection", "te", "upgrade", "trailer", "x-secret-hop"):
        assert name not in got, "hop-by-hop header %s forwarded: %s" % (name, got[name])
    for v in got.get("connection", []):
        assert "secret" not in v.lower(), "client's Connection header forwarded: %s" % v
    assert got2.get("x-forwarded-for") == ["127.0.0.7"], got2


def parse_head(body):
    """The request head echoed by /headers: {lowercase name: [values]}."""
    lines = body.decode("latin-1").split("\r\n") if b"\r\n" in body else \
        body.decode("latin-1").split("\n")
    out = {}
    for l in lines[1:]:
        if not l:
            break
        k, _, v = l.partition(":")
        out.setdefault(k.strip().lower(), []).append(v.strip())
    return out


# ---------------------------------------------------------------------------------------------
# Large bodies and limits

GIB = 1 << 30


@pytest.mark.timeout(240)
def test_1gib_upload_streamed_constant_memory(env):
    # Under ASan, freed memory waits in a quarantine (256 MiB by default) before it is reused.
    # Over TLS, OpenSSL gives its record buffers back between bursts and takes new ones
    # (SSL_MODE_RELEASE_BUFFERS), so that quarantine would fill and count as growth: a small
    # one keeps the check about keel (no effect on a build without ASan).
    k, _ = start(env, n=1, frontend_extra="    max_body 2g;\n", keel_env={
        "ASAN_OPTIONS": "abort_on_error=0:detect_leaks=1:quarantine_size_mb=16"})
    # warm up: buffers and pools exist before the baseline is taken
    for _ in range(3):
        assert kt.raw_request(k.port, "POST /upload HTTP/1.1\r\nHost: t\r\n"
                              "Content-Length: 100000\r\n\r\n" + "z" * 100000).status == 200
    rss0 = k.rss_kib("VmRSS")
    samples = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                samples.append(k.rss_kib("VmRSS"))
            except (OSError, ValueError):
                return
            stop.wait(0.05)
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    chunk = memoryview(b"\xa5" * (1 << 20))
    t0 = time.monotonic()
    try:
        with kt.Raw(k.port, timeout=30) as r:
            r.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % GIB)
            for i in range(GIB // len(chunk)):
                r.sock.sendall(chunk)
                assert time.monotonic() - t0 < 150, "upload too slow: %d MiB sent" % i
            resp = r.read_response(timeout=60)
    finally:
        stop.set()
        t.join(2)
    took = time.monotonic() - t0
    hwm = k.rss_kib("VmHWM")
    peak = max(samples + [k.rss_kib("VmRSS")])
    print("1 GiB in %.1fs; RSS before %d KiB, peak sampled %d KiB, VmHWM %d KiB"
          % (took, rss0, peak, hwm))
    assert resp.status == 200, resp
    assert b"received=%d" % GIB in resp.body, resp.body
    assert peak - rss0 < 64 * 1024, "RSS grew by %d KiB" % (peak - rss0)
    assert hwm - rss0 < 64 * 1024, "VmHWM is %d KiB above the RSS before" % (hwm - rss0)


def test_413_content_length_over_max_body(env):
    k, bs = start(env, frontend_extra="    max_body 1m;\n")
    with kt.Raw(k.port) as r:
        r.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % ((1 << 20) + 1))
        resp = r.read_response(timeout=3)
        assert resp.status == 413, resp
        assert resp.body.strip(), "error responses carry a short body"
        assert_closed(r)
    assert bs[0].requests("/upload") == [] and bs[1].requests("/upload") == []
    # exactly max_body is fine
    resp = kt.raw_request(k.port, "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
                          % (1 << 20) + "q" * (1 << 20))
    assert resp.status == 200 and b"received=%d" % (1 << 20) in resp.body


def test_413_chunked_over_max_body(env):
    k, _ = start(env, frontend_extra="    max_body 1m;\n")
    piece = "%x\r\n%s\r\n" % (65536, "c" * 65536)
    with kt.Raw(k.port, timeout=5) as r:
        r.send("POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        # a polite client: stops sending as soon as a response starts
        for _ in range(24):
            if r.has_data():
                break
            try:
                r.send(piece)
            except OSError:
                break
        resp = r.read_response(timeout=5)
        assert resp.status == 413, resp


def test_414_request_line_too_long(env):
    k, _ = start(env, frontend_extra="    max_request_line 8k;\n")
    with kt.Raw(k.port) as r:
        r.send("GET /%s HTTP/1.1\r\nHost: t\r\n\r\n" % ("a" * 9000))
        resp = r.read_response()
        assert resp.status == 414, resp
        assert resp.body.strip()
        assert_closed(r)


@pytest.mark.parametrize("shape", ["many-headers", "one-huge-header"])
def test_431_head_too_large(env, shape):
    k, _ = start(env, frontend_extra="    max_header 16k;\n")
    if shape == "many-headers":
        extra = "".join("X-Fill-%d: %s\r\n" % (i, "f" * 1000) for i in range(30))
    else:
        extra = "X-Huge: %s\r\n" % ("h" * 20000)
    with kt.Raw(k.port) as r:
        r.send("GET / HTTP/1.1\r\nHost: t\r\n" + extra + "\r\n")
        resp = r.read_response()
        assert resp.status == 431, resp
        assert resp.body.strip()
        assert_closed(r)
    # a head just under the limit still passes
    small = "".join("X-Fill-%d: %s\r\n" % (i, "f" * 1000) for i in range(10))
    assert kt.raw_request(k.port, "GET / HTTP/1.1\r\nHost: t\r\n" + small + "\r\n").status == 200


# ---------------------------------------------------------------------------------------------
# Request smuggling and malformed requests: 400, closed, and nothing smuggled reaches a server

SMUGGLING = {
    "cl-te": "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n"
             "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "te-cl": "POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
             "Content-Length: 6\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "duplicate-differing-cl": "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n"
                              "Content-Length: %d\r\n\r\n%s" % (len(SMUGGLED), SMUGGLED),
    "cl-list-differing": "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 0, %d\r\n\r\n%s"
                         % (len(SMUGGLED), SMUGGLED),
    "bad-chunk-size": "POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "zz\r\n" + SMUGGLED,
    "chunk-size-overflow": "POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                           "\r\n10000000000000000\r\n" + SMUGGLED,
    "negative-chunk-size": "POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                           "\r\n-1\r\n" + SMUGGLED,
    "obs-fold": "GET /headers HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n b\r\n\r\n" + SMUGGLED,
    "obs-fold-te": "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                   "Transfer-Encoding: identity\r\n chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "space-before-colon": "POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n"
                          "Content-Length: 5\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "space-in-header-name": "GET / HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n" + SMUGGLED,
    "ctl-in-header-name": "GET / HTTP/1.1\r\nHost: t\r\nX\x01Y: x\r\n\r\n" + SMUGGLED,
    "missing-host-http11": "GET / HTTP/1.1\r\nX-A: b\r\n\r\n" + SMUGGLED,
    "duplicate-host": "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" + SMUGGLED,
    "te-in-http10": "POST /upload HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "0\r\n\r\n" + SMUGGLED,
    "te-chunked-not-last": "POST /upload HTTP/1.1\r\nHost: t\r\n"
                           "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + SMUGGLED,
}


@pytest.mark.parametrize("case", sorted(SMUGGLING))
def test_smuggling_rejected(env, case):
    k, bs = start(env)
    with kt.Raw(k.port) as r:
        r.send(SMUGGLING[case])
        resp = r.read_response()
        assert resp.status == 400, resp
        assert resp.body.strip(), "400 carries a short body"
        assert_closed(r)
    assert_never_logged(bs, r"request \S+ /smuggled")
    # keel still serves
    assert kt.http_get(k.port, "/")[0] == 200


# ---------------------------------------------------------------------------------------------
# Timeouts and broken servers

def test_slowloris_408(env):
    k, _ = start(env, frontend_extra="    timeout_header 2s;\n")
    data = b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: 1234567890\r\n\r\n"
    with kt.Raw(k.port, timeout=8) as r:
        t0 = time.monotonic()
        stop = threading.Event()

        def trickle():
            for i in range(10):
                if stop.wait(1.0 if i else 0):
                    return
                try:
                    r.sock.send(data[i:i + 1])
                except OSError:
                    return
        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        try:
            resp = r.read_response(timeout=8)
            took = time.monotonic() - t0
            assert resp.status == 408, resp
            assert 1.5 <= took <= 4.0, "408 after %.2fs with timeout_header 2s" % took
            assert_closed(r)
        finally:
            stop.set()
            t.join(3)


def _garbage_handler(reply, read_head=True):
    def handler(conn):
        if read_head:
            head, _ = kt.read_http_head(conn)
            if head is None:
                return
        if reply:
            conn.sendall(reply)
    return handler


GARBAGE = {
    "not-http": b"this is not http at all\r\n\r\n",
    "bad-status": b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    "close-without-response": b"",
    "differing-content-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                                 b"Content-Length: 6\r\n\r\nhello!",
}


@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_502_on_garbage_from_server(env, case):
    srv = env.tiny(_garbage_handler(GARBAGE[case]))
    k = env.lb([("g", srv.addr)], allow_errors=[r"."])
    t0 = time.monotonic()
    st, h, body = kt.http_get(k.port, "/", timeout=10)
    assert st == 502, (st, body)
    assert b"bad gateway" in body.lower(), body
    assert time.monotonic() - t0 < 5


def test_504_when_server_slower_than_timeout_server(env):
    k, bs = start(env, n=1, backend_extra="    timeout_server 500ms;\n", allow_errors=[r"."])
    t0 = time.monotonic()
    st, h, body = kt.http_get(k.port, "/slow?ms=3000", timeout=10)
    took = time.monotonic() - t0
    assert st == 504, (st, body)
    assert b"gateway timeout" in body.lower(), body
    assert 0.4 <= took <= 2.5, "504 after %.2fs with timeout_server 500ms" % took
    assert kt.http_get(k.port, "/")[0] == 200


def test_large_heads_pass_both_ways(env):
    """Heads of 10 KB (under the 16 KiB limits) go through: keel's head buffers start small
    and grow for them."""
    big = "x" * 10000
    reply = ("HTTP/1.1 200 OK\r\nX-Big: %s\r\nContent-Length: 2\r\n\r\nok" % big).encode()
    srv = env.tiny(_garbage_handler(reply))
    k = env.lb([("g", srv.addr)])
    st, h, body = kt.http_get(k.port, "/", headers={"X-Req-Big": big}, timeout=10)
    assert st == 200 and body == b"ok" and h["x-big"] == big
    (b,) = env.backends(1)
    k2 = env.lb([b])
    st, h, body = kt.http_get(k2.port, "/headers", headers={"X-Req-Big": big}, timeout=10)
    # the test backend echoes at most 8 KiB of the head it received
    assert st == 200 and b"X-Req-Big: " + b"x" * 6000 in body


def test_regression_max_header_above_16k_does_not_stall(env):
    """The client input buffer was fixed at 16 KiB: with max_header 32k a 20 KB head filled
    it, keel stopped reading and the client got 408 after the header timeout."""
    big = "y" * 20000
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    srv = env.tiny(_garbage_handler(reply))
    k = env.lb([("g", srv.addr)], frontend_extra="    max_header 32k;\n")
    t0 = time.monotonic()
    st, _, body = kt.http_get(k.port, "/", headers={"X-Big": big}, timeout=10)
    assert st == 200 and body == b"ok"
    assert time.monotonic() - t0 < 3


# ---------------------------------------------------------------------------------------------
# Issue 10: an outside review of the proxy

def test_regression_connection_cannot_remove_x_forwarded_for(env):
    """`Connection: X-Forwarded-For` with any X-Forwarded-For made the server receive no
    client address at all; underscore spellings of keel's headers reached it as well."""
    k, _ = start(env, n=1)
    with kt.Raw(k.port, source="127.0.0.7") as r:
        r.send("GET /headers HTTP/1.1\r\nHost: h\r\n"
               "Connection: X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host\r\n"
               "X-Forwarded-For: 10.9.9.9\r\n\r\n")
        got = parse_head(r.read_response().body)
        r.send("GET /headers HTTP/1.1\r\nHost: h\r\nX_Forwarded_For: 6.6.6.6\r\n"
               "X-Forwarded_Proto: https\r\nX_Served_By: evil\r\nX_Other: kept\r\n\r\n")
        got2 = parse_head(r.read_response().body)
    assert got.get("x-forwarded-for") == ["10.9.9.9, 127.0.0.7"], got
    assert got.get("x-forwarded-proto") == ["https" if k.tls else "http"], got
    assert got.get("x-forwarded-host") == ["h"], got
    assert got2.get("x-forwarded-for") == ["127.0.0.7"], got2
    assert got2.get("x-forwarded-proto") == ["https" if k.tls else "http"], got2
    for name in ("x_forwarded_for", "x-forwarded_proto", "x_served_by"):
        assert name not in got2, "%s forwarded: %s" % (name, got2)
    assert got2.get("x_other") == ["kept"], got2


def test_regression_too_many_connection_tokens_is_400(env):
    """More header names in Connection than keel can remove: 400 and close, not a request
    forwarded with some of them still in it."""
    k, bs = start(env, n=1)
    names = ["X-H%d" % i for i in range(17)]
    with kt.Raw(k.port) as r:
        r.send("GET /headers?many HTTP/1.1\r\nHost: h\r\nConnection: %s\r\n%s\r\n"
               % (", ".join(names), "".join("%s: secret\r\n" % n for n in names)))
        resp = r.read_response()
        assert resp.status == 400, resp
        assert_closed(r)
    assert_never_logged(bs, r"/headers\?many")
    # 16 names are honoured in full
    with kt.Raw(k.port) as r:
        r.send("GET /headers HTTP/1.1\r\nHost: h\r\nConnection: %s\r\n%s\r\n"
               % (", ".join(names[:16]), "".join("%s: secret\r\n" % n for n in names[:16])))
        resp = r.read_response()
    assert resp.status == 200 and b"secret" not in resp.body, resp.body


def test_regression_fragment_in_target_is_400(env):
    """`#` was forwarded raw while routing stopped at it, so keel and the server saw different
    paths: /public#/../admin was routed as /public, the server got the whole target."""
    bs = env.backends(1)
    k = env.lb(bs, frontend_extra="    location /admin { return 403; }\n")
    with kt.Raw(k.port) as r:
        r.send("GET /admin#x HTTP/1.1\r\nHost: h\r\n\r\n")
        resp = r.read_response()
        assert resp.status == 400, resp
        assert_closed(r)
    with kt.Raw(k.port) as r:
        r.send("GET /public#/../admin HTTP/1.1\r\nHost: h\r\n\r\n")
        assert r.read_response().status == 400
        assert_closed(r)
    assert_never_logged(bs, "#")
    assert kt.http_get(k.port, "/admin")[0] == 403


def _cpu_seconds(pid):
    """User plus system CPU time of a whole process, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_regression_reset_after_pipelining_does_not_spin(env):
    """A client pipelining more than keel's input buffer (about 17 KiB) behind a slow request,
    then resetting: epoll reported the hangup as a read at every wait, the full buffer was
    never read, and a worker spun until the server answered."""
    k, bs = start(env, n=1)
    pad = "x" * 1000
    pipelined = "".join("GET /p%d HTTP/1.1\r\nHost: h\r\nX-Pad: %s\r\n\r\n" % (i, pad)
                        for i in range(60))
    s = kt.tls_connect(k.port, timeout=5)
    try:
        s.sendall(b"GET /slow?ms=30000 HTTP/1.1\r\nHost: h\r\n\r\n" + pipelined.encode())
        bs[0].wait_request(r"GET /slow\?ms=30000", timeout=10)
        kt.deadline_poll(lambda: (k.metrics().get("keel_frontend_bytes_in_total") or 0)
                         >= 17 * 1024, 10, what="keel read 17 KiB")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        s.close()  # SO_LINGER 0: a reset
    # CPU over a 2 s window right after the reset (the server answers only after 30 s)
    cpu0, t0 = _cpu_seconds(k.pid), time.monotonic()
    while time.monotonic() < t0 + 2.0:
        time.sleep(0.1)
    used = _cpu_seconds(k.pid) - cpu0
    took = time.monotonic() - t0
    assert used < 0.2, "keel used %.2f s of CPU in %.1f s after the reset" % (used, took)
    kt.deadline_poll(lambda: k.metrics().get("keel_frontend_connections_active") == 0, 10,
                     what="the reset connection freed")


def _streaming_handler(delay_s, chunks, every_s, log):
    """A server that reads a POST, answers after delay_s, then streams `chunks` chunks one
    every every_s seconds (each within timeout_server of the last)."""
    def handler(conn):
        conn.settimeout(30)
        head, rest = kt.read_http_head(conn)
        if head is None:
            return
        n = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        while len(rest) < n:
            d = conn.recv(4096)
            if not d:
                return
            rest += d
        log.append(rest)
        time.sleep(delay_s)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(chunks):
            if i:
                time.sleep(every_s)
            data = b"part %d\n" % i
            conn.sendall(b"%x\r\n%s\r\n" % (len(data), data))
        conn.sendall(b"0\r\n\r\n")
    return handler


@pytest.mark.timeout(180)
def test_regression_timeout_client_does_not_cut_a_long_response(env):
    """timeout_client kept running once the request was complete: a POST whose response came
    after, or streamed for, longer than timeout_client was cut with 408. Here the response
    starts after 7 s and streams for over 63 s more (one chunk every 3 s, within
    timeout_server 10s), through a frontend with timeout_client 5s."""
    if env.transport == "tls":
        # 70 s of timers that do not depend on the transport; the TLS write path under
        # timeout_client is test_regression_slow_reader_is_governed_by_timeout_client[tls]
        pytest.skip("plain only: a 70 s timer case (the suite runs twice in CI)")
    got = []
    srv = env.tiny(_streaming_handler(7, 22, 3, got))
    k = env.lb([("s", srv.addr)], frontend_extra="    timeout_client 5s;\n",
               backend_extra="    timeout_server 10s;\n")
    t0 = time.monotonic()
    with kt.Raw(k.port, timeout=150) as r:
        r.send("POST /stream HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
        resp = r.read_response()
        took = time.monotonic() - t0
        assert resp.status == 200, (resp, took)
        assert resp.body == b"".join(b"part %d\n" % i for i in range(22)), (resp.body, took)
        assert took >= 70, "the response took only %.1f s" % took
    assert got == [b"hello"]


def _big_response_handler(size):
    """A server answering any request with size bytes, as fast as it is read."""
    def handler(conn):
        conn.settimeout(30)
        head, _ = kt.read_http_head(conn)
        if head is None:
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        block = b"z" * 65536
        left = size
        while left > 0:
            conn.sendall(block[:min(left, len(block))])
            left -= min(left, len(block))
    return handler


def test_regression_slow_reader_is_governed_by_timeout_client(env):
    """A client that stops reading a large response is the client timeout's business: with
    timeout_server 1s, a client pausing 3 s before reading 12 MB was cut by the server timer
    (keel stops reading the server while the client's socket is full; the old code cut it
    after about 4 MB); and with timeout_client 2s a client that never reads is closed."""
    size = 12000000
    srv = env.tiny(_big_response_handler(size))
    for client_s, server_s, reads in ((10, 1, True), (2, 30, False)):
        k = env.lb([("s", srv.addr)], frontend_extra="    timeout_client %ds;\n" % client_s,
                   backend_extra="    timeout_server %ds;\n" % server_s)
        with kt.Raw(k.port, timeout=90) as r:
            r.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            r.send("GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
            kt.deadline_poll(
                lambda: (k.metrics().get("keel_frontend_bytes_out_total") or 0) > 0, 10,
                what="the response started")
            if not reads:
                kt.deadline_poll(
                    lambda: k.metrics().get("keel_frontend_connections_active") == 0, 15,
                    what="keel closing a client that does not read")
                continue
            t0 = time.monotonic()
            while time.monotonic() < t0 + 3:
                time.sleep(0.1)
            resp = r.read_response()
            assert resp.status == 200 and len(resp.body) == size, (resp.status, len(resp.body))
