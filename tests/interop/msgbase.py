"""Shared helpers for the messaging interop tests (test_topology.py,
test_messaging.py, test_scenarios.py, test_clients.py).

Queue placement: with an owned ringmq, every test class starts its broker
with a config file that pins a pool of queue names to each shard
(`[placement]` / `pin = / ipq.<shard>.<n> <shard>`).  A test asks for a
queue name on a given shard with qname(shard); queue tests run their body
once per shard (each_placement), so with 2 shards every queue test runs
with the queue on the connection's own shard and on the other one (the
subtest label says which, from the "accepting AMQP connection ... on shard
N" log line).  Against an external broker (RINGMQ_TEST_URL) placement means
nothing: names get a per-run random part and bodies run once.

Everything a test declares on an external broker is deleted again at the end
of the test (queues and exchanges are registered with cleanup_queue /
cleanup_exchange), so repeated runs against one RabbitMQ node do not
interfere.
"""

import os
import re
import shutil
import struct
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import FRAME_BODY, FRAME_HEADER, BrokerTestCase  # noqa: E402

import pika  # noqa: E402
import pika.exceptions  # noqa: E402

PINS_PER_SHARD = 250
RUN_TOKEN = uuid.uuid4().hex[:8]


def owned_shards(cls):
    return cls.shards if cls.shards is not None else int(os.environ.get("RINGMQ_TEST_SHARDS", "2"))


class MessagingTestCase(BrokerTestCase):
    """BrokerTestCase with queue placement, cleanup and pika helpers.
    Subclasses set base_args (extra ringmq flags) instead of ringmq_args."""

    base_args = ()
    _pin_dir = None

    @classmethod
    def setUpClass(cls):
        cls._counters = {}
        if not harness.external_url() and harness.ringmq_binary() is not None:
            n = owned_shards(cls)
            cls._pin_dir = tempfile.mkdtemp(prefix="ringmq-interop-pins-")
            path = os.path.join(cls._pin_dir, "placement.ini")
            with open(path, "w") as f:
                f.write("[placement]\n")
                for shard in range(n):
                    for i in range(PINS_PER_SHARD):
                        f.write("pin = / ipq.%d.%d %d\n" % (shard, i, shard))
            cls.ringmq_args = tuple(cls.base_args) + ("--config", path)
        else:
            cls.ringmq_args = tuple(cls.base_args)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            if cls._pin_dir:
                shutil.rmtree(cls._pin_dir, ignore_errors=True)
                cls._pin_dir = None

    def setUp(self):
        super().setUp()
        self._queues = []
        self._exchanges = []
        self.addCleanup(self._delete_declared)

    # -- names and placement --------------------------------------------

    def placements(self):
        """Shards to place a queue on: every shard of an owned ringmq, one
        arbitrary placement (None) for an external broker."""
        if self.broker.owned:
            return list(range(self.broker.shards))
        return [None]

    def qname(self, shard=None, register=True):
        """A fresh queue name living on `shard` (owned ringmq), registered
        for deletion at the end of the test."""
        key = shard if shard is not None else 0
        i = self._counters.get(key, 0)
        self._counters[key] = i + 1
        if self.broker.owned:
            if i >= PINS_PER_SHARD:
                raise AssertionError("queue name pool of shard %d exhausted" % key)
            name = "ipq.%d.%d" % (key, i)
        else:
            name = "ipq.%s.%d.%d" % (RUN_TOKEN, key, i)
        if register:
            self._queues.append(name)
        return name

    def xname(self, base):
        name = "ipx.%s.%s.%s" % (RUN_TOKEN, self._testMethodName[-40:], base)
        self._exchanges.append(name)
        return name

    def cleanup_queue(self, name):
        self._queues.append(name)

    def cleanup_exchange(self, name):
        self._exchanges.append(name)

    def _delete_declared(self):
        if not (self._queues or self._exchanges):
            return
        if self.broker.owned and self.broker.proc is not None and self.broker.proc.poll() is not None:
            return
        try:
            conn = pika.BlockingConnection(self.pika_params())
        except Exception:
            return
        try:
            ch = conn.channel()
            for q in self._queues:
                if not ch.is_open:
                    ch = conn.channel()
                try:
                    ch.queue_delete(q)
                except Exception:
                    pass
            for x in self._exchanges:
                if not ch.is_open:
                    ch = conn.channel()
                try:
                    ch.exchange_delete(x)
                except Exception:
                    pass
        finally:
            try:
                conn.close()
            except Exception:
                pass

    def conn_shard(self, conn):
        """The shard serving a pika connection (owned ringmq), from the log."""
        if not self.broker.owned:
            return None
        port = conn._impl._transport._sock.getsockname()[1]
        rx = (r"accepting AMQP connection 127\.0\.0\.1:%d -> 127\.0\.0\.1:%d on shard (\d+)"
              % (port, self.broker.port))
        m = self.wait_log(rx, timeout=2.0)
        if not m:
            raise AssertionError("connection from port %d not in the log" % port)
        return int(m[-1].group(1))

    def each_placement(self, body, conn=None):
        """Run body(shard) once per placement, each in a subTest labelled
        with the queue's shard and, given the test's main connection,
        whether that is the connection's own shard."""
        own = self.conn_shard(conn) if (conn is not None and self.broker.owned) else None
        for shard in self.placements():
            label = {}
            if shard is not None:
                label["queue_shard"] = shard
                if own is not None:
                    label["placement"] = "local" if shard == own else "remote"
            with self.subTest(**label):
                body(shard)

    # -- pika helpers ------------------------------------------------------

    def connect(self, **kw):
        return self.pika_connect(**kw)

    def channel(self, conn=None, confirm=False):
        if conn is None:
            conn = self.connect()
        ch = conn.channel()
        if confirm:
            ch.confirm_delivery()
        return ch

    def declare_queue(self, ch, shard=None, name=None, **kw):
        if name is None:
            name = self.qname(shard)
        else:
            self.cleanup_queue(name)
        ok = ch.queue_declare(name, **kw)
        return ok.method.queue

    def channel_error(self, code, fn, *args, **kw):
        """fn(*args, **kw) must close the channel with `code`; returns the
        reply text."""
        with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as cm:
            fn(*args, **kw)
        self.assertEqual(cm.exception.reply_code, code, cm.exception.reply_text)
        return cm.exception.reply_text

    def connection_error(self, code, conn, fn, *args, **kw):
        with self.assertRaises((pika.exceptions.ConnectionClosedByBroker,
                                pika.exceptions.ChannelClosedByBroker,
                                pika.exceptions.StreamLostError)) as cm:
            fn(*args, **kw)
            for _ in range(50):
                conn.process_data_events(time_limit=0.1)
        e = cm.exception
        if isinstance(e, pika.exceptions.ChannelClosedByBroker):
            self.fail("expected a connection error %d, got channel close %r" % (code, e))
        if isinstance(e, pika.exceptions.StreamLostError):
            self.fail("expected connection.close %d, got a lost stream %r" % (code, e))
        self.assertEqual(e.reply_code, code, e.reply_text)
        return e.reply_text

    def get_all(self, ch, queue, limit=10000, auto_ack=True):
        """basic.get until get-empty (bounded); returns [(method, props, body)]."""
        out = []
        for _ in range(limit + 1):
            m, p, b = ch.basic_get(queue, auto_ack=auto_ack)
            if m is None:
                return out
            out.append((m, p, b))
        raise AssertionError("more than %d messages in %s" % (limit, queue))

    def bodies(self, ch, queue, limit=10000):
        return [b for _, _, b in self.get_all(ch, queue, limit)]

    def collect(self, conn, ch, queue, n, timeout=5.0, auto_ack=True, settle=0.0, **kw):
        """basic.consume, wait (bounded) for n deliveries, plus `settle`
        seconds for extra ones; returns (ctag, [(method, props, body)])."""
        got = []
        ctag = ch.basic_consume(queue, lambda c, m, p, b: got.append((m, p, b)),
                                auto_ack=auto_ack, **kw)
        self.pump(conn, lambda: len(got) >= n, timeout)
        if settle:
            conn.process_data_events(time_limit=settle)
        return ctag, got

    def pump(self, conn, cond, timeout=5.0):
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.01) + 10):
            if cond():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                break
            conn.process_data_events(time_limit=min(0.05, left))
        return cond()


