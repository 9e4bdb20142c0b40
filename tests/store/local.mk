# tests/store/: unit tests for store/ (the queue structure and messages).
EXTRA_DIST += tests/store/store_util.h

check_PROGRAMS += tests/store/test_msg
tests_store_test_msg_SOURCES = tests/store/test_msg.c tests/store/store_util.h
tests_store_test_msg_LDADD = $(TEST_LIBS)
TESTS += tests/store/test_msg

check_PROGRAMS += tests/store/test_queue
tests_store_test_queue_SOURCES = tests/store/test_queue.c tests/store/store_util.h
tests_store_test_queue_LDADD = $(TEST_LIBS)
TESTS += tests/store/test_queue

check_PROGRAMS += tests/store/test_queue_model
tests_store_test_queue_model_SOURCES = tests/store/test_queue_model.c tests/store/store_util.h
tests_store_test_queue_model_LDADD = $(TEST_LIBS)
TESTS += tests/store/test_queue_model

check_PROGRAMS += tests/store/test_record
tests_store_test_record_SOURCES = tests/store/test_record.c
tests_store_test_record_LDADD = $(TEST_LIBS)
TESTS += tests/store/test_record

check_PROGRAMS += tests/store/test_log
tests_store_test_log_SOURCES = tests/store/test_log.c
tests_store_test_log_LDADD = $(TEST_LIBS)
TESTS += tests/store/test_log

check_PROGRAMS += tests/store/test_defs
tests_store_test_defs_SOURCES = tests/store/test_defs.c
tests_store_test_defs_LDADD = $(TEST_LIBS)
TESTS += tests/store/test_defs

check_PROGRAMS += tests/store/test_spill
tests_store_test_spill_SOURCES = tests/store/test_spill.c tests/store/store_util.h
tests_store_test_spill_LDADD = $(TEST_LIBS)
TESTS += tests/store/test_spill
