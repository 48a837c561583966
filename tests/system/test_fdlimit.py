# SPDX-License-Identifier: MIT
"""The data plane cannot starve the control plane (issue 10): keel under a low open files
limit (prlimit), clients holding idle connections to every listener and reopening each as
soon as keel closes it, as in the review's reproduction.

- lb node: the frontends stop at their descriptor budget (or maxconn), the admin listener at
  its caps; /status still answers a fresh connection from another address, health checks
  keep running, the pauses are logged once a second with a count, keel's CPU stays low (no
  accept spin), and everything serves again once the clients go.
- db nodes (real etcd and PostgreSQL, lb1 127.0.0.121, db1 127.0.0.122, db2 127.0.0.123):
  the same against the primary's agent and admin ports; the primary keeps its lease (the same
  leader throughout, in etcd and in every agent's view) and writes through the lb's write
  port go on."""
import errno
import os
import re
import select
import socket
import subprocess
import threading
import time

import pytest

import keeltest as kt
from dbtest import Cluster, Writer, needs_db, report, start_etcd

LIMIT = 256


def prlimit(nofile):
    """A wrap for kt.Keel: run keel with soft and hard RLIMIT_NOFILE (nofile: "SOFT:HARD")."""
    return lambda argv: ["prlimit", "--nofile=%s" % nofile, "--"] + argv


def cpu_seconds(pid):
    """utime + stime of pid (all its threads), from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Holder(threading.Thread):
    """Holds up to `per` idle connections to each target from each source address, and
    reopens each as soon as the peer closes (or resets) it. Bounded: at most `rate` opens a
    second, at most MAX_S seconds. Counts, per target, the connections opened and the ones
    the peer closed (`closed`): keel refusing them."""

    MAX_S = 120

    def __init__(self, targets, sources, per, rate=300):
        super().__init__(daemon=True, name="holder")
        self.targets, self.sources, self.per, self.rate = targets, sources, per, rate
        self.socks = {}                   # fd -> (socket, target, source)
        self.opened = {t: 0 for t in targets}
        self.closed = {t: 0 for t in targets}
        self.lock = threading.Lock()
        self.poller = select.poll()
        self._halt = threading.Event()
        self.died = None

    def held(self, target):
        with self.lock:
            return sum(1 for _, t, _ in self.socks.values() if t == target)

    def counts(self):
        if self.died:
            raise AssertionError("holder died: " + self.died)
        with self.lock:
            return dict(self.opened), dict(self.closed)

    def stop(self):
        self._halt.set()
        self.join(10)
        for s, _, _ in list(self.socks.values()):
            s.close()
        self.socks.clear()

    def run(self):
        try:
            self._loop()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.died = repr(e)

    def _open(self, target, source):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((source, 0))
        rc = s.connect_ex(target)
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            with self.lock:
                self.closed[target] += 1
            return
        self.poller.register(s.fileno(), select.POLLIN)
        with self.lock:
            self.socks[s.fileno()] = (s, target, source)
            self.opened[target] += 1

    def _reap(self):
        for fd, ev in self.poller.poll(20):
            s, target, _ = self.socks[fd]
            try:
                data = s.recv(1)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                continue           # keel never writes first on these ports; ignore
            self.poller.unregister(fd)
            with self.lock:
                del self.socks[fd]
                self.closed[target] += 1
            s.close()

    def _loop(self):
        start = time.monotonic()
        budget, last = 0.0, start
        keys = [(t, src) for t in self.targets for src in self.sources]
        turn = 0
        while not self._halt.is_set() and time.monotonic() - start < self.MAX_S:
            self._reap()
            now = time.monotonic()
            budget = min(budget + (now - last) * self.rate, self.rate / 10)
            last = now
            with self.lock:
                have = {}
                for _, t, src in self.socks.values():
                    have[(t, src)] = have.get((t, src), 0) + 1
            while budget >= 1:        # one per (target, source) a round, in turns: none starves
                want = [key for key in keys if have.get(key, 0) < self.per]
                if not want:
                    break
                turn = (turn + 1) % len(want)
                for key in (want[turn:] + want[:turn])[:int(budget)]:
                    self._open(*key)
                    have[key] = have.get(key, 0) + 1
                    budget -= 1


def throttled_lines(k, pattern, start):
    """(time, line, count) of the throttled lines matching pattern; count is the number the
    line reports ("N pauses in", "N turned away in")."""
    out = []
    for t, l in k.log.find(pattern, start):
        m = re.search(r"\((\d+) (?:pauses?|turned away) in", l)
        assert m, "a throttled line without its count: %s" % l
        out.append((t, l, int(m.group(1))))
    return out


def assert_throttled(k, pattern, start, t0, t1, what):
    """Between t0 and t1, at most one line a second (plus one) and at least one; returns
    the counts they report."""
    lines = [x for x in throttled_lines(k, pattern, start) if t0 <= x[0] <= t1]
    assert lines, "no %s line between the marks" % what
    assert len(lines) <= (t1 - t0) + 2, "%d %s lines in %.1f s (a flood):\n%s" % (
        len(lines), what, t1 - t0, "\n".join(l for _, l, _ in lines[:10]))
    return [c for _, _, c in lines]


def health_checks(back):
    """The health checks the backend saw so far (GET /; the test's own requests use other
    paths)."""
    return sum(1 for r in back.requests() if r == ("GET", "/"))


def cpu_share(pid, seconds):
    """keel's CPU use over the next `seconds` (a measurement window, not a wait for a
    condition), in cores."""
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


# --------------------------------------------------------------------------------------------
# lb node

LB_CONFIG = """global { workers 2; admin 127.0.0.1:%(admin)d; }
frontend www { bind 127.0.0.1:%(www)d; backend web; maxconn %(www_max)s; }
frontend pg { bind 127.0.0.1:%(pg)d; mode tcp; backend tcpb; timeout_client 1h;
              maxconn %(pg_max)s; }
