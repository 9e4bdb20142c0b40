#!/bin/bash
# Backlog in bounded memory (bench/RESULTS.md): N 16-byte persistent messages published to a
# durable queue with no consumer, then drained, on one broker; then the same N through an
# empty queue with a consumer running, on a fresh broker. Prints amqp-perf's rates, the
# broker-side time until the backlog is all queued, the broker's RSS and peak RSS (VmHWM)
# after each phase, and the disk the log and the spill take.
#
# usage: bench/backlog.sh BUILD_DIR N [DATA_DIR] [SHARDS]
# Needs python3-pika (the queue count). Disk: about 200 bytes per message (log and spill).
set -euo pipefail
build=$1
n=$2
data=${3:-/tmp/ringmq-backlog}
shards=${4:-2}
port=5799
python=${PYTHON:-/usr/bin/python3}
url=amqp://guest:guest@127.0.0.1:$port/
pid=

start_broker() {
    rm -rf "$data"
    mkdir -p "$data"
    "$build/ringmq" --port $port --data-dir "$data" --shards "$shards" \
        --log-file "$data/ringmq.log" --log-level info &
    pid=$!
    for _ in $(seq 100); do
        "$python" -c "import socket; socket.create_connection(('127.0.0.1', $port)).close()" \
            2>/dev/null && return
        sleep 0.1
    done
    echo "broker did not start" >&2
    exit 1
}

stop_broker() {
    kill "$pid"
    wait "$pid" || true
    pid=
}
trap 'if [ -n "$pid" ]; then kill "$pid"; fi' EXIT

perf() { "$build/amqp-perf" -h "$url" "$@" | grep -E "summary|published|consumed" || true; }
mem() { echo "  broker: $(grep -E '^(VmRSS|VmHWM)' /proc/$pid/status | tr -s ' \t\n' ' ')"; }

# Seconds until queue $1 holds $2 messages.
wait_count() {
    "$python" - "$port" "$1" "$2" <<'EOF'
import sys, time, pika
port, queue, want = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
conn = pika.BlockingConnection(pika.ConnectionParameters(host="127.0.0.1", port=port))
ch = conn.channel()
while ch.queue_declare(queue, passive=True).method.message_count < want:
    time.sleep(0.2)
conn.close()
EOF
}

echo "== N=$n, $shards shards, data in $data ($(df -h --output=avail "$(dirname "$data")" | tail -1) free)"
start_broker
echo "== backlog: publish with no consumer"
t0=$(date +%s.%N)
perf -x 1 -y 0 -s 16 -f persistent -C "$n" -u backlog -ad false
wait_count backlog "$n"
t1=$(date +%s.%N)
echo "  all $n queued after $(echo "$t1 - $t0" | bc) s: $(echo "$n / ($t1 - $t0)" | bc) msg/s"
mem
echo "  disk: $(du -sh "$data/log" | cut -f1) log, $(du -sh "$data/spill" | cut -f1) spill"
echo "== backlog: drain"
perf -x 0 -y 1 -D "$n" -p -u backlog -q 1000
mem
echo "  disk: $(du -sh "$data/log" | cut -f1) log, $(du -sh "$data/spill" | cut -f1) spill"
stop_broker

echo "== empty queue: producer and consumer together (fresh broker)"
start_broker
perf -x 1 -y 1 -s 16 -f persistent -C "$n" -D "$n" -u empty -ad false -q 1000
mem
stop_broker
