/*
 * The ready structure of a queue: a ring of message pointers in arrival order plus a min-heap
 * (by queue sequence) of messages that were delivered and came back (reject/nack with requeue,
 * a channel closing). RabbitMQ puts a requeued message back at its original place, so the next
 * message is the one with the smallest sequence among both.
 *
 * Invariants. Sequences are given by push, consecutively, so the ring needs no per-slot
 * sequence: slot ring_head + i holds sequence ring_head_seq + i (8 bytes per ready message, at
 * most twice that with the ring's slack). Everything in the heap was popped earlier and the ring
 * is FIFO, so every heap sequence is below ring_head_seq: the heap, when not empty, always goes
 * first (asserted, not assumed). A heap entry is 16 bytes and is always a redelivery.
 *
 * Ownership: each message held here owns one reference, passed in by push/requeue and passed
 * out by pop; purge and fini drop them.
 */
#include "store/ready.h"

#include <string.h>

#include "core/limits.h"
#include "store/mem.h"

void store_ready_init(store_ready *ready, mi_heap_t *heap)
{
    ASSERT(ready != NULL);
    *ready = (store_ready){.heap = heap, .ring_capacity = LIMIT_QUEUE_RING_SLOTS_MIN};
    ready->ring = store_mem_alloc(heap, ready->ring_capacity * sizeof(*ready->ring));
    ASSERT(store_ready_count(ready) == 0);
}

void store_ready_fini(store_ready *ready)
{
    ASSERT(ready != NULL);
    ASSERT(ready->ring != NULL);
    store_ready_purge(ready);
    store_mem_free(ready->ring);
    store_mem_free(ready->requeued);
    *ready = (store_ready){0};
}

/* Copies the ring in order into a new array of capacity slots (growing or shrinking). */
static void ready_ring_resize(store_ready *ready, uint64_t capacity)
{
    ASSERT(capacity >= ready->ring_count);
    ASSERT((capacity & (capacity - 1)) == 0 && capacity >= LIMIT_QUEUE_RING_SLOTS_MIN);
    store_msg **ring = store_mem_alloc(ready->heap, capacity * sizeof(*ring));
    uint64_t mask = ready->ring_capacity - 1;
    uint64_t first = ready->ring_capacity - ready->ring_head;
    if (first > ready->ring_count) first = ready->ring_count;
    memcpy(ring, ready->ring + ready->ring_head, first * sizeof(*ring));
    memcpy(ring + first, ready->ring, (ready->ring_count - first) * sizeof(*ring));
    DEBUG_ASSERT(ready->ring_count == 0 ||
                 ring[ready->ring_count - 1] ==
                     ready->ring[(ready->ring_head + ready->ring_count - 1) & mask]);
    (void)mask;
    store_mem_free(ready->ring);
    ready->ring = ring;
    ready->ring_capacity = capacity;
    ready->ring_head = 0;
}

uint64_t store_ready_push(store_ready *ready, store_msg *msg)
{
    ASSERT(msg != NULL && msg->refs >= 1);
    ASSERT(ready->ring_count <= ready->ring_capacity);
    if (ready->ring_count == ready->ring_capacity)
        ready_ring_resize(ready, 2 * ready->ring_capacity);
    uint64_t slot = (ready->ring_head + ready->ring_count) & (ready->ring_capacity - 1);
    ready->ring[slot] = msg;
    ready->ring_count++;
    return ready->ring_head_seq + ready->ring_count - 1;
}

static void ready_heap_swap(store_ready_requeued *a, store_ready_requeued *b)
{
    store_ready_requeued t = *a;
    *a = *b;
    *b = t;
}

