# SPDX-License-Identifier: MIT
"""The application tier (role app): supervised processes and the built-in demo application.

A small Python HTTP application (written to the test's tmp dir) runs under keel's
supervisor: its environment, working directory and output, restarts after kill -9 with
backoff, crash loops, graceful and forced stops, health checks, several processes, reloads;
then `run builtin demo`.
"""
import json
import os
import re
import signal
import subprocess
import time

import pytest

import keeltest as kt

APP_PY = r'''
import json, os, signal, subprocess, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer

mode = sys.argv[1] if len(sys.argv) > 1 else "serve"
child = None
if mode == "child":
    # a process of its own group: a stop must reach it too
    child = subprocess.Popen(["sleep", "1000"])
print("app started pid=%d port=%s" % (os.getpid(), os.environ["PORT"]), flush=True)
print("a line on stderr", file=sys.stderr, flush=True)


def on_term(signum, frame):
    print("got SIGTERM", flush=True)
    sys.exit(0)


if mode == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, on_term)


healthz = [0]


class H(BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200
        if self.path == "/healthz" and os.path.exists("sick-%s" % os.environ["PORT"]):
            code = 500
        if self.path == "/healthz" and mode in ("sick-after", "hang-after"):
            # healthy for 3 checks, then 500 forever, or no answer at all (alive, stuck)
            healthz[0] += 1
            if healthz[0] > 3 and mode == "sick-after":
                code = 500
            while healthz[0] > 3 and mode == "hang-after":
                time.sleep(1)
        body = json.dumps({
            "pid": os.getpid(), "port": os.environ.get("PORT"), "host": os.environ.get("HOST"),
            "app": os.environ.get("KEEL_APP"), "node": os.environ.get("KEEL_NODE"),
            "greeting": os.environ.get("GREETING"), "cwd": os.getcwd(),
            "child": child.pid if child else None}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


HTTPServer((os.environ["HOST"], int(os.environ["PORT"])), H).serve_forever()
'''


def write_app(tmp):
    d = os.path.join(tmp, "appdir")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "app.py"), "w") as f:
        f.write(APP_PY)
    return d


def consecutive_ports(n):
    """n consecutive free loopback ports, reserved in the harness's allocator."""
    for _ in range(200):
        base = kt.free_port()
        rest = [base + i for i in range(1, n)]
        with kt.PORTS._lock:
            ok = all(p not in kt.PORTS._given and kt.PORTS._free(p) for p in rest)
            if ok:
                kt.PORTS._given.update(rest)
                return base
    raise RuntimeError("no %d consecutive free ports" % n)


def config(admin, apps, drain="2s"):
    return """global {
    workers 1;
    admin 127.0.0.1:%d;
    timeout_drain %s;
}
%s
""" % (admin, drain, apps)


def app_block(name, port, run, extra=""):
    return "app %s {\n    listen 127.0.0.1:%d;\n    run %s;\n%s}\n" % (name, port, run, extra)


def start(env, apps, args=(), allow_errors=()):
    admin = env.port()
    k = env.keel(config(admin, apps), admin=admin, args=args, allow_errors=allow_errors)
    return k


def app_status(k, name):
    for a in k.status()["apps"]:
        if a["name"] == name:
            return a
    return None


def procs(k, name):
    a = app_status(k, name)
    return a["processes"] if a else []


def wait_state(k, name, index, state, timeout=10.0, **extra):
    def ok():
        p = procs(k, name)
        if len(p) <= index or p[index]["state"] != state:
            return None
        if any(p[index].get(key) != v for key, v in extra.items()):
            return None
        return p[index]
    return kt.deadline_poll(ok, timeout, what="app %s/%d in state %s %s" % (
        name, index, state, extra))


def get_json(port, path="/"):
    st, _, body = kt.http_get(port, path, timeout=3)
    assert st == 200, (st, body)
    return json.loads(body)


def wait_gone(pids, timeout=5.0):
    kt.deadline_poll(lambda: not any(kt.pid_running(p) for p in pids), timeout,
                     what="pids %s to be gone" % pids)


