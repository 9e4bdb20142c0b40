# tests/: cmocka unit tests mirroring the tree, interop tests, fuzz targets.
TEST_LIBS = $(RINGMQ_LIBS) $(CMOCKA_LIBS)
include tests/core/local.mk
include tests/net/local.mk
