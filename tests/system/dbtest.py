# SPDX-License-Identifier: MIT
"""The harness of the database fault tests (test_db_faults.py, test_db_netcut.py): real etcd,
real PostgreSQL 15, real keel nodes, real clients (psycopg2). No mocks.

- `start_etcd`: a one-member etcd, stopped by PID with the other processes.
- `Cluster`: one configuration file, `keel run --node N` per node (on loopback, or in network
  namespaces through `wrap`), start/stop/kill -9, the agents' endpoints, superuser SQL on a
  node over its Unix socket (peer authentication: keel's pg_ident maps root to postgres), the
  postmaster's process tree, the application role's password (`keel db password`).
- `Writer`: inserts a numbered row every 20 ms through the lb's write port as the application
  role, a new connection after any error; records each acknowledged id with its send and
  acknowledgement times and the node that took it (`cluster_name`).
- `WritableProbe`: every ~50 ms asks each db node's PostgreSQL directly (its Unix socket: not
  through the network, so a cut link does not blind it) to take a write, and records when it
  did. `check_single_writer` turns the samples into the assertion that no two nodes were
  writable at once, as far as the samples can prove (see its comment).
- `lost_acks`: the acknowledged ids missing from the new primary's table.
- `DbLab`: netns.Lab plus an uplink from the host (root namespace) to the lab's bridge, for
  etcd, the lb node and the writer on the host side.

Client timeouts are enforced on the client side (psycopg2's asynchronous connections polled
against a deadline, then closed), never with statement_timeout: a statement cancelled while
it waits for the synchronous standby is committed locally and *acknowledged* with a mere
WARNING ("canceling wait for synchronous replication"), so a server-side timeout would make the
writer itself acknowledge writes that synchronous replication never covered. The writer still
watches for that warning and does not count such a write as acknowledged.
"""
import contextlib
import json
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time

import pytest

import keeltest as kt

try:
    import psycopg2
    import psycopg2.extensions as pgext
except ImportError:  # the tests skip (scripts/deps.sh installs python3-psycopg2)
    psycopg2 = None

FAILOVER_MAX_S = 5.0   # the target: fault -> first acknowledged write on the new node
PG_BIN = "/usr/lib/postgresql/15/bin"
DB_NAME = "main"

needs_db = pytest.mark.skipif(
    not shutil.which("etcd") or not os.path.isdir(PG_BIN) or psycopg2 is None,
    reason="needs etcd, PostgreSQL 15 and python3-psycopg2 (scripts/deps.sh)")

# [error] lines a fault test provokes on purpose: the killed postgres, an lb with no primary
# for a moment, PostgreSQL's own FATALs are [warn]. Anything else fails the test.
EXPECTED_ERRORS = [r"backend main-\w+ has no server available",
                   r"pg db\d: postgres exited unexpectedly"]


def trials():
    return int(os.environ.get("KEEL_DB_TRIALS", "3"))


def wallclock(t_mono):
    """A monotonic time as the UTC wall-clock time of keel's log lines (HH:MM:SS.mmm)."""
    t = time.time() - (time.monotonic() - t_mono)
    return time.strftime("%H:%M:%S", time.gmtime(t)) + ".%03d" % (int(t * 1000) % 1000)


