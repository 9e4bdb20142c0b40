#!/usr/bin/python3
"""Queue argument interop tests: dead-lettering (x-dead-letter-exchange,
x-dead-letter-routing-key) of rejected, nacked, expired and dropped
messages with RabbitMQ's x-death headers; x-message-ttl and the per-message
expiration property (expiry at the head of the queue); x-max-length and
x-max-length-bytes with the default overflow behaviour, drop-head.

Every expectation here was checked against RabbitMQ 3.10.8 (Debian
bookworm, tests/interop/rabbitmq-local.sh).  Queue tests run once per shard
of an owned ringmq (see msgbase.py); a dead-letter queue lives on another
shard than the queue its messages die in, so dead-lettering crosses shards.

UnbuiltProbes covers queue arguments ringmq does not implement yet
(x-expires, x-overflow reject-publish, x-max-priority,
x-single-active-consumer, x-queue-mode lazy, argument validation); it runs
only with RINGMQ_TEST_UNBUILT=1.
"""

import datetime
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import NOT_FOUND, PRECONDITION_FAILED  # noqa: E402
from msgbase import MessagingTestCase  # noqa: E402

import pika  # noqa: E402
import pika.compat  # noqa: E402
import pika.exceptions  # noqa: E402

# The keys of one x-death entry for a message without an expiration property.
X_DEATH_KEYS = {"count", "reason", "queue", "time", "exchange", "routing-keys"}
FIRST_DEATH_KEYS = {"x-first-death-reason", "x-first-death-queue", "x-first-death-exchange"}


class QueueArgsTestCase(MessagingTestCase):

    def chan(self, conn):
        """A channel in confirm mode: every publish has reached its queues
        when basic_publish returns."""
        ch = conn.channel()
        ch.confirm_delivery()
        return ch

    def other_shard(self, shard):
        """A shard other than `shard` for the dead-letter queue (owned ringmq
        with more than one shard), else the same placement."""
        if shard is None or self.broker.shards in (None, 1):
            return shard
        return (shard + 1) % self.broker.shards

    def count(self, ch, q):
        return ch.queue_declare(q, passive=True).method.message_count

    def wait_count(self, ch, q, n, timeout=3.0):
        """Poll (bounded) until queue q holds n ready messages; returns the
        last count seen."""
        deadline = time.monotonic() + timeout
        got = None
        for _ in range(int(timeout / 0.02) + 2):
            got = self.count(ch, q)
            if got == n or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        return got

    def take(self, ch, q, n, timeout=3.0):
        """basic.get (auto-ack) until n messages came from q or the
        deadline; returns [(method, props, body)]."""
        out = []
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.02) + n + 2):
            if len(out) >= n:
                break
            m, p, b = ch.basic_get(q, auto_ack=True)
            if m is not None:
                out.append((m, p, b))
                continue
            if time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        return out

    def dead_setup(self, ch, shard, routing_key="dk", exchange_type="direct"):
        """A dead-letter exchange and a queue bound to it with routing_key
        (on another shard); returns (dlx, dead queue)."""
        dlx = self.xname("dlx%s" % shard)
        ch.exchange_declare(dlx, exchange_type=exchange_type)
        dq = self.declare_queue(ch, self.other_shard(shard))
        ch.queue_bind(dq, dlx, routing_key)
        return dlx, dq

    def assertXDeath(self, props, entries, first):
        """props.headers carries x-death == entries (list of (queue, reason,
        exchange, routing_keys, count), most recent first) and x-first-death
        == first (reason, queue, exchange)."""
        h = props.headers or {}
        xd = h.get("x-death")
        self.assertIsInstance(xd, list, "x-death missing: %r" % (h,))
        got = [(e.get("queue"), e.get("reason"), e.get("exchange"), e.get("routing-keys"),
                e.get("count")) for e in xd]
        self.assertEqual(got, entries, "x-death %r" % (xd,))
        now = datetime.datetime.utcnow()
        for e in xd:
            # count is a long ('l'); time an AMQP timestamp ('T').
            self.assertIsInstance(e["count"], pika.compat.long, "x-death count %r" % (e,))
            self.assertIsInstance(e["time"], datetime.datetime, "x-death time %r" % (e,))
            self.assertLess(abs((now - e["time"]).total_seconds()), 120, "x-death time %r" % (e,))
        self.assertEqual((h.get("x-first-death-reason"), h.get("x-first-death-queue"),
                          h.get("x-first-death-exchange")), first, h)


