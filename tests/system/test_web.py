# SPDX-License-Identifier: MIT
"""The web server role (issue 3, first part): static files under a root, locations
(exact and longest prefix), proxying to a backend, fixed answers and redirects. Every case
runs over plain TCP and over TLS ([plain], [tls]: the site binds with tls, the clients wrap
their sockets; over TLS, files go through the transport's copy in place of sendfile)."""
import gzip
import os
import socket
import stat
import time
import urllib.parse

import pytest

import keeltest as kt


@pytest.fixture
def site(env, transport):
    root = os.path.join(env.tmp, "www")
    outside = os.path.join(env.tmp, "outside")
    os.makedirs(os.path.join(root, "sub"))
    os.makedirs(os.path.join(root, "empty"))
    os.makedirs(os.path.join(root, "pub", "list"))
    os.makedirs(outside)
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<h1>home</h1>\n")
    with open(os.path.join(root, "a.txt"), "w") as f:
        f.write("hello static world\n")
    with open(os.path.join(root, "a.txt.gz"), "wb") as f:
        f.write(gzip.compress(b"hello static world\n"))
    with open(os.path.join(root, "k64.bin"), "wb") as f:
        f.write(os.urandom(65536))
    with open(os.path.join(root, "sub", "x.css"), "w") as f:
        f.write("body{}\n")
    with open(os.path.join(root, "pub", "list", "one.txt"), "w") as f:
        f.write("1\n")
    with open(os.path.join(outside, "secret"), "w") as f:
        f.write("secret\n")
    os.symlink(os.path.join(outside, "secret"), os.path.join(root, "leak"))
    os.symlink("a.txt", os.path.join(root, "inside-link"))  # relative: stays beneath
    (b,) = env.backends(1)
    port, admin = env.port(), env.port()
    bind = "%d" % port
    if transport == "tls":
        bind += " tls;\n    certificate %s %s" % env.tls_cert()
        env.tls_port(port)
    cfg = """global { workers 2; admin 127.0.0.1:%d; }
frontend www {
    bind 127.0.0.1:%s;
    location / { root %s; cache_control "max-age=60"; }
    location /pub/ { root %s; autoindex on; }
    location = /old { return 301 /new; }
    location = /hz { return 200 "ok"; }
    location /api/ { proxy app; }
    location /api/v2/ { return 410 "gone"; }
}
backend app { server a %s; }
""" % (admin, bind, root, root, b.addr)
    k = env.keel(cfg, ports=[port], admin=admin)
    k.port = port
    k.root = root
    return k


def get(k, path, headers=None, method="GET"):
    return kt.http_get(k.port, path, headers=headers, method=method)


def test_static_file_with_type_validators_and_cache_control(site):
    st, h, body = get(site, "/a.txt")
    assert st == 200 and body == b"hello static world\n"
    assert h["content-type"].startswith("text/plain")
    assert h["cache-control"] == "max-age=60"
    assert "etag" in h and "last-modified" in h and h["accept-ranges"] == "bytes"
    st, h, body = get(site, "/")
    assert st == 200 and body == b"<h1>home</h1>\n" and h["content-type"].startswith("text/html")


def test_conditional_requests_get_304(site):
    st, h, _ = get(site, "/a.txt")
    st, h2, body = get(site, "/a.txt", headers={"If-None-Match": h["etag"]})
    assert st == 304 and body == b"" and h2["etag"] == h["etag"]
    assert "content-length" not in h2
    st, _, _ = get(site, "/a.txt", headers={"If-Modified-Since": h["last-modified"]})
    assert st == 304
    st, _, _ = get(site, "/a.txt", headers={"If-None-Match": '"other"'})
    assert st == 200
    st, _, _ = get(site, "/a.txt", headers={"If-Modified-Since": "Mon, 01 Jan 1990 00:00:00 GMT"})
    assert st == 200


