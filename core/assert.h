/*
 * Assertions. ASSERT() is always on, also in release builds: it guards cheap
 * invariants whose violation means a programmer error, and it crashes loudly
 * with the expression and the place. DEBUG_ASSERT() is for expensive checks
 * and compiles away unless RINGMQ_DEBUG is defined. ALWAYS()/NEVER() mark
 * defensive conditions that tests should never see true/false (they assert
 * in debug builds and return the condition in release builds).
 */
#ifndef RINGMQ_CORE_ASSERT_H
#define RINGMQ_CORE_ASSERT_H

#include <assert.h>

#ifdef __cplusplus
extern "C" {
#endif
__attribute__((noreturn, cold)) void core_assert_fail(const char *expr, const char *file, int line,
                                                      const char *func);
#ifdef __cplusplus
}
#endif

#define ASSERT(expr)                                                                               \
    do {                                                                                           \
        if (__builtin_expect(!(expr), 0)) core_assert_fail(#expr, __FILE__, __LINE__, __func__);   \
    } while (0)

#ifdef RINGMQ_DEBUG
#define DEBUG_ASSERT(expr) ASSERT(expr)
#define ALWAYS(x) (ASSERT(x), 1)
#define NEVER(x) (ASSERT(!(x)), 0)
#else
#define DEBUG_ASSERT(expr) ((void)sizeof(!(expr)))
#define ALWAYS(x) (x)
#define NEVER(x) (x)
#endif

/* Compile-time relations between sizes and limits (C, and C++ for bench/). */
#ifdef __cplusplus
#define STATIC_ASSERT(expr, msg) static_assert(expr, msg)
#else
#define STATIC_ASSERT(expr, msg) _Static_assert(expr, msg)
#endif
#define STATIC_ASSERT_SIZE(type, bytes) STATIC_ASSERT(sizeof(type) == (bytes), #type " size")

#define UNREACHABLE() core_assert_fail("unreachable", __FILE__, __LINE__, __func__)

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
