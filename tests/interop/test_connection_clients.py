#!/usr/bin/python3
"""Connection-level interop through other real clients: aio-pika (asyncio,
python3-aio-pika) and librabbitmq (rabbitmq-c, through the small C program
tests/interop/rmqc_handshake), plus raw-socket robustness checks while pika
connections keep working.

Every expectation here was checked against RabbitMQ 3.10.8 (Debian
bookworm), see tests/interop/rabbitmq-local.sh.  Classes whose client is not
installed are skipped.  The librabbitmq program is looked up as
$RMQC_HANDSHAKE, then $RINGMQ_BUILDDIR/tests/interop/rmqc_handshake, then
next to this script.  With an owned ringmq, each class runs with 2 shards
(or RINGMQ_TEST_SHARDS) and, unless RINGMQ_TEST_SHARDS is set, with 1.
"""

import asyncio
import os
import re
import shlex
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import (  # noqa: E402
    ACCESS_REFUSED, CHANNEL_ERROR, FRAME_BODY, FRAME_ERROR, FRAME_HEARTBEAT, FRAME_METHOD,
    NOT_ALLOWED, NOT_FOUND, REPLY_SUCCESS, BrokerTestCase, frame, method_payload)

try:
    import aio_pika
    import aiormq.exceptions
    import pamqp.commands
    import pamqp.exceptions
except ImportError as e:  # pragma: no cover - depends on the host
    aio_pika = None
    AIO_PIKA_MISSING = "aio-pika is not installed (apt-get install python3-aio-pika): %s" % e

try:
    import pika
except ImportError as e:  # pragma: no cover - depends on the host
    pika = None
    PIKA_MISSING = "pika is not installed (apt-get install python3-pika): %s" % e

AIO_TIMEOUT = 10.0  # bound for one awaited client operation


