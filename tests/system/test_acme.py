# SPDX-License-Identifier: MIT
"""Managed certificates (issue 12, "certificates without a human"): `acme internal` makes a
local CA in state_dir and serves a certificate it signs, which curl and Python's ssl verify
with that CA's file; a restart reuses the stored certificate (same serial); a short
acme_lifetime shows a renewal that new connections get without a restart while an open one
keeps working; `keel check` reports what a managed certificate needs. The ACME issuer
(RFC 8555, against pebble) comes with its own tests here."""
import http.client
import os
import re
import socket
import ssl
import stat
import subprocess

import keeltest as kt

NAME = "a.keel.test"


def acme_config(state_dir, tls_port, admin, backend, lifetime="12h", extra=""):
    return """cluster t { state_dir %s; }
global { workers 2; admin 127.0.0.1:%d; timeout_drain 2s; }
frontend www {
    bind 127.0.0.1:%d tls;
    acme internal;
    acme_names %s 127.0.0.1;
    acme_lifetime %s;
%s    backend web;
}
backend web { server a %s; }
""" % (state_dir, admin, tls_port, NAME, lifetime, extra, backend.addr)


def start(env, backend, lifetime="12h", state_dir=None):
    state_dir = state_dir or os.path.join(env.tmp, "state")
    tls_port, admin = env.port(), env.port()
    k = env.keel(acme_config(state_dir, tls_port, admin, backend, lifetime), ports=[tls_port],
                 admin=admin)
    k.tls, k.state_dir = tls_port, state_dir
    k.ca = os.path.join(state_dir, "tls", "ca", "ca.pem")
    return k


def curl(ca, port, path):
    """curl over HTTPS to NAME:port (resolved to 127.0.0.1), verifying with ca. Returns
    (status, stderr)."""
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", ca, "--resolve",
                        "%s:%d:127.0.0.1" % (NAME, port), "-o", "/dev/null", "-w",
                        "%{http_code}", "https://%s:%d%s" % (NAME, port, path)],
                       capture_output=True, timeout=30)
    return int(r.stdout or 0), r.stderr.decode(errors="replace")


def served_serial(ca, port, name=NAME):
    """The serial of the certificate a new connection gets, verified with ca for name."""
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=name) as t:
            der = t.getpeercert(binary_form=True)
    r = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der,
                       capture_output=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode().strip()


def test_internal_issuer_serves_https_that_curl_verifies(env):
    (b,) = env.backends(1)
    k = start(env, b)
    k.log.wait(r"clients trust %s" % re.escape(k.ca), timeout=5)
    st, err = curl(k.ca, k.tls, "/hello")
    assert st == 200, err
    assert b.requests("/hello") == [("GET", "/hello")]
    # the IP address of acme_names is in the certificate too
    assert served_serial(k.ca, k.tls, name="127.0.0.1")
    # without the CA, curl refuses it: it is not a public certificate
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "--resolve",
                        "%s:%d:127.0.0.1" % (NAME, k.tls), "https://%s:%d/" % (NAME, k.tls)],
                       capture_output=True, timeout=30)
    assert r.returncode == 60, r.stderr  # peer certificate cannot be authenticated
    for d, f in (("ca", "ca.key"), ("www", "key.pem")):
        mode = stat.S_IMODE(os.stat(os.path.join(k.state_dir, "tls", d, f)).st_mode)
        assert mode == 0o600, "%s/%s: %o" % (d, f, mode)
    m = k.metrics()
    assert float(m.get("keel_cert_expiry_timestamp_seconds", frontend="www")) > 0
    assert m.get("keel_cert_renewals_total", frontend="www", result="ok") == 0


def test_a_restart_reuses_the_stored_certificate(env):
    (b,) = env.backends(1)
    k = start(env, b)
    first = served_serial(k.ca, k.tls)
    assert k.log.find(r"www: issued serial")
    rc, killed = k.stop()
    assert rc == 0 and not killed
    k2 = start(env, b, state_dir=k.state_dir)
    assert served_serial(k2.ca, k2.tls) == first
    k2.log.wait(r"cert www: none -> valid \(stored certificate read\)", timeout=5)
    assert not k2.log.find(r"issued serial"), "a restart issued a new certificate"
    assert not k2.log.find(r"internal CA created")
    assert curl(k2.ca, k2.tls, "/again")[0] == 200


def test_a_short_lifetime_is_renewed_without_a_restart(env):
    (b,) = env.backends(1)
    k = start(env, b, lifetime="4s")
    first = served_serial(k.ca, k.tls)
    # an open keep-alive connection across the renewal
    ctx = ssl.create_default_context(cafile=k.ca)
    c = http.client.HTTPSConnection("127.0.0.1", k.tls, timeout=10, context=ctx)
    c.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", k.tls), timeout=10),
                             server_hostname=NAME)
    c.request("GET", "/before", headers={"Host": NAME})
    r = c.getresponse()
    r.read()
    assert r.status == 200
    kt.deadline_poll(lambda: served_serial(k.ca, k.tls) != first, 15, interval=0.2,
                     what="a renewed certificate served to new connections")
    k.log.wait(r"cert www: valid -> issuing \(two thirds of its life passed\)", timeout=5)
    k.log.wait(r"www: new connections get the renewed certificate", timeout=5)
    c.request("GET", "/after", headers={"Host": NAME})
    r = c.getresponse()
    r.read()
    assert r.status == 200, "the open connection broke"
    c.close()
    assert curl(k.ca, k.tls, "/new")[0] == 200
    kt.deadline_poll(lambda: int(k.metrics().get("keel_cert_renewals_total", frontend="www",
                                                 result="ok")) >= 1, 5, what="the counter")
    # and again: renewals go on, each served
    second = served_serial(k.ca, k.tls)
    kt.deadline_poll(lambda: served_serial(k.ca, k.tls) != second, 15, interval=0.2,
                     what="a second renewal")


def test_check_reports_what_a_managed_certificate_needs(env):
    path = os.path.join(env.tmp, "bad.conf")
    with open(path, "w") as f:
        f.write("frontend www {\n"
                "    bind 127.0.0.1:8443 tls;\n"
                "    acme internal;\n"
                "    backend web;\n"
                "}\n"
                "frontend plain {\n"
                "    bind 127.0.0.1:8080;\n"
                "    acme https://acme.example/directory;\n"
                "    backend web;\n"
                "}\n"
                "backend web { server a 127.0.0.1:9000; }\n")
    r = subprocess.run([kt.KEEL, "check", "-c", path], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert re.search(r"bad\.conf:3:5: error: \"acme\" in \"www\" without \"acme_names\"", out), out
    assert re.search(r"bad\.conf:3:5: error: \"acme\" keeps its certificates in the cluster's "
                     r"state_dir", out), out
    assert re.search(r"bad\.conf:8:10: error: ACME directories .* are not supported yet", out), out
