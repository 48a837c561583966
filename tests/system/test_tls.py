# SPDX-License-Identifier: MIT
"""HTTPS termination (issue 12, first part): `bind ... tls` on frontends and sites, with
certificates made in each test by `openssl req`/`openssl x509`/`openssl ca` (a root, an
intermediate, ECDSA P-256 and RSA 2048 leaves, a wildcard, an expired one and one not valid
yet), checked with real clients: curl (proxy and static files, keep-alive), Python's ssl
module (uploads, large bodies), `openssl s_client` (SNI: exact, wildcard, default; ECDSA or
RSA by the client's signature algorithms or TLS 1.2 cipher; TLS 1.1 refused; ALPN), raw
sockets (plain HTTP gets a 400; a silent client is closed after timeout_handshake), `keel
check` (certificate errors at file:line:col) and a reload that serves a new certificate."""
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import time

import pytest

import keeltest as kt

ROOT_CN = "keel test root"
INT_CN = "keel test intermediate"


def openssl(*args, cwd=None):
    r = subprocess.run(["openssl"] + list(args), capture_output=True, text=True, timeout=60,
                       cwd=cwd)
    assert r.returncode == 0, "openssl %s: %s%s" % (" ".join(args), r.stdout, r.stderr)
    return r.stdout


def new_key(path, kind):
    if kind == "rsa":
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
    else:
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                path)


