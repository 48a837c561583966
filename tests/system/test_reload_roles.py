# SPDX-License-Identifier: MIT
"""SIGHUP reloads every role (issue 11): a change a role can apply live is applied, one it
cannot is refused with an error naming the setting, counted in
keel_reload_refused_total{role}, and that role keeps running its configuration while the node
keeps serving.

- vrrp, on loopback (lb1 127.0.0.71, lb2 127.0.0.72, VIP 127.0.0.171; dynamic ports): a new
  priority preempts the running master; a new advert port is refused (and the priority change
  in the same file with it).
- lb: `workers` is fixed at boot: a reload that changes it is refused, the old frontends and
  backends keep serving; the same file with the old workers count is applied.
- db (real etcd and PostgreSQL 15, lb 127.0.0.131, db1 127.0.0.132, db2 127.0.0.133):
  `replication async` applies live (the primary drops synchronous_standby_names); a new
  pg_port is refused and the database keeps running.
"""
import os
import re
import subprocess

import pytest

import keeltest as kt
from dbtest import Cluster, needs_db, start_etcd

LO = {"lb1": "127.0.0.71", "lb2": "127.0.0.72"}
LO_VIP = "127.0.0.171"
VRID = 73

REFUSED_ROLE = r"reload: role %s refused the new configuration"


def refused(k, role):
    return k.metrics().get("keel_reload_refused_total", role=role)


def vrrp_config(env, admin, vport, fport, backs, vip_extra=""):
    s = "global { workers 1; admin :%d; log_level info; timeout_drain 1s; }\n" % admin
    for n, ip in LO.items():
        s += "node %s { address %s; roles lb; }\n" % (n, ip)
    s += "vip %s { nodes lb1 lb2; vrid %d; port %d; %s }\n" % (LO_VIP, VRID, vport, vip_extra)
    s += "frontend www { bind %s:%d; backend web; }\n" % (LO_VIP, fport)
    s += "backend web {\n%s}\n" % "".join("    server %s %s;\n" % (b.bname, b.addr)
                                          for b in backs)
    return s


def start_lb(env, conf, node, admin, allow_errors=()):
    k = env.keel(None, admin="%s:%d" % (LO[node], admin), args=["--node", node], conf=conf,
                 wait=False, name="keel-" + node, allow_errors=list(allow_errors))
    k.wait_ready()
    return k


def router(k):
    for r in k.status()["vrrp"]:
        if r["vrid"] == VRID:
            return r
    raise AssertionError("no vrid %d in /status" % VRID)


def write(path, text):
    with open(path + ".new", "w") as f:
        f.write(text)
    os.replace(path + ".new", path)


@pytest.mark.timeout(60)
def test_vip_priority_applies_live_and_preempts(env):
    """lb2 (priority 150, backup) reloads with `priority lb2 250; advert 100ms`: its /status
    and metrics show the new priority and interval, it takes over from lb1 (preempt is on),
    and the VIP serves through it. Nothing is refused."""
    backs = env.backends(1)
    admin, vport, fport = env.port(), env.port(), env.port()
    conf = os.path.join(env.tmp, "lo.conf")
    write(conf, vrrp_config(env, admin, vport, fport, backs))
    k1 = start_lb(env, conf, "lb1", admin)
    k2 = start_lb(env, conf, "lb2", admin)
    kt.deadline_poll(lambda: (router(k1)["state"], router(k2)["state"]) == ("master", "backup"),
                     5, what="lb1 master, lb2 backup")
    assert router(k2)["priority"] == 150
    write(conf, vrrp_config(env, admin, vport, fport, backs,
                            "priority lb2 250; advert 100ms;"))
    mark = k2.reload()
    k2.log.wait(r"configuration reloaded", timeout=5, start=mark)
    k2.log.wait(r"vrrp %d: reload: priority 250, advert 100 ms, preempt on" % VRID, timeout=5,
                start=mark)
    r = router(k2)
    assert (r["priority"], r["advert_ms"]) == (250, 100), r
    assert k2.metrics().get("keel_vrrp_priority", vrid=str(VRID)) == 250
    kt.deadline_poll(lambda: (router(k1)["state"], router(k2)["state"]) == ("backup", "master"),
                     5, what="lb2 preempts lb1")
    st, _, _ = kt.http_get("%s:%d" % (LO_VIP, fport), "/x")
    assert st == 200
    assert refused(k2, "vrrp") == 0
    assert k2.metrics().get("keel_config_reloads_total") == 1


