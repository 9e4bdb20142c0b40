#!/usr/bin/python3
"""End-to-end user scenarios (bounded in count and time):

* an order service publishing to an exchange that the payment, inventory
  and notification services each consume in full;
* a burst of messages (RINGMQ_TEST_BURST, default 100000; 1000000 for the
  full run) drained by a slow consumer with prefetch 10: nothing lost,
  duplicated or reordered;
* a cache-sync fanout to 8 nodes that all apply the same updates in the
  same order.

Clients: pika, and the raw client of harness.py for the burst publisher
(windowed publisher confirms).  Checked against RabbitMQ 3.10.8.  Each
scenario runs once per shard of an owned ringmq (queues on the connection's
shard and on the other one).
"""

import json
import os
import struct
import sys
import threading
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import FRAME_BODY, FRAME_HEADER, RawClient  # noqa: E402
from msgbase import MessagingTestCase  # noqa: E402

import pika  # noqa: E402

BURST = int(os.environ.get("RINGMQ_TEST_BURST", "100000"))


class OrderServiceTests(MessagingTestCase):
    timeout = 60
    ORDERS = 2000

    def test_order_fanout_to_services(self):
        pub_conn = self.connect()

        def body(shard):
            pch = pub_conn.channel()
            pch.confirm_delivery()
            x = self.xname("orders%s" % shard)
            pch.exchange_declare(x, exchange_type="topic", durable=True)
            services = {}
            for name in ("payment", "inventory", "notification"):
                q = self.declare_queue(pch, shard, durable=True)
                pch.queue_bind(q, x, "order.#")
                services[name] = q
            # Only the notification service also wants cancellations.
            pch.queue_bind(services["notification"], x, "cancel.*")
            orders = []
            for i in range(self.ORDERS):
                order = {"id": i, "customer": "c%d" % (i % 37), "amount": i * 3 % 1000,
                         "items": [{"sku": "s%d" % (i % 11), "qty": 1 + i % 3}]}
                orders.append(order)
                region = ("eu", "us", "apac")[i % 3]
                pch.basic_publish(x, "order.created.%s" % region, json.dumps(order).encode(),
                                  pika.BasicProperties(delivery_mode=2, message_id=str(i),
                                                       content_type="application/json"))
                if i % 500 == 499:
                    pch.basic_publish(x, "cancel.%d" % i, b"cancel-%d" % i)
            expected = [json.dumps(o).encode() for o in orders]
            for name, q in services.items():
                with self.subTest(service=name):
                    conn = self.connect()
                    ch = conn.channel()
                    ch.basic_qos(prefetch_count=50)
                    got = []

                    def on_msg(c, m, p, b, got=got):
                        got.append((p.message_id, b))
                        c.basic_ack(m.delivery_tag)
                    ch.basic_consume(q, on_msg)
                    want = self.ORDERS + (4 if name == "notification" else 0)
                    self.pump(conn, lambda: len(got) >= want, 20)
                    conn.process_data_events(time_limit=0.1)
                    orders_got = [b for mid, b in got if mid is not None]
                    self.assertEqual(len(orders_got), self.ORDERS)
                    self.assertTrue(orders_got == expected, "orders differ or out of order")
                    cancels = [b for mid, b in got if mid is None]
                    if name == "notification":
                        self.assertEqual(cancels, [b"cancel-%d" % i for i in
                                                   (499, 999, 1499, 1999)])
                    else:
                        self.assertEqual(cancels, [])
                    conn.close()
                    self.assertEqual(pch.queue_declare(q, passive=True).method.message_count, 0)
        self.each_placement(body, pub_conn)