PY = '"/usr/bin/python3 app.py%s"'


# --------------------------------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_process_gets_port_env_directory_and_its_output_is_logged(env):
    d = write_app(env.tmp)
    port = env.port()
    k = start(env, app_block("web", port, PY % "", "    directory %s;\n    env GREETING hi;\n"
                             % d), args=["--node", "app1"])
    kt.wait_port(port, 10)
    info = get_json(port)
    assert info["port"] == str(port)
    assert info["host"] == "127.0.0.1"
    assert info["app"] == "web"
    assert info["node"] == "app1"
    assert info["greeting"] == "hi"
    assert info["cwd"] == d
    pid = info["pid"]
    # stdout and stderr lines, under the app's name and pid
    k.log.wait(r"\[info\] ctl app web\[%d\]: app started pid=%d port=%d$" % (pid, pid, port))
    k.log.wait(r"\[info\] ctl app web\[%d\]: a line on stderr$" % pid)
    p = wait_state(k, "web", 0, "running", pid=pid)
    assert p["port"] == port and p["restarts"] == 0 and p["last_exit"] is None
    assert k.metrics().get("keel_app_process_up", app="web", process="0") == 1


@pytest.mark.timeout(60)
def test_three_processes_on_three_ports(env):
    d = write_app(env.tmp)
    base = consecutive_ports(3)
    k = start(env, app_block("web", base, PY % "", "    directory %s;\n    processes 3;\n" % d))
    pids = set()
    for i in range(3):
        kt.wait_port(base + i, 10)
        info = get_json(base + i)
        assert info["port"] == str(base + i)
        pids.add(info["pid"])
    assert len(pids) == 3
    ps = procs(k, "web")
    assert [p["port"] for p in ps] == [base, base + 1, base + 2]
    assert {p["pid"] for p in ps} == pids
    m = k.metrics()
    assert m.get("keel_app_process_up", app="web") == 3
    kt.check_exposition(m.text)  # the app families are valid Prometheus text too


@pytest.mark.timeout(60)
def test_kill9_restarts_with_backoff(env):
    d = write_app(env.tmp)
    port = env.port()
    k = start(env, app_block("web", port, PY % "", "    directory %s;\n"
                             "    restart_backoff 400ms 5s;\n" % d))
    kt.wait_port(port, 10)
    pid1 = get_json(port)["pid"]
    mark = k.log.mark()
    os.kill(pid1, signal.SIGKILL)
    t_exit, _ = k.log.wait(r"app web/0: pid %d exited \(killed by signal 9 \(SIGKILL\)\) after "
                           r"[0-9.]+m?s; restarting in 400ms" % pid1, start=mark)
    t_start, line = k.log.wait(r"app web/0: backoff -> starting \(pid (\d+)", start=mark)
    assert t_start - t_exit >= 0.3, "restarted %.3fs after the exit" % (t_start - t_exit)
    pid2 = int(re.search(r"pid (\d+)", line).group(1))
    assert pid2 != pid1
    kt.deadline_poll(lambda: get_json(port)["pid"] == pid2, 10, what="the new process")
    p = wait_state(k, "web", 0, "running", pid=pid2)
    assert p["restarts"] == 1
    assert p["last_exit"] == "killed by signal 9 (SIGKILL)"
    # a second quick exit waits twice as long
    mark = k.log.mark()
    os.kill(pid2, signal.SIGKILL)
    k.log.wait(r"app web/0: pid %d exited .*; restarting in 800ms" % pid2, start=mark)
    wait_state(k, "web", 0, "running", restarts=2)
    assert k.metrics().get("keel_app_restarts_total", app="web") == 2
    assert not kt.pid_running(pid1) and not kt.pid_running(pid2)


