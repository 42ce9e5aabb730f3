#!/usr/bin/env python3
"""Opens N concurrent SSE streams to one URL and counts the events they carry.

Python 3 standard library only: one thread, non-blocking sockets, selectors
(epoll). Every stream is `GET <path> HTTP/1.1` with `Connection: close`; the
response must be 200; a chunked body is de-chunked, then split into
"\\n\\n"-terminated blocks. An event is a block that contains "data:" and is
not an "event: end" block (": keep-alive" comments are not events). Each
stream must end with "event: end" whose data has "code":0 (or --end-code);
with --expect=N it must also have carried exactly N events.

Prints the total events, the wall time from the first connect to the last
stream's end, events/s, and one machine-readable line:
  RESULT streams=S events=E seconds=T events_per_s=R failed=F cpu=C
(C: this script's own CPU seconds, which share the machine with the bridge).
Exit status 1 when a stream failed or the --timeout passed.

  bench/sse_load.py --url='http://127.0.0.1:8080/api/streaming/ping?to=bench&count=2000&interval_ms=1' \\
      --streams=50 --expect=2000
"""
import argparse
import errno
import json
import selectors
import socket
import sys
import time
import urllib.parse


class Stream:
    __slots__ = ("sock", "index", "out", "head", "headers_done", "status", "chunked",
                 "chunk_left", "raw", "body", "events", "end_seen", "end_code", "done",
                 "error", "failed_msg")

    def __init__(self, index, request):
        self.index = index
        self.sock = None
        self.out = request
        self.head = b""
        self.headers_done = False
        self.status = None
        self.chunked = False
        self.chunk_left = 0  # bytes of chunk data still to come; -1: need a size line
        self.raw = b""  # undecoded chunked bytes
        self.body = b""  # decoded bytes of a not yet complete block
        self.events = 0
        self.end_seen = False
        self.end_code = None
        self.done = False
        self.failed_msg = None

    # Decoded body bytes -> blocks.
    def feed_body(self, data):
        buf = self.body + data if self.body else data
        if b"\n\n" not in buf:
            self.body = buf
            return
        blocks = buf.split(b"\n\n")
        self.body = blocks.pop()
        for blk in blocks:
            if blk.startswith(b"event: end") or b"\nevent: end" in blk:
                if self.end_seen:
                    self.failed_msg = "two end events"
                self.end_seen = True
                i = blk.find(b"data:")
                try:
                    self.end_code = json.loads(blk[i + 5:].strip()).get("code", 0)
                except (ValueError, AttributeError):
                    self.end_code = "unparsable"
            elif b"data:" in blk:
                if self.end_seen and self.failed_msg is None:
                    self.failed_msg = "event after the end event"
                self.events += 1

    # Raw body bytes (chunked or not) -> feed_body.
    def feed_raw(self, data):
        if not self.chunked:
            self.feed_body(data)
            return
        raw = self.raw + data if self.raw else data
        pos = 0
        n = len(raw)
        decoded = []
        while pos < n:
            if self.chunk_left > 0:
                take = min(self.chunk_left, n - pos)
                decoded.append(raw[pos:pos + take])
                pos += take
                self.chunk_left -= take
                if self.chunk_left == 0:
                    self.chunk_left = -2  # the CRLF after the data
            elif self.chunk_left == -2:
                if n - pos < 2:
                    break
                pos += 2
                self.chunk_left = -1
            else:  # -1 or 0 at start: a size line
                eol = raw.find(b"\r\n", pos)
                if eol < 0:
                    break
                size = int(raw[pos:eol].split(b";")[0], 16)
                pos = eol + 2
                if size == 0:
                    self.done = True  # last chunk (trailers ignored)
                    pos = n
                    break
                self.chunk_left = size
        self.raw = raw[pos:]
        if decoded:
            self.feed_body(b"".join(decoded))

    def feed(self, data):
        if self.headers_done:
            self.feed_raw(data)
            return
        self.head += data
        i = self.head.find(b"\r\n\r\n")
        if i < 0:
            if len(self.head) > 65536:
                self.failed_msg = "response head too long"
                self.done = True
            return
        head, rest = self.head[:i].decode("latin-1"), self.head[i + 4:]
        self.head = b""
        self.headers_done = True
        lines = head.split("\r\n")
        try:
            self.status = int(lines[0].split()[1])
        except (IndexError, ValueError):
            self.status = -1
        for line in lines[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "transfer-encoding" and "chunked" in v.lower():
                self.chunked = True
                self.chunk_left = -1
        if self.status != 200:
            self.failed_msg = f"HTTP status {self.status}: {rest[:200]!r}"
        if rest:
            self.feed_raw(rest)

    def verdict(self, expect, end_code):
        if self.failed_msg:
            return self.failed_msg
        if not self.headers_done:
            return "no response"
        if not self.end_seen:
            return f"no end event (after {self.events} events)"
        if self.end_code != end_code:
            return f"end code {self.end_code}"
        if expect is not None and self.events != expect:
            return f"{self.events} events, expected {expect}"
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True, help="http://host:port/path?query")
    ap.add_argument("--streams", type=int, default=50)
    ap.add_argument("--expect", type=int, default=None, help="events each stream must carry")
    ap.add_argument("--end-code", type=int, default=0, help="code of the end event (default 0)")
    ap.add_argument("--timeout", type=float, default=120.0, help="bound of the whole run, s")
    ap.add_argument("--quiet", action="store_true", help="only the RESULT line")
    args = ap.parse_args()

    u = urllib.parse.urlsplit(args.url)
    if u.scheme != "http":
        sys.exit("sse_load.py: only http:// URLs")
    host, port = u.hostname, u.port or 80
    target = (u.path or "/") + (f"?{u.query}" if u.query else "")
    request = (f"GET {target} HTTP/1.1\r\nHost: {u.netloc}\r\nAccept: text/event-stream\r\n"
               f"Connection: close\r\n\r\n").encode()
    addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]

    sel = selectors.DefaultSelector()
    streams = [Stream(i, request) for i in range(args.streams)]
    start = time.monotonic()
    cpu_start = time.process_time()
    deadline = start + args.timeout
    for s in streams:
        sock = socket.socket(addr[0], socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = sock.connect_ex(addr[4])
        if err not in (0, errno.EINPROGRESS):
            s.failed_msg = f"connect: {errno.errorcode.get(err, err)}"
            s.done = True
            sock.close()
            continue
        s.sock = sock
        sel.register(sock, selectors.EVENT_WRITE, s)

    open_count = sum(1 for s in streams if not s.done)
    timed_out = False
    while open_count:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        for key, mask in sel.select(timeout=min(left, 1.0)):
            s = key.data
            if mask & selectors.EVENT_WRITE:
                err = s.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    s.failed_msg = f"connect: {errno.errorcode.get(err, err)}"
                    s.done = True
                else:
                    try:
                        sent = s.sock.send(s.out)
                        s.out = s.out[sent:]
                    except BlockingIOError:
                        pass
                    except OSError as e:
                        s.failed_msg = f"send: {e}"
                        s.done = True
                    if not s.done and not s.out:
                        sel.modify(s.sock, selectors.EVENT_READ, s)
            elif mask & selectors.EVENT_READ:
                try:
                    data = s.sock.recv(262144)
                except BlockingIOError:
                    continue
                except OSError as e:
                    s.failed_msg = s.failed_msg or f"recv: {e}"
                    data = b""
                if data:
                    s.feed(data)
                else:
                    s.done = True  # EOF (Connection: close)
            if s.done:
                sel.unregister(s.sock)
                s.sock.close()
                s.sock = None
                open_count -= 1
    elapsed = time.monotonic() - start
    cpu = time.process_time() - cpu_start
    for s in streams:
        if s.sock is not None:
            sel.unregister(s.sock)
            s.sock.close()

    total = sum(s.events for s in streams)
    failures = [(s.index, s.verdict(args.expect, args.end_code)) for s in streams]
    failures = [(i, v) for i, v in failures if v]
    if timed_out:
        failures = failures or [(-1, "timeout")]
    rate = total / elapsed if elapsed > 0 else 0.0
    if not args.quiet:
        print(f"{args.streams} streams to {args.url}")
        print(f"  {total} events in {elapsed:.3f} s = {rate:,.0f} events/s"
              f" ({total / max(args.streams, 1):.0f} per stream)")
        if timed_out:
            print(f"  TIMEOUT after {args.timeout:.0f} s: {open_count} streams still open")
        for i, v in failures[:10]:
            print(f"  FAILED stream {i}: {v}")
        if len(failures) > 10:
            print(f"  ... and {len(failures) - 10} more failed streams")
    print(f"RESULT streams={args.streams} events={total} seconds={elapsed:.3f} "
          f"events_per_s={rate:.0f} failed={len(failures)} cpu={cpu:.2f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