def test_range_206_and_416(site):
    with open(os.path.join(site.root, "k64.bin"), "rb") as f:
        data = f.read()
    st, h, body = get(site, "/k64.bin", headers={"Range": "bytes=100-199"})
    assert st == 206 and body == data[100:200]
    assert h["content-range"] == "bytes 100-199/65536"
    st, h, body = get(site, "/k64.bin", headers={"Range": "bytes=-10"})
    assert st == 206 and body == data[-10:]
    st, h, _ = get(site, "/k64.bin", headers={"Range": "bytes=70000-"})
    assert st == 416 and h["content-range"] == "bytes */65536"
    st, _, body = get(site, "/k64.bin", headers={"Range": "bytes=0-1,5-6"})
    assert st == 200 and body == data  # several ranges: the whole file
    st, _, body = get(site, "/k64.bin", headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert st == 200 and body == data


def test_head_has_headers_only(site):
    with kt.Raw(site.port) as r:
        r.send("HEAD /k64.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        resp = r.read_response(head=True)
        assert resp.status == 200 and resp.header("content-length") == "65536"
        r.send("GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n")  # still usable: nothing was sent
        resp = r.read_response()
        assert resp.body == b"hello static world\n"


def test_precompressed_gzip_sibling(site):
    st, h, body = get(site, "/a.txt", headers={"Accept-Encoding": "gzip, br"})
    assert st == 200 and h.get("content-encoding") == "gzip"
    assert "accept-encoding" in h.get("vary", "").lower()
    assert gzip.decompress(body) == b"hello static world\n"
    st, h, body = get(site, "/a.txt", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in h and body == b"hello static world\n"


@pytest.mark.parametrize("path,statuses", [
    ("/../outside/secret", (403, 404)),
    ("/%2e%2e/outside/secret", (403, 404)),
    ("/sub/%2e%2e/%2e%2e/outside/secret", (403, 404)),
    ("/sub%2f..%2f..%2foutside%2fsecret", (403, 404)),
    ("/a.txt%00.html", (400, 403, 404)),
    ("/leak", (403, 404)),
])
def test_traversal_never_leaves_the_root(site, path, statuses):
    resp = kt.raw_request(site.port, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                          % path)
    assert resp.status in statuses, (path, resp.status, resp.body)
    assert b"secret" not in resp.body


def test_symlink_inside_the_root_is_served(site):
    st, _, body = get(site, "/inside-link")
    assert st == 200 and body == b"hello static world\n"


def test_directories(site):
    st, h, _ = get(site, "/sub")
    assert st == 301 and h["location"] == "/sub/"
    st, _, _ = get(site, "/empty/")
    assert st == 403  # no index, no listing
    st, h, body = get(site, "/pub/list/")
    assert st == 200 and b"one.txt" in body and h["content-type"].startswith("text/html")
    st, _, _ = get(site, "/nothing-here")
    assert st == 404


def test_locations_exact_prefix_and_actions(site):
    st, h, _ = get(site, "/old")
    assert st == 301 and h["location"] == "/new"
    st, _, body = get(site, "/hz")
    assert st == 200 and body == b"ok\n"
    st, h, body = get(site, "/api/users")
    assert st == 200 and body == b"a\n" and h["x-server"] == "a"
    st, _, body = get(site, "/api/v2/users")  # longer prefix wins
    assert st == 410 and body == b"gone\n"
    st, _, _ = get(site, "/hz/more")  # exact does not match longer paths: falls to "/"
    assert st == 404


def test_methods_other_than_get_head_get_405(site):
    st, h, _ = get(site, "/a.txt", method="DELETE")
    assert st == 405 and "GET" in h["allow"]


def test_keepalive_across_static_responses(site):
    with kt.Raw(site.port) as r:
        for _ in range(3):
            r.send("GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            assert r.read_response().body == b"hello static world\n"
        r.send("GET /missing HTTP/1.1\r\nHost: t\r\n\r\n")
        assert r.read_response().status == 404
        r.send("GET /k64.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        assert len(r.read_response().body) == 65536


def test_regression_many_pipelined_small_files_all_answered_through_partial_writes(site):
    """Files of at most 16 KiB leave from the worker's cache in one writev (head and body).
    Many pipelined requests that the client does not read fill the socket, so writes come
    back partial; every response must still arrive whole and in order, ranges included.
    Regression: the connection's pump stops after a bounded number of passes (about 25
    requests) to let other connections run, and nothing brought it back for requests
    already read, so the 33rd response never came."""
    data = os.urandom(16384)
    with open(os.path.join(site.root, "k16.bin"), "wb") as f:
        f.write(data)
    n = 300
    with kt.Raw(site.port) as r:
        reqs = []
        for i in range(n):
            if i % 3 == 2:
                reqs.append("GET /k16.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=%d-%d\r\n\r\n"
                            % (i, i + 999))
            else:
                reqs.append("GET /k16.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        r.send("".join(reqs))  # 300 x 16 KiB: far more than the socket buffers hold
        for i in range(n):
            res = r.read_response()
            if i % 3 == 2:
                assert res.status == 206 and res.body == data[i:i + 1000], i
            else:
                assert res.status == 200 and res.body == data, i


def test_changed_file_is_served_within_the_cache_validity(site):
    path = os.path.join(site.root, "changing.txt")
    with open(path, "w") as f:
        f.write("one\n")
    assert get(site, "/changing.txt")[2] == b"one\n"
    with open(path + ".tmp", "w") as f:
        f.write("two, longer\n")
    os.rename(path + ".tmp", path)

    def fresh():
        return get(site, "/changing.txt")[2] == b"two, longer\n" or None
    kt.deadline_poll(fresh, 3, what="the new content (cache validity 1 s)")
    os.unlink(path)

    def gone():
        return get(site, "/changing.txt")[0] == 404 or None
    kt.deadline_poll(gone, 3, what="404 after the file was removed")


def test_regression_drain_closes_a_proxied_request_with_body(site):
    """Routing a request with a body to a proxy location used to clear the "close after this
    response" flag that SIGTERM had set, so a draining keel kept the connection open."""
    import signal
    import time
    with kt.Raw(site.port) as r:
        r.send("POST /api/upload HTTP/1.1\r\nHost: t\r\n")
        time.sleep(0.2)  # the head is incomplete when the drain starts
        site.signal(signal.SIGTERM)
        site.log.wait(r"draining", timeout=5)
        r.send("Content-Length: 3\r\n\r\nabc")
        resp = r.read_response()
        assert resp.status == 200 and resp.body == b"a\n"
        assert (resp.header("connection") or "").lower() == "close"
    # The drain ends the process: wait for that here, so that the teardown does not find it
    # gone "on its own" (it sometimes exited before the teardown looked).
    site.stopped_by_test = True
    assert site.wait(10) == 0, site.tail()


def _redirect_then_follow(site, target):
    """GET target (a directory without its slash) and then its Location on one keep-alive
    connection; returns (the 301, the response to the Location)."""
    with kt.Raw(site.port) as r:
        r.send("GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % target)
        moved = r.read_response()
        assert moved.status == 301, (moved, moved.body)
        assert moved.body == b"moved: add a trailing slash\n", moved.body
        where = moved.header("location")
        r.send("GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % where)
        return moved, r.read_response()


@pytest.mark.parametrize("segment", ["d" * 199, "\u00e9" * 120 + " %?#"],
                         ids=["1000-byte-path", "encoded-3k-location"])
def test_regression_long_directory_path_redirect_is_well_formed(site, segment):
    """The Location of the trailing-slash redirect was built in a 600-byte buffer: a long
    path lost the header's CRLF and the head ran into the body."""
    levels = 5 if len(segment.encode()) < 240 else 4
    rel = os.path.join(*([segment] * levels))
    os.makedirs(os.path.join(site.root.encode(), rel.encode()))
    with open(os.path.join(site.root.encode(), rel.encode(), b"index.html"), "w") as f:
        f.write("deep\n")
    path = "/" + rel
    if segment.startswith("d"):
        assert len(path) == 1000
    target = urllib.parse.quote(path, safe="/")
    moved, deep = _redirect_then_follow(site, target)
    loc = moved.header("location")
    assert urllib.parse.unquote_to_bytes(loc) == path.encode() + b"/", loc[:200]
    assert all(0x21 <= ord(ch) <= 0x7e for ch in loc), "unencoded byte in %r" % loc[:200]
    assert deep.status == 200 and deep.body == b"deep\n", (deep, deep.body)


def test_regression_crlf_in_directory_name_injects_no_header(site):
    """A directory whose name holds CR LF (requested as %0d%0a) was redirected with the
    decoded name in Location: the client saw a header the name had smuggled in."""
    name = "evil\r\nX-Injected: yes"
    os.makedirs(os.path.join(site.root, name))
    with open(os.path.join(site.root, name, "index.html"), "w") as f:
        f.write("evil dir\n")
    moved, inside = _redirect_then_follow(site, "/evil%0d%0aX-Injected:%20yes")
    assert moved.header("x-injected") is None, moved
    assert moved.header("location") == "/evil%0D%0AX-Injected:%20yes/", moved
    assert inside.status == 200 and inside.body == b"evil dir\n", (inside, inside.body)


@pytest.mark.timeout(60)
def test_regression_fifo_device_socket_under_root_get_404_without_hanging(site):
    """Files were opened without O_NONBLOCK: a FIFO under the root blocked the worker in
    open() until a writer came (forever). Only regular files and directories are served;
    anything else is 404 at once, and the workers keep serving."""
    root = site.root
    os.mkfifo(os.path.join(root, "pipe"))
    os.mknod(os.path.join(root, "null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.path.join(root, "sock"))
    os.makedirs(os.path.join(root, "fifodir"))
    os.mkfifo(os.path.join(root, "fifodir", "index.html"))  # an index that is a FIFO
    with open(os.path.join(root, "g.txt"), "w") as f:
        f.write("plain g\n")
    os.mkfifo(os.path.join(root, "g.txt.gz"))  # a gzip sibling that is a FIFO
    try:
        for path, want in [("/pipe", 404), ("/null", 404), ("/sock", 404), ("/pipe", 404),
                           ("/fifodir/", 403)]:
            t0 = time.monotonic()
            st, _, body = kt.http_get(site.port, path, timeout=3)
            took = time.monotonic() - t0
            assert st == want, (path, st, body)
            assert took < 2, "%s took %.2fs" % (path, took)
        st, h, body = kt.http_get(site.port, "/g.txt", headers={"Accept-Encoding": "gzip"},
                                  timeout=3)
        assert st == 200 and body == b"plain g\n" and "content-encoding" not in h, (st, h)
        # Every worker still answers: new connections spread over both of them.
        for i in range(20):
            st, _, body = kt.http_get(site.port, "/a.txt", timeout=3)
            assert st == 200 and body == b"hello static world\n", (i, st, body)
    finally:
        sock.close()
