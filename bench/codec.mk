# bench/codec.mk: micro-benchmarks of the AMQP codec (net/amqp_*.c); results in bench/RESULTS.md.

if HAVE_BENCHMARK
noinst_PROGRAMS += bench/bench_codec
bench_bench_codec_SOURCES = bench/bench_codec.cc
bench_bench_codec_LDADD = $(RINGMQ_LIBS) $(BENCHMARK_LIBS)
bench_bench_codec_CXXFLAGS = $(AM_CXXFLAGS) $(BENCHMARK_CFLAGS)
endif