void store_ready_requeue(store_ready *ready, store_msg *msg, uint64_t seq)
{
    ASSERT(msg != NULL && msg->refs >= 1);
    ASSERT(seq < ready->ring_head_seq); /* only a popped message comes back */
    if (ready->requeued_count == ready->requeued_capacity) {
        uint64_t capacity = ready->requeued_capacity == 0 ? LIMIT_QUEUE_REQUEUED_SLOTS_MIN
                                                          : 2 * ready->requeued_capacity;
        store_ready_requeued *heap = store_mem_alloc(ready->heap, capacity * sizeof(*heap));
        if (ready->requeued_count > 0) {
            memcpy(heap, ready->requeued, ready->requeued_count * sizeof(*heap));
        }
        store_mem_free(ready->requeued);
        ready->requeued = heap;
        ready->requeued_capacity = capacity;
    }
    store_ready_requeued *h = ready->requeued;
    uint64_t i = ready->requeued_count++;
    h[i] = (store_ready_requeued){.msg = msg, .seq = seq};
    while (i > 0) {
        uint64_t parent = (i - 1) / 2;
        ASSERT(h[parent].seq != h[i].seq); /* a message is requeued once per delivery */
        if (h[parent].seq < h[i].seq) break;
        ready_heap_swap(&h[parent], &h[i]);
        i = parent;
    }
}

static store_ready_requeued ready_heap_pop(store_ready *ready)
{
    ASSERT(ready->requeued_count > 0);
    store_ready_requeued *h = ready->requeued;
    store_ready_requeued top = h[0];
    uint64_t n = --ready->requeued_count;
    h[0] = h[n];
    uint64_t i = 0;
    for (;;) {
        uint64_t least = i, l = 2 * i + 1, r = l + 1;
        if (l < n && h[l].seq < h[least].seq) least = l;
        if (r < n && h[r].seq < h[least].seq) least = r;
        if (least == i) break;
        ready_heap_swap(&h[i], &h[least]);
        i = least;
    }
    ASSERT(n == 0 || h[0].seq > top.seq);
    return top;
}

store_msg *store_ready_peek(const store_ready *ready)
{
    if (ready->requeued_count > 0) return ready->requeued[0].msg;
    if (ready->ring_count == 0) return NULL;
    return ready->ring[ready->ring_head];
}

bool store_ready_pop(store_ready *ready, store_ready_entry *out)
{
    ASSERT(out != NULL);
    if (ready->requeued_count > 0) {
        ASSERT(ready->requeued[0].seq < ready->ring_head_seq);
        store_ready_requeued top = ready_heap_pop(ready);
        *out = (store_ready_entry){.msg = top.msg, .seq = top.seq, .redelivered = true};
        return true;
    }
    if (ready->ring_count == 0) return false;
    store_msg *msg = ready->ring[ready->ring_head];
    /* A message read back from the log at start may have been delivered before: say so. */
    *out = (store_ready_entry){.msg = msg,
                               .seq = ready->ring_head_seq,
                               .redelivered = (msg->flags & STORE_MSG_RECOVERED) != 0};
    ready->ring_head = (ready->ring_head + 1) & (ready->ring_capacity - 1);
    ready->ring_head_seq++;
    ready->ring_count--;
    /* Give back a drained backlog's memory, with hysteresis so a queue hovering at a power of
     * two does not copy on every push and pop. */
    if (ready->ring_capacity > LIMIT_QUEUE_RING_SLOTS_MIN &&
        ready->ring_count < ready->ring_capacity / 8) {
        ready_ring_resize(ready, ready->ring_capacity / 2);
    }
    ASSERT(out->msg != NULL && out->msg->refs >= 1);
    return true;
}

uint64_t store_ready_purge(store_ready *ready)
{
    ASSERT(ready != NULL);
    uint64_t dropped = store_ready_count(ready);
    for (uint64_t i = 0; i < ready->requeued_count; i++) store_msg_unref(ready->requeued[i].msg);
    ready->requeued_count = 0;
    uint64_t mask = ready->ring_capacity - 1;
    for (uint64_t i = 0; i < ready->ring_count; i++) {
        store_msg_unref(ready->ring[(ready->ring_head + i) & mask]);
    }
    ready->ring_head_seq += ready->ring_count; /* sequences stay monotonic across a purge */
    ready->ring_head = 0;
    ready->ring_count = 0;
    if (ready->ring_capacity > LIMIT_QUEUE_RING_SLOTS_MIN) {
        store_mem_free(ready->ring);
        ready->ring_capacity = LIMIT_QUEUE_RING_SLOTS_MIN;
        ready->ring = store_mem_alloc(ready->heap, ready->ring_capacity * sizeof(*ready->ring));
    }
    ASSERT(store_ready_count(ready) == 0);
    return dropped;
}
