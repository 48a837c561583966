# SPDX-License-Identifier: MIT
"""Managed certificates (issue 12, "certificates without a human"): `acme internal` makes a
local CA in state_dir and serves a certificate it signs, which curl and Python's ssl verify
with that CA's file; a restart reuses the stored certificate (same serial); a short
acme_lifetime shows a renewal that new connections get without a restart while an open one
keeps working; `keel check` reports what a managed certificate needs. The ACME issuer
(RFC 8555) against a real pebble (its HTTPS certificate made here with openssl, its
http-01 validations pointed at keel's plain port): a certificate issued and served, which
pebble's root (from its management interface) verifies; a challenge pebble cannot validate
is logged and retried with backoff while the placeholder stays; a directory that is down
is retried until it is up."""
import http.client
import json
import os
import re
import socket
import ssl
import stat
import subprocess
import urllib.request

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
                "    acme http://acme.example/directory;\n"
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
    assert re.search(r"bad\.conf:8:10: error: invalid ACME directory "
                     r"\"http://acme\.example/directory\": .*requires HTTPS", out), out


# --------------------------------------------------------------------------------------------
# ACME against pebble

class Pebble:
    """pebble on 127.0.0.1 (ACME port, management port), validating http-01 on http_port."""

    def __init__(self, env, http_port, name="pebble", tls_port=None):
        self.env = env
        self.dir = os.path.join(env.tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.ca = os.path.join(self.dir, "cert.pem")
        key = os.path.join(self.dir, "key.pem")
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", self.ca,
                            "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                            "subjectAltName=IP:127.0.0.1"], capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        self.port, self.mgmt = env.port(), env.port()
        self.config = os.path.join(self.dir, "pebble.json")
        with open(self.config, "w") as f:
            json.dump({"pebble": {
                "listenAddress": "127.0.0.1:%d" % self.port,
                "managementListenAddress": "127.0.0.1:%d" % self.mgmt,
                "certificate": self.ca, "privateKey": key,
                "httpPort": http_port, "tlsPort": tls_port or env.port(),
                "ocspResponderURL": "", "externalAccountBindingRequired": False}}, f)
        self.url = "https://127.0.0.1:%d/dir" % self.port
        self.proc = None

    def start(self):
        self.proc = kt.Proc(["pebble", "-config", self.config], "pebble",
                            env={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"})
        self.env.others.append(self.proc)
        kt.wait_port(self.port, 10, proc=self.proc.p)
        kt.wait_port(self.mgmt, 10, proc=self.proc.p)
        return self

    def root(self):
        """pebble's root CA (it makes a new one each start), as a PEM file."""
        ctx = ssl.create_default_context(cafile=self.ca)
        with urllib.request.urlopen("https://127.0.0.1:%d/roots/0" % self.mgmt, context=ctx,
                                    timeout=10) as r:
            pem = r.read()
        path = os.path.join(self.dir, "root.pem")
        with open(path, "wb") as f:
            f.write(pem)
        return path


def acme_frontend(env, backend, pebble, http_port=None, tls_port=None, extra=""):
    """keel with a plain bind (http-01) and a tls bind whose certificate pebble issues."""
    http_port = http_port or env.port()
    tls_port, admin = tls_port or env.port(), env.port()
    cfg = """cluster t { state_dir %s; }
global { workers 2; admin 127.0.0.1:%d; timeout_drain 2s; }
frontend www {
    bind 127.0.0.1:%d;
    bind 127.0.0.1:%d tls;
    acme %s;
    acme_ca_file %s;
    acme_email ops@keel.test;
    acme_names 127.0.0.1;
%s    backend web;
}
backend web { server a %s; }
""" % (os.path.join(env.tmp, "state"), admin, http_port, tls_port, pebble.url, pebble.ca,
       extra, backend.addr)
    k = env.keel(cfg, ports=[http_port, tls_port], admin=admin)
    k.tls, k.http = tls_port, http_port
    return k


def issuer_and_subject(port):
    """The served certificate's issuer and subject, as openssl prints them."""
    out = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                          "-showcerts"], input=b"", capture_output=True, timeout=30)
    pem = re.search(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out.stdout,
                    re.S)
    assert pem, out.stdout + out.stderr
    r = subprocess.run(["openssl", "x509", "-noout", "-issuer", "-subject"], input=pem.group(0),
                       capture_output=True, timeout=10)
    lines = r.stdout.decode().splitlines()
    return lines[0].split("=", 1)[1].strip(), lines[1].split("=", 1)[1].strip()


def curl_ip(ca, port, path):
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", ca, "-o", "/dev/null",
                        "-w", "%{http_code}", "https://127.0.0.1:%d%s" % (port, path)],
                       capture_output=True, timeout=30)
    return int(r.stdout or 0), r.stderr.decode(errors="replace")


