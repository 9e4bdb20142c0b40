# bench/log: benchmarks of the segment log (store/log), included from bench/local.mk.
if HAVE_BENCHMARK
noinst_PROGRAMS += bench/bench_log
bench_bench_log_SOURCES = bench/bench_log.cc
bench_bench_log_LDADD = $(RINGMQ_LIBS) $(BENCHMARK_LIBS)
bench_bench_log_CXXFLAGS = $(AM_CXXFLAGS) $(BENCHMARK_CFLAGS)
endif
if HAVE_BENCHMARK
noinst_PROGRAMS += bench/bench_recovery
bench_bench_recovery_SOURCES = bench/bench_recovery.cc
bench_bench_recovery_LDADD = $(RINGMQ_LIBS) $(BENCHMARK_LIBS)
bench_bench_recovery_CXXFLAGS = $(AM_CXXFLAGS) $(BENCHMARK_CFLAGS)
endif
