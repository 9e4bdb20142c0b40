/*
 * The ready structure of a queue: a ring of message pointers in arrival order plus a min-heap
 * (by queue sequence) of messages that were delivered and came back (reject/nack with requeue,
 * a channel closing). RabbitMQ puts a requeued message back at its original place, so the next
 * message is the one with the smallest sequence among both.
 *
 * Paging: when the queue has a spill (store/spill.h), the ring is a window of at most
 * memory_messages_max messages and memory_bytes_max bytes (headers included; a single message
 * may pass the bytes bound). A push that finds the window full, or the spill not empty, pages
 * the message out to the spill's tail instead; a pop that leaves the ring at half the window
 * reads a batch from the spill's head back into the ring. So while the spill holds messages
 * every new one goes behind them, and the order is kept: requeued, ring, spill.
 *
 * Invariants. Sequences are given by push, consecutively, so the ring and the spill need no
 * per-message sequence: ring slot ring_head + i holds sequence ring_head_seq + i, and the j-th
 * paged-out message has ring_head_seq + ring_count + j (8 bytes per ready message in memory,
 * at most twice that with the ring's slack, nothing for a paged-out one). Everything in the heap
 * was popped earlier and the ring is FIFO, so every heap sequence is below ring_head_seq: the
 * heap, when not empty, always goes first (asserted, not assumed). A heap entry is 16 bytes and
 * is always a redelivery. The spill holds messages only while the ring does (spilled > 0 implies
 * ring_count > 0), so the head is always in memory: peek, TTLs and length limits look at it
 * without I/O.
 *
 * Ownership: each message held here owns one reference, passed in by push/requeue and passed
 * out by pop; purge and fini drop them. A paged-out message is a copy: its record owns its own
 * log slot, if any, and releases it when read back and freed, or when purged.
 */
#include "store/ready.h"

#include <string.h>

#include "core/limits.h"
#include "store/mem.h"

/* What a message costs in memory, headers included. */
static uint64_t ready_msg_bytes(const store_msg *msg)
{
    return sizeof(store_msg) + msg->exchange_bytes + msg->routing_key_bytes + msg->props_bytes +
           msg->body_bytes;
}

void store_ready_init(store_ready *ready, mi_heap_t *heap, const store_queue_paging *paging)
{
    ASSERT(ready != NULL);
    *ready = (store_ready){.heap = heap,
                           .ring_capacity = LIMIT_QUEUE_RING_SLOTS_MIN,
                           .memory_messages_max = UINT64_MAX,
                           .memory_bytes_max = UINT64_MAX};
    ready->ring = store_mem_alloc(heap, ready->ring_capacity * sizeof(*ready->ring));
    if (paging != NULL) {
        ASSERT(paging->memory_messages_max >= 2 && paging->memory_bytes_max > 0);
        store_spill_config config = {.dir_fd = paging->dir_fd,
                                     .queue_id = paging->queue_id,
                                     .chunk_bytes = paging->chunk_bytes};
        ready->spill = store_spill_new(heap, &config);
        ready->memory_messages_max = paging->memory_messages_max;
        ready->memory_bytes_max = paging->memory_bytes_max;
    }
    ASSERT(store_ready_count(ready) == 0);
}

