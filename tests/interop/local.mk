# tests/interop/: interop tests with real AMQP client libraries (python3-pika)
# against a ringmq started by tests/interop/harness.py on loopback.  Run
# against RabbitMQ instead: see tests/interop/rabbitmq-local.sh.
TEST_EXTENSIONS = .py
PY_LOG_COMPILER = /usr/bin/python3
AM_TESTS_ENVIRONMENT = RINGMQ_BIN=$(abs_top_builddir)/ringmq; export RINGMQ_BIN;
TESTS += tests/interop/test_connection.py
EXTRA_DIST += tests/interop/harness.py tests/interop/rabbitmq-local.sh
