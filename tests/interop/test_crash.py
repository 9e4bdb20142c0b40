#!/usr/bin/python3
"""Crash test: publishers on several connections publish persistent
messages with confirms to durable queues (on every shard) while a consumer
takes and acks them; the broker is killed with SIGKILL at a random moment,
restarted on the same data directory, and the cycle repeats.  At the end
every queue is drained.  Checks: every confirmed message was delivered at
least once; a message delivered twice carried redelivered=true the second
time (a lost ack may redeliver, nothing may be lost or silently duplicated).

RINGMQ_CRASH_CYCLES sets the number of cycles (default 20, as in make
check; the long run in docs/testing.md uses 1000).  RINGMQ_CRASH_SEED fixes
the random kill moments."""

import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from persistbase import PersistTestCase  # noqa: E402

import pika  # noqa: E402

PUBLISHERS = 3
QUEUES = ["crash-q-%d" % i for i in range(4)]
PERSISTENT = pika.BasicProperties(delivery_mode=2)


class Publisher(threading.Thread):
    def __init__(self, params, n, stop):
        super().__init__(daemon=True)
        self.params, self.n, self.stop = params, n, stop
        self.confirmed = []
        self.seq = 0

    def run(self):
        try:
            conn = pika.BlockingConnection(self.params)
            ch = conn.channel()
            ch.confirm_delivery()
            while not self.stop.is_set() and self.seq < 200000:
                body = b"%d-%d-%d" % (self.cycle, self.n, self.seq)
                ch.basic_publish("", QUEUES[self.seq % len(QUEUES)], body, PERSISTENT)
                self.confirmed.append(body)  # basic_publish returned: confirmed
                self.seq += 1
        except Exception:
            pass  # the broker died under us: what was confirmed is recorded


class Consumer(threading.Thread):
    def __init__(self, params, stop, seen):
        super().__init__(daemon=True)
        self.params, self.stop, self.seen = params, stop, seen

    def run(self):
        try:
            conn = pika.BlockingConnection(self.params)
            ch = conn.channel()
            ch.basic_qos(prefetch_count=100)
            for q in QUEUES:
                ch.basic_consume(q, self.on_message)
            while not self.stop.is_set():
                conn.process_data_events(time_limit=0.05)
        except Exception:
            pass

    def on_message(self, ch, method, _props, body):
        self.seen.append((body, method.redelivered))
        ch.basic_ack(method.delivery_tag)


class Crash(PersistTestCase):
    cycles = int(os.environ.get("RINGMQ_CRASH_CYCLES", "20"))
    timeout = 120 + 6 * cycles

    def test_sigkill_loses_no_confirmed_message(self):
        rnd = random.Random(int(os.environ.get("RINGMQ_CRASH_SEED", str(time.time_ns()))))
        conn = self.pika_connect()
        ch = conn.channel()
        for q in QUEUES:
            ch.queue_declare(q, durable=True)
        conn.close()
        confirmed = set()
        seen = []  # (body, redelivered), in delivery order
        for cycle in range(self.cycles):
            stop = threading.Event()
            params = self.pika_params(socket_timeout=2, heartbeat=0)
            pubs = [Publisher(params, i, stop) for i in range(PUBLISHERS)]
            for p in pubs:
                p.cycle = cycle
            cons = Consumer(params, stop, seen)
            for t in pubs + [cons]:
                t.start()
            time.sleep(rnd.uniform(0.05, 0.6))
            self.broker.kill()
            stop.set()
            for t in pubs + [cons]:
                t.join(10)
            for p in pubs:
                confirmed.update(p.confirmed)
            self.broker.start()
        # Drain what is left.
        stop = threading.Event()
        cons = Consumer(self.pika_params(), stop, seen)
        cons.start()
        deadline = time.monotonic() + 30
        last = -1
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if len(seen) == last:
                break
            last = len(seen)
        stop.set()
        cons.join(10)
        delivered = {}
        duplicates_unflagged = []
        for body, redelivered in seen:
            if body in delivered and not redelivered:
                duplicates_unflagged.append(body)
            delivered[body] = delivered.get(body, 0) + 1
        missing = confirmed - delivered.keys()
        sys.stderr.write("crash: %d cycles, %d confirmed, %d deliveries, %d distinct, %d redelivered\n"
                         % (self.cycles, len(confirmed), len(seen), len(delivered),
                            sum(1 for _, r in seen if r)))
        self.assertGreater(len(confirmed), 0)
        self.assertEqual(sorted(missing)[:20], [], "%d confirmed messages lost" % len(missing))
        self.assertEqual(duplicates_unflagged[:20], [], "duplicates without redelivered")


if __name__ == "__main__":
    harness.main()
