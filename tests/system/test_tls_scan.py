# SPDX-License-Identifier: MIT
"""What a TLS scanner checks, against a keel frontend with default TLS settings (issue 12:
no protocol below TLS 1.2, no weak cipher, no vulnerability flagged), with an ECDSA P-256 and
an RSA 2048 certificate so that any RSA or ECDSA suite could be chosen.

Two ways. The `testssl.sh` scan itself (Debian's `testssl` 3.0: --protocols --std --fs
--server-preference --vulnerable, about 25 s; its JSON parsed; KEEL_TESTSSL=0 skips it, see
tests/system/README.md). And its checks done directly, in a second, with precise messages:
hand-made ClientHellos (so that the client's own OpenSSL, which no longer offers SSLv3, RC4 or
export suites, does not decide the answer) offering one protocol version or one family of
weak suites alone, and `openssl s_client` for renegotiation and the accepted protocols."""
import json
import os
import shutil
import socket
import struct
import subprocess

import pytest

import keeltest as kt

# ------------------------------------------------------------------------------------------
# a ClientHello of our own (RFC 5246 section 7.4.1.2, RFC 8446 section 4.1.2)

# TLS 1.2 suites keel offers by default (src/tls/tls_ctx.h, Mozilla "intermediate")
GOOD = {0xC02B: "ECDHE-ECDSA-AES128-GCM-SHA256", 0xC02F: "ECDHE-RSA-AES128-GCM-SHA256",
        0xC02C: "ECDHE-ECDSA-AES256-GCM-SHA384", 0xC030: "ECDHE-RSA-AES256-GCM-SHA384",
        0xCCA9: "ECDHE-ECDSA-CHACHA20-POLY1305", 0xCCA8: "ECDHE-RSA-CHACHA20-POLY1305"}

# Families testssl.sh rates weak ("--std": NULL, aNULL, EXPORT, LOW, 3DES/IDEA, "obsoleted"
# CBC, and the "--vulnerable" checks they stand for: SWEET32, FREAK, LOGJAM, ROBOT, RC4,
# LUCKY13/BEAST)
WEAK = {
    "NULL": [0x0001, 0x0002, 0x003B, 0xC006, 0xC010],
    "aNULL": [0x0018, 0x0034, 0x00A6, 0xC018, 0xC019],
    "EXPORT": [0x0003, 0x0006, 0x0008, 0x0014, 0x0011],
    "DES (LOW)": [0x0009, 0x0015, 0x0012],
    "RC4": [0x0004, 0x0005, 0xC007, 0xC011],
    "3DES (SWEET32)": [0x000A, 0x0016, 0xC008, 0xC012],
    "IDEA, SEED, CAMELLIA": [0x0007, 0x0096, 0x0041, 0x0084, 0xC072, 0xC076],
    "DHE (LOGJAM)": [0x0033, 0x0039, 0x009E, 0x009F, 0xCCAA],
    "static RSA (ROBOT)": [0x002F, 0x0035, 0x009C, 0x009D, 0x003C],
    "CBC with SHA-1 (LUCKY13)": [0xC009, 0xC00A, 0xC013, 0xC014],
    "CBC with SHA-2": [0xC023, 0xC024, 0xC027, 0xC028],
    "PSK, SRP": [0x008C, 0x008D, 0xC01D, 0xC020],
}

SNI = kt.TLS_SNI    # both certificates serve it
EXT_SNI, EXT_GROUPS, EXT_POINTS, EXT_SIGALGS = 0, 10, 11, 13
EXT_HEARTBEAT, EXT_TICKET, EXT_RENEG = 15, 35, 0xFF01
FALLBACK_SCSV, RENEG_SCSV = 0x5600, 0x00FF
ALERTS = {10: "unexpected_message", 40: "handshake_failure", 47: "illegal_parameter",
          50: "decode_error", 70: "protocol_version", 71: "insufficient_security",
          86: "inappropriate_fallback"}


def _ext(kind, body):
    return struct.pack("!HH", kind, len(body)) + body


