# tools/: amqp-perf (the load tool).
bin_PROGRAMS += amqp-perf
amqp_perf_SOURCES = tools/amqp-perf/main.c tools/amqp-perf/perf.h tools/amqp-perf/opts.c \
	tools/amqp-perf/client.c tools/amqp-perf/hist.c tools/amqp-perf/producer.c \
	tools/amqp-perf/consumer.c tools/amqp-perf/run.c tools/amqp-perf/report.c \
	tools/amqp-perf/churn.c tools/amqp-perf/sink.c
amqp_perf_LDADD = $(RINGMQ_LIBS)
