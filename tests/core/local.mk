# tests/core/: unit tests for core/.
check_PROGRAMS += tests/core/test_config
tests_core_test_config_SOURCES = tests/core/test_config.c
tests_core_test_config_LDADD = $(TEST_LIBS)
TESTS += tests/core/test_config
