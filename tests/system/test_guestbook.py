# SPDX-License-Identifier: MIT
"""The demo application's guestbook on the database tier, with real etcd and PostgreSQL 15:
an lb node routes a database's write and read ports, two db nodes run a primary and a
streaming replica, and a web+app node runs the demo app with the KEEL_DB_* environment.
Posts are written by the primary and read from the replica (each answer says which node),
user text is escaped, bad forms get 400; without a database the guestbook answers 503.
`keel status` shows each db node's role and lag."""
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse

import pytest

import dbtest
import keeltest as kt

LB, DB1, DB2, APP = "127.0.0.90", "127.0.0.91", "127.0.0.92", "127.0.0.93"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = dict(FORM, Accept="application/json")

needs_db = pytest.mark.skipif(not shutil.which("etcd") or not os.path.isdir(
    "/usr/lib/postgresql/15/bin"), reason="needs etcd and PostgreSQL 15 (scripts/deps.sh)")


@pytest.fixture
def etcd(env):
    return dbtest.start_etcd(env)


def form(**fields):
    return urllib.parse.urlencode(fields).encode()


def demo_app(env, extra_env):
    """A lone `keel demo-app` on 127.0.0.1 with extra_env (no KEEL_DB_* unless given)."""
    port = env.port()
    e = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_DB_")}
    e.update(extra_env)
    p = kt.Proc([kt.KEEL, "demo-app", "--name", "solo", "--listen", "127.0.0.1:%d" % port],
                "demo-app", env=e)
    p.allow_errors = []
    env.others.append(p)
    kt.wait_port(port, 10, proc=p.p)
    return port


@pytest.mark.timeout(30)
def test_guestbook_without_a_database_answers_503(env):
    port = demo_app(env, {})
    st, h, body = kt.http_get(port, "/guestbook")
    assert st == 503 and h["content-type"].startswith("text/plain"), (st, body)
    assert b"KEEL_DB_WRITE" in body and b"KEEL_DB_PASSWORD" in body, body
    st, h, body = kt.http_get(port, "/guestbook.json")
    assert st == 503 and h["content-type"] == "application/json"
    assert "no database" in json.loads(body)["error"]
    st, _, body = kt.http_get(port, "/guestbook", method="POST", body=form(name="a", message="b"),
                              headers=FORM)
    assert st == 503, body
    # the rest of the demo app is unchanged, and links to the guestbook
    st, _, body = kt.http_get(port, "/")
    assert st == 200 and b'href="/guestbook"' in body
    assert kt.http_get(port, "/healthz")[:3:2] == (200, b"ok\n")


@pytest.mark.timeout(30)
def test_guestbook_with_an_unreachable_database_answers_503_with_the_reason(env):
    dead = env.port()   # nothing listens there
    port = demo_app(env, {"KEEL_DB_WRITE": "127.0.0.1:%d" % dead,
                          "KEEL_DB_READ": "127.0.0.1:%d" % dead, "KEEL_DB_NAME": "x",
                          "KEEL_DB_USER": "x", "KEEL_DB_PASSWORD": "x"})
    st, _, body = kt.http_get(port, "/guestbook.json")
    assert st == 503, body
    err = json.loads(body)["error"]
    assert "127.0.0.1:%d" % dead in err and "refused" in err.lower(), err
    st, _, body = kt.http_get(port, "/guestbook", method="POST",
                              body=form(name="a", message="b"), headers=FORM)
    assert st == 503 and b"writes" in body and b"refused" in body.lower(), body
    # bad input is refused before any query
    st, _, body = kt.http_get(port, "/guestbook", method="POST", body=b"name=a", headers=JSON)
    assert st == 400 and "message is missing" in json.loads(body)["error"], body
    # an invalid address is reported as such
    port2 = demo_app(env, {"KEEL_DB_WRITE": "db.example:5432", "KEEL_DB_READ": "127.0.0.1:1",
                           "KEEL_DB_NAME": "x", "KEEL_DB_USER": "x", "KEEL_DB_PASSWORD": "x"})
    st, _, body = kt.http_get(port2, "/guestbook")
    assert st == 503 and b"invalid KEEL_DB_WRITE" in body, body


