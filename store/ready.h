/*
 * The ready messages of one queue, in delivery order (internal to store/; see store/ready.c).
 * Embedded in the queue; the fields are private to store/ready.c.
 */
#ifndef RINGMQ_STORE_READY_H
#define RINGMQ_STORE_READY_H

#include <mimalloc.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/msg.h"

typedef struct store_ready_requeued {
    store_msg *msg;
    uint64_t seq;
} store_ready_requeued;

typedef struct store_ready {
    mi_heap_t *heap;
    store_msg **ring; /* ring_capacity slots, a power of two */
    uint64_t ring_capacity;
    uint64_t ring_head; /* index of the oldest never-delivered message */
    uint64_t ring_count;
    uint64_t ring_head_seq; /* its sequence; the next push gets ring_head_seq + ring_count */
    store_ready_requeued *requeued; /* min-heap by seq */
    uint64_t requeued_count;
    uint64_t requeued_capacity;
} store_ready;

typedef struct store_ready_entry {
    store_msg *msg;
    uint64_t seq;
    bool redelivered;
} store_ready_entry;

void store_ready_init(store_ready *ready, mi_heap_t *heap);
/* Drops every message (one unref each) and frees the arrays. */
void store_ready_fini(store_ready *ready);
/* Takes over the caller's reference to msg; returns the sequence it was given. */
uint64_t store_ready_push(store_ready *ready, store_msg *msg);
/* The next message in order, with the reference passing to the caller; false when empty. */
bool store_ready_pop(store_ready *ready, store_ready_entry *out);
/* The next message in order without taking it, or NULL. */
store_msg *store_ready_peek(const store_ready *ready);
/* Puts a popped message back at its place by sequence (the reference passes to the queue). */
void store_ready_requeue(store_ready *ready, store_msg *msg, uint64_t seq);
/* Drops every ready message; returns how many. */
uint64_t store_ready_purge(store_ready *ready);

static inline uint64_t store_ready_count(const store_ready *ready)
{
    return ready->ring_count + ready->requeued_count;
}

#endif
