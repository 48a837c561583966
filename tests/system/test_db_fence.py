# SPDX-License-Identifier: MIT
"""The fence when the agent cannot run it, and the leader key's ownership (issue 10), on
loopback with real etcd, PostgreSQL 15 and keel: lb1 127.0.0.105, db1..db3 127.0.0.106-108
(test_db.py uses 127.0.0.8x, test_db_faults.py 127.0.0.9x). Default settings: lease 3 s,
replication synchronous (ANY 1 of the two replicas).

- A frozen agent (SIGSTOP of the primary's keel for 10 s): its fence watcher, a separate
  process, ends PostgreSQL before the lease can lapse, so no two nodes ever take writes at
  once (the probe writes directly to every node every 50 ms), nothing acknowledged is lost,
  and the old primary rejoins as a replica after SIGCONT.
- An agent blocked on etcd, not dead (its packets to etcd dropped by nftables for 10 s,
  db nodes in network namespaces): its own fence, in its running loop, restarts PostgreSQL
  read-only in time, with the same guarantees.
- A restarted agent (kill -9 of the primary's keel, restarted at once, then etcd frozen):
  the key still names the node but is under its earlier run's lease; the node takes no
  write until the key is under its new lease.
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.request

import pytest

import dbtest
import keeltest as kt
from dbtest import (DB_NAME, Cluster, DbLab, WritableProbe, Writer, check_single_writer,
                    lost_acks, needs_db, report, start_etcd, wallclock)

LB = ("lb1", "127.0.0.105")
DBS = [("db1", "127.0.0.106"), ("db2", "127.0.0.107"), ("db3", "127.0.0.108")]
FREEZE_S = 10.0   # the outside review's SIGSTOP

pytestmark = needs_db


def etcd_get(url, key, timeout=0.5):
    """(value, lease) of key in etcd, (None, 0) if absent."""
    body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
    req = urllib.request.Request(url + "/v3/kv/range", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        kvs = json.loads(r.read()).get("kvs", [])
    if not kvs:
        return None, 0
    return base64.b64decode(kvs[0].get("value", "")).decode(), int(kvs[0].get("lease", "0"))


class KeyWatch(threading.Thread):
    """Every 20 ms: the leader key (value, lease) and node's member key's lease (the lease
    of node's current agent run), with the request's start and end times."""

    def __init__(self, url, node):
        super().__init__(daemon=True, name="key-watch")
        self.url, self.node = url, node
        self.obs = []          # (t0, t1, leader, leader_lease, member_lease)
        self._halt = threading.Event()

    def run(self):
        pre = "/keel/t/db/%s/" % DB_NAME
        end = time.monotonic() + 300
        while not self._halt.is_set() and time.monotonic() < end:
            t0 = time.monotonic()
            try:
                leader, lease = etcd_get(self.url, pre + "leader")
                _, member = etcd_get(self.url, pre + "members/" + self.node)
                self.obs.append((t0, time.monotonic(), leader, lease, member))
            except OSError:
                pass                        # etcd frozen: nothing observed
            self._halt.wait(0.02)

    def stop(self):
        self._halt.set()
        self.join(5)


def ready(c, node):
    try:
        return c.ready(node, True)
    except (dbtest.psycopg2.Error, dbtest.Deadline, OSError):
        return False


def spans_overlap(probe, start, end):
    """Pairs of nodes whose probe successes provably interleave in [start, end): X wrote,
    then Y, then X again (or the spans cross), which two writable nodes at once imply."""
    spans = {}
    for s in probe.successes():
        if start <= s.t0 < end:
            f, l = spans.get(s.node, (s, s))
            spans[s.node] = (min(f, s, key=lambda x: x.t0), max(l, s, key=lambda x: x.t0))
    bad = []
    nodes = sorted(spans)
    for i, x in enumerate(nodes):
        for y in nodes[i + 1:]:
            (xf, xl), (yf, yl) = spans[x], spans[y]
            if xf.t1 < yl.t0 and yf.t1 < xl.t0:
                bad.append("%s wrote %.3f..%.3f and %s wrote %.3f..%.3f" % (
                    x, xf.t0, xl.t1, y, yf.t0, yl.t1))
    return bad


def run_frozen(env, c, label, freeze, thaw, fenced_by):
    """The primary's agent frozen (freeze(p) .. FREEZE_S .. thaw(p)) under the writer and the
    direct probe: no two nodes ever take writes at once, the old primary takes none after
    the lease minus margin (+ the watcher's grace), nothing acknowledged is lost, and the old
    primary rejoins as a streaming replica. fenced_by: the log line that says who fenced."""
    p, _ = c.start_up()
    writer = Writer(c.app_dsn(c.write))
    probe = WritableProbe(c)
    writer.start()
    probe.start()
    k = c.nodes[p]
    frozen = False
    try:
        writer.wait_steady(p)
        t_window = time.monotonic()
        mark = k.log.mark()
        t_stop = time.monotonic()
        freeze(p)
        frozen = True
        # the fault's duration (the review's 10 s), not a wait for a condition: the writer
        # and the probe run meanwhile
        time.sleep(FREEZE_S)
        thaw(p)
        frozen = False
        with c.explained("%s of %s at %s" % (label, p, wallclock(t_stop))):
            a = kt.deadline_poll(lambda: next((x for x in writer.snapshot()
                                               if x.t1 > t_stop and x.node != p), None),
                                 30, what="a write acknowledged by another node")
            new = a.node
            c.wait_ready(new, True, timeout=90)
        writer.wait_steady(new)
        t_end = time.monotonic()
        last_old = [s for s in probe.successes() if s.node == p and s.t0 >= t_stop]
        missing, acked = lost_acks(c, new, writer, t_end)
    finally:
        if frozen:
            thaw(p)
        writer.stop()
        probe.stop()
    violations, ambiguous, gaps = check_single_writer(probe, writer, [(t_window, t_end, p, new)])
    fenced_after = max((s.t1 for s in last_old), default=t_stop) - t_stop
    report("DB-REPORT %s sync: %s -> %s, first write on %s %.2f s after the fault; old "
           "primary's last probe write %.2f s after it; handover gap %s; lost %d of %d "
           "acknowledged" % (label, p, new, new, a.t1 - t_stop, fenced_after,
                             "%.2f s" % gaps[0] if gaps else "n/a", len(missing), acked))
    assert not writer.died and not probe.died, (writer.died, probe.died)
    assert not violations, "\n".join(violations)
    assert not missing, "%d acknowledged writes missing on %s: %s" % (len(missing), new,
                                                                      missing[:20])
    assert writer.warned == [], writer.warned[:20]
    # fenced before its lease could lapse (3 s after its last renewal, itself before t_stop)
    assert fenced_after < 3.0, "the frozen primary took writes %.2f s after the fault" % \
        fenced_after
    k.log.wait(fenced_by, timeout=5, start=mark)


@pytest.mark.timeout(300)
def test_frozen_agent_is_fenced_by_its_watcher(env):
    """SIGSTOP of the primary's keel for 10 s: its fence watcher, a separate process, ends
    PostgreSQL; after SIGCONT the old primary rejoins as a replica. Before the watcher, the
    frozen primary took writes for 10 s, 6.9 s of them next to the promoted node."""
    etcd = start_etcd(env)
    c = Cluster(env, etcd, DBS, LB)
    run_frozen(env, c, "sigstop-keel", lambda n: c.nodes[n].signal(signal.SIGSTOP),
               lambda n: c.nodes[n].signal(signal.SIGCONT),
               r"fence watcher: the lease was not renewed in time")


@pytest.mark.timeout(360)
@pytest.mark.skipif(not shutil.which("nft") or os.geteuid() != 0,
                    reason="needs nft (Debian nftables) and root")
def test_agent_cut_from_etcd_only_is_fenced(env):
    """The primary's agent blocked on etcd, not dead: each db node in a network namespace
    (dbtest.DbLab), an nftables rule in the host namespace drops the primary's packets to
    etcd's port for 10 s (its requests hang until their deadlines; replication and clients
    go on). The agent's own fence restarts PostgreSQL read-only in time; the replicas stop
    streaming from it when the key lapses; after the rule goes, it rejoins as a replica."""
    names = [n for n, _ in DBS]
    lab = DbLab(names)
    env.cleanups.append(lab.close)
    etcd = start_etcd(env, host=lab.host_ip)
    port = int(etcd.rsplit(":", 1)[1])
    table = "keeltest_fence_%d" % os.getpid()
    env.cleanups.append(lambda: (subprocess.run(["nft", "delete", "table", "inet", table],
                                                capture_output=True), [])[1])
    c = Cluster(env, etcd, [(n, lab.ip(n)) for n in names], ("lb1", lab.host_ip),
                wraps={n: lab.wrap(n) for n in names})

    def cut(n):
        rules = ("add table inet %s { chain input { type filter hook input priority 0; "
                 "ip saddr %s tcp dport %d drop; }; }" % (table, lab.ip(n), port))
        subprocess.run(["nft", rules], check=True, capture_output=True)

    def heal(n):
        subprocess.run(["nft", "delete", "table", "inet", table], check=True,
                       capture_output=True)

    run_frozen(env, c, "etcd-path-cut", cut, heal, r"fencing: PostgreSQL restarts read-only")


@pytest.mark.timeout(300)
def test_restarted_primary_writes_only_under_its_own_lease(env):
    """kill -9 of the primary's keel, restarted at once, then etcd frozen for 5 s: the node
    takes no write while the leader key is under its earlier run's lease, and never are two
    nodes writable at once.

    The replicas' agents are frozen first (SIGSTOP) until their member keys lapse: with a
    live replica around, the restarted agent hands the key over (releases it) whatever its
    lease, which hides the rule; with none, it must choose between starting its PostgreSQL
    as a primary at once (the bug: under the earlier run's lease, which nobody renews, while
    its fence deadline comes from its new lease) and first taking the key over.

    The lease is 10 s here, so that the earlier run's key outlives the restart of
    PostgreSQL (crash recovery, orphaned backends: several seconds on a loaded machine);
    with 3 s it often lapsed first, and the write under it could not be seen."""
    etcd = start_etcd(env)
    c = Cluster(env, etcd, DBS, LB, options="    lease 10s;\n")
    p, reps = c.start_up()
    probe = WritableProbe(c).start()
    watch = KeyWatch(etcd, p)
    watch.start()
    pre = "/keel/t/db/%s/members/" % DB_NAME
    frozen, stopped = False, []
    try:
        kt.deadline_poll(lambda: probe.last_ok(p), 10, what="probe writes on %s" % p)
        for r in reps:
            c.nodes[r].signal(signal.SIGSTOP)
            stopped.append(r)
        kt.deadline_poll(lambda: all(etcd_get(etcd, pre + r)[0] is None for r in reps), 40,
                         interval=0.1, what="the frozen replicas' member keys lapsed")
        t_kill = time.monotonic()
        c.kill9(p)
        c.start(p)
        t_up = time.monotonic()
        kt.deadline_poll(lambda: any(s.node == p and s.t0 > t_kill
                                     for s in probe.successes()), 30, interval=0.05,
                         what="%s writable again after its restart" % p)
        env.etcd_proc.signal(signal.SIGSTOP)
        frozen = True
        time.sleep(5.0)                     # the fault's duration
        env.etcd_proc.signal(signal.SIGCONT)
        frozen = False
        for r in reps:
            c.nodes[r].signal(signal.SIGCONT)
        stopped = []
        with c.explained("kill -9 and restart of %s at %s" % (p, wallclock(t_kill))):
            new = kt.deadline_poll(lambda: next((n for n in c.db_names if ready(c, n)), None),
                                   120, interval=0.2, what="a primary with every other node "
                                   "streaming from it")
        t_end = time.monotonic()
    finally:
        if frozen:
            env.etcd_proc.signal(signal.SIGCONT)
        for r in stopped:
            c.nodes[r].signal(signal.SIGCONT)
        probe.stop()
        watch.stop()
    assert not probe.died, probe.died
    # the last moment etcd showed the key naming p under another lease than the one of p's
    # current run (its member key's, once the restarted agent published it)
    foreign = [o for o in watch.obs if o[0] > t_up and o[2] == p and o[4] != 0 and o[3] != o[4]]
    last_foreign = max((o[0] for o in foreign), default=None)
    early = [s for s in probe.successes() if s.node == p and s.t0 > t_kill and
             last_foreign is not None and s.t1 < last_foreign]
    overlap = spans_overlap(probe, t_kill, t_end)
    report("DB-REPORT restart-under-old-lease: %s restarted %.2f s after kill -9, primary "
           "then %s; key seen under the earlier lease until %s; %d writes on %s before" % (
               p, t_up - t_kill, new,
               "%.2f s" % (last_foreign - t_kill) if last_foreign else "never",
               len(early), p))
    assert not early, "%s took writes while the key was under its earlier run's lease: %s" % (
        p, early[:5])
    assert not overlap, "\n".join(overlap)