backend web { keepalive 1; check http interval 200ms timeout 500ms; server a %(back)s; }
backend tcpb { mode tcp; timeout_server 1h; server a %(back)s;
               check tcp interval 500ms timeout 500ms rise 1 fall 1; }
"""


def test_fd_exhaustion_on_lb_keeps_control_plane(env):
    back = env.backend("a")
    ports = dict(admin=env.port(), www=env.port(), pg=env.port(), back=back.addr)
    admin = "127.0.0.1:%d" % ports["admin"]

    # 1. maxconn auto, started with a soft limit under the hard one: both are logged, the
    #    soft one raised, and the budget shows the reserve the frontends must leave.
    k = env.keel(LB_CONFIG % dict(ports, www_max="auto", pg_max="auto"),
                 ports=[ports["www"], ports["pg"]], admin=admin,
                 wrap=prlimit("200:%d" % LIMIT))
    k.log.wait(r"open files limit: soft 200, hard %d; raised the soft limit to %d"
               % (LIMIT, LIMIT))
    _, line = k.log.wait(r"descriptor budget: limit %d, reserve \d+" % LIMIT)
    m = re.search(r"reserve (\d+) .* (\d+) listening sockets, (\d+) pooled", line)
    assert m, line
    reserve, listeners, pooled = (int(x) for x in m.groups())
    k.stop()

    # 2. Explicit maxconn filling the budget: the TCP frontend's sessions (two descriptors
    #    each) reach the data plane's share of the limit before their maxconn, since the
    #    descriptors keel opened at boot and the admin connections count too.
    www_max = 2
    pg_max = (LIMIT - reserve - listeners - pooled) // 2 - www_max
    k = env.keel(LB_CONFIG % dict(ports, www_max=www_max, pg_max=pg_max),
                 ports=[ports["www"], ports["pg"]], admin=admin,
                 wrap=prlimit("%d:%d" % (LIMIT, LIMIT)))
    k.log.wait(r"open files limit: soft %d, hard %d" % (LIMIT, LIMIT))
    assert kt.http_get(ports["www"], "/before")[0] == 200

    mark = k.log.mark()
    t_admin = ("127.0.0.1", ports["admin"])
    t_www, t_pg = ("127.0.0.1", ports["www"]), ("127.0.0.1", ports["pg"])
    # The admin listener first, from 4 addresses x 30 (its caps: 8 per address, 32 in all;
    # without them these alone take half the limit).
    admins = Holder([t_admin], ["127.0.0.%d" % i for i in range(51, 55)], per=30)
    admins.start()
    data = None
    try:
        kt.deadline_poll(lambda: admins.counts()[1][t_admin] >= 8, 10,
                         what="the admin listener to refuse connections over its caps")
        data = Holder([t_www, t_pg], ["127.0.0.1"], per=pg_max + 40)
        data.start()
        k.log.wait(r"accept\(\) on pg: .*accepting paused for 100 ms", timeout=15, start=mark)
        kt.deadline_poll(lambda: data.counts()[1][t_www] > 0, 10,
                         what="www to refuse connections over its maxconn")
        assert not admins.died and not data.died, (admins.died, data.died)

        # 3. The control plane under the siege: a fresh connection from another address
        #    gets /status, the health checks run, keel does not spin.
        t0 = time.monotonic()
        checks0 = health_checks(back)
        st, _, body = kt.http_get(admin, "/status", timeout=3, source="127.0.0.2")
        assert st == 200 and b'"backends"' in body, (st, body[:200])
        share = cpu_share(k.pid, 3.0)
        checks = health_checks(back) - checks0
        t1 = time.monotonic()
        assert share < 0.15, "keel used %.2f cores while its listeners were exhausted" % share
        assert checks >= 5, "%d health checks in %.1f s (every 200 ms expected)" % (
            checks, t1 - t0)
        # A session refused for want of a descriptor is not the server's failure: with
        # `fall 1` (as the db routes have) one passive failure would mark it down.
        assert all(be["servers"][0]["up"] for be in k.status()["backends"]), \
            k.status()["backends"]
        downs = k.log.find(r"server down", mark)
        assert not downs, "a server was marked down: %s" % downs[:3]
        counts = assert_throttled(k, r"accept\(\) on \w+: .*accepting paused", mark, t0, t1,
                                  "accept pause")
        assert max(counts) > 1, "the pause lines count no repeats: %s" % counts
        # Over its caps the admin listener refuses, or closes an idle connection (the
        # holders' own, they send nothing) to admit the newcomer.
        assert_throttled(k, r"admin: %s (?:refused a|closed an idle) connection"
                         % re.escape(admin), mark, t0, t1, "admin refusal")
        opened, closed = data.counts()
        print("LB-REPORT: cpu %.3f cores; held www %d pg %d admin %d; refused www %d pg %d "
              "admin %d; pause counts %s; reserve %d" % (
                  share, data.held(t_www), data.held(t_pg), admins.held(t_admin),
                  closed[t_www], closed[t_pg], admins.counts()[1][t_admin], counts, reserve))
    finally:
        admins.stop()
        if data is not None:
            data.stop()

    # 4. The clients go: everything serves again by itself.
    kt.deadline_poll(lambda: kt.http_get(ports["www"], "/after", timeout=2)[0] == 200, 10,
                     what="www to serve again")
    st, _, _ = kt.http_get(ports["pg"], "/after-tcp", timeout=3)
    assert st == 200
    assert kt.http_get(admin, "/status", timeout=3)[0] == 200
    m = k.metrics()
    assert int(m.get("keel_fd_limit")) == LIMIT
    assert int(m.get("keel_fd_reserve")) == reserve
    assert int(m.get("keel_frontend_accept_pauses_total", frontend="pg")) >= max(counts)


def test_maxconn_over_the_limit_refused_at_start_and_on_reload(env):
    back = env.backend("a")
    port, admin = env.port(), env.port()

    def config(maxconn):
        return ("global { workers 1; admin 127.0.0.1:%d; }\n"
                "frontend www { bind 127.0.0.1:%d; backend web; maxconn %s; }\n"
                "backend web { server a %s; }\n" % (admin, port, maxconn, back.addr))

    want = (r"keel\.conf:2:1: error: frontend \"www\": maxconn 1000 does not fit: the "
            r"frontends need \d+ descriptors \(maxconn total 1000 x 2 \+ 1 listening sockets "
            r"\+ \d+ pooled server connections \+ a reserve of \d+ for the control plane\), "
            r"more than the open files limit %d" % LIMIT)
    k = env.keel(config(1000), wait=False, wrap=prlimit("%d:%d" % (LIMIT, LIMIT)))
    assert k.wait(10) == 1, "keel started with maxconn 1000 under %d descriptors" % LIMIT
    k.stopped_by_test = True
    k.log.wait(want)

    k = env.keel(config(50), ports=[port], admin="127.0.0.1:%d" % admin,
                 wrap=prlimit("%d:%d" % (LIMIT, LIMIT)), allow_errors=[r"reload refused"])
    mark = k.reload(config(1000))
    k.log.wait(r"reload refused: .*" + want, start=mark)
    assert kt.http_get(port, "/")[0] == 200
    mark = k.reload(config("auto"))
    k.log.wait(r"configuration reloaded", start=mark)
    assert kt.http_get(port, "/")[0] == 200


def test_emfile_pauses_accepting_without_spinning(env):
    """Real EMFILE (the soft limit lowered under keel's feet with prlimit --pid): every
    listener, the frontend's and the admin's, pauses instead of spinning on the pending
    connection, says so once a second with a count, and takes the connection once
    descriptors are back."""
    back = env.backend("a")
    port, admin_port = env.port(), env.port()
    admin = "127.0.0.1:%d" % admin_port
    k = env.keel(kt.lb_config(port, [("a", back.addr)], admin_port), ports=[port], admin=admin,
                 wrap=prlimit("%d:%d" % (LIMIT, LIMIT)))
    # A client connection keel took before the shortage: its request then finds no
    # descriptor for a server connection, which is this node's 503, not the server's 502.
    ka = socket.create_connection(("127.0.0.1", port), timeout=5)
    kt.deadline_poll(lambda: k.metrics().get("keel_frontend_connections_active",
                                              frontend="www") == 1, 5,
                     what="keel to take the keep-alive connection")
    mark = k.log.mark()
    subprocess.run(["prlimit", "--pid", str(k.pid), "--nofile=8:%d" % LIMIT], check=True)
    try:
        ka.sendall(b"GET /during HTTP/1.1\r\nHost: x\r\n\r\n")
        head = ka.recv(4096)
        assert head.startswith(b"HTTP/1.1 503"), head[:200]
        ka.close()
        held = [socket.create_connection(("127.0.0.1", p), timeout=2)
                for p in (port, admin_port)]    # queued: keel cannot take them
        k.log.wait(r"accept\(\) on www.*Too many open files", start=mark)
        t0 = time.monotonic()
        share = cpu_share(k.pid, 3.0)
        t1 = time.monotonic()
        assert share < 0.15, "keel used %.2f cores at EMFILE (a spin)" % share
        k.log.wait(r"accept\(\) on www: Too many open files; accepting paused", start=mark)
        k.log.wait(r"admin: %s: accept\(\) failed: Too many open files; accepting paused"
                   % re.escape(admin), start=mark)
        counts = assert_throttled(k, r"accept\(\) on www: .*accepting paused", mark, t0, t1,
                                  "accept pause")
        assert max(counts) > 1, counts
        assert_throttled(k, r"admin: %s: accept\(\) failed" % re.escape(admin), mark, t0, t1,
                         "admin pause")
    finally:
        subprocess.run(["prlimit", "--pid", str(k.pid), "--nofile=%d:%d" % (LIMIT, LIMIT)],
                       check=True)
    # Descriptors are back: the queued connections are taken and served.
    held[0].sendall(b"GET /queued HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    held[1].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    for s in held:
        s.settimeout(5)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            assert chunk, "closed without an answer"
            data += chunk
        assert data.startswith(b"HTTP/1.1 200"), data[:100]
        s.close()


# --------------------------------------------------------------------------------------------
# db nodes

LB = ("lb1", "127.0.0.121")
DBS = [("db1", "127.0.0.122"), ("db2", "127.0.0.123")]
ATTACKERS = ["127.0.0.%d" % i for i in range(201, 209)]
PROBE_SOURCE = "127.0.0.3"
SIEGE_S = 10.0     # 2.5 leases (4 s): the reproduction fenced after ~15 s at 1024, sooner here


@needs_db
def test_fd_exhaustion_on_db_primary_keeps_its_lease(env):
    etcd = start_etcd(env)
    limits = {n: "%d:%d" % (LIMIT, LIMIT) for n, _ in DBS}
    c = Cluster(env, etcd, DBS, LB, nofile=limits)
    p, reps = c.start_up()
    r = reps[0]
    k = c.nodes[p]
    k.log.wait(r"open files limit: soft %d, hard %d" % (LIMIT, LIMIT))
    writer = Writer(c.app_dsn(c.write))
    writer.start()
    holder = None
    try:
        writer.wait_steady(p)
        mark = k.log.mark()
        targets = [(c.addr(p), c.agent), (c.addr(p), c.admin)]
        # 8 addresses x 20 connections on each port: far over the caps (8 per address, 32).
        holder = Holder(targets, ATTACKERS, per=20)
        holder.start()
        kt.deadline_poll(lambda: all(v > 0 for v in holder.counts()[1].values()), 15,
                         what="the primary's agent and admin ports to refuse connections")
        t0 = time.monotonic()
        c0 = cpu_seconds(k.pid)
        probes, leaders = [], []
        while time.monotonic() - t0 < SIEGE_S:    # the siege's duration, sampled
            st = None
            try:
                st = kt.http_get("%s:%d" % (c.addr(p), c.agent), "/primary", timeout=1,
                                 source=PROBE_SOURCE)[0]
            except OSError:
                pass
            probes.append(st)
            _, cl = c.agent_get(r, "/cluster")
            leaders.append(cl.get("leader") if cl else None)
            time.sleep(0.2)
        t1 = time.monotonic()
        share = (cpu_seconds(k.pid) - c0) / (t1 - t0)
        assert not holder.died, holder.died
        opened, closed = holder.counts()
        held = {t: holder.held(t) for t in targets}
    finally:
        if holder is not None:
            holder.stop()
    try:
        # The lease held: the replica saw the same leader in etcd throughout, the primary
        # never fenced, and it answered /primary to a fresh address.
        assert set(leaders) == {p}, "leaders seen by %s during the siege: %s" % (r, leaders)
        fenced = k.log.find(r"fenc", mark)
        assert not fenced, "the primary fenced: %s" % fenced[:3]
        ok = sum(1 for s in probes if s == 200)
        assert ok >= 0.8 * len(probes), "/primary from %s: %s" % (PROBE_SOURCE, probes)
        # Writes through the lb went on.
        acks = [a for a in writer.snapshot() if t0 <= a.t1 <= t1]
        assert acks and all(a.node == p for a in acks), "writes during the siege: %d" % len(acks)
        times = [t0] + [a.t1 for a in acks] + [t1]
        gap = max(b - a for a, b in zip(times, times[1:]))
        assert gap < 3.0, "writes stopped for %.1f s during the siege" % gap
        assert share < 0.2, "the primary's keel used %.2f cores during the siege" % share
        for host, port in targets:     # one line a second for each listener
            assert_throttled(k, r"admin: %s:%d (?:refused a|closed an idle) connection"
                             % (re.escape(host), port), mark, t0, t1, "refusal")
        report("DB-REPORT fdlimit: siege %.1f s, %d writes acknowledged (max gap %.2f s), "
               "/primary %d/%d, cpu %.3f cores, held %s, opened %s, refused %s" % (
                   t1 - t0, len(acks), gap, ok, len(probes), share, list(held.values()),
                   list(opened.values()), list(closed.values())))
        # Recovery: the attackers' addresses are served again, writes still flow.
        kt.deadline_poll(lambda: kt.http_get("%s:%d" % (c.addr(p), c.agent), "/primary",
                                             timeout=1, source=ATTACKERS[0])[0] == 200, 10,
                         what="the agent to answer the attackers' address again")
        writer.wait_ack(time.monotonic(), node=p)
    finally:
        writer.stop()
