/*
 * The unacked set of one queue: delivery id -> delivered message (internal to store/; see
 * store/unacked.c). Embedded in the queue; the fields are private to store/unacked.c.
 */
#ifndef RINGMQ_STORE_UNACKED_H
#define RINGMQ_STORE_UNACKED_H

#include <mimalloc.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/msg.h"
#include "store/queue_types.h"

typedef struct store_unacked_entry {
    uint64_t delivery_id; /* 0 marks an empty slot */
    store_msg *msg;       /* owns one reference */
    uint64_t seq;         /* queue sequence: where a requeue puts it back */
    uint64_t consumer_id; /* 0 for basic.get */
    store_owner owner;
    bool redelivered;
} store_unacked_entry;

STATIC_ASSERT_SIZE(store_unacked_entry, 64);

typedef struct store_unacked {
    mi_heap_t *heap;
    store_unacked_entry *slots; /* capacity slots, a power of two; NULL until the first insert */
    uint64_t capacity;
    uint32_t capacity_bits; /* log2(capacity) */
    uint64_t count;
} store_unacked;

/* Called with each entry that store_unacked_take_matching removes; the reference passes. */
typedef void store_unacked_sink_fn(void *ctx, const store_unacked_entry *entry);
typedef bool store_unacked_match_fn(const void *arg, const store_unacked_entry *entry);

void store_unacked_init(store_unacked *unacked, mi_heap_t *heap);
/* Drops every message (one unref each) and frees the table. */
void store_unacked_fini(store_unacked *unacked);
/* entry->delivery_id must be new (ids are never reused). The reference passes to the table. */
void store_unacked_insert(store_unacked *unacked, const store_unacked_entry *entry);
/* Removes delivery_id into *out (the reference passes); false when it is not unacked. */
bool store_unacked_take(store_unacked *unacked, uint64_t delivery_id, store_unacked_entry *out);
/* Removes every entry match() accepts, handing each to sink(); returns how many. */
uint64_t store_unacked_take_matching(store_unacked *unacked, store_unacked_match_fn *match,
                                     const void *arg, store_unacked_sink_fn *sink, void *ctx);

#endif