class DeadLetterTests(QueueArgsTestCase):

    def test_reject_and_nack_dead_lettered_with_x_death(self):
        # RabbitMQ: basic.reject / basic.nack with requeue=false republish
        # the message to x-dead-letter-exchange with x-dead-letter-routing-key,
        # properties kept, headers extended with
        #   x-death: [{count: 1 (long), reason: <<"rejected">>, queue, time
        #              (timestamp), exchange, routing-keys: [original key]}]
        #   x-first-death-reason / -queue / -exchange.
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            dlx, dq = self.dead_setup(ch, shard)
            src = self.xname("src%s" % shard)
            ch.exchange_declare(src, exchange_type="direct")
            q = self.declare_queue(ch, shard, arguments={"x-dead-letter-exchange": dlx,
                                                         "x-dead-letter-routing-key": "dk"})
            ch.queue_bind(q, src, "rk")
            for i, how in enumerate(("reject", "nack")):
                ch.basic_publish(src, "rk", b"m-" + how.encode(), pika.BasicProperties(
                    content_type="text/plain", message_id="id-%d" % i, delivery_mode=2,
                    correlation_id="c", headers={"h": i}))
            for how in ("reject", "nack"):
                m, _, b = ch.basic_get(q)
                self.assertEqual(b, b"m-" + how.encode())
                if how == "reject":
                    ch.basic_reject(m.delivery_tag, requeue=False)
                else:
                    ch.basic_nack(m.delivery_tag, requeue=False)
            got = self.take(ch, dq, 2)
            self.assertEqual([b for _, _, b in got], [b"m-reject", b"m-nack"])
            for i, (m, p, b) in enumerate(got):
                self.assertEqual((m.exchange, m.routing_key), (dlx, "dk"))
                self.assertFalse(m.redelivered)
                self.assertEqual((p.content_type, p.message_id, p.delivery_mode,
                                  p.correlation_id, p.expiration),
                                 ("text/plain", "id-%d" % i, 2, "c", None))
                self.assertEqual(set(p.headers), {"h", "x-death"} | FIRST_DEATH_KEYS, p.headers)
                self.assertEqual(p.headers["h"], i)
                self.assertEqual(set(p.headers["x-death"][0]), X_DEATH_KEYS)
                self.assertXDeath(p, [(q, "rejected", src, ["rk"], 1)], ("rejected", q, src))
            self.assertEqual(self.count(ch, q), 0)
            self.assertEqual(self.count(ch, dq), 0)
        self.each_placement(body, conn)

    def test_original_routing_key_without_dead_letter_routing_key(self):
        # Without x-dead-letter-routing-key the message keeps the routing key
        # it was published with (here the queue name, default exchange).
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            q = self.qname(shard)
            dlx, dq = self.dead_setup(ch, shard, routing_key=q)
            self.declare_queue(ch, name=q, arguments={"x-dead-letter-exchange": dlx})
            ch.basic_publish("", q, b"keep-key")
            m, _, _ = ch.basic_get(q)
            ch.basic_reject(m.delivery_tag, requeue=False)
            got = self.take(ch, dq, 1)
            self.assertEqual([(m.exchange, m.routing_key, b) for m, _, b in got],
                             [(dlx, q, b"keep-key")])
            self.assertXDeath(got[0][1], [(q, "rejected", "", [q], 1)], ("rejected", q, ""))
        self.each_placement(body, conn)

    def test_requeue_true_is_not_dead_lettered(self):
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            dlx, dq = self.dead_setup(ch, shard)
            q = self.declare_queue(ch, shard, arguments={"x-dead-letter-exchange": dlx,
                                                         "x-dead-letter-routing-key": "dk"})
            ch.basic_publish("", q, b"again")
            m, _, _ = ch.basic_get(q)
            ch.basic_reject(m.delivery_tag, requeue=True)
            m, _, _ = ch.basic_get(q)
            ch.basic_nack(m.delivery_tag, requeue=True)
            m, p, b = ch.basic_get(q, auto_ack=True)
            self.assertEqual((b, m.redelivered, p.headers), (b"again", True, None))
            time.sleep(0.1)
            self.assertEqual(self.count(ch, dq), 0)
        self.each_placement(body, conn)

    def test_nack_multiple_from_consumer(self):
        # A consumer's nack(multiple=true, requeue=false) dead-letters every
        # message up to the tag, in queue order.
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            dlx, dq = self.dead_setup(ch, shard)
            q = self.declare_queue(ch, shard, arguments={"x-dead-letter-exchange": dlx,
                                                         "x-dead-letter-routing-key": "dk"})
            for i in range(3):
                ch.basic_publish("", q, b"n%d" % i)
            tag, got = self.collect(conn, ch, q, 3, auto_ack=False)
            self.assertEqual([b for _, _, b in got], [b"n0", b"n1", b"n2"])
            ch.basic_nack(got[-1][0].delivery_tag, multiple=True, requeue=False)
            ch.basic_cancel(tag)
            dead = self.take(ch, dq, 3)
            self.assertEqual([b for _, _, b in dead], [b"n0", b"n1", b"n2"])
            for _, p, _ in dead:
                self.assertXDeath(p, [(q, "rejected", "", [q], 1)], ("rejected", q, ""))
            self.assertEqual(self.count(ch, q), 0)
        self.each_placement(body, conn)

    def test_count_increments_in_same_queue(self):
        # A queue dead-lettering into itself (default exchange, its own name):
        # each rejection bumps the one x-death entry's count, x-first-death-*
        # never change.
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            q = self.qname(shard)
            self.declare_queue(ch, name=q, arguments={"x-dead-letter-exchange": "",
                                                      "x-dead-letter-routing-key": q})
            ch.basic_publish("", q, b"loop")
            for n in range(4):
                m = None
                for _ in range(150):
                    m, p, b = ch.basic_get(q)
                    if m is not None:
                        break
                    time.sleep(0.02)
                self.assertIsNotNone(m, "message lost after %d rejections" % n)
                if n == 0:
                    self.assertIsNone(p.headers)
                else:
                    self.assertXDeath(p, [(q, "rejected", "", [q], n)], ("rejected", q, ""))
                ch.basic_reject(m.delivery_tag, requeue=False)
            got = self.take(ch, q, 1)
            self.assertEqual(len(got), 1)
            self.assertXDeath(got[0][1], [(q, "rejected", "", [q], 4)], ("rejected", q, ""))
        self.each_placement(body, conn)

    def test_retry_cycle_two_queues(self):
        # The usual retry pattern: work queue A dead-letters rejects to B, B
        # has x-message-ttl and dead-letters expired messages back to A.
        # x-death lists one entry per (queue, reason), the most recent first;
        # x-first-death-* describe the very first death.
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            a = self.qname(shard)
            b = self.qname(self.other_shard(shard))
            self.declare_queue(ch, name=a, arguments={"x-dead-letter-exchange": "",
                                                      "x-dead-letter-routing-key": b})
            self.declare_queue(ch, name=b, arguments={"x-message-ttl": 100,
                                                      "x-dead-letter-exchange": "",
                                                      "x-dead-letter-routing-key": a})
            ch.basic_publish("", a, b"retry")
            m, _, _ = ch.basic_get(a)
            for n in (1, 2):
                ch.basic_reject(m.delivery_tag, requeue=False)
                m = None
                for _ in range(150):
                    m, p, body_ = ch.basic_get(a)
                    if m is not None:
                        break
                    time.sleep(0.02)
                self.assertIsNotNone(m, "message did not come back, round %d" % n)
                self.assertEqual(body_, b"retry")
                self.assertXDeath(p, [(b, "expired", "", [b], n), (a, "rejected", "", [a], n)],
                                  ("rejected", a, ""))
            ch.basic_ack(m.delivery_tag)
        self.each_placement(body, conn)

    def test_republished_x_death_counted(self):
        # A client that republishes a dead-lettered message with its headers:
        # when it dies again in the same queue for the same reason, the
        # existing entry's count goes up (no second entry).
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            dlx, dq = self.dead_setup(ch, shard)
            q = self.declare_queue(ch, shard, arguments={"x-dead-letter-exchange": dlx,
                                                         "x-dead-letter-routing-key": "dk"})
            ch.basic_publish("", q, b"again")
            for n in (1, 2, 3):
                m, _, _ = ch.basic_get(q)
                ch.basic_nack(m.delivery_tag, requeue=False)
                got = self.take(ch, dq, 1)
                self.assertEqual(len(got), 1)
                _, p, b = got[0]
                self.assertXDeath(p, [(q, "rejected", "", [q], n)], ("rejected", q, ""))
                ch.basic_publish("", q, b, p)
        self.each_placement(body, conn)

    def test_missing_dead_letter_exchange_drops(self):
        # A dead-letter exchange that does not exist: rejected, expired and
        # maxlen-dropped messages are dropped silently, the channel stays open.
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            ghost = "ipx.ghost.%s.%s" % (shard, id(self))
            q = self.declare_queue(ch, shard, arguments={"x-dead-letter-exchange": ghost,
                                                         "x-dead-letter-routing-key": "dk",
                                                         "x-max-length": 2})
            ch.basic_publish("", q, b"rejected")
            m, _, _ = ch.basic_get(q)
            ch.basic_reject(m.delivery_tag, requeue=False)
            ch.basic_publish("", q, b"expired", pika.BasicProperties(expiration="50"))
            for i in range(3):
                ch.basic_publish("", q, b"k%d" % i)
            self.assertEqual(self.wait_count(ch, q, 2), 2)
            self.assertEqual(self.bodies(ch, q), [b"k1", b"k2"])
            self.assertTrue(ch.is_open)
            # The exchange declared afterwards receives nothing old.
            ch.exchange_declare(ghost, exchange_type="direct")
            self.cleanup_exchange(ghost)
            dq = self.declare_queue(ch, self.other_shard(shard))
            ch.queue_bind(dq, ghost, "dk")
            time.sleep(0.1)
            self.assertEqual(self.count(ch, dq), 0)
            # ...and from now on gets the dead letters.
            ch.basic_publish("", q, b"later")
            m, _, _ = ch.basic_get(q)
            ch.basic_reject(m.delivery_tag, requeue=False)
            self.assertEqual([b for _, _, b in self.take(ch, dq, 1)], [b"later"])
        self.each_placement(body, conn)

    def test_dead_lettered_message_loses_expiration(self):
        # RabbitMQ removes the expiration property from a dead-lettered
        # message (so it does not expire again in the dead-letter queue) and
        # records it as x-death's original-expiration -- for rejected and for
        # expired messages alike.
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            dlx, dq = self.dead_setup(ch, shard)
            q = self.declare_queue(ch, shard, arguments={"x-dead-letter-exchange": dlx,
                                                         "x-dead-letter-routing-key": "dk"})
            ch.basic_publish("", q, b"rej", pika.BasicProperties(expiration="60000"))
            m, _, _ = ch.basic_get(q)
            ch.basic_reject(m.delivery_tag, requeue=False)
            ch.basic_publish("", q, b"exp", pika.BasicProperties(expiration="100"))
            got = self.take(ch, dq, 2)
            self.assertEqual([b for _, _, b in got], [b"rej", b"exp"])
            problems = []
            for (_, p, _), exp, reason in zip(got, ("60000", "100"), ("rejected", "expired")):
                xd = p.headers["x-death"][0]
                self.assertEqual(xd.get("reason"), reason)
                if p.expiration is not None:
                    problems.append("%s: kept expiration %r" % (reason, p.expiration))
                if xd.get("original-expiration") != exp:
                    problems.append("%s: x-death original-expiration %r, expected %r"
                                    % (reason, xd.get("original-expiration"), exp))
                elif set(xd) != X_DEATH_KEYS | {"original-expiration"}:
                    problems.append("%s: x-death keys %r" % (reason, sorted(xd)))
            self.assertEqual(problems, [])
        self.each_placement(body, conn)


