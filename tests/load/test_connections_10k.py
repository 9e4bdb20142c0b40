"""Holds many concurrent AMQP connections (10,000 by default) against a
broker started on loopback, each through the whole handshake to open-ok,
then reports the broker's RSS per connection. Bounded in count and time.

Environment: RINGMQ_BIN (the broker), RINGMQ_TEST_CONNS (default 10000),
RINGMQ_TEST_SHARDS (default 2), RINGMQ_RSS_PER_CONN_MAX_KIB (assertion
bound, default 16). Exits 77 (skip) when the file limit is too low.
"""
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import amqp_raw  # noqa: E402

CONNS = int(os.environ.get("RINGMQ_TEST_CONNS", "10000"))
SHARDS = os.environ.get("RINGMQ_TEST_SHARDS", "2")
RSS_MAX_KIB = float(os.environ.get("RINGMQ_RSS_PER_CONN_MAX_KIB", "16"))
DEADLINE_S = 120


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Client:
    __slots__ = ("sock", "buf", "state")

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.state = 0  # 0 start, 1 tune, 2 open-ok awaited, 3 open


def handshake_all(port, count, deadline):
    sel = selectors.DefaultSelector()
    clients = []
    opened = 0
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        s.sendall(amqp_raw.PROTOCOL_HEADER)
        c = Client(s)
        clients.append(c)
        sel.register(s, selectors.EVENT_READ, c)
        # Drain whatever is ready now so the kernel queues stay short.
        for key, _ in sel.select(timeout=0):
            opened += step(key.data)
    while opened < count and time.time() < deadline:
        for key, _ in sel.select(timeout=1):
            opened += step(key.data)
    return clients, opened


def step(c):
    data = c.sock.recv(65536)
    if not data:
        raise RuntimeError("broker closed a connection during the handshake")
    c.buf += data
    frames, c.buf = amqp_raw.parse_frames(c.buf)
    done = 0
    for ftype, _channel, payload in frames:
        if ftype != 1:
            continue
        mid = amqp_raw.method_id(payload)
        if mid == (10, 10):
            c.sock.sendall(amqp_raw.start_ok())
        elif mid == (10, 30):
            c.sock.sendall(amqp_raw.tune_ok() + amqp_raw.connection_open())
        elif mid == (10, 41):
            c.state = 3
            done += 1
        elif mid == (10, 50):
            raise RuntimeError("broker closed a connection: %r" % payload)
    return done


def external(url_port, pid):
    """Measures another broker already running on 127.0.0.1:url_port (pid),
    e.g. RabbitMQ, for a side-by-side figure."""
    base_kib = rss_kib(pid)
    t0 = time.time()
    clients, opened = handshake_all(url_port, CONNS, t0 + DEADLINE_S)
    elapsed = time.time() - t0
    time.sleep(2)
    held_kib = rss_kib(pid)
    print(f"external broker: {opened}/{CONNS} connections in {elapsed:.2f} s "
          f"({opened / elapsed:.0f} handshakes/s); RSS {base_kib} -> {held_kib} KiB: "
          f"{(held_kib - base_kib) / max(opened, 1):.2f} KiB per connection")
    for c in clients:
        c.sock.close()
    return 0


def main():
    if os.environ.get("RINGMQ_TEST_PID") and os.environ.get("RINGMQ_TEST_PORT"):
        return external(int(os.environ["RINGMQ_TEST_PORT"]), int(os.environ["RINGMQ_TEST_PID"]))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = CONNS + 100
    if hard < need:
        print(f"skip: file limit {hard} < {need}")
        print("load-connections: 0 passed, 0 failed, 1 skipped")
        return 77
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    binary = os.environ.get("RINGMQ_BIN", "./ringmq")
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = open(os.path.join(tmp, "ringmq.log"), "w")
        broker = subprocess.Popen(
            [binary, "--port", str(port), "--shards", SHARDS, "--data-dir", tmp,
             "--log-level", "warn", "--heartbeat", "0"],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port)).close()
                    break
                except OSError:
                    time.sleep(0.1)
            time.sleep(0.2)
            base_kib = rss_kib(broker.pid)
            t0 = time.time()
            clients, opened = handshake_all(port, CONNS, t0 + DEADLINE_S)
            elapsed = time.time() - t0
            time.sleep(0.5)  # let the last sends complete and buffers return
            held_kib = rss_kib(broker.pid)
            per_conn = (held_kib - base_kib) / max(opened, 1)
            print(f"connections opened: {opened}/{CONNS} in {elapsed:.2f} s "
                  f"({opened / elapsed:.0f} handshakes/s)")
            print(f"broker RSS: {base_kib} KiB idle, {held_kib} KiB with {opened} connections: "
                  f"{per_conn:.2f} KiB per connection")
            ok = opened == CONNS and per_conn <= RSS_MAX_KIB and broker.poll() is None
            for c in clients:
                c.sock.close()
            broker.send_signal(signal.SIGTERM)
            rc = broker.wait(timeout=10)
            ok = ok and rc == 0
        finally:
            if broker.poll() is None:
                broker.kill()
            log.close()
    print("load-connections: %d passed, %d failed" % (1 if ok else 0, 0 if ok else 1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