@pytest.mark.timeout(60)
def test_vip_port_change_refused_role_keeps_running(env):
    """A new advert `port` cannot change while the routers run: the reload of lb1 says so,
    names the setting, counts keel_reload_refused_total{role="vrrp"}, and applies nothing of
    the vip block (its priority change neither); lb1 stays master and serves the VIP. The lb
    role takes its part of the same file (a second backend server)."""
    backs = env.backends(2)
    admin, vport, fport = env.port(), env.port(), env.port()
    conf = os.path.join(env.tmp, "lo.conf")
    write(conf, vrrp_config(env, admin, vport, fport, backs[:1]))
    k1 = start_lb(env, conf, "lb1", admin,
                  allow_errors=[r"port cannot change while keel runs", REFUSED_ROLE % "vrrp"])
    kt.deadline_poll(lambda: router(k1)["state"] == "master", 5, what="lb1 master")
    write(conf, vrrp_config(env, admin, env.port(), fport, backs, "priority lb1 90;"))
    mark = k1.reload()
    k1.log.wait(r"\[error\] .*reload: vip vrid %d: port cannot change while keel runs "
                r"\(restart it\)" % VRID, timeout=5, start=mark)
    k1.log.wait(REFUSED_ROLE % "vrrp", timeout=5, start=mark)
    k1.log.wait(r"configuration reloaded", timeout=5, start=mark)
    assert refused(k1, "vrrp") == 1
    assert refused(k1, "lb") == 0
    st = k1.status()
    assert st["generations"]["vrrp"] < st["generation"] == st["generations"]["lb"], st
    r = router(k1)
    assert (r["state"], r["priority"]) == ("master", 200), r
    kt.deadline_poll(lambda: len(k1.status()["backends"][0]["servers"]) == 2, 5,
                     what="the lb's part applied")
    seen = set()
    for _ in range(10):
        st, h, body = kt.http_get("%s:%d" % (LO_VIP, fport), "/x")
        assert st == 200
        seen.add(kt.server_of(h, body))
    assert seen == {"a", "b"}, seen


def keel_status(conf):
    r = subprocess.run([kt.KEEL, "status", "-c", conf], capture_output=True, text=True,
                       timeout=30)
    return r.returncode, r.stdout + r.stderr


