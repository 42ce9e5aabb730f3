#!/usr/bin/env python3
"""HTTP/2 attacks on gravity-bridge over h2c, while canary SSE streams lose nothing.

  python3 tests/e2e/http2_attacks.py --server=bazel-bin/examples/streaming/streaming-server \
      --bridge=bazel-bin/bridge/gravity-bridge

Starts streaming-server and one gravity-bridge on ports the kernel picks
(--http2_max_concurrent_streams=100 --write_timeout=2s --header_timeout=2s),
opens 5 canary SSE streams over HTTP/1.1 (300 events, 100 ms apart: 30 s),
then attacks the bridge over cleartext HTTP/2 with prior knowledge, with
frames written by hand:

  1. rapid reset (CVE-2023-44487): 5,000 HEADERS + RST_STREAM(CANCEL) pairs;
  2. CONTINUATION flood (CVE-2024-27316 class): a header block never ended;
  3. HPACK bomb: one 4,000-byte entry in the dynamic table, referenced
     30,000 times in one header block (120 MB once decoded);
  4. SETTINGS flood and PING flood: 100,000 frames each, the replies unread;
  5. a zero window held for ever (SETTINGS_INITIAL_WINDOW_SIZE=0);
  6. a preface, then silence;
  7. 150 streams on one connection limited to 100.

After each attack a fresh h2c request must be served, and at the end every
canary must have had every event once, in order, and a clean `end`. The
bridge's RSS (/proc/PID/status) is watched during the attacks and
gravity_bridge_active_streams (GET /metrics over HTTP/1.1) must come back to
the canaries' count. One line per check (`ok - name` or `FAIL - name:
detail`), then `# N passed, M failed`; exit status 1 on any failure. A
watchdog ends the run after --timeout seconds (60). Both processes are
stopped at the end whatever happens (SIGTERM, then SIGKILL).

Python 3 standard library only. The HPACK encoder writes every field as a
literal without indexing (no table); the decoder is complete (static and
dynamic tables, Huffman), for the bridge's responses.
"""

import argparse
import collections
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

MIB = 1024 * 1024

# ---- HTTP/2 constants (RFC 9113) --------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
FRAME_NAMES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING",
               "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"]

END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

SETTINGS_HEADER_TABLE_SIZE = 0x1
SETTINGS_ENABLE_PUSH = 0x2
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_FRAME_SIZE = 0x5

NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, STREAM_CLOSED, \
    FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, CONNECT_ERROR, \
    ENHANCE_YOUR_CALM, INADEQUATE_SECURITY, HTTP_1_1_REQUIRED = range(14)
ERROR_NAMES = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
               "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL",
               "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY",
               "HTTP_1_1_REQUIRED"]

MAX_FRAME = 16384  # the default SETTINGS_MAX_FRAME_SIZE; every frame sent here fits it


def error_name(code):
    return f"{ERROR_NAMES[code]} (0x{code:x})" if code < len(ERROR_NAMES) else f"0x{code:x}"


def frame(kind, flags, stream_id, payload=b""):
    """One frame: 9-byte header (24-bit length, type, flags, 31-bit stream id), then payload."""
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + \
        struct.pack(">I", stream_id & 0x7FFFFFFF) + payload


def settings_frame(settings=None, ack=False):
    payload = b"".join(struct.pack(">HI", key, value) for key, value in (settings or {}).items())
    return frame(SETTINGS, ACK if ack else 0, 0, payload)


def rst_stream_frame(stream_id, code):
    return frame(RST_STREAM, 0, stream_id, struct.pack(">I", code))


def window_update_frame(stream_id, increment):
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))


def client_preface(settings=None):
    """The connection preface: the magic string, then the client's SETTINGS."""
    return PREFACE + settings_frame(settings)


def header_frames(stream_id, block, end_stream=True, end_headers=True):
    """A header block as HEADERS + CONTINUATION frames of at most MAX_FRAME bytes each."""
    chunks = [block[i:i + MAX_FRAME] for i in range(0, len(block), MAX_FRAME)] or [b""]
    out = bytearray()
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        flags = END_HEADERS if (last and end_headers) else 0
        if i == 0:
            out += frame(HEADERS, flags | (END_STREAM if end_stream else 0), stream_id, chunk)
        else:
            out += frame(CONTINUATION, flags, stream_id, chunk)
    return bytes(out)


# ---- HPACK (RFC 7541) --------------------------------------------------------

