#!/bin/sh
# Start (or stop) a throwaway RabbitMQ node on loopback for running the
# interop tests against the reference broker:
#
#   tests/interop/rabbitmq-local.sh start [PORT]   # default port 5673
#   RINGMQ_TEST_URL=amqp://guest:guest@127.0.0.1:5673/ \
#       RINGMQ_TEST_RABBITMQCTL="tests/interop/rabbitmq-local.sh ctl" \
#       /usr/bin/python3 tests/interop/test_connection.py [Class[.test] ...]
#   tests/interop/rabbitmq-local.sh stop
#   tests/interop/rabbitmq-local.sh ctl status     # rabbitmqctl -n NODE status
#
# Needs Debian's rabbitmq-server package (apt-get install rabbitmq-server;
# the packaged service need not run).  RINGMQ_TEST_RABBITMQCTL lets the
# resource-alarm tests drive the node's memory watermark.  All state lives
# under $RMQ_DIR (default /tmp/ringmq-interop-rabbitmq); RMQ_PORT and
# RMQ_NODENAME select the node for stop and ctl.
set -eu

cmd=${1:-start}
[ $# -gt 0 ] && shift
port=${RMQ_PORT:-5673}
if [ "$cmd" = start ] && [ $# -gt 0 ]; then
	port=$1
fi
dir=${RMQ_DIR:-/tmp/ringmq-interop-rabbitmq}
node=${RMQ_NODENAME:-ringmq-interop@localhost}
sbin=/usr/lib/rabbitmq/bin

export RABBITMQ_NODENAME="$node"
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT="$port"
export RABBITMQ_DIST_PORT=$((port + 20000))
export RABBITMQ_MNESIA_BASE="$dir/mnesia"
export RABBITMQ_LOG_BASE="$dir/log"
export RABBITMQ_CONFIG_FILE="$dir/rabbitmq"
export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
export RABBITMQ_PID_FILE="$dir/rabbitmq.pid"
export ERL_EPMD_ADDRESS=127.0.0.1

case "$cmd" in
start)
	mkdir -p "$dir/mnesia" "$dir/log"
	echo '[].' >"$dir/enabled_plugins"
	cat >"$dir/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$port
loopback_users = none
heartbeat = 60
channel_max = 2047
frame_max = 131072
log.console = false
log.file.level = info
CONF
	nohup "$sbin/rabbitmq-server" >"$dir/server.out" 2>&1 &
	i=0
	while [ $i -lt 120 ]; do
		if /usr/bin/python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 1).close()" 2>/dev/null; then
			echo "rabbitmq listening on 127.0.0.1:$port (node $node)"
			exit 0
		fi
		i=$((i + 1))
		sleep 0.5
	done
	echo "rabbitmq did not start; see $dir/server.out and $dir/log" >&2
	exit 1
	;;
stop)
	"$sbin/rabbitmqctl" -n "$node" stop >/dev/null 2>&1 || true
	;;
ctl)
	exec "$sbin/rabbitmqctl" -n "$node" "$@"
	;;
*)
	echo "usage: $0 start [PORT] | stop | ctl ARGS..." >&2
	exit 2
	;;
esac