def _vec16(items):
    body = b"".join(struct.pack("!H", x) for x in items)
    return struct.pack("!H", len(body)) + body


def client_hello(version=0x0303, suites=tuple(GOOD), compression=(0,), heartbeat=False,
                 record_version=None):
    """A ClientHello record for `version` (no supported_versions extension: a TLS 1.3
    server answers as the version says) offering exactly `suites`."""
    name = SNI.encode()
    exts = _ext(EXT_SNI, struct.pack("!HBH", len(name) + 3, 0, len(name)) + name)
    exts += _ext(EXT_GROUPS, _vec16([0x001D, 0x0017, 0x0018]))
    exts += _ext(EXT_POINTS, b"\x01\x00")
    exts += _ext(EXT_SIGALGS, _vec16([0x0403, 0x0503, 0x0804, 0x0805, 0x0401, 0x0501,
                                      0x0201, 0x0203]))
    exts += _ext(EXT_TICKET, b"") + _ext(EXT_RENEG, b"\x00")
    if heartbeat:
        exts += _ext(EXT_HEARTBEAT, b"\x01")    # peer_allowed_to_send (RFC 6520)
    body = struct.pack("!H", version) + os.urandom(32) + b"\x00"
    body += _vec16(suites) + bytes([len(compression)]) + bytes(compression)
    if version >= 0x0301:
        body += struct.pack("!H", len(exts)) + exts
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    rv = record_version if record_version is not None else min(version, 0x0301)
    return struct.pack("!BHH", 0x16, rv, len(hs)) + hs


def sslv2_client_hello():
    """An SSLv2 CLIENT-HELLO (version 2) with its seven cipher kinds."""
    specs = b"".join(bytes.fromhex(x) for x in ("010080", "020080", "030080", "040080",
                                                 "050080", "060040", "0700c0"))
    msg = b"\x01\x00\x02" + struct.pack("!HHH", len(specs), 0, 16) + specs + os.urandom(16)
    return struct.pack("!H", 0x8000 | len(msg)) + msg


class Answer:
    """What the server sent back to one hello: a ServerHello (version, suite, compression,
    extension types), an alert, or nothing before it closed."""

    def __init__(self, data):
        self.raw = data
        self.kind, self.alert = "closed", None
        self.version = self.suite = self.compression = None
        self.exts = []
        if len(data) >= 7 and data[0] == 0x15:
            self.kind, self.alert = "alert", ALERTS.get(data[6], data[6])
        elif len(data) >= 9 and data[0] == 0x16 and data[5] == 0x02:
            self.kind = "server_hello"
            p = data[9:]
            self.version = struct.unpack("!H", p[:2])[0]
            sid = p[34]
            self.suite, self.compression = struct.unpack("!HB", p[35 + sid:38 + sid])
            n_exts = struct.unpack("!H", p[38 + sid:40 + sid])[0] if len(p) >= 40 + sid else 0
            q = p[40 + sid:40 + sid + n_exts]
            while len(q) >= 4:
                kind, n = struct.unpack("!HH", q[:4])
                self.exts.append(kind)
                q = q[4 + n:]
        elif data:
            self.kind = "other"

    def __repr__(self):
        if self.kind == "server_hello":
            return "<ServerHello %04x suite %04x (%s) compression %d exts %s>" % (
                self.version, self.suite, GOOD.get(self.suite, "?"), self.compression,
                self.exts)
        return "<%s %s %r>" % (self.kind, self.alert or "", self.raw[:16])


