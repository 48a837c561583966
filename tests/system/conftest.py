# SPDX-License-Identifier: MIT
"""Fixtures for keel's system tests.

`env` is the one fixture tests use: it starts keel, keel backends and tiny Python servers,
hands out ports and a temp dir, and at teardown (always, even when the test failed) stops every
process it started by PID, then fails the test if keel logged an unexpected [error] line or a
sanitizer report, crashed, or did not exit 0 on SIGTERM. Tests that expect [error] lines
whitelist them with allow_errors=[regex] or keel.allow_error(regex).

Every test has a wall-clock limit (default 120 s, `@pytest.mark.timeout(S)` to change it),
enforced with SIGALRM, since pytest-timeout is not a Debian dependency here.
"""
import os
import re
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import keeltest as kt  # noqa: E402

DEFAULT_TIMEOUT_S = 120


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): wall-clock limit for one test")


def pytest_collection_modifyitems(session, config, items):
    if not os.access(kt.KEEL, os.X_OK):
        skip = pytest.mark.skip(reason="%s not built (run make)" % kt.KEEL)
        for item in items:
            item.add_marker(skip)


class TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _wallclock_limit(request):
    m = request.node.get_closest_marker("timeout")
    limit = m.args[0] if m else DEFAULT_TIMEOUT_S

    def on_alarm(signum, frame):
        raise TestTimeout("test exceeded its %ss wall-clock limit" % limit)
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class Env:
    def __init__(self, tmp):
        self.tmp = str(tmp)
        self.keels = []
        self.backs = []
        self.tinies = []
        self.others = []    # kt.Proc objects (e.g. `keel up`)
        self.cleanups = []  # called after every process is stopped; each returns problems
        self.transport = "plain"    # "tls": env.lb's HTTP frontends bind with tls
        self.tls_ports = []
        self._tls_cert = None

    def tls_port(self, port):
        """Register port as a TLS frontend: kt's clients speak TLS to it until teardown."""
        self.tls_ports.append(port)
        kt.TLS_PORTS.add(port)

    def tls_cert(self):
        """The test certificate (cert, key), made on first use in the test's temp dir."""
        if self._tls_cert is None:
            self._tls_cert = kt.make_test_certificate(self.tmp)
        return self._tls_cert

    # ports
    def port(self):
        return kt.free_port()

    # processes
    def backend(self, name, port=None, workers=None):
        b = kt.Backend(name, port=port, workers=workers, wait=False)
        self.backs.append(b)    # registered before the wait, so a failed start is cleaned up
        b.wait_ready()
        return b

    def backends(self, n, prefix=""):
        return [self.backend(prefix + chr(ord("a") + i)) for i in range(n)]

    def restart_backend(self, b):
        """Start a new backend with b's name on b's port (b must be dead)."""
        return self.backend(b.bname, port=b.port)

    def keel(self, config, ports=(), admin=None, allow_errors=(), wait=True, env=None,
             args=(), **kw):
        """args: extra arguments of `keel run` (e.g. ["--node", "web1"]); kw: kt.Keel's
        conf (run that file; config None), wrap and name."""
        k = kt.Keel(config, self.tmp, ports=ports, admin=admin, allow_errors=allow_errors,
                    wait=False, env=env, args=args, **kw)
        self.keels.append(k)
        if wait:
            k.wait_ready()
        return k

    def lb(self, servers, balance="roundrobin", check=None, allow_errors=(), keel_env=None,
           **kw):
        """keel with one HTTP (or tcp, mode=) frontend and one backend 'web'.

        servers: list of Backend/TinyServer objects, or (name, addr[, options]) tuples.
        keel_env: extra environment of the keel process. The returned Keel has .port
        (frontend) and .admin (admin port)."""
        port, admin = self.port(), self.port()
        spec = []
        for s in servers:
            if isinstance(s, kt.Backend):
                spec.append((s.bname, s.addr))
            else:
                spec.append(s)
        tls = self.transport == "tls" and kw.get("mode", "http") == "http"
        if tls:
            kw["tls_cert"] = self.tls_cert()
            self.tls_port(port)
        cfg = kt.lb_config(port, spec, admin, balance=balance, check=check, **kw)
        k = self.keel(cfg, ports=[port], admin=admin, allow_errors=allow_errors, env=keel_env)
        k.port = port
        k.tls = tls
        return k

    def tiny(self, handler, port=None):
        t = kt.TinyServer(handler, port=port)
        self.tinies.append(t)
        return t

    def proc(self, argv, name, allow_errors=()):
        p = kt.Proc(argv, name)
        p.allow_errors = [re.compile(x) for x in allow_errors]
        self.others.append(p)
        return p

    # teardown
    def finish(self):
        problems = []
        kt.TLS_PORTS.difference_update(self.tls_ports)
        for k in self.keels:
            if k.poll() is not None and not k.stopped_by_test:
                problems.append("keel (pid %d) exited on its own with %s" % (
                    k.pid, k.returncode))
                k.stop()
            elif k.poll() is None:
                rc, killed = k.stop(timeout=8)
                if killed:
                    problems.append("keel (pid %d) did not exit within 8s of SIGTERM" % k.pid)
                elif rc != 0:
                    problems.append("keel (pid %d) exited with %s after SIGTERM" % (k.pid, rc))
        for p in self.others:
            if p.poll() is None:
                p.stop(timeout=10)
        for b in self.backs:
            if b.poll() is None:
                b.stop(timeout=5)
        for t in self.tinies:
            t.close()
        for k in self.keels:
            for line in k.unexpected_errors():
                problems.append("keel log: " + line)
        for p in self.others:
            for line in p.lines():
                if kt.SANITIZER_RE.search(line) or (
                        kt.ERROR_RE.search(line)
                        and not any(r.search(line) for r in p.allow_errors)):
                    problems.append("%s log: %s" % (p.name, line))
        for b in self.backs:
            for line in b.lines():
                if kt.SANITIZER_RE.search(line):
                    problems.append("backend %s log: %s" % (b.bname, line))
        return problems

    def dump(self):
        for k in self.keels:
            print("===== keel pid %d log (last 80 lines) =====" % k.pid)
            print(k.tail(80))
        for p in self.others:
            print("===== %s pid %d stderr/stdout =====" % (p.name, p.pid))
            print(p.tail(40))
            print("\n".join(p.out.text()[-20:]))


@pytest.fixture(params=["plain", "tls"])
def transport(request, env):
    """For a module that runs its cases over plain TCP and over TLS: a module-level autouse
    fixture asks for this one (`def _transport(transport): ...`), and env.lb's HTTP
    frontends then bind with tls in the [tls] run, their clients (kt.Raw, kt.http_get,
    kt.KeepAlive, kt.tls_connect) wrapping their sockets with Python's ssl."""
    env.transport = request.param
    return request.param


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    try:
        yield e
    finally:
        # The alarm must not fire in the middle of cleanup.
        signal.setitimer(signal.ITIMER_REAL, 0)
        problems = []
        try:
            problems = e.finish()
        finally:
            for cleanup in e.cleanups:     # e.g. network namespaces, once nothing runs there
                problems = problems + cleanup()
        e.dump()
        if problems:
            pytest.fail("teardown checks failed:\n  " + "\n  ".join(problems[:30]),
                        pytrace=False)