class Cluster:
    def __init__(self, env, etcd):
        self.env = env
        self.secret = os.urandom(32)
        kt.write_secret(os.path.join(env.tmp, "secret"), self.secret)
        p = {k: env.port() for k in ("admin", "agent", "pg", "write", "read", "site", "app")}
        self.p = p
        # PostgreSQL runs as postgres: its data lives where that user can reach.
        self.state = tempfile.mkdtemp(prefix="keel-gb-", dir="/tmp")
        os.chmod(self.state, 0o755)
        env.cleanups.append(self.remove_state)
        password = hmac.new(self.secret, b"keel-db-app-v1:gb", hashlib.sha256).hexdigest()[:32]
        self.conf = os.path.join(env.tmp, "keel.conf")
        with open(self.conf, "w") as f:
            f.write("""cluster t { secret_file %(tmp)s/secret; state_dir %(state)s; }
global { workers 1; admin :%(admin)d; log_level info; }
node lb1 { address %(lb)s; roles lb; }
node db1 { address %(db1)s; roles db; }
node db2 { address %(db2)s; roles db; }
node app1 { address %(app)s; roles web app; }
database gb {
    nodes db1 db2;
    dcs etcd %(etcd)s;
    pg_port %(pg)d;
    agent_port %(agent)d;
    write_port %(write)d;
    read_port %(read)d;
    lease 3s;
}
site web { bind :%(site)d; location / { proxy app; } }
backend app { server app1 app1:%(app_port)d; check http path /healthz interval 200ms; }
app demo {
    listen :%(app_port)d;
    run builtin demo;
    env KEEL_DB_WRITE "%(lb)s:%(write)d";
    env KEEL_DB_READ "%(lb)s:%(read)d";
    env KEEL_DB_NAME gb;
    env KEEL_DB_USER gb;
    env KEEL_DB_PASSWORD "%(password)s";
}
""" % dict(tmp=env.tmp, state=self.state, lb=LB, db1=DB1, db2=DB2, app=APP, etcd=etcd,
           password=password, app_port=p["app"], **{k: v for k, v in p.items() if k != "app"}))
        self.nodes = {}
        for name, addr in (("db1", DB1), ("db2", DB2), ("lb1", LB), ("app1", APP)):
            self.nodes[name] = env.keel(
                None, admin="%s:%d" % (addr, p["admin"]), args=["--node", name],
                conf=self.conf, allow_errors=[r"backend gb-\w+ has no server available",
                                              r"pg db\d"])
        self.site = "%s:%d" % (APP, p["site"])

    def remove_state(self):
        shutil.rmtree(self.state, ignore_errors=True)
        return []

    def has_role(self, addr, path):
        try:
            return kt.http_get("%s:%d" % (addr, self.p["agent"]), path, timeout=1)[0] == 200
        except OSError:
            return False

    def wait_primary_and_replica(self):
        def roles():
            for p, r in (("db1", "db2"), ("db2", "db1")):
                a = {"db1": DB1, "db2": DB2}
                if self.has_role(a[p], "/primary") and self.has_role(a[r], "/replica"):
                    return p, r
            return None
        return kt.deadline_poll(roles, 60, interval=0.1, what="a primary and a streaming replica")


