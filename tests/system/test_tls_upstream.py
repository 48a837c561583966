# SPDX-License-Identifier: MIT
"""TLS to servers (issue 12, `server ... tls`): keel proxies to HTTPS backends (Python's ssl,
a keep-alive HTTP/1.1 server on a thread per connection that counts its handshakes, the
resumed ones and its requests), with a CA and certificates made by the test with the openssl
CLI. Proxied requests succeed and reuse the upstream TLS connection (the backend sees fewer
handshakes than requests), new connections resume the session, a large body comes through
whole; a wrong CA or a wrong name fails the handshake: the checks mark the server down with
the verifier's reason in the log, requests get 503, and the failures are counted; `tls_verify
none` works with any certificate; a tcp backend relays to a TLS server; `keel check` reports the configuration errors at
file:line:col."""
import hashlib
import http.client
import os
import re
import socket
import ssl
import subprocess
import threading

import pytest

import keeltest as kt

BIG = 1 << 20  # bytes of /big


def openssl(*args):
    r = subprocess.run(["openssl"] + list(args), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "openssl %s: %s%s" % (" ".join(args), r.stdout, r.stderr)


class Pki:
    """A CA (ca.pem) and a server certificate it signs for backend.test and 127.0.0.1
    (srv.pem, srv.key); another CA (other.pem) that signed nothing keel sees."""

    def __init__(self, d):
        self.dir = d
        os.makedirs(d, exist_ok=True)
        for ca in ("ca", "other"):
            self.key(ca)
            openssl("req", "-x509", "-new", "-key", self.p(ca + ".key"), "-out",
                    self.p(ca + ".pem"), "-days", "2", "-subj", "/CN=keel upstream " + ca,
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.key("srv")
        openssl("req", "-new", "-key", self.p("srv.key"), "-out", self.p("srv.csr"), "-subj",
                "/CN=backend.test")
        with open(self.p("srv.ext"), "w") as f:
            f.write("subjectAltName=DNS:backend.test,IP:127.0.0.1\n"
                    "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        openssl("x509", "-req", "-in", self.p("srv.csr"), "-CA", self.p("ca.pem"), "-CAkey",
                self.p("ca.key"), "-set_serial", "7", "-days", "2", "-extfile",
                self.p("srv.ext"), "-out", self.p("srv.pem"))
        self.ca, self.other = self.p("ca.pem"), self.p("other.pem")

    def p(self, name):
        return os.path.join(self.dir, name)

    def key(self, name):
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                self.p(name + ".key"))


class TlsBackend:
    """An HTTPS server on 127.0.0.1:port: keep-alive HTTP/1.1, every request answered 200
    with "NAME PATH" (or BIG bytes for /big). Counts handshakes done, resumed and failed,
    and requests."""

    def __init__(self, pki, port, name):
        self.name = name
        self.port = port
        self.addr = "127.0.0.1:%d" % port
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki.p("srv.pem"), pki.p("srv.key"))
        self.lock = threading.Lock()
        self.handshakes = self.resumed = self.failed = self.requests = 0
        self.sni = []
        self.ctx.sni_callback = self._on_sni
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", port))
        self.ls.listen(128)
        self.stopping = False
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _on_sni(self, sock, name, ctx):
        with self.lock:
            self.sni.append(name)

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        c.settimeout(30)
        try:
            s = self.ctx.wrap_socket(c, server_side=True)
        except (OSError, ssl.SSLError):
            with self.lock:
                self.failed += 1
            c.close()
            return
        with self.lock:
            self.handshakes += 1
            self.resumed += 1 if s.session_reused else 0
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf += d
                head, _, buf = buf.partition(b"\r\n\r\n")
                m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                need = int(m.group(1)) if m else 0
                while len(buf) < need:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf += d
                buf = buf[need:]
                path = head.split(b" ")[1].decode()
                with self.lock:
                    self.requests += 1
                body = big_body() if path == "/big" else ("%s %s" % (self.name, path)).encode()
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        except (OSError, ssl.SSLError):
            return
        finally:
            s.close()

    def counts(self):
        with self.lock:
            return dict(handshakes=self.handshakes, resumed=self.resumed, failed=self.failed,
                        requests=self.requests)

    def stop(self):
        self.stopping = True
        self.ls.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
        return []


