# tests/interop/: interop tests with real AMQP client libraries (python3-pika)
# and a raw protocol client, against a ringmq that tests/interop/harness.py
# starts on loopback (RINGMQ_BIN, RINGMQ_TEST_SHARDS; PY_LOG_COMPILER and
# AM_TESTS_ENVIRONMENT come from tests/local.mk).  To run them against
# RabbitMQ instead, see tests/interop/rabbitmq-local.sh.
TESTS += tests/interop/test_connection.py
EXTRA_DIST += tests/interop/harness.py tests/interop/rabbitmq-local.sh
TESTS += tests/interop/test_topology.py
EXTRA_DIST += tests/interop/msgbase.py