class Pki:
    """A root CA and an intermediate in dir; leaves signed by the intermediate, each written
    as NAME.pem (leaf then intermediate: the full chain) and NAME.key."""

    def __init__(self, d):
        self.dir = d
        os.makedirs(d, exist_ok=True)
        self.root = self.p("root.pem")
        new_key(self.p("root.key"), "ec")
        openssl("req", "-x509", "-new", "-key", self.p("root.key"), "-out", self.root,
                "-days", "30", "-subj", "/CN=" + ROOT_CN,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        new_key(self.p("int.key"), "ec")
        openssl("req", "-new", "-key", self.p("int.key"), "-out", self.p("int.csr"),
                "-subj", "/CN=" + INT_CN)
        self.ext("int.ext", "basicConstraints=critical,CA:TRUE,pathlen:0\n"
                 "keyUsage=critical,keyCertSign,cRLSign\n")
        openssl("x509", "-req", "-in", self.p("int.csr"), "-CA", self.root, "-CAkey",
                self.p("root.key"), "-set_serial", "2", "-days", "30", "-extfile",
                self.p("int.ext"), "-out", self.p("int.pem"))
        self.serial = 100

    def p(self, name):
        return os.path.join(self.dir, name)

    def ext(self, name, text):
        with open(self.p(name), "w") as f:
            f.write(text)
        return self.p(name)

    def leaf(self, name, cn, sans, kind="ec", days="30"):
        """A leaf for sans (["a.test", "*.w.test"]), valid for days (negative: expired)."""
        new_key(self.p(name + ".key"), kind)
        openssl("req", "-new", "-key", self.p(name + ".key"), "-out", self.p(name + ".csr"),
                "-subj", "/CN=" + cn)
        ext = self.ext(name + ".ext", "subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                       "extendedKeyUsage=serverAuth\n" % ",".join("DNS:" + s for s in sans))
        self.serial += 1
        openssl("x509", "-req", "-in", self.p(name + ".csr"), "-CA", self.p("int.pem"),
                "-CAkey", self.p("int.key"), "-set_serial", str(self.serial), "-days", days,
                "-extfile", ext, "-out", self.p(name + ".leaf"))
        self.chain(name)
        return self.p(name + ".pem"), self.p(name + ".key")

    def future_leaf(self, name, cn):
        """A leaf not valid before 2099 (openssl ca sets the start date; x509 cannot)."""
        new_key(self.p(name + ".key"), "ec")
        openssl("req", "-new", "-key", self.p(name + ".key"), "-out", self.p(name + ".csr"),
                "-subj", "/CN=" + cn)
        open(self.p("index.txt"), "w").close()
        with open(self.p("serial.txt"), "w") as f:
            f.write("%02X\n" % (self.serial + 1))
        cnf = self.ext("ca.cnf", "[ca]\ndefault_ca = t\n[t]\ndatabase = index.txt\n"
                       "serial = serial.txt\nnew_certs_dir = .\ncertificate = int.pem\n"
                       "private_key = int.key\ndefault_md = sha256\npolicy = any\n"
                       "unique_subject = no\n[any]\ncommonName = supplied\n")
        openssl("ca", "-batch", "-config", cnf, "-in", self.p(name + ".csr"), "-out",
                self.p(name + ".leaf"), "-startdate", "20990101000000Z", "-enddate",
                "20991231000000Z", cwd=self.dir)
        self.chain(name)
        return self.p(name + ".pem"), self.p(name + ".key")

    def chain(self, name):
        with open(self.p(name + ".pem"), "w") as out:
            for part in (name + ".leaf", "int.pem"):
                with open(self.p(part)) as f:
                    out.write(f.read())


@pytest.fixture
def pki(env):
    """The default set: a.test (ECDSA, first: the default), a.test (RSA), *.w.test, b.test."""
    p = Pki(os.path.join(env.tmp, "pki"))
    p.a_ec = p.leaf("a_ec", "a.test", ["a.test", "www.a.test"])
    p.a_rsa = p.leaf("a_rsa", "a.test", ["a.test", "www.a.test"], kind="rsa")
    p.wild = p.leaf("wild", "*.w.test", ["*.w.test"])
    p.b = p.leaf("b", "b.test", ["b.test"])
    return p


def certificate_lines(*pairs):
    return "".join("    certificate %s %s;\n" % pair for pair in pairs)


def tls_frontend(env, pki, backend, extra="", static_root=None, access_log=None, workers=2,
                 block="frontend"):
    """keel with a frontend (or site) on a tls port and a plain port. Returns the Keel
    with .tls and .plain ports."""
    tls_port, plain_port, admin = env.port(), env.port(), env.port()
    loc = ("    location /static/ { root %s; }\n" % static_root) if static_root else ""
    alog = ("    access_log %s;\n" % access_log) if access_log else ""
    cfg = """global { workers %d; admin 127.0.0.1:%d; timeout_drain 2s; }
%s www {
    bind 127.0.0.1:%d tls;
    bind 127.0.0.1:%d;
%s%s%s%s    backend web;
}
backend web { server a %s; }
""" % (workers, admin, block, tls_port, plain_port,
       certificate_lines(pki.a_ec, pki.a_rsa, pki.wild, pki.b), loc, alog, extra, backend.addr)
    k = env.keel(cfg, ports=[tls_port, plain_port], admin=admin)
    k.tls, k.plain = tls_port, plain_port
    return k


def curl(pki, port, path, name="a.test", extra=()):
    """curl over HTTPS to name:port (resolved to 127.0.0.1), verifying with the test root.
    Returns (status, body bytes, stderr text)."""
    url = "https://%s:%d%s" % (name, port, path)
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", pki.root, "--resolve",
                        "%s:%d:127.0.0.1" % (name, port), "-o", "-", "-w", "\n%{http_code}",
                        *extra, url], capture_output=True, timeout=30)
    out = r.stdout
    body, _, code = out.rpartition(b"\n")
    return int(code or 0), body, r.stderr.decode(errors="replace")


def s_client(port, *args, sni="a.test", cafile=None):
    """`openssl s_client` to 127.0.0.1:port; returns its whole output (stdout + stderr)."""
    argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-showcerts"]
    argv += ["-servername", sni] if sni else ["-noservername"]
    if cafile:
        argv += ["-CAfile", cafile]
    r = subprocess.run(argv + list(args), input=b"", capture_output=True, timeout=30)
    return r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def peer_subject(out):
    m = re.search(r"^subject=(.*)$", out, re.M)
    return m.group(1) if m else None


def https_context(pki):
    return ssl.create_default_context(cafile=pki.root)


class Https:
    """A keep-alive HTTPS connection (Python's ssl) to a.test on 127.0.0.1:port."""

    def __init__(self, pki, port, name="a.test"):
        ctx = https_context(pki)
        self.c = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
        self.name = name
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.c.sock = ctx.wrap_socket(sock, server_hostname=name)

    def request(self, path, method="GET", body=None, headers=None):
        h = {"Host": self.name}
        h.update(headers or {})
        self.c.request(method, path, body=body, headers=h)
        r = self.c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()

    def close(self):
        self.c.close()


