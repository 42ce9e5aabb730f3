#!/usr/bin/env python3
"""Opens N idle SSE streams on a gravity bridge and reports its memory per stream.

Run by bench/idle_streams.sh, which starts the server and the bridge; usable
alone against any running pair:

  python3 bench/idle_streams_client.py --bridge=127.0.0.1:8080 \
      --bridge-pid=1234 --server-pid=1233 --streams=10000

Python 3 standard library only: one thread, non-blocking sockets, selectors
(epoll). Steps:
  1. warm-up: a few streams opened and closed, so one-time costs (the upstream
     HTTP/2 connection, lazily built tables) are not charged to the streams;
  2. VmRSS of the bridge (and the server) from /proc/<pid>/status;
  3. N connections, opened in batches, each sending one GET of the idle route;
  4. waits until the bridge's /metrics says gravity_bridge_active_streams N;
  5. VmRSS again, right away and once more after the bridge's first keep-alive
     tick (every stream has written something by then), and KiB per stream;
  6. closes everything and waits for active_streams 0.
Exit status 0 when every stream was seen open, 1 otherwise.
"""

import argparse
import errno
import http.client
import re
import selectors
import socket
import sys
import time


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def metric(bridge, name, timeout=5.0):
    host, port = bridge.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.request("GET", "/metrics")
        body = connection.getresponse().read().decode()
    finally:
        connection.close()
    found = re.search(rf"^{re.escape(name)} (\d+)$", body, re.MULTILINE)
    if not found:
        raise RuntimeError(f"{name} not in /metrics")
    return int(found.group(1))


