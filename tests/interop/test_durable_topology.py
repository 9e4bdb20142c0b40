#!/usr/bin/python3
"""Durable definitions survive restarts, as in RabbitMQ: durable exchanges
(every type, with arguments, alternate-exchange, internal, auto-delete),
durable queues (with arguments, server-named, on either shard) and the
bindings between durable things (queue and exchange-to-exchange, headers
arguments, from predeclared exchanges) are exactly as declared after a clean
restart (SIGTERM) and after a crash (SIGKILL); transient and exclusive ones
are gone; deletes and unbinds stay done.  Properties are checked the way a
client sees them: passive declares, redeclares (equivalent: ok; different:
406), and routing of messages published after the restart.  Durable
auto-delete queues follow RabbitMQ 3.10 (checked on 3.10.8): one that never
had a consumer survives; one whose consumer was cancelled is gone; one whose
consumer is connected when the broker stops cleanly is deleted (the stop
closes the consumer), while after a crash it survives.

Owned ringmq (default): the class's broker restarts on its data directory;
with 2 shards a pinned queue lives on shard 1, and the log shows each
recovered queue with the id and owner shard it was recorded with.  The
shard count can change across a restart (2 -> 1 -> 2).  RINGMQ_TEST_SHARDS
picks the count (test_durable_topology_1shard.sh runs it with 1).

External broker (RINGMQ_TEST_URL): set RINGMQ_TEST_RESTART and
RINGMQ_TEST_CRASH_RESTART to shell commands that restart it cleanly and
after a kill, for example with tests/interop/rabbitmq-local.sh:
  RINGMQ_TEST_RESTART='tests/interop/rabbitmq-local.sh stop;
                       tests/interop/rabbitmq-local.sh start'
  RINGMQ_TEST_CRASH_RESTART='kill -9 $(cat /tmp/ringmq-interop-rabbitmq/rabbitmq.pid);
                             sleep 1; tests/interop/rabbitmq-local.sh start'
Checks of shards and logs are skipped there.
"""

import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import NOT_FOUND, PRECONDITION_FAILED  # noqa: E402

import pika  # noqa: E402
import pika.exceptions  # noqa: E402

EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers")
PINNED = "durable-pinned"  # pinned to the last shard of an owned broker


class DurableBroker(harness.RingmqBroker):
    """A ringmq restarted on the same data directory and port, with a
    placement pin of PINNED on its last shard (re-written for each start, as
    the shard count may change)."""

    def start(self):
        if self.tmp is None:
            self.tmp = tempfile.mkdtemp(prefix="ringmq-interop-durable-")
            os.mkdir(os.path.join(self.tmp, "data"))
            self.port = harness.find_free_port()
        config = os.path.join(self.tmp, "placement.ini")
        with open(config, "w") as f:
            f.write("[placement]\npin = / %s %d\n" % (PINNED, self.shards - 1))
        for _attempt in range(3):
            self.cmd = [self.binary, "--config", config, "--bind", self.host,
                        "--port", str(self.port), "--shards", str(self.shards),
                        "--data-dir", os.path.join(self.tmp, "data"), "--log-level", "debug",
                        "--log-file", self.log_file]
            self.out = open(os.path.join(self.tmp, "stdout-stderr.txt"), "ab")
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self.out,
                                         stderr=subprocess.STDOUT)
            if harness.wait_port(self.host, self.port, harness.CONNECT_TIMEOUT, self.proc):
                return
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            self.out.close()
            self.port = harness.find_free_port()  # taken meanwhile: another one
        raise RuntimeError("ringmq did not start: %s\n%s" % (" ".join(self.cmd),
                                                             self.diagnostics()))

    def restart(self, crash=False, shards=None):
        if crash:
            self.proc.kill()
            self.proc.wait(10)
            # The killed process's listener may outlive it for a moment (its io_uring is torn
            # down asynchronously) and take connections in the SO_REUSEPORT group: a new port.
            self.port = harness.find_free_port()
        else:
            status, seconds = self.terminate()
            if status != 0:
                raise AssertionError("ringmq exited with %r after SIGTERM (%.1f s)\n%s"
                                     % (status, seconds, self.diagnostics()))
        self.out.close()
        if shards is not None:
            self.shards = shards
        self.start()


