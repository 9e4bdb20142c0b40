/*
 * The unacked set: an open-addressing table keyed by the queue's delivery id, linear probing,
 * deletion by backward shift (no tombstones), load factor at most 1/2.
 *
 * Delivery ids are issued consecutively, and the unacked ones are mostly a window of recent ids.
 * Hashing them by id & mask (a ring indexed by delivery id) would put that window in one long
 * cluster, and a backward-shift deletion at its front scans the whole cluster: acking in order
 * would cost O(unacked) per ack. Fibonacci hashing scatters the window, so clusters stay short
 * (load <= 1/2) and an ack is a probe or two; unlike a ring, an old message that stays unacked
 * does not pin a window that grows with every later delivery. Entries are 64 bytes, one cache
 * line.
 *
 * Ownership: each entry owns one message reference, passed in by insert and out by take.
 */
#include "store/unacked.h"

#include <string.h>

#include "core/limits.h"
#include "store/mem.h"

void store_unacked_init(store_unacked *unacked, mi_heap_t *heap)
{
    ASSERT(unacked != NULL);
    *unacked = (store_unacked){.heap = heap};
    ASSERT(unacked->count == 0);
}

void store_unacked_fini(store_unacked *unacked)
{
    ASSERT(unacked != NULL);
    uint64_t dropped = 0;
    for (uint64_t i = 0; i < unacked->capacity; i++) {
        if (unacked->slots[i].delivery_id == 0) continue;
        store_msg_unref(unacked->slots[i].msg);
        dropped++;
    }
    ASSERT(dropped == unacked->count);
    store_mem_free(unacked->slots);
    *unacked = (store_unacked){0};
}

/* The home slot of a delivery id: the top bits of a Fibonacci product (capacity = 2^bits). */
static inline uint64_t unacked_home(const store_unacked *unacked, uint64_t delivery_id)
{
    return (delivery_id * 0x9e3779b97f4a7c15ull) >> (64u - unacked->capacity_bits);
}

/* Places an entry whose id is known absent; the table has room. */
static void unacked_place(store_unacked *unacked, const store_unacked_entry *entry)
{
    uint64_t mask = unacked->capacity - 1;
    uint64_t i = unacked_home(unacked, entry->delivery_id);
    while (unacked->slots[i].delivery_id != 0) {
        ASSERT(unacked->slots[i].delivery_id != entry->delivery_id);
        i = (i + 1) & mask;
    }
    unacked->slots[i] = *entry;
}

static void unacked_grow(store_unacked *unacked)
{
    uint64_t capacity_old = unacked->capacity;
    store_unacked_entry *slots_old = unacked->slots;
    uint64_t capacity = capacity_old == 0 ? LIMIT_QUEUE_UNACKED_SLOTS_MIN : 2 * capacity_old;
    ASSERT(capacity > capacity_old);
    unacked->slots = store_mem_zalloc(unacked->heap, capacity * sizeof(*unacked->slots));
    unacked->capacity = capacity;
    unacked->capacity_bits = (uint32_t)__builtin_ctzll(capacity);
    for (uint64_t i = 0; i < capacity_old; i++) {
        if (slots_old[i].delivery_id != 0) unacked_place(unacked, &slots_old[i]);
    }
    store_mem_free(slots_old);
    ASSERT(2 * unacked->count <= unacked->capacity);
}

void store_unacked_insert(store_unacked *unacked, const store_unacked_entry *entry)
{
    ASSERT(entry->delivery_id != 0);
    ASSERT(entry->msg != NULL && entry->msg->refs >= 1);
    if (2 * (unacked->count + 1) > unacked->capacity) unacked_grow(unacked);
    unacked_place(unacked, entry);
    unacked->count++;
}

/* Empties slot i and shifts the rest of its cluster back so that every entry stays reachable
 * from its home slot without tombstones. */
static void unacked_remove_at(store_unacked *unacked, uint64_t i)
{
    uint64_t mask = unacked->capacity - 1;
    ASSERT(unacked->slots[i].delivery_id != 0);
    uint64_t hole = i;
    uint64_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        uint64_t id = unacked->slots[j].delivery_id;
        if (id == 0) break;
        uint64_t home = unacked_home(unacked, id);
        /* The entry at j may move to hole unless its home lies cyclically in (hole, j]. */
        bool home_between = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (home_between) continue;
        unacked->slots[hole] = unacked->slots[j];
        hole = j;
    }
    unacked->slots[hole].delivery_id = 0;
    unacked->slots[hole].msg = NULL;
    ASSERT(unacked->count > 0);
    unacked->count--;
}

bool store_unacked_take(store_unacked *unacked, uint64_t delivery_id, store_unacked_entry *out)
{
    ASSERT(out != NULL);
    if (delivery_id == 0 || unacked->count == 0) return false;
    uint64_t mask = unacked->capacity - 1;
    for (uint64_t i = unacked_home(unacked, delivery_id);; i = (i + 1) & mask) {
        uint64_t id = unacked->slots[i].delivery_id;
        if (id == 0) return false;
        if (id != delivery_id) continue;
        *out = unacked->slots[i];
        unacked_remove_at(unacked, i);
        ASSERT(out->msg != NULL && out->msg->refs >= 1);
        return true;
    }
}

uint64_t store_unacked_take_matching(store_unacked *unacked, store_unacked_match_fn *match,
                                     const void *arg, store_unacked_sink_fn *sink, void *ctx)
{
    ASSERT(match != NULL && sink != NULL);
    uint64_t count_before = unacked->count;
    uint64_t taken = 0;
    /* Removal shifts a later entry into slot i, so slot i is examined again before moving on;
     * an entry shifted back over the end of the table to a visited slot was visited and kept. */
    for (uint64_t i = 0; i < unacked->capacity;) {
        store_unacked_entry *slot = &unacked->slots[i];
        if (slot->delivery_id == 0 || !match(arg, slot)) {
            i++;
            continue;
        }
        store_unacked_entry entry = *slot;
        unacked_remove_at(unacked, i);
        sink(ctx, &entry);
        taken++;
    }
    ASSERT(unacked->count + taken == count_before);
    return taken;
}
