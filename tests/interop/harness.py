"""Interop test harness for ringmq (stdlib unittest based).

Two modes:

* External broker: when RINGMQ_TEST_URL is set (for example
  amqp://guest:guest@127.0.0.1:5673/), every test class talks to that
  broker.  This is how the suite is checked against RabbitMQ (see
  tests/interop/rabbitmq-local.sh).  Tests that need control over the broker
  process (restart with other flags, signals, reading the log) are skipped,
  except where an equivalent exists: RINGMQ_TEST_RABBITMQCTL, a command
  prefix such as "tests/interop/rabbitmq-local.sh ctl", lets the resource
  alarm tests drive a RabbitMQ node through rabbitmqctl.
  RINGMQ_TEST_PRODUCT names the expected server "product" property
  (default "RabbitMQ").

* Owned broker (default): each test class starts its own ringmq from
  RINGMQ_BIN on 127.0.0.1 and a free port, with a fresh data directory,
  RINGMQ_TEST_SHARDS shards (default 2), debug logging to a file, and the
  class's extra flags (`ringmq_args`).  On teardown the broker gets SIGTERM
  and must exit with status 0 within 2 s.  The log is dumped when a test of
  the class fails.

Also here: a tiny AMQP 0-9-1 codec and a raw socket client (RawClient) for
protocol-level checks, and main(), which runs a test module, prints exactly
one line "interop-<script>: N passed, M failed, K skipped" on stdout, and
exits 1 if anything failed (77, automake's "skipped", if nothing ran).
"""

import io
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

# ---------------------------------------------------------------------------
# Constants

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8
FRAME_END = 0xCE
FRAME_MIN_SIZE = 4096

REPLY_SUCCESS = 200
CONTENT_TOO_LARGE = 311
NO_ROUTE = 312
NO_CONSUMERS = 313
CONNECTION_FORCED = 320
INVALID_PATH = 402
ACCESS_REFUSED = 403
NOT_FOUND = 404
RESOURCE_LOCKED = 405
PRECONDITION_FAILED = 406
FRAME_ERROR = 501
SYNTAX_ERROR = 502
COMMAND_INVALID = 503
CHANNEL_ERROR = 504
UNEXPECTED_FRAME = 505
RESOURCE_ERROR = 506
NOT_ALLOWED = 530
NOT_IMPLEMENTED = 540
INTERNAL_ERROR = 541

CONNECT_TIMEOUT = 10.0  # broker start-up bound
STOP_TIMEOUT = 2.0  # SIGTERM to exit bound
DEFAULT_TEST_TIMEOUT = 20  # per test, seconds
IO_TIMEOUT = 5.0  # default bound for one raw read

