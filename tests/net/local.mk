# tests/net/: codec unit tests (see net/).
EXTRA_DIST += tests/net/codec_util.h

check_PROGRAMS += tests/net/test_method
tests_net_test_method_SOURCES = tests/net/test_method.c tests/net/codec_util.h
tests_net_test_method_LDADD = $(TEST_LIBS)
TESTS += tests/net/test_method

check_PROGRAMS += tests/net/test_table
tests_net_test_table_SOURCES = tests/net/test_table.c tests/net/codec_util.h
tests_net_test_table_LDADD = $(TEST_LIBS)
TESTS += tests/net/test_table

check_PROGRAMS += tests/net/test_props
tests_net_test_props_SOURCES = tests/net/test_props.c tests/net/codec_util.h
tests_net_test_props_LDADD = $(TEST_LIBS)
TESTS += tests/net/test_props

check_PROGRAMS += tests/net/test_frame
tests_net_test_frame_SOURCES = tests/net/test_frame.c tests/net/codec_util.h
tests_net_test_frame_LDADD = $(TEST_LIBS)
TESTS += tests/net/test_frame
