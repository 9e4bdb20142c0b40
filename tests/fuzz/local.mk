# tests/fuzz/: libFuzzer targets for the AMQP codec (see docs/fuzzing.md).
# They need clang's -fsanitize=fuzzer, so they are built by explicit rules
# with $(FUZZ_CC) straight from the codec sources, not through automake's
# per-program machinery (which has one compiler for all C). run_fuzz.sh runs
# each target briefly against its seed corpus in `make check`; it skips (77)
# when the targets were not built. `make fuzz` builds them alone.
EXTRA_DIST += tests/fuzz/fuzz_common.h tests/fuzz/fuzz_frame.c tests/fuzz/fuzz_method.c \
	tests/fuzz/fuzz_table.c tests/fuzz/fuzz_props.c tests/fuzz/make_corpus.py \
	tests/fuzz/run_fuzz.sh tests/fuzz/corpus
TESTS += tests/fuzz/run_fuzz.sh

FUZZ_TARGETS = tests/fuzz/fuzz_frame tests/fuzz/fuzz_method tests/fuzz/fuzz_table \
	tests/fuzz/fuzz_props
FUZZ_CODEC_SRC = $(top_srcdir)/net/amqp_error.c $(top_srcdir)/net/amqp_frame.c \
	$(top_srcdir)/net/amqp_method.c $(top_srcdir)/net/amqp_table.c \
	$(top_srcdir)/net/amqp_props.c $(top_srcdir)/core/assert.c
FUZZ_CODEC_HDR = $(top_srcdir)/tests/fuzz/fuzz_common.h $(top_srcdir)/net/amqp_types.h \
	$(top_srcdir)/net/amqp_wire.h $(top_srcdir)/net/amqp_cursor.h \
	$(top_srcdir)/net/amqp_frame.h $(top_srcdir)/net/amqp_method.h \
	$(top_srcdir)/net/amqp_method_table.h $(top_srcdir)/net/amqp_table.h \
	$(top_srcdir)/net/amqp_props.h $(top_srcdir)/core/assert.h $(top_srcdir)/core/limits.h
FUZZ_COMPILE_FLAGS = -std=gnu11 -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	$(WARN_CFLAGS) -I$(top_srcdir) -I$(top_builddir) -D_GNU_SOURCE
FUZZ_BUILD = $(AM_V_CC)$(MKDIR_P) tests/fuzz && \
	$(FUZZ_CC) $(FUZZ_COMPILE_FLAGS) -o $@ $(top_srcdir)/$@.c $(FUZZ_CODEC_SRC)
CLEANFILES += $(FUZZ_TARGETS)

if HAVE_FUZZ
fuzz: $(FUZZ_TARGETS)
.PHONY: fuzz
# Built before the tests run (check-am depends on check_SCRIPTS).
check_SCRIPTS = $(FUZZ_TARGETS)

tests/fuzz/fuzz_frame: $(top_srcdir)/tests/fuzz/fuzz_frame.c $(FUZZ_CODEC_SRC) $(FUZZ_CODEC_HDR)
	$(FUZZ_BUILD)
tests/fuzz/fuzz_method: $(top_srcdir)/tests/fuzz/fuzz_method.c $(FUZZ_CODEC_SRC) $(FUZZ_CODEC_HDR)
	$(FUZZ_BUILD)
tests/fuzz/fuzz_table: $(top_srcdir)/tests/fuzz/fuzz_table.c $(FUZZ_CODEC_SRC) $(FUZZ_CODEC_HDR)
	$(FUZZ_BUILD)
tests/fuzz/fuzz_props: $(top_srcdir)/tests/fuzz/fuzz_props.c $(FUZZ_CODEC_SRC) $(FUZZ_CODEC_HDR)
	$(FUZZ_BUILD)
endif
