# tests/perf/: amqp-perf against a broker on loopback.
TESTS += tests/perf/test_amqp_perf.py
EXTRA_DIST += tests/perf/test_amqp_perf.py
