libringmq_a_SOURCES += store/queues.c store/queues.h