# ---------------------------------------------------------------------------
# Raw-client helpers (content frames)


def read_content(client, channel, timeout=None):
    """The content header and body frames following a deliver/get-ok/return:
    returns (class_id, body_size, property_flags, raw_properties, body)."""
    f = client.read_frame(timeout)
    while f.type == harness.FRAME_HEARTBEAT:
        f = client.read_frame(timeout)
    if f.type != FRAME_HEADER or f.channel != channel:
        raise AssertionError("expected a content header on channel %d, got %r" % (channel, f))
    class_id, _weight, size, flags = struct.unpack(">HHQH", f.payload[:14])
    body = bytearray()
    for _ in range(size + 1):
        if len(body) >= size:
            break
        b = client.read_frame(timeout)
        if b.type != FRAME_BODY or b.channel != channel:
            raise AssertionError("expected a body frame on channel %d, got %r" % (channel, b))
        body.extend(b.payload)
    if len(body) != size:
        raise AssertionError("body of %d bytes, header said %d" % (len(body), size))
    return class_id, size, flags, f.payload[14:], bytes(body)


def publish_raw(client, channel, exchange, routing_key, body, mandatory=False,
                frame_max=131072):
    """basic.publish with the body split to fit frame_max."""
    client.send_method(channel, "basic.publish", 0, exchange, routing_key, mandatory, False)
    client.send(harness.frame(FRAME_HEADER, channel, struct.pack(">HHQH", 60, 0, len(body), 0)))
    step = frame_max - 8
    for i in range(0, len(body), step):
        client.send(harness.frame(FRAME_BODY, channel, body[i:i + step]))


def wait_channel_close(client, channel, timeout=None):
    """Skip frames until channel.close on `channel`; answer close-ok;
    returns (code, text, class, method)."""
    deadline = time.monotonic() + (timeout or client.timeout)
    for _ in range(100000):
        f = client.read_method(max(0.01, deadline - time.monotonic()))
        if f.type == harness.FRAME_METHOD and f.channel == channel and \
                (f.class_id, f.method_id) == (20, 40):
            args = harness.decode_args(["short", "shortstr", "short", "short"], f.payload[4:])
            client.send_method(channel, "channel.close-ok")
            return tuple(args)
        if f.type == harness.FRAME_METHOD and f.name == "connection.close":
            raise AssertionError("connection.close %r instead of channel.close" % (f.args,))
    raise AssertionError("no channel.close")


LOG_SHARD_RX = re.compile(r"on shard (\d+)")