def hpack_int(value, prefix_bits, first=0):
    """An integer with an N-bit prefix; `first` holds the representation's high bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_str(data):
    """A string literal, raw (no Huffman): H=0 and a 7-bit-prefix length."""
    return hpack_int(len(data), 7) + data


def _b(text):
    return text if isinstance(text, bytes) else text.encode("latin-1")


def literal(name, value):
    """Literal header field without indexing, new name (0x00): touches no table."""
    return b"\x00" + hpack_str(_b(name)) + hpack_str(_b(value))


def literal_indexed(name, value):
    """Literal header field with incremental indexing, new name (0x40): enters the table."""
    return b"\x40" + hpack_str(_b(name)) + hpack_str(_b(value))


def request_block(path, authority, method="GET", extra=()):
    fields = [(":method", method), (":scheme", "http"), (":authority", authority),
              (":path", path), ("accept", "text/event-stream")] + list(extra)
    return b"".join(literal(name, value) for name, value in fields)


STATIC_TABLE = [
    (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"),
    (":path", "/index.html"), (":scheme", "http"), (":scheme", "https"), (":status", "200"),
    (":status", "204"), (":status", "206"), (":status", "304"), (":status", "400"),
    (":status", "404"), (":status", "500"), ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""),
    ("accept", ""), ("access-control-allow-origin", ""), ("age", ""), ("allow", ""),
    ("authorization", ""), ("cache-control", ""), ("content-disposition", ""),
    ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
    ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""),
    ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""),
    ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
    ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""),
    ("max-forwards", ""), ("proxy-authenticate", ""), ("proxy-authorization", ""),
    ("range", ""), ("referer", ""), ("refresh", ""), ("retry-after", ""), ("server", ""),
    ("set-cookie", ""), ("strict-transport-security", ""), ("transfer-encoding", ""),
    ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
]
STATIC_TABLE = [(_b(name), _b(value)) for name, value in STATIC_TABLE]

# The Huffman code's lengths, symbols 0..256 (RFC 7541 Appendix B). The code
# is canonical, so the codes follow from the lengths.
HUFFMAN_LENGTHS = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
    30,
]


def _huffman_codes():
    codes = {}
    code = 0
    previous = None
    for symbol, length in sorted(enumerate(HUFFMAN_LENGTHS), key=lambda item: (item[1], item[0])):
        if previous is not None:
            code = (code + 1) << (length - previous)
        previous = length
        codes[(length, code)] = symbol
    return codes


HUFFMAN_DECODE = _huffman_codes()


class HpackError(Exception):
    pass


def huffman_decode(data):
    out = bytearray()
    code = 0
    length = 0
    for byte in data:
        for shift in range(7, -1, -1):
            code = (code << 1) | ((byte >> shift) & 1)
            length += 1
            symbol = HUFFMAN_DECODE.get((length, code))
            if symbol is not None:
                if symbol == 256:
                    raise HpackError("EOS in a Huffman string")
                out.append(symbol)
                code = 0
                length = 0
            elif length > 30:
                raise HpackError("bad Huffman code")
    if length > 7 or code != (1 << length) - 1:
        raise HpackError("bad Huffman padding")
    return bytes(out)


class HpackDecoder:
    """Decodes header blocks, keeping the dynamic table across them."""

    def __init__(self, max_size=4096):
        self.table = []  # newest first: index 62 is table[0]
        self.size = 0
        self.max_size = max_size

    def _evict(self):
        while self.size > self.max_size and self.table:
            name, value = self.table.pop()
            self.size -= len(name) + len(value) + 32

    def _add(self, name, value):
        self.table.insert(0, (name, value))
        self.size += len(name) + len(value) + 32
        self._evict()

    def _lookup(self, index):
        if 1 <= index <= len(STATIC_TABLE):
            return STATIC_TABLE[index - 1]
        if 0 <= index - len(STATIC_TABLE) - 1 < len(self.table):
            return self.table[index - len(STATIC_TABLE) - 1]
        raise HpackError(f"index {index} is in no table")

    @staticmethod
    def _int(data, pos, prefix_bits):
        limit = (1 << prefix_bits) - 1
        value = data[pos] & limit
        pos += 1
        if value < limit:
            return value, pos
        shift = 0
        while True:
            if pos >= len(data):
                raise HpackError("truncated integer")
            byte = data[pos]
            pos += 1
            value += (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value, pos
            if shift > 35:
                raise HpackError("integer too long")

    def _str(self, data, pos):
        huffman = data[pos] & 0x80
        length, pos = self._int(data, pos, 7)
        if pos + length > len(data):
            raise HpackError("truncated string")
        raw = bytes(data[pos:pos + length])
        return (huffman_decode(raw) if huffman else raw), pos + length

    def decode(self, block):
        headers = []
        pos = 0
        while pos < len(block):
            byte = block[pos]
            if byte & 0x80:  # indexed
                index, pos = self._int(block, pos, 7)
                headers.append(self._lookup(index))
            elif byte & 0xC0 == 0x40:  # literal, incremental indexing
                index, pos = self._int(block, pos, 6)
                if index:
                    name = self._lookup(index)[0]
                else:
                    name, pos = self._str(block, pos)
                value, pos = self._str(block, pos)
                self._add(name, value)
                headers.append((name, value))
            elif byte & 0xE0 == 0x20:  # dynamic table size update
                self.max_size, pos = self._int(block, pos, 5)
                self._evict()
            else:  # literal without indexing (0x00) or never indexed (0x10)
                index, pos = self._int(block, pos, 4)
                if index:
                    name = self._lookup(index)[0]
                else:
                    name, pos = self._str(block, pos)
                value, pos = self._str(block, pos)
                headers.append((name, value))
        return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]


# ---- An HTTP/2 client connection ---------------------------------------------

class NotH2(Exception):
    """The bridge answered something other than an HTTP/2 server preface."""


class Closed(Exception):
    """The bridge closed the connection (EOF or reset)."""


class H2Stream:
    def __init__(self, stream_id):
        self.id = stream_id
        self.headers = None
        self.status = None
        self.trailers = None
        self.data = bytearray()
        self.data_frames = 0
        self.ended = False  # END_STREAM received
        self.rst = None  # RST_STREAM error code received
        self.hpack_error = None

    def resolved(self):
        return self.ended or self.rst is not None

    def text(self):
        return self.data.decode("utf-8", "replace")


class H2Connection:
    """A client connection that reads frames and answers what a client must.

    pump() reads frames until a condition holds or a deadline passes: it
    acknowledges SETTINGS and PING (unless auto_ack is off), decodes header
    blocks, collects DATA per stream and gives the window back (unless
    auto_window is off), and records RST_STREAM, GOAWAY and the close."""

    def __init__(self, port, rcvbuf=None, connect_timeout=3.0):
        self.port = port
        self.authority = f"127.0.0.1:{port}"
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(connect_timeout)
        self.sock.connect(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(5.0)
        self.buf = bytearray()
        self.decoder = HpackDecoder()
        self.streams = {}
        self.next_stream_id = 1
        self.server_settings = {}
        self.got_server_settings = False
        self.first_frame = None
        self.settings_acks = 0
        self.goaway = None  # (last_stream_id, code, debug data), the first one
        self.closed = None  # the read side's end: "EOF" or the recv error
        self.send_error = None  # a send that failed (EPIPE, ECONNRESET): closed too
        self.ended_at = None  # when the first GOAWAY, close or send error came
        self.auto_ack = True
        self.auto_window = True
        self.frames = collections.Counter()
        self.block = None  # (stream id, END_STREAM, bytearray): a header block in progress

    # -- lifecycle
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _mark_ended(self):
        if self.ended_at is None:
            self.ended_at = time.monotonic()

    def _mark_closed(self, how):
        if self.closed is None:
            self.closed = how
            self._mark_ended()

    def _mark_send_error(self, error):
        if self.send_error is None:
            self.send_error = f"send: {error.strerror or error}"
            self._mark_ended()

    def done(self):
        """GOAWAY received or the connection closed (seen by a read or a send)."""
        return self.goaway is not None or self.closed is not None or self.send_error is not None

    def gone(self):
        """The connection closed (seen by a read or a send)."""
        return self.closed is not None or self.send_error is not None

    def settle(self, timeout=0.5):
        """After a send failed: reads what the bridge sent before it closed (a GOAWAY)."""
        if self.send_error is not None and self.closed is None:
            self.pump(lambda: self.closed is not None, timeout)

    def how_ended(self):
        parts = []
        if self.goaway is not None:
            last, code, debug = self.goaway
            parts.append(f"GOAWAY {error_name(code)} last_stream_id={last}" +
                         (f" debug={debug[:80]!r}" if debug else ""))
        if self.closed is not None or self.send_error is not None:
            parts.append(f"closed ({', '.join(x for x in (self.send_error, self.closed) if x)})")
        return ", ".join(parts) or "still open"

    # -- writing
    def send(self, data):
        if self.send_error is not None:
            raise Closed(self.send_error)
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as error:
            self._mark_send_error(error)
            raise Closed(self.send_error) from error

    def send_until(self, data, deadline):
        """Sends as much of `data` as the peer takes before `deadline` or its close; returns
        the bytes sent."""
        view = memoryview(data)
        sent = 0
        while sent < len(view) and self.send_error is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            _, writable, _ = select.select([], [self.sock], [], min(remaining, 0.2))
            if not writable:
                continue
            try:
                sent += self.sock.send(view[sent:sent + 65536], socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                continue
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as error:
                self._mark_send_error(error)
        return sent

    def send_in_batches(self, total, batch_size, batch, within=5.0, first=None):
        """Sends `first` (if any), then batches of `batch_size` frames, batch(sent) giving
        the bytes of the next one, reading what comes back between batches, until `total`
        frames are sent, the connection is done, or `within` s have passed; a close while
        sending is settled. Returns (when it started, frames sent)."""
        started = time.monotonic()
        sent = 0
        try:
            if first is not None:
                self.send(first)
            while sent < total and not self.done() and time.monotonic() - started < within:
                self.send(batch(sent))
                sent += batch_size
                self.pump(None, 0)
        except Closed:
            self.settle()
        return started, sent

    def preface(self, settings=None):
        self.send(client_preface(settings if settings is not None else {SETTINGS_ENABLE_PUSH: 0}))

    def new_stream(self):
        stream = H2Stream(self.next_stream_id)
        self.streams[stream.id] = stream
        self.next_stream_id += 2
        return stream

    def request_bytes(self, path, extra=()):
        """A GET as frames, on a new stream; returns (stream, bytes) without sending."""
        stream = self.new_stream()
        return stream, header_frames(stream.id, request_block(path, self.authority, extra=extra))

    def request(self, path, extra=()):
        stream, data = self.request_bytes(path, extra)
        self.send(data)
        return stream

    # -- reading
    def _fill(self, timeout):
        """Reads what is there (waiting up to timeout); False on timeout or once closed."""
        if self.closed is not None:
            return False
        readable, _, _ = select.select([self.sock], [], [], max(timeout, 0))
        if not readable:
            return False
        try:
            chunk = self.sock.recv(262144)
        except (ConnectionResetError, ConnectionAbortedError) as error:
            self._mark_closed(f"recv: {error.strerror or error}")
            return False
        except (BlockingIOError, InterruptedError):
            return True
        if not chunk:
            self._mark_closed("EOF")
            return False
        self.buf += chunk
        if self.first_frame is None and len(self.buf) >= 5 and self.buf[:5] == b"HTTP/":
            line = bytes(self.buf[:self.buf.find(b"\r\n")] if b"\r\n" in self.buf else self.buf[:60])
            raise NotH2(f"the bridge answered HTTP/1: {line.decode('latin-1')!r}")
        return True

    def read_frame(self, deadline):
        """The next frame as (type, flags, stream id, payload), or None at the deadline or close."""
        while True:
            if len(self.buf) >= 9:
                length = int.from_bytes(self.buf[:3], "big")
                if self.first_frame is None:
                    if self.buf[3] != SETTINGS or self.buf[4] & ACK:
                        raise NotH2(f"the first frame was type {self.buf[3]} flags {self.buf[4]}, "
                                    f"not the server's SETTINGS: {bytes(self.buf[:24])!r}")
                    self.first_frame = SETTINGS
                if len(self.buf) >= 9 + length:
                    kind, flags = self.buf[3], self.buf[4]
                    stream_id = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
                    payload = bytes(self.buf[9:9 + length])
                    del self.buf[:9 + length]
                    return kind, flags, stream_id, payload
            if not self._fill(deadline - time.monotonic()):
                if self.closed is None and time.monotonic() < deadline:
                    continue  # a spurious wake-up
                return None

    def pump(self, until=None, timeout=0.0):
        """Handles frames until until() is true, the deadline passes or the connection
        closes. timeout=0 handles only what has already arrived. Returns until()."""
        deadline = time.monotonic() + timeout
        while True:
            if until is not None and until():
                return True
            received = self.read_frame(deadline)
            if received is None:
                return bool(until and until())
            self._handle(*received)

    def _stream(self, stream_id):
        if stream_id not in self.streams:
            self.streams[stream_id] = H2Stream(stream_id)
        return self.streams[stream_id]

    def _safe_send(self, data):
        try:
            self.send(data)
        except Closed:
            pass
        except OSError:  # a send buffer full for 5 s: the peer stopped reading
            pass

    def _handle(self, kind, flags, stream_id, payload):
        self.frames[FRAME_NAMES[kind] if kind < len(FRAME_NAMES) else f"type{kind}"] += 1
        if kind == SETTINGS:
            if flags & ACK:
                self.settings_acks += 1
                return
            for i in range(0, len(payload) - 5, 6):
                key, value = struct.unpack(">HI", payload[i:i + 6])
                self.server_settings[key] = value
            self.got_server_settings = True
            if self.auto_ack:
                self._safe_send(settings_frame(ack=True))
        elif kind == PING:
            if not flags & ACK and self.auto_ack:
                self._safe_send(frame(PING, ACK, 0, payload))
        elif kind == GOAWAY:
            if self.goaway is None and len(payload) >= 8:
                last, code = struct.unpack(">II", payload[:8])
                self.goaway = (last & 0x7FFFFFFF, code, payload[8:].decode("latin-1"))
                self._mark_ended()
        elif kind == RST_STREAM:
            if len(payload) >= 4:
                self._stream(stream_id).rst = struct.unpack(">I", payload[:4])[0]
        elif kind == DATA:
            stream = self._stream(stream_id)
            if flags & PADDED and payload:
                payload = payload[1:len(payload) - payload[0]]
            stream.data += payload
            stream.data_frames += 1
            if flags & END_STREAM:
                stream.ended = True
            if self.auto_window and payload:
                updates = window_update_frame(0, len(payload))
                if not stream.ended:
                    updates += window_update_frame(stream_id, len(payload))
                self._safe_send(updates)
        elif kind in (HEADERS, PUSH_PROMISE):
            if flags & PADDED and payload:
                payload = payload[1:len(payload) - payload[0]]
            if kind == HEADERS and flags & PRIORITY_FLAG:
                payload = payload[5:]
            if kind == PUSH_PROMISE:
                payload = payload[4:]
            self.block = (stream_id, bool(flags & END_STREAM), bytearray(payload))
            if flags & END_HEADERS:
                self._end_block()
        elif kind == CONTINUATION:
            if self.block is not None:
                self.block[2].extend(payload)
                if flags & END_HEADERS:
                    self._end_block()

    def _end_block(self):
        stream_id, end_stream, block = self.block
        self.block = None
        stream = self._stream(stream_id)
        try:
            headers = self.decoder.decode(block)
        except (HpackError, IndexError) as error:
            stream.hpack_error = str(error)
            headers = []
        if stream.headers is None:
            stream.headers = headers
            for name, value in headers:
                if name == ":status":
                    try:
                        stream.status = int(value)
                    except ValueError:
                        stream.status = value
        else:
            stream.trailers = headers
        if end_stream:
            stream.ended = True

    def handshake(self, timeout=3.0):
        """Waits for the server's SETTINGS (its preface). Raises NotH2 otherwise."""
        if not self.pump(lambda: self.got_server_settings, timeout):
            raise NotH2("no SETTINGS from the bridge within %.0f s (%s)" %
                        (timeout, self.how_ended()))


