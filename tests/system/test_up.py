# SPDX-License-Identifier: MIT
"""`keel up`: the demo answers through its LB from three backends, and Ctrl-C leaves nothing."""
import collections
import os
import re
import signal
import time

import pytest

import keeltest as kt


@pytest.mark.timeout(60)
def test_keel_up_serves_and_sigint_stops_everything(env):
    up = env.proc([kt.KEEL, "up"], "keel-up")
    kids = []
    try:
        # the URL line, on stdout (or stderr)
        rx = r"keel up: http://127\.0\.0\.1:\d+/"

        def url_line():
            hits = up.out.find(rx) or up.log.find(rx)
            return hits[0][1] if hits else None
        line = kt.deadline_poll(url_line, 15, what="the 'keel up: http://...' line")
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", line).group(1))
        seen = collections.Counter()

        def three():
            st, h, body = kt.http_get(port, "/", timeout=3)
            if st == 200:
                seen[kt.server_of(h, body)] += 1
            return len(seen) >= 3
        kt.deadline_poll(three, 15, interval=0.01, what="answers from three backends")
        for _ in range(30):
            st, h, body = kt.http_get(port, "/")
            assert st == 200, (st, body)
            seen[kt.server_of(h, body)] += 1
        assert len(seen) == 3, dict(seen)

        kids = kt.proc_descendants(up.pid)
        assert len(kids) >= 3, "keel up has %d child processes: %s" % (len(kids), kids)
        up.signal(signal.SIGINT)
        up.stopped_by_test = True
        rc = up.wait(15)
        assert rc is not None, "keel up still running 15s after SIGINT"
        left = []
        end = time.monotonic() + 5
        while time.monotonic() < end:
            left = [p for p in kids if kt.pid_running(p)]
            if not left:
                break
            time.sleep(0.05)
        assert left == [], "processes left after SIGINT: %s" % left
        assert rc == 0, "keel up exit code %s after SIGINT" % rc
        assert not kt.port_accepts(port)
    finally:
        for p in kids:
            if kt.pid_running(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
