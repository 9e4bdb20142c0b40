# tests/load/: bounded load tests against a broker on loopback.
TESTS += tests/load/test_connections_10k.py
EXTRA_DIST += tests/load/amqp_raw.py tests/load/test_connections_10k.py