class ExternalRestarts(harness.ExternalBroker):
    def restart(self, crash=False, shards=None):
        cmd = os.environ["RINGMQ_TEST_CRASH_RESTART" if crash else "RINGMQ_TEST_RESTART"]
        subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)


class DurableTestCase(harness.BrokerTestCase):
    timeout = 90

    @classmethod
    def setUpClass(cls):
        url = harness.external_url()
        if url:
            if not (os.environ.get("RINGMQ_TEST_RESTART")
                    and os.environ.get("RINGMQ_TEST_CRASH_RESTART")):
                raise harness.unittest.SkipTest(
                    "restarts an external broker: set RINGMQ_TEST_RESTART and "
                    "RINGMQ_TEST_CRASH_RESTART")
            cls.broker = ExternalRestarts(url)
            return
        binary = harness.ringmq_binary()
        if binary is None:
            raise harness.unittest.SkipTest("no broker: set RINGMQ_BIN or RINGMQ_TEST_URL")
        cls.broker = DurableBroker(binary, (), cls.shards)
        cls.broker.start()

    # -- helpers ---------------------------------------------------------

    def restart(self, crash=False, shards=None):
        self.broker.restart(crash=crash, shards=shards)

    def channel(self, confirm=True):
        ch = self.pika_connect().channel()
        if confirm:
            ch.confirm_delivery()
        return ch

    def name(self, what):
        return "durable-%s-%s" % (self._testMethodName, what)

    def declare_error(self, fn, *args, **kw):
        """Runs a declare expected to close the channel; returns (code, text)."""
        with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as cm:
            fn(*args, **kw)
        return cm.exception.reply_code, cm.exception.reply_text

    def exchange_exists(self, name):
        ch = self.channel(confirm=False)
        try:
            ch.exchange_declare(name, passive=True)
            return True
        except pika.exceptions.ChannelClosedByBroker as e:
            self.assertEqual(e.reply_code, NOT_FOUND, e.reply_text)
            return False

    def queue_count(self, name):
        """Ready messages of the queue, or None if it does not exist."""
        ch = self.channel(confirm=False)
        try:
            return ch.queue_declare(name, passive=True).method.message_count
        except pika.exceptions.ChannelClosedByBroker as e:
            self.assertEqual(e.reply_code, NOT_FOUND, e.reply_text)
            return None

    def drain(self, ch, queue):
        bodies = []
        while True:
            m, _props, body = ch.basic_get(queue, auto_ack=True)
            if m is None:
                return bodies
            bodies.append(body)

    def publish(self, ch, exchange, key, body, headers=None):
        """A transient message, confirmed: routed by the time this returns."""
        ch.basic_publish(exchange, key, body, pika.BasicProperties(headers=headers))

    def cleanup_external(self, exchanges=(), queues=()):
        """Against an external broker, what a test declares goes again at its end."""
        if not self.external:
            return

        def clean():
            ch = self.channel(confirm=False)
            for q in queues:
                ch.queue_delete(q)
            for x in exchanges:
                ch.exchange_delete(x)
        self.addCleanup(clean)

    def recovered_queue_lines(self, queue):
        """(shard, id) of every 'recovered durable queue' log line for queue."""
        rx = re.compile(r"\[shard (\d+)\] recovered durable queue '%s' in vhost '/' \(id (\d+)\)"
                        % re.escape(queue))
        return [(int(m.group(1)), int(m.group(2)))
                for m in (rx.search(l) for l in self.log_text().splitlines()) if m]

    def recorded_queue(self, queue):
        """(shard, id) the sequencer recorded for queue."""
        rx = re.compile(r"recorded durable queue '%s' in vhost '/' \(id (\d+), shard (\d+)\)"
                        % re.escape(queue))
        found = [(int(m.group(2)), int(m.group(1)))
                 for m in (rx.search(l) for l in self.log_text().splitlines()) if m]
        self.assertEqual(len(found), 1, "recorded once: %r" % (found,))
        return found[0]