def report(line):
    """Print a DB-REPORT line and append it to $KEEL_DB_REPORT if set."""
    print(line)
    path = os.environ.get("KEEL_DB_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def summary(label, failovers, acked, lost, extra=""):
    """One DB-REPORT line: median and max failover time, lost of acknowledged."""
    if failovers:
        med, mx = statistics.median(failovers), max(failovers)
        times = "failover median %.2f s max %.2f s" % (med, mx)
    else:
        times = "failover not measured"
    return "DB-REPORT %s: %s (%d trials), lost %d of %d acknowledged%s" % (
        label, times, len(failovers), lost, acked, extra)


# --------------------------------------------------------------------------------------------
# etcd

def start_etcd(env, host="127.0.0.1"):
    """A one-member etcd listening on host; returns its client URL. It is stopped by PID by
    the env fixture after the keel nodes (so they never lose etcd while stopping); its data
    directory is removed by env.cleanups. The process is env.etcd_proc."""
    client, peer = env.port(), env.port()
    data = tempfile.mkdtemp(prefix="keel-etcd-")
    env.cleanups.append(lambda: (shutil.rmtree(data, ignore_errors=True), [])[1])
    env.etcd_proc = env.proc(["etcd", "--name", "t", "--data-dir", data,
              "--listen-client-urls", "http://%s:%d" % (host, client),
              "--advertise-client-urls", "http://%s:%d" % (host, client),
              "--listen-peer-urls", "http://%s:%d" % (host, peer),
              "--initial-advertise-peer-urls", "http://%s:%d" % (host, peer),
              "--initial-cluster", "t=http://%s:%d" % (host, peer)], "etcd",
             allow_errors=[r".*"])    # etcd's own log format is not keel's
    kt.wait_port(client, 15, host=host)
    return "http://%s:%d" % (host, client)


# --------------------------------------------------------------------------------------------
# psycopg2 with client-side deadlines

class Deadline(Exception):
    pass


def _pg_wait(conn, deadline):
    while True:
        state = conn.poll()
        if state == pgext.POLL_OK:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise Deadline("deadline passed")
        fd = conn.fileno()
        if state == pgext.POLL_READ:
            select.select([fd], [], [], left)
        elif state == pgext.POLL_WRITE:
            select.select([], [fd], [], left)
        else:
            raise psycopg2.OperationalError("poll() returned %r" % state)


def pg_connect_async(deadline, **kw):
    """An asynchronous connection (autocommit: one statement, one transaction), connected
    before deadline or closed and Deadline raised."""
    conn = psycopg2.connect(async_=1, **kw)
    try:
        _pg_wait(conn, deadline)
    except BaseException:
        conn.close()
        raise
    return conn


def pg_exec_async(conn, sql, args=None, deadline=None):
    """Run one statement; returns the rows (or None). On Deadline the caller closes conn."""
    cur = conn.cursor()
    cur.execute(sql, args)
    _pg_wait(conn, deadline)
    return cur.fetchall() if cur.description is not None else None


# --------------------------------------------------------------------------------------------
# The cluster

def fnv1a64(s):
    h = 14695981039346656037
    for b in s.encode():
        h = ((h ^ b) * 1099511628211) & 0xffffffffffffffff
    return h


def socket_dir_of(data_dir):
    """keel's socket directory of a data directory (src/db/pg_sockdir.c)."""
    return "/run/keel/pg-%016x" % fnv1a64(data_dir)


PROBE_FUNCTION = """CREATE OR REPLACE FUNCTION keel_probe_write() RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF pg_is_in_recovery() THEN
        RETURN NULL;
    END IF;
    INSERT INTO keel_probe (node) VALUES (current_setting('cluster_name'));
    RETURN current_setting('cluster_name');
END $$"""


class Cluster:
    """A database NAME on db nodes dbs [(name, address)], one lb node (name, address), etcd at
    etcd_url, with extra directives (`replication async;`...) in the database block.

    wraps: {node: fn(argv) -> argv} to run a node elsewhere (a network namespace).
    nofile: {node: "SOFT:HARD"} to start a node's keel under that RLIMIT_NOFILE (prlimit;
    its PostgreSQL inherits it)."""

    def __init__(self, env, etcd_url, dbs, lb, options="", wraps=None, start=True,
                 nofile=None):
        self.env = env
        self.dbs = dict(dbs)
        self.db_names = [n for n, _ in dbs]
        self.lb_name, self.lb_addr = lb
        self.wraps = dict(wraps or {})
        for node, limit in (nofile or {}).items():
            inner = self.wraps.get(node, lambda argv: argv)
            self.wraps[node] = lambda argv, inner=inner, limit=limit: inner(
                ["prlimit", "--nofile=%s" % limit, "--"] + argv)
        self.secret = os.urandom(32)
        kt.write_secret(os.path.join(env.tmp, "secret"), self.secret)
        self.admin, self.agent = env.port(), env.port()
        self.pg, self.write, self.read = env.port(), env.port(), env.port()
        # PostgreSQL runs as postgres: its data lives where that user can reach (pytest's
        # temporary directories are private to root).
        self.state = tempfile.mkdtemp(prefix="keel-dbf-", dir="/tmp")
        os.chmod(self.state, 0o755)
        env.cleanups.append(self._remove_state)
        env.cleanups.append(self._save_logs)
        self.started = []             # every kt.Keel started, killed ones included
        self.conf = os.path.join(env.tmp, "keel.conf")
        nodes = "".join("node %s { address %s; roles db; }\n" % d for d in dbs)
        with open(self.conf, "w") as f:
            f.write("""cluster t { secret_file %(tmp)s/secret; state_dir %(state)s; }
global { workers 1; admin :%(admin)d; log_level info; }
node %(lbn)s { address %(lb)s; roles lb; }
%(nodes)sdatabase %(db)s {
    nodes %(names)s;
    dcs etcd %(etcd)s;
    pg_port %(pg)d;
    agent_port %(agent)d;
    write_port %(write)d;
    read_port %(read)d;
%(options)s}
""" % dict(tmp=env.tmp, state=self.state, admin=self.admin, lbn=self.lb_name, lb=self.lb_addr,
           nodes=nodes, db=DB_NAME, names=" ".join(self.db_names), etcd=etcd_url, pg=self.pg,
           agent=self.agent, write=self.write, read=self.read, options=options))
        self.nodes = {}
        self._app_password = None
        if start:
            for name in self.db_names + [self.lb_name]:
                self.start(name)

    def _remove_state(self):
        shutil.rmtree(self.state, ignore_errors=True)
        for n in self.db_names:      # the socket directories keel could not remove (kill -9)
            d = self.socket_dir(n)
            if os.path.islink(d) or os.path.isfile(d):
                os.unlink(d)
            elif os.path.isdir(d):
                shutil.rmtree(d, ignore_errors=True)
        return []

    def _save_logs(self):
        """The whole log of every node (the env fixture prints the last 80 lines) into the
        test's temporary directory: keel-NODE-PID.log."""
        for name, k in self.started:
            with open(os.path.join(self.env.tmp, "keel-%s-%d.log" % (name, k.pid)), "w") as f:
                f.write("\n".join(k.lines()) + "\n")
        if self.started:
            print("full keel logs in %s" % self.env.tmp)
        return []

    def addr(self, node):
        return self.lb_addr if node == self.lb_name else self.dbs[node]

    # processes
    def start(self, name, allow_errors=()):
        k = self.env.keel(None, admin="%s:%d" % (self.addr(name), self.admin),
                          args=["--node", name], conf=self.conf, wait=False,
                          wrap=self.wraps.get(name), name="keel-" + name,
                          allow_errors=EXPECTED_ERRORS + list(allow_errors))
        self.nodes[name] = k
        self.started.append((name, k))
        k.wait_ready(timeout=20)
        return k

    def kill9(self, name):
        """kill -9 of the node's keel (its postgres dies with it: PDEATHSIG)."""
        self.nodes[name].kill9()

    # the agents
    def agent_get(self, node, path, timeout=1.0):
        """(status, parsed JSON or None); (None, None) when the agent does not answer."""
        try:
            st, _, body = kt.http_get("%s:%d" % (self.addr(node), self.agent), path,
                                      timeout=timeout)
        except OSError:
            return None, None
        except Exception:  # noqa: BLE001 - http.client's errors: not answering
            return None, None
        try:
            return st, json.loads(body)
        except ValueError:
            return st, None

    def describe(self):
        """Every db agent's view, for failure messages: /replica's JSON (it names the role,
        the state, the leader, streaming) or "no answer"."""
        out = []
        for n in self.db_names:
            st, body = self.agent_get(n, "/replica")
            out.append("%s: %s" % (n, body if st is not None else "no answer"))
        return "; ".join(out)

    def log_lines(self, pattern, limit=6):
        """The first lines matching pattern (regex) in every node's log, for failure
        messages."""
        rx = re.compile(pattern)
        out = []
        for name, k in self.started:
            out += ["%s: %s" % (name, l) for l in k.lines() if rx.search(l)][:limit]
        return out

    @contextlib.contextmanager
    def explained(self, what):
        """Re-raise an AssertionError of the block with what, every agent's view, and the
        log lines of a node that cannot follow because its WAL diverged unrewound."""
        try:
            yield
        except AssertionError as e:
            hints = self.log_lines(r"no rewind required|forked off current database system")
            raise AssertionError("%s: %s\nagents now: %s%s" % (
                what, e, self.describe(),
                "\na node cannot follow (its WAL diverged and was not rewound):\n  " +
                "\n  ".join(hints) if hints else "")) from None

    def is_role(self, node, path):
        return self.agent_get(node, path)[0] == 200

    def primary(self):
        """The node whose agent says /primary, or None."""
        for n in self.db_names:
            if self.is_role(n, "/primary"):
                return n
        return None

    def wait_primary(self, timeout=60):
        return kt.deadline_poll(self.primary, timeout, interval=0.1, what="a primary")

    def ready(self, primary, sync=True):
        """primary says /primary, every other db node is a streaming replica of it (and a
        synchronous candidate when sync), and the primary's agent sees them healthy."""
        if not self.is_role(primary, "/primary"):
            return False
        others = [n for n in self.db_names if n != primary]
        for n in others:
            st, body = self.agent_get(n, "/replica")
            if st != 200 or not body or not body.get("streaming") or \
                    body.get("leader") != primary:
                return False
        st, cl = self.agent_get(primary, "/cluster")
        if st != 200 or not cl:
            return False
        healthy = {m["name"] for m in cl.get("members", []) if m.get("state") == "running"}
        if not set(others) <= healthy:
            return False
        rows = self.su_query(primary, "SELECT application_name, state, sync_state "
                             "FROM pg_stat_replication")
        streaming = {r[0]: r[2] for r in rows if r[1] == "streaming"}
        if not set(others) <= set(streaming):
            return False
        # A standby whose WAL forked off before the primary's new timeline connects, streams
        # the old timeline up to the fork and is turned away, again and again: it shows up
        # above now and then. Its receiver is on the primary's timeline only if it follows.
        tli = self.su_query(primary, "SELECT timeline_id FROM pg_control_checkpoint()")[0][0]
        for n in others:
            rows = self.su_query(n, "SELECT status, received_tli FROM pg_stat_wal_receiver")
            if not rows or rows[0][0] != "streaming" or rows[0][1] != tli:
                return False
        return not sync or any(streaming[n] in ("sync", "quorum") for n in others)

    def wait_ready(self, primary, sync=True, timeout=60):
        def ok():
            try:
                return self.ready(primary, sync)
            except (psycopg2.Error, Deadline, OSError):
                return False
        kt.deadline_poll(ok, timeout, interval=0.1,
                         what="%s primary with every other node streaming from it" % primary)

    # PostgreSQL, directly
    def data_dir(self, node):
        return os.path.join(self.state, "db", DB_NAME, node)

    def socket_dir(self, node):
        """keel's socket directory: /run/keel/pg-<64-bit FNV-1a of the data directory>."""
        return socket_dir_of(self.data_dir(node))

    def su_connect(self, node, dbname="postgres", timeout=3.0):
        """The superuser over the node's Unix socket (peer: root maps to postgres)."""
        return pg_connect_async(time.monotonic() + timeout, host=self.socket_dir(node),
                                port=self.pg, user="postgres", dbname=dbname)

    def su_query(self, node, sql, args=None, dbname="postgres", timeout=3.0):
        conn = self.su_connect(node, dbname, timeout)
        try:
            return pg_exec_async(conn, sql, args, time.monotonic() + timeout)
        finally:
            conn.close()

    def postmaster_pid(self, node):
        with open(os.path.join(self.data_dir(node), "postmaster.pid")) as f:
            return int(f.readline())

    def pg_tree(self, node):
        """The postmaster's PID and its descendants (walsenders, backends...)."""
        pm = self.postmaster_pid(node)
        return [pm] + kt.proc_descendants(pm)

    def walsender_pid(self, primary, replica):
        rows = self.su_query(primary, "SELECT pid FROM pg_stat_replication "
                             "WHERE application_name = %s", (replica,))
        assert rows, "no walsender of %s on %s" % (replica, primary)
        return rows[0][0]

    def crash_pg(self, node):
        """Crash the node's PostgreSQL as a machine crash would: freeze the whole tree
        (postmaster first, so it forks nothing new), then SIGKILL every process of it.
        Returns the time of the crash (the first SIGSTOP)."""
        pm = self.postmaster_pid(node)
        t = time.monotonic()
        os.kill(pm, signal.SIGSTOP)
        tree = [pm]
        for _ in range(5):                  # bounded: a frozen postmaster forks no more
            more = [p for p in kt.proc_descendants(pm) if p not in tree]
            if not more:
                break
            for p in more:
                try:
                    os.kill(p, signal.SIGSTOP)
                except ProcessLookupError:
                    pass
            tree += more
        for p in tree:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return t

    # the application role
    def app_password(self):
        if self._app_password is None:
            r = subprocess.run([kt.KEEL, "db", "password", "-c", self.conf, DB_NAME],
                               capture_output=True, text=True, timeout=10)
            assert r.returncode == 0, "keel db password: %s" % r.stderr
            self._app_password = r.stdout.strip()
        return self._app_password

    def app_dsn(self, port, host=None):
        return dict(host=host or self.lb_addr, port=port, user=DB_NAME, dbname=DB_NAME,
                    password=self.app_password())

    def app_query(self, port, sql, args=None, timeout=3.0):
        conn = pg_connect_async(time.monotonic() + timeout, **self.app_dsn(port))
        try:
            return pg_exec_async(conn, sql, args, time.monotonic() + timeout)
        finally:
            conn.close()

    def prepare_tables(self, primary, timeout=30):
        """keel_probe (postgres database) for the probes; w (database main, owned by the
        application role, created through the lb's write port) for the writer."""
        self.su_query(primary, "CREATE TABLE IF NOT EXISTS keel_probe "
                      "(node text, at timestamptz DEFAULT clock_timestamp())")
        self.su_query(primary, PROBE_FUNCTION)

        def app_ok():
            try:
                self.app_query(self.write, "CREATE TABLE IF NOT EXISTS w (id bigint PRIMARY "
                               "KEY, node text, pad text, at timestamptz DEFAULT "
                               "clock_timestamp())")
                return True
            except (psycopg2.Error, Deadline):
                return False
        kt.deadline_poll(app_ok, timeout, interval=0.2,
                         what="the application role to create its table through the lb")

    def start_up(self, sync=True, timeout=90):
        """Wait for the bootstrap, create the tables; returns (primary, replicas)."""
        p = self.wait_primary(timeout)
        self.wait_ready(p, sync, timeout)
        self.prepare_tables(p)
        return p, [n for n in self.db_names if n != p]

    def table_ids(self, node):
        """Every id in the writer's table, read on node as the superuser."""
        rows = self.su_query(node, "SELECT id FROM w", dbname=DB_NAME, timeout=10)
        return {r[0] for r in rows}


# --------------------------------------------------------------------------------------------
# The writer

def paced(halt, every, max_s):
    """Yield once every `every` seconds (never faster, skipping missed beats) until halt is
    set or max_s has passed: the bounded loop of the writer and the probe."""
    start = nxt = time.monotonic()
    while not halt.is_set() and time.monotonic() - start < max_s:
        now = time.monotonic()
        if now < nxt:
            halt.wait(nxt - now)
            continue
        nxt = max(nxt + every, now)
        yield


class Ack:
    __slots__ = ("id", "t0", "t1", "node")

    def __init__(self, id_, t0, t1, node):
        self.id, self.t0, self.t1, self.node = id_, t0, t1, node


class Writer(threading.Thread):
    """INSERT a numbered row every `every` s through dsn (the lb's write port), each
    statement its own transaction; a new connection after any error or timeout."""

    MAX_S = 600

    def __init__(self, dsn, every=0.02, pad=0, connect_timeout=0.5, timeout=1.0):
        super().__init__(daemon=True, name="db-writer")
        self.dsn = dsn
        self.every, self.pad = every, pad
        self.connect_timeout, self.timeout = connect_timeout, timeout
        self.acks = []            # Ack, in acknowledgement order
        self.warned = []          # ids whose commit came back with the sync-cancel warning
        self.errors = 0
        self.attempts = 0
        self.last_error = None
        self.lock = threading.Lock()
        self._halt = threading.Event()
        self.died = None

    def stop(self):
        self._halt.set()
        self.join(10)

    def run(self):
        try:
            self._loop()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.died = repr(e)

    def _loop(self):
        conn = None
        next_id = 1
        for _ in paced(self._halt, self.every, self.MAX_S):
            i = next_id
            next_id += 1
            self.attempts += 1
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = pg_connect_async(t0 + self.connect_timeout, **self.dsn)
                pad = os.urandom(self.pad // 2).hex() if self.pad else None
                del conn.notices[:]
                rows = pg_exec_async(conn, "INSERT INTO w (id, node, pad) VALUES (%s, "
                                     "current_setting('cluster_name'), %s) RETURNING node",
                                     (i, pad), time.monotonic() + self.timeout)
                t1 = time.monotonic()
                if any("canceling wait for synchronous replication" in n
                       for n in conn.notices):
                    with self.lock:
                        self.warned.append(i)
                    continue
                with self.lock:
                    self.acks.append(Ack(i, t0, t1, rows[0][0]))
            except (psycopg2.Error, Deadline, OSError) as e:
                self.errors += 1
                self.last_error = "%s: %s" % (type(e).__name__, " ".join(str(e).split())[:200])
                if conn is not None:
                    conn.close()
                    conn = None
        if conn is not None:
            conn.close()

    # queries
    def snapshot(self):
        with self.lock:
            return list(self.acks)

    def first_ack(self, after, node=None):
        """The first write acknowledged after `after` (by node)."""
        for a in self.snapshot():
            if a.t1 > after and (node is None or a.node == node):
                return a
        return None

    def wait_ack(self, after, node=None, timeout=10.0):
        """The first write acknowledged after `after` (by node), waiting up to timeout s."""
        def ok():
            if self.died:
                raise AssertionError("writer died: " + self.died)
            return self.first_ack(after, node)
        try:
            return kt.deadline_poll(ok, timeout, interval=0.01,
                                    what="a write acknowledged by %s" % (node or "any node"))
        except AssertionError as e:
            raise AssertionError("%s (writer: %d attempts, last error: %s)" % (
                e, self.attempts, self.last_error)) from None

    def wait_steady(self, node, n=5, timeout=20.0):
        """The last n acknowledgements all came from node, the latest less than 0.5 s ago."""
        def ok():
            if self.died:
                raise AssertionError("writer died: " + self.died)
            s = self.snapshot()[-n:]
            return len(s) == n and all(a.node == node for a in s) and \
                time.monotonic() - s[-1].t1 < 0.5
        try:
            kt.deadline_poll(ok, timeout, interval=0.02,
                             what="writes acknowledged steadily by %s" % node)
        except AssertionError as e:
            raise AssertionError("%s (writer: %d attempts, last error: %s)" % (
                e, self.attempts, self.last_error)) from None

    def acked_between(self, a, b):
        return [x for x in self.snapshot() if a <= x.t1 < b]


# --------------------------------------------------------------------------------------------
# The writability probe

class Sample:
    __slots__ = ("node", "t0", "t1", "ok", "err")

    def __init__(self, node, t0, t1, ok, err=None):
        self.node, self.t0, self.t1, self.ok, self.err = node, t0, t1, ok, err

    def __repr__(self):
        return "<%s %.3f..%.3f %s>" % (self.node, self.t0, self.t1, "ok" if self.ok else self.err)


class WritableProbe:
    """One thread per db node. Every `every` s it asks the node's PostgreSQL, over its Unix
    socket as the superuser, within `timeout` s, to run keel_probe_write() (made by
    Cluster.prepare_tables): on a server in recovery it returns NULL (no error, so the
    standbys' logs stay quiet), elsewhere it inserts a row into keel_probe and returns the
    node's cluster_name, which proves that the server committed a write. A standby, a
    stopped server and a server that refuses writes all fail it.

    The session asks for what any client may ask for (both settings are USERSET):
    synchronous_commit = local, so that the probe sees a primary that commits writes even
    while synchronous replication keeps its clients waiting for the acknowledgement, and
    default_transaction_read_only = off, so that a "read-only" that a client can switch off
    does not count as a fence. What a fence must rule out is the server committing writes."""

    MAX_S = 600

    def __init__(self, cluster, nodes=None, every=0.05, timeout=0.5):
        self.c = cluster
        self.every, self.timeout = every, timeout
        self.samples = []
        self.lock = threading.Lock()
        self._halt = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True,
                                         name="probe-" + n)
                        for n in (nodes or cluster.db_names)]
        self.died = {}

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self._halt.set()
        for t in self.threads:
            t.join(10)

    def _run(self, node):
        try:
            self._loop(node)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.died[node] = repr(e)

    def _loop(self, node):
        conn = None
        for _ in paced(self._halt, self.every, self.MAX_S):
            t0 = time.monotonic()
            ok, err = False, None
            try:
                if conn is None:
                    conn = self.c.su_connect(node, timeout=self.timeout)
                    pg_exec_async(conn, "SET synchronous_commit = local; "
                                  "SET default_transaction_read_only = off",
                                  deadline=t0 + self.timeout)
                rows = pg_exec_async(conn, "SELECT keel_probe_write()",
                                     deadline=t0 + self.timeout)
                if rows[0][0] is not None:
                    assert rows[0][0] == node, "probe of %s answered by %s" % (node, rows[0][0])
                    ok = True
                else:
                    err = "in recovery"
            except (psycopg2.Error, Deadline, OSError) as e:
                err = "%s: %s" % (type(e).__name__, " ".join(str(e).split())[:120])
                if conn is not None:
                    conn.close()
                    conn = None
            with self.lock:
                self.samples.append(Sample(node, t0, time.monotonic(), ok, err))
        if conn is not None:
            conn.close()

    def successes(self):
        with self.lock:
            return [s for s in self.samples if s.ok]

    def last_ok(self, node):
        for s in reversed(self.successes()):
            if s.node == node:
                return s
        return None


