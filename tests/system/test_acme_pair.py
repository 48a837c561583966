# SPDX-License-Identifier: MIT
"""Managed certificates across the LB pair (issue 12, "Across the LB pair"): two keel LB
processes (two frontends on different ports, each with its own state_dir) share one real
etcd through the cluster's `dcs` and one cluster secret. With `acme internal`, both serve a
certificate of the same CA and only one issued it (the order lock's holder; the other took
it from etcd), the keys in etcd are sealed; the holder killed with -9, the other takes the
lock after its lease and renews; a node without the secret refuses to start. Against a real
pebble: one order for the pair, and its http-01 challenge answered by the node that did NOT
place the order (pebble's httpPort is the other node's port: the VIP moved between the order
and the challenge). Every wait is a poll with a deadline."""
import base64
import json
import os
import re
import shutil
import subprocess
import urllib.request

import pytest

import keeltest as kt
from dbtest import start_etcd
from test_acme import NAME, Pebble, curl, curl_ip, served_serial

pytestmark = pytest.mark.skipif(not shutil.which("etcd"), reason="needs etcd (scripts/deps.sh)")

LEASE = "3s"  # the order lock's TTL: a poll every second


def pair_config(env, name, etcd, secret, issuer, lifetime="12h", http_port=None,
                extra_cluster=""):
    """One LB node's file: its own state_dir, admin and ports; the pair's etcd and secret."""
    state = os.path.join(env.tmp, name, "state")
    os.makedirs(os.path.join(env.tmp, name), exist_ok=True)
    tls_port, admin = env.port(), env.port()
    plain = "    bind 127.0.0.1:%d;\n" % http_port if http_port else ""
    names = "acme_names %s 127.0.0.1;" % NAME if issuer == "internal" else "acme_names 127.0.0.1;"
    acme = "    acme internal;\n    acme_lifetime %s;\n" % lifetime
    if issuer != "internal":  # (directory URL, its CA file)
        acme = ("    acme %s;\n    acme_ca_file %s;\n    acme_email ops@keel.test;\n" % issuer)
    text = """cluster t {
    state_dir %s;
    secret_file %s;
    dcs etcd %s;
    acme_lease %s;
%s}
global { workers 2; admin 127.0.0.1:%d; timeout_drain 2s; log_level info; }
frontend www {
%s    bind 127.0.0.1:%d tls;
%s    %s
    backend web;
}
backend web { server a %%s; }
""" % (state, secret, etcd, LEASE, extra_cluster, admin, plain, tls_port, acme, names)
    return text, state, tls_port, admin


def start_node(env, name, etcd, secret, backend, issuer="internal", lifetime="12h",
               http_port=None, allow_errors=()):
    text, state, tls_port, admin = pair_config(env, name, etcd, secret, issuer, lifetime,
                                               http_port)
    path = os.path.join(env.tmp, name, "keel.conf")
    with open(path, "w") as f:
        f.write(text % backend.addr)
    ports = [tls_port] + ([http_port] if http_port else [])
    k = env.keel(None, conf=path, ports=ports, admin=admin, allow_errors=allow_errors)
    k.name, k.tls, k.http, k.state_dir = name, tls_port, http_port, state
    k.ca = os.path.join(state, "tls", "ca", "ca.pem")
    return k


def metric(k, name, **labels):
    v = k.metrics().get(name, **labels)
    return None if v is None else float(v)


def holder_of(nodes):
    """The node whose keel_cert_order_lock_held is 1, when exactly one is."""
    held = [k for k in nodes if k.poll() is None and metric(k, "keel_cert_order_lock_held") == 1]
    return held[0] if len(held) == 1 else None