class Topology(DurableTestCase):
    """Everything declared, then checked after a restart."""

    def declare_all(self, p):
        """Durable and transient things of every kind; returns the names."""
        n = {}
        ch = self.channel(confirm=False)
        for t in EXCHANGE_TYPES:
            n["dx." + t] = p("dx-" + t)
            n["tx." + t] = p("tx-" + t)
            ch.exchange_declare(n["tx." + t], exchange_type=t, durable=False)
        n["ae"] = p("ae")
        n["dlx"] = p("dlx")
        n["internal"] = p("internal")
        n["autodel-x"] = p("autodel-x")
        ch.exchange_declare(n["ae"], exchange_type="fanout", durable=True)
        ch.exchange_declare(n["dlx"], exchange_type="direct", durable=True)
        ch.exchange_declare(n["dx.direct"], exchange_type="direct", durable=True,
                            arguments={"alternate-exchange": n["ae"], "x-custom": "kept"})
        ch.exchange_declare(n["dx.fanout"], exchange_type="fanout", durable=True)
        ch.exchange_declare(n["dx.topic"], exchange_type="topic", durable=True,
                            arguments={"x-number": 42})
        ch.exchange_declare(n["dx.headers"], exchange_type="headers", durable=True)
        ch.exchange_declare(n["internal"], exchange_type="topic", durable=True, internal=True)
        ch.exchange_declare(n["autodel-x"], exchange_type="direct", durable=True,
                            auto_delete=True)

        n["dq"] = p("dq")
        n["dq.dlx"] = p("dq-dlx")
        n["dq.dead"] = p("dq-dead")
        n["pinned"] = PINNED + "-" + self._testMethodName if self.external else PINNED
        n["tq"] = p("tq")
        ch.queue_declare(n["dq"], durable=True,
                         arguments={"x-max-length": 5, "x-message-ttl": 600000})
        ch.queue_declare(n["dq.dlx"], durable=True,
                         arguments={"x-message-ttl": 200, "x-dead-letter-exchange": n["dlx"],
                                    "x-dead-letter-routing-key": "dead"})
        ch.queue_declare(n["dq.dead"], durable=True)
        ch.queue_declare(n["pinned"], durable=True, arguments={"x-queue-mode": "lazy"})
        ch.queue_declare(n["tq"], durable=False)
        n["server-named"] = ch.queue_declare("", durable=True, exclusive=False).method.queue
        # Exclusive, even when durable: gone with its connection (kept open until the restart).
        n["excl"] = p("excl")
        self.excl_conn = self.pika_connect()
        self.excl_conn.channel().queue_declare(n["excl"], durable=True, exclusive=True)

        binds = [
            (ch.queue_bind, n["dq"], n["dx.direct"], "k1", None),
            (ch.queue_bind, n["dq"], n["dx.topic"], "a.*.c", None),
            (ch.exchange_bind, n["dx.topic"], n["dx.fanout"], "", None),
            (ch.queue_bind, n["pinned"], n["dx.headers"], "",
             {"x-match": "any", "h1": "v1", "h2": 2}),
            (ch.queue_bind, n["pinned"], n["ae"], "", None),
            (ch.queue_bind, n["dq"], "amq.direct", n["dq"], None),
            (ch.exchange_bind, n["internal"], n["dx.topic"], "i.#", None),
            (ch.queue_bind, n["dq.dead"], n["internal"], "#", None),
            (ch.queue_bind, n["dq.dead"], n["dlx"], "dead", None),
            (ch.queue_bind, n["server-named"], n["autodel-x"], "ad", None),
            (ch.queue_bind, n["tq"], n["dx.direct"], "k1", None),  # transient queue
            (ch.queue_bind, n["dq"], n["tx.direct"], "t", None),  # transient exchange
            (ch.exchange_bind, n["dx.fanout"], n["tx.fanout"], "", None),
        ]
        for fn, dst, src, key, args in binds:
            fn(dst, src, routing_key=key, arguments=args)
        self.cleanup_external(
            exchanges=[n[k] for k in n if k.startswith(("dx.", "tx."))] +
            [n["ae"], n["dlx"], n["internal"], n["autodel-x"]],
            queues=[n[k] for k in ("dq", "dq.dlx", "dq.dead", "pinned", "tq", "server-named")])
        return n

    def check_all(self, n):
        for t in EXCHANGE_TYPES:
            self.assertTrue(self.exchange_exists(n["dx." + t]), t)
            self.assertFalse(self.exchange_exists(n["tx." + t]), t)
        for x in ("ae", "dlx", "internal", "autodel-x"):
            self.assertTrue(self.exchange_exists(n[x]), x)
        for q in ("dq", "dq.dlx", "dq.dead", "pinned", "server-named"):
            self.assertEqual(self.queue_count(n[q]), 0, q)
        for q in ("tq", "excl"):
            self.assertIsNone(self.queue_count(n[q]), q)
        self.check_equivalence(n)
        self.check_routing(n)

    def check_equivalence(self, n):
        ch = self.channel(confirm=False)
        # The same declarations again are fine...
        ch.exchange_declare(n["dx.direct"], exchange_type="direct", durable=True,
                            arguments={"alternate-exchange": n["ae"]})
        ch.exchange_declare(n["internal"], exchange_type="topic", durable=True, internal=True)
        ch.exchange_declare(n["autodel-x"], exchange_type="direct", durable=True,
                            auto_delete=True)
        ch.queue_declare(n["dq"], durable=True,
                         arguments={"x-max-length": 5, "x-message-ttl": 600000})
        ch.queue_declare(n["dq.dlx"], durable=True,
                         arguments={"x-message-ttl": 200, "x-dead-letter-exchange": n["dlx"],
                                    "x-dead-letter-routing-key": "dead"})
        # ... and every recorded property is still the one compared.
        cases = [
            ("type", "exchange_declare", n["dx.topic"], dict(exchange_type="direct",
                                                             durable=True)),
            ("durable", "exchange_declare", n["dx.fanout"], dict(exchange_type="fanout",
                                                                 durable=False)),
            ("auto_delete", "exchange_declare", n["autodel-x"],
             dict(exchange_type="direct", durable=True, auto_delete=False)),
            ("internal", "exchange_declare", n["internal"],
             dict(exchange_type="topic", durable=True, internal=False)),
            ("alternate-exchange", "exchange_declare", n["dx.direct"],
             dict(exchange_type="direct", durable=True, arguments={"alternate-exchange": "x"})),
            ("durable", "queue_declare", n["dq"], dict(durable=False)),
            ("x-max-length", "queue_declare", n["dq"],
             dict(durable=True, arguments={"x-max-length": 6, "x-message-ttl": 600000})),
            ("x-message-ttl", "queue_declare", n["dq"],
             dict(durable=True, arguments={"x-max-length": 5})),
            ("x-dead-letter-exchange", "queue_declare", n["dq.dlx"],
             dict(durable=True, arguments={"x-message-ttl": 200,
                                           "x-dead-letter-exchange": "other",
                                           "x-dead-letter-routing-key": "dead"})),
            ("x-queue-mode", "queue_declare", n["pinned"], dict(durable=True)),
        ]
        for arg, method, name, kw in cases:
            with self.subTest(arg=arg, name=name):
                ch = self.channel(confirm=False)
                code, text = self.declare_error(getattr(ch, method), name, **kw)
                self.assertEqual(code, PRECONDITION_FAILED, text)
                self.assertIn("inequivalent arg '%s'" % arg, text)
        # Internal: not for publishing.
        ch = self.channel()
        code, _ = self.declare_error(ch.basic_publish, n["internal"], "x", b"refused")
        self.assertEqual(code, harness.ACCESS_REFUSED)

    def check_routing(self, n):
        """Messages published now (transient) go where the recovered bindings say."""
        ch = self.channel()
        self.publish(ch, n["dx.direct"], "k1", b"direct")
        self.publish(ch, n["dx.direct"], "unbound", b"alternate")
        self.publish(ch, n["dx.fanout"], "a.b.c", b"e2e")
        self.publish(ch, n["dx.fanout"], "i.x", b"internal")
        self.publish(ch, n["dx.headers"], "", b"headers", headers={"h2": 2})
        self.publish(ch, n["dx.headers"], "", b"no-headers", headers={"h3": 1})
        self.publish(ch, "amq.direct", n["dq"], b"predeclared")
        self.publish(ch, n["autodel-x"], "ad", b"server-named")
        self.assertEqual(self.drain(ch, n["dq"]), [b"direct", b"e2e", b"predeclared"])
        self.assertEqual(self.drain(ch, n["pinned"]), [b"alternate", b"headers"])
        self.assertEqual(self.drain(ch, n["dq.dead"]), [b"internal"])
        self.assertEqual(self.drain(ch, n["server-named"]), [b"server-named"])
        # x-max-length: the oldest go.
        for i in range(7):
            self.publish(ch, n["dx.direct"], "k1", b"m%d" % i)
        self.assertEqual(self.drain(ch, n["dq"]), [b"m%d" % i for i in range(2, 7)])
        # x-message-ttl and dead-lettering.
        self.publish(ch, "", n["dq.dlx"], b"expires")
        deadline = time.monotonic() + 5
        while self.queue_count(n["dq.dead"]) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.drain(ch, n["dq.dead"]), [b"expires"])
        # The transient exchange is gone, and with it its binding to a durable queue.
        code, _ = self.declare_error(ch.exchange_bind, n["dx.fanout"], n["tx.fanout"])
        self.assertEqual(code, NOT_FOUND)

    def check_recorded_placement(self, n):
        """The log: each queue came back on the shard, with the id, it was recorded with."""
        if self.external:
            return
        for q in ("dq", "dq.dlx", "dq.dead", "pinned", "server-named"):
            shard, qid = self.recorded_queue(n[q])
            self.assertEqual(self.recovered_queue_lines(n[q])[-1], (shard, qid), q)
        self.assertEqual(self.recorded_queue(n["pinned"])[0], self.broker.shards - 1)

    def test_clean_restart(self):
        n = self.declare_all(self.name)
        self.restart()
        self.check_all(n)
        self.check_recorded_placement(n)

    def test_crash(self):
        n = self.declare_all(self.name)
        self.restart(crash=True)
        self.check_all(n)
        self.check_recorded_placement(n)
        # Twice in a row, after the journal was read and written again.
        self.restart(crash=True)
        self.check_all(n)
        self.check_recorded_placement(n)


