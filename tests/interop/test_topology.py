#!/usr/bin/python3
"""Topology interop tests: exchanges (types, passive, reserved names,
equivalence, delete, exchange-to-exchange bindings, alternate and internal
exchanges, the predeclared and default exchanges), topic and headers
matching, and queues (declare, passive, durable, exclusive, auto-delete,
server-named, counts, bind/unbind, purge, delete, equivalence).  Client:
pika (python3-pika).

Every expectation here was checked against RabbitMQ 3.10.8 (Debian
bookworm, tests/interop/rabbitmq-local.sh).  Queue tests run once per shard
of an owned ringmq (see msgbase.py), so with 2 shards each runs with the
queue on the connection's own shard and on the other one.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import (  # noqa: E402
    ACCESS_REFUSED, COMMAND_INVALID, NOT_FOUND, PRECONDITION_FAILED, RESOURCE_LOCKED)
from msgbase import MessagingTestCase  # noqa: E402

import pika  # noqa: E402
import pika.exceptions  # noqa: E402

EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers")


class ExchangeTests(MessagingTestCase):

    def test_declare_each_type(self):
        ch = self.channel()
        for t in EXCHANGE_TYPES:
            with self.subTest(type=t):
                x = self.xname(t)
                ch.exchange_declare(x, exchange_type=t)
                ch.exchange_declare(x, exchange_type=t)  # equivalent redeclare
                ch.exchange_declare(x, passive=True)
                ch.exchange_declare(x, exchange_type=t, passive=True)

    def test_declare_durable_and_auto_delete_flags(self):
        ch = self.channel()
        x = self.xname("durable")
        ch.exchange_declare(x, exchange_type="fanout", durable=True)
        ch.exchange_declare(x, exchange_type="fanout", durable=True)
        y = self.xname("autodel")
        ch.exchange_declare(y, exchange_type="direct", auto_delete=True)
        ch.exchange_declare(y, passive=True)

    def test_passive_declare_missing_is_404(self):
        # RabbitMQ: "NOT_FOUND - no exchange 'X' in vhost '/'", 40/10.
        ch = self.channel()
        text = self.channel_error(NOT_FOUND, ch.exchange_declare, self.xname("missing"),
                                  passive=True)
        self.assertTrue(text.startswith("NOT_FOUND"), text)

    def test_amq_prefix_is_403(self):
        # RabbitMQ: creating an exchange whose name starts with "amq." is
        # "ACCESS_REFUSED - exchange name 'amq.x' contains reserved prefix
        # 'amq.*'".  Redeclaring a predeclared one is checked for equivalence
        # first: the same type and durable=true is declare-ok, another type
        # or durable=false is 406.  Deleting one is 403 ("deletion of system
        # exchange 'amq.direct' in vhost '/' not allowed"); a passive declare
        # of a missing amq.* name is 404.
        conn = self.connect()
        ch = conn.channel()
        text = self.channel_error(ACCESS_REFUSED, ch.exchange_declare,
                                  "amq.interop-%s" % self._testMethodName,
                                  exchange_type="direct")
        self.assertTrue(text.startswith("ACCESS_REFUSED"), text)
        ch = conn.channel()
        ch.exchange_declare("amq.direct", exchange_type="direct", durable=True)
        ch.exchange_declare("amq.topic", exchange_type="topic", durable=True)
        for kw in (dict(exchange_type="fanout", durable=True),
                   dict(exchange_type="direct", durable=False)):
            with self.subTest(**kw):
                self.channel_error(PRECONDITION_FAILED, ch.exchange_declare, "amq.direct", **kw)
                ch = conn.channel()
        self.channel_error(ACCESS_REFUSED, ch.exchange_delete, "amq.direct")
        ch = conn.channel()
        self.channel_error(NOT_FOUND, ch.exchange_declare, "amq.interop-missing", passive=True)
        ch = conn.channel()
        ch.exchange_declare("amq.direct", passive=True)

    def test_unknown_type_is_503(self):
        # RabbitMQ: connection.close 503 "COMMAND_INVALID - unknown exchange
        # type 'x-nope'" -- a connection error, not a channel error.
        conn = self.connect()
        ch = conn.channel()
        x = self.xname("badtype")
        self.connection_error(COMMAND_INVALID, conn, ch.exchange_declare, x,
                              exchange_type="x-nope")

    def test_redeclare_different_type_is_406(self):
        # RabbitMQ: "PRECONDITION_FAILED - inequivalent arg 'type' for
        # exchange 'X' in vhost '/': received 'fanout' but current is
        # 'direct'".
        conn = self.connect()
        ch = conn.channel()
        x = self.xname("t")
        ch.exchange_declare(x, exchange_type="direct")
        text = self.channel_error(PRECONDITION_FAILED, ch.exchange_declare, x,
                                  exchange_type="fanout")
        self.assertIn("type", text)
        ch = conn.channel()
        text = self.channel_error(PRECONDITION_FAILED, ch.exchange_declare, x,
                                  exchange_type="direct", durable=True)
        self.assertIn("durable", text)
        ch = conn.channel()
        self.channel_error(PRECONDITION_FAILED, ch.exchange_declare, x,
                           exchange_type="direct", auto_delete=True)
        # The exchange is unchanged.
        ch = conn.channel()
        ch.exchange_declare(x, exchange_type="direct")

    def test_delete(self):
        conn = self.connect()
        ch = conn.channel()
        x = self.xname("del")
        ch.exchange_declare(x, exchange_type="topic")
        ch.exchange_delete(x)
        self.channel_error(NOT_FOUND, ch.exchange_declare, x, passive=True)
        # RabbitMQ 3.10: deleting an exchange that does not exist is fine.
        ch = conn.channel()
        ch.exchange_delete(self.xname("never"))

    def test_delete_if_unused(self):
        # RabbitMQ: "PRECONDITION_FAILED - exchange 'X' in vhost '/' in use"
        # while the exchange is the source of a binding; fine once unbound.
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            x = self.xname("ifunused%s" % shard)
            ch.exchange_declare(x, exchange_type="direct")
            q = self.declare_queue(ch, shard)
            ch.queue_bind(q, x, "k")
            self.channel_error(PRECONDITION_FAILED, ch.exchange_delete, x, if_unused=True)
            ch = conn.channel()
            ch.exchange_declare(x, passive=True)
            ch.queue_unbind(q, x, "k")
            ch.exchange_delete(x, if_unused=True)
            self.channel_error(NOT_FOUND, ch.exchange_declare, x, passive=True)
        self.each_placement(body, conn)

    def test_delete_if_unused_as_destination_only(self):
        # RabbitMQ counts only bindings where the exchange is the source.
        ch = self.channel()
        src, dst = self.xname("src"), self.xname("dst")
        ch.exchange_declare(src, exchange_type="fanout")
        ch.exchange_declare(dst, exchange_type="fanout")
        ch.exchange_bind(dst, src)
        ch.exchange_delete(dst, if_unused=True)
        ch.exchange_declare(src, passive=True)

    def test_delete_removes_bindings(self):
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            ch.confirm_delivery()
            x = self.xname("delbind%s" % shard)
            ch.exchange_declare(x, exchange_type="fanout")
            q = self.declare_queue(ch, shard)
            ch.queue_bind(q, x)
            ch.exchange_delete(x)
            ch.exchange_declare(x, exchange_type="fanout")
            ch.basic_publish(x, "", b"after")
            self.assertEqual(self.bodies(ch, q), [])
        self.each_placement(body, conn)

    def test_predeclared_exchanges_exist(self):
        conn = self.connect()
        for name, t in (("amq.direct", "direct"), ("amq.fanout", "fanout"),
                        ("amq.topic", "topic"), ("amq.headers", "headers"),
                        ("amq.match", "headers")):
            with self.subTest(name=name):
                ch = conn.channel()
                ch.exchange_declare(name, passive=True)
                ch.exchange_declare(name, exchange_type=t, passive=True)

    def test_predeclared_exchanges_route(self):
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            ch.confirm_delivery()
            q = self.declare_queue(ch, shard)
            ch.queue_bind(q, "amq.direct", "pre")
            ch.queue_bind(q, "amq.fanout")
            ch.queue_bind(q, "amq.topic", "a.#")
            ch.queue_bind(q, "amq.headers", arguments={"x-match": "all", "h": "v"})
            ch.basic_publish("amq.direct", "pre", b"1")
            ch.basic_publish("amq.fanout", "whatever", b"2")
            ch.basic_publish("amq.topic", "a.b.c", b"3")
            ch.basic_publish("amq.headers", "", b"4",
                             pika.BasicProperties(headers={"h": "v"}))
            ch.basic_publish("amq.direct", "other", b"no")
            ch.basic_publish("amq.topic", "b.a", b"no")
            self.assertEqual(self.bodies(ch, q), [b"1", b"2", b"3", b"4"])
            for x, k in (("amq.direct", "pre"), ("amq.fanout", ""), ("amq.topic", "a.#")):
                ch.queue_unbind(q, x, k)
        self.each_placement(body, conn)

    def test_publish_to_missing_exchange_is_404(self):
        # RabbitMQ: channel.close 404 "NOT_FOUND - no exchange 'X' in vhost
        # '/'", 60/40.
        conn = self.connect()
        ch = conn.channel()
        x = self.xname("nope")
        ch.basic_publish(x, "k", b"x")
        text = self.channel_error(NOT_FOUND, ch.queue_declare, "", exclusive=True)
        self.assertIn(x, text)

    def test_default_exchange_routes_by_queue_name(self):
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            ch.confirm_delivery()
            q = self.declare_queue(ch, shard)
            ch.basic_publish("", q, b"direct-to-queue")
            ch.basic_publish("", q + ".nope", b"lost")
            self.assertEqual(self.bodies(ch, q), [b"direct-to-queue"])
        self.each_placement(body, conn)

    def test_default_exchange_cannot_be_bound(self):
        # RabbitMQ: "ACCESS_REFUSED - operation not permitted on the default
        # exchange" for queue.bind and queue.unbind.
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            q = self.declare_queue(ch, shard)
            text = self.channel_error(ACCESS_REFUSED, ch.queue_bind, q, "", "other")
            self.assertIn("default exchange", text)
            ch = conn.channel()
            self.channel_error(ACCESS_REFUSED, ch.queue_unbind, q, "", q)
        self.each_placement(body, conn)

    def test_default_exchange_cannot_be_deleted_or_redeclared(self):
        # RabbitMQ: "ACCESS_REFUSED - operation not permitted on the default
        # exchange" for exchange.delete and exchange.declare of "", even a
        # passive declare.
        conn = self.connect()
        ch = conn.channel()
        self.channel_error(ACCESS_REFUSED, ch.exchange_delete, "")
        ch = conn.channel()
        self.channel_error(ACCESS_REFUSED, ch.exchange_declare, "", exchange_type="direct")
        ch = conn.channel()
        self.channel_error(ACCESS_REFUSED, ch.exchange_declare, "", passive=True)

    def test_exchange_bind_routes_end_to_end(self):
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            ch.confirm_delivery()
            up, mid = self.xname("up%s" % shard), self.xname("mid%s" % shard)
            ch.exchange_declare(up, exchange_type="topic")
            ch.exchange_declare(mid, exchange_type="direct")
            q = self.declare_queue(ch, shard)
            ch.exchange_bind(mid, up, "orders.*")
            ch.queue_bind(q, mid, "orders.eu")
            ch.basic_publish(up, "orders.eu", b"eu")
            ch.basic_publish(up, "orders.us", b"us")  # reaches mid, no queue binding
            ch.basic_publish(up, "stock.eu", b"stock")  # does not reach mid
            ch.basic_publish(mid, "orders.eu", b"direct")
            self.assertEqual(self.bodies(ch, q), [b"eu", b"direct"])
            ch.exchange_unbind(mid, up, "orders.*")
            ch.basic_publish(up, "orders.eu", b"after-unbind")
            self.assertEqual(self.bodies(ch, q), [])
        self.each_placement(body, conn)

    def test_exchange_bind_missing_is_404(self):
        conn = self.connect()
        ch = conn.channel()
        x = self.xname("present")
        ch.exchange_declare(x, exchange_type="fanout")
        self.channel_error(NOT_FOUND, ch.exchange_bind, x, self.xname("absent"))
        ch = conn.channel()
        self.channel_error(NOT_FOUND, ch.exchange_bind, self.xname("absent2"), x)

    def test_exchange_bind_cycle_delivers_once(self):
        # RabbitMQ follows each exchange once per publish: a cycle neither
        # loops nor duplicates.
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            ch.confirm_delivery()
            a, b, c = (self.xname("cyc%s%s" % (n, shard)) for n in "abc")
            for x in (a, b, c):
                ch.exchange_declare(x, exchange_type="fanout")
            ch.exchange_bind(b, a)
            ch.exchange_bind(c, b)
            ch.exchange_bind(a, c)
            ch.exchange_bind(a, a)  # self loop
            q = self.declare_queue(ch, shard)
            ch.queue_bind(q, b)
            ch.queue_bind(q, c)  # two paths to the same queue: still one copy
            for x in (a, b, c):
                ch.basic_publish(x, "", x.encode())
            self.assertEqual(self.bodies(ch, q), [a.encode(), b.encode(), c.encode()])
        self.each_placement(body, conn)

    def test_alternate_exchange(self):
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            ch.confirm_delivery()
            main, alt = self.xname("main%s" % shard), self.xname("alt%s" % shard)
            ch.exchange_declare(alt, exchange_type="fanout")
            ch.exchange_declare(main, exchange_type="direct",
                                arguments={"alternate-exchange": alt})
            qm, qa = self.declare_queue(ch, shard), self.declare_queue(ch, shard)
            ch.queue_bind(qm, main, "known")
            ch.queue_bind(qa, alt)
            ch.basic_publish(main, "known", b"routed")
            ch.basic_publish(main, "unknown", b"unrouted")
            # Mandatory: routed through the AE, so not returned.
            ch.basic_publish(main, "unknown2", b"unrouted-mandatory", mandatory=True)
            self.assertEqual(self.bodies(ch, qm), [b"routed"])
            self.assertEqual(self.bodies(ch, qa), [b"unrouted", b"unrouted-mandatory"])
        self.each_placement(body, conn)

    def test_alternate_exchange_missing_or_unroutable_returns(self):
        # An AE that does not exist, or that routes nowhere: a mandatory
        # publish is returned (312 NO_ROUTE).
        conn = self.connect()
        ch = conn.channel()
        ch.confirm_delivery()
        main, alt = self.xname("main"), self.xname("alt")
        ch.exchange_declare(main, exchange_type="direct",
                            arguments={"alternate-exchange": self.xname("ghost")})
        with self.assertRaises(pika.exceptions.UnroutableError):
            ch.basic_publish(main, "k", b"x", mandatory=True)
        ch.exchange_declare(alt, exchange_type="direct")
        main2 = self.xname("main2")
        ch.exchange_declare(main2, exchange_type="direct", arguments={"alternate-exchange": alt})
        with self.assertRaises(pika.exceptions.UnroutableError):
            ch.basic_publish(main2, "k", b"x", mandatory=True)

    def test_internal_exchange(self):
        # RabbitMQ: publishing to an internal exchange is channel.close 403
        # "ACCESS_REFUSED - cannot publish to internal exchange 'X' in vhost
        # '/'"; it still routes what arrives through exchange bindings.
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            ch.confirm_delivery()
            front, inner = self.xname("front%s" % shard), self.xname("inner%s" % shard)
            ch.exchange_declare(front, exchange_type="fanout")
            ch.exchange_declare(inner, exchange_type="fanout", internal=True)
            ch.exchange_bind(inner, front)
            q = self.declare_queue(ch, shard)
            ch.queue_bind(q, inner)
            ch.basic_publish(front, "", b"via-binding")
            self.assertEqual(self.bodies(ch, q), [b"via-binding"])
            text = self.channel_error(ACCESS_REFUSED, ch.basic_publish, inner, "", b"direct")
            self.assertIn("internal", text)
            ch = conn.channel()
            self.assertEqual(self.bodies(ch, q), [])
        self.each_placement(body, conn)

    def test_internal_flag_equivalence(self):
        conn = self.connect()
        ch = conn.channel()
        x = self.xname("int")
        ch.exchange_declare(x, exchange_type="fanout", internal=True)
        self.channel_error(PRECONDITION_FAILED, ch.exchange_declare, x, exchange_type="fanout")


class TopicTests(MessagingTestCase):
    """`*` is exactly one word, `#` zero or more; words may be empty."""

    CASES = [
        # (binding key, routing key, matches) -- all checked on RabbitMQ 3.10.8
        ("a.b.c", "a.b.c", True),
        ("a.b.c", "a.b", False),
        ("a.*.c", "a.b.c", True),
        ("a.*.c", "a.c", False),
        ("a.*.c", "a..c", True),
        ("a.*", "a.b", True),
        ("a.*", "a.b.c", False),
        ("a.*", "a", False),
        ("a.*", "a.", True),
        ("*", "a", True),
        ("*", "", False),
        ("*", "a.b", False),
        ("*.*", "a.", True),
        ("*.*", ".", True),
        ("#", "", True),
        ("#", "a", True),
        ("#", "a.b.c", True),
        ("#", ".", True),
        ("a.#", "a", True),
        ("a.#", "a.b", True),
        ("a.#", "a.b.c", True),
        ("a.#", "ab", False),
        ("a.#", "b.a", False),
        ("#.c", "c", True),
        ("#.c", "a.b.c", True),
        ("#.c", "a.b.cc", False),
        ("a.#.c", "a.c", True),
        ("a.#.c", "a.b.b.c", True),
        ("a.#.c", "a.b.b.d", False),
        ("#.#", "", True),
        ("#.#", "a.b", True),
        ("#.*", "", False),
        ("#.*", "a", True),
        ("*.#", "a", True),
        ("*.#.*", "a", False),
        ("*.#.*", "a.b", True),
        ("a.#.#.b", "a.b", True),
        ("", "", True),
        ("", "a", False),
        ("a", "", False),
        ("a..b", "a..b", True),
        ("a..b", "a.b", False),
        ("a.*.*", "a..", True),
        (".", ".", True),
        (".", "", False),
        ("a.b*", "a.bc", False),
        ("a.b*", "a.b*", True),
        ("a.b#", "a.b", False),
        ("a.b#", "a.b#", True),
    ]

    def test_topic_matching(self):
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            ch.confirm_delivery()
            x = self.xname("topic%s" % shard)
            ch.exchange_declare(x, exchange_type="topic")
            queues = {}
            for bkey in sorted({c[0] for c in self.CASES}):
                q = self.declare_queue(ch, shard)
                ch.queue_bind(q, x, bkey)
                queues[bkey] = q
            for rkey in sorted({c[1] for c in self.CASES}):
                ch.basic_publish(x, rkey, rkey.encode())
            got = {bkey: set(b.decode() for b in self.bodies(ch, q))
                   for bkey, q in queues.items()}
            wrong = []
            for bkey, rkey, match in self.CASES:
                if (rkey in got[bkey]) != match:
                    wrong.append("binding %r routing key %r: expected %s" %
                                 (bkey, rkey, "match" if match else "no match"))
            self.assertEqual(wrong, [])
        self.each_placement(body, conn)

    def test_topic_multiple_bindings_one_copy(self):
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            ch.confirm_delivery()
            x = self.xname("multi%s" % shard)
            ch.exchange_declare(x, exchange_type="topic")
            q = self.declare_queue(ch, shard)
            for k in ("#", "a.*", "a.b", "*.b"):
                ch.queue_bind(q, x, k)
            ch.basic_publish(x, "a.b", b"once")
            self.assertEqual(self.bodies(ch, q), [b"once"])
            ch.queue_unbind(q, x, "#")
            ch.queue_unbind(q, x, "a.*")
            ch.basic_publish(x, "a.c", b"gone")
            ch.basic_publish(x, "z.b", b"kept")
            self.assertEqual(self.bodies(ch, q), [b"kept"])
        self.each_placement(body, conn)

    def test_direct_and_fanout_matching(self):
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            ch.confirm_delivery()
            d, f = self.xname("d%s" % shard), self.xname("f%s" % shard)
            ch.exchange_declare(d, exchange_type="direct")
            ch.exchange_declare(f, exchange_type="fanout")
            q1, q2 = self.declare_queue(ch, shard), self.declare_queue(ch, shard)
            ch.queue_bind(q1, d, "k1")
            ch.queue_bind(q2, d, "k2")
            ch.queue_bind(q1, d, "both")
            ch.queue_bind(q2, d, "both")
            ch.queue_bind(q1, d, "")
            ch.queue_bind(q1, f, "ignored")
            ch.queue_bind(q2, f)
            for k in ("k1", "k2", "both", "", "K1", "k1 "):
                ch.basic_publish(d, k, ("d:" + k).encode())
            ch.basic_publish(f, "any.key", b"f")
            self.assertEqual(self.bodies(ch, q1), [b"d:k1", b"d:both", b"d:", b"f"])
            self.assertEqual(self.bodies(ch, q2), [b"d:k2", b"d:both", b"f"])
        self.each_placement(body, conn)


class HeadersTests(MessagingTestCase):

    def route(self, ch, x, queues, headers):
        """Publish one message with `headers`; the set of binding names whose
        queue got it."""
        ch.basic_publish(x, "", b"m", pika.BasicProperties(headers=headers))
        return {name for name, q in queues.items() if self.bodies(ch, q)}

    def setup_bindings(self, ch, shard, bindings):
        x = self.xname("hdr%s" % shard)
        ch.exchange_declare(x, exchange_type="headers")
        queues = {}
        for name, args in bindings.items():
            q = self.declare_queue(ch, shard)
            ch.queue_bind(q, x, "", arguments=args)
            queues[name] = q
        return x, queues

    def test_headers_all_any(self):
        conn = self.connect()
        bindings = {
            "all": {"x-match": "all", "a": "1", "b": 2},
            "any": {"x-match": "any", "a": "1", "b": 2},
            "default": {"a": "1", "b": 2},  # x-match defaults to all
            "empty-all": {"x-match": "all"},  # matches everything
            "empty-any": {"x-match": "any"},  # matches nothing
        }
        cases = [
            ({"a": "1", "b": 2}, {"all", "any", "default", "empty-all"}),
            ({"a": "1", "b": 2, "c": "extra"}, {"all", "any", "default", "empty-all"}),
            ({"a": "1"}, {"any", "empty-all"}),
            ({"b": 2}, {"any", "empty-all"}),
            ({"a": "2", "b": 3}, {"empty-all"}),
            ({}, {"empty-all"}),
            (None, {"empty-all"}),
        ]

        def body(shard):
            ch = conn.channel()
            ch.confirm_delivery()
            x, queues = self.setup_bindings(ch, shard, bindings)
            for headers, expected in cases:
                with self.subTest(headers=headers):
                    self.assertEqual(self.route(ch, x, queues, headers), expected)
        self.each_placement(body, conn)

    def test_headers_typed_values(self):
        # RabbitMQ compares values of the same type class: string "1" does
        # not match integer 1; a void (None) binding value only requires the
        # header to be present; booleans match booleans.
        conn = self.connect()
        bindings = {
            "int": {"x-match": "all", "n": 1},
            "str": {"x-match": "all", "n": "1"},
            "void": {"x-match": "all", "n": None},
            "bool": {"x-match": "all", "flag": True},
            "big": {"x-match": "all", "n": 2 ** 40},
        }
        cases = [
            ({"n": 1}, {"int", "void"}),
            ({"n": "1"}, {"str", "void"}),
            ({"n": 2}, {"void"}),
            ({"n": 2 ** 40}, {"big", "void"}),
            ({"flag": True}, {"bool"}),
            ({"flag": False}, set()),
            ({"flag": 1}, set()),
        ]

        def body(shard):
            ch = conn.channel()
            ch.confirm_delivery()
            x, queues = self.setup_bindings(ch, shard, bindings)
            for headers, expected in cases:
                with self.subTest(headers=headers):
                    self.assertEqual(self.route(ch, x, queues, headers), expected)
        self.each_placement(body, conn)

    def test_headers_x_arguments(self):
        # Binding arguments starting with "x-" are not matched by "all"/"any";
        # RabbitMQ 3.10 adds "all-with-x"/"any-with-x", which do match them.
        conn = self.connect()
        bindings = {
            "all": {"x-match": "all", "x-tag": "t", "a": "1"},
            "any": {"x-match": "any", "x-tag": "t"},
            "all-with-x": {"x-match": "all-with-x", "x-tag": "t", "a": "1"},
            "any-with-x": {"x-match": "any-with-x", "x-tag": "t", "a": "9"},
        }
        cases = [
            ({"a": "1"}, {"all"}),
            ({"a": "1", "x-tag": "t"}, {"all", "all-with-x", "any-with-x"}),
            ({"x-tag": "t"}, {"any-with-x"}),
            ({"a": "9"}, {"any-with-x"}),
            ({"x-tag": "u", "a": "1"}, {"all"}),
        ]

        def body(shard):
            ch = conn.channel()
            ch.confirm_delivery()
            x, queues = self.setup_bindings(ch, shard, bindings)
            for headers, expected in cases:
                with self.subTest(headers=headers):
                    self.assertEqual(self.route(ch, x, queues, headers), expected)
        self.each_placement(body, conn)

    def test_headers_unbind_by_arguments(self):
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            ch.confirm_delivery()
            x = self.xname("hu%s" % shard)
            ch.exchange_declare(x, exchange_type="headers")
            q = self.declare_queue(ch, shard)
            a1 = {"x-match": "all", "k": "1"}
            a2 = {"x-match": "all", "k": "2"}
            ch.queue_bind(q, x, "", arguments=a1)
            ch.queue_bind(q, x, "", arguments=a2)
            ch.queue_unbind(q, x, "", arguments=a1)
            ch.basic_publish(x, "", b"one", pika.BasicProperties(headers={"k": "1"}))
            ch.basic_publish(x, "", b"two", pika.BasicProperties(headers={"k": "2"}))
            self.assertEqual(self.bodies(ch, q), [b"two"])
        self.each_placement(body, conn)


class QueueTests(MessagingTestCase):

    def test_declare_and_passive(self):
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            q = self.qname(shard)
            ok = ch.queue_declare(q)
            self.assertEqual((ok.method.queue, ok.method.message_count,
                              ok.method.consumer_count), (q, 0, 0))
            ok = ch.queue_declare(q, passive=True)
            self.assertEqual(ok.method.queue, q)
            missing = self.qname(shard)
            text = self.channel_error(NOT_FOUND, ch.queue_declare, missing, passive=True)
            # RabbitMQ: "NOT_FOUND - no queue 'Q' in vhost '/'"
            self.assertIn(missing, text)
        self.each_placement(body, conn)

    def test_declare_ok_counts(self):
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            ch.confirm_delivery()
            q = self.declare_queue(ch, shard)
            for i in range(5):
                ch.basic_publish("", q, b"%d" % i)
            c2 = conn.channel()
            c2.basic_consume(q, lambda *a: None, consumer_tag="a")
            c3 = conn.channel()
            c3.basic_qos(prefetch_count=1)
            got = []
            c3.basic_consume(q, lambda c, m, p, b: got.append(m), consumer_tag="b")
            self.pump(conn, lambda: False, 0.3)
            ok = ch.queue_declare(q, passive=True)
            # Messages delivered and unacked are not counted.
            self.assertEqual(ok.method.consumer_count, 2)
            msgs = ok.method.message_count
            c2.close()
            c3.close()
            self.pump(conn, lambda: False, 0.2)
            ok = ch.queue_declare(q)
            self.assertEqual((ok.method.message_count, ok.method.consumer_count), (5, 0))
            self.assertLessEqual(msgs, 5)
        self.each_placement(body, conn)

    def test_declare_ok_message_count_exact(self):
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            ch.confirm_delivery()
            q = self.declare_queue(ch, shard)
            for i in range(7):
                ch.basic_publish("", q, b"x")
            ok = ch.queue_declare(q, passive=True)
            self.assertEqual((ok.method.message_count, ok.method.consumer_count), (7, 0))
            m, _, _ = ch.basic_get(q, auto_ack=False)
            ok = ch.queue_declare(q, passive=True)
            self.assertEqual(ok.method.message_count, 6)  # unacked not counted
        self.each_placement(body, conn)

    def test_durable_queue(self):
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            ch.confirm_delivery()
            q = self.declare_queue(ch, shard, durable=True)
            ch.basic_publish("", q, b"persistent", pika.BasicProperties(delivery_mode=2))
            ok = ch.queue_declare(q, durable=True)
            self.assertEqual(ok.method.message_count, 1)
            m, p, b = ch.basic_get(q, auto_ack=True)
            self.assertEqual((b, p.delivery_mode), (b"persistent", 2))
        self.each_placement(body, conn)

    def test_server_named(self):
        conn = self.connect()
        ch = conn.channel()
        names = set()
        for _ in range(3):
            ok = ch.queue_declare("", exclusive=True)
            q = ok.method.queue
            self.assertTrue(q.startswith("amq.gen-"), q)
            self.assertEqual((ok.method.message_count, ok.method.consumer_count), (0, 0))
            names.add(q)
        self.assertEqual(len(names), 3)
        ch.confirm_delivery()
        q = names.pop()
        ch.basic_publish("", q, b"to-server-named")
        self.assertEqual(self.bodies(ch, q), [b"to-server-named"])

    def test_server_named_non_exclusive_visible_to_others(self):
        conn = self.connect()
        ch = conn.channel()
        q = ch.queue_declare("", auto_delete=True).method.queue
        self.cleanup_queue(q)
        other = self.connect().channel()
        other.confirm_delivery()
        other.queue_declare(q, passive=True)
        other.basic_publish("", q, b"hello")
        self.assertEqual(self.bodies(other, q), [b"hello"])

    def test_amq_prefix_queue_is_403(self):
        # RabbitMQ: "ACCESS_REFUSED - queue name 'amq.x' contains reserved
        # prefix 'amq.*'"; a passive declare of a missing amq.* queue is 404.
        conn = self.connect()
        ch = conn.channel()
        self.channel_error(ACCESS_REFUSED, ch.queue_declare, "amq.interop-reserved")
        ch = conn.channel()
        self.channel_error(NOT_FOUND, ch.queue_declare, "amq.interop-reserved", passive=True)

    def test_exclusive_queue_locked_for_other_connections(self):
        # RabbitMQ: "RESOURCE_LOCKED - cannot obtain exclusive access to
        # locked queue 'Q' in vhost '/'..." for declare (plain and passive),
        # consume, get, bind, purge and delete from another connection.
        owner = self.connect()
        other = self.connect()

        def body(shard):
            och = owner.channel()
            q = self.declare_queue(och, shard, exclusive=True)
            och.queue_declare(q, exclusive=True)  # the owner may redeclare
            x = self.xname("exb%s" % shard)
            och.exchange_declare(x, exchange_type="fanout")
            ops = [
                ("declare", lambda c: c.queue_declare(q)),
                ("declare-exclusive", lambda c: c.queue_declare(q, exclusive=True)),
                ("passive", lambda c: c.queue_declare(q, passive=True)),
                ("consume", lambda c: c.basic_consume(q, lambda *a: None)),
                ("get", lambda c: c.basic_get(q)),
                ("bind", lambda c: c.queue_bind(q, x)),
                ("purge", lambda c: c.queue_purge(q)),
                ("delete", lambda c: c.queue_delete(q)),
            ]
            for name, op in ops:
                with self.subTest(op=name):
                    c = other.channel()
                    self.channel_error(RESOURCE_LOCKED, op, c)
            och.queue_declare(q, passive=True)
        self.each_placement(body, owner)

    def test_exclusive_queue_deleted_with_connection(self):
        def body(shard):
            owner = self.connect()
            ch = owner.channel()
            q = self.declare_queue(ch, shard, exclusive=True)
            ch.confirm_delivery()
            ch.basic_publish("", q, b"x")
            owner.close()
            other = self.connect()
            # The deletion may lag the close-ok a little (in RabbitMQ too):
            # meanwhile the queue still answers 405; it must be gone (404)
            # within 2 s.
            codes = []
            for _ in range(40):
                c = other.channel()
                try:
                    c.queue_declare(q, passive=True)
                    codes.append(200)
                except pika.exceptions.ChannelClosedByBroker as e:
                    codes.append(e.reply_code)
                    if e.reply_code == NOT_FOUND:
                        return
                    self.assertEqual(e.reply_code, RESOURCE_LOCKED)
                time.sleep(0.05)
            self.fail("exclusive queue %s survived its connection: %r" % (q, codes))
        self.each_placement(body)

    def test_exclusive_server_named_on_other_connection_shard(self):
        # Server-named queues live on the declaring connection's shard: with
        # several connections (spread over the shards) each can use its own.
        conns = [self.connect() for _ in range(4)]
        user = self.connect()
        uch = user.channel()
        uch.confirm_delivery()
        for i, conn in enumerate(conns):
            ch = conn.channel()
            q = ch.queue_declare("", exclusive=True).method.queue
            uch.basic_publish("", q, b"n%d" % i)
            m, p, b = ch.basic_get(q, auto_ack=True)
            self.assertEqual(b, b"n%d" % i)

    def test_auto_delete_when_last_consumer_goes(self):
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            q = self.declare_queue(ch, shard, auto_delete=True)
            # Without any consumer yet, it stays.
            ch.queue_declare(q, passive=True)
            t1 = ch.basic_consume(q, lambda *a: None)
            c2 = conn.channel()
            t2 = c2.basic_consume(q, lambda *a: None)
            ch.basic_cancel(t1)
            ch.queue_declare(q, passive=True)  # one consumer left
            c2.basic_cancel(t2)
            for _ in range(40):
                c = conn.channel()
                try:
                    c.queue_declare(q, passive=True)
                    c.close()
                except pika.exceptions.ChannelClosedByBroker as e:
                    self.assertEqual(e.reply_code, NOT_FOUND)
                    return
                time.sleep(0.05)
            self.fail("auto-delete queue survived its last consumer")
        self.each_placement(body, conn)

    def test_auto_delete_when_consumer_channel_closes(self):
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            q = self.declare_queue(ch, shard, auto_delete=True)
            c2 = conn.channel()
            c2.basic_consume(q, lambda *a: None)
            c2.close()
            for _ in range(40):
                c = conn.channel()
                try:
                    c.queue_declare(q, passive=True)
                    c.close()
                except pika.exceptions.ChannelClosedByBroker as e:
                    self.assertEqual(e.reply_code, NOT_FOUND)
                    return
                time.sleep(0.05)
            self.fail("auto-delete queue survived the close of its consumer's channel")
        self.each_placement(body, conn)

    def test_redeclare_equivalence(self):
        # RabbitMQ: 406 "PRECONDITION_FAILED - inequivalent arg 'durable' for
        # queue 'Q' in vhost '/': received 'true' but current is 'false'"
        # (same for auto_delete and for x-arguments such as x-max-length; the
        # text is only required to name the queue).
        # Redeclaring someone else's queue as exclusive is 405.
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            q = self.declare_queue(ch, shard, arguments={"x-max-length": 10})
            for kw, what in ((dict(durable=True, arguments={"x-max-length": 10}), "durable"),
                             (dict(auto_delete=True, arguments={"x-max-length": 10}),
                              "auto_delete"),
                             (dict(arguments={"x-max-length": 11}), "x-max-length")):
                with self.subTest(changed=what):
                    c = conn.channel()
                    text = self.channel_error(PRECONDITION_FAILED, c.queue_declare, q, **kw)
                    self.assertIn(q, text)
            c = conn.channel()
            c.queue_declare(q, arguments={"x-max-length": 10})
            # Passive declare ignores the other fields.
            c.queue_declare(q, passive=True, durable=True)
            other = self.connect().channel()
            self.channel_error(RESOURCE_LOCKED, other.queue_declare, q, exclusive=True,
                               arguments={"x-max-length": 10})
        self.each_placement(body, conn)

    def test_bind_unbind(self):
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            ch.confirm_delivery()
            x = self.xname("bu%s" % shard)
            ch.exchange_declare(x, exchange_type="direct")
            q = self.declare_queue(ch, shard)
            ch.queue_bind(q, x, "k")
            ch.queue_bind(q, x, "k")  # idempotent
            ch.basic_publish(x, "k", b"1")
            self.assertEqual(self.bodies(ch, q), [b"1"])
            ch.queue_unbind(q, x, "k")
            ch.queue_unbind(q, x, "k")  # unbinding a missing binding is fine
            ch.basic_publish(x, "k", b"2")
            self.assertEqual(self.bodies(ch, q), [])
        self.each_placement(body, conn)

    def test_bind_missing_is_404(self):
        # RabbitMQ: "NOT_FOUND - no queue 'Q' in vhost '/'" /
        # "NOT_FOUND - no exchange 'X' in vhost '/'".
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            x = self.xname("bm%s" % shard)
            ch.exchange_declare(x, exchange_type="direct")
            q = self.declare_queue(ch, shard)
            self.channel_error(NOT_FOUND, ch.queue_bind, self.qname(shard), x, "k")
            ch = conn.channel()
            self.channel_error(NOT_FOUND, ch.queue_bind, q, self.xname("nox%s" % shard), "k")
        self.each_placement(body, conn)

    def test_purge(self):
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            ch.confirm_delivery()
            q = self.declare_queue(ch, shard)
            for i in range(12):
                ch.basic_publish("", q, b"%d" % i)
            m, _, _ = ch.basic_get(q, auto_ack=False)  # one unacked: not purged
            ok = ch.queue_purge(q)
            self.assertEqual(ok.method.message_count, 11)
            self.assertEqual(ch.queue_purge(q).method.message_count, 0)
            ch.basic_nack(m.delivery_tag, requeue=True)
            self.assertEqual(self.bodies(ch, q), [b"0"])
        self.each_placement(body, conn)

    def test_purge_missing_is_404(self):
        ch = self.channel()
        self.channel_error(NOT_FOUND, ch.queue_purge, self.qname(0))

    def test_delete_count_and_missing(self):
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            ch.confirm_delivery()
            q = self.declare_queue(ch, shard)
            for i in range(4):
                ch.basic_publish("", q, b"x")
            ok = ch.queue_delete(q)
            self.assertEqual(ok.method.message_count, 4)
            # RabbitMQ 3.10: deleting a queue that does not exist is
            # delete-ok with message_count 0.
            ok = ch.queue_delete(q)
            self.assertEqual(ok.method.message_count, 0)
            self.channel_error(NOT_FOUND, ch.queue_declare, q, passive=True)
        self.each_placement(body, conn)

    def test_delete_if_unused_and_if_empty(self):
        # RabbitMQ: "PRECONDITION_FAILED - queue 'Q' in vhost '/' in use" /
        # "... not empty".
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            ch.confirm_delivery()
            q = self.declare_queue(ch, shard)
            cch = conn.channel()
            tag = cch.basic_consume(q, lambda *a: None)
            text = self.channel_error(PRECONDITION_FAILED, ch.queue_delete, q, if_unused=True)
            self.assertIn("in use", text)
            cch.basic_cancel(tag)
            ch = conn.channel()
            ch.confirm_delivery()
            ch.basic_publish("", q, b"x")
            text = self.channel_error(PRECONDITION_FAILED, ch.queue_delete, q, if_empty=True)
            self.assertIn("not empty", text)
            ch = conn.channel()
            ok = ch.queue_delete(q, if_unused=True)
            self.assertEqual(ok.method.message_count, 1)
        self.each_placement(body, conn)

    def test_delete_unbinds(self):
        conn = self.connect()

        def body(shard):
            ch = conn.channel()
            ch.confirm_delivery()
            x = self.xname("du%s" % shard)
            ch.exchange_declare(x, exchange_type="fanout")
            q = self.declare_queue(ch, shard)
            ch.queue_bind(q, x)
            ch.queue_delete(q)
            ch.queue_declare(q)
            ch.basic_publish(x, "", b"x")
            self.assertEqual(self.bodies(ch, q), [])
            # The exchange has no bindings left.
            ch.exchange_delete(x, if_unused=True)
        self.each_placement(body, conn)


if __name__ == "__main__":
    harness.main()