# Method argument layouts used by the raw client: (class, method) -> (name,
# [field types]).  Types: octet short long longlong shortstr longstr table bit.
METHODS = {
    (10, 10): ("connection.start", ["octet", "octet", "table", "longstr", "longstr"]),
    (10, 11): ("connection.start-ok", ["table", "shortstr", "longstr", "shortstr"]),
    (10, 20): ("connection.secure", ["longstr"]),
    (10, 21): ("connection.secure-ok", ["longstr"]),
    (10, 30): ("connection.tune", ["short", "long", "short"]),
    (10, 31): ("connection.tune-ok", ["short", "long", "short"]),
    (10, 40): ("connection.open", ["shortstr", "shortstr", "bit"]),
    (10, 41): ("connection.open-ok", ["shortstr"]),
    (10, 50): ("connection.close", ["short", "shortstr", "short", "short"]),
    (10, 51): ("connection.close-ok", []),
    (10, 60): ("connection.blocked", ["shortstr"]),
    (10, 61): ("connection.unblocked", []),
    (20, 10): ("channel.open", ["shortstr"]),
    (20, 11): ("channel.open-ok", ["longstr"]),
    (20, 20): ("channel.flow", ["bit"]),
    (20, 21): ("channel.flow-ok", ["bit"]),
    (20, 40): ("channel.close", ["short", "shortstr", "short", "short"]),
    (20, 41): ("channel.close-ok", []),
    (40, 10): ("exchange.declare",
               ["short", "shortstr", "shortstr", "bit", "bit", "bit", "bit", "bit", "table"]),
    (40, 11): ("exchange.declare-ok", []),
    (50, 10): ("queue.declare",
               ["short", "shortstr", "bit", "bit", "bit", "bit", "bit", "table"]),
    (50, 11): ("queue.declare-ok", ["shortstr", "long", "long"]),
    (40, 20): ("exchange.delete", ["short", "shortstr", "bit", "bit"]),
    (40, 21): ("exchange.delete-ok", []),
    (50, 20): ("queue.bind", ["short", "shortstr", "shortstr", "shortstr", "bit", "table"]),
    (50, 21): ("queue.bind-ok", []),
    (50, 30): ("queue.purge", ["short", "shortstr", "bit"]),
    (50, 31): ("queue.purge-ok", ["long"]),
    (50, 40): ("queue.delete", ["short", "shortstr", "bit", "bit", "bit"]),
    (50, 41): ("queue.delete-ok", ["long"]),
    (60, 10): ("basic.qos", ["long", "short", "bit"]),
    (60, 11): ("basic.qos-ok", []),
    (60, 20): ("basic.consume",
               ["short", "shortstr", "shortstr", "bit", "bit", "bit", "bit", "table"]),
    (60, 21): ("basic.consume-ok", ["shortstr"]),
    (60, 30): ("basic.cancel", ["shortstr", "bit"]),
    (60, 31): ("basic.cancel-ok", ["shortstr"]),
    (60, 40): ("basic.publish", ["short", "shortstr", "shortstr", "bit", "bit"]),
    (60, 50): ("basic.return", ["short", "shortstr", "shortstr", "shortstr"]),
    (60, 60): ("basic.deliver", ["shortstr", "longlong", "bit", "shortstr", "shortstr"]),
    (60, 70): ("basic.get", ["short", "shortstr", "bit"]),
    (60, 71): ("basic.get-ok", ["longlong", "bit", "shortstr", "shortstr", "long"]),
    (60, 72): ("basic.get-empty", ["shortstr"]),
    (60, 80): ("basic.ack", ["longlong", "bit"]),
    (60, 90): ("basic.reject", ["longlong", "bit"]),
    (60, 110): ("basic.recover", ["bit"]),
    (60, 111): ("basic.recover-ok", []),
    (60, 120): ("basic.nack", ["longlong", "bit", "bit"]),
    (85, 10): ("confirm.select", ["bit"]),
    (85, 11): ("confirm.select-ok", []),
    (90, 10): ("tx.select", []),
    (90, 11): ("tx.select-ok", []),
    (90, 20): ("tx.commit", []),
    (90, 21): ("tx.commit-ok", []),
    (90, 30): ("tx.rollback", []),
    (90, 31): ("tx.rollback-ok", []),
}
METHOD_IDS = {name: ids for ids, (name, _) in METHODS.items()}


# ---------------------------------------------------------------------------
# Codec


class DecodeError(Exception):
    pass


class Reader:
    def __init__(self, data):
        self.data = bytes(data)
        self.pos = 0

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise DecodeError("truncated: need %d at %d of %d" % (n, self.pos, len(self.data)))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt):
        return struct.unpack(">" + fmt, self.take(struct.calcsize(">" + fmt)))[0]

    def octet(self):
        return self.unpack("B")

    def short(self):
        return self.unpack("H")

    def long(self):
        return self.unpack("I")

    def longlong(self):
        return self.unpack("Q")

    def shortstr(self):
        return self.take(self.octet()).decode("utf-8", "replace")

    def longstr(self):
        return self.take(self.long())

    def table(self):
        sub = Reader(self.longstr())
        out = {}
        while sub.pos < len(sub.data):
            key = sub.shortstr()
            out[key] = sub.field_value()
        return out

    def array(self):
        sub = Reader(self.longstr())
        out = []
        while sub.pos < len(sub.data):
            out.append(sub.field_value())
        return out

    def field_value(self):
        t = self.take(1)
        if t == b"t":
            return self.octet() != 0
        if t == b"b":
            return self.unpack("b")
        if t == b"B":
            return self.unpack("B")
        if t in (b"s", b"U"):
            return self.unpack("h")
        if t == b"u":
            return self.unpack("H")
        if t == b"I":
            return self.unpack("i")
        if t == b"i":
            return self.unpack("I")
        if t in (b"l", b"L"):
            return self.unpack("q")
        if t == b"f":
            return self.unpack("f")
        if t == b"d":
            return self.unpack("d")
        if t == b"D":
            scale = self.octet()
            return (scale, self.unpack("i"))
        if t == b"S":
            return self.longstr().decode("utf-8", "replace")
        if t == b"x":
            return self.longstr()
        if t == b"A":
            return self.array()
        if t == b"T":
            return self.unpack("Q")
        if t == b"F":
            return self.table()
        if t == b"V":
            return None
        raise DecodeError("unknown field type %r" % t)