class Deletes(DurableTestCase):
    """What was deleted or unbound stays so."""

    def test_deleted_things_stay_deleted(self):
        p = self.name
        ch = self.channel(confirm=False)
        x1, x2, xad = p("x1"), p("x2"), p("autodel")
        q1, q2, q3 = p("q1"), p("q2"), p("q3")
        self.cleanup_external(exchanges=[x1, x2, xad], queues=[q1, q2, q3])
        ch.exchange_declare(x1, exchange_type="direct", durable=True)
        ch.exchange_declare(x2, exchange_type="fanout", durable=True)
        ch.exchange_declare(xad, exchange_type="direct", durable=True, auto_delete=True)
        for q in (q1, q2, q3):
            ch.queue_declare(q, durable=True)
        ch.queue_bind(q1, x1, "a")
        ch.queue_bind(q1, x1, "b")
        ch.queue_bind(q1, x1, "c", arguments={"x-any": 1})
        ch.exchange_bind(x2, x1, "to-x2")
        ch.queue_bind(q2, x2)
        ch.queue_bind(q3, xad, "only")
        ch.queue_unbind(q1, x1, "b")
        ch.queue_unbind(q1, x1, "c", arguments={"x-any": 1})
        ch.exchange_delete(x2)  # takes x1 -> x2 along
        ch.queue_delete(q3)  # xad loses its last binding: auto-deleted
        self.assertFalse(self.exchange_exists(xad))
        for crash in (False, True):
            with self.subTest(crash=crash):
                self.restart(crash=crash)
                self.assertFalse(self.exchange_exists(x2))
                self.assertFalse(self.exchange_exists(xad))
                self.assertIsNone(self.queue_count(q3))
                ch = self.channel()
                for key in ("a", "b", "c", "to-x2"):
                    self.publish(ch, x1, key, key.encode())
                self.assertEqual(self.drain(ch, q1), [b"a"])
                self.assertEqual(self.drain(ch, q2), [])
        # Deleting the queue itself, after a restart.
        ch.queue_delete(q1)
        ch.exchange_delete(x1)
        self.restart()
        self.assertIsNone(self.queue_count(q1))
        self.assertFalse(self.exchange_exists(x1))
        self.assertEqual(self.queue_count(q2), 0)

    def test_redeclared_after_delete(self):
        """A name deleted and declared again comes back as declared the second time."""
        p = self.name
        ch = self.channel(confirm=False)
        x, q = p("x"), p("q")
        self.cleanup_external(exchanges=[x], queues=[q])
        ch.exchange_declare(x, exchange_type="direct", durable=True)
        ch.queue_declare(q, durable=True, arguments={"x-max-length": 1})
        ch.queue_bind(q, x, "old")
        ch.exchange_delete(x)
        ch.queue_delete(q)
        ch.exchange_declare(x, exchange_type="topic", durable=True)
        ch.queue_declare(q, durable=True, arguments={"x-max-length": 2})
        ch.queue_bind(q, x, "new.#")
        self.restart()
        ch = self.channel()
        ch.exchange_declare(x, exchange_type="topic", durable=True)
        ch.queue_declare(q, durable=True, arguments={"x-max-length": 2})
        for key in ("old", "new.1", "new.2", "new.3"):
            self.publish(ch, x, key, key.encode())
        self.assertEqual(self.drain(ch, q), [b"new.2", b"new.3"])


