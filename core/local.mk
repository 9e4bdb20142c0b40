# core/: runtime, config, logging, assertions, main.
libringmq_a_SOURCES += \
	core/assert.c core/assert.h \
	core/limits.h \
	core/log.c core/log.h \
	core/config.c core/config.h \
	core/timer.c core/timer.h \
	core/shard.c core/shard.h \
	core/runtime.c core/runtime.h

bin_PROGRAMS += ringmq
ringmq_SOURCES = core/main.c
ringmq_LDADD = $(RINGMQ_LIBS)
include core/mbox.mk
include core/auth.mk