class Streams:
    """Many SSE connections driven by one selector; reads and counts bytes."""

    def __init__(self, bridge, target):
        host, port = bridge.rsplit(":", 1)
        self.address = (host, int(port))
        self.request = (f"GET {target} HTTP/1.1\r\nHost: {bridge}\r\n"
                        "Accept: text/event-stream\r\n\r\n").encode()
        self.selector = selectors.DefaultSelector()
        self.sockets = {}  # fd -> state dict
        self.errors = {}   # message -> count

    def _error(self, message):
        self.errors[message] = self.errors.get(message, 0) + 1

    def open(self, count):
        """Starts `count` non-blocking connects; the requests go out in pump()."""
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            code = sock.connect_ex(self.address)
            if code not in (0, errno.EINPROGRESS):
                self._error(f"connect: {errno.errorcode.get(code, code)}")
                sock.close()
                continue
            state = {"sock": sock, "sent": 0, "head": b"", "bytes": 0, "closed": False}
            self.sockets[sock.fileno()] = state
            self.selector.register(sock, selectors.EVENT_WRITE, state)

    def unsent(self):
        return sum(1 for s in self.sockets.values()
                   if not s["closed"] and s["sent"] < len(self.request))

    def pump(self, seconds):
        """Runs the event loop for up to `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            for key, mask in self.selector.select(timeout=min(left, 0.2)):
                state = key.data
                sock = state["sock"]
                try:
                    if mask & selectors.EVENT_WRITE:
                        state["sent"] += sock.send(self.request[state["sent"]:])
                        if state["sent"] == len(self.request):
                            self.selector.modify(sock, selectors.EVENT_READ, state)
                    elif mask & selectors.EVENT_READ:
                        data = sock.recv(65536)
                        if not data:
                            self._close(state, "closed by the bridge")
                            continue
                        if len(state["head"]) < 16:
                            state["head"] += data[:16]
                        state["bytes"] += len(data)
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError as error:
                    self._close(state, f"socket: {error.strerror or error}")

    def _close(self, state, why=None):
        if state["closed"]:
            return
        state["closed"] = True
        if why:
            self._error(why)
        try:
            self.selector.unregister(state["sock"])
        except (KeyError, ValueError):
            pass
        state["sock"].close()

    def open_count(self):
        return sum(1 for s in self.sockets.values() if not s["closed"])

    def with_200(self):
        return sum(1 for s in self.sockets.values()
                   if not s["closed"] and s["head"].startswith(b"HTTP/1.1 200"))

    def close_all(self):
        for state in list(self.sockets.values()):
            self._close(state)
        self.sockets.clear()


def wait_for_active(bridge, streams, want, timeout, pump_seconds=0.2):
    """Pumps `streams` until /metrics shows `want` active streams; returns it or None."""
    deadline = time.monotonic() + timeout
    active = -1
    while time.monotonic() < deadline:
        if streams is not None:
            streams.pump(pump_seconds)
        else:
            time.sleep(pump_seconds)
        try:
            active = metric(bridge, "gravity_bridge_active_streams")
        except (OSError, RuntimeError):
            continue
        if active == want:
            return active
    print(f"  timed out: active_streams {active}, want {want}", flush=True)
    return None


def kib(value):
    return f"{value:,} KiB".replace(",", " ")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bridge", required=True, help="host:port of the bridge")
    parser.add_argument("--bridge-pid", type=int, required=True)
    parser.add_argument("--server-pid", type=int, default=0)
    parser.add_argument("--streams", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=500, help="connections opened at once")
    parser.add_argument("--target", default="/api/streaming/ping?count=1000&interval_ms=60000")
    parser.add_argument("--warmup", type=int, default=20, help="streams opened and closed first")
    parser.add_argument("--timeout", type=float, default=120, help="seconds for each wait")
    parser.add_argument("--keepalive", type=float, default=15,
                        help="the bridge's --keepalive in seconds; RSS is read again after it")
    args = parser.parse_args()

    print(f"idle streams: {args.streams} x GET {args.target} on {args.bridge} "
          f"(batches of {args.batch})", flush=True)

    if args.warmup > 0:
        warm = Streams(args.bridge, args.target)
        warm.open(args.warmup)
        if wait_for_active(args.bridge, warm, args.warmup, args.timeout) is None:
            return 1
        warm.close_all()
        if wait_for_active(args.bridge, None, 0, args.timeout) is None:
            return 1
        time.sleep(1)

    bridge_before = vm_rss_kib(args.bridge_pid)
    server_before = vm_rss_kib(args.server_pid) if args.server_pid else 0
    print(f"  before: bridge VmRSS {kib(bridge_before)}"
          + (f", server VmRSS {kib(server_before)}" if args.server_pid else ""), flush=True)

    streams = Streams(args.bridge, args.target)
    started = time.monotonic()
    opened = 0
    while opened < args.streams:
        batch = min(args.batch, args.streams - opened)
        streams.open(batch)
        opened += batch
        # Requests of this batch on the wire before the next batch connects.
        batch_deadline = time.monotonic() + args.timeout
        while streams.unsent() and time.monotonic() < batch_deadline:
            streams.pump(0.05)
    sent = time.monotonic() - started
    if wait_for_active(args.bridge, streams, args.streams, args.timeout) is None:
        print(f"  errors: {streams.errors}", flush=True)
        streams.close_all()
        return 1
    took = time.monotonic() - started
    print(f"  opened {args.streams} streams in {took:.2f} s ({args.streams / took:.0f} streams/s; "
          f"requests all sent after {sent:.2f} s)", flush=True)

    streams.pump(2.0)  # let the backend accept the calls and things settle
    results = []

    def report(when):
        bridge_now = vm_rss_kib(args.bridge_pid)
        server_now = vm_rss_kib(args.server_pid) if args.server_pid else 0
        per_bridge = (bridge_now - bridge_before) / args.streams
        line = (f"  {when}: bridge VmRSS {kib(bridge_now)} (+{kib(bridge_now - bridge_before)}) "
                f"= {per_bridge:.2f} KiB/stream")
        if args.server_pid:
            per_server = (server_now - server_before) / args.streams
            line += (f"; server VmRSS {kib(server_now)} (+{kib(server_now - server_before)}) "
                     f"= {per_server:.2f} KiB/stream")
        print(line, flush=True)
        results.append(per_bridge)

    report("open")
    print(f"  before the first keep-alive: {streams.with_200()} of {args.streams} have their "
          "200 response headers", flush=True)
    # Measure once more after every stream has sent a keep-alive comment,
    # in steady state.
    streams.pump(args.keepalive + 2)
    active = metric(args.bridge, "gravity_bridge_active_streams")
    print(f"  after the first keep-alive: {active} active, {streams.open_count()} connections "
          f"open, {streams.with_200()} with a 200 response", flush=True)
    report(f"after {args.keepalive + 2:.0f} s")
    per_stream = max(results)
    verdict = "meets" if per_stream <= 12 else "MISSES"
    print(f"  result: {per_stream:.2f} KiB of bridge memory per idle stream "
          f"({verdict} the target of <= 12 KiB, bench/run T3)", flush=True)
    if streams.errors:
        print(f"  errors: {streams.errors}", flush=True)

    closing = time.monotonic()
    streams.close_all()
    if wait_for_active(args.bridge, None, 0, args.timeout) is not None:
        print(f"  closed all in {time.monotonic() - closing:.2f} s: active_streams 0, bridge VmRSS "
              f"{kib(vm_rss_kib(args.bridge_pid))}", flush=True)
    ok = active == args.streams and not streams.errors
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