class TTLTests(QueueArgsTestCase):

    def test_queue_ttl_expires_without_consumer(self):
        # x-message-ttl: messages go away by themselves; queue.declare-ok's
        # message_count (passive or not) drops to 0 with no consumer and no
        # basic.get.
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            args = {"x-message-ttl": 200}
            q = self.declare_queue(ch, shard, arguments=args)
            for i in range(3):
                ch.basic_publish("", q, b"t%d" % i)
            self.assertEqual(self.count(ch, q), 3)
            self.assertEqual(self.wait_count(ch, q, 0), 0)
            self.assertEqual(ch.queue_declare(q, arguments=args).method.message_count, 0)
            self.assertEqual(self.bodies(ch, q), [])
        self.each_placement(body, conn)

    def test_queue_ttl_dead_lettered_expired(self):
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            dlx, dq = self.dead_setup(ch, shard)
            q = self.declare_queue(ch, shard, arguments={"x-message-ttl": 150,
                                                         "x-dead-letter-exchange": dlx,
                                                         "x-dead-letter-routing-key": "dk"})
            for i in range(3):
                ch.basic_publish("", q, b"e%d" % i, pika.BasicProperties(headers={"i": i}))
            got = self.take(ch, dq, 3)
            self.assertEqual([b for _, _, b in got], [b"e0", b"e1", b"e2"])
            for i, (m, p, _) in enumerate(got):
                self.assertEqual((m.exchange, m.routing_key), (dlx, "dk"))
                self.assertEqual(p.headers["i"], i)
                self.assertEqual(set(p.headers["x-death"][0]), X_DEATH_KEYS)
                self.assertXDeath(p, [(q, "expired", "", [q], 1)], ("expired", q, ""))
            self.assertEqual(self.count(ch, q), 0)
        self.each_placement(body, conn)

    def test_shorter_of_queue_and_message_ttl_wins(self):
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            # Queue TTL long, message expiration short.
            q1 = self.declare_queue(ch, shard, arguments={"x-message-ttl": 60000})
            ch.basic_publish("", q1, b"short", pika.BasicProperties(expiration="100"))
            ch.basic_publish("", q1, b"stays")
            # Queue TTL short, message expiration long.
            q2 = self.declare_queue(ch, shard, arguments={"x-message-ttl": 100})
            ch.basic_publish("", q2, b"long", pika.BasicProperties(expiration="60000"))
            # No queue TTL.
            q3 = self.declare_queue(ch, shard)
            ch.basic_publish("", q3, b"msg-ttl", pika.BasicProperties(expiration="100"))
            ch.basic_publish("", q3, b"no-ttl")
            self.assertEqual(self.wait_count(ch, q1, 1), 1)
            self.assertEqual(self.wait_count(ch, q2, 0), 0)
            self.assertEqual(self.wait_count(ch, q3, 1), 1)
            self.assertEqual(self.bodies(ch, q1), [b"stays"])
            self.assertEqual(self.bodies(ch, q3), [b"no-ttl"])
        self.each_placement(body, conn)

    def test_expiry_only_at_head(self):
        # RabbitMQ 3.10 expires messages only at the head of the queue: a
        # short-lived message behind a long-lived one is still counted and is
        # dead-lettered only when it reaches the head, right after the long
        # one expires.
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            dlx, dq = self.dead_setup(ch, shard)
            q = self.declare_queue(ch, shard, arguments={"x-dead-letter-exchange": dlx,
                                                         "x-dead-letter-routing-key": "dk"})
            ch.basic_publish("", q, b"long", pika.BasicProperties(expiration="1000"))
            ch.basic_publish("", q, b"short", pika.BasicProperties(expiration="50"))
            time.sleep(0.4)
            self.assertEqual(self.count(ch, q), 2)
            self.assertEqual(self.count(ch, dq), 0)
            got = self.take(ch, dq, 2, timeout=4.0)
            self.assertEqual([b for _, _, b in got], [b"long", b"short"])
            for _, p, _ in got:
                self.assertEqual(p.headers["x-death"][0]["reason"], "expired")
            self.assertEqual(self.count(ch, q), 0)
        self.each_placement(body, conn)

    def test_expired_message_reaching_head_skipped_by_get(self):
        # Once the long-lived head is taken, the expired message behind it
        # is dropped (and dead-lettered) instead of being delivered.
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            dlx, dq = self.dead_setup(ch, shard)
            q = self.declare_queue(ch, shard, arguments={"x-dead-letter-exchange": dlx,
                                                         "x-dead-letter-routing-key": "dk"})
            ch.basic_publish("", q, b"long", pika.BasicProperties(expiration="10000"))
            ch.basic_publish("", q, b"short", pika.BasicProperties(expiration="50"))
            ch.basic_publish("", q, b"plain")
            time.sleep(0.3)
            self.assertEqual(self.bodies(ch, q), [b"long", b"plain"])
            got = self.take(ch, dq, 1)
            self.assertEqual([b for _, _, b in got], [b"short"])
            self.assertXDeath(got[0][1], [(q, "expired", "", [q], 1)], ("expired", q, ""))
        self.each_placement(body, conn)

    def test_expiration_zero(self):
        # expiration "0": delivered only if a consumer can take it at once;
        # otherwise it expires (and is dead-lettered) straight away.
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            dlx, dq = self.dead_setup(ch, shard)
            q = self.declare_queue(ch, shard, arguments={"x-dead-letter-exchange": dlx,
                                                         "x-dead-letter-routing-key": "dk"})
            ch.basic_publish("", q, b"nobody", pika.BasicProperties(expiration="0"))
            got = self.take(ch, dq, 1)
            self.assertEqual([b for _, _, b in got], [b"nobody"])
            self.assertEqual(self.bodies(ch, q), [])
            seen = []
            tag = ch.basic_consume(q, lambda c, m, p, b: seen.append(b), auto_ack=True)
            conn.process_data_events(time_limit=0.1)
            ch.basic_publish("", q, b"someone", pika.BasicProperties(expiration="0"))
            self.pump(conn, lambda: seen, 3.0)
            ch.basic_cancel(tag)
            self.assertEqual(seen, [b"someone"])
            time.sleep(0.1)
            self.assertEqual(self.count(ch, dq), 0)
        self.each_placement(body, conn)

    def test_invalid_expiration_406(self):
        # RabbitMQ: channel.close 406 "PRECONDITION_FAILED - invalid
        # expiration 'abc': no_integer" (60/40); likewise for "-1"
        # ({value_negative,-1}), "1.5" ({leftover_string,".5"}) and "".
        # The message is not enqueued.
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            q = self.declare_queue(ch, shard)
            for bad in ("abc", "-1", "1.5", ""):
                with self.subTest(expiration=bad):
                    ch = self.chan(conn)
                    text = self.channel_error(PRECONDITION_FAILED, ch.basic_publish, "", q,
                                              b"bad", pika.BasicProperties(expiration=bad))
                    self.assertTrue(text.startswith(
                        "PRECONDITION_FAILED - invalid expiration '%s'" % bad), text)
            ch = self.chan(conn)
            self.assertEqual(self.bodies(ch, q), [])
        self.each_placement(body, conn)


