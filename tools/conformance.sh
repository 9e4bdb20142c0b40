#!/usr/bin/env bash
# Runs the third-party client test suites (../shared/conformance: amqp091-go,
# streadway/amqp, rabbitmq-c) against a ringmq started here on loopback.
#
#   tools/conformance.sh [BUILD_DIR] [SHARDS]
#
# BUILD_DIR defaults to build/normal (made by tools/dev.sh), SHARDS to 2.
# Each suite prints its own closing line: "SUITE: N passed, M failed, K skipped".
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build/normal}
shards=${2:-2}
suites=$top/../shared/conformance
[ -d "$suites" ] || { echo "conformance: $suites not found" >&2; exit 2; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
data=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$data"' EXIT
"$build/ringmq" --port "$port" --shards "$shards" --data-dir "$data" --log-file "$data/ringmq.log" &
pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
export AMQP_URL="amqp://guest:guest@127.0.0.1:$port/"
status=0
for suite in run-rabbitmq-c.sh run-amqp091-go.sh run-streadway-amqp.sh; do
    "$suites/$suite" | tail -n 3 || status=1
done
exit $status