# --------------------------------------------------------------------------------------------
# Serving HTTPS


def test_curl_through_the_proxy_and_static_files(env, pki):
    (b,) = env.backends(1)
    root = os.path.join(env.tmp, "www")
    os.makedirs(os.path.join(root, "static"))
    big = os.urandom(3 * 1024 * 1024 + 17)
    with open(os.path.join(root, "static", "big.bin"), "wb") as f:
        f.write(big)
    with open(os.path.join(root, "static", "a.txt"), "w") as f:
        f.write("hello over tls\n")
    alog = os.path.join(env.tmp, "access.log")
    k = tls_frontend(env, pki, b, static_root=root, access_log=alog)

    st, body, err = curl(pki, k.tls, "/headers")
    assert st == 200, err
    assert b"X-Forwarded-Proto: https\r\n" in body, body
    st, _, body = kt.http_get(k.plain, "/headers")
    assert st == 200 and b"X-Forwarded-Proto: http\r\n" in body, body

    st, body, err = curl(pki, k.tls, "/static/a.txt")
    assert (st, body) == (200, b"hello over tls\n"), err
    st, body, err = curl(pki, k.tls, "/static/big.bin")
    assert st == 200 and hashlib.sha256(body).digest() == hashlib.sha256(big).digest(), err

    # two requests on one connection: one handshake, both answered
    r = subprocess.run(["curl", "-sS", "--cacert", pki.root, "--resolve",
                        "a.test:%d:127.0.0.1" % k.tls, "-o", "/dev/null", "-o", "/dev/null",
                        "-w", "%{http_code} %{num_connects}\n",
                        "https://a.test:%d/x" % k.tls, "https://a.test:%d/static/a.txt" % k.tls],
                       capture_output=True, text=True, timeout=30)
    assert r.stdout.split("\n")[:2] == ["200 1", "200 0"], r.stdout + r.stderr

    lines = kt.deadline_poll(lambda: [l for l in open(alog).read().splitlines()
                                      if "/static/a.txt" in l] if os.path.exists(alog) else None,
                             5, what="access log lines")
    assert re.search(r' TLSv1\.3/TLS_AES_\S+$', lines[0]), lines[0]
    m = k.metrics()
    assert m.get("keel_frontend_tls_handshakes_total", frontend="www") >= 4
    assert m.get("keel_frontend_tls_handshake_failures_total", frontend="www") == 0
    kt.check_exposition(m.text)


BIG = bytes(range(256)) * (4 * 4096 + 3)  # 4 MiB and a bit, not one repeated byte


def read_head(conn, buf):
    """The next request head from conn, after what buf holds: (head, rest), or (None, b"")
    at EOF."""
    while b"\r\n\r\n" not in buf:
        d = conn.recv(1 << 16)
        if not d:
            return None, b""
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head, rest


def big_server(conn):
    """A keep-alive HTTP/1.1 server: /big answers BIG, /upload the SHA-256 of the body it
    read, anything else "ok"."""
    buf = b""
    while True:
        head, buf = read_head(conn, buf)
        if head is None:
            return
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split()[1]
        length = 0
        for l in lines[1:]:
            k, _, v = l.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v)
        while len(buf) < length:
            d = conn.recv(1 << 16)
            if not d:
                return
            buf += d
        body, buf = buf[:length], buf[length:]
        if path == "/big":
            out = BIG
        elif path == "/upload":
            out = hashlib.sha256(body).hexdigest().encode()
        else:
            out = b"ok"
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(out) + out)


def test_keepalive_uploads_and_large_bodies_over_one_connection(env, pki):
    t = env.tiny(big_server)
    k = tls_frontend(env, pki, t)
    c = Https(pki, k.tls)
    try:
        for i in range(40):
            st, h, body = c.request("/n%d" % i)
            assert st == 200 and body == b"ok", (i, st, body)
        payload = os.urandom(5 * 1024 * 1024)
        st, _, body = c.request("/upload", method="POST", body=payload,
                                headers={"Content-Type": "application/octet-stream"})
        assert st == 200 and body == hashlib.sha256(payload).hexdigest().encode(), body
        for _ in range(2):
            st, _, body = c.request("/big")
            assert st == 200 and body == BIG, (st, len(body))
        st, _, body = c.request("/last")
        assert st == 200 and body == b"ok"
    finally:
        c.close()
    assert k.metrics().get("keel_frontend_tls_handshakes_total", frontend="www") == 1