class MaxLengthTests(QueueArgsTestCase):

    def test_max_length_drop_head_dead_lettered(self):
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            dlx, dq = self.dead_setup(ch, shard)
            q = self.declare_queue(ch, shard, arguments={"x-max-length": 2,
                                                         "x-dead-letter-exchange": dlx,
                                                         "x-dead-letter-routing-key": "dk"})
            for i in range(5):
                ch.basic_publish("", q, b"%d" % i)
            self.assertEqual(self.count(ch, q), 2)
            got = self.take(ch, dq, 3)
            self.assertEqual([b for _, _, b in got], [b"0", b"1", b"2"])
            for _, p, _ in got:
                self.assertEqual(set(p.headers["x-death"][0]), X_DEATH_KEYS)
                self.assertXDeath(p, [(q, "maxlen", "", [q], 1)], ("maxlen", q, ""))
            self.assertEqual(self.bodies(ch, q), [b"3", b"4"])
        self.each_placement(body, conn)

    def test_max_length_bytes_drop_head(self):
        # x-max-length-bytes counts message bodies.
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            dlx, dq = self.dead_setup(ch, shard)
            q = self.declare_queue(ch, shard, arguments={"x-max-length-bytes": 10,
                                                         "x-dead-letter-exchange": dlx,
                                                         "x-dead-letter-routing-key": "dk"})
            for i in range(4):
                ch.basic_publish("", q, b"abcd%d" % i, pika.BasicProperties(
                    headers={"padding": "x" * 100}))
            self.assertEqual(self.count(ch, q), 2)
            got = self.take(ch, dq, 2)
            self.assertEqual([b for _, _, b in got], [b"abcd0", b"abcd1"])
            for _, p, _ in got:
                self.assertXDeath(p, [(q, "maxlen", "", [q], 1)], ("maxlen", q, ""))
            self.assertEqual(self.bodies(ch, q), [b"abcd2", b"abcd3"])
            # A body larger than the limit on its own does not stay.
            ch.basic_publish("", q, b"y" * 11)
            got = self.take(ch, dq, 1)
            self.assertEqual([b for _, _, b in got], [b"y" * 11])
            self.assertEqual(self.count(ch, q), 0)
        self.each_placement(body, conn)

    def test_max_length_zero(self):
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            dlx, dq = self.dead_setup(ch, shard)
            q = self.declare_queue(ch, shard, arguments={"x-max-length": 0,
                                                         "x-dead-letter-exchange": dlx,
                                                         "x-dead-letter-routing-key": "dk"})
            ch.basic_publish("", q, b"z")
            got = self.take(ch, dq, 1)
            self.assertEqual([b for _, _, b in got], [b"z"])
            self.assertXDeath(got[0][1], [(q, "maxlen", "", [q], 1)], ("maxlen", q, ""))
            self.assertEqual(self.count(ch, q), 0)
        self.each_placement(body, conn)

    def test_max_length_ignores_unacked(self):
        # The limit counts ready messages only: unacknowledged deliveries do
        # not make room for fewer new ones.
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            dlx, dq = self.dead_setup(ch, shard)
            q = self.declare_queue(ch, shard, arguments={"x-max-length": 2,
                                                         "x-dead-letter-exchange": dlx,
                                                         "x-dead-letter-routing-key": "dk"})
            ch.basic_publish("", q, b"a0")
            ch.basic_publish("", q, b"a1")
            m1, _, _ = ch.basic_get(q)
            m2, _, _ = ch.basic_get(q)
            ch.basic_publish("", q, b"b0")
            ch.basic_publish("", q, b"b1")
            self.assertEqual(self.count(ch, q), 2)
            time.sleep(0.1)
            self.assertEqual(self.count(ch, dq), 0)
            ch.basic_ack(m2.delivery_tag, multiple=True)
            self.assertEqual(self.bodies(ch, q), [b"b0", b"b1"])
        self.each_placement(body, conn)

    def test_max_length_enforced_on_requeue(self):
        # RabbitMQ: requeued messages return to the head, then drop-head
        # applies -- with 2 ready (the limit) and 2 requeued, the requeued
        # two are dropped (dead-lettered, 'maxlen') and the queue stays at 2.
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            dlx, dq = self.dead_setup(ch, shard)
            q = self.declare_queue(ch, shard, arguments={"x-max-length": 2,
                                                         "x-dead-letter-exchange": dlx,
                                                         "x-dead-letter-routing-key": "dk"})
            ch.basic_publish("", q, b"a0")
            ch.basic_publish("", q, b"a1")
            ch.basic_get(q)
            m2, _, _ = ch.basic_get(q)
            ch.basic_publish("", q, b"b0")
            ch.basic_publish("", q, b"b1")
            ch.basic_nack(m2.delivery_tag, multiple=True, requeue=True)
            self.assertEqual(self.wait_count(ch, q, 2, timeout=1.0), 2)
            got = self.take(ch, dq, 2)
            self.assertEqual([b for _, _, b in got], [b"a0", b"a1"])
            for _, p, _ in got:
                self.assertXDeath(p, [(q, "maxlen", "", [q], 1)], ("maxlen", q, ""))
            self.assertEqual(self.bodies(ch, q), [b"b0", b"b1"])
        self.each_placement(body, conn)


