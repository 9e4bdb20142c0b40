# bench/queue: benchmarks of the in-memory queue structure (store/queue), included from
# bench/local.mk.
if HAVE_BENCHMARK
noinst_PROGRAMS += bench/bench_queue
bench_bench_queue_SOURCES = bench/bench_queue.cc
bench_bench_queue_LDADD = $(RINGMQ_LIBS) $(BENCHMARK_LIBS)
bench_bench_queue_CXXFLAGS = $(AM_CXXFLAGS) $(BENCHMARK_CFLAGS)
endif
