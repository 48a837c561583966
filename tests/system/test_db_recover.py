# SPDX-License-Identifier: MIT
"""The PostgreSQL agent's socket directory and its recovery from a data directory that was
not shut down cleanly (issue 10), with real etcd, PostgreSQL 15 and keel nodes on loopback:
lb1 127.0.0.121, db1 127.0.0.122, db2 127.0.0.123.

- A socket directory someone else prepared (wrong mode, wrong owner, a symlink) makes the
  agent refuse to start, with the reason in the log, and leaves that directory alone.
- The socket directory a kill -9 left behind is cleaned at the next start, and removed at a
  clean stop.
- A primary whose postmaster is killed (its data directory "in production") and whose
  restart fails for a while (another process holds its port) comes back by itself as a
  replica once the port is free: crash recovery in single-user mode, pg_rewind, start. While
  it cannot, its attempts back off exponentially, and `keel status` and /metrics show it
  stuck; the tools' output is in the log, under their names."""
import math
import os
import re
import signal
import socket
import subprocess
import time

import pytest

import keeltest as kt
from dbtest import Cluster, needs_db, start_etcd

LB = ("lb1", "127.0.0.121")
DBS = [("db1", "127.0.0.122"), ("db2", "127.0.0.123")]

pytestmark = needs_db

REFUSED = r"the database agent cannot start"
NOT_STARTING = r"not starting PostgreSQL: "


def pg_ids():
    import pwd
    pw = pwd.getpwnam("postgres")
    return pw.pw_uid, pw.pw_gid


def remove_path(path):
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        for name in os.listdir(path):
            os.unlink(os.path.join(path, name))
        os.rmdir(path)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("hostile", ["mode", "owner", "symlink"])
def test_hostile_socket_dir_refused(env, hostile):
    """A pre-created socket directory that is not 0700, not postgres', or a symlink (to a
    directory that would pass both checks): the agent refuses to start, says why, and leaves
    the directory as it found it; no postmaster runs."""
    etcd = start_etcd(env)
    c = Cluster(env, etcd, DBS, LB, start=False)
    d = c.socket_dir("db1")
    uid, gid = pg_ids()
    os.makedirs(os.path.dirname(d), mode=0o755, exist_ok=True)
    target = os.path.join(c.state, "attacker")
    env.cleanups.append(lambda: (remove_path(d), [])[1])
    if hostile == "mode":
        os.mkdir(d)
        os.chown(d, uid, gid)
        os.chmod(d, 0o777)
        why = "has mode 0777, not 0700: refused"
    elif hostile == "owner":
        os.mkdir(d)
        os.chown(d, 65534, 65534)
        os.chmod(d, 0o700)
        why = "is owned by uid 65534, not by PostgreSQL's user"
    else:
        os.mkdir(target)
        os.chown(target, uid, gid)
        os.chmod(target, 0o700)
        os.symlink(target, d)
        why = "is a symbolic link: refused"
    before = os.lstat(d)
    k = c.start("db1", allow_errors=[REFUSED])
    _, line = k.log.wait(REFUSED, timeout=20)
    assert d in line and why in line, line
    # nothing started, nothing changed
    assert not os.path.exists(os.path.join(c.data_dir("db1"), "postmaster.pid"))
    assert c.agent_get("db1", "/health") == (None, None)
    after = os.lstat(d)
    assert (after.st_mode, after.st_uid, after.st_ino) == \
        (before.st_mode, before.st_uid, before.st_ino)
    if hostile == "symlink":
        assert os.listdir(target) == [], "PostgreSQL's socket landed in the attacker's dir"


@pytest.mark.timeout(240)
def test_socket_dir_left_by_kill9_cleaned_at_next_start(env):
    """kill -9 of a replica's keel (its postmaster dies with it: no clean shutdown) leaves
    the socket and lock files; the next start removes them, says so, and the node streams
    again. A directory opened up at runtime makes PostgreSQL's restart refused until it is
    fixed. A clean stop removes the directory."""
    etcd = start_etcd(env)
    c = Cluster(env, etcd, DBS, LB)
    p, (r,) = c.start_up(sync=True)
    d = c.socket_dir(r)
    assert d.startswith("/run/keel/pg-"), d
    st = os.lstat(d)
    assert (st.st_mode & 0o7777, st.st_uid) == (0o700, pg_ids()[0])
    pm = c.postmaster_pid(r)
    c.kill9(r)
    kt.deadline_poll(lambda: not kt.pid_running(pm), 10, what="postgres dead with its keel")
    left = sorted(os.listdir(d))
    assert left == [".s.PGSQL.%d" % c.pg, ".s.PGSQL.%d.lock" % c.pg], left
    k = c.start(r, allow_errors=[NOT_STARTING])
    k.log.wait(r"removed the stale socket files an earlier run left in " + re.escape(d),
               timeout=20)
    c.wait_ready(p, sync=True, timeout=90)
    # The directory is checked before every start too: opened up at runtime, the restart of
    # the replica's PostgreSQL is refused (and retried with backoff) until it is 0700 again.
    mark = k.log.mark()
    os.chmod(d, 0o777)
    os.kill(c.postmaster_pid(r), signal.SIGKILL)
    _, line = k.log.wait(NOT_STARTING, timeout=30, start=mark)
    assert "%s has mode 0777, not 0700: refused" % d in line, line
    kt.deadline_poll(lambda: (k.status()["db"]["stuck"] or {}).get("attempts", 0) >= 2, 30,
                     what="two refused starts")
    assert k.log.find(r"stopped -> starting", mark) == [], "PostgreSQL started anyway"
    os.chmod(d, 0o700)
    c.wait_ready(p, sync=True, timeout=90)
    k.log.wait(r"recovered \(streaming\) after \d+ failed attempts", timeout=10, start=mark)
    rc, killed = k.stop(timeout=30)
    assert (rc, killed) == (0, False), (rc, killed)
    assert not os.path.exists(d), "the socket directory outlived a clean stop: %s" % \
        os.listdir(d)