def enc_shortstr(s):
    if isinstance(s, str):
        s = s.encode()
    if len(s) > 255:
        raise ValueError("shortstr too long")
    return struct.pack(">B", len(s)) + s


def enc_longstr(s):
    if isinstance(s, str):
        s = s.encode()
    return struct.pack(">I", len(s)) + s


def enc_field_value(v):
    if isinstance(v, bool):
        return b"t" + struct.pack(">B", 1 if v else 0)
    if isinstance(v, int):
        if -(2 ** 31) <= v < 2 ** 31:
            return b"I" + struct.pack(">i", v)
        return b"l" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"d" + struct.pack(">d", v)
    if isinstance(v, str):
        return b"S" + enc_longstr(v)
    if isinstance(v, (bytes, bytearray)):
        return b"x" + enc_longstr(bytes(v))
    if isinstance(v, dict):
        return b"F" + enc_table(v)
    if isinstance(v, (list, tuple)):
        return b"A" + enc_longstr(b"".join(enc_field_value(x) for x in v))
    if v is None:
        return b"V"
    raise TypeError("cannot encode %r" % (v,))


def enc_table_body(d):
    return b"".join(enc_shortstr(k) + enc_field_value(v) for k, v in d.items())


def enc_table(d):
    return enc_longstr(enc_table_body(d))


def encode_args(types, args):
    out = bytearray()
    bits = []

    def flush_bits():
        if bits:
            v = 0
            for i, b in enumerate(bits):
                if b:
                    v |= 1 << i
            out.extend(struct.pack(">B", v))
            bits.clear()

    if len(types) != len(args):
        raise ValueError("expected %d arguments, got %d" % (len(types), len(args)))
    for t, a in zip(types, args):
        if t == "bit":
            bits.append(a)
            if len(bits) == 8:
                flush_bits()
            continue
        flush_bits()
        if t == "octet":
            out.extend(struct.pack(">B", a))
        elif t == "short":
            out.extend(struct.pack(">H", a))
        elif t == "long":
            out.extend(struct.pack(">I", a))
        elif t == "longlong":
            out.extend(struct.pack(">Q", a))
        elif t == "shortstr":
            out.extend(enc_shortstr(a))
        elif t == "longstr":
            out.extend(enc_longstr(a))
        elif t == "table":
            out.extend(enc_table(a) if isinstance(a, dict) else enc_longstr(a))
        else:
            raise ValueError(t)
    flush_bits()
    return bytes(out)


def decode_args(types, data):
    r = Reader(data)
    out = []
    bitbyte = None
    bitpos = 8
    for t in types:
        if t == "bit":
            if bitpos >= 8:
                bitbyte = r.octet()
                bitpos = 0
            out.append(bool(bitbyte & (1 << bitpos)))
            bitpos += 1
            continue
        bitpos = 8
        out.append(getattr(r, t)())
    return out


def method_payload(class_id, method_id, args=(), raw_args=None):
    """Payload of a method frame.  raw_args bypasses the layout table."""
    head = struct.pack(">HH", class_id, method_id)
    if raw_args is not None:
        return head + raw_args
    _, types = METHODS[(class_id, method_id)]
    return head + encode_args(types, list(args))