def run_async(coro, timeout=AIO_TIMEOUT * 3):
    """Run one coroutine on a fresh event loop, bounded as a whole."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def bounded(aw, timeout=AIO_TIMEOUT):
    return await asyncio.wait_for(aw, timeout)


# ---------------------------------------------------------------------------
# A frame-parsing TCP proxy, to see what flows between a client library and
# the broker (heartbeats, connection.tune / tune-ok) without relying on the
# library's internals.


class FrameTap:
    def __init__(self, host, port):
        self.host = host
        self.port = port
        self.server = None
        self.listen_port = None
        # direction ("c2s" or "s2c") -> list of (monotonic time, type,
        # channel, payload)
        self.frames = {"c2s": [], "s2c": []}
        self.tasks = []

    async def start(self):
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.listen_port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self):
        self.server.close()
        await self.server.wait_closed()
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            try:
                await t
            except BaseException:
                pass

    async def _accept(self, creader, cwriter):
        sreader, swriter = await asyncio.open_connection(self.host, self.port)
        self.tasks.append(asyncio.ensure_future(self._pump(creader, swriter, "c2s", 8)))
        self.tasks.append(asyncio.ensure_future(self._pump(sreader, cwriter, "s2c", 0)))

    async def _pump(self, reader, writer, direction, skip):
        buf = bytearray()
        try:
            for _ in range(10 ** 6):
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
                buf.extend(data)
                if skip:
                    n = min(skip, len(buf))
                    del buf[:n]
                    skip -= n
                while len(buf) >= 7:
                    ftype, channel, size = struct.unpack(">BHI", bytes(buf[:7]))
                    if len(buf) < 8 + size:
                        break
                    payload = bytes(buf[7:7 + size])
                    del buf[:8 + size]
                    self.frames[direction].append((time.monotonic(), ftype, channel, payload))
        finally:
            try:
                writer.close()
            except Exception:
                pass

    def heartbeats(self, direction, since=0.0):
        return [t for t, ftype, _, _ in self.frames[direction]
                if ftype == FRAME_HEARTBEAT and t >= since]

    def method(self, direction, class_id, method_id):
        """Payload (after the ids) of the first such method seen, or None."""
        for _, ftype, _, payload in self.frames[direction]:
            if ftype == FRAME_METHOD and struct.unpack(">HH", payload[:4]) == (class_id, method_id):
                return payload[4:]
        return None


# ---------------------------------------------------------------------------
# aio-pika


class AioPikaCase(BrokerTestCase):

    @classmethod
    def setUpClass(cls):
        if aio_pika is None:
            raise unittest.SkipTest(AIO_PIKA_MISSING)
        super().setUpClass()

    async def aconnect(self, port=None, password=None, vhost=None, **query):
        b = self.broker
        return await bounded(aio_pika.connect(
            host=b.host, port=port or b.port, login=b.user,
            password=b.password if password is None else password,
            virtualhost=b.vhost if vhost is None else vhost,
            timeout=AIO_TIMEOUT, **query))


class AioPikaTests(AioPikaCase):

    def test_connect_open_channel_close(self):
        async def go():
            conn = await self.aconnect()
            self.assertFalse(conn.is_closed)
            props = conn.transport.connection.server_properties
            self.assertEqual(props.get("product"), self.broker.product)
            ch = await bounded(conn.channel())
            self.assertFalse(ch.is_closed)
            await bounded(ch.close())
            self.assertTrue(ch.is_closed)
            await bounded(conn.close())
            self.assertTrue(conn.is_closed)
        run_async(go())

    def test_wrong_password(self):
        # aiormq advertises authentication_failure_close, so the broker
        # answers with connection.close 403, which aiormq raises as
        # ProbableAuthenticationError carrying the reply text.
        async def go():
            with self.assertRaises(aiormq.exceptions.ProbableAuthenticationError) as cm:
                await self.aconnect(password="wrong-password")
            self.assertIn("ACCESS_REFUSED", str(cm.exception))
        run_async(go())

    def test_unknown_vhost(self):
        # connection.open answered by connection.close 530.  aiormq 6.4
        # raises that as AMQPInternalError("one of ['Connection.OpenOk']",
        # <the Connection.Close frame>).
        async def go():
            with self.assertRaises(pamqp.exceptions.AMQPInternalError) as cm:
                await self.aconnect(vhost="/interop-no-such-vhost")
            close = cm.exception.args[1]
            self.assertIsInstance(close, pamqp.commands.Connection.Close, cm.exception.args)
            self.assertEqual(close.reply_code, NOT_ALLOWED, close.reply_text)
            self.assertTrue(close.reply_text.startswith("NOT_ALLOWED"), close.reply_text)
            self.assertIn("/interop-no-such-vhost", close.reply_text)
            self.assertEqual((close.class_id, close.method_id), (10, 40))
        run_async(go())

    def test_200_channels(self):
        async def go():
            conn = await self.aconnect()
            try:
                chans = [await bounded(conn.channel()) for _ in range(200)]
                numbers = {ch.number for ch in chans}
                self.assertEqual(len(numbers), 200)
                for ch in chans:
                    await bounded(ch.close())
                self.assertTrue(all(ch.is_closed for ch in chans))
                # The connection is still fine.
                ch = await bounded(conn.channel())
                q = await bounded(ch.declare_queue("", exclusive=True, auto_delete=True))
                self.assertTrue(q.name)
                await bounded(ch.close())
            finally:
                await bounded(conn.close())
        run_async(go())

    def test_channel_error_closes_only_that_channel(self):
        # queue.declare(passive) of a missing queue: channel.close 404 (class
        # 50 method 10), which aiormq raises as ChannelNotFoundEntity; the
        # connection and its other channels keep working.
        async def go():
            conn = await self.aconnect()
            try:
                keep = await bounded(conn.channel())
                bad = await bounded(conn.channel())
                with self.assertRaises(aiormq.exceptions.ChannelNotFoundEntity) as cm:
                    await bounded(bad.declare_queue("interop-aio-no-such-queue", passive=True))
                self.assertIn("NOT_FOUND", str(cm.exception))
                self.assertTrue(bad.is_closed)
                self.assertFalse(conn.is_closed)
                self.assertFalse(keep.is_closed)
                # The surviving channel does a round trip through a queue.
                q = await bounded(keep.declare_queue("", exclusive=True, auto_delete=True))
                await bounded(keep.default_exchange.publish(
                    aio_pika.Message(body=b"still-here"), routing_key=q.name))
                msg = None
                for _ in range(50):
                    msg = await bounded(q.get(fail=False))
                    if msg is not None:
                        break
                    await asyncio.sleep(0.05)
                self.assertIsNotNone(msg, "message not delivered")
                self.assertEqual(msg.body, b"still-here")
                await bounded(msg.ack())
                # A new channel opens fine too.
                again = await bounded(conn.channel())
                await bounded(again.close())
                await bounded(keep.close())
            finally:
                await bounded(conn.close())
        run_async(go())


class AioPikaHeartbeatTests(AioPikaCase):
    ringmq_args = ("--heartbeat", "1")

    def test_heartbeat_keeps_idle_connection(self):
        # aiormq does not take the broker's proposal: it puts its own
        # heartbeat (the URL's, here 1 s) in tune-ok and sends a heartbeat
        # every max(1, heartbeat // 2) s.  The broker (ringmq with
        # --heartbeat 1; RabbitMQ proposes 60) then uses 1 s and sends
        # heartbeats too (RabbitMQ every 0.5 s).  Frames are counted by a
        # proxy between the two.
        async def go():
            tap = await FrameTap(self.broker.host, self.broker.port).start()
            try:
                conn = await self.aconnect(port=tap.listen_port, heartbeat=1)
                try:
                    tune = tap.method("s2c", 10, 30)
                    tune_ok = tap.method("c2s", 10, 31)
                    self.assertIsNotNone(tune)
                    self.assertIsNotNone(tune_ok)
                    _, _, server_hb = struct.unpack(">HIH", tune)
                    _, _, client_hb = struct.unpack(">HIH", tune_ok)
                    if self.broker.owned:
                        self.assertEqual(server_hb, 1)
                    else:
                        self.assertGreater(server_hb, 0)
                    self.assertEqual(client_hb, 1)
                    t0 = time.monotonic()
                    await asyncio.sleep(3.2)
                    self.assertFalse(conn.is_closed, "connection closed while idle")
                    s2c = tap.heartbeats("s2c", t0)
                    c2s = tap.heartbeats("c2s", t0)
                    self.assertGreaterEqual(len(s2c), 2, "broker heartbeats in 3.2 s")
                    self.assertGreaterEqual(len(c2s), 2, "client heartbeats in 3.2 s")
                    # Still usable after the idle period.
                    ch = await bounded(conn.channel())
                    await bounded(ch.declare_queue("", exclusive=True, auto_delete=True))
                    await bounded(ch.close())
                finally:
                    await bounded(conn.close())
            finally:
                await tap.stop()
        run_async(go())


# ---------------------------------------------------------------------------
# librabbitmq (rabbitmq-c)


def rmqc_binary():
    cands = []
    if os.environ.get("RMQC_HANDSHAKE"):
        cands.append(os.environ["RMQC_HANDSHAKE"])
    if os.environ.get("RINGMQ_BUILDDIR"):
        cands.append(os.path.join(os.environ["RINGMQ_BUILDDIR"], "tests", "interop",
                                  "rmqc_handshake"))
    cands.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "rmqc_handshake"))
    for c in cands:
        if os.access(c, os.X_OK):
            return c
    return None


LINE_RX = re.compile(r'(\w[\w-]*)=("(?:[^"]*)"|\S+)')


def parse_lines(out):
    """'step k=v k="text"' lines -> list of (step, {k: v})."""
    steps = []
    for line in out.splitlines():
        if not line.strip():
            continue
        step, _, rest = line.partition(" ")
        kv = {}
        for k, v in LINE_RX.findall(rest):
            kv[k] = v[1:-1] if v.startswith('"') else v
        steps.append((step, kv))
    return steps


class RabbitmqCTests(BrokerTestCase):
    ringmq_args = ("--heartbeat", "1")
    binary = None

    @classmethod
    def setUpClass(cls):
        cls.binary = rmqc_binary()
        if cls.binary is None:
            raise unittest.SkipTest("rmqc_handshake not built (needs librabbitmq-dev; "
                                    "set RMQC_HANDSHAKE or RINGMQ_BUILDDIR)")
        super().setUpClass()

    def rmqc(self, action, *args, password=None, vhost=None, timeout=15):
        b = self.broker
        cmd = [self.binary, b.host, str(b.port), b.user,
               b.password if password is None else password,
               b.vhost if vhost is None else vhost, action] + [str(a) for a in args]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
        out = p.stdout.decode(errors="replace")
        msg = "%s -> exit %d\n%s%s" % (" ".join(shlex.quote(c) for c in cmd), p.returncode,
                                       out, p.stderr.decode(errors="replace"))
        self.assertEqual(p.returncode, 0, msg)
        return dict(parse_lines(out)), parse_lines(out), msg

    def test_login(self):
        steps, _, msg = self.rmqc("login")
        self.assertEqual(steps["login"]["kind"], "normal", msg)
        self.assertGreater(int(steps["login"]["channel_max"]), 0, msg)
        self.assertGreaterEqual(int(steps["login"]["frame_max"]), harness.FRAME_MIN_SIZE, msg)
        # Heartbeat 0 asked for: none, whatever the broker proposed.
        self.assertEqual(int(steps["login"]["heartbeat"]), 0, msg)
        self.assertEqual(steps["close"]["kind"], "normal", msg)

    def test_bad_password(self):
        # librabbitmq advertises authentication_failure_close: amqp_login
        # returns AMQP_RESPONSE_SERVER_EXCEPTION with connection.close 403.
        # (Class/method ids of that close: RabbitMQ 0/0, not pinned.)
        steps, _, msg = self.rmqc("login", password="wrong-password")
        s = steps["login"]
        self.assertEqual(s["kind"], "server-exception", msg)
        self.assertEqual(s["method"], "connection.close", msg)
        self.assertEqual(int(s["code"]), ACCESS_REFUSED, msg)
        self.assertTrue(s["text"].startswith("ACCESS_REFUSED"), msg)

    def test_unknown_vhost(self):
        steps, _, msg = self.rmqc("login", vhost="/interop-no-such-vhost")
        s = steps["login"]
        self.assertEqual(s["kind"], "server-exception", msg)
        self.assertEqual(s["method"], "connection.close", msg)
        self.assertEqual(int(s["code"]), NOT_ALLOWED, msg)
        self.assertEqual((int(s["class"]), int(s["method_id"])), (10, 40), msg)
        self.assertTrue(s["text"].startswith("NOT_ALLOWED"), msg)

    def test_200_channels(self):
        steps, _, msg = self.rmqc("channels", 200)
        self.assertEqual(steps["channels"], {"opened": "200", "closed": "200"}, msg)
        self.assertEqual(steps["close"]["kind"], "normal", msg)

    def test_heartbeat(self):
        # librabbitmq asks for 1 s; the broker's proposal (ringmq 1, RabbitMQ
        # 60) is not lower, so 1 s is used.  While librabbitmq waits for
        # frames it sends heartbeats and swallows the broker's, so after 3 s
        # idle the connection still opens a channel.
        steps, _, msg = self.rmqc("heartbeat", 1, 3000)
        self.assertEqual(steps["login"]["kind"], "normal", msg)
        self.assertEqual(int(steps["login"]["heartbeat"]), 1, msg)
        self.assertEqual(int(steps["idle"]["frames"]), 0, msg)
        self.assertEqual(steps["idle"]["text"], "request timed out", msg)
        self.assertGreaterEqual(int(steps["idle"]["ms"]), 2900, msg)
        self.assertEqual(steps["channel-open"]["kind"], "normal", msg)
        self.assertEqual(steps["close"]["kind"], "normal", msg)

    def test_channel_error_close_code(self):
        # channel.close 404 with the offending method (queue.declare, 50/10);
        # after channel.close-ok the channel id is reusable and the
        # connection closes normally.
        steps, _, msg = self.rmqc("channel-error")
        s = steps["declare-passive"]
        self.assertEqual((s["kind"], s["method"]), ("server-exception", "channel.close"), msg)
        self.assertEqual(int(s["code"]), NOT_FOUND, msg)
        self.assertEqual((int(s["class"]), int(s["method_id"])), (50, 10), msg)
        self.assertTrue(s["text"].startswith("NOT_FOUND"), msg)
        self.assertEqual(steps["close-ok"]["status"], "0", msg)
        self.assertEqual(steps["reopen"]["kind"], "normal", msg)
        self.assertEqual(steps["declare"], {"kind": "normal", "named": "1"}, msg)
        self.assertEqual(steps["channel-close"]["kind"], "normal", msg)
        self.assertEqual(steps["close"]["kind"], "normal", msg)

    def test_connection_error_close_code(self):
        # A second channel.open on an open channel: connection.close 504
        # "CHANNEL_ERROR - second 'channel.open' seen", 20/10.
        steps, _, msg = self.rmqc("connection-error")
        s = steps["second-open"]
        self.assertEqual((s["kind"], s["method"]), ("server-exception", "connection.close"), msg)
        self.assertEqual(int(s["code"]), CHANNEL_ERROR, msg)
        self.assertEqual((int(s["class"]), int(s["method_id"])), (20, 10), msg)
        self.assertTrue(s["text"].startswith("CHANNEL_ERROR"), msg)
        self.assertEqual(steps["close-ok"]["status"], "0", msg)


# ---------------------------------------------------------------------------
# Robustness: malformed input on one connection does not disturb others.


class RobustnessTests(BrokerTestCase):
    timeout = 40
    MESSAGES = 200
    HEALTHY = 3

    @classmethod
    def setUpClass(cls):
        if pika is None:
            raise unittest.SkipTest(PIKA_MISSING)
        super().setUpClass()

    def healthy_worker(self, idx, midway, resume, results):
        """Publish and consume MESSAGES messages one at a time on a queue of
        its own.  Halfway it signals `midway` and waits (bounded) for
        `resume`, so that the malformed input arrives mid-stream."""
        got = []
        err = None
        conn = None
        try:
            conn = pika.BlockingConnection(self.pika_params())
            ch = conn.channel()
            q = ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
            ch.basic_qos(prefetch_count=10)
            gen = ch.consume(q, inactivity_timeout=5.0)
            for i in range(self.MESSAGES):
                if i == self.MESSAGES // 2:
                    midway.set()
                    resume.wait(15.0)
                body = b"worker-%d-msg-%d" % (idx, i)
                ch.basic_publish("", q, body)
                method, _props, got_body = next(gen)
                if method is None:
                    raise AssertionError("message %d not delivered within 5 s" % i)
                ch.basic_ack(method.delivery_tag)
                got.append(got_body)
            ch.cancel()
            ch.close()
            conn.close()
        except BaseException as e:  # reported by the main thread
            err = e
            midway.set()
        finally:
            if conn is not None and conn.is_open:
                try:
                    conn.close()
                except Exception:
                    pass
        results[idx] = (got, err)

    # Each malformed case: (name, set-up kwargs for the handshake, how to
    # misbehave, expected outcome).  The outcome is a close code, or None
    # for "socket closed without connection.close".
    def misbehave_bad_frame_end(self, c):
        # RabbitMQ: 501 "FRAME_ERROR - type 1, all octets = <<0,20,0,10,0>>:
        # {invalid_frame_end_marker,0}".
        c.send(frame(FRAME_METHOD, 2, method_payload(20, 10, [""]), end=0x00))

    def misbehave_oversized_frame(self, c):
        # frame_max 4096 negotiated.  RabbitMQ: 501 "FRAME_ERROR - type 3,
        # all octets = <<>>: {frame_too_large,5000,4088}".
        c.send(frame(FRAME_BODY, 1, b"x" * 5000))

    def misbehave_unopened_channel(self, c):
        # RabbitMQ: 504 "CHANNEL_ERROR - expected 'channel.open'", 60/10.
        c.send_method(9, "basic.qos", 0, 10, False)

    def misbehave_garbage_frame(self, c):
        # Garbage where the next frame header should be.  RabbitMQ: 501
        # (frame type 222, {frame_too_large,...}).
        c.send(b"\xde\xad\xbe\xef" * 8)

    CASES = (
        ("bad_frame_end", {}, "misbehave_bad_frame_end", FRAME_ERROR),
        ("oversized_frame", {"frame_max": 4096}, "misbehave_oversized_frame", FRAME_ERROR),
        ("unopened_channel", {}, "misbehave_unopened_channel", CHANNEL_ERROR),
        ("garbage_frame", {}, "misbehave_garbage_frame", FRAME_ERROR),
    )

    def test_malformed_frames_do_not_disturb_other_connections(self):
        bad = []
        for name, kw, how, code in self.CASES:
            c = self.raw_open(**kw)
            c.open_channel(1)
            bad.append((name, c, how, code))
        # Garbage right after the protocol header, before connection.start-ok:
        # both brokers close the socket without connection.close (RabbitMQ
        # after 3 s).
        pre = self.raw()
        pre.send_header()
        pre.read_start()

        midway = [threading.Event() for _ in range(self.HEALTHY)]
        resume = threading.Event()
        results = {}
        threads = [threading.Thread(target=self.healthy_worker,
                                    args=(i, midway[i], resume, results), daemon=True)
                   for i in range(self.HEALTHY)]
        for t in threads:
            t.start()
        try:
            for ev in midway:
                self.assertTrue(ev.wait(15.0), "healthy connections did not get going")
            for name, c, how, code in bad:
                getattr(self, how)(c)
            pre.send(b"\xde\xad\xbe\xef" * 8)
        finally:
            resume.set()
        outcomes = {}
        for name, c, how, code in bad:
            try:
                got = c.expect_close_or_eof((code,), 6.0)
            except Exception as e:
                got = "error: %s: %s" % (type(e).__name__, e)
            outcomes[name] = got
        try:
            outcomes["garbage_after_header"] = pre.expect_close_or_eof((FRAME_ERROR,), 6.0)
        except Exception as e:
            outcomes["garbage_after_header"] = "error: %s: %s" % (type(e).__name__, e)
        for t in threads:
            t.join(20.0)
        self.assertFalse(any(t.is_alive() for t in threads), "healthy connections hung")

        for name, _c, _how, code in bad:
            with self.subTest(case=name):
                got = outcomes[name]
                self.assertIsInstance(got, tuple, "%s: %r" % (name, got))
                self.assertEqual(got[0], code, "%s: %r" % (name, got))
        with self.subTest(case="garbage_after_header"):
            # None: the socket was closed without connection.close.
            got = outcomes["garbage_after_header"]
            self.assertTrue(got is None or (isinstance(got, tuple) and got[0] == FRAME_ERROR),
                            repr(got))
        for i in range(self.HEALTHY):
            with self.subTest(worker=i):
                got, err = results.get(i, ([], "no result"))
                self.assertIsNone(err, "worker %d: %r" % (i, err))
                self.assertEqual(got, [b"worker-%d-msg-%d" % (i, n)
                                       for n in range(self.MESSAGES)])

    def test_undecodable_method_arguments(self):
        # A method frame whose arguments run past the payload (queue.declare
        # with a 255-octet shortstr length and 2 octets of data).  RabbitMQ:
        # connection.close 501 "FRAME_ERROR - cannot decode <<255,255,255>>"
        # with the method's ids, 50/10.
        c = self.raw_open()
        c.open_channel(1)
        c.send(frame(FRAME_METHOD, 1, struct.pack(">HH", 50, 10) + b"\xff\xff\xff"))
        code, text, cls, meth = self.assertConnectionClose(c, FRAME_ERROR)
        self.assertEqual((cls, meth), (50, 10))
        # Other connections are unaffected.
        ok = self.raw_open()
        ok.open_channel(1)
        ok.send_method(1, "channel.close", REPLY_SUCCESS, "", 0, 0)
        ok.expect_method("channel.close-ok", 1)
        ok.close_connection()


# With an owned ringmq and no RINGMQ_TEST_SHARDS, every class also runs
# against a single-shard broker (the default is 2), so that one make check
# run covers both.
if harness.external_url() is None and not os.environ.get("RINGMQ_TEST_SHARDS"):
    for _cls in (AioPikaTests, AioPikaHeartbeatTests, RabbitmqCTests, RobustnessTests):
        globals()[_cls.__name__ + "OneShard"] = type(
            _cls.__name__ + "OneShard", (_cls,), {"shards": 1, "__module__": __name__})
    del _cls


if __name__ == "__main__":
    harness.main()
