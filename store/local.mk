# store/: the queue structure and messages (later: the segment log, recovery).
libringmq_a_SOURCES += \
	store/msg.c store/msg.h \
	store/mem.h \
	store/queue_types.h \
	store/ready.c store/ready.h \
	store/unacked.c store/unacked.h \
	store/consumers.c store/consumers.h \
	store/queue.c store/queue.h \
	store/record.c store/record.h \
	store/log.c store/log_open.c store/log.h store/log_int.h \
	store/persist.c store/persist.h \
	store/spill.c store/spill.h
libringmq_a_SOURCES += store/defs.c store/defs.h