# ---- SSE ---------------------------------------------------------------------

def parse_sse(text):
    """The events of an SSE body: dicts of their fields ('data' joined by newlines)."""
    events = []
    current = {}
    for line in text.split("\n"):
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            if "data" in current:
                events.append(current)
            current = {}
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data" and "data" in current:
            current["data"] += "\n" + value
        else:
            current[field] = value
    return events


def sse_problem(text, to, count):
    """None when `text` holds ids 1..count of Ping to `to`, in order, then `end` code 0."""
    events = parse_sse(text)
    for seq in range(1, count + 1):
        if len(events) < seq:
            return f"{len(events)} events, the last {events[-1] if events else None}; " \
                   f"tail {text[-200:]!r}"
        event = events[seq - 1]
        want = '{"message":"Sending ping to %s","seq":"%d"}' % (to, seq)
        if event.get("id") != str(seq) or event.get("event") or event.get("data") != want:
            return f"event {seq} is {event}, expected id {seq} with data {want}"
    if len(events) != count + 1:
        return f"{len(events)} events, expected {count} and `end`; tail {text[-200:]!r}"
    end = events[-1]
    if end.get("event") != "end" or not end.get("data", "").startswith('{"code":0,'):
        return f"the last event is {end}, expected `end` with code 0"
    return None


