#!/bin/bash
# tests/interop/test_durable_topology.py against a ringmq with a single shard,
# so that make check covers 1 and 2 shards (the harness default is 2).
# RINGMQ_SRCDIR comes from the test environment (tests/local.mk).
srcdir=${RINGMQ_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
RINGMQ_TEST_SHARDS=1
export RINGMQ_TEST_SHARDS
exec /usr/bin/python3 "$srcdir/tests/interop/test_durable_topology.py"
