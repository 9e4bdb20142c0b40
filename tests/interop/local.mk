# tests/interop/: interop tests with real AMQP client libraries (python3-pika)
# and a raw protocol client, against a ringmq that tests/interop/harness.py
# starts on loopback (RINGMQ_BIN, RINGMQ_TEST_SHARDS; PY_LOG_COMPILER and
# AM_TESTS_ENVIRONMENT come from tests/local.mk).  To run them against
# RabbitMQ instead, see tests/interop/rabbitmq-local.sh.
TESTS += tests/interop/test_connection.py
EXTRA_DIST += tests/interop/harness.py tests/interop/rabbitmq-local.sh
TESTS += tests/interop/test_topology.py
EXTRA_DIST += tests/interop/msgbase.py
# Connection tests through aio-pika and librabbitmq (rmqc_handshake, needs
# librabbitmq-dev), raw-socket robustness; test_connection.py with 1 shard.
TESTS += tests/interop/test_connection_clients.py tests/interop/test_connection_1shard.sh
EXTRA_DIST += tests/interop/test_connection_clients.py tests/interop/test_connection_1shard.sh
if HAVE_LIBRABBITMQ
check_PROGRAMS += tests/interop/rmqc_handshake
tests_interop_rmqc_handshake_SOURCES = tests/interop/rmqc_handshake.c
tests_interop_rmqc_handshake_LDADD = -lrabbitmq
endif
TESTS += tests/interop/test_messaging.py
TESTS += tests/interop/test_scenarios.py
TESTS += tests/interop/test_clients.py
EXTRA_DIST += tests/interop/rmqc_client.c
TESTS += tests/interop/test_queue_args.py
TESTS += tests/interop/test_messaging_1shard.sh
EXTRA_DIST += tests/interop/test_messaging_1shard.sh
# Persistence: restarts on the same data directory and the SIGKILL crash test.
TESTS += tests/interop/test_persistence.py tests/interop/test_crash.py
EXTRA_DIST += tests/interop/persistbase.py
# Durable definitions across restarts (clean and SIGKILL), with 2 and 1 shards.
TESTS += tests/interop/test_durable_topology.py tests/interop/test_durable_topology_1shard.sh
EXTRA_DIST += tests/interop/test_durable_topology_1shard.sh
TESTS += tests/interop/test_disk_full.py
# Backlogs paged out to DATA_DIR/spill: bounded memory, order, restarts, purge, TTL, length.
TESTS += tests/interop/test_backlog.py
