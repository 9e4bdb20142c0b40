# tests/runtime/: the shard runtime seen from outside the process.
TESTS += tests/runtime/test_runtime.py
EXTRA_DIST += tests/runtime/test_runtime.py
