/*
 * The ready messages of one queue, in delivery order (internal to store/; see store/ready.c):
 * requeued ones, then a window in memory, then, when the queue pages out, a tail on disk
 * (store/spill.h). Embedded in the queue; the fields are private to store/ready.c.
 */
#ifndef RINGMQ_STORE_READY_H
#define RINGMQ_STORE_READY_H

#include <mimalloc.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/msg.h"
#include "store/queue_types.h"
#include "store/spill.h"

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
    uint64_t ring_bytes;    /* memory of the ring's messages, headers included */
    store_ready_requeued *requeued; /* min-heap by seq */
    uint64_t requeued_count;
    uint64_t requeued_capacity;
    store_spill *spill; /* the paged-out tail after the ring; NULL: never pages out */
    uint64_t spilled;   /* messages in it */
    uint64_t memory_messages_max;
    uint64_t memory_bytes_max;
} store_ready;

typedef struct store_ready_entry {
    store_msg *msg;
    uint64_t seq;
    bool redelivered;
} store_ready_entry;

/* paging NULL: everything stays in memory. */
void store_ready_init(store_ready *ready, mi_heap_t *heap, const store_queue_paging *paging);
/* Drops every message (one unref each, paged-out ones as store_ready_purge does) and frees the
 * arrays and the spill. */
void store_ready_fini(store_ready *ready);
/* Whether a push of msg now goes to the spill: it holds messages already (order), or the ring
 * is at its window. Never for an empty ring. */
bool store_ready_would_spill(const store_ready *ready, const store_msg *msg);
/* Takes over the caller's reference to msg, kept in memory (!store_ready_would_spill); returns
 * the sequence it was given. */
uint64_t store_ready_push(store_ready *ready, store_msg *msg);
/* Pages a copy of msg out (store_ready_would_spill; the caller keeps its reference), owning
 * slot (may be NULL) of the segment log; returns the sequence it was given. */
uint64_t store_ready_push_spill(store_ready *ready, const store_msg *msg,
                                const store_msg_slot *slot);
/* The next message in order, with the reference passing to the caller; false when empty. */
bool store_ready_pop(store_ready *ready, store_ready_entry *out);
/* The next message in order without taking it, or NULL. */
store_msg *store_ready_peek(const store_ready *ready);
/* Puts a popped message back at its place by sequence (the reference passes to the queue). */
void store_ready_requeue(store_ready *ready, store_msg *msg, uint64_t seq);
/* Drops every ready message; returns how many. Paged-out copies release their log slots
 * (store_msg_release_slot) while a release hook is set, and go unread otherwise. */
uint64_t store_ready_purge(store_ready *ready);

static inline uint64_t store_ready_count(const store_ready *ready)
{
    return ready->ring_count + ready->requeued_count + ready->spilled;
}

#endif
