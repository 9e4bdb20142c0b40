/*
 * Helpers shared by the libFuzzer targets in tests/fuzz/: a check that
 * aborts with the failed condition (libFuzzer then saves the input), exact
 * heap copies so AddressSanitizer sees any read past a span, and a
 * recursive walk over a validated field table that touches every value and
 * checks the iterator against the validator: a table that validated must
 * walk to its exact end, nested containers included.
 */
#ifndef RINGMQ_TESTS_FUZZ_FUZZ_COMMON_H
#define RINGMQ_TESTS_FUZZ_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "net/amqp_table.h"
#include "net/amqp_types.h"

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* malloc(0) may return NULL: keep one byte, never initialised past n. */
static inline uint8_t *fuzz_dup(const uint8_t *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    FUZZ_CHECK(q != NULL);
    if (n > 0) memcpy(q, p, n);
    return q;
}

/* Sink for every value read, so the walk cannot be optimised away. */
static volatile uint64_t fuzz_sink;

static inline void fuzz_touch(const uint8_t *p, size_t n)
{
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++) h = h * 31u + p[i];
    fuzz_sink += h;
}

static uint32_t fuzz_walk_array(amqp_array a, uint32_t depth);
static uint32_t fuzz_walk_table(amqp_table t, uint32_t depth);

/* Walks one value; containers recurse. Returns the values seen (>= 1). */
static uint32_t fuzz_walk_value(const amqp_field *f, uint32_t depth)
{
    FUZZ_CHECK(depth <= LIMIT_TABLE_DEPTH_MAX);
    switch (f->type) {
    case AMQP_FIELD_LONGSTR:
    case AMQP_FIELD_BYTES: fuzz_touch(f->v.bytes.data, f->v.bytes.len); return 1;
    case AMQP_FIELD_ARRAY: return 1 + fuzz_walk_array(f->v.array, depth + 1);
    case AMQP_FIELD_TABLE: return 1 + fuzz_walk_table(f->v.table, depth + 1);
    default: fuzz_sink += f->v.timestamp_s; return 1;
    }
}

/* Walks a validated table at depth (top level 1); checks the iterator ends
 * exactly at the span's end. */
static uint32_t fuzz_walk_table(amqp_table t, uint32_t depth)
{
    amqp_table_iter it;
    amqp_bytes key;
    amqp_field value;
    uint32_t seen = 0, entries = 0;
    amqp_table_iter_init(&it, t);
    while (amqp_table_iter_next(&it, &key, &value)) {
        FUZZ_CHECK(key.len <= LIMIT_SHORTSTR_BYTES_MAX);
        FUZZ_CHECK(key.data >= t.data && key.data + key.len <= t.data + t.len);
        fuzz_touch(key.data, key.len);
        seen += fuzz_walk_value(&value, depth);
        entries++;
        /* The first entry of each name is the one amqp_table_get finds. */
        amqp_field first;
        FUZZ_CHECK(amqp_table_get(t, key, &first));
    }
    FUZZ_CHECK(it.pos == t.data + t.len);
    FUZZ_CHECK(amqp_table_count(t) == entries);
    return seen;
}

static uint32_t fuzz_walk_array(amqp_array a, uint32_t depth)
{
    amqp_table_iter it;
    amqp_field value;
    uint32_t seen = 0;
    amqp_array_iter_init(&it, a);
    while (amqp_array_iter_next(&it, &value)) seen += fuzz_walk_value(&value, depth);
    FUZZ_CHECK(it.pos == a.data + a.len);
    return seen;
}

#endif