# ---- HTTP/1.1: /metrics and the canaries --------------------------------------

def http1_get(port, path, timeout=3.0):
    """(status, body) of a GET over a new HTTP/1.1 connection."""
    import http.client
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def metric(port, name):
    status, body = http1_get(port, "/metrics")
    if status != 200:
        raise RuntimeError(f"GET /metrics: {status}")
    match = re.search(r"^%s (\S+)$" % re.escape(name), body, re.M)
    if not match:
        raise RuntimeError(f"no {name} in /metrics")
    return float(match.group(1))


def dechunk(raw):
    """The body of a chunked message (bytes after the head); (body, complete)."""
    body = bytearray()
    at = 0
    while True:
        line_end = raw.find(b"\r\n", at)
        if line_end < 0:
            return bytes(body), False
        try:
            size = int(raw[at:line_end].split(b";")[0], 16)
        except ValueError:
            return bytes(body), False
        at = line_end + 2
        if size == 0:
            return bytes(body), raw[at:at + 2] == b"\r\n"
        if len(raw) < at + size + 2:
            body += raw[at:]
            return bytes(body), False
        body += raw[at:at + size]
        at += size + 2


class Canary(threading.Thread):
    """One SSE stream over HTTP/1.1, read to its end on its own thread."""

    def __init__(self, port, index, count, interval_ms):
        super().__init__(daemon=True)
        self.port = port
        self.to = f"canary{index}"
        self.count = count
        self.interval_ms = interval_ms
        self.raw = bytearray()
        self.first_event = threading.Event()
        self.finished = threading.Event()
        self.error = None
        self.ended_at = None

    def run(self):
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            sock.sendall((f"GET /api/streaming/ping?to={self.to}&count={self.count}"
                          f"&interval_ms={self.interval_ms} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          "Accept: text/event-stream\r\n\r\n").encode())
            while True:
                try:
                    chunk = sock.recv(65536)
                except socket.timeout:
                    self.error = "no byte for 10 s"
                    break
                except OSError as error:
                    self.error = f"recv: {error}"
                    break
                if not chunk:
                    self.error = "closed by the bridge before the last chunk"
                    break
                self.raw += chunk
                if not self.first_event.is_set():
                    head_end = self.raw.find(b"\r\n\r\n")
                    if head_end >= 0 and b"id: 1\n" in dechunk(self.raw[head_end + 4:])[0]:
                        self.first_event.set()
                if self.raw.endswith(b"\r\n0\r\n\r\n"):
                    break
            sock.close()
        except OSError as error:
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self.ended_at = time.monotonic()
            self.finished.set()
            self.first_event.set()

    def problem(self):
        raw = bytes(self.raw)
        head_end = raw.find(b"\r\n\r\n")
        if head_end < 0:
            return f"no response head ({self.error}): {raw[:200]!r}"
        head = raw[:head_end].decode("latin-1")
        if not head.startswith("HTTP/1.1 200 "):
            return f"status line {head.splitlines()[0]!r}"
        body, complete = dechunk(raw[head_end + 4:])
        problem = sse_problem(body.decode("utf-8", "replace"), self.to, self.count)
        if problem:
            return problem + (f" ({self.error})" if self.error else "")
        if not complete:
            return f"the chunked body did not end ({self.error})"
        return None


# ---- Processes ---------------------------------------------------------------

class Process:
    """A child started with its stdout and stderr kept (the last 200 lines)."""

    def __init__(self, name, argv):
        self.name = name
        self.argv = argv
        self.lines = collections.deque(maxlen=200)
        self.ready = threading.Event()
        self.port = None
        self.proc = None

    def start(self, ready_pattern, timeout):
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        pattern = re.compile(ready_pattern)

        def read(pipe, label):
            for raw in iter(pipe.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.lines.append(f"{label}: {line}")
                match = pattern.search(line) if label == "stdout" else None
                if match and not self.ready.is_set():
                    self.port = int(match.group(1))
                    self.ready.set()
            pipe.close()

        for pipe, label in ((self.proc.stdout, "stdout"), (self.proc.stderr, "stderr")):
            threading.Thread(target=read, args=(pipe, label), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                return False
        return True

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=4)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                pass
        except OSError:
            pass

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.kill()
                self.proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                pass

    def dump(self):
        print(f"# --- {self.name} ({' '.join(self.argv)}), exit {self.proc and self.proc.poll()}")
        for line in self.lines:
            print(f"#   {line}")


def vm_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssWatch:
    """The bridge's RSS before an attack and its peak during it (sampled every 10 ms,
    and VmHWM when it rose)."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0
        self.stop = threading.Event()

    def __enter__(self):
        self.before = vm_kib(self.pid, "VmRSS")
        self.hwm_before = vm_kib(self.pid, "VmHWM")
        self.peak = self.before
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while not self.stop.wait(0.01):
            self.peak = max(self.peak, vm_kib(self.pid, "VmRSS"))

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, vm_kib(self.pid, "VmRSS"))
        hwm = vm_kib(self.pid, "VmHWM")
        if hwm > self.hwm_before:
            self.peak = max(self.peak, hwm)

    def growth_mib(self):
        return (self.peak - self.before) / 1024.0

    def describe(self):
        return f"RSS {self.before / 1024:.1f} MiB, peak {self.peak / 1024:.1f} MiB " \
               f"(+{self.growth_mib():.1f} MiB)"


# ---- The run -----------------------------------------------------------------

class Run:
    def __init__(self, args):
        self.args = args
        self.passed = 0
        self.failed = 0
        self.lock = threading.Lock()
        self.finished = False
        self.server = None
        self.bridge = None
        self.canaries = []
        self.port = None
        self.header_timeout = 2.0
        self.write_timeout = 2.0

    # -- reporting
    def check(self, name, ok, detail=""):
        with self.lock:
            if self.finished:
                return ok
            if ok:
                self.passed += 1
                print(f"ok - {name}" + (f"  # {detail}" if detail and self.args.verbose else ""))
            else:
                self.failed += 1
                print(f"FAIL - {name}" + (f": {detail}" if detail else ""))
            sys.stdout.flush()
        return ok

    def note(self, text):
        with self.lock:
            if not self.finished:
                print(f"# {text}")
                sys.stdout.flush()

    def summary(self):
        with self.lock:
            if self.finished:
                return
            self.finished = True
            if self.failed:
                for process in (self.server, self.bridge):
                    if process is not None and process.proc is not None:
                        process.dump()
            print(f"# {self.passed} passed, {self.failed} failed")
            sys.stdout.flush()

    def stop_processes(self, hard=False):
        for process in (self.bridge, self.server):
            if process is not None:
                process.kill() if hard else process.stop()

    def watchdog(self):
        with self.lock:
            if self.finished:
                return
            self.failed += 1
            print(f"FAIL - watchdog: the run took over {self.args.timeout:.0f} s")
            sys.stdout.flush()
        self.stop_processes(hard=True)
        self.summary()
        os._exit(1)

    # -- helpers
    def live_canaries(self):
        return sum(1 for canary in self.canaries if not canary.finished.is_set())

    def wait_active_streams(self, within):
        """Polls gravity_bridge_active_streams until it equals the number of canaries
        still streaming; (ok, detail)."""
        start = time.monotonic()
        value = None
        error = None
        while True:
            try:
                value = metric(self.port, "gravity_bridge_active_streams")
                error = None
                if value == self.live_canaries():
                    return True, f"{value:.0f} after {time.monotonic() - start:.1f} s"
            except (OSError, RuntimeError) as failure:
                error = str(failure)
            if time.monotonic() - start > within:
                return False, (f"gravity_bridge_active_streams is {value}, expected "
                               f"{self.live_canaries()} (the canaries) after {within:.0f} s"
                               + (f"; {error}" if error else ""))
            time.sleep(0.1)

    @staticmethod
    def served(connection, stream, tag, count=2, timeout=3.0):
        """Waits for `stream` (Ping to `tag`, `count` events): (ok, detail)."""
        started = time.monotonic()
        connection.pump(lambda: stream.resolved() or connection.done(), timeout)
        if stream.status != 200:
            return False, (f"status {stream.status}, rst "
                           f"{error_name(stream.rst) if stream.rst is not None else None}, "
                           f"{connection.how_ended()}")
        if not stream.ended:
            return False, (f"not ended after {timeout:g} s (rst {stream.rst}, "
                           f"{connection.how_ended()}); body {stream.text()[-200:]!r}")
        problem = sse_problem(stream.text(), tag, count)
        if problem:
            return False, problem
        return True, f"{(time.monotonic() - started) * 1000:.0f} ms"

    def fresh_request(self, tag):
        """A new h2c connection, one short SSE stream: (ok, detail)."""
        if not self.bridge.alive():
            return False, f"gravity-bridge exited with status {self.bridge.proc.poll()}"
        with H2Connection(self.port) as connection:
            connection.preface()
            connection.handshake()
            stream = connection.request(f"/api/streaming/ping?to={tag}&count=2&interval_ms=10")
            return self.served(connection, stream, tag)

    def attack(self, name, function, tag):
        """Runs one attack (its checks are its own), then a fresh request."""
        try:
            function()
        except NotH2 as error:
            self.check(name, False, f"not HTTP/2: {error}")
        except Exception as error:  # noqa: BLE001 - any failure is this check's
            self.check(name, False, f"{type(error).__name__}: {error}")
        try:
            ok, detail = self.fresh_request(tag)
        except NotH2 as error:
            ok, detail = False, f"not HTTP/2: {error}"
        except Exception as error:  # noqa: BLE001
            ok, detail = False, f"{type(error).__name__}: {error}"
        self.check(f"after {name}: the bridge still serves a fresh h2c request", ok, detail)

    def check_rss(self, name, watch):
        self.check(f"{name}: RSS stays under +{self.args.rss_limit_mib} MiB",
                   watch.growth_mib() < self.args.rss_limit_mib, watch.describe())

    # -- 1. rapid reset
    def rapid_reset(self):
        name = "rapid reset"
        total = 5000
        path = "/api/streaming/ping?to=reset&count=1000&interval_ms=1000"
        with RssWatch(self.bridge.proc.pid) as watch, H2Connection(self.port) as connection:
            connection.preface()
            connection.handshake()
            block = request_block(path, connection.authority)
            last_id = 0

            def resets(_sent):  # 100 streams, each HEADERS then RST_STREAM CANCEL
                nonlocal last_id
                batch = bytearray()
                for _ in range(100):
                    stream = connection.new_stream()
                    batch += frame(HEADERS, END_HEADERS | END_STREAM, stream.id, block)
                    batch += rst_stream_frame(stream.id, CANCEL)
                    last_id = stream.id
                return bytes(batch)

            started, sent = connection.send_in_batches(total, 100, resets)
            stopped_early = sent < total
            if not connection.done():
                connection.pump(connection.done, 3.0)
            took = (connection.ended_at or time.monotonic()) - started
            detail = (f"{connection.how_ended()} after {sent} of {total} streams were sent "
                      f"(last stream id {last_id}), {took:.2f} s")
            goaway_early = connection.goaway is not None and connection.goaway[0] < last_id
            ok = connection.done() and (stopped_early or goaway_early or
                                        (connection.goaway is None and connection.gone()))
            if connection.done() and not ok:
                detail += "; the bridge took every stream before it reacted"
            self.check(f"{name}: GOAWAY or close before {total} streams", ok, detail)
            # The reset streams must all be gone, the connection still open or not.
            ok, detail = self.wait_active_streams(2.0)
            self.check(f"{name}: gravity_bridge_active_streams back to the canaries' count "
                       "within 2 s", ok, detail)
        self.check_rss(name, watch)

    # -- 2. CONTINUATION flood
    def continuation_flood(self):
        name = "CONTINUATION flood"
        total = 20000
        # Control: a header block split over HEADERS and 3 CONTINUATION frames is a
        # request like any other; only the flood is refused.
        with H2Connection(self.port) as connection:
            connection.preface()
            connection.handshake()
            stream = connection.new_stream()
            data = frame(HEADERS, END_STREAM, stream.id, request_block(
                "/api/streaming/ping?to=split&count=2&interval_ms=10", connection.authority))
            for i in range(1, 4):
                data += frame(CONTINUATION, END_HEADERS if i == 3 else 0, stream.id,
                              literal(f"x-split-{i}", "v" * 40))
            connection.send(data)
            ok, detail = self.served(connection, stream, "split")
            self.check(f"{name} (control): HEADERS + 3 CONTINUATION frames are served", ok,
                       detail)
        with RssWatch(self.bridge.proc.pid) as watch, H2Connection(self.port) as connection:
            connection.preface()
            connection.handshake()
            stream = connection.new_stream()
            started, sent = connection.send_in_batches(
                total, 500,
                lambda sent: b"".join(frame(CONTINUATION, 0, stream.id,
                                            literal(f"x-flood-{i}", "v" * 40))
                                      for i in range(sent, sent + 500)),
                first=frame(HEADERS, END_STREAM, stream.id, request_block(
                    "/api/streaming/ping?to=flood&count=1", connection.authority)))
            if not connection.done():
                connection.pump(connection.done, max(0.0, started + 5 - time.monotonic()))
            took = (connection.ended_at or time.monotonic()) - started
            self.check(f"{name}: GOAWAY or close within 5 s", connection.done() and took <= 5.0,
                       f"{connection.how_ended()} after {sent} CONTINUATION frames sent, "
                       f"{took:.2f} s; stream 1: status {stream.status}, rst {stream.rst}")
        self.check_rss(name, watch)

    # -- 3. HPACK bomb
    def hpack_bomb(self):
        name = "HPACK bomb"
        references = 30000
        # Control: a dynamic-table entry referenced a few times is fine; only the size
        # of what the block decodes to is refused.
        with H2Connection(self.port) as connection:
            connection.preface()
            connection.handshake()
            stream = connection.new_stream()
            block = request_block("/api/streaming/ping?to=indexed&count=2&interval_ms=10",
                                  connection.authority)
            block += literal_indexed("x-small", "s" * 100) + b"\xbe" * 3
            connection.send(header_frames(stream.id, block))
            ok, detail = self.served(connection, stream, "indexed")
            self.check(f"{name} (control): an indexed entry referenced 3 times is served", ok,
                       detail)
        with RssWatch(self.bridge.proc.pid) as watch, H2Connection(self.port) as connection:
            connection.preface()
            connection.handshake()
            streams_before = metric(self.port, "gravity_bridge_streams_total")
            stream = connection.new_stream()
            block = request_block("/api/streaming/ping?to=bomb&count=1&interval_ms=1",
                                  connection.authority)
            block += literal_indexed("x-bomb", "b" * 4000)  # 4,038 bytes of a 4,096 table
            block += b"\xbe" * references  # index 62: the entry just added
            started = time.monotonic()
            try:
                connection.send(header_frames(stream.id, block))
            except Closed:
                connection.settle()
            connection.pump(lambda: stream.resolved() or stream.status is not None or
                            connection.done(), 5.0)
            if stream.status is not None and not stream.resolved() and not connection.done():
                connection.pump(lambda: stream.resolved() or connection.done(), 2.0)
            took = time.monotonic() - started
            try:
                streams_after = metric(self.port, "gravity_bridge_streams_total")
                started_streams = f"{streams_after - streams_before:.0f} streams started"
            except (OSError, RuntimeError) as error:
                started_streams = str(error)
            served = stream.status == 200 or b"data:" in stream.data
            refused = (stream.status == 431 or stream.rst is not None or connection.done())
            outcome = (f"status {stream.status}, rst "
                       f"{error_name(stream.rst) if stream.rst is not None else None}, "
                       f"{connection.how_ended()}, {took:.2f} s, {started_streams}; a block of "
                       f"{len(block)} bytes that decodes to {references * 4038 // MIB} MiB")
            if stream.status is not None and stream.status != 431:
                refused = False
            self.check(f"{name}: refused (431, RST_STREAM or GOAWAY), not served",
                       refused and not served, outcome)
        self.check_rss(name, watch)

    # -- 4. SETTINGS and PING floods
    def flood(self, name, one_frame, count=100000):
        with RssWatch(self.bridge.proc.pid) as watch, \
                H2Connection(self.port, rcvbuf=4096) as connection:
            connection.preface()
            connection.handshake()  # the server's SETTINGS, acknowledged; then never a read
            data = one_frame * count
            started = time.monotonic()
            sent = connection.send_until(data, started + 6)
            all_sent = sent == len(data)
            # Now read (the replies too, unanswered): the GOAWAY sent before a close, or,
            # when everything went out, a GOAWAY or a close still to come.
            connection.auto_ack = False
            if connection.send_error is not None:
                connection.settle()
            else:
                connection.pump(connection.done, max(0.5, started + 8 - time.monotonic()))
            took = (connection.ended_at or time.monotonic()) - started
            detail = (f"{connection.how_ended()}, {took:.2f} s; sent {sent // len(one_frame)} "
                      f"of {count} frames" + ("" if all_sent else " (then the bridge took no more)"))
            if connection.done() and all_sent and took >= 0.9 * min(self.header_timeout,
                                                                     self.write_timeout):
                detail += ("; closed at the header/write timeout, so by a timeout rather "
                           "than by flood detection")
            self.check(f"{name}: the bridge closes the connection (GOAWAY or reset)",
                       connection.done(), detail)
        self.check_rss(name, watch)

    # -- 5. zero window
    def zero_window(self):
        name = "zero window"
        with H2Connection(self.port) as connection:
            connection.preface({SETTINGS_ENABLE_PUSH: 0, SETTINGS_INITIAL_WINDOW_SIZE: 0})
            connection.handshake()
            stream = connection.request("/api/streaming/ping?to=zero&count=1000&interval_ms=100")
            started = time.monotonic()
            limit = self.write_timeout + 4
            connection.pump(lambda: stream.resolved() or connection.done(), limit)
            took = time.monotonic() - started
            ended = stream.resolved() or connection.done()
            how = (f"status {stream.status}, rst "
                   f"{error_name(stream.rst) if stream.rst is not None else None}, "
                   f"ended {stream.ended}, {connection.how_ended()}, after {took:.2f} s "
                   f"(--write_timeout={self.write_timeout:g}s)")
            if stream.data:
                self.check(f"{name}: stream ended by the bridge after --write_timeout", False,
                           f"{len(stream.data)} bytes of DATA sent into a zero window; {how}")
            elif not ended:
                self.check(f"{name}: stream ended by the bridge after --write_timeout", False,
                           f"still open; {how}")
            else:
                self.check(f"{name}: stream ended by the bridge after --write_timeout",
                           took >= self.write_timeout * 0.75, how)
            ok, detail = self.wait_active_streams(max(1.0, 5.0 - took))
            self.check(f"{name}: gravity_bridge_active_streams back to the canaries' count "
                       "within 5 s", ok, detail)

    # -- 6. preface, then silence
    def silence(self):
        name = "preface then silence"
        limit = self.header_timeout + 3
        with H2Connection(self.port) as connection:
            started = time.monotonic()
            connection.preface()
            connection.auto_ack = False  # not even the SETTINGS ACK
            connection.pump(lambda: connection.closed is not None, limit)
            took = (connection.ended_at or time.monotonic()) - started
            detail = (f"{connection.how_ended()} after {took:.2f} s (header timeout "
                      f"{self.header_timeout:g} s); server SETTINGS seen: "
                      f"{connection.got_server_settings}")
            self.check(f"{name}: the bridge closes the connection within {limit:g} s",
                       connection.got_server_settings and connection.closed is not None, detail)

    # -- 7. more streams than the limit
    def over_the_limit(self):
        name = "150 streams"
        limit = 100
        with H2Connection(self.port) as connection:
            # Everything in one write, before the server's SETTINGS are read (or acknowledged).
            data = bytearray(client_preface({SETTINGS_ENABLE_PUSH: 0,
                                             SETTINGS_INITIAL_WINDOW_SIZE: 1 << 20}))
            data += window_update_frame(0, 1 << 24)
            streams = []
            for _ in range(150):
                stream, request = connection.request_bytes(
                    "/api/streaming/ping?to=many&count=3&interval_ms=300")
                streams.append(stream)
                data += request
            connection.send(bytes(data))
            connection.pump(lambda: all(s.resolved() for s in streams) or connection.done(), 8.0)
            if connection.done():  # what the streams got before
                connection.pump(None, 0.2)
            advertised = connection.server_settings.get(SETTINGS_MAX_CONCURRENT_STREAMS)
            self.check(f"{name}: the bridge's SETTINGS say MAX_CONCURRENT_STREAMS {limit}",
                       advertised == limit, f"{advertised}")
            first, rest = streams[:limit], streams[limit:]
            bad = []
            for stream in first:
                problem = None
                if stream.status != 200:
                    problem = f"status {stream.status}, rst {stream.rst}"
                elif not stream.ended:
                    problem = f"not ended (rst {stream.rst})"
                else:
                    problem = sse_problem(stream.text(), "many", 3)
                if problem:
                    bad.append(f"stream {stream.id}: {problem}")
            self.check(f"{name}: the first {limit} are served in full", not bad,
                       f"{len(bad)} of {limit} not: {bad[0]}; {connection.how_ended()}"
                       if bad else f"{connection.how_ended()}")
            refused = [s for s in rest if s.rst == REFUSED_STREAM and s.status is None]
            others = [f"stream {s.id}: status {s.status}, rst "
                      f"{error_name(s.rst) if s.rst is not None else None}"
                      for s in rest if s not in refused]
            self.check(f"{name}: the 50 past {limit} get RST_STREAM REFUSED_STREAM",
                       len(refused) == len(rest),
                       f"{len(refused)} of {len(rest)} refused" +
                       (f"; e.g. {others[0]}" if others else ""))
            ok, detail = self.wait_active_streams(3.0)
            self.check(f"{name}: gravity_bridge_active_streams back to the canaries' count "
                       "within 3 s", ok, detail)

    # -- the whole run
    def main(self):
        args = self.args
        started = time.monotonic()
        self.server = Process("streaming-server", [args.server, "--listen=127.0.0.1:0",
                                                   "--drain=1s"])
        if not self.check("streaming-server starts", self.server.start(
                r"streaming-server listening on 127\.0\.0\.1:(\d+)", 15)):
            return
        argv = [args.bridge, "--listen=127.0.0.1:0", f"--backend=127.0.0.1:{self.server.port}",
                "--drain=1s", "--discovery_timeout=10s", "--http2_max_concurrent_streams=100",
                "--write_timeout=2s", "--header_timeout=2s"]
        self.bridge = Process("gravity-bridge", argv)
        if not self.check("gravity-bridge starts", self.bridge.start(
                r"gravity-bridge listening on http://127\.0\.0\.1:(\d+)", 20)):
            return
        self.port = self.bridge.port

        # The canaries, on their own HTTP/1.1 connections, through every attack.
        self.canaries = [Canary(self.port, i, args.canary_events, args.canary_interval_ms)
                         for i in range(1, 6)]
        for canary in self.canaries:
            canary.start()
        for canary in self.canaries:
            canary.first_event.wait(10)
        started_ok = all(c.first_event.is_set() and not c.finished.is_set()
                         for c in self.canaries)
        self.check("5 canary SSE streams (HTTP/1.1) are streaming", started_ok,
                   "; ".join(f"{c.to}: {c.error}" for c in self.canaries if c.error))

        try:
            ok, detail = self.fresh_request("baseline")
        except NotH2 as error:
            ok, detail = False, f"not HTTP/2: {error}"
        except Exception as error:  # noqa: BLE001
            ok, detail = False, f"{type(error).__name__}: {error}"
        self.check("h2c with prior knowledge: a GET of an SSE stream is served", ok, detail)

        self.attack("rapid reset", self.rapid_reset, "after-reset")
        self.attack("CONTINUATION flood", self.continuation_flood, "after-continuation")
        self.attack("HPACK bomb", self.hpack_bomb, "after-bomb")
        self.attack("SETTINGS flood",
                    lambda: self.flood("SETTINGS flood", settings_frame()), "after-settings")
        self.attack("PING flood",
                    lambda: self.flood("PING flood", frame(PING, 0, 0, b"attack!!")),
                    "after-ping")
        self.attack("zero window", self.zero_window, "after-zero-window")
        self.attack("preface then silence", self.silence, "after-silence")
        self.attack("150 streams", self.over_the_limit, "after-many")
        attacks_took = time.monotonic() - started

        if started_ok:
            self.check("the canaries streamed through every attack", self.live_canaries() == 5,
                       f"{5 - self.live_canaries()} had ended when the attacks did, "
                       f"{attacks_took:.1f} s in (raise --canary_events)")
        left = args.canary_events * args.canary_interval_ms / 1000.0 + 15
        for canary in self.canaries:
            canary.finished.wait(max(0.1, left - (time.monotonic() - started)))
        problems = [f"{c.to}: {c.problem()}" for c in self.canaries
                    if not c.finished.is_set() or c.problem()]
        self.check(f"canaries unaffected: each got ids 1..{args.canary_events} in order and "
                   "`end` code 0", not problems, "; ".join(problems))
        self.check("gravity-bridge still running", self.bridge.alive(),
                   f"exit status {self.bridge.proc.poll()}")
        self.note(f"took {time.monotonic() - started:.1f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="the streaming-server binary")
    parser.add_argument("--bridge", required=True, help="the gravity-bridge binary")
    parser.add_argument("--canary_events", type=int, default=300,
                        help="events per canary (default 300: 30 s at 100 ms)")
    parser.add_argument("--canary_interval_ms", type=int, default=100)
    parser.add_argument("--rss_limit_mib", type=int, default=50,
                        help="the bridge's RSS growth allowed per attack")
    parser.add_argument("--timeout", type=float, default=60,
                        help="watchdog: the whole run, in seconds")
    parser.add_argument("--verbose", action="store_true", help="details on ok lines too")
    args = parser.parse_args()
    for flag in ("server", "bridge"):
        path = os.path.abspath(getattr(args, flag))
        if not os.access(path, os.X_OK):
            print(f"{os.path.basename(sys.argv[0])}: --{flag}={path} is not an executable file",
                  file=sys.stderr)
            return 2
        setattr(args, flag, path)

    run = Run(args)

    def on_signal(number, _frame):
        raise SystemExit(128 + number)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    watchdog = threading.Timer(args.timeout, run.watchdog)
    watchdog.daemon = True
    watchdog.start()
    try:
        run.main()
    except SystemExit:
        run.check("the run was interrupted by a signal", False)
    except Exception as error:  # noqa: BLE001 - reported, then the processes stop
        run.check("the run ended without an error", False, f"{type(error).__name__}: {error}")
    finally:
        watchdog.cancel()
        run.stop_processes()
        run.summary()
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main())
