# SPDX-License-Identifier: MIT
"""`keel up`: the demo topology (lb1 and lb2 sharing the virtual IP 127.0.0.100 by VRRP, in
front of web1..3, each web node also running the demo app, every node its own process on its
own 127.0.0.x; with etcd and PostgreSQL installed, also db1 and db2 and the etcd they use)
comes up, answers through the VIP from all three nodes, keeps the guestbook's posts in the
database (written on the primary, read on the replica), moves the VIP when the master is
killed, restarts a node that is killed, and leaves nothing running after Ctrl-C (no keel,
postgres or etcd process, no temporary directory)."""
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.parse

import pytest

import keeltest as kt

HAS_DB = bool(shutil.which("etcd")) and os.path.isdir("/usr/lib/postgresql/15/bin")


def admin_port(conf):
    with open(conf) as f:
        return int(re.search(r"admin :(\d+);", f.read()).group(1))


def wait_line(up, rx, timeout=20, start=0):
    def hit():
        hits = up.out.find(rx, start) or up.log.find(rx, start)
        return hits[0][1] if hits else None
    return kt.deadline_poll(hit, timeout, what="keel up output %r" % rx)


def procs_mentioning(text):
    """PIDs of the processes whose command line contains text (e.g. the demo's directory:
    postgres -D DIR/state/..., etcd --data-dir DIR/etcd)."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if text.encode() in f.read() and kt.pid_running(int(d)):
                    found.append(int(d))
        except OSError:
            pass
    return found


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def guestbook(lb, primary, replica):
    """Sign the demo's guestbook through the VIP and read it back (JSON and HTML)."""
    name = "visitor-%s" % kt.random_token()
    st, _, body = kt.http_get(lb, "/guestbook", method="POST", timeout=10,
                              body=urllib.parse.urlencode(dict(name=name, message="<hi>")).encode(),
                              headers={"Content-Type": "application/x-www-form-urlencoded",
                                       "Accept": "application/json"})
    assert st == 201, (st, body)
    post = json.loads(body)
    assert post["written_by"] == primary, post
    st, _, body = kt.http_get(lb, "/guestbook.json", timeout=10)
    page = json.loads(body)
    assert st == 200 and page["read_by"] == replica, page
    assert (post["id"], name, "<hi>") in [(p["id"], p["name"], p["message"])
                                          for p in page["posts"]], page
    st, _, body = kt.http_get(lb, "/guestbook", timeout=10)
    assert st == 200 and name.encode() in body and b"&lt;hi&gt;" in body, body
    return True