@pytest.mark.timeout(60)
def test_workers_change_refused_lb_keeps_serving(env):
    """workers 2 -> 3 with a new server set: refused (named, counted under role lb), the lb
    keeps its two workers and its old server, and says which generation it runs: /status
    "generations" and keel_role_generation{role="lb"} stay at the first while the node's
    "generation" is the file it read, and `keel status` names the lag. The same file with
    workers 2 is applied: every role runs the node's generation again."""
    a, b = env.backends(2)
    port, admin = env.port(), env.port()
    k = env.keel(kt.lb_config(port, [("a", a.addr)], admin, workers=2), ports=[port],
                 admin=admin, allow_errors=[r"workers 2 -> 3 cannot change", REFUSED_ROLE % "lb"])
    first = k.status()["generation"]
    assert set(k.status()["generations"].values()) == {first}, k.status()["generations"]
    mark = k.reload(kt.lb_config(port, [("b", b.addr)], admin, workers=3))
    k.log.wait(r"\[error\] .*reload: workers 2 -> 3 cannot change while keel runs \(restart "
               r"it\): the lb keeps running generation %d" % first, timeout=5, start=mark)
    k.log.wait(r"reload: role lb refused the new configuration .* \(generation %d\)" % first,
               timeout=5, start=mark)
    k.log.wait(r"configuration reloaded", timeout=5, start=mark)
    assert refused(k, "lb") == 1
    st = k.status()
    assert st["workers"] == 2
    assert [s["name"] for s in st["backends"][0]["servers"]] == ["a"]
    assert st["generation"] > first
    assert st["generations"]["lb"] == first, st["generations"]
    assert all(g == st["generation"] for r, g in st["generations"].items() if r != "lb"), \
        st["generations"]
    m = k.metrics()
    assert m.get("keel_role_generation", role="lb") == first
    assert m.get("keel_role_generation", role="app") == st["generation"]
    assert m.get("keel_config_generation") == st["generation"]
    rc, out = keel_status(k.conf)
    assert rc == 1, out
    assert re.search(r"^-: role lb runs generation %d, not %d \(the last file read\): it "
                     r"refused a reload" % (first, st["generation"]), out, re.M), out
    for _ in range(6):
        code, h, body = kt.http_get(port, "/x")
        assert (code, kt.server_of(h, body)) == (200, "a")
    mark = k.reload(kt.lb_config(port, [("b", b.addr)], admin, workers=2))
    k.log.wait(r"configuration reloaded", timeout=5, start=mark)
    kt.deadline_poll(lambda: kt.server_of(*kt.http_get(port, "/x")[1:]) == "b", 5,
                     what="the new server set")
    assert refused(k, "lb") == 1
    st = k.status()
    assert set(st["generations"].values()) == {st["generation"]}, st
    rc, out = keel_status(k.conf)
    assert rc == 0 and "refused a reload" not in out, out


LB = ("lb1", "127.0.0.131")
DBS = [("db1", "127.0.0.132"), ("db2", "127.0.0.133")]


@needs_db
@pytest.mark.timeout(180)
def test_database_reload_live_and_refused(env):
    """replication async applies on the running primary (synchronous_standby_names becomes
    empty); then a new pg_port is refused on every db node, named and counted, and PostgreSQL
    keeps running on the old port."""
    etcd = start_etcd(env)
    c = Cluster(env, etcd, DBS, LB)
    p, (r,) = c.start_up(sync=True)
    sync_names = "SELECT current_setting('synchronous_standby_names')"
    assert c.su_query(p, sync_names)[0][0] != ""
    with open(c.conf) as f:
        text = f.read()
    write(c.conf, text.replace("    pg_port", "    replication async;\n    pg_port"))
    mark = c.nodes[p].reload()
    c.nodes[p].log.wait(r"reload: max_lag \d+, replication asynchronous", timeout=5, start=mark)
    kt.deadline_poll(lambda: c.su_query(p, sync_names)[0][0] == "", 10,
                     what="synchronous_standby_names emptied by the primary")
    assert refused(c.nodes[p], "db") == 0
    write(c.conf, text.replace("pg_port %d;" % c.pg, "pg_port %d;" % env.port()))
    for n in (p, r):
        c.nodes[n].allow_error(r"database main: pg_port cannot change while keel runs")
        c.nodes[n].allow_error(REFUSED_ROLE % "db")
        mark = c.nodes[n].reload()
        c.nodes[n].log.wait(r"\[error\] .*reload: database main: pg_port cannot change while "
                            r"keel runs \(restart it\)", timeout=5, start=mark)
        c.nodes[n].log.wait(r"configuration reloaded", timeout=5, start=mark)
        assert refused(c.nodes[n], "db") == 1
    c.wait_ready(p, sync=False, timeout=30)
    assert c.su_query(p, "SELECT 1")[0][0] == 1
    assert c.su_query(p, sync_names)[0][0] == "", "the refused file's replication applied"