# --------------------------------------------------------------------------------------------
# An unclean primary that cannot restart for a while


class PortBlocker:
    """Listen on addr:port (SO_REUSEADDR: the killed server's sessions may linger there), so
    that PostgreSQL cannot bind it: "could not create any TCP/IP sockets"."""

    def __init__(self, addr, port, timeout=10):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

        def bound():
            try:
                self.s.bind((addr, port))
                return True
            except OSError:
                return False
        kt.deadline_poll(bound, timeout, interval=0.005, what="%s:%d free to block" % (addr, port))
        self.s.listen(1)

    def close(self):
        self.s.close()


def attempts_logged(k, node, what, start):
    """(monotonic time the test read it, attempt number) of each '<what> failed (attempt N'
    line from log line start on."""
    rx = re.compile(r"db: %s: %s failed \(attempt (\d+)" % (node, re.escape(what)))
    return [(t, int(rx.search(l).group(1))) for t, l in k.log.find(rx.pattern, start)]


def keel_status(c):
    r = subprocess.run([kt.KEEL, "status", "-c", c.conf], capture_output=True, text=True,
                       timeout=30)
    return r.stdout + r.stderr


@pytest.mark.timeout(300)
def test_unclean_primary_blocked_restart_rejoins_with_backoff(env):
    etcd = start_etcd(env)
    c = Cluster(env, etcd, DBS, LB)
    p, (r,) = c.start_up(sync=True)
    kp = c.nodes[p]
    mark = kp.log.mark()
    # The primary's postmaster dies (its data directory stays "in production"), and its
    # port is taken at once: every restart fails until the port is free again.
    pm = c.postmaster_pid(p)
    os.kill(pm, signal.SIGKILL)
    blocker = PortBlocker(c.dbs[p], c.pg)
    env.cleanups.append(lambda: (blocker.close(), [])[1])
    t_block = time.monotonic()
    kt.deadline_poll(lambda: c.is_role(r, "/primary"), 30, interval=0.05, what="%s promoted" % r)
    what = "follow %s" % r
    # stuck: it shows in /status, `keel status` and /metrics
    kt.deadline_poll(lambda: len(attempts_logged(kp, p, what, mark)) >= 4, 60, interval=0.2,
                     what="four failed attempts of %s" % what)
    st = kp.status()["db"]
    assert st["stuck"] is not None and st["stuck"]["operation"] == what, st
    assert st["stuck"]["attempts"] >= 4, st
    assert "exited while starting" in st["stuck"]["last_error"] and \
        "could not create any TCP/IP sockets" in st["stuck"]["last_error"], st
    m = kp.metrics()
    kt.check_exposition(m.text)  # the db families are valid Prometheus text too
    assert m.get("keel_db_stuck", database="main") == 1.0
    assert m.get("keel_db_stuck_attempts", database="main") >= 4
    assert m.get("keel_db_stuck_seconds", database="main") > 0
    out = keel_status(c)
    assert re.search(r"%s: database main: stuck: %s failing for \d+ s \(\d+ attempts" %
                     (p, re.escape(what)), out), out
    # backoff: the waits between attempts grow (a fixed 0.5 s pace would give ~20 attempts
    # in the time below)
    held = time.monotonic() - t_block
    tries = attempts_logged(kp, p, what, mark)
    gaps = [b[0] - a[0] for a, b in zip(tries, tries[1:])]
    # after the n-th failure in a row the next attempt waits 0.5 s * 2^(n-1) (db_retry.h);
    # the operation's own time comes on top
    for (t1, n1), (t2, _) in zip(tries, tries[1:]):
        assert t2 - t1 >= 0.9 * min(0.5 * 2 ** (n1 - 1), 30), (n1, t2 - t1, gaps)
    # and so, in `held` seconds, at most 1 + log2(held / 0.45 + 1) attempts (a fixed 0.5 s
    # pace would make about 2 * held); "held / 1.5" was not a bound: fast attempts broke it
    assert len(tries) <= 1 + math.log2(held / 0.45 + 1), (len(tries), held, gaps)
    # the port is free again: the node comes back as a streaming replica by itself
    blocker.close()
    t_free = time.monotonic()
    c.wait_ready(r, sync=True, timeout=90)
    back = time.monotonic() - t_free
    lines = kp.lines()[mark:]
    text = "\n".join(lines)
    # crash recovery in single-user mode, then pg_rewind, each with its output under its name
    assert re.search(r"pg %s: not shut down cleanly: crash recovery in single-user mode" % p,
                     text), text[-3000:]
    assert re.search(r"pg %s postgres --single: .*database system was not properly shut down"
                     % p, text), text[-3000:]
    assert re.search(r"pg %s pg_rewind: " % p, text), text[-3000:]
    # pg_rewind runs with --progress: its steps (the copy's size, the sync) are timed in the log
    assert re.search(r"pg %s pg_rewind: pg_rewind: need to copy \d+ MB" % p, text), text[-3000:]
    assert re.search(r"pg %s: .*could not create any TCP/IP sockets" % p, text), text[-3000:]
    assert re.search(r"db: %s: recovered \(streaming\) after \d+ failed attempts" % p, text), \
        text[-3000:]
    kt.deadline_poll(lambda: kp.status()["db"]["stuck"] is None, 10, what="not stuck")
    assert kp.metrics().get("keel_db_stuck", database="main") == 0.0
    print("blocked %.1f s: %d attempts, gaps %s; back %.1f s after the port was freed" % (
        held, len(tries), ["%.1f" % g for g in gaps], back))
