# SPDX-License-Identifier: MIT
"""Network namespaces for the VRRP system tests: an isolated L2 segment with test hosts.

A `Lab` is one bridge in a namespace of its own and one namespace per host, each host wired to
the bridge by a veth pair whose host end is `eth0`. The test assigns every address; nothing is
routed anywhere, and the root namespace is never touched (no interface, no address, no route).
Names are "kv" + a random suffix, so a leftover of a crashed run never collides.

Faults: a host's link down (inside its namespace, or the bridge port), and a partition between
hosts (bridge port isolation: isolated ports cannot talk to each other but still reach the
others).

Sockets in a namespace: `netns(name)` switches the calling *thread* into a namespace for the
duration of a with-block (setns(2) is per thread); a socket keeps the namespace it was created
in, so it can be used from any thread afterwards. Never start a subprocess inside the block.

Also here: `Prober`, a client that opens a new connection to a URL every 10 ms (non-blocking,
many in flight) and records every attempt, and `StatusWatch`, which polls the nodes' /status to
see when two of them claim to be master. Only the stdlib is used.
"""
import contextlib
import ctypes
import errno
import http.client
import json
import os
import random
import re
import selectors
import signal
import socket
import struct
import subprocess
import threading
import time

import keeltest as kt

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns: " + os.strerror(e))


