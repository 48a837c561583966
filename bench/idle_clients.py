#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Idle keep-alive clients for the memory section of `make bench`.

    idle_clients.py PORT N [PATH]

Opens N connections to 127.0.0.1:PORT; each sends one keep-alive GET PATH, reads the whole
response (Content-Length or chunked is not needed: the bench's responses carry a length), and
then stays open without sending anything. At most 200 connections are being set up at a time.
When every connection has had its answer, prints "ready OK FAILED" on stdout and waits until
stdin is closed (or SIGTERM), then closes them all and exits.
"""
import asyncio
import signal
import sys

CONCURRENCY = 200


async def one(port, path, sem, keep):
    async with sem:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        try:
            writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: bench\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length:
                await asyncio.wait_for(reader.readexactly(length), 30)
            ok = head.startswith(b"HTTP/1.1 200")
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                asyncio.TimeoutError, ValueError):
            ok = False
        keep.append(writer)     # keep even a failed one open: the proxy decides to close it
        return ok


async def main(port, n, path):
    sem = asyncio.Semaphore(CONCURRENCY)
    keep = []
    results = await asyncio.gather(*(one(port, path, sem, keep) for _ in range(n)))
    ok = sum(1 for r in results if r)
    print("ready %d %d" % (ok, n - ok), flush=True)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: done.done() or done.set_result(None))
    # stdin closing (the bench is done measuring) ends the wait
    loop.add_reader(sys.stdin.fileno(), lambda: done.done() or done.set_result(None))
    await done
    for w in keep:
        w.close()


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]),
                     sys.argv[3] if len(sys.argv) > 3 else "/"))