class ArgumentTests(QueueArgsTestCase):
    """x-overflow reject-publish, x-queue-mode and argument validation, as RabbitMQ 3.10.8."""

    def test_overflow_reject_publish(self):
        # RabbitMQ: x-overflow=reject-publish refuses new messages when full:
        # the publish is nacked (confirm mode), the old messages stay.
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            q = self.declare_queue(ch, shard, arguments={"x-max-length": 1,
                                                         "x-overflow": "reject-publish"})
            ch.basic_publish("", q, b"first")
            with self.assertRaises(pika.exceptions.NackError):
                ch.basic_publish("", q, b"second")
            self.assertEqual(self.bodies(ch, q), [b"first"])
        self.each_placement(body, conn)

    def test_lazy_mode(self):
        # RabbitMQ: x-queue-mode=lazy is accepted and changes nothing a
        # client can see.
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            q = self.declare_queue(ch, shard, arguments={"x-queue-mode": "lazy"})
            ch.basic_publish("", q, b"lazy")
            self.assertEqual(self.bodies(ch, q), [b"lazy"])
        self.each_placement(body, conn)

    def test_argument_validation(self):
        # RabbitMQ: queue.declare with an invalid argument is channel.close
        # 406 "PRECONDITION_FAILED - invalid arg '<name>' for queue '<q>' in
        # vhost '/': <why>" (50/10).
        conn = self.connect()
        cases = [
            ({"x-message-ttl": -1}, "invalid arg 'x-message-ttl'"),
            ({"x-message-ttl": "abc"}, "invalid arg 'x-message-ttl'"),
            ({"x-max-length": -1}, "invalid arg 'x-max-length'"),
            ({"x-overflow": "bogus"}, "invalid arg 'x-overflow'"),
            ({"x-dead-letter-routing-key": "k"}, "invalid arg 'x-dead-letter-routing-key'"),
            ({"x-expires": 0}, "invalid arg 'x-expires'"),
            ({"x-max-priority": 300}, "invalid arg 'x-max-priority'"),
            ({"x-queue-mode": "bogus"}, "invalid arg 'x-queue-mode'"),
            ({"x-dead-letter-exchange": 5}, "invalid type 'signedint' for arg "
                                            "'x-dead-letter-exchange'"),
        ]

        def body(shard):
            for args, text in cases:
                with self.subTest(args=args):
                    ch = self.chan(conn)
                    q = self.qname(shard)
                    got = self.channel_error(PRECONDITION_FAILED, ch.queue_declare, q,
                                             arguments=args)
                    self.assertIn(text, got)
        self.each_placement(body, conn)




