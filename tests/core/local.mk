# tests/core/: unit tests for core/.
check_PROGRAMS += tests/core/test_config
tests_core_test_config_SOURCES = tests/core/test_config.c
tests_core_test_config_LDADD = $(TEST_LIBS)
tests_core_test_config_CPPFLAGS = $(AM_CPPFLAGS) -DTOP_SRCDIR='"$(abs_top_srcdir)"'
TESTS += tests/core/test_config

check_PROGRAMS += tests/core/test_timer
tests_core_test_timer_SOURCES = tests/core/test_timer.c
tests_core_test_timer_LDADD = $(TEST_LIBS)
TESTS += tests/core/test_timer