class BurstTests(MessagingTestCase):
    # Per placement (shard) run; the full 1,000,000 run gets more time.
    timeout = max(85, BURST // 2000)

    def publish_burst(self, q, n, errors):
        """Raw publisher with confirms and a bounded window of unconfirmed
        messages; runs in a thread."""
        try:
            c = RawClient(self.broker.host, self.broker.port, timeout=20)
            try:
                c.handshake(user=self.broker.user, password=self.broker.password,
                            vhost=self.broker.vhost)
                c.open_channel(1)
                c.send_method(1, "confirm.select", False)
                c.expect_method("confirm.select-ok", 1)
                pub = harness.method_frame(1, "basic.publish", 0, "", q, False, False)
                confirmed = 0
                batch = 500
                window = 5000
                for start in range(0, n, batch):
                    out = bytearray()
                    for i in range(start, min(n, start + batch)):
                        body = struct.pack(">Q", i) + b"burst" * 4
                        out += pub
                        out += harness.frame(FRAME_HEADER, 1,
                                             struct.pack(">HHQHB", 60, 0, len(body), 0x1000, 2))
                        out += harness.frame(FRAME_BODY, 1, body)
                    c.send(bytes(out))
                    sent = min(n, start + batch)
                    for _ in range(n + 1):
                        if sent - confirmed <= window:
                            break
                        confirmed = self._read_ack(c, confirmed)
                for _ in range(n + 1):
                    if confirmed >= n:
                        break
                    confirmed = self._read_ack(c, confirmed)
                c.close_connection()
            finally:
                c.close()
        except Exception as e:  # reported by the main thread
            errors.append(e)

    @staticmethod
    def _read_ack(c, confirmed):
        f = c.expect_method("basic.ack", 1, timeout=20)
        tag, multiple = f.args
        if tag <= confirmed or (not multiple and tag != confirmed + 1):
            raise AssertionError("confirm %r after %d" % (f.args, confirmed))
        return tag

    def test_burst_slow_consumer_prefetch_10(self):
        per = BURST

        def body(shard):
            conn = self.connect()
            ch = conn.channel()
            q = self.declare_queue(ch, shard)
            ch.basic_qos(prefetch_count=10)
            state = {"next": 0, "bad": [], "redelivered": 0, "max_unacked": 0, "unacked": 0}

            def on_msg(c, m, p, b):
                (i,) = struct.unpack(">Q", b[:8])
                if i != state["next"]:
                    state["bad"].append((state["next"], i))
                state["next"] = i + 1
                if m.redelivered:
                    state["redelivered"] += 1
                # The slow part: ack each message on its own, and take a
                # short nap now and then.
                if i % 2000 == 1999:
                    time.sleep(0.005)
                c.basic_ack(m.delivery_tag)
            ch.basic_consume(q, on_msg)
            errors = []
            t = threading.Thread(target=self.publish_burst, args=(q, per, errors), daemon=True)
            t0 = time.monotonic()
            t.start()
            deadline = t0 + self.timeout / len(self.placements()) - 5
            for _ in range(10 ** 7):
                if state["next"] >= per or len(state["bad"]) > 10 or errors:
                    break
                if time.monotonic() > deadline:
                    break
                conn.process_data_events(time_limit=0.05)
            t.join(20)
            self.assertFalse(t.is_alive(), "publisher stuck")
            self.assertEqual(errors, [])
            self.assertEqual(state["bad"], [], "lost, duplicated or reordered (expected, got)")
            self.assertEqual(state["next"], per, "not all messages consumed in time")
            self.assertEqual(state["redelivered"], 0)
            conn.process_data_events(time_limit=0.2)
            self.assertEqual(state["next"], per, "extra deliveries")
            ch.close()
            ch = conn.channel()
            ok = ch.queue_declare(q, passive=True)
            self.assertEqual((ok.method.message_count, ok.method.consumer_count), (0, 0))
            conn.close()
        self.each_placement(body)


class CacheSyncTests(MessagingTestCase):
    timeout = 60
    NODES = 8
    UPDATES = 3000

    def run_sync(self, declare_node_queue, x_prefix):
        pub = self.connect()
        pch = pub.channel()
        pch.confirm_delivery()
        x = self.xname(x_prefix)
        pch.exchange_declare(x, exchange_type="fanout")
        nodes = []
        for n in range(self.NODES):
            conn = self.connect()
            ch = conn.channel()
            q = declare_node_queue(ch)
            ch.queue_bind(q, x)
            ch.basic_qos(prefetch_count=100)
            node = {"conn": conn, "cache": {}, "log": [], "seen": 0}

            def on_msg(c, m, p, b, node=node):
                op = json.loads(b)
                if op["op"] == "set":
                    node["cache"][op["k"]] = op["v"]
                else:
                    node["cache"].pop(op["k"], None)
                node["log"].append(op["seq"])
                node["seen"] += 1
                if node["seen"] % 50 == 0:
                    c.basic_ack(m.delivery_tag, multiple=True)
            ch.basic_consume(q, on_msg)
            node["ch"] = ch
            nodes.append(node)
        reference = {}
        for seq in range(self.UPDATES):
            k = "key%d" % (seq * 7919 % 97)
            if seq % 5 == 4:
                op = {"seq": seq, "op": "del", "k": k}
                reference.pop(k, None)
            else:
                op = {"seq": seq, "op": "set", "k": k, "v": "v%d-%08x" % (seq, zlib.crc32(k.encode()))}
                reference[k] = op["v"]
            pch.basic_publish(x, "", json.dumps(op).encode())
        deadline = time.monotonic() + 30
        for _ in range(100000):
            if all(nd["seen"] >= self.UPDATES for nd in nodes) or time.monotonic() > deadline:
                break
            for nd in nodes:
                nd["conn"].process_data_events(time_limit=0.005)
        for i, nd in enumerate(nodes):
            with self.subTest(node=i):
                self.assertEqual(nd["log"], list(range(self.UPDATES)))
                self.assertEqual(nd["cache"], reference)
        for nd in nodes:
            nd["conn"].close()

    def test_cache_sync_named_queues(self):
        def body(shard):
            self.run_sync(lambda ch: self.declare_queue(ch, shard, exclusive=True),
                          "cache%s" % shard)
        self.each_placement(body)

    def test_cache_sync_server_named_queues(self):
        # Each node's server-named queue lives on its own connection's shard.
        self.run_sync(lambda ch: ch.queue_declare("", exclusive=True).method.queue, "cachesn")


if __name__ == "__main__":
    harness.main()
