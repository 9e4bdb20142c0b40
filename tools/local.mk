# tools/: amqp-perf (the load tool).
bin_PROGRAMS += amqp-perf
amqp_perf_SOURCES = tools/amqp-perf/main.c
amqp_perf_LDADD = $(RINGMQ_LIBS)
