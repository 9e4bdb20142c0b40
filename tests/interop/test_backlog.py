#!/usr/bin/python3
"""Backlogs in bounded memory: a queue keeps a small window of its ready
messages in memory ([storage] queue_memory_bytes, 64 KiB here: a few hundred
small messages) and pages the rest out to DATA_DIR/spill, persistent and
transient messages alike.  200,000 persistent messages in a durable queue and
200,000 transient ones in a transient queue (256-byte bodies) must leave the broker's RSS far
below what keeping them in memory would take, and come back complete and in
order; a paged-out backlog survives a restart through the segment log (the
spill files are a cache, emptied at start); purge and delete release the
log slots of paged-out messages; TTLs and x-max-length reach paged-out
messages.

Bulk publishing goes through a raw socket with frames built once (pika's
publish costs ~40 us of Python per message, too slow for 400,000 in the time
budget); every check of what comes back goes through pika."""

import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from persistbase import PersistTestCase  # noqa: E402

N = 200000
WINDOW = 64 * 1024
BODY_BYTES = 256  # small, yet enough that the backlog in memory would dwarf the fixed buffers
# What one such message costs in memory when queued: the 64-byte header, the body and the
# routing key, the ring slot; a floor (mimalloc rounds up).
IN_MEMORY_BYTES_PER_MESSAGE = 64 + BODY_BYTES + 8


def body(i):
    return b"%016d" % i + b"." * (BODY_BYTES - 16)


