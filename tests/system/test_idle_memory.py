# SPDX-License-Identifier: MIT
"""Memory per idle keep-alive connection (issue 11): a connection that made a request and
went quiet holds only its small connection struct. Its buffers and its exchange (the parsed
request and response) go back to per-thread pools when the response is out, as nginx frees
its buffers between requests. Before issue 11 each idle connection kept about 15 KiB (4 KiB
input, 4 KiB output, 2 KiB server request head, the access-log copy, two parsed heads);
nginx keeps about 0.7 KiB, HAProxy 1.4 KiB.

The test opens N connections to one worker, each makes one request (half answered by keel,
half proxied to a backend), and all stay open and idle; keel's RSS grows by less than
BOUND_BYTES per connection. Pipelined requests sent with the first one are all answered
although the input buffer is released between requests."""
import socket
import time

import pytest

import keeltest as kt

N = 2000
BOUND_BYTES = 1536  # nginx ~700 B; keel before issue 11: ~15,000 B


def read_response(s, want=1):
    """Read want complete responses (each "HTTP/1.1 200", Content-Length bodies)."""
    data = b""
    deadline = time.monotonic() + 10
    while data.count(b"HTTP/1.1 200") < want or not complete(data, want):
        assert time.monotonic() < deadline, "no complete response: %r" % data[-200:]
        chunk = s.recv(65536)
        assert chunk, "keel closed the connection: %r" % data[-200:]
        data += chunk
    return data


def complete(data, want):
    """Whether data holds want responses with their whole bodies."""
    pos = 0
    for _ in range(want):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            return False
        head = data[pos:end].decode("latin-1").lower()
        length = 0
        for line in head.split("\r\n"):
            if line.startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        pos = end + 4 + length
        if len(data) < pos:
            return False
    return True


def one_request(port, path):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    read_response(s)
    return s


@pytest.mark.timeout(180)
def test_idle_keepalive_connections_hold_little_memory(env):
    (b,) = env.backends(1)
    port, admin = env.port(), env.port()
    cfg = """global { workers 1; admin 127.0.0.1:%d; }
frontend www {
    bind 127.0.0.1:%d;
    location = /hz { return 200 "ok"; }
    location /api/ { proxy app; }
}
backend app { server a %s; }
""" % (admin, port, b.addr)
    k = env.keel(cfg, ports=[port], admin=admin)
    paths = ["/hz", "/api/x"]
    # Warm up: the pools, the server connection pool and the heap reach their working size.
    for i in range(300):
        one_request(port, paths[i % 2]).close()
    time.sleep(0.2)  # let the closes be processed: not a wait for a condition, a settle
    before = k.rss_kib()
    held = []
    try:
        for i in range(N):
            held.append(one_request(port, paths[i % 2]))
        # Every connection is idle now (its response was read); keel saw them all.
        kt.deadline_poll(lambda: k.metrics().get(
            "keel_frontend_connections_active", frontend="www") >= N, 10,
            what="%d connections active" % N)
        after = k.rss_kib()
        per_conn = (after - before) * 1024.0 / N
        print("RSS %d KiB -> %d KiB: %.0f bytes per idle connection" % (before, after, per_conn))
        assert per_conn < BOUND_BYTES, \
            "%.0f bytes per idle keep-alive connection (bound %d)" % (per_conn, BOUND_BYTES)
        # Idle connections still serve: a second request on some of them, and pipelined
        # requests whose bytes arrive together with the first.
        for s in held[:50]:
            s.sendall(b"GET /hz HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"GET /api/y HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"GET /hz HTTP/1.1\r\nHost: x\r\n\r\n")
            read_response(s, 3)
    finally:
        for s in held:
            s.close()
