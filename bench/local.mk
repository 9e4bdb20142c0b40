# bench/: Google Benchmark micro-benchmarks (the only C++ in the tree).

if HAVE_BENCHMARK
noinst_PROGRAMS += bench/bench_mbox
bench_bench_mbox_SOURCES = bench/bench_mbox.cc
bench_bench_mbox_LDADD = $(RINGMQ_LIBS) $(BENCHMARK_LIBS)
bench_bench_mbox_CXXFLAGS = $(AM_CXXFLAGS) $(BENCHMARK_CFLAGS)
endif
include bench/codec.mk
include bench/route.mk
include bench/queue.mk
include bench/log.mk

# bench/compare: ringmq against a private RabbitMQ node with amqp-perf (run
# by hand, see bench/RESULTS.md); shipped, not part of `make check`.
EXTRA_DIST += bench/compare
# bench/backlog.sh: publish and drain a backlog of N messages, peak RSS (run by hand, see
# bench/RESULTS.md "Backlog in bounded memory").
EXTRA_DIST += bench/backlog.sh
