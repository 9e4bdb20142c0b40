# tests/: cmocka unit tests mirroring the tree, interop tests, fuzz targets.
TEST_LIBS = $(RINGMQ_LIBS) $(CMOCKA_LIBS)

# Scripts run by Debian's Python (its python3-pika, -pamqp, ... live there),
# against binaries of this build tree.
TEST_EXTENSIONS = .py .sh
PY_LOG_COMPILER = /usr/bin/python3
SH_LOG_COMPILER = /bin/bash
if SANITIZERS
RSS_PER_CONN_MAX_KIB = 256
else
RSS_PER_CONN_MAX_KIB = 16
endif
AM_TESTS_ENVIRONMENT = \
	RINGMQ_BIN=$(abs_top_builddir)/ringmq; export RINGMQ_BIN; \
	RINGMQ_BUILDDIR=$(abs_top_builddir); export RINGMQ_BUILDDIR; \
	RINGMQ_SRCDIR=$(abs_top_srcdir); export RINGMQ_SRCDIR; \
	RINGMQ_RSS_PER_CONN_MAX_KIB=$(RSS_PER_CONN_MAX_KIB); export RINGMQ_RSS_PER_CONN_MAX_KIB; \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0; export ASAN_OPTIONS;

include tests/core/local.mk
include tests/net/local.mk
include tests/load/local.mk
include tests/runtime/local.mk
include tests/diff/local.mk
include tests/fuzz/local.mk
include tests/route/local.mk
include tests/store/local.mk
include tests/interop/local.mk
include tests/perf/local.mk
