# bench/: Google Benchmark micro-benchmarks (the only C++ in the tree).
