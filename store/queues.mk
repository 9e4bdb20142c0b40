libringmq_a_SOURCES += store/queues.c store/queues.h store/queues_int.h store/queues_publish.c
libringmq_a_SOURCES += store/dead_letter.c store/dead_letter.h
