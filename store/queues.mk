libringmq_a_SOURCES += store/queues.c store/queues.h
libringmq_a_SOURCES += store/dead_letter.c store/dead_letter.h