def offer(port, hello, timeout=5.0):
    """Send hello to port, read the first record (or whatever comes before the close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(hello)
        data = b""
        try:
            while len(data) < 5 or len(data) < 5 + struct.unpack("!H", data[3:5])[0]:
                d = s.recv(65536)
                if not d:
                    break
                data += d
        except ConnectionResetError:
            pass
        return Answer(data)


def s_client(port, *args, stdin=b""):
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                        "-servername", SNI] + list(args), input=stdin, capture_output=True,
                       timeout=30)
    return r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


# ------------------------------------------------------------------------------------------
# keel with default TLS settings


def new_rsa_certificate(d):
    cert, key = os.path.join(d, "rsa.pem"), os.path.join(d, "rsa.key")
    r = subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "2", "-newkey",
                        "rsa:2048", "-subj", "/CN=" + SNI, "-addext", "subjectAltName=DNS:" + SNI,
                        "-keyout", key, "-out", cert], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return cert, key


@pytest.fixture
def tls_keel(env):
    """keel with one frontend on a tls port (default settings), ECDSA and RSA certificates."""
    (b,) = env.backends(1)
    port, admin = env.port(), env.port()
    ec = kt.make_test_certificate(env.tmp)
    rsa = new_rsa_certificate(env.tmp)
    cfg = kt.lb_config(port, [(b.bname, b.addr)], admin, tls_cert=ec,
                       frontend_extra="    certificate %s %s;\n" % rsa)
    k = env.keel(cfg, ports=[port], admin=admin)
    k.port = port
    return k


def test_no_protocol_below_tls12(tls_keel):
    port = tls_keel.port
    # the control: the same hello as TLS 1.2 is answered
    ok = offer(port, client_hello(0x0303))
    assert ok.kind == "server_hello" and ok.version == 0x0303 and ok.suite in GOOD, ok
    old_suites = list(GOOD) + [0xC013, 0xC009, 0x002F, 0x0035, 0x000A, 0x0005]
    for version, name in ((0x0300, "SSLv3"), (0x0301, "TLS 1.0"), (0x0302, "TLS 1.1")):
        a = offer(port, client_hello(version, old_suites))
        assert a.kind in ("alert", "closed"), (name, a)
        if a.kind == "alert":
            assert a.alert in ("protocol_version", "handshake_failure"), (name, a)
    a = offer(port, sslv2_client_hello())
    # no SSLv2 SERVER-HELLO (its third byte is 4): an alert or a close
    assert a.raw[:1] in (b"", b"\x15"), ("SSLv2", a)
    # and through OpenSSL's client, which still speaks TLS 1.0 and 1.1 at security level 0
    for flag in ("-tls1", "-tls1_1"):
        out = s_client(port, flag, "-cipher", "DEFAULT:@SECLEVEL=0")
        assert "Cipher is (NONE)" in out, (flag, out)
    assert "New, TLSv1.2, Cipher is ECDHE-" in s_client(port, "-tls1_2")
    assert "New, TLSv1.3, Cipher is TLS_" in s_client(port, "-tls1_3")


def test_no_weak_cipher(tls_keel):
    port = tls_keel.port
    taken = {}
    for family, suites in sorted(WEAK.items()):
        a = offer(port, client_hello(0x0303, suites))
        if a.kind == "server_hello":
            taken[family] = "%04x" % a.suite
        else:
            assert a.kind in ("alert", "closed"), (family, a)
    assert not taken, "weak suites accepted: %s" % taken
    # everything weak first and one good suite last: the good one is chosen
    every = [x for s in WEAK.values() for x in s]
    for good in (0xC02B, 0xC02F):
        a = offer(port, client_hello(0x0303, every + [good]))
        assert a.kind == "server_hello" and a.suite == good, a
    # each default TLS 1.2 suite is accepted alone (the RSA ones with the RSA certificate)
    for suite in GOOD:
        a = offer(port, client_hello(0x0303, [suite]))
        assert a.kind == "server_hello" and a.suite == suite, (GOOD[suite], a)
    # TLS 1.3: the three default suites, not the CCM ones
    for suite in ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                  "TLS_CHACHA20_POLY1305_SHA256"):
        assert "New, TLSv1.3, Cipher is %s" % suite in s_client(
            port, "-tls1_3", "-ciphersuites", suite)
    out = s_client(port, "-tls1_3", "-ciphersuites", "TLS_AES_128_CCM_SHA256:"
                   "TLS_AES_128_CCM_8_SHA256")
    assert "Cipher is (NONE)" in out, out


def test_renegotiation_compression_heartbeat_fallback(tls_keel):
    port = tls_keel.port
    # secure renegotiation (RFC 5746) is announced ...
    a = offer(port, client_hello(0x0303, list(GOOD) + [RENEG_SCSV]))
    assert a.kind == "server_hello" and EXT_RENEG in a.exts, a
    out = s_client(port, "-tls1_2")
    assert "Secure Renegotiation IS supported" in out, out
    assert "Compression: NONE" in out, out
    # ... and a client-initiated renegotiation is refused: no answer to the request after it
    out = s_client(port, "-tls1_2", stdin=b"R\n")
    assert "RENEGOTIATING" in out and "no renegotiation" in out, out
    # compression (CRIME): DEFLATE offered, none chosen; no heartbeat (Heartbleed)
    a = offer(port, client_hello(0x0303, compression=(1, 0), heartbeat=True))
    assert a.kind == "server_hello" and a.compression == 0, a
    assert EXT_HEARTBEAT not in a.exts, a
    # TLS_FALLBACK_SCSV (RFC 7507): a TLS 1.2 hello that says it fell back is refused by a
    # server that speaks TLS 1.3
    a = offer(port, client_hello(0x0303, list(GOOD) + [FALLBACK_SCSV]))
    assert a.kind == "alert" and a.alert == "inappropriate_fallback", a


# ------------------------------------------------------------------------------------------
# the testssl.sh scan (KEEL_TESTSSL=0 skips it)

# testssl.sh's JSON ids that must say "not offered" / "offered"
NOT_OFFERED = ("SSLv2", "SSLv3", "TLS1", "TLS1_1")
BAD_SEVERITIES = ("MEDIUM", "HIGH", "CRITICAL")
# Findings that are keel's documented choices, not weaknesses:
#   cipher_order: testssl 3.0 rates a server without a cipher order HIGH whatever it offers.
#   keel lets the client's order decide among its suites, as Mozilla's intermediate profile
#   says (docs/directives/tls_ciphers.md); every suite it accepts is AEAD with forward
#   secrecy (test_no_weak_cipher), so the client can only pick a strong one.
ACCEPTED = {"cipher_order": "NOT a cipher order configured"}


@pytest.mark.skipif(os.environ.get("KEEL_TESTSSL") == "0", reason="KEEL_TESTSSL=0")
@pytest.mark.timeout(240)
def test_testssl_finds_nothing(env, tls_keel):
    binary = shutil.which("testssl") or shutil.which("testssl.sh")
    assert binary, "testssl.sh not installed (scripts/deps.sh)"
    out = os.path.join(env.tmp, "testssl.json")
    # testssl 3.0: --std is the cipher categories (NULL, aNULL, export, LOW, 3DES, obsolete
    # CBC, strong), --fs forward secrecy
    r = subprocess.run([binary, "--protocols", "--std", "--fs", "--server-preference",
                        "--vulnerable", "--warnings", "off", "--quiet", "--color", "0",
                        "--sneaky", "--jsonfile", out, "--ip", "127.0.0.1",
                        "%s:%d" % (SNI, tls_keel.port)],
                       capture_output=True, text=True, timeout=200)
    assert os.path.exists(out), r.stdout[-3000:] + r.stderr[-2000:]
    with open(out) as f:
        findings = json.load(f)
    by_id = {x["id"]: x for x in findings}
    for pid in NOT_OFFERED:
        assert "not offered" in by_id[pid]["finding"], by_id[pid]
    assert by_id["TLS1_2"]["finding"].startswith("offered"), by_id["TLS1_2"]
    assert by_id["TLS1_3"]["finding"].startswith("offered"), by_id["TLS1_3"]
    # the self-signed test certificate is not what is scanned: its trust findings aside
    cert_ids = ("cert_", "intermediate", "chain_of_trust", "DNS_CAArecord", "OCSP",
                "certificate_transparency", "scanProblem")
    bad = [x for x in findings if x["severity"] in BAD_SEVERITIES
           and not x["id"].startswith(cert_ids) and ACCEPTED.get(x["id"]) != x["finding"]]
    assert not bad, json.dumps(bad, indent=1)