void store_ready_fini(store_ready *ready)
{
    ASSERT(ready != NULL);
    ASSERT(ready->ring != NULL);
    store_ready_purge(ready);
    store_mem_free(ready->ring);
    store_mem_free(ready->requeued);
    if (ready->spill != NULL) store_spill_free(ready->spill);
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

bool store_ready_would_spill(const store_ready *ready, const store_msg *msg)
{
    ASSERT(msg != NULL);
    if (ready->spill == NULL) return false;
    if (ready->spilled > 0) return true;
    if (ready->ring_count == 0) return false;
    return ready->ring_count >= ready->memory_messages_max ||
           ready->ring_bytes + ready_msg_bytes(msg) > ready->memory_bytes_max;
}

static void ready_ring_append(store_ready *ready, store_msg *msg)
{
    ASSERT(msg != NULL && msg->refs >= 1);
    ASSERT(ready->ring_count <= ready->ring_capacity);
    if (ready->ring_count == ready->ring_capacity)
        ready_ring_resize(ready, 2 * ready->ring_capacity);
    uint64_t slot = (ready->ring_head + ready->ring_count) & (ready->ring_capacity - 1);
    ready->ring[slot] = msg;
    ready->ring_count++;
    ready->ring_bytes += ready_msg_bytes(msg);
}

uint64_t store_ready_push(store_ready *ready, store_msg *msg)
{
    ASSERT(msg != NULL && msg->refs >= 1);
    ASSERT(ready->spilled == 0); /* behind paged-out messages it would jump the queue */
    ready_ring_append(ready, msg);
    return ready->ring_head_seq + ready->ring_count - 1;
}

uint64_t store_ready_push_spill(store_ready *ready, const store_msg *msg,
                                const store_msg_slot *slot)
{
    ASSERT(msg != NULL && msg->refs >= 1);
    ASSERT(ready->spill != NULL && ready->ring_count > 0);
    store_spill_push(ready->spill, msg, slot);
    ready->spilled++;
    ASSERT(ready->spilled == store_spill_count(ready->spill));
    return ready->ring_head_seq + ready->ring_count + ready->spilled - 1;
}

static void ready_refill_sink(void *ctx, store_msg *msg)
{
    ready_ring_append(ctx, msg);
}

/* Reads paged-out messages back into the ring, up to the window (at least one). */
static void ready_refill(store_ready *ready)
{
    ASSERT(ready->spill != NULL && ready->spilled > 0);
    uint64_t count_room = ready->memory_messages_max > ready->ring_count
                              ? ready->memory_messages_max - ready->ring_count
                              : 1;
    uint64_t bytes_room = ready->memory_bytes_max > ready->ring_bytes
                              ? ready->memory_bytes_max - ready->ring_bytes
                              : 1;
    uint32_t count_max = count_room < UINT32_MAX ? (uint32_t)count_room : UINT32_MAX;
    uint64_t ring_before = ready->ring_count;
    uint32_t n =
        store_spill_pop_batch(ready->spill, count_max, bytes_room, ready_refill_sink, ready);
    ASSERT(n >= 1 && n <= ready->spilled);
    ready->spilled -= n;
    ASSERT(ready->ring_count == ring_before + n);
    ASSERT(ready->spilled == store_spill_count(ready->spill));
}

/* The ring has drained to half its window (or out): time to read the next batch back. */
static bool ready_ring_low(const store_ready *ready)
{
    return ready->ring_count == 0 || (ready->ring_count <= ready->memory_messages_max / 2 &&
                                      ready->ring_bytes <= ready->memory_bytes_max / 2);
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
    if (ready->ring_count == 0) {
        ASSERT(ready->spilled == 0);
        return NULL;
    }
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
    if (ready->ring_count == 0) {
        ASSERT(ready->spilled == 0);
        return false;
    }
    store_msg *msg = ready->ring[ready->ring_head];
    /* A message read back from the log at start may have been delivered before: say so. */
    *out = (store_ready_entry){.msg = msg,
                               .seq = ready->ring_head_seq,
                               .redelivered = (msg->flags & STORE_MSG_RECOVERED) != 0};
    ready->ring_head = (ready->ring_head + 1) & (ready->ring_capacity - 1);
    ready->ring_head_seq++;
    ready->ring_count--;
    ASSERT(ready->ring_bytes >= ready_msg_bytes(msg));
    ready->ring_bytes -= ready_msg_bytes(msg);
    if (ready->spilled > 0 && ready_ring_low(ready)) ready_refill(ready);
    /* Give back a drained backlog's memory, with hysteresis so a queue hovering at a power of
     * two does not copy on every push and pop. */
    if (ready->ring_capacity > LIMIT_QUEUE_RING_SLOTS_MIN &&
        ready->ring_count < ready->ring_capacity / 8) {
        ready_ring_resize(ready, ready->ring_capacity / 2);
    }
    ASSERT(out->msg != NULL && out->msg->refs >= 1);
    return true;
}

static void ready_release_slot(void *ctx, const store_msg_slot *slot)
{
    (void)ctx;
    store_msg_release_slot(slot);
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
    if (ready->spill != NULL) {
        /* Without a hook (tests, a shard stopping) the slots stay live: the files go unread. */
        store_spill_drop_fn *drop = store_msg_release_hooked() ? ready_release_slot : NULL;
        uint64_t n = store_spill_drop_all(ready->spill, drop, NULL);
        ASSERT(n == ready->spilled);
    }
    /* Sequences stay monotonic across a purge. */
    ready->ring_head_seq += ready->ring_count + ready->spilled;
    ready->spilled = 0;
    ready->ring_head = 0;
    ready->ring_count = 0;
    ready->ring_bytes = 0;
    if (ready->ring_capacity > LIMIT_QUEUE_RING_SLOTS_MIN) {
        store_mem_free(ready->ring);
        ready->ring_capacity = LIMIT_QUEUE_RING_SLOTS_MIN;
        ready->ring = store_mem_alloc(ready->heap, ready->ring_capacity * sizeof(*ready->ring));
    }
    ASSERT(store_ready_count(ready) == 0);
    return dropped;
}
