# SPDX-License-Identifier: MIT
"""TLS session resumption, reload, redirect and HSTS (issue 12): real keel processes, real
clients (Python's ssl module with session reuse, `openssl s_client`), certificates made by
`openssl` in each test.

- Tickets: resumption across the workers of one process; across two keel processes that share
  the cluster secret (and not with another secret); across a ticket key window change; and the
  real thing, a VRRP pair in network namespaces (root): clients hold sessions made on the
  master, the master is killed, and the first connections to the new master resume.
- Reload: a SIGHUP that changes the certificate keeps an open TLS connection working, serves
  the new certificate to new connections, and keeps resuming the sessions made before.
- redirect_https (301/308, Host checked, ACME http-01 left on plain HTTP) and hsts (TLS
  responses only: proxied, static, keel's own error pages).

Measured numbers are printed (run with -s)."""
import os
import re
import socket
import ssl
import subprocess
import time

import pytest

import keeltest as kt
import netns
from test_tls import Pki, https_context, s_client
from test_vrrp import Vlab, ap_vip, cluster_config, lab, LBS, VIP  # noqa: F401 (lab: fixture)


@pytest.fixture
def pki(env):
    p = Pki(os.path.join(env.tmp, "pki"))
    p.a_ec = p.leaf("a_ec", "a.test", ["a.test", "www.a.test"])
    return p


def secret(env, name="cluster.key", data=b"the cluster secret of the test\n"):
    return kt.write_secret(os.path.join(env.tmp, name), data)


def keel_tls(env, pki, backend, secret_file=None, extra="", workers=2, tls_host="127.0.0.1",
             static_root=None):
    """keel with frontend www on a tls port and a plain port (.tls, .plain)."""
    tls_port, plain_port, admin = env.port(), env.port(), env.port()
    loc = ("    location /static/ { root %s; }\n" % static_root) if static_root else ""
    cfg = ("cluster t { secret_file %s; }\n" % secret_file if secret_file else "") + """\
global { workers %d; admin 127.0.0.1:%d; timeout_drain 2s; }
frontend www {
    bind %s:%d tls;
    bind 127.0.0.1:%d;
    certificate %s %s;
%s%s    backend web;
}
backend web { server a %s; }
""" % (workers, admin, tls_host, tls_port, plain_port, pki.a_ec[0], pki.a_ec[1], loc, extra,
       backend.addr)
    k = env.keel(cfg, ports=[tls_port, plain_port], admin=admin)
    k.tls, k.plain = tls_port, plain_port
    return k


def tls_get(ctx, port, session=None, path="/", host="127.0.0.1", name="a.test", ns=None,
            timeout=5):
    """One GET over a new TLS connection offering session. Returns (reused, the session to
    offer next, the response bytes)."""
    raw = netns.ns_socket(ns) if ns is not None else socket.socket()
    try:
        raw.settimeout(timeout)
        # as curl and browsers do: without it, the request that follows the client's Finished
        # of a resumed handshake waits for the ACK of that Finished (Nagle), which the server,
        # having nothing to send, delays (40 ms)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.connect((host, port))
        s = ctx.wrap_socket(raw, server_hostname=name, session=session)
    except BaseException:
        raw.close()
        raise
    try:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (
            path.encode(), name.encode()))
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        return s.session_reused, s.session, data
    finally:
        s.close()


def status_of(data):
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", data)
    assert m, data[:200]
    return int(m.group(1))


# --------------------------------------------------------------------------------------------
# Tickets on loopback


def test_sessions_resume_across_workers(env, pki):
    (b,) = env.backends(1)
    k = keel_tls(env, pki, b, workers=2)
    for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        ctx = https_context(pki)
        ctx.minimum_version = ctx.maximum_version = version
        reused, sess, data = tls_get(ctx, k.tls)
        assert not reused and status_of(data) == 200
        n, hits = 40, 0
        for _ in range(n):  # SO_REUSEPORT spreads them over both workers
            reused, sess2, data = tls_get(ctx, k.tls, session=sess)
            assert status_of(data) == 200
            hits += reused
        print("\nTLS RESUME across workers (%s): %d/%d" % (version.name, hits, n))
        assert hits == n, "%s: %d of %d connections resumed" % (version.name, hits, n)
    m = k.metrics()
    assert m.get("keel_frontend_tls_resumed_total", frontend="www") == 80
    assert m.get("keel_frontend_tls_handshakes_total", frontend="www") == 82