def test_pipelined_requests_held_inside_tls_are_served(env, pki):
    """Requests that arrive in one burst are decrypted ahead (read ahead, has_pending): no
    readiness announces them, the connection must take them itself."""
    t = env.tiny(big_server)
    k = tls_frontend(env, pki, t)
    ctx = https_context(pki)
    with socket.create_connection(("127.0.0.1", k.tls), timeout=10) as raw:
        s = ctx.wrap_socket(raw, server_hostname="a.test")
        s.sendall(b"".join(b"GET /p%d HTTP/1.1\r\nHost: a.test\r\n\r\n" % i for i in range(50)))
        data = b""
        deadline = time.monotonic() + 10
        while data.count(b"HTTP/1.1 200 OK") < 50 and time.monotonic() < deadline:
            d = s.recv(65536)
            if not d:
                break
            data += d
        assert data.count(b"HTTP/1.1 200 OK") == 50, data[-200:]


def test_json_access_log_has_the_tls_version_and_cipher(env, pki):
    (b,) = env.backends(1)
    alog = os.path.join(env.tmp, "access.json")
    k = tls_frontend(env, pki, b, access_log=alog + " json")
    st, _, err = curl(pki, k.tls, "/one", extra=["--tls-max", "1.2", "--ciphers",
                                                 "ECDHE-RSA-AES256-GCM-SHA384"])
    assert st == 200, err
    assert kt.http_get(k.plain, "/two")[0] == 200
    recs = kt.deadline_poll(
        lambda: [json.loads(l) for l in open(alog).read().splitlines()]
        if os.path.exists(alog) and len(open(alog).read().splitlines()) >= 2 else None,
        5, what="two json lines")
    by_target = {r["target"]: r for r in recs}
    assert by_target["/one"]["tls_version"] == "TLSv1.2", by_target
    assert by_target["/one"]["tls_cipher"] == "ECDHE-RSA-AES256-GCM-SHA384", by_target
    assert "tls_version" not in by_target["/two"], "plain lines are as before"


def test_a_site_serves_https(env, pki):
    (b,) = env.backends(1)
    root = os.path.join(env.tmp, "site")
    os.makedirs(os.path.join(root, "static"))
    with open(os.path.join(root, "static", "index.html"), "w") as f:
        f.write("<h1>site</h1>\n")
    k = tls_frontend(env, pki, b, static_root=root, block="site")
    st, body, err = curl(pki, k.tls, "/static/")
    assert (st, body) == (200, b"<h1>site</h1>\n"), err


# --------------------------------------------------------------------------------------------
# Certificates: SNI, key types, chains


def test_sni_picks_exact_then_wildcard_then_default(env, pki):
    (b,) = env.backends(1)
    k = tls_frontend(env, pki, b)
    out = s_client(k.tls, sni="a.test", cafile=pki.root)
    assert "Verify return code: 0 (ok)" in out, out
    assert peer_subject(out) == "CN = a.test", out
    # the full chain is sent: the leaf and the intermediate
    assert re.search(r"^ 1 s:CN = %s" % INT_CN, out, re.M), out
    assert peer_subject(s_client(k.tls, sni="www.a.test")) == "CN = a.test"
    assert peer_subject(s_client(k.tls, sni="B.Test")) == "CN = b.test"
    out = s_client(k.tls, sni="x1.w.test", cafile=pki.root)
    assert peer_subject(out) == "CN = *.w.test" and "Verify return code: 0 (ok)" in out, out
    # not covered by the wildcard (two labels), unknown names and no SNI: the first certificate
    for sni in ("a.b.w.test", "w.test", "unknown.test", None):
        out = s_client(k.tls, sni=sni)
        assert peer_subject(out) == "CN = a.test", (sni, out)
        assert "Server public key is 256 bit" in out, (sni, out)