class AutoDeleteQueues(DurableTestCase):
    """Durable auto-delete queues, as RabbitMQ 3.10 treats them."""

    def test_durable_auto_delete_queues(self):
        p = self.name
        never, cancelled, at_stop, at_crash = p("never"), p("cancelled"), p("at-stop"), p("crash")
        self.cleanup_external(queues=[never, cancelled, at_stop, at_crash])
        ch = self.channel(confirm=False)
        for q in (never, cancelled, at_stop, at_crash):
            ch.queue_declare(q, durable=True, auto_delete=True)
        tag = ch.basic_consume(cancelled, lambda *a: None)
        ch.basic_cancel(tag)
        self.assertIsNone(self.queue_count(cancelled))
        consumer = self.pika_connect().channel()
        consumer.basic_consume(at_stop, lambda *a: None)
        self.restart()
        self.assertEqual(self.queue_count(never), 0)
        self.assertIsNone(self.queue_count(cancelled))
        self.assertIsNone(self.queue_count(at_stop))  # its consumer was closed by the stop
        consumer = self.pika_connect().channel()
        consumer.basic_consume(at_crash, lambda *a: None)
        self.restart(crash=True)
        self.assertEqual(self.queue_count(at_crash), 0)  # nothing closed it
        self.assertEqual(self.queue_count(never), 0)


