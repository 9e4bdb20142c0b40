#!/usr/bin/env bash
# Adds up the test cases run by every test program of the given build
# directories (cmocka's and the interop harnesses' own closing lines in the
# automake .log files) and prints one closing line: "N passed, M failed".
set -uo pipefail
passed=0
failed=0
programs_failed=0
for dir in "$@"; do
    while IFS= read -r -d '' trs; do
        log=${trs%.trs}.log
        res=$(sed -n 's/^:test-result: //p' "$trs" | head -n1)
        p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test(s)\./\1/p; s/^[a-z_-]*: \([0-9][0-9]*\) passed, [0-9][0-9]* failed.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
        f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s), listed below:/\1/p; s/^[a-z_-]*: [0-9][0-9]* passed, \([0-9][0-9]*\) failed.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
        case "$res" in
        PASS) ;;
        SKIP) ;;
        *) programs_failed=$((programs_failed + 1)); [ "$f" -eq 0 ] && f=1 ;;
        esac
        passed=$((passed + p))
        failed=$((failed + f))
    done < <(find "$dir" -name '*.trs' -print0 2>/dev/null)
done
echo "test programs failed: $programs_failed"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$programs_failed" -eq 0 ]