class Backlog(PersistTestCase):

    ringmq_args = ("--queue-memory-bytes", str(WINDOW))
    shards = 2
    timeout = 60

    # -- helpers ----------------------------------------------------------

    def status_kib(self, field):
        with open("/proc/%d/status" % self.broker.proc.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise AssertionError("no %s in /proc status" % field)

    def spill_files(self):
        root = os.path.join(self.broker.tmp, "data", "spill")
        return sum(len(files) for _dir, _sub, files in os.walk(root))

    def publish_raw(self, queue, first, count, persistent):
        """count messages body(first) .. on one channel in confirm mode, frames built once and
        sent in batches, each batch's confirms awaited (so every message is queued on return,
        whichever shard owns the queue)."""
        c = self.raw_open()
        c.open_channel(1)
        c.send_method(1, "confirm.select", False)
        c.expect_method("confirm.select-ok", 1)
        method = harness.method_frame(1, "basic.publish", 0, "", queue, False, False)
        if persistent:
            props = struct.pack(">HHQHB", 60, 0, BODY_BYTES, 0x1000, 2)  # delivery-mode 2
        else:
            props = struct.pack(">HHQH", 60, 0, BODY_BYTES, 0)
        head = method + harness.frame(harness.FRAME_HEADER, 1, props)
        body_head = struct.pack(">BHI", harness.FRAME_BODY, 1, BODY_BYTES)
        end = bytes([harness.FRAME_END])
        sent = acked = 0
        while sent < count:
            batch = min(5000, count - sent)
            c.send(b"".join(head + body_head + body(first + sent + i) + end for i in range(batch)))
            sent += batch
            while acked < sent:
                f = c.read_method(timeout=20.0)
                self.assertEqual(f.name, "basic.ack", f)
                acked = f.args[0] if f.args[1] else max(acked, f.args[0])
        c.close_connection()

    def declare(self, ch, queue, durable, arguments=None):
        """Declares queue, deleted again when the test ends (with its spill files)."""
        ch.queue_declare(queue, durable=durable, arguments=arguments)

        def cleanup():
            conn = self.pika_connect()
            conn.channel().queue_delete(queue)
            conn.close()
        self.addCleanup(cleanup)

    def ready(self, ch, queue, durable):
        return ch.queue_declare(queue, passive=True, durable=durable).method.message_count

    def wait_ready(self, ch, queue, durable, count, timeout=20.0):
        deadline = time.monotonic() + timeout
        n = self.ready(ch, queue, durable)
        while n != count and time.monotonic() < deadline:
            time.sleep(0.05)
            n = self.ready(ch, queue, durable)
        self.assertEqual(n, count, queue)

    def consume_in_order(self, ch, queue, first, count, redelivered=None, ack=False):
        """Takes count messages and checks they are body(first) .. in order."""
        ch.basic_qos(prefetch_count=2000)
        got = 0
        for m, _props, data in ch.consume(queue, auto_ack=not ack, inactivity_timeout=5):
            self.assertIsNotNone(m, "%s: %d of %d before a 5 s silence" % (queue, got, count))
            if data != body(first + got):
                self.fail("%s: message %d is %r, not %r" % (queue, got, data, body(first + got)))
            if redelivered is not None:
                self.assertEqual(m.redelivered, redelivered)
            got += 1
            if ack and (got % 1000 == 0 or got == count):
                ch.basic_ack(m.delivery_tag, multiple=True)
            if got == count:
                break
        ch.cancel()
        return got

    # -- tests ------------------------------------------------------------

    def test_backlogs_stay_out_of_memory(self):
        conn = self.pika_connect()
        ch = conn.channel()
        self.declare(ch, "backlog-durable", True)
        self.declare(ch, "backlog-transient", False)
        # A first burst touches the fixed buffers that a fresh process has not yet (provided
        # receive buffers, 8 MiB a shard; mailbox rings; the log's write buffer, up to 8 MiB).
        self.publish_raw("backlog-durable", 0, N // 4, persistent=True)
        self.publish_raw("backlog-transient", 0, N // 4, persistent=False)
        self.wait_ready(ch, "backlog-durable", True, N // 4)
        self.wait_ready(ch, "backlog-transient", False, N // 4)
        ch.queue_purge("backlog-durable")
        ch.queue_purge("backlog-transient")
        rss_before = self.status_kib("VmRSS")
        self.publish_raw("backlog-durable", 0, N, persistent=True)
        self.publish_raw("backlog-transient", 0, N, persistent=False)
        self.wait_ready(ch, "backlog-durable", True, N)
        self.wait_ready(ch, "backlog-transient", False, N)
        rss_after = self.status_kib("VmRSS")
        in_memory_kib = 2 * N * IN_MEMORY_BYTES_PER_MESSAGE // 1024
        self.assertGreater(self.spill_files(), 0)
        self.assertLess(rss_after - rss_before, in_memory_kib // 4,
                        "RSS grew from %d to %d KiB; in memory the backlog would take %d KiB"
                        % (rss_before, rss_after, in_memory_kib))
        # Consumers with a prefetch: what is in flight is bounded by it, not by the backlog.
        self.assertEqual(self.consume_in_order(ch, "backlog-durable", 0, N, ack=True), N)
        self.assertEqual(self.consume_in_order(ch, "backlog-transient", 0, N, ack=True), N)
        self.assertEqual(self.ready(ch, "backlog-durable", True), 0)
        self.assertEqual(self.spill_files(), 0)  # read back to the end: every chunk is gone
        # No moment held the backlog in memory.
        hwm = self.status_kib("VmHWM")
        self.assertLess(hwm - rss_before, in_memory_kib // 4,
                        "peak RSS %d KiB, %d before the backlog" % (hwm, rss_before))
        conn.close()

    def test_restart_with_a_paged_out_backlog(self):
        total, first_part = 60000, 5000
        conn = self.pika_connect()
        ch = conn.channel()
        self.declare(ch, "backlog-restart", True)
        self.publish_raw("backlog-restart", 0, total, persistent=True)
        self.wait_ready(ch, "backlog-restart", True, total)
        self.assertGreater(self.spill_files(), 0)
        self.assertEqual(self.consume_in_order(ch, "backlog-restart", 0, first_part, ack=True),
                         first_part)
        conn.close()
        self.broker.restart()
        # Recovery pages the backlog out again, in log order.
        self.assertGreater(self.spill_files(), 0)
        conn = self.pika_connect()
        ch = conn.channel()
        self.assertEqual(self.ready(ch, "backlog-restart", True), total - first_part)
        self.assertEqual(self.consume_in_order(ch, "backlog-restart", first_part, total - first_part,
                                               redelivered=True, ack=True),
                         total - first_part)
        conn.close()
        self.broker.restart()
        # Every read-back copy acked its own slot: nothing comes back.
        conn = self.pika_connect()
        ch = conn.channel()
        self.assertEqual(self.ready(ch, "backlog-restart", True), 0)
        conn.close()

    def test_purge_and_delete_release_paged_out_messages(self):
        conn = self.pika_connect()
        ch = conn.channel()
        self.declare(ch, "backlog-purged", True)
        self.declare(ch, "backlog-deleted", True)
        self.publish_raw("backlog-purged", 0, 20000, persistent=True)
        self.publish_raw("backlog-deleted", 0, 20000, persistent=True)
        self.wait_ready(ch, "backlog-purged", True, 20000)
        self.wait_ready(ch, "backlog-deleted", True, 20000)
        self.assertEqual(ch.queue_purge("backlog-purged").method.message_count, 20000)
        self.assertEqual(ch.queue_delete("backlog-deleted").method.message_count, 20000)
        self.assertEqual(self.spill_files(), 0)
        conn.close()
        self.broker.restart()
        conn = self.pika_connect()
        ch = conn.channel()
        self.assertEqual(self.ready(ch, "backlog-purged", True), 0)
        ch.queue_declare("backlog-deleted", durable=True)
        self.assertEqual(self.ready(ch, "backlog-deleted", True), 0)
        conn.close()

    def test_ttl_and_max_length_reach_paged_out_messages(self):
        conn = self.pika_connect()
        ch = conn.channel()
        self.declare(ch, "backlog-ttl", False, {"x-message-ttl": 300})
        self.declare(ch, "backlog-maxlen", False, {"x-max-length": 5000})
        self.publish_raw("backlog-ttl", 0, 20000, persistent=False)
        self.publish_raw("backlog-maxlen", 0, 20000, persistent=False)
        self.wait_ready(ch, "backlog-maxlen", False, 5000)
        self.assertEqual(self.consume_in_order(ch, "backlog-maxlen", 15000, 5000), 5000)
        self.wait_ready(ch, "backlog-ttl", False, 0, timeout=5.0)
        self.assertEqual(self.spill_files(), 0)
        conn.close()


if __name__ == "__main__":
    harness.main()
