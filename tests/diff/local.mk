# tests/diff/: differential test of the AMQP codec against pamqp, an
# independent implementation (Debian's python3-pamqp). codec_oracle is the C
# side, driven over a pipe by test_codec_diff.py, which runs under Debian's
# /usr/bin/python3 (PY_LOG_COMPILER, tests/local.mk) and skips (77) without
# pamqp.
check_PROGRAMS += tests/diff/codec_oracle
tests_diff_codec_oracle_SOURCES = tests/diff/codec_oracle.c
tests_diff_codec_oracle_LDADD = $(RINGMQ_LIBS)

TESTS += tests/diff/test_codec_diff.py
EXTRA_DIST += tests/diff/test_codec_diff.py
AM_TESTS_ENVIRONMENT += RINGMQ_CODEC_ORACLE='$(abs_top_builddir)/tests/diff/codec_oracle'; \
	export RINGMQ_CODEC_ORACLE;