@pytest.mark.timeout(150)
def test_keel_up_demo_serves_restarts_and_sigint_stops_everything(env):
    up = env.proc([kt.KEEL, "up"], "keel-up")
    kids = []
    try:
        line = wait_line(up, r"keel up: http://127\.0\.0\.100:\d+/", timeout=120)
        port = int(re.search(r"http://127\.0\.0\.100:(\d+)/", line).group(1))
        lb = "127.0.0.100:%d" % port
        # progress: each node came up, on its own address, and the health checks were waited for
        nodes = [("lb1", "127.0.0.10"), ("lb2", "127.0.0.14"), ("web1", "127.0.0.11"),
                 ("web2", "127.0.0.12"), ("web3", "127.0.0.13")]
        if HAS_DB:
            nodes += [("etcd", "127.0.0.17"), ("db1", "127.0.0.15"), ("db2", "127.0.0.16")]
        for name, addr in nodes:
            wait_line(up, r"up  %s\s+.*pid \d+\s+%s" % (name, re.escape(addr)), timeout=1)
        if HAS_DB:
            wait_line(up, r"every server is up, every database has its primary and a streaming "
                      r"replica", timeout=1)
            wait_line(up, r"guestbook: http://127\.0\.0\.100:%d/guestbook" % port, timeout=1)
        else:
            wait_line(up, r"every server is up", timeout=1)
        conf = re.search(r"keel status -c (\S+)", wait_line(up, r"keel status -c \S+")).group(1)
        demo_dir = os.path.dirname(conf)

        # through the LB: all three web nodes, and all three app servers
        webs, apps = collections.Counter(), collections.Counter()
        for _ in range(30):
            st, h, body = kt.http_get(lb, "/api/info", timeout=3)
            assert st == 200, (st, body)
            webs[h["x-served-by"]] += 1
            apps[json.loads(body)["app_node"]] += 1
        assert set(webs) == {"web1", "web2", "web3"}, webs
        assert set(apps) == {"web1", "web2", "web3"}, apps
        st, h, body = kt.http_get(lb, "/")
        assert st == 200 and b"<html" in body.lower() and h["x-served-by"] in webs
        st, h, body = kt.http_get(lb, "/static/style.css")
        assert st == 200 and h["content-type"].startswith("text/css"), h

        # keel status sees every node, and the database's primary and replica
        r = subprocess.run([kt.KEEL, "status", "-c", conf], capture_output=True, text=True,
                           timeout=20)
        assert r.returncode == 0, r.stdout + r.stderr
        rows = {l.split()[0]: l.split() for l in r.stdout.splitlines()[1:]}
        assert set(rows) == {"lb1", "lb2", "web1", "web2", "web3"} | (
            {"db1", "db2"} if HAS_DB else set()), r.stdout
        pids = {n: int(rows[n][5] if n.startswith("web") else rows[n][4]) for n in rows}
        assert rows["lb1"][-2:] == ["51", "master"] and rows["lb2"][-2:] == ["51", "backup"], \
            r.stdout
        if HAS_DB:
            roles = {n: " ".join(rows[n][5:]) for n in ("db1", "db2")}
            primary = [n for n in roles if re.search(r"\bdemo primary\b", roles[n])]
            replica = [n for n in roles if re.search(r"\bdemo replica lag \d", roles[n])]
            assert len(primary) == 1 and len(replica) == 1, r.stdout
            primary, replica = primary[0], replica[0]
            # the guestbook, end to end through the VIP: web -> app -> lb -> db
            guestbook(lb, primary, replica)
        else:
            st, _, body = kt.http_get(lb, "/guestbook")
            assert st == 503 and b"KEEL_DB_WRITE" in body, (st, body)

        # the master LB killed: lb2 takes the virtual IP, then lb1 (restarted) takes it back
        mark = up.out.mark()
        os.kill(pids["lb1"], signal.SIGKILL)
        t0 = time.monotonic()

        def served():
            try:
                return kt.http_get(lb, "/healthz", timeout=0.1)[0] == 200
            except OSError:
                return False
        kt.deadline_poll(lambda: not served() or time.monotonic() - t0 > 0.01, 2, interval=0.001)
        kt.deadline_poll(served, 3, interval=0.005, what="the VIP served by lb2")
        took = time.monotonic() - t0
        print("keel up: VIP takeover after kill -9 of lb1: %.0f ms" % (took * 1000))
        assert took < 1.0, took
        wait_line(up, r"keel up: node lb1 restarted as pid \d+", timeout=10, start=mark)

        def lb1_master():
            st, _, body = kt.http_get("127.0.0.10:%d" % admin_port(conf), "/status", timeout=1)
            return st == 200 and json.loads(body)["vrrp"][0]["state"] == "master"
        kt.deadline_poll(lb1_master, 10, what="lb1 master again (preemption)")

        # a node that dies is reported and restarted; the LB routes around it meanwhile
        kids = kt.proc_descendants(up.pid)
        assert pids["web2"] in kids
        mark = up.out.mark()
        os.kill(pids["web2"], signal.SIGKILL)
        wait_line(up, r"keel up: node web2 \(pid %d\) was killed by signal 9; restarting"
                  % pids["web2"], timeout=5, start=mark)
        wait_line(up, r"keel up: node web2 restarted as pid \d+", timeout=10, start=mark)

        def web2_back():
            st, h, _ = kt.http_get(lb, "/api/info", timeout=3)
            return st == 200 and h["x-served-by"] == "web2"
        kt.deadline_poll(web2_back, 15, interval=0.05, what="web2 serving again through the LB")

        if HAS_DB:   # after lb1 and web2 died and came back, the guestbook still works
            kt.deadline_poll(lambda: guestbook(lb, primary, replica), 10, interval=0.2,
                             what="the guestbook through the VIP after the restarts")
        kids = kt.proc_descendants(up.pid)
        assert len(kids) >= 7, "keel up has %d descendants: %s" % (len(kids), kids)
        if HAS_DB:   # two postmasters and etcd among them, all in the demo's directory
            in_dir = procs_mentioning(demo_dir)
            names = collections.Counter(comm(p) for p in in_dir)
            assert names["postgres"] >= 2 and names["etcd"] == 1, names
            assert set(in_dir) <= set(kids), (in_dir, kids)
        up.signal(signal.SIGINT)
        up.stopped_by_test = True
        rc = up.wait(20)
        assert rc is not None, "keel up still running 20s after SIGINT"
        left = []
        end = time.monotonic() + 5
        while time.monotonic() < end:
            left = [p for p in kids if kt.pid_running(p)]
            if not left:
                break
            time.sleep(0.05)
        assert left == [], "processes left after SIGINT: %s" % left
        assert rc == 0, "keel up exit code %s after SIGINT" % rc
        assert not kt.port_accepts(port, host="127.0.0.100")
        wait_line(up, r"keel up: everything stopped", timeout=1)
        assert procs_mentioning(demo_dir) == [], "processes of the demo left after SIGINT"
        assert not os.path.exists(demo_dir), "the demo's temporary directory was left behind"
    finally:
        for p in kids:
            if kt.pid_running(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass


@pytest.mark.timeout(60)
def test_keel_up_demo_without_etcd_runs_without_its_database(env):
    # a PATH without etcd: the demo says so, and runs everything but the database
    bare = os.path.join(env.tmp, "bin")
    os.mkdir(bare)
    up = kt.Proc([kt.KEEL, "up"], "keel-up", env={"PATH": bare})
    up.allow_errors = []
    env.others.append(up)
    kids = []
    try:
        wait_line(up, r"keel up: the demo runs without its database: etcd is not installed",
                  timeout=5)
        line = wait_line(up, r"keel up: http://127\.0\.0\.100:\d+/", timeout=30)
        lb = re.search(r"http://(127\.0\.0\.100:\d+)/", line).group(1)
        wait_line(up, r"every server is up \(", timeout=1)
        wait_line(up, r"guestbook: .* \(needs the database: answers 503 here\)", timeout=1)
        assert not up.out.find(r"up  (etcd|db1|db2) ")
        st, _, body = kt.http_get(lb, "/guestbook")
        assert st == 503 and b"the guestbook has no database" in body, (st, body)
        assert kt.http_get(lb, "/api/info")[0] == 200
        conf = re.search(r"keel status -c (\S+)", wait_line(up, r"keel status -c \S+")).group(1)
        with open(conf) as f:
            assert "database" not in f.read()
        kids = kt.proc_descendants(up.pid)
        up.signal(signal.SIGINT)
        up.stopped_by_test = True
        assert up.wait(20) == 0
        kt.deadline_poll(lambda: not [p for p in kids if kt.pid_running(p)], 5,
                         what="every process of the demo gone")
        assert not os.path.exists(os.path.dirname(conf))
    finally:
        for p in kids:
            if kt.pid_running(p):
                os.kill(p, signal.SIGKILL)


def listening(pids):
    """{(address, port)} of the TCP sockets listening in processes pids, from `ss -ltnpH`."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, timeout=10).stdout
    found = set()
    for line in out.splitlines():
        cols = line.split()
        owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if len(cols) >= 4 and owners & set(pids):
            addr, _, port = cols[3].rpartition(":")
            found.add((addr.strip("[]"), int(port)))
    return found


@pytest.mark.timeout(150)
def test_keel_up_admin_listeners_bind_the_node_address_only(env):
    """Issue 10: the demo's admin listeners were bound to every interface (admin :PORT
    resolved to the wildcard address), so /status and /metrics of a laptop's demo were open to
    the network. Each node's admin listener, like everything else the demo runs, is bound on
    that node's own 127.0.0.x address."""
    bare = os.path.join(env.tmp, "bin")
    os.mkdir(bare)
    up = kt.Proc([kt.KEEL, "up"], "keel-up", env={"PATH": bare})
    up.allow_errors = []
    env.others.append(up)
    kids = []
    try:
        wait_line(up, r"keel up: http://127\.0\.0\.100:\d+/", timeout=30)
        wait_line(up, r"every server is up \(", timeout=5)
        conf = re.search(r"keel status -c (\S+)", wait_line(up, r"keel status -c \S+")).group(1)
        admin = admin_port(conf)
        nodes = {"127.0.0.10", "127.0.0.14", "127.0.0.11", "127.0.0.12", "127.0.0.13"}
        kids = kt.proc_descendants(up.pid)
        socks = kt.deadline_poll(lambda: (lambda s: s if {a for a, p in s if p == admin} == nodes
                                          else None)(listening(kids + [up.pid])), 10,
                                 what="an admin listener on each node's address")
        assert {(a, p) for a, p in socks if p == admin} == {(a, admin) for a in nodes}, socks
        wild = sorted((a, p) for a, p in socks if not a.startswith("127."))
        assert not wild, "the demo listens on every interface: %s" % wild
        up.signal(signal.SIGINT)
        up.stopped_by_test = True
        assert up.wait(20) == 0
    finally:
        for p in kids:
            if kt.pid_running(p):
                os.kill(p, signal.SIGKILL)


