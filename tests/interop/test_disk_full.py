#!/usr/bin/python3
"""Disk full: the broker's data directory is a small tmpfs made by the test
(skipped where mounting is not allowed).  A filler file leaves room for about
one more segment.  Publishing persistent messages with confirms then gets a
nack for what could not be written and connection.blocked ("low on disk");
every message confirmed before stays (also across a SIGKILL and a restart on
the still-full disk); once the filler is removed the broker finds space,
sends connection.unblocked, and confirms publishes again."""

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from persistbase import PersistTestCase, RestartableBroker  # noqa: E402

import pika  # noqa: E402
import pika.exceptions  # noqa: E402

PERSISTENT = pika.BasicProperties(delivery_mode=2)
TMPFS_BYTES = 6 << 20
SEGMENT = "256K"


class TmpfsBroker(RestartableBroker):
    """A RestartableBroker whose data directory is a tmpfs mount."""

    def start(self):
        if self.tmp is None:
            self.tmp = tempfile.mkdtemp(prefix="ringmq-diskfull-")
            self.data = os.path.join(self.tmp, "data")
            os.mkdir(self.data)
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d" % TMPFS_BYTES, "tmpfs", self.data],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode != 0:
                os.rmdir(self.data)
                os.rmdir(self.tmp)
                self.tmp = None
                raise harness.unittest.SkipTest("cannot mount a tmpfs here (needs root)")
            self.port = harness.find_free_port()
        # With tmp set, RestartableBroker starts on tmp/data and the same port.
        super().start()

    def unmount(self):
        subprocess.run(["umount", "-l", self.data], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class DiskFull(PersistTestCase):
    timeout = 90
    ringmq_args = ("--segment-size", SEGMENT)
    shards = 1
    broker_class = TmpfsBroker

    @classmethod
    def tearDownClass(cls):
        b, cls.broker = cls.broker, None
        if b is None:
            return
        try:
            b.terminate(timeout=10.0)
            b.out.close()
        finally:
            b.unmount()
            shutil.rmtree(b.tmp, ignore_errors=True)

    def fill(self, leave_bytes):
        st = os.statvfs(self.broker.data)
        free = st.f_bavail * st.f_frsize
        path = os.path.join(self.broker.data, "filler")
        with open(path, "wb") as f:
            f.write(b"\0" * max(0, free - leave_bytes))
        return path

    def test_blocked_nacked_nothing_lost_resumes(self):
        body = b"d" * 1024
        filler = self.fill(300 << 10)  # room for about one more 256 KiB segment
        conn = self.pika_connect()
        blocked = []
        conn.add_on_connection_blocked_callback(lambda c, m: blocked.append(m.method.reason))
        conn.add_on_connection_unblocked_callback(lambda c, m: blocked.append("unblocked"))
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare("df", durable=True)
        confirmed = 0
        nacked = False
        for i in range(5000):  # far more than fits: ~600 KiB of segments
            try:
                ch.basic_publish("", "df", body + b"%d" % i, PERSISTENT)
                confirmed += 1
            except pika.exceptions.NackError:
                nacked = True
                break
        self.assertTrue(nacked, "no nack after %d publishes of 1 KiB into a full disk" % confirmed)
        self.assertGreater(confirmed, 100)
        deadline = time.monotonic() + 5
        while not blocked and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.1)
        self.assertEqual(blocked, ["low on disk"])
        self.wait_log(r"disk alarm raised", timeout=3.0)

        # A crash and a restart on the still-full disk: the broker starts and keeps every confirmed one.
        self.broker.restart(crash=True)
        c2 = self.pika_connect()
        ch2 = c2.channel()
        self.assertGreaterEqual(ch2.queue_declare("df", passive=True).method.message_count, confirmed)
        c2.close()

        # Free the space: the alarm clears and publishes are confirmed again.
        os.unlink(filler)
        self.wait_log(r"disk alarm cleared", timeout=5.0)
        conn = self.pika_connect()
        events = []
        conn.add_on_connection_blocked_callback(lambda c, m: events.append("blocked"))
        ch = conn.channel()
        ch.confirm_delivery()
        for i in range(200):
            ch.basic_publish("", "df", b"after%d" % i, PERSISTENT)
        self.assertEqual(events, [])
        got = []
        while True:
            m, _p, b = ch.basic_get("df", auto_ack=True)
            if m is None:
                break
            got.append(b)
        for i in range(confirmed):
            self.assertEqual(got[i], body + b"%d" % i)
        self.assertEqual(got[-200:], [b"after%d" % i for i in range(200)])
        conn.close()


if __name__ == "__main__":
    harness.main()