@contextlib.contextmanager
def netns(name):
    """Run the with-block's socket creations in network namespace `name` (this thread only)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open("/run/netns/" + name, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(own)
        finally:
            os.close(target)
    finally:
        os.close(own)


def enter_netns_for_good(name):
    """Move the calling thread into namespace `name` (for threads that live there)."""
    fd = os.open("/run/netns/" + name, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(fd)
    finally:
        os.close(fd)


def ns_socket(ns, family=socket.AF_INET, type=socket.SOCK_STREAM, proto=0):
    if ns is None:
        return socket.socket(family, type, proto)
    with netns(ns):
        return socket.socket(family, type, proto)


class NsHTTPConnection(http.client.HTTPConnection):
    """http.client over a socket created in namespace ns (None: this thread's own)."""

    def __init__(self, ns, host, port, timeout=3):
        super().__init__(host, port, timeout=timeout)
        self.ns = ns

    def connect(self):
        s = ns_socket(self.ns)
        try:
            s.settimeout(self.timeout)
            s.connect((self.host, self.port))
        except BaseException:
            s.close()
            raise
        self.sock = s


def http_get(ns, addr, path, timeout=3, headers=None):
    """GET on a fresh connection from namespace ns. addr "IP:PORT". (status, headers, body)"""
    host, port = addr.rsplit(":", 1)
    c = NsHTTPConnection(ns, host, int(port), timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


# --------------------------------------------------------------------------------------------
# Commands

class CmdError(RuntimeError):
    pass


def run(*argv, check=True, timeout=20):
    r = subprocess.run([str(a) for a in argv], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise CmdError("%s: exit %d: %s" % (" ".join(str(a) for a in argv), r.returncode,
                                            (r.stderr or r.stdout).strip()))
    return r


def ns_pids(ns):
    r = run("ip", "netns", "pids", ns, check=False)
    return [int(x) for x in r.stdout.split() if x.isdigit()]


# --------------------------------------------------------------------------------------------
# The lab

class Host:
    def __init__(self, lab, name, ns, port, addrs):
        self.lab = lab
        self.name = name          # short name used by the test: "lb1", "client"...
        self.ns = ns              # namespace name
        self.port = port          # the bridge port (in the bridge namespace)
        self.addrs = list(addrs)  # "10.77.0.11/24"...

    @property
    def ip(self):
        return self.addrs[0].split("/")[0]

    def ip_cmd(self, *args, check=True):
        return run("ip", "-n", self.ns, *args, check=check)

    def ipv4_on(self, dev="eth0"):
        """The IPv4 addresses on dev now: list of "A.B.C.D/len"."""
        r = run("ip", "-n", self.ns, "-j", "-4", "addr", "show", "dev", dev)
        out = []
        for link in json.loads(r.stdout or "[]"):
            for a in link.get("addr_info", []):
                if a.get("family") == "inet":
                    out.append("%s/%s" % (a["local"], a["prefixlen"]))
        return out

    def has_ip(self, ip, dev="eth0"):
        return any(a.split("/")[0] == ip for a in self.ipv4_on(dev))

    def mac(self, dev="eth0"):
        r = run("ip", "-n", self.ns, "-j", "link", "show", "dev", dev)
        return json.loads(r.stdout)[0]["address"]

    def neigh(self, ip, dev="eth0"):
        """(lladdr or None, state) of this host's neighbour entry for ip."""
        r = run("ip", "-n", self.ns, "-j", "neigh", "show", "to", ip, "dev", dev)
        for e in json.loads(r.stdout or "[]"):
            return e.get("lladdr"), ",".join(e.get("state", []))
        return None, "none"

    def link_down(self, side="inside"):
        """inside: `ip link set eth0 down` in the host; bridge: its bridge port down
        (the host then sees no carrier)."""
        if side == "inside":
            self.ip_cmd("link", "set", "dev", "eth0", "down")
        else:
            run("ip", "-n", self.lab.br_ns, "link", "set", "dev", self.port, "down")

    def link_up(self, side="inside"):
        if side == "inside":
            self.ip_cmd("link", "set", "dev", "eth0", "up")
        else:
            run("ip", "-n", self.lab.br_ns, "link", "set", "dev", self.port, "up")

    def argv(self, *cmd):
        """A command line that runs cmd in this host's namespace (ip netns exec execs it:
        the child's PID is the command's)."""
        return ["ip", "netns", "exec", self.ns] + [str(c) for c in cmd]


class Lab:
    """One isolated L2 segment. Use as `with Lab() as lab:` or call close() in a finally."""

    def __init__(self, subnet="10.77.0"):
        self.id = "kv" + "".join(random.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                                 for _ in range(6))
        self.subnet = subnet
        self.hosts = {}
        self.namespaces = []      # created, in order
        self.br_ns = self.id + "-br"
        try:
            self._add_ns(self.br_ns)
            run("ip", "-n", self.br_ns, "link", "add", "br0", "type", "bridge",
                "forward_delay", "0", "stp_state", "0", "mcast_snooping", "0")
            run("ip", "-n", self.br_ns, "link", "set", "dev", "br0", "up")
            run("ip", "-n", self.br_ns, "link", "set", "dev", "lo", "up")
        except BaseException:
            self.close()
            raise

    def _add_ns(self, ns):
        run("ip", "netns", "add", ns)
        self.namespaces.append(ns)

    def add_host(self, name, *addrs):
        """A host namespace with eth0 on the bridge carrying addrs ("10.77.0.11/24"...)."""
        ns = "%s-%s" % (self.id, name)
        port = "p-" + name
        assert len(port) < 16
        self._add_ns(ns)
        h = Host(self, name, ns, port, addrs)
        self.hosts[name] = h
        run("ip", "-n", self.br_ns, "link", "add", port, "type", "veth", "peer", "name",
            "eth0", "netns", ns)
        run("ip", "-n", self.br_ns, "link", "set", "dev", port, "master", "br0")
        run("ip", "-n", self.br_ns, "link", "set", "dev", port, "up")
        run("ip", "-n", ns, "link", "set", "dev", "lo", "up")
        for a in addrs:
            run("ip", "-n", ns, "addr", "add", a, "dev", "eth0")
        run("ip", "-n", ns, "link", "set", "dev", "eth0", "up")
        return h

    def host(self, name):
        return self.hosts[name]

    def name_of(self, ip):
        for h in self.hosts.values():
            if any(a.split("/")[0] == ip for a in h.addrs):
                return h.name
        return ip

    def isolate(self, names, on=True):
        """Partition: the bridge ports of these hosts cannot reach each other (each still
        reaches every host not in the set)."""
        for n in names:
            run("bridge", "-n", self.br_ns, "link", "set", "dev", self.hosts[n].port,
                "isolated", "on" if on else "off")

    def kill_leftovers(self):
        """SIGKILL whatever still runs in the lab's namespaces (all started by the test:
        nothing else can be in a namespace made a moment ago). Returns the PIDs killed."""
        killed = []
        for ns in self.namespaces:
            for pid in ns_pids(ns):
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass
        end = time.monotonic() + 5
        while time.monotonic() < end and any(kt.pid_running(p) for p in killed):
            time.sleep(0.02)
        return killed

    def close(self):
        """Remove everything; never raises. Returns a list of problems (strings)."""
        problems = []
        try:
            left = self.kill_leftovers()
            if left:
                problems.append("processes left in the lab's namespaces (killed): %s" % left)
        except Exception as e:  # noqa: BLE001 - cleanup goes on
            problems.append("kill leftovers: %r" % e)
        for h in self.hosts.values():
            r = run("ip", "-n", self.br_ns, "link", "del", "dev", h.port, check=False)
            if r.returncode != 0 and "Cannot find device" not in r.stderr:
                problems.append("del %s: %s" % (h.port, r.stderr.strip()))
        run("ip", "-n", self.br_ns, "link", "del", "dev", "br0", check=False)
        for ns in reversed(self.namespaces):
            r = run("ip", "netns", "del", ns, check=False)
            if r.returncode != 0:
                problems.append("netns del %s: %s" % (ns, r.stderr.strip()))
        self.namespaces = []
        return problems

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def lab_leftovers(lab_id):
    """Namespaces and links named after lab_id still visible (for tests of the teardown)."""
    out = []
    r = run("ip", "netns", "list", check=False)
    out += [l.split()[0] for l in r.stdout.splitlines() if l.startswith(lab_id)]
    r = run("ip", "-br", "link", check=False)
    out += [l.split()[0] for l in r.stdout.splitlines() if lab_id in l]
    return out


# --------------------------------------------------------------------------------------------
# A tiny HTTP server that says who asked (run in a namespace as a child process)

ECHO_SERVER = r'''
import http.server, socketserver, sys, signal, threading
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def do_GET(self):
        # one write: head and body in separate segments meet Nagle and delayed ACKs (40 ms)
        body = "%s %s\n" % (self.server.name, self.client_address[0])
        self.wfile.write(("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Server: %s\r\n"
                          "Content-Length: %d\r\n\r\n%s" % (self.server.name, len(body), body)
                          ).encode())
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    def handle_error(self, request, client_address):
        pass    # a client (keel) that went away mid-answer is not news
servers = []
for spec in sys.argv[1:]:
    name, addr = spec.split("=")
    host, port = addr.rsplit(":", 1)
    s = S((host, int(port)), H)
    s.name = name
    servers.append(s)
    threading.Thread(target=s.serve_forever, daemon=True).start()
sys.stderr.write("echo servers ready\n"); sys.stderr.flush()
signal.sigwait([signal.SIGTERM, signal.SIGINT])
'''


def echo_server_argv(host, specs, python):
    """argv running the echo server in host's namespace; specs: [("b1", "10.77.0.21:8080")]"""
    return host.argv(python, "-c", ECHO_SERVER, *["%s=%s" % s for s in specs])


# --------------------------------------------------------------------------------------------
# The client: a new connection every `every` seconds, many in flight

class Probe:
    __slots__ = ("t0", "t1", "ok", "server", "via", "err")

    def __init__(self, t0):
        self.t0, self.t1, self.ok, self.server, self.via, self.err = t0, None, False, None, None, None

    def __repr__(self):
        return "<Probe +%.3f %.1fms %s %s %s>" % (self.t0 % 1000, 1000 * ((self.t1 or self.t0) - self.t0),
                                                 "ok" if self.ok else "FAIL", self.via, self.err)


class _Conn:
    __slots__ = ("sock", "probe", "state", "out", "buf", "connect_by", "done_by")


class Prober(threading.Thread):
    """GET http://host:port/ every `every` s from namespace ns, each on a new connection
    (connect timeout connect_timeout, whole request timeout). Records a Probe per attempt:
    ok (200), the backend name and the LB it came through (the echo server's body says the
    peer address, which via_of maps to a name)."""

    MAX_S = 300

    def __init__(self, ns, host, port, via_of=None, every=0.01, connect_timeout=0.1,
                 timeout=1.0, path="/"):
        super().__init__(daemon=True, name="prober-%s:%d" % (host, port))
        self.ns, self.host, self.port = ns, host, port
        self.via_of = via_of or (lambda ip: ip)
        self.every, self.connect_timeout, self.timeout = every, connect_timeout, timeout
        self.req = ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                    % (path, host)).encode()
        self.probes = []
        self.lock = threading.Lock()
        self._halt = threading.Event()
        self.error = None

    def stop(self):
        self._halt.set()
        self.join(10)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *a):
        self.stop()

    def run(self):
        try:
            if self.ns:
                enter_netns_for_good(self.ns)
            self._loop()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = repr(e)

    def _finish(self, sel, c, ok, err=None):
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
        p = c.probe
        p.t1 = time.monotonic()
        if ok:
            p.ok, p.err = self._parse(c.buf, p)
        else:
            p.ok, p.err = False, err
        c.state = "done"

    def _parse(self, data, p):
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep:
            return False, "truncated response (%d bytes)" % len(data)
        m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
        if not m:
            return False, "bad status line"
        st = int(m.group(1))
        words = body.decode(errors="replace").split()
        if words:
            p.server = words[0]
            if len(words) > 1:
                p.via = self.via_of(words[1])
        if st != 200:
            return False, "status %d" % st
        return True, None

    def _loop(self):
        sel = selectors.DefaultSelector()
        live = []
        start = time.monotonic()
        nxt = start
        while not self._halt.is_set():
            now = time.monotonic()
            if now - start > self.MAX_S:
                break
            if now >= nxt:
                nxt = max(nxt + self.every, now)
                live.append(self._open(sel, now))
            # deadlines
            for c in live:
                if c.state == "done":
                    continue
                if c.state == "connecting" and now >= c.connect_by:
                    self._finish(sel, c, False, "connect timeout")
                elif now >= c.done_by:
                    self._finish(sel, c, False, "timeout (%s)" % c.state)
            live = [c for c in live if c.state != "done"]
            wait = nxt - time.monotonic()
            for c in live:
                wait = min(wait, (c.connect_by if c.state == "connecting" else c.done_by)
                           - time.monotonic())
            for key, ev in sel.select(max(0.0, wait)):
                c = key.data
                if c.state == "connecting":
                    e = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if e != 0:
                        self._finish(sel, c, False, "connect: " + errno.errorcode.get(e, str(e)))
                        continue
                    try:
                        c.sock.send(self.req)
                    except OSError as ex:
                        self._finish(sel, c, False, "send: %s" % ex)
                        continue
                    c.state = "reading"
                    sel.modify(c.sock, selectors.EVENT_READ, c)
                elif c.state == "reading":
                    try:
                        d = c.sock.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError as ex:
                        self._finish(sel, c, False, "recv: %s" % ex)
                        continue
                    if d:
                        c.buf += d
                    else:
                        self._finish(sel, c, True)
        for c in live:
            if c.state != "done":
                self._finish(sel, c, False, "stopped")
        sel.close()

    def _open(self, sel, now):
        c = _Conn()
        c.probe = Probe(now)
        with self.lock:
            self.probes.append(c.probe)
        c.buf = b""
        c.connect_by = now + self.connect_timeout
        c.done_by = now + self.timeout
        c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.sock.setblocking(False)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.state = "connecting"
        try:
            c.sock.connect((self.host, self.port))
        except BlockingIOError:
            pass
        except OSError as e:
            c.state = "connecting"
            self._finish(sel, c, False, "connect: %s" % e)
            return c
        sel.register(c.sock, selectors.EVENT_WRITE, c)
        return c

    # queries (call from the test thread)
    def snapshot(self):
        with self.lock:
            return [p for p in self.probes if p.t1 is not None]

    def first_success(self, after, via=None):
        """The first finished probe started at/after `after` that succeeded (through `via`)."""
        best = None
        for p in self.snapshot():
            if p.t0 >= after and p.ok and (via is None or p.via == via):
                if best is None or p.t1 < best.t1:
                    best = p
        return best

    def wait_success(self, after, via=None, timeout=5.0):
        return kt.deadline_poll(lambda: self.first_success(after, via), timeout, interval=0.005,
                                what="a request through %s started after the fault" % via)

    def wait_steady(self, via, n=5, timeout=10.0):
        """Wait until the last n finished probes all succeeded through via."""
        def ok():
            if self.error:
                raise AssertionError("prober died: " + self.error)
            s = self.snapshot()
            s.sort(key=lambda p: p.t0)
            last = s[-n:]
            return len(last) == n and all(p.ok and p.via == via for p in last)
        kt.deadline_poll(ok, timeout, interval=0.01, what="the client served steadily via %s"
                         % via)

    def settle(self, before, timeout=3.0):
        """Wait until every probe started before `before` has finished."""
        def done():
            with self.lock:
                return all(p.t1 is not None for p in self.probes if p.t0 < before)
        kt.deadline_poll(done, timeout, interval=0.01, what="probes in flight to finish")

    def between(self, a, b):
        """Probes started in [a, b)."""
        return [p for p in self.snapshot() if a <= p.t0 < b]

    def failures_between(self, a, b):
        return [p for p in self.between(a, b) if not p.ok]


# --------------------------------------------------------------------------------------------
# Who is master: /status of every node, polled

class StatusWatch(threading.Thread):
    """Polls nodes' /status (the "vrrp" array) every `every` s; records (t, node, {vrid: state})
    with state None when the node did not answer."""

    def __init__(self, nodes, every=0.01):
        super().__init__(daemon=True, name="status-watch")
        self.nodes = nodes            # {name: (ns, "ip:port")}
        self.every = every
        self.samples = []
        self.lock = threading.Lock()
        self._halt = threading.Event()

    def run(self):
        end = time.monotonic() + 300
        while not self._halt.is_set() and time.monotonic() < end:
            for name, (ns, addr) in self.nodes.items():
                t = time.monotonic()
                try:
                    st, _, body = http_get(ns, addr, "/status", timeout=0.3)
                    states = {r["vrid"]: r["state"] for r in json.loads(body).get("vrrp", [])} \
                        if st == 200 else None
                except (OSError, ValueError, http.client.HTTPException):
                    states = None
                with self.lock:
                    self.samples.append((t, name, states))
            self._halt.wait(self.every)

    def stop(self):
        self._halt.set()
        self.join(10)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *a):
        self.stop()

    def dual_master(self, vrid, since=0.0, until=None):
        """Intervals (start, end) during which two or more nodes said master for vrid, from
        each node's latest sample; end is the first sample that broke it."""
        with self.lock:
            samples = [s for s in self.samples if s[0] >= since and (until is None or s[0] < until)]
        cur = {}
        out = []
        start = None
        for t, name, states in samples:
            cur[name] = (states or {}).get(vrid)
            n = sum(1 for v in cur.values() if v == "master")
            if n >= 2 and start is None:
                start = t
            elif n < 2 and start is not None:
                out.append((start, t))
                start = None
        if start is not None:
            out.append((start, samples[-1][0] if samples else start))
        return out


# --------------------------------------------------------------------------------------------
# VRRPv3 adverts built by hand (for the drop counters)

def inet_checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff


def vrrp_advert(src, dst, vrid, priority, addrs, interval_cs=5, version=3, bad_checksum=False):
    """A VRRPv3 advert for IPv4 (RFC 5798 5.2) with its pseudo-header checksum (5.2.8)."""
    body = struct.pack("!BBBBH", (version << 4) | 1, vrid, priority, len(addrs),
                       interval_cs & 0x0fff)
    msg = body + b"\0\0" + b"".join(socket.inet_aton(a) for a in addrs)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 112, len(msg))
    ck = inet_checksum(pseudo + msg)
    if bad_checksum:
        ck ^= 0x5a5a
    return body + struct.pack("!H", ck) + msg[8:]


def send_advert(ns, src, dst, payload, ttl=255):
    """Send one protocol-112 packet from namespace ns (kernel builds the IP header)."""
    s = ns_socket(ns, socket.AF_INET, socket.SOCK_RAW, 112)
    try:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(src))
        s.bind((src, 0))
        s.sendto(payload, (dst, 0))
    finally:
        s.close()
