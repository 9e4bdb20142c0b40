# tests/route/: unit tests for the routing replica (see route/).
EXTRA_DIST += tests/route/route_util.h

check_PROGRAMS += tests/route/test_route
tests_route_test_route_SOURCES = tests/route/test_route.c tests/route/route_util.h
tests_route_test_route_LDADD = $(TEST_LIBS)
TESTS += tests/route/test_route

check_PROGRAMS += tests/route/test_route_match
tests_route_test_route_match_SOURCES = tests/route/test_route_match.c tests/route/route_util.h
tests_route_test_route_match_LDADD = $(TEST_LIBS)
TESTS += tests/route/test_route_match
