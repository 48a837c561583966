# SPDX-License-Identifier: MIT
"""Failover under load: idempotent requests see no error when a server dies."""
import collections
import os
import re
import shutil
import socket
import struct
import threading
import time

import pytest

import keeltest as kt

CHECK = "http method GET path /healthz status 200-399 interval 200ms timeout 200ms rise 2 fall 2"
THREADS = 4
PER_THREAD = 2000
LOAD_DEADLINE_S = 60


class Load:
    """THREADS client threads, PER_THREAD GETs each on one keep-alive connection.
    Any failure (status != 200, reset, timeout, closed connection) counts as an error."""

    def __init__(self, port, path="/"):
        self.port = port
        self.path = path
        self.done = 0
        self.errors = []
        self.servers = collections.Counter()
        self.lock = threading.Lock()
        self.deadline = time.monotonic() + LOAD_DEADLINE_S
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(THREADS)]

    def start(self):
        for t in self.threads:
            t.start()

    def run(self, idx):
        conn = kt.KeepAlive(self.port, timeout=10)
        for i in range(PER_THREAD):
            if time.monotonic() > self.deadline:
                with self.lock:
                    self.errors.append("thread %d: load deadline reached at %d" % (idx, i))
                break
            try:
                st, h, body = conn.request(self.path)
                ok = st == 200
                who = kt.server_of(h, body)
            except Exception as e:  # noqa: BLE001 - every failure is a test failure
                ok, st, who = False, repr(e), None
                conn.close()
                conn = kt.KeepAlive(self.port, timeout=10)
            with self.lock:
                self.done += 1
                if ok:
                    self.servers[who] += 1
                else:
                    self.errors.append("thread %d request %d: %s" % (idx, i, st))
        conn.close()

    def wait_done(self, n):
        kt.deadline_poll(lambda: self.done >= n, LOAD_DEADLINE_S, interval=0.01,
                         what="%d requests done" % n)

    def join(self):
        for t in self.threads:
            t.join(LOAD_DEADLINE_S + 15)
        assert not any(t.is_alive() for t in self.threads), "load threads hung"


@pytest.mark.timeout(150)
@pytest.mark.parametrize("with_check", [True, False], ids=["checked", "passive"])
def test_kill9_under_load_no_errors(env, with_check):
    bs = env.backends(3)
    k = env.lb(bs, check=CHECK if with_check else None,
               backend_extra="    retries 1;\n    timeout_connect 1s;\n")
    if with_check:
        for b in bs:
            k.wait_server_state("web", b.bname, up=True)
    load = Load(k.port)
    load.start()
    total = THREADS * PER_THREAD
    load.wait_done(total // 2)
    bs[1].kill9()
    served_by_b_at_kill = load.servers["b"]
    load.join()
    print("servers:", dict(load.servers), "errors:", len(load.errors))
    assert load.errors == [], "%d errors, first: %s" % (len(load.errors), load.errors[:10])
    assert load.done == total
    assert sum(load.servers.values()) == total
    # b served before the kill, and the survivors took over after it.
    assert served_by_b_at_kill > 0
    assert load.servers["a"] > total // 3 and load.servers["c"] > total // 3


def _close_after_head(log):
    """A server that reads one request head, records its request line, and closes."""
    def handler(conn):
        head, _ = kt.read_http_head(conn)
        if head is not None:
            log.append(head.split(b"\r\n", 1)[0].decode())
    return handler


@pytest.mark.parametrize("method,retried", [("GET", True), ("POST", False)])
def test_only_idempotent_requests_retried(env, method, retried):
    """A request that reached a server which then closed without answering is retried on
    another server only if it is idempotent: a POST may have had its effect already."""
    seen = []
    s1, s2 = env.tiny(_close_after_head(seen)), env.tiny(_close_after_head(seen))
    k = env.lb([("s1", s1.addr), ("s2", s2.addr)],
               backend_extra="    retries 1;\n", allow_errors=[r"."])
    body = b"x=1" if method == "POST" else None
    st, _, resp = kt.http_get(k.port, "/once", method=method, body=body, timeout=10)
    assert st == 502, (st, resp)
    lines = kt.deadline_poll(lambda: list(seen), 2, what="the request at a server")
    assert all(l == "%s /once HTTP/1.1" % method for l in lines), lines
    assert len(lines) == (2 if retried else 1), "%s reached servers %d times: %s" % (
        method, len(lines), lines)


SEND_DELAY_S = 2.0   # strace holds each of keel's sendto() this long before it runs
RESET_AFTER_S = 0.5  # b resets its connections this long after accepting them


def _reset_later(conn):
    """Server b: accept, wait, reset. keel's connect() has succeeded long before."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    time.sleep(RESET_AFTER_S)


def _traced(pid):
    tasks = os.listdir("/proc/%d/task" % pid)
    for t in tasks:
        with open("/proc/%d/task/%s/status" % (pid, t)) as f:
            if "TracerPid:\t0\n" in f.read():
                return False
    return True


def _retry_over_pooled_connection(env):
    """One run of the scenario: (status or exception, keel's retry line, its log since)."""
    a = env.backend("a")
    b = env.tiny(_reset_later)
    k = env.lb([a, ("b", b.addr)], workers=1, log_level="debug",
               backend_extra="    retries 1;\n    timeout_server 60s;\n")
    # Round robin starts with a: this request leaves a pooled connection to a behind.
    assert kt.http_get(k.port, "/first", timeout=10)[0] == 200
    # Hold every sendto() of keel: the request's send to b then runs after b's reset, and
    # fails (connect() itself succeeded: its result is read before b resets).
    st = env.proc(["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=sendto",
                   "-e", "inject=sendto:delay_enter=%d" % int(SEND_DELAY_S * 1e6),
                   "-p", str(k.pid)], "strace")
    try:
        kt.deadline_poll(lambda: _traced(k.pid), 10, what="strace attached to keel")
        mark = k.log.mark()
        try:
            res = kt.http_get(k.port, "/second", timeout=4 * SEND_DELAY_S + 10)[0]
        except Exception as e:  # noqa: BLE001 - the timeout is the bug
            res = repr(e)
    finally:
        st.stop(timeout=10)  # detach before keel exits: LeakSanitizer needs ptrace then
    kt.deadline_poll(lambda: not _traced(k.pid), 10, what="strace detached from keel")
    _, why = k.log.wait(r"retrying 127\.0\.0\.1 on another server", timeout=5, start=mark)
    return res, why, "\n".join(k.lines()[mark:])


@pytest.mark.timeout(120)
def test_regression_retry_on_pooled_connection_after_failed_send_is_sent(env):
    """The send of a GET to b failed (b reset the connection just after connect() succeeded);
    the retry took a pooled connection to a, stayed in the exchange state, and hp_step
    stopped there: the request was never sent to a and the client waited for timeout_server
    (test_health.py's several-clients test timed out now and then on it)."""
    if shutil.which("strace") is None:
        pytest.fail("strace is not installed (scripts/deps.sh installs it)")
    for attempt in range(3):
        res, why, log = _retry_over_pooled_connection(env)
        assert res == 200, "request retried over a pooled connection: %s\n%s" % (res, log)
        if why.endswith("after: cannot send the request to the server"):
            assert re.search(r"\(reused connection\)", log[log.index(why):]), log
            return
        # b's reset came before keel read connect()'s result (a stalled machine): that is
        # the connect failure path, not the one under test; run the scenario again.
        print("attempt %d did not fail the send: %s" % (attempt, why))
    pytest.fail("the send to b never failed after connect() in 3 attempts")
