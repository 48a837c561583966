# SPDX-License-Identifier: MIT
"""The db agent's named timeouts take the configured value (issue 11), on loopback, with real
etcd, PostgreSQL 15 and keel nodes: lb1 127.0.0.141, db1 127.0.0.142, db2 127.0.0.143.

Each cluster starts with the defaults (switchover_timeout 10s, stream_timeout 5s): a start
with a timeout of a second could follow again for nothing on a loaded machine. A SIGHUP then
sets the short value on every node (a reload applies both), and a fault shows it in effect,
timed with keel's own log timestamps or against the moment of the fault, with bounds far
from the defaults:

- stream_timeout 1500ms: the primary's WAL sender for the replica is frozen (SIGSTOP) while a
  writer runs; the replica receives nothing, and its agent follows again about 1.5 s later
  (under 4 s; the default would take 5 s, and a stalled stream used to wait twice the
  timeout). The WAL sender is thawed and the replica streams again.
- switchover_timeout 1s: the target replica's agent is frozen (SIGSTOP of its keel; its
  PostgreSQL streams on), so it never reports the primary's shutdown checkpoint and `keel db
  switchover` fails: the primary gives up about 1 s after it began (under 6 s; the default
  is 10 s), starts again as the primary and takes writes. `lease 10s` keeps the frozen
  agent's member key (healthy, streaming) alive until the switchover begins.
"""
import datetime
import os
import re
import signal
import subprocess
import time

import pytest

import keeltest as kt
from dbtest import Cluster, Writer, needs_db, start_etcd

LB = ("lb1", "127.0.0.141")
DBS = [("db1", "127.0.0.142"), ("db2", "127.0.0.143")]

pytestmark = needs_db


def keel_time(line):
    """The UTC wall-clock time (seconds since the epoch) at the head of a keel log line."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z ", line)
    assert m, "no timestamp: %s" % line
    t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
    return t.replace(tzinfo=datetime.timezone.utc).timestamp()


def set_timeouts(c, directives):
    """Add directives to the database block and reload every db node: each logs them."""
    with open(c.conf) as f:
        text = f.read()
    anchor = "    read_port %d;\n" % c.read
    assert anchor in text, text
    with open(c.conf + ".new", "w") as f:
        f.write(text.replace(anchor, anchor + directives))
    os.replace(c.conf + ".new", c.conf)
    marks = {n: c.nodes[n].reload() for n in c.db_names}
    for n in c.db_names:
        c.nodes[n].log.wait(r"db: %s: reload: switchover_timeout [\d.]+ s, stream_timeout "
                            r"[\d.]+ s" % n, timeout=10, start=marks[n])
        c.nodes[n].log.wait(r"configuration reloaded", timeout=10, start=marks[n])


@pytest.mark.timeout(240)
def test_stream_timeout_follows_again_after_the_configured_time(env):
    etcd = start_etcd(env)
    c = Cluster(env, etcd, DBS, LB, options="    replication async;\n")
    p, reps = c.start_up(sync=False)
    r = reps[0]
    set_timeouts(c, "    stream_timeout 1500ms;\n")
    c.nodes[r].log.wait(r"stream_timeout 1\.5 s", timeout=1)
    writer = Writer(c.app_dsn(c.write))
    writer.start()
    ws = None
    try:
        writer.wait_steady(p)
        c.wait_ready(p, sync=False)
        mark = c.nodes[r].log.mark()
        ws = c.walsender_pid(p, r)
        t_fault = time.time()
        os.kill(ws, signal.SIGSTOP)
        _, line = c.nodes[r].log.wait(
            r"db: %s: nothing received from %s for [\d.]+ s \(stream_timeout 1\.5 s\): "
            r"rewinding and following again" % (r, p), timeout=20, start=mark)
        elapsed = keel_time(line) - t_fault
        said = float(re.search(r"for ([\d.]+) s \(", line).group(1))
        print("stream_timeout 1.5 s: followed again %.2f s after the WAL sender stopped "
              "(its agent: nothing received for %.1f s)" % (elapsed, said))
        assert 1.0 <= elapsed < 4.0, "followed again %.2f s after the fault" % elapsed
        assert 1.5 <= said < 2.5, line
    finally:
        if ws is not None:
            try:
                os.kill(ws, signal.SIGCONT)
            except ProcessLookupError:
                pass
        writer.stop()
    c.wait_ready(p, sync=False, timeout=60)


@pytest.mark.timeout(240)
def test_switchover_timeout_gives_up_after_the_configured_time(env):
    etcd = start_etcd(env)
    c = Cluster(env, etcd, DBS, LB, options="    lease 10s;\n")
    p, reps = c.start_up()
    r = reps[0]
    set_timeouts(c, "    switchover_timeout 1s;\n")
    c.wait_ready(p)
    mark = c.nodes[p].log.mark()
    target = c.nodes[r]
    target.signal(signal.SIGSTOP)
    try:
        out = subprocess.run([kt.KEEL, "db", "switchover", "-c", c.conf, "--to", r],
                             capture_output=True, text=True, timeout=60)
    finally:
        target.signal(signal.SIGCONT)
    assert out.returncode != 0, out.stdout + out.stderr
    assert "refused or aborted the switchover" in out.stderr, out.stdout + out.stderr
    k = c.nodes[p]
    _, begin = k.log.wait(r"db: %s: switchover to %s: stopping PostgreSQL cleanly" % (p, r),
                          timeout=5, start=mark)
    _, end = k.log.wait(r"db: %s: switchover to %s aborted: it did not receive the shutdown "
                        r"checkpoint in time; staying the primary" % (p, r), timeout=5,
                        start=mark)
    elapsed = keel_time(end) - keel_time(begin)
    print("switchover_timeout 1 s: aborted %.2f s after it began" % elapsed)
    assert 0.9 <= elapsed < 6.0, "aborted %.2f s after it began" % elapsed
    # Still the primary, taking writes; the target streams from it again.
    c.wait_ready(p, timeout=60)

    def writes():
        try:
            return c.app_query(c.write, "SELECT NOT pg_is_in_recovery()")[0][0] is True
        except Exception:  # noqa: BLE001 - the lb's check has not seen it back yet
            return False
    kt.deadline_poll(writes, 20, what="writes through the lb's write port to %s" % p)