def test_acme_issues_a_certificate_that_pebbles_root_verifies(env):
    (b,) = env.backends(1)
    http_port = env.port()
    pebble = Pebble(env, http_port).start()
    k = acme_frontend(env, b, pebble, http_port=http_port)
    k.log.wait(r"cert www: issuing -> valid \(stored serial", timeout=30)
    k.log.wait(r"www: new connections get the renewed certificate", timeout=5)
    assert k.log.find(r"acme: answering http-01 for 127\.0\.0\.1")
    st, err = curl_ip(pebble.root(), k.tls, "/hello")
    assert st == 200, err
    issuer, subject = issuer_and_subject(k.tls)
    assert issuer != subject and "Pebble" in issuer, issuer
    for f in ("acme/account.key", "www/key.pem"):
        mode = stat.S_IMODE(os.stat(os.path.join(env.tmp, "state", "tls", f)).st_mode)
        assert mode == 0o600, "%s: %o" % (f, mode)
    m = k.metrics()
    assert m.get("keel_cert_renewals_total", frontend="www", result="ok") == 1


def test_acme_a_failed_challenge_is_retried_with_backoff_and_the_placeholder_stays(env):
    (b,) = env.backends(1)
    wrong = env.port()  # pebble validates http-01 on a port where nothing answers
    pebble = Pebble(env, wrong).start()
    k = acme_frontend(env, b, pebble)
    k.log.wait(r"cert www: renewal failed: authorization of 127\.0\.0\.1 is invalid.*"
               r"retry 1 in 2000 ms", timeout=30)
    k.log.wait(r"cert www: issuing -> backoff \(issuing failed\)", timeout=5)
    # the second attempt comes after the backoff, and fails again, doubling it
    k.log.wait(r"cert www: backoff -> issuing \(retrying\)", timeout=10)
    k.log.wait(r"retry 2 in 4000 ms", timeout=30)
    issuer, subject = issuer_and_subject(k.tls)
    assert issuer == subject, "the self-signed placeholder is still served: %s" % issuer
    m = k.metrics()
    assert m.get("keel_cert_renewals_total", frontend="www", result="failed") >= 2
    assert m.get("keel_cert_renewals_total", frontend="www", result="ok") == 0


def test_acme_a_directory_that_is_down_is_retried_until_it_is_up(env):
    (b,) = env.backends(1)
    http_port = env.port()
    pebble = Pebble(env, http_port)  # configured, not started
    k = acme_frontend(env, b, pebble, http_port=http_port)
    # refused at once (a loopback connect), or from the loop: either way logged and retried
    k.log.wait(r"cert www: renewal failed: (directory: |cannot start a request to ).*"
               r"retry 1 in 2000 ms", timeout=20)
    pebble.start()
    k.log.wait(r"cert www: issuing -> valid \(stored serial", timeout=60)
    st, err = curl_ip(pebble.root(), k.tls, "/later")
    assert st == 200, err
    # a pebble that goes away does not disturb what is served
    root = pebble.root()
    pebble.proc.stop()
    assert curl_ip(root, k.tls, "/after")[0] == 200


def test_acme_tls_alpn_01_is_answered_on_the_tls_bind(env):
    (b,) = env.backends(1)
    tls_port = env.port()
    pebble = Pebble(env, env.port(), tls_port=tls_port).start()  # nothing on its http port
    k = acme_frontend(env, b, pebble, tls_port=tls_port,
                      extra="    acme_challenge tls-alpn-01;\n")
    k.log.wait(r"cert www: issuing -> valid \(stored serial", timeout=30)
    assert k.log.find(r"acme: answering tls-alpn-01 for 127\.0\.0\.1")
    assert curl_ip(pebble.root(), k.tls, "/alpn")[0] == 200
