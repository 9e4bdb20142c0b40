libringmq_a_SOURCES += net/conn.c net/conn.h net/session.c net/session.h