def check_single_writer(probe, writer, windows):
    """No two nodes writable at once, as far as the samples can prove.

    Evidence of writability: a probe's successful insert, or a writer's acknowledged insert
    (each names its node). A success proves the node committed a write at *some* instant in
    [t0, t1] (sent, answered); between two samples of a node (every ~50 ms) nothing is
    known. So for each trial window [start, end) with its old primary O and new primary N we
    take O's last success and N's first success and:
      - proven order: O's last t1 < N's first t0: O's last write came before N's first.
      - proven overlap: O's last t0 > N's first t1: N committed a write and afterwards O
        committed one: two writable nodes. This fails.
      - otherwise the two brackets overlap: the order cannot be told (a few ms, the query
        time); counted and reported as ambiguous, not failed.
    A double-writable period shorter than the sampling period (~50 ms plus a query) can go
    unseen; the handover gaps reported (N's first t0 - O's last t1) say how far from that
    the run was. A success of a node that is neither O nor N fails too.

    windows: [(start, end, old, new)]. Returns (violations, ambiguous, gaps)."""
    ev = [(s.node, s.t0, s.t1) for s in probe.successes()]
    ev += [(a.node, a.t0, a.t1) for a in writer.snapshot()]
    violations, ambiguous, gaps = [], 0, []
    for start, end, old, new in windows:
        w = [e for e in ev if start <= e[1] < end]
        strangers = [e for e in w if e[0] not in (old, new)]
        if strangers:
            violations.append("window %.3f-%.3f (%s -> %s): writes on %s" % (
                start, end, old, new, strangers[:3]))
        o = [e for e in w if e[0] == old]
        n = [e for e in w if e[0] == new]
        if not o or not n:
            continue
        last_o = max(o, key=lambda e: e[1])
        first_n = min(n, key=lambda e: e[1])
        if last_o[1] > first_n[2]:
            violations.append(
                "two writable nodes: %s committed a write in [%.3f, %.3f], after %s had "
                "committed one in [%.3f, %.3f]" % (old, last_o[1], last_o[2], new,
                                                   first_n[1], first_n[2]))
        elif last_o[2] >= first_n[1]:
            ambiguous += 1
        gaps.append(first_n[1] - last_o[2])
    return violations, ambiguous, gaps


