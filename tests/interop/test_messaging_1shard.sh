#!/bin/bash
# The messaging interop scripts again with a broker of one shard (make check
# runs them with two by default), so both shard counts are covered.
set -u
status=0
for script in test_topology.py test_messaging.py test_queue_args.py test_scenarios.py; do
    RINGMQ_TEST_SHARDS=1 /usr/bin/python3 "$RINGMQ_SRCDIR/tests/interop/$script" || status=1
done
exit $status