class ShardCountChange(DurableTestCase):
    """Owned ringmq only: queues keep their owner while it exists, else move."""

    def test_fewer_then_more_shards(self):
        self.require_owned("changes the broker's shard count")
        if self.broker.shards < 2:
            self.skipTest("needs 2 shards to start with")
        ch = self.channel(confirm=False)
        x = self.name("x")
        ch.exchange_declare(x, exchange_type="direct", durable=True)
        ch.queue_declare(PINNED, durable=True)
        ch.queue_bind(PINNED, x, "k")
        shard, qid = self.recorded_queue(PINNED)
        self.assertEqual(shard, 1)
        self.restart(shards=1)
        self.assertTrue(self.wait_log(r"durable queue '%s' of vhost '/' was owned by shard 1; "
                                      r"with 1 shard\(s\) it moves to shard 0" % PINNED))
        self.assertEqual(self.recovered_queue_lines(PINNED)[-1], (0, qid))
        ch = self.channel()
        self.publish(ch, x, "k", b"one shard")
        self.assertEqual(self.drain(ch, PINNED), [b"one shard"])
        self.restart(shards=2)  # shard 0 still exists: the queue stays there
        self.assertEqual(self.recovered_queue_lines(PINNED)[-1], (0, qid))
        ch = self.channel()
        self.publish(ch, x, "k", b"two shards")
        self.assertEqual(self.drain(ch, PINNED), [b"two shards"])


if __name__ == "__main__":
    harness.main()