def test_ecdsa_or_rsa_as_the_client_can_verify(env, pki):
    (b,) = env.backends(1)
    k = tls_frontend(env, pki, b)
    out = s_client(k.tls, "-sigalgs", "ECDSA+SHA256", cafile=pki.root)
    assert "Peer signature type: ECDSA" in out and "Server public key is 256 bit" in out, out
    out = s_client(k.tls, "-sigalgs", "rsa_pss_rsae_sha256:RSA+SHA256", cafile=pki.root)
    assert "Server public key is 2048 bit" in out, out
    assert "Verify return code: 0 (ok)" in out, out
    # TLS 1.2: the cipher decides
    out = s_client(k.tls, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
    assert "Server public key is 2048 bit" in out and "Cipher is ECDHE-RSA-AES128-GCM-SHA256" \
        in out, out
    out = s_client(k.tls, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert "Server public key is 256 bit" in out, out


def test_protocols_and_alpn(env, pki):
    (b,) = env.backends(1)
    k = tls_frontend(env, pki, b)
    assert "New, TLSv1.3, Cipher is" in s_client(k.tls, "-tls1_3")
    assert "New, TLSv1.2, Cipher is ECDHE-" in s_client(k.tls, "-tls1_2")
    # TLS 1.1, even from a client willing to use anything (security level 0)
    out = s_client(k.tls, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert "alert protocol version" in out and "Cipher is (NONE)" in out, out
    out = s_client(k.tls, "-alpn", "h2,http/1.1")
    assert "ALPN protocol: http/1.1" in out, out
    assert "No ALPN negotiated" in s_client(k.tls, "-alpn", "h2")
    # (>= 1: a client that closes at once may also fail the handshake's last write)
    m = k.metrics()
    assert m.get("keel_frontend_tls_handshake_failures_total", frontend="www") >= 1
    k.log.wait(r"\[info\].*www: tls handshake with 127\.0\.0\.1 failed: .*unsupported protocol")


def test_tls_protocols_and_ciphers_are_per_frontend(env, pki):
    (b,) = env.backends(1)
    k = tls_frontend(env, pki, b, extra="    tls_protocols TLSv1.2;\n"
                                         "    tls_ciphers ECDHE-RSA-AES256-GCM-SHA384;\n")
    assert "alert protocol version" in s_client(k.tls, "-tls1_3")
    out = s_client(k.tls)
    assert "New, TLSv1.2, Cipher is ECDHE-RSA-AES256-GCM-SHA384" in out, out
    assert "Server public key is 2048 bit" in out, out


# --------------------------------------------------------------------------------------------
# Bad clients


def test_plain_http_to_the_tls_port_gets_a_400_in_clear(env, pki):
    (b,) = env.backends(1)
    k = tls_frontend(env, pki, b)
    with kt.Raw(k.tls) as r:
        r.send("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        resp = r.read_response()
        assert resp.status == 400 and resp.header("connection") == "close", resp
        assert b"plain HTTP request sent to an HTTPS port" in resp.body
        assert r.closed_by_peer(3.0)
    st, _, err = curl(pki, k.tls, "/after")
    assert st == 200, err
    assert k.metrics().get("keel_frontend_tls_handshake_failures_total", frontend="www") == 1


def test_a_silent_or_slow_client_is_closed_after_timeout_handshake(env, pki):
    (b,) = env.backends(1)
    k = tls_frontend(env, pki, b, extra="    timeout_handshake 600ms;\n")
    hello = client_hello(k.tls)
    with kt.Raw(k.tls) as silent, kt.Raw(k.tls) as slow:
        t0 = time.monotonic()
        slow.send(hello[:len(hello) // 2])  # half a ClientHello, then nothing

        def closed():
            return silent.closed_by_peer(0.05) and slow.closed_by_peer(0.05)
        kt.deadline_poll(closed, 5.0, interval=0.01, what="both clients closed")
        waited = time.monotonic() - t0
    assert 0.5 <= waited < 3.0, waited
    m = k.metrics()
    assert m.get("keel_frontend_tls_handshake_timeouts_total", frontend="www") == 2
    # a client that completes its handshake in time is served
    st, _, err = curl(pki, k.tls, "/ok")
    assert st == 200, err


def client_hello(port):
    """A real ClientHello (openssl s_client's first flight), captured by a listening socket."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" %
                          lsock.getsockname()[1], "-servername", "a.test"],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        lsock.settimeout(10)
        c, _ = lsock.accept()
        c.settimeout(10)
        data = b""
        while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
            d = c.recv(65536)
            if not d:
                break
            data += d
        c.close()
        return data
    finally:
        p.kill()
        p.wait(10)
        lsock.close()


def closed_after_alert(r, timeout=3.0):
    """True once the peer closed r's socket, having sent nothing or a TLS alert record
    (content type 21) first."""
    got = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            d = r.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            d = b""
        if not d:
            return got == b"" or got[0] == 0x15
        got += d
    return False


def test_garbage_and_truncated_handshakes_are_closed_and_counted(env, pki):
    (b,) = env.backends(1)
    k = tls_frontend(env, pki, b)
    with kt.Raw(k.tls) as r:
        r.send(b"\x16\x03\x01\x00\x08garbage!")
        assert closed_after_alert(r)
    hello = client_hello(k.tls)
    with kt.Raw(k.tls) as r:
        r.send(hello[:40])
        r.sock.shutdown(socket.SHUT_WR)
        assert closed_after_alert(r)
    kt.deadline_poll(lambda: k.metrics().get("keel_frontend_tls_handshake_failures_total",
                                             frontend="www") == 2, 5, what="two failures")


# --------------------------------------------------------------------------------------------
# keel check and reload


def test_check_reports_certificate_problems_at_file_line_col(env, pki):
    ok_cert, ok_key = pki.a_ec
    old = pki.leaf("old", "old.test", ["old.test"], days="-1")
    future = pki.future_leaf("future", "future.test")
    missing = os.path.join(pki.dir, "missing.pem")
    cfg = """frontend f1 {
    bind 127.0.0.1:18001 tls;
    backend web;
}
frontend f2 {
    bind 127.0.0.1:18002 tls;
    certificate %s %s;
    certificate %s %s;
    certificate %s %s;
    certificate %s %s;
    backend web;
}
backend web { server a 127.0.0.1:9; }
""" % (missing, ok_key, ok_cert, pki.b[1], old[0], old[1], future[0], future[1])
    path = os.path.join(env.tmp, "bad.conf")
    with open(path, "w") as f:
        f.write(cfg)
    r = subprocess.run([kt.KEEL, "check", "-c", path], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1, r.stdout + r.stderr
    errs = r.stderr.splitlines()
    key_col = len("    certificate %s " % ok_cert) + 1
    want = [
        r"^%s:2:26: error: \"bind \.\.\. tls\" in \"f1\" without a certificate" % re.escape(path),
        r"^%s:7:17: error: cannot read certificate file %s: No such file or directory$" % (
            re.escape(path), re.escape(missing)),
        r"^%s:8:%d: error: the private key in %s does not match the certificate in %s$" % (
            re.escape(path), key_col, re.escape(pki.b[1]), re.escape(ok_cert)),
        r"^%s:9:17: error: certificate in %s expired on 20" % (re.escape(path),
                                                               re.escape(old[0])),
        r"^%s:10:17: error: certificate in %s is not valid before 2099-01-01 00:00:00 UTC$" % (
            re.escape(path), re.escape(future[0])),
    ]
    assert len(errs) == len(want), r.stderr
    for line, rx in zip(errs, want):
        assert re.search(rx, line), (line, rx)


def test_reload_serves_a_new_certificate(env, pki):
    (b,) = env.backends(1)
    k = tls_frontend(env, pki, b)
    before = openssl_serial(k.tls)
    c = Https(pki, k.tls)  # an open connection keeps working across the reload
    assert c.request("/before")[0] == 200
    # new files at the same paths: a new ECDSA certificate for a.test
    pki.leaf("a_ec", "a.test", ["a.test", "www.a.test"])
    mark = k.reload()
    k.log.wait(r"configuration reloaded: generation \d+", timeout=10, start=mark)
    kt.deadline_poll(lambda: openssl_serial(k.tls) != before, 10,
                     what="the new certificate served")
    assert c.request("/after")[0] == 200
    c.close()

    # a reload with a key that does not match is refused: the running one keeps serving
    shutil.copy(pki.b[1], pki.a_ec[1])
    k.allow_error(r"reload refused|does not match the certificate")
    mark = k.reload()
    k.log.wait(r"reload refused", timeout=10, start=mark)
    assert curl(pki, k.tls, "/still")[0] == 200


def openssl_serial(port):
    out = s_client(port)
    pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
    assert pem, out
    r = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem.group(0),
                       capture_output=True, text=True, timeout=10)
    return r.stdout.strip()
