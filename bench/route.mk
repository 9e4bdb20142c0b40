# bench/route.mk: micro-benchmarks of the routing replica (route/); results in bench/RESULTS.md.

if HAVE_BENCHMARK
noinst_PROGRAMS += bench/bench_route
bench_bench_route_SOURCES = bench/bench_route.cc
bench_bench_route_LDADD = $(RINGMQ_LIBS) $(BENCHMARK_LIBS)
bench_bench_route_CXXFLAGS = $(AM_CXXFLAGS) $(BENCHMARK_CFLAGS)
endif