def lost_acks(cluster, primary, writer, before):
    """(missing ids, number acknowledged): writes acknowledged before `before` that the
    table on primary does not have."""
    acked = [a.id for a in writer.snapshot() if a.t1 < before]
    have = cluster.table_ids(primary)
    return sorted(set(acked) - have), len(acked)


# --------------------------------------------------------------------------------------------
# Network namespaces: db nodes in a lab, etcd, the lb node and the writer on the host

class DbLab:
    """A netns.Lab (its bridge in a namespace of its own, one namespace per db node) plus an
    uplink: a veth pair from the host (root namespace) to the bridge, the host end carrying
    HOST_IP/24. etcd, the lb node and the clients run on the host and reach the db nodes
    through it. close() removes the lab, and deletes the host end explicitly."""

    def __init__(self, db_names):
        import netns
        self.netns = netns
        self.subnet = self._free_subnet()
        self.lab = netns.Lab(subnet=self.subnet)
        self.host_if = self.lab.id + "-up"     # "kv" + 6 + "-up": 11 characters
        self.host_ip = self.subnet + ".1"
        self.hosts = {}
        try:
            netns.run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name",
                      "p-up", "netns", self.lab.br_ns)
            netns.run("ip", "-n", self.lab.br_ns, "link", "set", "dev", "p-up", "master",
                      "br0")
            netns.run("ip", "-n", self.lab.br_ns, "link", "set", "dev", "p-up", "up")
            netns.run("ip", "addr", "add", self.host_ip + "/24", "dev", self.host_if)
            netns.run("ip", "link", "set", "dev", self.host_if, "up")
            for i, n in enumerate(db_names):
                ip = "%s.%d" % (self.subnet, 11 + i)
                self.hosts[n] = self.lab.add_host(n, ip + "/24")
        except BaseException:
            self.close()
            raise

    def _free_subnet(self):
        """A 10.78.X.0/24 that no route or address of the host mentions."""
        r = self.netns.run("ip", "-4", "route", "show", "table", "all", check=False)
        a = self.netns.run("ip", "-4", "addr", check=False)
        for x in range(10, 250):
            s = "10.78.%d" % x
            if s + "." not in r.stdout and s + "." not in a.stdout:
                return s
        raise RuntimeError("no free 10.78.X.0/24")

    def ip(self, node):
        return self.hosts[node].ip

    def wrap(self, node):
        return lambda argv: self.hosts[node].argv(*argv)

    def cut(self, node):
        """The node's bridge port down: it reaches nothing, nothing reaches it."""
        self.hosts[node].link_down("bridge")

    def heal(self, node):
        self.hosts[node].link_up("bridge")

    def wait_link(self, node, timeout=10):
        """Until the node's eth0 has carrier again after heal()."""
        def up():
            r = self.hosts[node].ip_cmd("-j", "link", "show", "dev", "eth0")
            return "LOWER_UP" in json.loads(r.stdout)[0].get("flags", [])
        kt.deadline_poll(up, timeout, what="%s's link up" % node)

    def close(self):
        """Remove everything (never raises); returns problems (strings)."""
        problems = []
        r = self.netns.run("ip", "link", "del", "dev", self.host_if, check=False)
        if r.returncode != 0 and "Cannot find device" not in r.stderr and \
                "does not exist" not in r.stderr:
            problems.append("del %s: %s" % (self.host_if, r.stderr.strip()))
        problems += self.lab.close()
        left = self.netns.lab_leftovers(self.lab.id)
        if left:
            problems.append("lab leftovers: %s" % left)
        return problems


def assert_trials(writer, probe, violations, problems, failovers, notes):
    """The verdict of a series of fault trials: the writer and the probe ran throughout, no
    two nodes were writable at once, nothing else went wrong, every failover took at most
    FAILOVER_MAX_S, and no commit was acknowledged with the sync-cancel warning."""
    assert not writer.died and not probe.died, (writer.died, probe.died)
    assert not violations, "\n".join(violations)
    assert not problems, "\n".join(problems)
    slow = [t for t in failovers if t > FAILOVER_MAX_S]
    assert not slow, "failover slower than %.0f s: %s (%s)" % (
        FAILOVER_MAX_S, ["%.2f" % t for t in failovers], "; ".join(notes))
    assert writer.warned == [], "commits acknowledged with the sync-cancel warning: %s" \
        % writer.warned[:20]
