# core/auth: the user store and SASL parsing, its tests, and the ringmqctl admin tool.
libringmq_a_SOURCES += core/sha256.c core/sha256.h core/auth.c core/auth.h core/auth_sasl.c

check_PROGRAMS += tests/core/test_auth
tests_core_test_auth_SOURCES = tests/core/test_auth.c
tests_core_test_auth_LDADD = $(TEST_LIBS)
TESTS += tests/core/test_auth

bin_PROGRAMS += ringmqctl
ringmqctl_SOURCES = tools/ringmqctl.c
ringmqctl_LDADD = $(RINGMQ_LIBS)