@pytest.mark.timeout(60)
def test_crash_loop_is_reported_in_the_log_and_status(env):
    k = start(env, app_block("bad", env.port(), '"/usr/bin/python3 -c \\"import sys; '
                             'print(\'dying\'); sys.exit(3)\\""',
                             "    restart_backoff 50ms 200ms;\n"),
              allow_errors=[r"\[error\] ctl app bad/0: crash loop"])
    t, line = k.log.wait(r"\[error\] ctl app bad/0: crash loop: 5 exits within 60s, the last: "
                         r"exit status 3", timeout=15)
    k.log.wait(r"app bad\[\d+\]: dying")
    p = wait_state(k, "bad", 0, "crashloop", crashloop=True)
    assert p["last_exit"] == "exit status 3"
    assert p["restarts"] >= 4
    assert k.metrics().get("keel_app_crashloop", app="bad", process="0") == 1
    # still restarting, but the episode is reported once
    n = p["restarts"]
    kt.deadline_poll(lambda: procs(k, "bad")[0]["restarts"] >= n + 3, 10, what="more restarts")
    assert len(k.log.find(r"crash loop")) == 1
    # and in `keel status`, which exits 1
    r = subprocess.run([kt.KEEL, "status", "-c", k.conf], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 1, r.stdout + r.stderr
    row = r.stdout.splitlines()[1].split()
    assert row[:4] == ["-", "-", "all", "up"] and row[-4:] == ["0/1", "CRASHLOOP", "-", "-"], \
        r.stdout   # ... APPS HEALTHY, DB, VRRP
    assert re.search(r"^-: app bad/0 \(pid \d+\) is \w+(, unhealthy)?, IN A CRASH LOOP; check: none; "
                     r"restarts \d+; last exit: exit status 3$", r.stdout, re.M), r.stdout


@pytest.mark.timeout(60)
def test_sigterm_of_keel_stops_the_processes_and_their_groups(env):
    d = write_app(env.tmp)
    base = consecutive_ports(2)
    k = start(env, app_block("web", base, PY % " child", "    directory %s;\n    processes 2;\n"
                             % d))
    pids, kids = [], []
    for i in range(2):
        kt.wait_port(base + i, 10)
        info = get_json(base + i)
        pids.append(info["pid"])
        kids.append(info["child"])
    assert all(kt.pid_running(p) for p in pids + kids)
    rc, killed = k.stop(timeout=10)
    assert not killed and rc == 0, (rc, killed)
    for pid in pids:
        assert k.log.find(r"app web\[%d\]: got SIGTERM" % pid), k.tail()
        assert k.log.find(r"app web/\d: stopping -> stopped \(pid %d exit status 0\)" % pid)
    # the `sleep` children were in the processes' groups: gone too
    wait_gone(pids + kids)


@pytest.mark.timeout(60)
def test_process_ignoring_sigterm_is_killed_after_stop_timeout(env):
    d = write_app(env.tmp)
    port = env.port()
    k = start(env, app_block("stubborn", port, PY % " ignore-term",
                             "    directory %s;\n    stop_timeout 1s;\n" % d))
    kt.wait_port(port, 10)
    pid = get_json(port)["pid"]
    t0 = time.monotonic()
    rc, killed = k.stop(timeout=10)
    elapsed = time.monotonic() - t0
    assert not killed and rc == 0, (rc, killed)
    assert elapsed >= 0.9, "keel exited %.2fs after SIGTERM, before stop_timeout" % elapsed
    assert k.log.find(r"app stubborn/0: pid %d still running 1\.0s after SIGTERM: sending "
                      r"SIGKILL" % pid), k.tail()
    assert k.log.find(r"stopping -> stopped \(pid %d killed by signal 9 \(SIGKILL\)\)" % pid)
    wait_gone([pid])


@pytest.mark.timeout(60)
def test_one_failed_health_check_below_fall_changes_nothing(env):
    d = write_app(env.tmp)
    base = consecutive_ports(2)
    k = start(env, app_block("web", base, PY % "", "    directory %s;\n    processes 2;\n"
                             "    check http path /healthz interval 300ms timeout 1s rise 1 "
                             "fall 3;\n" % d))
    for i in range(2):
        wait_state(k, "web", i, "running", healthy=True)
    m = k.metrics()
    assert m.get("keel_app_process_healthy", app="web", process="1") == 1
    # one bad probe (fall 3) is not enough to restart it
    pid = procs(k, "web")[1]["pid"]
    sick = os.path.join(d, "sick-%d" % (base + 1))
    open(sick, "w").close()
    kt.deadline_poll(lambda: procs(k, "web")[1]["check"] == "status 500", 5,
                     what="a failed probe of web/1")
    os.unlink(sick)
    kt.deadline_poll(lambda: procs(k, "web")[1]["check"] == "status 200", 5,
                     what="a good probe of web/1 again")
    p = procs(k, "web")[1]
    assert p["pid"] == pid and p["restarts"] == 0 and p["healthy"] is True, p
    assert procs(k, "web")[0]["healthy"] is True


@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", ["sick-after", "hang-after"])
def test_process_failing_its_health_check_is_restarted_with_backoff(env, mode):
    """Issue 10: a process that runs but keeps failing its health check (500 forever, or no
    answer while alive) was marked unhealthy and left running forever. After `fall` failed
    checks it is restarted (SIGTERM, a new PID) with the backoff of a crash, and the reason is
    in the log, in /status and in `keel status`."""
    d = write_app(env.tmp)
    port = env.port()
    k = start(env, app_block("web", port, PY % (" " + mode),
                             "    directory %s;\n    restart_backoff 300ms 5s;\n"
                             "    stop_timeout 1s;\n"
                             "    check http path /healthz interval 200ms timeout 400ms rise 1 "
                             "fall 2;\n" % d),
              allow_errors=[r"crash loop"])
    why = "status 500" if mode == "sick-after" else "timeout"
    p = wait_state(k, "web", 0, "running", healthy=True)
    pid1 = p["pid"]
    k.log.wait(r"\[warn\] ctl app web/0: pid %d is unhealthy: %s \(2 failed checks\): "
               r"restarting it" % (pid1, why), timeout=10)
    k.log.wait(r"app web/0: running -> restarting \(unhealthy: %s; SIGTERM sent to pid %d"
               % (why, pid1), timeout=5)
    last = r"restarted: unhealthy \(%s\), exit status 0" % why
    k.log.wait(r"app web/0: pid %d exited \(%s\) after [0-9.]+m?s; restarting in 300ms"
               % (pid1, last), timeout=5)
    p = wait_state(k, "web", 0, "running", healthy=True)
    assert p["pid"] != pid1 and p["restarts"] == 1, p
    assert re.fullmatch(last, p["last_exit"]), p
    assert not kt.pid_running(pid1)
    pid2 = p["pid"]
    # the same backoff as a crash: the second restart soon after waits twice as long
    k.log.wait(r"app web/0: pid %d exited \(%s\) after [0-9.]+m?s; restarting in 600ms"
               % (pid2, last), timeout=10)
    assert k.metrics().get("keel_app_restarts_total", app="web") >= 1

    # keel status: the process is unhealthy (restarting, backoff or starting again) and says why
    def status_line():
        r = subprocess.run([kt.KEEL, "status", "-c", k.conf], capture_output=True, text=True,
                           timeout=20)
        return re.search(r"^-: app web/0 \(pid \d+\) is \w+(, unhealthy)?; check: .*; restarts "
                         r"[1-9]\d*; last exit: %s$" % last, r.stdout, re.M)
    kt.deadline_poll(status_line, 20, interval=0.05, what="keel status showing the restart")


@pytest.mark.timeout(60)
def test_reload_restarts_changed_apps_only(env):
    d = write_app(env.tmp)
    pa, pb = env.port(), env.port()
    admin = env.port()
    apps = (app_block("a", pa, PY % "", "    directory %s;\n" % d) +
            app_block("b", pb, PY % "", "    directory %s;\n    env GREETING one;\n" % d))
    k = env.keel(config(admin, apps), admin=admin)
    kt.wait_port(pa, 10)
    kt.wait_port(pb, 10)
    a1, b1 = get_json(pa)["pid"], get_json(pb)["pid"]
    apps2 = (app_block("a", pa, PY % "", "    directory %s;\n" % d) +
             app_block("b", pb, PY % "", "    directory %s;\n    env GREETING two;\n" % d))
    mark = k.reload(config(admin, apps2))
    k.log.wait(r"configuration reloaded", start=mark)
    kt.deadline_poll(lambda: get_json(pb)["greeting"] == "two", 10, what="b restarted")
    assert get_json(pa)["pid"] == a1
    assert not kt.pid_running(b1)
    # removing an app stops it
    mark = k.reload(config(admin, app_block("a", pa, PY % "", "    directory %s;\n" % d)))
    k.log.wait(r"app b removed", start=mark)
    kt.wait_port_closed(pb)
    assert [a["name"] for a in k.status()["apps"]] == ["a"]
    assert get_json(pa)["pid"] == a1


@pytest.mark.timeout(30)
def test_node_without_the_app_role_runs_no_app(env):
    port = env.port()
    apps = ("node lb1 { address 127.0.0.1; roles lb; }\n" +
            app_block("web", port, "builtin demo"))
    k = start(env, apps, args=["--node", "lb1"])
    k.log.wait(r"node lb1 does not have the app role: running none of the 1 apps")
    assert k.status()["apps"] == []
    assert not kt.port_accepts(port)


@pytest.mark.timeout(60)
def test_builtin_demo(env):
    port = env.port()
    k = start(env, app_block("shop", port, "builtin demo",
                             "    check http path /healthz interval 200ms rise 1;\n"),
              args=["--node", "app7"])
    kt.wait_port(port, 10)
    wait_state(k, "shop", 0, "running", healthy=True)
    st, h, body = kt.http_get(port, "/", headers={"X-Served-By": "web3"})
    assert st == 200 and h["content-type"].startswith("text/html"), (st, h)
    page = body.decode()
    assert '<td id="app-node">app7</td>' in page, page
    assert '<td id="web-node">web3</td>' in page, page
    assert '<td id="app">shop</td>' in page
    assert h["x-app-node"] == "app7"
    # HTML is escaped
    _, _, body = kt.http_get(port, "/", headers={"X-Served-By": "<b>x</b>"})
    assert "&lt;b&gt;x&lt;/b&gt;" in body.decode() and "<b>x" not in body.decode()
    # JSON, on a keep-alive connection; the counter counts this process's requests
    c = kt.KeepAlive(port)
    try:
        st, h, body = c.request("/api/info", headers={"X-Served-By": "web3"})
        assert st == 200 and h["content-type"] == "application/json"
        info = json.loads(body)
        assert info["app_node"] == "app7" and info["web_node"] == "web3"
        assert info["app"] == "shop" and info["listen"] == "127.0.0.1:%d" % port
        assert info["uptime_s"] >= 0
        st, _, body = c.request("/api/info")
        info2 = json.loads(body)
        assert info2["requests"] == info["requests"] + 1
        assert info2["web_node"] is None and info2["pid"] == info["pid"]
        st, _, body = c.request("/healthz")
        assert (st, body) == (200, b"ok\n")
        st, h, body = c.request("/", method="HEAD")
        assert st == 200 and body == b"" and int(h["content-length"]) > 100
        st, _, _ = c.request("/nope")
        assert st == 404
    finally:
        c.close()
    st, h, _ = kt.http_get(port, "/", method="POST", body=b"x=1")
    assert st == 405 and h["allow"] == "GET, HEAD"
    st, _, _ = kt.http_get(port, "/api/info", method="DELETE")
    assert st == 405
    k.log.wait(r"app shop\[\d+\]: demo-app app7: app shop listening on 127\.0\.0\.1:%d" % port)
    assert procs(k, "shop")[0]["pid"] == info["pid"]