def test_sessions_resume_on_another_process_with_the_same_secret_only(env, pki):
    (b,) = env.backends(1)
    s1 = secret(env)
    s2 = secret(env, "other.key", b"another cluster\n")
    k1 = keel_tls(env, pki, b, secret_file=s1)
    k2 = keel_tls(env, pki, b, secret_file=s1)
    k3 = keel_tls(env, pki, b, secret_file=s2)
    k4 = keel_tls(env, pki, b)  # no secret: keys of its own
    for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        ctx = https_context(pki)
        ctx.minimum_version = ctx.maximum_version = version
        _, sess, _ = tls_get(ctx, k1.tls)
        reused, _, data = tls_get(ctx, k2.tls, session=sess)
        assert reused and status_of(data) == 200, "%s: not resumed on the other process" % (
            version.name)
        for other in (k3, k4):
            reused, _, data = tls_get(ctx, other.tls, session=sess)
            assert not reused and status_of(data) == 200, version.name
        # and back: a session made by the second process resumes on the first
        _, sess, _ = tls_get(ctx, k2.tls)
        assert tls_get(ctx, k1.tls, session=sess)[0]


@pytest.mark.timeout(60)
def test_tickets_resume_after_the_window_changes_within_the_grace(env, pki):
    (b,) = env.backends(1)
    period = 3
    k = keel_tls(env, pki, b, secret_file=secret(env), extra="    tls_ticket_period %ds;\n"
                 % period)
    ctx = https_context(pki)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2

    # A ticket lives one period from when it is made: make it late in window w (its last
    # second) so that it is still young just after w ends, whatever the machine's load.
    def window_end():
        kt.deadline_poll(lambda: period - 1.0 < time.time() % period < period - 0.6,
                         period + 2, interval=0.01, what="the last second of a ticket window")
        return int(time.time() // period)

    for _ in range(5):                    # a handshake slower than 0.6 s: try again
        w = window_end()
        _, sess, _ = tls_get(ctx, k.tls)
        made = time.time()
        if int(made // period) == w:
            break
    assert int(made // period) == w, "every ticket was made in the next window: too slow"
    # the next window: the previous key still opens it, and a fresh ticket comes back
    kt.deadline_poll(lambda: int(time.time() // period) > w, period + 2, interval=0.01,
                     what="the next window")
    assert time.time() - made < period - 0.5, "the ticket is too old to test the window"
    reused, renewed, data = tls_get(ctx, k.tls, session=sess)
    assert reused and status_of(data) == 200, "not resumed in the next window"
    # two windows after it was made, the old key is gone: a full handshake
    kt.deadline_poll(lambda: int(time.time() // period) >= w + 2, 2 * period + 2,
                     interval=0.05, what="two windows later")
    reused, _, data = tls_get(ctx, k.tls, session=sess)
    assert not reused and status_of(data) == 200


def test_tickets_off_means_full_handshakes(env, pki):
    (b,) = env.backends(1)
    k = keel_tls(env, pki, b, extra="    tls_tickets off;\n")
    ctx = https_context(pki)
    _, sess, _ = tls_get(ctx, k.tls)
    reused, _, data = tls_get(ctx, k.tls, session=sess)
    assert not reused and status_of(data) == 200


# --------------------------------------------------------------------------------------------
# Reload


def openssl_serial(port):
    out = s_client(port)
    pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
    assert pem, out
    r = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem.group(0),
                       capture_output=True, text=True, timeout=10)
    return r.stdout.strip()


def test_sighup_reloads_the_certificate_keeps_connections_and_tickets(env, pki):
    (b,) = env.backends(1)
    k = keel_tls(env, pki, b)  # no cluster secret: the process's own keys survive reloads
    ctx = https_context(pki)
    _, sess, _ = tls_get(ctx, k.tls)
    before = openssl_serial(k.tls)
    raw = socket.create_connection(("127.0.0.1", k.tls), timeout=10)
    c = ctx.wrap_socket(raw, server_hostname="a.test")
    conn = kt.Raw.__new__(kt.Raw)  # a kept-alive TLS connection read with Raw's parser
    conn.sock, conn.buf, conn.timeout, conn.eof = c, b"", 10.0, False
    conn.send("GET /before HTTP/1.1\r\nHost: a.test\r\n\r\n")
    assert conn.read_response().status == 200

    pki.leaf("a_ec", "a.test", ["a.test", "www.a.test"])  # new files at the same paths
    mark = k.reload()  # SIGHUP
    k.log.wait(r"configuration reloaded: generation \d+", timeout=10, start=mark)
    after = kt.deadline_poll(lambda: (lambda s: s if s != before else None)(
        openssl_serial(k.tls)), 10, what="the new certificate served")
    assert after != before
    conn.send("GET /after HTTP/1.1\r\nHost: a.test\r\n\r\n")
    assert conn.read_response().status == 200, "the open connection broke on reload"
    conn.close()
    reused, _, data = tls_get(ctx, k.tls, session=sess)
    assert reused and status_of(data) == 200, "a session made before the reload did not resume"


# --------------------------------------------------------------------------------------------
# redirect_https and hsts


def raw_request(port, text):
    r = kt.Raw(port)
    try:
        r.send(text)
        return r.read_response()
    finally:
        r.close()


def test_redirect_to_https_and_hsts_on_tls_only(env, pki):
    (b,) = env.backends(1)
    root = os.path.join(env.tmp, "www")
    os.makedirs(os.path.join(root, "static"))
    with open(os.path.join(root, "static", "a.txt"), "w") as f:
        f.write("static\n")
    k = keel_tls(env, pki, b, static_root=root,
                 extra="    redirect_https on;\n    hsts 31536000 include_subdomains;\n")
    sts = "max-age=31536000; includeSubDomains"

    r = raw_request(k.plain, "GET /a/b?x=1&y=%%20 HTTP/1.1\r\nHost: a.test:%d\r\n\r\n" % k.plain)
    assert r.status == 301, r
    assert r.header("location") == "https://a.test:%d/a/b?x=1&y=%%20" % k.tls, r.headers
    assert r.header("strict-transport-security") is None, "HSTS over plain HTTP"
    h = kt.Raw(k.plain)
    h.send("HEAD /h HTTP/1.1\r\nHost: a.test\r\n\r\n")
    r = h.read_response(head=True)
    h.close()
    assert r.status == 301 and r.header("location") == "https://a.test:%d/h" % k.tls, r
    r = raw_request(k.plain, "POST /form HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n\r\n"
                    "a=b")
    assert r.status == 308 and r.header("location") == "https://a.test:%d/form" % k.tls, r
    r = raw_request(k.plain, "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n")
    assert r.status == 301 and r.header("location") == "https://[::1]:%d/" % k.tls, r
    for bad in ("Host: a.test/evil", "Host: a b", "Host: user@a.test", "Host: a.test:x"):
        r = raw_request(k.plain, "GET / HTTP/1.1\r\n%s\r\n\r\n" % bad)
        assert r.status == 400 and r.header("location") is None, (bad, r)
    r = raw_request(k.plain, "GET / HTTP/1.0\r\n\r\n")  # no Host at all
    assert r.status == 400, r
    # ACME's http-01 challenges stay on plain HTTP (here: proxied to the backend)
    st, h, body = kt.http_get(k.plain, "/.well-known/acme-challenge/tok123")
    assert st == 200 and "location" not in h, (st, h, body)
    assert "strict-transport-security" not in h

    # over TLS: served, with HSTS on proxied, static and keel's own answers
    ctx = https_context(pki)
    for path, want in (("/proxied", 200), ("/static/a.txt", 200), ("/static/missing", 404)):
        _, _, data = tls_get(ctx, k.tls, path=path)
        assert status_of(data) == want, (path, data[:300])
        head = data.split(b"\r\n\r\n", 1)[0].decode()
        assert re.search(r"(?mi)^Strict-Transport-Security: %s\r?$" % re.escape(sts), head), (
            path, head)
        assert head.lower().count("strict-transport-security") == 1, head
    # a bad request over TLS (keel's error page) carries it too
    _, _, data = tls_get(ctx, k.tls, path="/x%00y")
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    assert status_of(data) == 400 and "Strict-Transport-Security: " + sts in head, head


# --------------------------------------------------------------------------------------------
# The real thing: a VRRP takeover resumes sessions

N_CLIENTS = 50


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")
@pytest.mark.timeout(120)
@pytest.mark.parametrize("shared", [True, False], ids=["same-secret", "control-own-keys"])
def test_vrrp_takeover_resumes_sessions(env, lab, pki, shared):
    """lb1 (master) and lb2 share the cluster secret; N clients each hold a session made on
    lb1 through the VIP; lb1 is killed; the first connection of each client to the VIP,
    answered by lb2, resumes its session. The control run gives lb2 no secret, so its keys
    are its own, as every node's were before tickets came from the cluster secret: no
    session resumes, every client makes a full handshake at once."""
    v = Vlab(env, lab)
    sec = secret(env)
    fe = """frontend www {
    bind %s:443 tls;
    certificate %s %s;
    backend web;
}
""" % (VIP, pki.a_ec[0], pki.a_ec[1])
    conf1 = v.write_config(cluster_config([ap_vip()], fe, secret_file=sec))
    conf2 = conf1 if shared else v.write_config(cluster_config([ap_vip()], fe), "lb2.conf")
    for k in (v.start("lb1", conf1, wait=False), v.start("lb2", conf2, wait=False)):
        k.wait_ready()
    v.wait_roles("lb1")
    ns = v.client.ns
    ctx = https_context(pki)

    def via(data):
        return lab.name_of(data.split(b"\r\n\r\n", 1)[1].split()[1].decode())

    sessions = []
    for i in range(N_CLIENTS):
        reused, sess, data = tls_get(ctx, 443, host=VIP, ns=ns, path="/c%d" % i)
        assert status_of(data) == 200 and via(data) == "lb1" and not reused
        sessions.append(sess)
    assert tls_get(ctx, 443, session=sessions[0], host=VIP, ns=ns)[0], "no resumption on lb1"

    t_kill = time.monotonic()
    v.nodes["lb1"].kill9()
    results = []  # (client, reused, seconds after the kill)
    deadline = t_kill + 10
    for i, sess in enumerate(sessions):
        while True:  # each client retries until the VIP answers again (lb2 takes over)
            try:
                reused, _, data = tls_get(ctx, 443, session=sess, host=VIP, ns=ns, timeout=0.5,
                                          path="/after%d" % i)
                if status_of(data) == 200:
                    assert via(data) == "lb2", data
                    results.append((i, reused, time.monotonic() - t_kill))
                    break
            except (OSError, ssl.SSLError):
                pass
            assert time.monotonic() < deadline, "the VIP did not answer again within 10 s"
            time.sleep(0.01)
    hits = sum(1 for _, r, _ in results if r)
    rate = hits / len(results)
    print("\nTLS RESUME after VRRP takeover (%s): %d/%d connections resumed (%.0f%%), first "
          "answer %.0f ms after the kill, last %.0f ms" % (
              "same secret" if shared else "control: lb2's own keys", hits, len(results),
              100 * rate, 1000 * results[0][2], 1000 * results[-1][2]))
    m = v.nodes["lb2"].metrics()
    if shared:
        assert rate >= 0.9, "only %d of %d resumed after the takeover" % (hits, len(results))
        assert m.get("keel_frontend_tls_resumed_total", frontend="www") >= hits
    else:
        assert hits == 0, "%d sessions resumed on a node with other keys" % hits
        assert (m.get("keel_frontend_tls_resumed_total", frontend="www") or 0) == 0
