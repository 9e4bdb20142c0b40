libringmq_a_SOURCES += net/conn.c net/conn.h net/session.c net/session.h net/session_internal.h \
	net/channel.c net/channel.h net/publish.c net/declare.c net/consume.c net/consume.h net/declare.h net/tx.c net/tx.h net/reply_to.c net/reply_to.h
