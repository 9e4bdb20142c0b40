"""Cross-shard mailbox under load: starts ringmq with 2 shards on loopback,
pins queue 'load' to shard 1, runs 4 publisher and 2 consumer connections
(the kernel spreads them over both shards), then stops the broker and reads
the per-shard mailbox counters it logs (records sent, wake-ups sent).
Prints records per wake-up. Bounded: MESSAGES per publisher, 120 s.

usage: python3 bench/mailbox_load.py RINGMQ_BINARY [MESSAGES]"""
import os, re, signal, socket, subprocess, sys, tempfile, threading, time
import pika

binary = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
pubs, cons = 8, 4

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

with tempfile.TemporaryDirectory() as tmp:
    conf = os.path.join(tmp, "ringmq.conf")
    with open(conf, "w") as f:
        f.write("[placement]\npin = / load 1\n")
    port, log = free_port(), os.path.join(tmp, "ringmq.log")
    broker = subprocess.Popen([binary, "--config", conf, "--port", str(port), "--shards", "2",
                               "--data-dir", tmp, "--log-file", log])
    for _ in range(100):
        try: socket.create_connection(("127.0.0.1", port)).close(); break
        except OSError: time.sleep(0.05)
    params = pika.ConnectionParameters("127.0.0.1", port)
    setup = pika.BlockingConnection(params); setup.channel().queue_declare("load"); setup.close()
    got = [0] * cons
    def consume(i):
        c = pika.BlockingConnection(params); ch = c.channel(); ch.basic_qos(prefetch_count=500)
        deadline = time.time() + 120
        for m, _p, _b in ch.consume("load", inactivity_timeout=2):
            if m is None:
                if got[i] and sum(got) >= pubs * count or time.time() > deadline: break
                continue
            ch.basic_ack(m.delivery_tag, multiple=False); got[i] += 1
            if sum(got) >= pubs * count: break
        c.close()
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "load"))
    import amqp_raw, struct
    def publish():
        # Raw client: publishes go out in batches of 500 per send, as a busy
        # application's would, so shards see bursts rather than single messages.
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(amqp_raw.PROTOCOL_HEADER); buf = b""
        while True:
            buf += s.recv(65536)
            frames, buf = amqp_raw.parse_frames(buf)
            ids = [amqp_raw.method_id(p) for t, _c, p in frames if t == 1]
            if (10, 10) in ids: s.sendall(amqp_raw.start_ok())
            if (10, 30) in ids: s.sendall(amqp_raw.tune_ok() + amqp_raw.connection_open())
            if (10, 41) in ids: break
        s.sendall(amqp_raw.method_frame(1, 20, 10, amqp_raw.shortstr("")))
        body = b"x" * 16
        one = (amqp_raw.method_frame(1, 60, 40, struct.pack(">H", 0) + amqp_raw.shortstr("") +
                                     amqp_raw.shortstr("load") + b"\x00")
               + struct.pack(">BHI", 2, 1, 14) + struct.pack(">HHQH", 60, 0, len(body), 0) + b"\xce"
               + struct.pack(">BHI", 3, 1, len(body)) + body + b"\xce")
        for n in range(0, count, 500): s.sendall(one * min(500, count - n))
        s.sendall(amqp_raw.method_frame(0, 10, 50, struct.pack(">H", 200) + amqp_raw.shortstr("") + struct.pack(">HH", 0, 0)))
        s.settimeout(10)
        try:
            while s.recv(65536): pass
        except OSError: pass
        s.close()
    t0 = time.time()
    ts = [threading.Thread(target=consume, args=(i,)) for i in range(cons)] + \
         [threading.Thread(target=publish) for _ in range(pubs)]
    for t in ts: t.start()
    for t in ts: t.join()
    elapsed = time.time() - t0
    broker.send_signal(signal.SIGTERM); broker.wait(timeout=10)
    sent = wakes = 0
    spread = [0, 0]
    for line in open(log):
        m = re.search(r"accepting AMQP connection .* on shard (\d)", line)
        if m: spread[int(m.group(1))] += 1
        m = re.search(r"records sent (\d+), received (\d+), wake-ups sent (\d+)", line)
        if m: sent += int(m.group(1)); wakes += int(m.group(3))
    print(f"connections per shard: {spread}")
    print(f"messages: {pubs * count} published, {sum(got)} consumed in {elapsed:.1f} s")
    print(f"mailbox: {sent} records, {wakes} wake-ups: {sent / max(wakes, 1):.1f} records per wake-up, "
          f"{wakes / max(pubs * count, 1):.4f} wake-ups per message")