@needs_db
@pytest.mark.timeout(150)
def test_guestbook_writes_on_the_primary_and_reads_on_the_replica(env, etcd):
    c = Cluster(env, etcd)
    primary, replica = c.wait_primary_and_replica()
    lb1 = c.nodes["lb1"]
    lb1.wait_server_state("gb-primary", primary, up=True, timeout=10)
    lb1.wait_server_state("gb-readers", replica, up=True, timeout=10)
    lb1.wait_server_state("gb-readers", primary, up=False, timeout=10)
    c.nodes["app1"].wait_server_state("app", "app1", up=True, timeout=10)

    # before the first post: no table yet, an empty list, read on the replica
    st, h, body = kt.http_get(c.site, "/guestbook.json", timeout=10)
    assert st == 200 and h["content-type"] == "application/json", (st, body)
    page = json.loads(body)
    assert page == {"posts": [], "read_by": replica, "app_node": "app1"}, page

    # a post (JSON answer): written by the primary; read back from the replica at once
    # (the write waits until the synchronous replica applied it)
    st, h, body = kt.http_get(c.site, "/guestbook", method="POST",
                              body=form(name="alice", message="hello, keel"), headers=JSON)
    assert st == 201, (st, body)
    post = json.loads(body)
    assert post["written_by"] == primary and post["id"] >= 1, post
    st, _, body = kt.http_get(c.site, "/guestbook.json")
    page = json.loads(body)
    assert page["read_by"] == replica, page
    assert [(p["id"], p["name"], p["message"]) for p in page["posts"]] == \
        [(post["id"], "alice", "hello, keel")], page
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", page["posts"][0]["at"]), page

    # a post from the HTML form: 303 to a page that says who wrote and who read; HTML in
    # names and messages is escaped, newlines and non-ASCII text kept
    evil = "<script>alert('x')</script>"
    st, h, body = kt.http_get(c.site, "/guestbook", method="POST", headers=FORM,
                              body=form(name=evil, message="line 1\r\nline 2 & <b>é</b>"))
    assert st == 303, (st, body)
    m = re.match(r"^/guestbook\?written_by=(\w+)&id=(\d+)$", h["location"])
    assert m and m.group(1) == primary, h["location"]
    st, h, body = kt.http_get(c.site, h["location"])
    html = body.decode()
    assert st == 200 and h["content-type"].startswith("text/html"), st
    assert '<b id="written-by">%s</b>' % primary in html, html
    assert '<b id="read-by">%s</b>' % replica in html, html
    assert '<b id="app-node">app1</b>' in html and '<b id="web-node">app1</b>' in html
    assert "<script>" not in html and "alert(&#39;x&#39;)" in html, html
    assert "&lt;script&gt;" in html and "line 1\nline 2 &amp; &lt;b&gt;é&lt;/b&gt;" in html
    assert html.index("post-%s" % m.group(2)) < html.index("post-%d" % post["id"])  # newest first
    posts = json.loads(kt.http_get(c.site, "/guestbook.json")[2])["posts"]
    assert posts[0]["name"] == evil and posts[0]["message"] == "line 1\nline 2 & <b>é</b>"

    # bad forms: 400 (JSON or text), 415, 413, 405; nothing written
    bad = [(b"message=hi", "name is missing"), (b"name=+&message=hi", "name is empty"),
           (form(name="n" * 65, message="hi"), "name is too long"),
           (form(name="n", message="m" * 1001), "message is too long"),
           (b"name=a%zz&message=hi", "bad %-escape"), (b"name=%ff&message=hi", "UTF-8"),
           (b"name=a%07&message=hi", "control characters")]
    for data, why in bad:
        st, _, body = kt.http_get(c.site, "/guestbook", method="POST", body=data, headers=JSON)
        assert st == 400 and why in json.loads(body)["error"], (data, st, body)
    st, _, body = kt.http_get(c.site, "/guestbook", method="POST", body=b"name=a&message=",
                              headers=FORM)
    assert st == 400 and body.startswith(b"400 Bad Request: the form's message is empty"), body
    st, _, _ = kt.http_get(c.site, "/guestbook", method="POST", body=b'{"name":"a"}',
                           headers={"Content-Type": "application/json"})
    assert st == 415
    st, _, _ = kt.http_get(c.site, "/guestbook", method="POST", body=b"x" * 20000, headers=FORM)
    assert st == 413
    st, h, _ = kt.http_get(c.site, "/guestbook", method="DELETE")
    assert st == 405 and h["allow"] == "GET, HEAD, POST"
    assert len(json.loads(kt.http_get(c.site, "/guestbook.json")[2])["posts"]) == 2

    # straight to the app: pipelined requests answered in order on one connection, and
    # Expect: 100-continue
    app = c.p["app"]
    with kt.Raw(app, host=APP) as r:
        body = form(name="bob", message="pipelined")
        r.send(b"GET /guestbook.json HTTP/1.1\r\nHost: x\r\n\r\n"
               b"POST /guestbook HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n"
               b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"
               b"GET /guestbook.json HTTP/1.1\r\nHost: x\r\n\r\n" % (len(body), body))
        a, b, d = r.read_response(), r.read_response(), r.read_response()
        assert (a.status, b.status, d.status) == (200, 201, 200), (a, b, d)
        assert len(json.loads(a.body)["posts"]) == 2 and len(json.loads(d.body)["posts"]) == 3
        body = form(name="carol", message="x" * 900)
        r.send(b"POST /guestbook.json HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
               b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n"
               % len(body))
        assert r.read_head(kt.time.monotonic() + 5)[1] == 100
        r.send(body)
        e = r.read_response()
        assert e.status == 201 and json.loads(e.body)["written_by"] == primary, e
        r.send(b"HEAD /guestbook HTTP/1.1\r\nHost: x\r\n\r\n")
        f = r.read_response(head=True)
        assert f.status == 200 and int(f.header("content-length")) > 500, f
        # a chunked body: 411, and the connection closes once the answer is out
        r.send(b"POST /guestbook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nname=\r\n0\r\n\r\n")
        g = r.read_response()
        assert g.status == 411 and g.header("connection") == "close", g
        assert r.closed_by_peer(), "the connection stays open after 411"

    # keel status: the db nodes' roles and lag; everything healthy
    out = subprocess.run([kt.KEEL, "status", "-c", c.conf], capture_output=True, text=True,
                         timeout=20)
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = {l.split()[0]: l for l in out.stdout.splitlines()[1:] if l.strip()}
    assert "DB" in out.stdout.splitlines()[0], out.stdout
    assert re.search(r"\bgb primary\b", rows[primary]), out.stdout
    assert re.search(r"\bgb replica lag \d+(\.\d+)? (B|KiB|MiB|GiB)\b", rows[replica]), \
        out.stdout
    assert re.search(r"gb-primary 1/2", rows["lb1"]), out.stdout