def etcd_get(etcd, key):
    """The raw value of key in etcd, through its HTTP/JSON gateway (None: absent)."""
    body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
    req = urllib.request.Request(etcd + "/v3/kv/range", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        kvs = json.loads(r.read()).get("kvs", [])
    return base64.b64decode(kvs[0].get("value", "")) if kvs else None


def file_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


@pytest.fixture
def pair_env(env):
    env.etcd = start_etcd(env)
    env.secret = kt.write_secret(os.path.join(env.tmp, "cluster.key"), b"the pair's secret\n")
    return env


def wait_same_ca_and_serial(k1, k2, timeout=20):
    """Both serve one certificate, verified by one CA that both wrote to their state_dir."""
    def ok():
        a, b = file_bytes(k1.ca), file_bytes(k2.ca)
        if a is None or a != b:
            return None
        s1, s2 = served_serial(k1.ca, k1.tls), served_serial(k2.ca, k2.tls)
        return s1 if s1 == s2 else None
    return kt.deadline_poll(ok, timeout, interval=0.2, what="one CA and one serial on both")


def test_internal_pair_serves_one_certificate_of_one_ca(pair_env):
    env = pair_env
    (b,) = env.backends(1)
    k1 = start_node(env, "lb1", env.etcd, env.secret, b)
    k2 = start_node(env, "lb2", env.etcd, env.secret, b)
    serial = wait_same_ca_and_serial(k1, k2)
    holder = kt.deadline_poll(lambda: holder_of([k1, k2]), 10, interval=0.2,
                              what="one holder of the order lock")
    other = k2 if holder is k1 else k1
    assert metric(other, "keel_cert_order_lock_held") == 0
    # only the holder issued; the other took the certificate from etcd
    assert metric(holder, "keel_cert_renewals_total", frontend="www", result="ok") == 1
    assert metric(other, "keel_cert_renewals_total", frontend="www", result="ok") == 0
    assert metric(other, "keel_cert_adopted_total", frontend="www") == 1
    kt.check_exposition(holder.metrics().text)  # documented, and promtool's lint
    assert holder.log.find(r"published the certificate to etcd")
    assert not other.log.find(r"published the certificate to etcd")
    assert not other.log.find(r"-> issuing"), "the other node issued a certificate"
    _, line = other.log.wait(r"cert www: \S+ -> valid \(serial [0-9A-F]+ from etcd\)",
                             timeout=5)
    assert serial.split("=")[1].lstrip("0") in line, (serial, line)
    # clients verify either node with either node's CA file
    for k in (k1, k2):
        st, err = curl(other.ca, k.tls, "/hello")
        assert st == 200, err
    # what etcd holds is sealed: no key in the clear
    for key in ("/keel/t/acme/ca", "/keel/t/acme/cert/www"):
        v = etcd_get(env.etcd, key)
        assert v is not None and v.startswith(b"KSv1"), key
        assert b"PRIVATE KEY" not in v and b"CERTIFICATE" not in v, key
    assert etcd_get(env.etcd, "/keel/t/acme/lock").decode().endswith("/%d" % holder.pid)


def test_the_other_node_takes_the_lock_and_renews_when_the_holder_dies(pair_env):
    env = pair_env
    (b,) = env.backends(1)
    k1 = start_node(env, "lb1", env.etcd, env.secret, b, lifetime="12s")
    k2 = start_node(env, "lb2", env.etcd, env.secret, b, lifetime="12s")
    first = wait_same_ca_and_serial(k1, k2)
    holder = kt.deadline_poll(lambda: holder_of([k1, k2]), 10, interval=0.2,
                              what="one holder of the order lock")
    other = k2 if holder is k1 else k1
    issued_before = metric(other, "keel_cert_renewals_total", frontend="www", result="ok")
    assert issued_before == 0
    mark = other.log.mark()
    holder.kill9()
    # after the lease's TTL (3 s) and a poll, the other holds the lock...
    kt.deadline_poll(lambda: metric(other, "keel_cert_order_lock_held") == 1, 10, interval=0.2,
                     what="the other node holding the order lock")
    other.log.wait(r"this node holds the order lock", timeout=5, start=mark)
    # ... and renews (two thirds of 12 s), with the same CA
    kt.deadline_poll(
        lambda: metric(other, "keel_cert_renewals_total", frontend="www", result="ok") >= 1,
        20, interval=0.2, what="a renewal by the new holder")
    kt.deadline_poll(lambda: served_serial(other.ca, other.tls) != first, 10, interval=0.2,
                     what="a new serial served")
    st, err = curl(other.ca, other.tls, "/after")
    assert st == 200, err
    assert etcd_get(env.etcd, "/keel/t/acme/lock").decode().endswith("/%d" % other.pid)


def test_a_node_without_the_secret_refuses(pair_env, tmp_path):
    env = pair_env
    (b,) = env.backends(1)
    text, _, _, _ = pair_config(env, "lb3", env.etcd, os.path.join(env.tmp, "missing.key"),
                                "internal")
    path = os.path.join(env.tmp, "lb3", "keel.conf")
    with open(path, "w") as f:
        f.write(text % b.addr)
    r = subprocess.run([kt.KEEL, "run", "-c", path], capture_output=True, timeout=20)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode != 0, out
    assert re.search(r"frontend \"www\": managed certificate: the cluster's dcs keeps the keys "
                     r"sealed with the cluster secret, which this node cannot use", out), out
    # and a dcs with acme but no secret_file at all is a configuration error
    bad = re.sub(r"    secret_file [^;]*;\n", "", text % b.addr)
    with open(path, "w") as f:
        f.write(bad)
    r = subprocess.run([kt.KEEL, "check", "-c", path], capture_output=True, timeout=20)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 1, out
    assert re.search(r"error: \"acme\" in \"www\" with the cluster's dcs keeps its keys in "
                     r"etcd sealed with the cluster secret, which is not set", out), out


def test_pebble_one_order_and_the_challenge_answered_by_the_other_node(pair_env):
    env = pair_env
    (b,) = env.backends(1)
    http1, http2 = env.port(), env.port()
    # pebble is configured (its URL and CA known) but started once the holder is known:
    # until then the holder's orders fail and are retried with the backoff
    pebble = Pebble(env, env.port())
    k1 = start_node(env, "lb1", env.etcd, env.secret, b, issuer=(pebble.url, pebble.ca),
                    http_port=http1)
    k2 = start_node(env, "lb2", env.etcd, env.secret, b, issuer=(pebble.url, pebble.ca),
                    http_port=http2)
    holder = kt.deadline_poll(lambda: holder_of([k1, k2]), 10, interval=0.2,
                              what="one holder of the order lock")
    other = k2 if holder is k1 else k1
    # the ACME server validates on the node that did NOT place the order
    with open(pebble.config) as f:
        cfg = json.load(f)
    cfg["pebble"]["httpPort"] = other.http
    with open(pebble.config, "w") as f:
        json.dump(cfg, f)
    pebble.start()
    root = pebble.root()
    # one certificate, served by both, verified by pebble's root
    def both_served():
        st1, _ = curl_ip(root, k1.tls, "/a")
        st2, _ = curl_ip(root, k2.tls, "/b")
        return st1 == 200 and st2 == 200
    kt.deadline_poll(both_served, 60, interval=0.5, what="both nodes serving pebble's certificate")
    assert served_serial(root, k1.tls, name="127.0.0.1") == served_serial(root, k2.tls,
                                                                          name="127.0.0.1")
    # the other node answered the challenge, from etcd; it never ordered
    other.log.wait(r"answering the http-01 challenge \S+ \(from etcd\)", timeout=5)
    assert not other.log.find(r"acme new-order ->"), "the other node placed an order"
    assert not other.log.find(r"acme: answering")
    assert len(holder.log.find(r"acme new-order -> authz")) == 1
    assert metric(holder, "keel_cert_renewals_total", frontend="www", result="ok") == 1
    assert metric(other, "keel_cert_renewals_total", frontend="www", result="ok") == 0
    assert metric(other, "keel_cert_adopted_total", frontend="www") == 1
    # the answer is withdrawn from etcd once validated
    kt.deadline_poll(lambda: not [k for k in etcd_keys(env.etcd, "/keel/t/acme/answer/")], 10,
                     interval=0.2, what="no answer left in etcd")


def etcd_keys(etcd, prefix):
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    body = json.dumps({"key": base64.b64encode(prefix.encode()).decode(),
                       "range_end": base64.b64encode(end.encode()).decode(),
                       "keys_only": True}).encode()
    req = urllib.request.Request(etcd + "/v3/kv/range", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return [base64.b64decode(kv["key"]).decode()
                for kv in json.loads(r.read()).get("kvs", [])]