class ExpiryAndSingleActiveTests(QueueArgsTestCase):
    """x-expires and x-single-active-consumer, as RabbitMQ 3.10.8."""

    def test_x_expires(self):
        # RabbitMQ: a queue unused (no consumers, no basic.get, no redeclare)
        # for x-expires ms is deleted.
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            q = self.declare_queue(ch, shard, arguments={"x-expires": 300})
            # A passive declare counts as use and restarts the timer: look
            # only after the deadline has passed.
            gone = False
            for _ in range(2):
                time.sleep(0.8)
                try:
                    ch.queue_declare(q, passive=True)
                except pika.exceptions.ChannelClosedByBroker as e:
                    self.assertEqual(e.reply_code, NOT_FOUND)
                    gone = True
                    break
            self.assertTrue(gone, "queue with x-expires=300 still there after 0.8 s")
        self.each_placement(body, conn)

    def test_single_active_consumer(self):
        # RabbitMQ: with x-single-active-consumer only the first consumer
        # gets messages; when it cancels, the next one takes over.
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            q = self.declare_queue(ch, shard, arguments={"x-single-active-consumer": True})
            c2 = self.connect()
            ch2 = c2.channel()
            got = {"a": [], "b": []}
            ta = ch2.basic_consume(q, lambda c, m, p, b: got["a"].append(b), auto_ack=True)
            ch2.basic_consume(q, lambda c, m, p, b: got["b"].append(b), auto_ack=True)
            for i in range(4):
                ch.basic_publish("", q, b"%d" % i)
            self.pump(c2, lambda: len(got["a"]) + len(got["b"]) >= 4, 3.0)
            c2.process_data_events(time_limit=0.1)
            ch2.basic_cancel(ta)
            for i in range(4, 6):
                ch.basic_publish("", q, b"%d" % i)
            self.pump(c2, lambda: len(got["a"]) + len(got["b"]) >= 6, 3.0)
            c2.close()
            self.assertEqual(got, {"a": [b"0", b"1", b"2", b"3"], "b": [b"4", b"5"]})
        self.each_placement(body, conn)




@unittest.skipUnless(os.environ.get("RINGMQ_TEST_UNBUILT"),
                     "queue arguments ringmq does not implement yet (RINGMQ_TEST_UNBUILT=1)")
class UnbuiltProbes(QueueArgsTestCase):
    """What RabbitMQ 3.10.8 does with queue arguments beyond the ones above."""

    def test_max_priority(self):
        # RabbitMQ: x-max-priority queues deliver higher priorities first;
        # priorities above the maximum count as the maximum.
        conn = self.connect()

        def body(shard):
            ch = self.chan(conn)
            q = self.declare_queue(ch, shard, arguments={"x-max-priority": 5})
            for pr in (1, 5, 3, 9, 0):
                ch.basic_publish("", q, b"%d" % pr, pika.BasicProperties(priority=pr))
            self.assertEqual(self.bodies(ch, q), [b"5", b"9", b"3", b"1", b"0"])
        self.each_placement(body, conn)

if __name__ == "__main__":
    harness.main()