def frame(ftype, channel, payload, end=FRAME_END):
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + bytes([end])


def method_frame(channel, name, *args):
    class_id, method_id = METHOD_IDS[name]
    return frame(FRAME_METHOD, channel, method_payload(class_id, method_id, args))


class Frame:
    def __init__(self, ftype, channel, payload):
        self.type = ftype
        self.channel = channel
        self.payload = payload
        self.class_id = self.method_id = None
        self.name = None
        self.args = None
        if ftype == FRAME_METHOD and len(payload) >= 4:
            self.class_id, self.method_id = struct.unpack(">HH", payload[:4])
            spec = METHODS.get((self.class_id, self.method_id))
            if spec:
                self.name = spec[0]
                self.args = decode_args(spec[1], payload[4:])

    def __repr__(self):
        if self.type == FRAME_METHOD:
            return "<method ch=%d %s %r>" % (
                self.channel, self.name or (self.class_id, self.method_id), self.args)
        return "<frame type=%d ch=%d len=%d>" % (self.type, self.channel, len(self.payload))


class ConnectionClosed(Exception):
    """The peer closed the TCP connection (EOF or reset)."""


class ReadTimeout(Exception):
    pass


# ---------------------------------------------------------------------------
# Raw client

DEFAULT_CLIENT_PROPERTIES = {
    "product": "ringmq-interop-tests",
    "platform": "Python",
    "capabilities": {
        "authentication_failure_close": True,
        "connection.blocked": True,
        "consumer_cancel_notify": True,
        "basic.nack": True,
        "publisher_confirms": True,
    },
}


def plain_response(user, password):
    return b"\x00" + user.encode() + b"\x00" + password.encode()


def amqplain_response(user, password):
    # AMQPLAIN: a field table body without its 4-byte length prefix.
    return enc_table_body({"LOGIN": user, "PASSWORD": password})


