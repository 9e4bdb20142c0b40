#!/usr/bin/python3
"""Messaging with other client libraries: aio-pika (python3-aio-pika),
kombu (python3-kombu, py-amqp transport) and librabbitmq / rabbitmq-c
(librabbitmq-dev; tests/interop/rmqc_client.c is compiled by this test with
cc).  A library that is not installed skips its tests.  Checked against
RabbitMQ 3.10.8; queue tests run once per shard of an owned ringmq.
"""

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from msgbase import MessagingTestCase  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def have(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


class AioPikaTests(MessagingTestCase):

    def setUp(self):
        super().setUp()
        if not have("aio_pika"):
            self.skipTest("python3-aio-pika not installed")

    def run_async(self, coro_fn, timeout=15):
        async def runner():
            return await asyncio.wait_for(coro_fn(), timeout)
        return asyncio.run(runner())

    async def aconnect(self):
        import aio_pika
        return await aio_pika.connect(self.broker.url, timeout=5)

    def test_topic_publish_confirm_consume(self):
        import aio_pika

        def body(shard):
            qname = self.qname(shard)
            xname = self.xname("aio%s" % shard)

            async def go():
                conn = await self.aconnect()
                async with conn:
                    ch = await conn.channel(publisher_confirms=True)
                    x = await ch.declare_exchange(xname, aio_pika.ExchangeType.TOPIC)
                    q = await ch.declare_queue(qname)
                    await q.bind(x, routing_key="order.*.eu")
                    for i in range(50):
                        ack = await x.publish(
                            aio_pika.Message(b"o%d" % i, message_id=str(i),
                                             headers={"n": i}),
                            routing_key="order.%d.eu" % i)
                        self.assertEqual(type(ack).__name__, "Ack")
                    await x.publish(aio_pika.Message(b"skip"), routing_key="order.x.us",
                                    mandatory=False)
                    got = []
                    await ch.set_qos(prefetch_count=10)
                    async with q.iterator() as it:
                        async for msg in it:
                            async with msg.process():
                                got.append((msg.body, msg.message_id, msg.headers["n"]))
                            if len(got) == 50:
                                break
                    self.assertEqual(got, [(b"o%d" % i, str(i), i) for i in range(50)])
                    msg = await q.get(fail=False)
                    self.assertIsNone(msg)
            self.run_async(go)
        self.each_placement(body)

    def test_mandatory_return_and_errors(self):
        import aio_pika
        import aiormq.exceptions

        def body(shard):
            qname = self.qname(shard)

            async def go():
                conn = await self.aconnect()
                async with conn:
                    ch = await conn.channel(publisher_confirms=True)
                    res = await ch.default_exchange.publish(
                        aio_pika.Message(b"lost"), routing_key=qname + ".none", mandatory=True)
                    self.assertEqual(type(res.delivery).__name__, "Return")
                    self.assertEqual(res.delivery.reply_code, 312)
                    self.assertEqual(res.body, b"lost")
                    ch2 = await conn.channel()
                    with self.assertRaises(aiormq.exceptions.ChannelNotFoundEntity):
                        await ch2.declare_queue(qname, passive=True)
                    ch3 = await conn.channel()
                    q = await ch3.declare_queue(qname)
                    ch4 = await conn.channel()
                    with self.assertRaises(aiormq.exceptions.ChannelPreconditionFailed):
                        await ch4.declare_queue(qname, durable=True)
                    await q.delete()
            self.run_async(go)
        self.each_placement(body)

    def test_direct_reply_to_rpc(self):
        import aio_pika

        def body(shard):
            qname = self.qname(shard)

            async def go():
                client = await self.aconnect()
                server = await self.aconnect()
                async with client, server:
                    sch = await server.channel()
                    rq = await sch.declare_queue(qname)

                    async def serve(msg):
                        await sch.default_exchange.publish(
                            aio_pika.Message(b"pong:" + msg.body,
                                             correlation_id=msg.correlation_id),
                            routing_key=msg.reply_to)
                    await rq.consume(serve, no_ack=True)
                    cch = await client.channel()
                    replies = await cch.get_queue("amq.rabbitmq.reply-to", ensure=False)
                    fut = {}
                    loop = asyncio.get_running_loop()

                    async def on_reply(msg):
                        fut[msg.correlation_id].set_result(msg.body)
                    await replies.consume(on_reply, no_ack=True)
                    for i in range(5):
                        cid = "r%d" % i
                        fut[cid] = loop.create_future()
                        await cch.default_exchange.publish(
                            aio_pika.Message(b"ping%d" % i, correlation_id=cid,
                                             reply_to="amq.rabbitmq.reply-to"),
                            routing_key=qname)
                    res = [await asyncio.wait_for(fut["r%d" % i], 5) for i in range(5)]
                    self.assertEqual(res, [b"pong:ping%d" % i for i in range(5)])
            self.run_async(go)
        self.each_placement(body)


class KombuTests(MessagingTestCase):

    def setUp(self):
        super().setUp()
        if not have("kombu"):
            self.skipTest("python3-kombu not installed")

    def kconnect(self):
        import kombu
        b = self.broker
        conn = kombu.Connection(hostname=b.host, port=b.port, userid=b.user,
                                password=b.password, virtual_host=b.vhost,
                                transport="pyamqp", connect_timeout=5)
        self.addCleanup(conn.release)
        conn.connect()
        return conn

    def test_producer_consumer_direct_and_fanout(self):
        from kombu import Consumer, Exchange, Producer, Queue

        def body(shard):
            conn = self.kconnect()
            dx = Exchange(self.xname("kd%s" % shard), type="direct", durable=False)
            fx = Exchange(self.xname("kf%s" % shard), type="fanout", durable=False)
            q1 = Queue(self.qname(shard), exchange=dx, routing_key="payments", durable=False)
            q2 = Queue(self.qname(shard), exchange=fx, durable=False)
            ch = conn.channel()
            q1(ch).declare()
            q2(ch).declare()
            prod = Producer(ch, serializer="json")
            for i in range(20):
                prod.publish({"n": i, "kind": "payment"}, exchange=dx, routing_key="payments")
                prod.publish({"n": i, "kind": "broadcast"}, exchange=fx, routing_key="")
            prod.publish({"n": -1}, exchange=dx, routing_key="other")
            got = {q1.name: [], q2.name: []}

            def on_msg(bodyobj, message):
                src = message.delivery_info["exchange"]
                got[q1.name if src == dx.name else q2.name].append(bodyobj["n"])
                message.ack()
            with Consumer(ch, [q1, q2], callbacks=[on_msg], accept=["json"]):
                for _ in range(200):
                    if sum(map(len, got.values())) >= 40:
                        break
                    try:
                        conn.drain_events(timeout=0.5)
                    except Exception:
                        break
            self.assertEqual(got[q1.name], list(range(20)))
            self.assertEqual(got[q2.name], list(range(20)))
        self.each_placement(body)

    def test_simple_queue_get_ack_reject(self):
        def body(shard):
            conn = self.kconnect()
            name = self.qname(shard)
            sq = conn.SimpleQueue(name, serializer="json",
                                  queue_opts={"durable": False, "auto_delete": False},
                                  exchange_opts={"durable": False})
            self.cleanup_exchange(name)
            try:
                for i in range(5):
                    sq.put({"i": i})
                m = sq.get(timeout=5)
                self.assertEqual(m.payload, {"i": 0})
                m.requeue()
                # SimpleQueue's consumer has no prefetch limit: messages 1..4
                # may already be buffered, so the requeued one can come last.
                rest = []
                for _ in range(5):
                    m = sq.get(timeout=5)
                    rest.append((m.payload["i"], m.delivery_info["redelivered"]))
                    m.ack()
                self.assertEqual(sorted(rest), [(0, True), (1, False), (2, False), (3, False),
                                                (4, False)])
                self.assertEqual([i for i, _ in rest if i], [1, 2, 3, 4])
                self.assertEqual(sq.qsize(), 0)
            finally:
                sq.close()
        self.each_placement(body)


class RabbitmqCTests(MessagingTestCase):
    timeout = 60
    _exe_dir = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.exe = None
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None or not os.path.exists("/usr/include/amqp.h"):
            cls.build_error = "no C compiler or librabbitmq-dev"
            return
        cls._exe_dir = tempfile.mkdtemp(prefix="ringmq-interop-rmqc-")
        exe = os.path.join(cls._exe_dir, "rmqc_client")
        r = subprocess.run([cc, "-O1", "-Wall", "-Wno-deprecated-declarations", "-o", exe,
                            os.path.join(HERE, "rmqc_client.c"), "-lrabbitmq"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        if r.returncode != 0:
            cls.build_error = "cannot build rmqc_client: " + r.stdout.decode(errors="replace")
            return
        cls.exe = exe

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            if cls._exe_dir:
                shutil.rmtree(cls._exe_dir, ignore_errors=True)

    def test_publish_confirm_return_get_consume(self):
        if self.exe is None:
            self.skipTest(self.build_error)

        def body(shard):
            q = self.qname(shard)
            r = subprocess.run([self.exe, self.broker.host, str(self.broker.port), q, "300"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=40)
            out = r.stdout.decode(errors="replace")
            self.assertEqual(r.returncode, 0, out)
            self.assertEqual(out.splitlines(), [
                "declared " + q, "return 312", "confirmed 301", "get msg-0 count=299",
                "consumed 299 in order", "large 1048576 intact", "deleted 0", "OK"])
        self.each_placement(body)


if __name__ == "__main__":
    harness.main()