@pytest.mark.timeout(60)
def test_keel_up_file_runs_one_process_per_node(env):
    ports = [env.port() for _ in range(3)]
    cfg = ("global { admin :%d; }\n"
           "node a { address 127.0.0.51; roles lb; }\n"
           "node b { address 127.0.0.52; roles web; }\n"
           "frontend f { bind :%d; backend w; }\n"
           "backend w { server b b:%d; }\n"
           "site s { bind :%d; location / { return 200 \"hi from the site\"; } }\n"
           % (ports[0], ports[1], ports[2], ports[2]))
    path = os.path.join(env.tmp, "mine.conf")
    with open(path, "w") as f:
        f.write(cfg)
    up = env.proc([kt.KEEL, "up", path], "keel-up")
    kids = []
    try:
        wait_line(up, r"press Ctrl-C to stop")
        wait_line(up, r"up  a\s+lb\s+pid \d+\s+127\.0\.0\.51", timeout=1)
        wait_line(up, r"up  b\s+web\s+pid \d+\s+127\.0\.0\.52", timeout=1)
        st, h, body = kt.http_get("127.0.0.51:%d" % ports[1], "/")
        assert (st, body, h["x-served-by"]) == (200, b"hi from the site\n", "b")
        kids = kt.proc_descendants(up.pid)
        assert len(kids) == 2, kids
        up.signal(signal.SIGINT)
        up.stopped_by_test = True
        assert up.wait(15) == 0
        assert [p for p in kids if kt.pid_running(p)] == []
    finally:
        for p in kids:
            if kt.pid_running(p):
                os.kill(p, signal.SIGKILL)


@pytest.mark.timeout(30)
def test_keel_up_refuses_a_bad_file(env):
    path = os.path.join(env.tmp, "bad.conf")
    with open(path, "w") as f:
        f.write("frontend f { bind :1; backend nope; }\n")
    r = subprocess.run([kt.KEEL, "up", path], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(r"bad\.conf:1:\d+: error: unknown backend \"nope\"", r.stderr), r.stderr
