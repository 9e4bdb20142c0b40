# core/mbox: the cross-core mailbox and its unit test (included from core/local.mk).
libringmq_a_SOURCES += core/mbox.c core/mbox.h

check_PROGRAMS += tests/core/test_mbox
tests_core_test_mbox_SOURCES = tests/core/test_mbox.c
tests_core_test_mbox_LDADD = $(TEST_LIBS)
TESTS += tests/core/test_mbox
