#!/usr/bin/python3
"""Persistent messages in durable queues survive restarts, clean (SIGTERM)
and crashes (SIGKILL), through the segment log; transient messages and
non-durable queues do not, as in RabbitMQ.  Acked messages stay acked across
a clean restart; messages delivered but unacked at a crash come back flagged
redelivered.  Queues are placed on every shard (queue names are hashed to
shards, so several names are used)."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from persistbase import PersistTestCase  # noqa: E402

import pika  # noqa: E402
import pika.exceptions  # noqa: E402

PERSISTENT = pika.BasicProperties(delivery_mode=2)
TRANSIENT = pika.BasicProperties(delivery_mode=1)


class Persistence(PersistTestCase):

    def chan(self):
        conn = self.pika_connect()
        ch = conn.channel()
        ch.confirm_delivery()
        return conn, ch

    def drain(self, ch, queue, limit=100000):
        """Every ready message of queue by basic.get, acked: [(body, redelivered)]."""
        out = []
        while len(out) < limit:
            m, _props, body = ch.basic_get(queue, auto_ack=False)
            if m is None:
                break
            out.append((body, m.redelivered))
            ch.basic_ack(m.delivery_tag)
        return out

    def test_persistent_messages_survive_clean_restart(self):
        conn, ch = self.chan()
        queues = ["persist-clean-%d" % i for i in range(4)]
        for q in queues:
            ch.queue_declare(q, durable=True)
            for i in range(50):
                ch.basic_publish("", q, b"p%d" % i, PERSISTENT)
                ch.basic_publish("", q, b"t%d" % i, TRANSIENT)
        ch.queue_declare("persist-transient-q", durable=False)
        ch.basic_publish("", "persist-transient-q", b"x", PERSISTENT)
        conn.close()
        self.broker.restart()
        conn, ch = self.chan()
        for q in queues:
            got = self.drain(ch, q)
            self.assertEqual([b for b, _ in got], [b"p%d" % i for i in range(50)], q)
        with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as cm:
            ch.queue_declare("persist-transient-q", passive=True)
        self.assertEqual(cm.exception.reply_code, harness.NOT_FOUND)
        conn.close()

    def test_acked_messages_stay_acked(self):
        conn, ch = self.chan()
        q = "persist-acked"
        ch.queue_declare(q, durable=True)
        for i in range(100):
            ch.basic_publish("", q, b"m%d" % i, PERSISTENT)
        got = self.drain(ch, q, limit=60)
        self.assertEqual(len(got), 60)
        conn.close()
        self.broker.restart()
        conn, ch = self.chan()
        rest = self.drain(ch, q)
        self.assertEqual([b for b, _ in rest], [b"m%d" % i for i in range(60, 100)])
        conn.close()

    def test_confirmed_messages_survive_sigkill(self):
        conn, ch = self.chan()
        qs = ["persist-kill-%d" % i for i in range(3)]
        for q in qs:
            ch.queue_declare(q, durable=True)
        for i in range(300):
            ch.basic_publish("", qs[i % 3], b"k%d" % i, PERSISTENT)  # confirmed on return
        self.broker.restart(crash=True)
        conn, ch = self.chan()
        for j, q in enumerate(qs):
            got = self.drain(ch, q)
            self.assertEqual([b for b, _ in got], [b"k%d" % i for i in range(j, 300, 3)], q)
        conn.close()

    def test_unacked_at_crash_come_back_redelivered(self):
        conn, ch = self.chan()
        q = "persist-unacked"
        ch.queue_declare(q, durable=True)
        for i in range(10):
            ch.basic_publish("", q, b"u%d" % i, PERSISTENT)
        for _ in range(5):
            m, _p, _b = ch.basic_get(q, auto_ack=False)
            self.assertIsNotNone(m)
        self.broker.restart(crash=True)
        conn, ch = self.chan()
        got = self.drain(ch, q)
        self.assertEqual([b for b, _ in got], [b"u%d" % i for i in range(10)])
        self.assertTrue(all(r for b, r in got[:5]), got)
        conn.close()

    def test_fanout_to_durable_queues_on_every_shard(self):
        conn, ch = self.chan()
        ch.exchange_declare("persist-fan", "fanout", durable=True)
        qs = ["persist-fan-%d" % i for i in range(6)]
        for q in qs:
            ch.queue_declare(q, durable=True)
            ch.queue_bind(q, "persist-fan")
        for i in range(40):
            ch.basic_publish("persist-fan", "", b"f%d" % i, PERSISTENT)
        # Consume one queue entirely before the crash: the others keep theirs.
        self.assertEqual(len(self.drain(ch, qs[0])), 40)
        conn.close()
        time.sleep(1.5)  # past an ack checkpoint
        self.broker.restart(crash=True)
        conn, ch = self.chan()
        for q in qs[1:]:
            self.assertEqual([b for b, _ in self.drain(ch, q)], [b"f%d" % i for i in range(40)], q)
        conn.close()

    def test_recovery_is_logged(self):
        conn, ch = self.chan()
        ch.queue_declare("persist-log", durable=True)
        ch.basic_publish("", "persist-log", b"x", PERSISTENT)
        conn.close()
        self.broker.restart()
        self.wait_log(r"recovered \d+ messages", timeout=5.0)
        conn, ch = self.chan()
        self.drain(ch, "persist-log")
        conn.close()


class DiskUse(PersistTestCase):
    """With small segments, a drained queue leaves at most two segments per shard."""

    ringmq_args = ("--segment-size", "64K")

    def segments(self):
        base = os.path.join(self.broker.tmp, "data", "log")
        return {d: len([f for f in os.listdir(os.path.join(base, d)) if f.endswith(".seg")])
                for d in os.listdir(base)}

    def test_drained_queues_leave_two_segments_per_shard(self):
        conn = self.pika_connect()
        ch = conn.channel()
        ch.confirm_delivery()
        qs = ["disk-use-%d" % i for i in range(4)]
        for q in qs:
            ch.queue_declare(q, durable=True)
        body = b"s" * 2000
        for i in range(400):  # 800 KB of records: a dozen 64 KiB segments per shard
            ch.basic_publish("", qs[i % 4], body, PERSISTENT)
        self.assertGreater(max(self.segments().values()), 2, self.segments())
        for q in qs:
            while True:
                m, _p, _b = ch.basic_get(q, auto_ack=True)
                if m is None:
                    break
        conn.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and max(self.segments().values()) > 2:
            time.sleep(0.1)
        self.assertLessEqual(max(self.segments().values()), 2, self.segments())
        # And after a restart the drained queues stay empty.
        self.broker.restart()
        conn = self.pika_connect()
        ch = conn.channel()
        for q in qs:
            self.assertEqual(ch.queue_declare(q, passive=True).method.message_count, 0)
        conn.close()


class DamagedLog(PersistTestCase):
    """Bytes flipped in the middle of a segment, or a segment cut short, between two runs: the
    broker starts, logs what it skipped, and serves every other message in order."""

    shards = 1

    def segment_files(self):
        d = os.path.join(self.broker.tmp, "data", "log", "shard-0")
        return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".seg"))

    @staticmethod
    def record_offsets(path):
        """Offsets of the records in a segment (store/record.h: u32 payload length at byte 8 of
        a 24-byte header, records 8-byte aligned, a zero header ends the segment)."""
        with open(path, "rb") as f:
            data = f.read()
        offsets, off = [], 0
        while off + 24 <= len(data) and data[off:off + 24] != bytes(24):
            offsets.append(off)
            length = int.from_bytes(data[off + 8:off + 12], "little")
            off += (24 + length + 7) & ~7
        return offsets

    def publish(self, q, n):
        conn = self.pika_connect()
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare(q, durable=True)
        for i in range(n):
            ch.basic_publish("", q, b"%06d" % i + b"." * 200, PERSISTENT)
        conn.close()

    def drain_ids(self, q):
        conn = self.pika_connect()
        ch = conn.channel()
        ids = []
        while True:
            m, _p, body = ch.basic_get(q, auto_ack=True)
            if m is None:
                break
            ids.append(int(body[:6]))
        conn.close()
        return ids

    def test_flipped_bytes_skip_one_record(self):
        self.publish("damaged-flip", 300)
        self.broker.clean_stop()
        seg = [f for f in self.segment_files() if self.record_offsets(f)][-1]
        at = self.record_offsets(seg)[150] + 100  # inside the body of a record in the middle
        with open(seg, "r+b") as f:
            f.seek(at)
            b = f.read(1)
            f.seek(at)
            f.write(bytes([b[0] ^ 0x5A]))
        self.broker.start()
        self.wait_log(r"corrupt", timeout=5.0)
        ids = self.drain_ids("damaged-flip")
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(ids, [i for i in range(300) if i != 150])

    def test_torn_tail_is_cut(self):
        self.publish("damaged-torn", 300)
        self.broker.kill()
        seg = [f for f in self.segment_files() if self.record_offsets(f)][-1]
        last = self.record_offsets(seg)[-1]
        with open(seg, "r+b") as f:  # tear the last record: zero all but its first 40 bytes
            f.seek(last + 40)
            f.write(b"\0" * 200)
        self.broker.start()
        ids = self.drain_ids("damaged-torn")
        self.assertEqual(ids, list(range(299)))


if __name__ == "__main__":
    harness.main()
