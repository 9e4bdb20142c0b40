#!/bin/sh
# Runs each libFuzzer target of tests/fuzz/ for a few seconds against its
# seed corpus (make check). New inputs go to a scratch directory, never into
# the committed corpus. Exits 77 (skipped) when the targets were not built
# (no clang with libFuzzer at configure time). FUZZ_SECONDS overrides the
# time per target; long runs are described in docs/fuzzing.md.
set -u
srcdir=${srcdir:-.}
seconds=${FUZZ_SECONDS:-5}
targets="fuzz_frame fuzz_method fuzz_table fuzz_props"

for t in $targets; do
    if [ ! -x "tests/fuzz/$t" ]; then
        echo "run_fuzz: tests/fuzz/$t not built (needs clang with libFuzzer): skipped"
        exit 77
    fi
done

scratch=$(mktemp -d "${TMPDIR:-/tmp}/ringmq-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$scratch"' EXIT INT TERM
failed=0
for t in $targets; do
    mkdir -p "$scratch/$t"
    # -runs bounds the work on a fast machine, -max_total_time on a slow one.
    if ! "tests/fuzz/$t" -max_total_time="$seconds" -runs=2000000 -timeout=10 \
            -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="tests/fuzz/$t-" \
            "$scratch/$t" "$srcdir/tests/fuzz/corpus/$t" >"$scratch/$t.log" 2>&1; then
        echo "run_fuzz: $t FAILED; its output:"
        cat "$scratch/$t.log"
        ls tests/fuzz/$t-* 2>/dev/null
        failed=1
        continue
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/$t.log")
    cov=$(grep -o 'cov: [0-9]*' "$scratch/$t.log" | tail -1)
    echo "run_fuzz: $t ok: $execs runs, $cov"
done
exit $failed
