"""Runtime checks against a broker started on loopback: two shards run as two
threads, each pinned to its configured CPU and each with its own io_uring
ring; connections from many clients land on every shard; SIGHUP reopens
the log file; SIGTERM closes connections with 320 and exits 0 quickly.
Every wait is bounded. Ends with 'runtime: N passed, M failed'."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "load"))
import amqp_raw  # noqa: E402

BIN = os.environ.get("RINGMQ_BIN", "./ringmq")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Broker:
    def __init__(self, *args):
        self.tmp = tempfile.TemporaryDirectory()
        self.port = free_port()
        self.log_path = os.path.join(self.tmp.name, "ringmq.log")
        self.proc = subprocess.Popen(
            [BIN, "--port", str(self.port), "--data-dir", self.tmp.name,
             "--log-file", self.log_path, "--log-level", "info", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("broker exited: %s" % self.proc.stderr.read())
                time.sleep(0.05)
        raise RuntimeError("broker did not listen")

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.returncode != 0:
            sys.stderr.write("broker stderr:\n" + self.proc.stderr.read().decode(errors="replace"))
            sys.stderr.write("broker log tail:\n" + self.log()[-3000:])
        self.tmp.cleanup()
        return self.proc.returncode


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def open_connection(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(amqp_raw.PROTOCOL_HEADER)
    buf = b""
    while True:
        data = s.recv(65536)
        if not data:
            raise RuntimeError("closed during handshake")
        buf += data
        frames, buf = amqp_raw.parse_frames(buf)
        for ftype, _ch, payload in frames:
            mid = amqp_raw.method_id(payload)
            if mid == (10, 10):
                s.sendall(amqp_raw.start_ok())
            elif mid == (10, 30):
                s.sendall(amqp_raw.tune_ok() + amqp_raw.connection_open())
            elif mid == (10, 41):
                return s


class RuntimeTest(unittest.TestCase):
    def test_two_shards_two_pinned_threads_two_rings(self):
        if (os.cpu_count() or 1) < 2:
            self.skipTest("needs 2 CPUs")
        b = Broker("--shards", "2", "--cpus", "0,1")
        try:
            pid = b.proc.pid
            shards = {}
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    comm = f.read().strip()
                if comm.startswith("shard-"):
                    with open(f"/proc/{pid}/task/{tid}/status") as f:
                        cpus = [l.split(":")[1].strip() for l in f if l.startswith("Cpus_allowed_list")][0]
                    shards[comm] = cpus
            self.assertEqual(shards, {"shard-0": "0", "shard-1": "1"})
            rings = 0
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[io_uring]":
                        rings += 1
                except OSError:
                    pass
            # One ring per shard, plus the main thread's small ring for wake-ups.
            self.assertEqual(rings, 3)
        finally:
            self.assertEqual(b.stop(), 0)

    def test_connections_spread_over_all_shards(self):
        b = Broker("--shards", "2")
        try:
            socks = [open_connection(b.port) for _ in range(32)]
            log = b.log()
            for shard in (0, 1):
                self.assertIn(f"on shard {shard}", log)
            self.assertGreaterEqual(log.count("accepting AMQP connection"), 32)
            for s in socks:
                s.close()
        finally:
            self.assertEqual(b.stop(), 0)

    def test_sighup_reopens_log_file(self):
        b = Broker("--shards", "1")
        try:
            rotated = b.log_path + ".1"
            os.rename(b.log_path, rotated)
            b.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 5
            while not os.path.exists(b.log_path) and time.time() < deadline:
                time.sleep(0.05)
            s = open_connection(b.port)
            peer = "127.0.0.1:%d ->" % s.getsockname()[1]
            s.close()
            time.sleep(0.2)
            self.assertIn(peer, b.log())
            self.assertIn("log file reopened", b.log())
            with open(rotated) as f:
                self.assertNotIn(peer, f.read())
        finally:
            self.assertEqual(b.stop(), 0)

    def test_sigterm_closes_with_320_and_exits_0_fast(self):
        b = Broker("--shards", "2")
        socks = [open_connection(b.port) for _ in range(8)]
        t0 = time.time()
        b.proc.send_signal(signal.SIGTERM)
        for s in socks:
            s.settimeout(2)
            data = s.recv(4096)
            frames, _ = amqp_raw.parse_frames(data)
            self.assertTrue(frames, "no frame before close")
            ftype, ch, payload = frames[0]
            self.assertEqual((ftype, ch, amqp_raw.method_id(payload)), (1, 0, (10, 50)))
            self.assertEqual(int.from_bytes(payload[4:6], "big"), 320)
            s.sendall(amqp_raw.method_frame(0, 10, 51))
        rc = b.proc.wait(timeout=5)
        self.assertLess(time.time() - t0, 1.0)
        self.assertEqual(rc, 0)
        b.stop()

    def test_peer_that_stops_reading_is_not_read(self):
        # A client that publishes mandatory, unroutable 256 KiB messages gets
        # each one back as basic.return. It never reads: the broker's output
        # to it grows to the high watermark, then the broker stops reading it,
        # so the client's sends stall while the broker's memory stays bounded.
        # When the client reads again, every message comes back.
        b = Broker("--shards", "1")
        try:
            s = open_connection(b.port)
            s.sendall(amqp_raw.method_frame(1, 20, 10, amqp_raw.shortstr("")))
            body = b"r" * (256 * 1024)
            frame_max = 131072
            one = amqp_raw.method_frame(1, 60, 40, b"\x00\x00" + amqp_raw.shortstr("amq.direct") +
                                        amqp_raw.shortstr("nowhere") + b"\x01")
            import struct
            one += struct.pack(">BHI", 2, 1, 14) + struct.pack(">HHQH", 60, 0, len(body), 0) + b"\xce"
            for i in range(0, len(body), frame_max - 8):
                chunk = body[i:i + frame_max - 8]
                one += struct.pack(">BHI", 3, 1, len(chunk)) + chunk + b"\xce"
            s.setblocking(False)
            sent, published = 0, 0
            rss_start = rss_kib(b.proc.pid)
            deadline = time.time() + 4
            pending = b""
            while time.time() < deadline and published < 400:
                if not pending:
                    pending = one
                    published += 1
                try:
                    n = s.send(pending)
                    pending = pending[n:]
                    sent += n
                except BlockingIOError:
                    time.sleep(0.01)
            stalled = published < 400
            rss_peak = rss_kib(b.proc.pid)
            self.assertTrue(stalled, "the broker kept reading a peer that does not read")
            # Output is held near the 4 MiB watermark, not grown with the input.
            self.assertLess(rss_peak - rss_start, 48 * 1024)
            # Read everything back: the broker resumes and returns each message.
            s.setblocking(True)
            s.settimeout(10)
            buf, returns = b"", 0
            wanted = published - (1 if pending else 0)  # the last may be half sent
            end = time.time() + 30
            while returns < wanted and time.time() < end:
                data = s.recv(1 << 20)
                if not data:
                    break
                buf += data
                frames, buf = amqp_raw.parse_frames(buf)
                for ftype, _ch, payload in frames:
                    if ftype == 1 and amqp_raw.method_id(payload) == (60, 50):
                        returns += 1
            self.assertEqual(returns, wanted)
            s.close()
        finally:
            self.assertEqual(b.stop(), 0)

    def test_consumer_that_stops_reading_stops_receiving(self):
        # A no-ack consumer (no prefetch limit) that stops reading its socket:
        # once its connection's unsent output passes the high watermark its
        # consumers are paused, so messages stay in the queue instead of
        # piling up in the broker's output buffer; when it reads again, it
        # receives every message.
        import pika
        import struct
        b = Broker("--shards", "2")
        try:
            params = pika.ConnectionParameters("127.0.0.1", b.port)
            pc = pika.BlockingConnection(params)
            pch = pc.channel()
            pch.queue_declare("bp")
            s = open_connection(b.port)
            s.sendall(amqp_raw.method_frame(1, 20, 10, amqp_raw.shortstr("")))
            s.sendall(amqp_raw.method_frame(1, 60, 20, b"\x00\x00" + amqp_raw.shortstr("bp") +
                                            amqp_raw.shortstr("") + b"\x02" + struct.pack(">I", 0)))
            time.sleep(0.3)  # consume-ok is in the socket buffer, unread
            total, size = 200, 128 * 1024
            for i in range(total):
                pch.basic_publish("", "bp", struct.pack(">I", i) + b"b" * (size - 4))
            time.sleep(1.0)
            ready = pch.queue_declare("bp", passive=True).method.message_count
            # At most the watermark (4 MiB) plus socket buffers and one dispatch
            # budget can have left the queue; most must still be waiting in it.
            self.assertGreater(ready, total // 2, "deliveries were not paused")
            s.settimeout(10)
            buf, seen = b"", []
            end = time.time() + 30
            while len(seen) < total and time.time() < end:
                data = s.recv(1 << 20)
                if not data:
                    break
                buf += data
                frames, buf = amqp_raw.parse_frames(buf)
                for ftype, _ch, payload in frames:
                    if ftype == 3 and len(payload) > 0 and payload.startswith(b"\x00"):
                        pass
                    if ftype == 1 and amqp_raw.method_id(payload) == (60, 60):
                        seen.append(1)
            self.assertEqual(len(seen), total)
            s.close()
            pc.close()
        finally:
            self.assertEqual(b.stop(), 0)

    def test_vhosts_made_by_ringmqctl_are_separate(self):
        # A vhost and a user made with ringmqctl (broker stopped), then: the
        # user reaches its vhost, queues there are invisible from "/", and a
        # user without access to a vhost is refused with 530.
        import pika
        ctl = os.path.join(os.environ.get("RINGMQ_BUILDDIR", os.path.dirname(BIN)), "ringmqctl")
        if not os.path.exists(ctl):
            self.skipTest("ringmqctl not built")
        with tempfile.TemporaryDirectory() as data:
            def run(*args):
                subprocess.run([ctl, "--data-dir", data, *args], check=True, timeout=10,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            run("list_users")  # creates the default store
            run("add_vhost", "v2")
            run("add_user", "alice", "secret")
            run("set_permissions", "-p", "v2", "alice", ".*", ".*", ".*")
            port = free_port()
            proc = subprocess.Popen([BIN, "--port", str(port), "--data-dir", data, "--shards", "2"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                for _ in range(100):
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                        break
                    except OSError:
                        time.sleep(0.05)
                alice = pika.PlainCredentials("alice", "secret")
                c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port, "v2", alice))
                ch = c.channel()
                ch.queue_declare("only-in-v2")
                ch.basic_publish("", "only-in-v2", b"hello")
                g = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port, "/"))
                gch = g.channel()
                with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as cm:
                    gch.queue_declare("only-in-v2", passive=True)
                self.assertEqual(cm.exception.reply_code, 404)
                self.assertEqual(ch.queue_declare("only-in-v2", passive=True).method.message_count, 1)
                with self.assertRaises(pika.exceptions.ProbableAccessDeniedError):
                    pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port, "/", alice))
                c.close()
                g.close()
            finally:
                proc.send_signal(signal.SIGTERM)
                self.assertEqual(proc.wait(timeout=5), 0)

    def test_bad_config_refuses_to_start(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
            f.write("[server]\nport = 99999\n")
            f.flush()
            p = subprocess.run([BIN, "--config", f.name], capture_output=True, text=True, timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(f"{f.name}:2: key 'port'", p.stderr)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    skipped = len(result.skipped)
    print(f"runtime: {result.testsRun - failed - skipped} passed, {failed} failed, {skipped} skipped")
    sys.exit(1 if failed else 0)