def big_body():
    return bytes(range(256)) * (BIG // 256)


@pytest.fixture
def pki(env):
    return Pki(os.path.join(env.tmp, "pki"))


def tls_backend(env, pki, name="a"):
    b = TlsBackend(pki, env.port(), name)
    env.cleanups.append(b.stop)
    return b


def get(port, path="/", headers=None):
    """One request on a new client connection; (status, body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def lb(env, servers, check=None, backend_extra="", allow_errors=(), workers=2, mode="http"):
    return env.lb(servers, check=check, backend_extra=backend_extra, allow_errors=allow_errors,
                  workers=workers, mode=mode)


# ------------------------------------------------------------------------------------------
# Working TLS to servers


def test_proxied_over_tls_and_the_connection_is_reused(env, pki):
    b = tls_backend(env, pki)
    k = lb(env, [("a", b.addr, "tls tls_ca_file %s tls_name backend.test" % pki.ca)])
    c = http.client.HTTPConnection("127.0.0.1", k.port, timeout=10)
    for i in range(20):
        c.request("GET", "/r%d" % i)
        r = c.getresponse()
        assert (r.status, r.read()) == (200, ("a /r%d" % i).encode())
    c.close()
    n = b.counts()
    assert n["requests"] == 20
    # One client connection stays on one worker, whose pool keeps the server connection.
    assert n["handshakes"] == 1, n
    assert b.sni == ["backend.test"], "the name is sent as SNI"
    assert k.metrics().get("keel_server_tls_handshake_failures_total", backend="web",
                           server="a") == 0


def test_new_connections_resume_the_session(env, pki):
    b = tls_backend(env, pki)
    k = lb(env, [("a", b.addr, "tls tls_ca_file %s tls_name backend.test" % pki.ca)],
           backend_extra="    keepalive 0;\n")
    for i in range(8):
        assert get(k.port, "/n%d" % i) == (200, ("a /n%d" % i).encode())
    n = b.counts()
    assert n["handshakes"] == 8, n  # keepalive 0: a connection per request
    assert n["resumed"] >= 6, n     # every one after the first resumes (one per worker at most)


def test_large_body_through_tls_upstream(env, pki):
    b = tls_backend(env, pki)
    k = lb(env, [("a", b.addr, "tls tls_ca_file %s" % pki.ca)])  # the name: 127.0.0.1, an IP SAN
    want = hashlib.sha256(big_body()).hexdigest()
    for _ in range(3):
        status, body = get(k.port, "/big")
        assert status == 200
        assert len(body) == BIG and hashlib.sha256(body).hexdigest() == want
    assert b.sni and all(n is None for n in b.sni), "no SNI for an address: %r" % b.sni


def test_backend_level_settings_and_checks_over_tls(env, pki):
    b = tls_backend(env, pki)
    k = lb(env, [("a", b.addr, "tls")], check="http path /healthz interval 200ms rise 1 fall 1",
           backend_extra="    tls_ca_file %s;\n    tls_name backend.test;\n" % pki.ca)
    kt.deadline_poll(lambda: b.counts()["requests"] >= 3, 10, what="three checks over TLS")
    assert k.server_up("web", "a") == 1
    assert get(k.port, "/x") == (200, b"a /x")
    assert b.counts()["failed"] == 0


def test_verify_none_accepts_any_certificate(env, pki):
    b = tls_backend(env, pki)
    k = lb(env, [("a", b.addr, "tls tls_verify none tls_ca_file %s tls_name wrong.test"
                  % pki.other)])
    assert get(k.port, "/v") == (200, b"a /v")


def test_tcp_backend_relays_to_a_tls_server(env, pki):
    b = tls_backend(env, pki)
    k = lb(env, [("a", b.addr, "tls tls_ca_file %s tls_name backend.test" % pki.ca)],
           mode="tcp", check="tcp interval 200ms rise 1 fall 1")
    want = hashlib.sha256(big_body()).hexdigest()
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", k.port), timeout=10)
        s.sendall(b"GET /t HTTP/1.1\r\nHost: x\r\n\r\nGET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        head2 = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG
        first = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\na /t"
        while len(data) < len(first) + len(head2) + BIG:
            d = s.recv(1 << 16)
            assert d, "closed after %d bytes" % len(data)
            data += d
        s.close()
        assert data.startswith(first + head2)
        assert hashlib.sha256(data[len(first) + len(head2):]).hexdigest() == want
    # (the readiness probe of the test's harness opened and closed a relay: that handshake
    # was cut, so "failed" is not checked here)
    assert b.counts()["requests"] >= 4
    assert k.server_up("web", "a") == 1


# ------------------------------------------------------------------------------------------
# Verification failures


def down_with_reason(env, pki, options, reason):
    b = tls_backend(env, pki)
    k = lb(env, [("a", b.addr, options)], check="http path / interval 200ms rise 1 fall 1",
           allow_errors=[r"backend web has no server available"])
    k.wait_server_state("web", "a", False, timeout=10)
    k.log.wait(r"backend web/server a: server down \(1 failed checks, last: tls handshake "
               r"failed: certificate verify failed: %s\)" % re.escape(reason))
    status, _ = get(k.port, "/")
    assert status == 503
    assert b.counts()["requests"] == 0, "no request reached the server"
    kt.deadline_poll(lambda: b.counts()["failed"] >= 1, 5, what="the backend saw the refusal")
    return k, b


def test_wrong_ca_marks_the_server_down(env, pki):
    down_with_reason(env, pki, "tls tls_ca_file %s tls_name backend.test" % pki.other,
                     "unable to get local issuer certificate")


def test_wrong_name_marks_the_server_down(env, pki):
    down_with_reason(env, pki, "tls tls_ca_file %s tls_name other.test" % pki.ca,
                     "hostname mismatch")


def test_wrong_ca_without_checks_fails_requests_and_counts(env, pki):
    b = tls_backend(env, pki)
    k = lb(env, [("a", b.addr, "tls tls_ca_file %s tls_name backend.test" % pki.other)],
           allow_errors=[r"backend web has no server available"])
    status, _ = get(k.port, "/")
    assert status in (502, 503)
    assert b.counts()["requests"] == 0
    kt.deadline_poll(lambda: (k.metrics().get("keel_server_tls_handshake_failures_total",
                                              backend="web", server="a") or 0) >= 1,
                     5, what="the failure counted")
    k.log.wait(r"connect\(\) to server a failed: tls handshake failed: certificate verify "
               r"failed: unable to get local issuer certificate")


def test_reload_rebuilds_the_client_context(env, pki):
    b = tls_backend(env, pki)
    k = lb(env, [("a", b.addr, "tls tls_ca_file %s tls_name backend.test" % pki.ca)],
           allow_errors=[r"backend web has no server available"])
    assert get(k.port, "/1") == (200, b"a /1")
    with open(k.conf) as f:
        good = f.read()
    mark = k.reload(good.replace("tls_name backend.test", "tls_name other.test"))
    kt.deadline_poll(lambda: get(k.port, "/2")[0] in (502, 503), 10,
                     what="the new name refused after the reload")
    k.log.wait(r"certificate verify failed: hostname mismatch", start=mark)
    k.reload(good)
    kt.deadline_poll(lambda: get(k.port, "/3") == (200, b"a /3"), 10,
                     what="the old name accepted again")


# ------------------------------------------------------------------------------------------
# keel check


def keel_check(env, text):
    path = os.path.join(env.tmp, "t.conf")
    with open(path, "w") as f:
        f.write(text)
    r = subprocess.run([kt.KEEL, "check", "-c", path], capture_output=True, text=True,
                       timeout=20)
    return r.returncode, r.stdout + r.stderr, path


def test_check_reports_tls_server_errors_at_file_line_col(env, pki):
    fe = "frontend www { bind 127.0.0.1:%d; backend web; }\n" % env.port()
    rc, out, path = keel_check(env, fe + "backend web {\n"
                               "    server a 127.0.0.1:1 tls tls_ca_file /nonexistent/ca.pem;\n"
                               "    server b 127.0.0.1:2 tls_name b.test;\n"
                               "}\n")
    assert rc == 1, out
    assert "%s:3:42: error: cannot read CA file /nonexistent/ca.pem: No such file or " \
        "directory" % path in out, out
    assert "%s:4:26: error: tls option on server \"b\", which does not say \"tls\"" % path \
        in out, out
    rc, out, _ = keel_check(env, fe + "backend web { server a 127.0.0.1:1 tls tls_ca_file %s; }\n"
                            % pki.ca)
    assert rc == 0, out
