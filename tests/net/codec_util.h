/* Helpers shared by the net/ codec tests: exact-size heap copies so that
 * ASan catches any read past the end of a span. */
#ifndef RINGMQ_TESTS_NET_CODEC_UTIL_H
#define RINGMQ_TESTS_NET_CODEC_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* malloc(0) may return NULL; keep one byte so the pointer is valid, but the
 * bytes past n are never initialised and ASan still sees reads past n. */
static inline uint8_t *test_dup(const uint8_t *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    if (q != NULL && n > 0) memcpy(q, p, n);
    return q;
}

#endif
