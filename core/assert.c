/*
 * The failure path of ASSERT(): print what failed and where, then abort so
 * that a core dump or the sanitizer shows the stack. Never returns.
 */
#include "core/assert.h"

#include <stdio.h>
#include <stdlib.h>

void core_assert_fail(const char *expr, const char *file, int line, const char *func)
{
    fprintf(stderr, "ringmq: assertion failed: %s (%s:%d in %s)\n", expr, file, line, func);
    fflush(stderr);
    abort();
}