class RawClient:
    """Blocking AMQP 0-9-1 client over a plain socket, for protocol tests.

    Every read is bounded by a deadline; nothing here loops unbounded."""

    def __init__(self, host, port, timeout=IO_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.timeout = timeout
        self.eof = False
        self.start = None  # decoded connection.start args
        self.tune = None  # decoded connection.tune args

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def local_port(self):
        return self.sock.getsockname()[1]

    def send(self, data):
        self.sock.sendall(data)

    def send_method(self, channel, name, *args):
        self.send(method_frame(channel, name, *args))

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ReadTimeout("no data from broker in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise ReadTimeout("no data from broker in time")
        except (ConnectionResetError, BrokenPipeError) as e:
            self.eof = True
            raise ConnectionClosed(str(e))
        if not chunk:
            self.eof = True
            raise ConnectionClosed("EOF")
        self.buf.extend(chunk)

    def recv_exact(self, n, timeout=None):
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while len(self.buf) < n:
            self._fill(deadline)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def recv_some(self, timeout=None):
        """Whatever arrives first (at least one byte), or the buffered bytes."""
        if not self.buf:
            deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
            self._fill(deadline)
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def read_frame(self, timeout=None):
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while len(self.buf) < 7:
            self._fill(deadline)
        ftype, channel, size = struct.unpack(">BHI", bytes(self.buf[:7]))
        if size > 64 * 1024 * 1024:
            raise DecodeError("absurd frame size %d" % size)
        while len(self.buf) < 8 + size:
            self._fill(deadline)
        payload = bytes(self.buf[7:7 + size])
        end = self.buf[7 + size]
        del self.buf[:8 + size]
        if end != FRAME_END:
            raise DecodeError("bad frame end 0x%02x from broker" % end)
        return Frame(ftype, channel, payload)

    def read_method(self, timeout=None, skip_heartbeats=True):
        """Next method frame; heartbeats are skipped, anything else returned."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        for _ in range(10000):
            f = self.read_frame(timeout=max(0.0, deadline - time.monotonic()))
            if skip_heartbeats and f.type == FRAME_HEARTBEAT:
                continue
            return f
        raise ReadTimeout("too many heartbeats")

    def expect_method(self, name, channel=None, timeout=None):
        f = self.read_method(timeout)
        if f.name != name or (channel is not None and f.channel != channel):
            raise AssertionError("expected %s on channel %s, got %r" % (name, channel, f))
        return f

    def wait_eof(self, timeout=3.0):
        """Read until EOF; returns the frames received meanwhile.  Raises
        ReadTimeout if the socket is still open at the deadline."""
        deadline = time.monotonic() + timeout
        frames = []
        for _ in range(100000):
            try:
                frames.append(self.read_frame(timeout=max(0.0, deadline - time.monotonic())))
            except ConnectionClosed:
                return frames
        raise ReadTimeout("socket not closed")

    # -- handshake steps -------------------------------------------------

    def send_header(self, header=PROTOCOL_HEADER):
        self.send(header)

    def read_start(self):
        f = self.expect_method("connection.start", 0)
        major, minor, props, mechs, locales = f.args
        self.start = {
            "version_major": major,
            "version_minor": minor,
            "server_properties": props,
            "mechanisms": mechs.decode().split(),
            "locales": locales.decode().split(),
        }
        return self.start

    def start_ok(self, mechanism="PLAIN", response=None, user="guest", password="guest",
                 client_properties=None, locale="en_US"):
        if response is None:
            if mechanism == "AMQPLAIN":
                response = amqplain_response(user, password)
            else:
                response = plain_response(user, password)
        props = DEFAULT_CLIENT_PROPERTIES if client_properties is None else client_properties
        self.send_method(0, "connection.start-ok", props, mechanism, response, locale)

    def read_tune(self):
        f = self.expect_method("connection.tune", 0)
        self.tune = {"channel_max": f.args[0], "frame_max": f.args[1], "heartbeat": f.args[2]}
        return self.tune

    def tune_ok(self, channel_max=None, frame_max=None, heartbeat=0):
        t = self.tune or {"channel_max": 0, "frame_max": 0}
        self.send_method(0, "connection.tune-ok",
                         t["channel_max"] if channel_max is None else channel_max,
                         t["frame_max"] if frame_max is None else frame_max,
                         heartbeat)

    def open(self, vhost="/"):
        self.send_method(0, "connection.open", vhost, "", False)

    def handshake(self, user="guest", password="guest", vhost="/", mechanism="PLAIN",
                  channel_max=None, frame_max=None, heartbeat=0, client_properties=None):
        """Full handshake up to and including connection.open-ok."""
        self.send_header()
        self.read_start()
        self.start_ok(mechanism=mechanism, user=user, password=password,
                      client_properties=client_properties)
        self.read_tune()
        self.tune_ok(channel_max=channel_max, frame_max=frame_max, heartbeat=heartbeat)
        self.open(vhost)
        return self.expect_method("connection.open-ok", 0)

    def open_channel(self, channel):
        self.send_method(channel, "channel.open", "")
        return self.expect_method("channel.open-ok", channel)

    def expect_connection_close(self, timeout=None, reply_ok=True, eof_timeout=5.0):
        """Wait for connection.close from the broker (skipping heartbeats),
        answer close-ok, and wait for the socket to be closed.  Returns
        (reply_code, reply_text, class_id, method_id)."""
        f = self.read_method(timeout)
        if f.name != "connection.close" or f.channel != 0:
            raise AssertionError("expected connection.close, got %r" % (f,))
        if reply_ok:
            try:
                self.send_method(0, "connection.close-ok")
            except OSError:
                pass
        rest = self.wait_eof(eof_timeout)
        extra = [x for x in rest if x.type != FRAME_HEARTBEAT]
        if extra:
            raise AssertionError("frames after connection.close: %r" % (extra,))
        return tuple(f.args)

    def expect_close_or_eof(self, codes, timeout=5.0):
        """For errors where a broker may either send connection.close or
        just drop the socket: returns the close arguments or None (socket
        closed without a close frame).  Only heartbeats may precede it; a
        connection.close must carry one of `codes`."""
        deadline = time.monotonic() + timeout
        for _ in range(100000):
            try:
                f = self.read_frame(timeout=max(0.0, deadline - time.monotonic()))
            except ConnectionClosed:
                return None
            if f.type == FRAME_HEARTBEAT:
                continue
            if f.name != "connection.close" or f.channel != 0:
                raise AssertionError("expected connection.close or EOF, got %r" % (f,))
            if f.args[0] not in codes:
                raise AssertionError("connection.close %r, expected a code in %r" % (f.args, codes))
            try:
                self.send_method(0, "connection.close-ok")
            except OSError:
                pass
            self.wait_eof(max(0.0, deadline - time.monotonic()))
            return tuple(f.args)
        raise ReadTimeout("socket not closed")

    def expect_silent_close(self, timeout=5.0):
        """The broker closes the socket without sending any frame (other
        than heartbeats).  Returns seconds waited."""
        t0 = time.monotonic()
        frames = self.wait_eof(timeout)
        extra = [x for x in frames if x.type != FRAME_HEARTBEAT]
        if extra:
            raise AssertionError("expected the socket closed without frames, got %r" % (extra,))
        return time.monotonic() - t0

    def close_connection(self, timeout=None):
        """Client-initiated close: connection.close, wait for close-ok, then
        close the socket (RabbitMQ leaves closing the socket to the client
        after close-ok)."""
        self.send_method(0, "connection.close", REPLY_SUCCESS, "bye", 0, 0)
        f = self.read_method(timeout)
        if f.name != "connection.close-ok" or f.channel != 0:
            raise AssertionError("expected connection.close-ok, got %r" % (f,))
        self.close()

    def publish(self, channel, routing_key, body, exchange=""):
        """basic.publish + content header + one body frame (caller keeps the
        body within frame_max)."""
        self.send_method(channel, "basic.publish", 0, exchange, routing_key, False, False)
        self.send(frame(FRAME_HEADER, channel, struct.pack(">HHQH", 60, 0, len(body), 0)))
        if body:
            self.send(frame(FRAME_BODY, channel, body))


# ---------------------------------------------------------------------------
# Brokers


def find_free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_port(host, port, timeout, proc=None):
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.02) + 1):
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        except OSError:
            pass
        if time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    return False


class ExternalBroker:
    """A broker we do not control (RINGMQ_TEST_URL)."""

    owned = False

    def __init__(self, url):
        u = urllib.parse.urlparse(url)
        self.url = url
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or 5672
        self.user = urllib.parse.unquote(u.username or "guest")
        self.password = urllib.parse.unquote(u.password or "guest")
        path = u.path[1:] if u.path.startswith("/") else u.path
        self.vhost = urllib.parse.unquote(path) if path else "/"
        self.shards = None
        self.product = os.environ.get("RINGMQ_TEST_PRODUCT", "RabbitMQ")
        ctl = os.environ.get("RINGMQ_TEST_RABBITMQCTL")
        self.ctl = shlex.split(ctl) if ctl else None

    def start(self):
        if not wait_port(self.host, self.port, CONNECT_TIMEOUT):
            raise RuntimeError("external broker %s not reachable" % self.url)

    def stop(self):
        pass

    def log_text(self):
        return ""

    def diagnostics(self):
        return ""

    @property
    def can_alarm(self):
        return self.ctl is not None

    def rabbitmqctl(self, *args):
        subprocess.run(self.ctl + list(args), check=True, timeout=30,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def raise_alarm(self):
        self.rabbitmqctl("set_vm_memory_high_watermark", "0.0000001")

    def clear_alarm(self):
        self.rabbitmqctl("set_vm_memory_high_watermark", "0.4")


class RingmqBroker:
    """A ringmq process owned by the test class."""

    owned = True
    product = "ringmq"
    can_alarm = True

    def __init__(self, binary, args=(), shards=None):
        self.binary = binary
        self.extra_args = list(args)
        self.shards = shards if shards is not None else int(os.environ.get("RINGMQ_TEST_SHARDS", "2"))
        self.host = "127.0.0.1"
        self.user = "guest"
        self.password = "guest"
        self.vhost = "/"
        self.proc = None
        self.tmp = None
        self.port = None
        self.exit_status = None

    @property
    def url(self):
        return "amqp://guest:guest@%s:%d/" % (self.host, self.port)

    @property
    def log_file(self):
        return os.path.join(self.tmp, "ringmq.log")

    def command(self, data_dir):
        return [self.binary, "--bind", self.host, "--port", str(self.port),
                "--shards", str(self.shards), "--data-dir", data_dir,
                "--log-level", "debug", "--log-file", self.log_file] + self.extra_args

    def start(self):
        self.tmp = tempfile.mkdtemp(prefix="ringmq-interop-")
        data_dir = os.path.join(self.tmp, "data")
        os.mkdir(data_dir)
        last = None
        for _attempt in range(3):  # the free port may be taken meanwhile
            self.port = find_free_port()
            cmd = self.command(data_dir)
            self.cmd = cmd
            self.out = open(os.path.join(self.tmp, "stdout-stderr.txt"), "ab")
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.out,
                                         stderr=subprocess.STDOUT)
            if wait_port(self.host, self.port, CONNECT_TIMEOUT, self.proc):
                return
            last = self.proc.poll()
            if last is None:
                self.proc.kill()
                self.proc.wait(5)
            self.out.close()
        raise RuntimeError("ringmq did not start (exit status %r): %s\n%s"
                           % (last, " ".join(self.cmd), self.diagnostics()))

    def signal(self, signum):
        self.proc.send_signal(signum)

    def terminate(self, timeout=STOP_TIMEOUT):
        """SIGTERM; returns (exit status or None if still running, seconds)."""
        if self.proc.poll() is not None:
            self.exit_status = self.proc.returncode
            return self.exit_status, 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.exit_status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None, time.monotonic() - t0
        return self.exit_status, time.monotonic() - t0

    def stop(self):
        """Teardown: SIGTERM, exit status 0 within STOP_TIMEOUT."""
        if self.proc is None:
            return
        try:
            status, _ = self.terminate()
            if status is None:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("ringmq did not exit within %.0f s of SIGTERM\n%s"
                                     % (STOP_TIMEOUT, self.diagnostics()))
            if status != 0:
                raise AssertionError("ringmq exited with status %d\n%s"
                                     % (status, self.diagnostics()))
        finally:
            self.out.close()
            if os.environ.get("RINGMQ_TEST_KEEP") is None:
                shutil.rmtree(self.tmp, ignore_errors=True)

    def log_text(self):
        try:
            with open(self.log_file, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def diagnostics(self, tail=200):
        parts = []
        for name in ("ringmq.log", "stdout-stderr.txt"):
            try:
                with open(os.path.join(self.tmp, name), "r", errors="replace") as f:
                    lines = f.readlines()[-tail:]
            except OSError:
                continue
            parts.append("---- %s (last %d lines) ----\n%s" % (name, len(lines), "".join(lines)))
        return "\n".join(parts)

    def raise_alarm(self):
        self.signal(signal.SIGUSR1)

    def clear_alarm(self):
        self.signal(signal.SIGUSR2)


def external_url():
    return os.environ.get("RINGMQ_TEST_URL") or None


def ringmq_binary():
    b = os.environ.get("RINGMQ_BIN")
    if b:
        return b
    for cand in ("./ringmq", os.path.join(os.path.dirname(__file__), "..", "..", "ringmq")):
        if os.access(cand, os.X_OK):
            return os.path.abspath(cand)
    return None


def make_broker(args=(), shards=None):
    url = external_url()
    if url:
        return ExternalBroker(url)
    binary = ringmq_binary()
    if binary is None:
        raise unittest.SkipTest("no broker: set RINGMQ_BIN or RINGMQ_TEST_URL")
    return RingmqBroker(binary, args, shards)


# ---------------------------------------------------------------------------
# Test base class


class TestTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise TestTimeout("test exceeded its time limit")


class BrokerTestCase(unittest.TestCase):
    """One broker per test class.  Subclasses may set:

    ringmq_args  extra ringmq flags (owned mode only)
    shards       fixed shard count (owned mode only), else RINGMQ_TEST_SHARDS
    timeout      per-test limit in seconds
    """

    ringmq_args = ()
    shards = None
    timeout = DEFAULT_TEST_TIMEOUT
    broker = None

    @classmethod
    def setUpClass(cls):
        cls.broker = make_broker(cls.ringmq_args, cls.shards)
        cls.broker.start()

    @classmethod
    def tearDownClass(cls):
        if cls.broker is not None:
            b, cls.broker = cls.broker, None
            b.stop()

    def setUp(self):
        self._old_alarm = signal.signal(signal.SIGALRM, _on_alarm)
        signal.alarm(int(self.timeout))

    def tearDown(self):
        signal.alarm(0)
        signal.signal(signal.SIGALRM, self._old_alarm)

    # -- helpers ---------------------------------------------------------

    @property
    def external(self):
        return not self.broker.owned

    def require_owned(self, why="needs control over the ringmq process"):
        if not self.broker.owned:
            self.skipTest(why)

    def raw(self, timeout=IO_TIMEOUT):
        c = RawClient(self.broker.host, self.broker.port, timeout)
        self.addCleanup(c.close)
        return c

    def raw_open(self, **kw):
        """A RawClient past connection.open-ok."""
        c = self.raw()
        kw.setdefault("user", self.broker.user)
        kw.setdefault("password", self.broker.password)
        kw.setdefault("vhost", self.broker.vhost)
        c.handshake(**kw)
        return c

    def pika_params(self, **kw):
        import pika
        kw.setdefault("host", self.broker.host)
        kw.setdefault("port", self.broker.port)
        kw.setdefault("virtual_host", self.broker.vhost)
        kw.setdefault("credentials",
                      pika.PlainCredentials(self.broker.user, self.broker.password))
        kw.setdefault("connection_attempts", 1)
        kw.setdefault("socket_timeout", 5)
        kw.setdefault("blocked_connection_timeout", None)
        return pika.ConnectionParameters(**kw)

    def pika_connect(self, **kw):
        import pika
        conn = pika.BlockingConnection(self.pika_params(**kw))

        def cleanup():
            if conn.is_open:
                try:
                    conn.close()
                except Exception:
                    pass
        self.addCleanup(cleanup)
        return conn

    def log_text(self):
        return self.broker.log_text()

    def wait_log(self, pattern, timeout=2.0, count=1):
        """Wait (bounded) until `pattern` matches at least `count` log lines;
        returns the list of matches."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        matches = []
        for _ in range(int(timeout / 0.05) + 2):
            matches = [m for m in (rx.search(l) for l in self.log_text().splitlines()) if m]
            if len(matches) >= count or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        return matches

    def assertConnectionClose(self, client, code, timeout=None):
        got = client.expect_connection_close(timeout)
        self.assertEqual(got[0], code, "connection.close %r" % (got,))
        return got


# ---------------------------------------------------------------------------
# Runner


class _Result(unittest.TextTestResult):
    def _dump(self, test):
        b = getattr(type(test), "broker", None)
        if b is not None and getattr(b, "owned", False):
            self.stream.write("\n" + b.diagnostics() + "\n")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._dump(test)

    def addError(self, test, err):
        super().addError(test, err)
        self._dump(test)


def main(module_name="__main__"):
    script = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    module = sys.modules[module_name]
    loader = unittest.TestLoader()
    if len(sys.argv) > 1:
        suite = loader.loadTestsFromNames(sys.argv[1:], module)
    else:
        suite = loader.loadTestsFromModule(module)
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=2, resultclass=_Result)
    result = runner.run(suite)
    holder = unittest.suite._ErrorHolder
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    # Class-level setup/teardown problems are reported against an _ErrorHolder,
    # which testsRun does not count.
    real_failed = sum(1 for t, _ in result.failures + result.errors if not isinstance(t, holder))
    real_skipped = sum(1 for t, _ in result.skipped if not isinstance(t, holder))
    passed = max(0, result.testsRun - real_failed - real_skipped - len(result.unexpectedSuccesses))
    sys.stderr.flush()
    print("interop-%s: %d passed, %d failed, %d skipped" % (script, passed, failed, skipped))
    sys.stdout.flush()
    if failed:
        sys.exit(1)
    if passed == 0:
        sys.exit(77)
    sys.exit(0)
