# SPDX-License-Identifier: MIT
"""Database failover when the primary's network is cut (issue 5), in network namespaces
(root): each db node in a namespace of its own on an isolated bridge; etcd, the lb node and
the writer on the host, through an uplink to the bridge (dbtest.DbLab). The cut is the
primary's bridge port set down: the node keeps running and keeps its PostgreSQL, but reaches
nothing and nothing reaches it.

Expected, in each of KEEL_DB_TRIALS trials (default 3):
- the cut primary stops taking writes (it fences itself when it cannot renew its lease)
  before another node becomes writable: no two writable nodes (the probes reach every
  PostgreSQL over its Unix socket, which the cut does not touch);
- writes resume on another node within 5 s of the cut;
- no acknowledged write is lost (replication synchronous);
- once the link is back, the old primary rejoins as a streaming replica.

Three db nodes by default (KEEL_DB_NETCUT_NODES=2 for two): with `replication synchronous`
and single_node_writes off, a commit waits for a standby, so a two-node cluster whose other
node is cut off cannot acknowledge a write until the link comes back; writes resuming during
the cut needs a second replica. Settings otherwise the defaults."""
import json
import os
import shutil
import time

import pytest

import keeltest as kt
from dbtest import (Cluster, DbLab, WritableProbe, Writer, assert_trials,
                    check_single_writer, lost_acks, needs_db, report, start_etcd, summary,
                    trials, wallclock)

pytestmark = [needs_db, pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("ip"), reason="needs root and iproute2")]


CUT_S = 8.0


def node_state(c, lab, node):
    """The db member of the node's /status, asked from inside its namespace (the cut does
    not reach there): "role R, postgres S"."""
    try:
        st, _, body = lab.netns.http_get(lab.hosts[node].ns, "%s:%d" % (c.addr(node), c.admin),
                                         "/status", timeout=2)
        db = json.loads(body).get("db") or {}
        return "role %s, postgres %s" % (db.get("role"), db.get("postgres"))
    except (OSError, ValueError) as e:
        return "status unknown (%r)" % e


@pytest.mark.timeout(360)
def test_netcut_primary(env):
    n_nodes = int(os.environ.get("KEEL_DB_NETCUT_NODES", "3"))
    names = ["db%d" % (i + 1) for i in range(n_nodes)]
    lab = DbLab(names)
    env.cleanups.append(lab.close)      # after every process is stopped, even on failure
    etcd = start_etcd(env, host=lab.host_ip)
    c = Cluster(env, etcd, [(n, lab.ip(n)) for n in names], ("lb1", lab.host_ip),
                wraps={n: lab.wrap(n) for n in names})
    p, _ = c.start_up()
    writer = Writer(c.app_dsn(c.write))
    probe = WritableProbe(c)
    writer.start()
    probe.start()
    failovers, fenced, promoted, windows, notes, problems = [], [], [], [], [], []
    lost, acked, cut = [], 0, None
    try:
        writer.wait_steady(p)
        t_window = time.monotonic()
        for i in range(trials()):
            c.wait_ready(p)
            writer.wait_steady(p)
            others = [n for n in names if n != p]
            t_cut = time.monotonic()
            lab.cut(p)
            cut = p
            new = kt.deadline_poll(
                lambda: next((n for n in others if c.is_role(n, "/primary")), None), 30,
                interval=0.05, what="another node promoted after %s was cut off" % p)
            promoted.append(time.monotonic() - t_cut)
            what = "trial %d (cut %s at %s)" % (i + 1, p, wallclock(t_cut))
            with c.explained(what):
                a = writer.wait_ack(t_cut, node=new, timeout=30)
            failovers.append(a.t1 - t_cut)
            last = probe.last_ok(p)
            fenced.append(last.t1 - t_cut if last is not None else float("nan"))
            writer.wait_steady(new)
            # The cut lasts CUT_S (a fault's duration, not a wait for a condition): long
            # past the lease's expiry, while the probe keeps asking the cut node (through
            # its socket) whether it takes writes.
            left = t_cut + CUT_S - time.monotonic()
            if left > 0:
                time.sleep(left)
            cut_state = node_state(c, lab, p)
            lab.heal(p)
            cut = None
            lab.wait_link(p)
            with c.explained(what):
                c.wait_ready(new, timeout=60)
            writer.wait_steady(new)
            t_end = time.monotonic()
            missing, acked = lost_acks(c, new, writer, t_end)
            lost = missing
            notes.append("trial %d: cut %s at %s: last write on it %.2f s after the cut, %s "
                         "promoted after %.2f s, first write %.2f s; %s after %.0f s cut: %s; "
                         "missing so far %d of %d"
                         % (i + 1, p, wallclock(t_cut), fenced[-1], new, promoted[-1],
                            failovers[-1], p, CUT_S, cut_state, len(missing), acked))
            print(notes[-1])
            if missing:
                problems.append("trial %d: %d acknowledged writes missing on %s: %s" % (
                    i + 1, len(missing), new, missing[:20]))
            windows.append((t_window, t_end, p, new))
            t_window = t_end
            p = new
    finally:
        if cut is not None:
            try:
                lab.heal(cut)
            except Exception as e:  # noqa: BLE001 - lab.close removes it anyway
                print("heal %s: %r" % (cut, e))
        writer.stop()
        probe.stop()
        violations, ambiguous, gaps = check_single_writer(probe, writer, windows)
        extra = "; cut primary's last write median %.2f s after the cut, promotion median " \
            "%.2f s; writable handover gap min %.2f s%s" % (
                sorted(fenced)[len(fenced) // 2], sorted(promoted)[len(promoted) // 2],
                min(gaps), ", %d ambiguous" % ambiguous if ambiguous else "") \
            if gaps else ""
        report(summary("netcut %d nodes sync" % n_nodes, failovers, acked, len(lost), extra))
    assert_trials(writer, probe, violations, problems, failovers, notes)
