/*
 * The consumers of one queue, grouped by priority, with the round-robin order of those that can
 * take a delivery now (internal to store/; see store/consumers.c). Embedded in the queue; the
 * fields are private to store/consumers.c.
 */
#ifndef RINGMQ_STORE_CONSUMERS_H
#define RINGMQ_STORE_CONSUMERS_H

#include <mimalloc.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/queue_types.h"

/* The consumers of one priority; ready_head is the next to serve. */
typedef struct store_consumer_level {
    int32_t priority;
    uint32_t consumer_count;
    store_consumer *ready_head;
    store_consumer *ready_tail;
} store_consumer_level;

typedef struct store_consumers {
    mi_heap_t *heap;
    store_consumer **slots; /* slot_capacity entries; NULL when free */
    uint32_t *slot_gens;    /* generation of each slot, bumped when it is freed */
    uint32_t *free_slots;   /* stack of free slot indices */
    uint32_t slot_capacity;
    uint32_t free_count;
    uint32_t slots_used;          /* slots ever handed out (high-water mark) */
    uint32_t count;               /* consumers */
    uint32_t exclusive_count;     /* 0 or 1, and 1 only when count == 1 */
    store_consumer_level *levels; /* level_count entries, by priority, highest first */
    uint32_t level_count;
    uint32_t level_capacity;
} store_consumers;

void store_consumers_init(store_consumers *cs, mi_heap_t *heap);
void store_consumers_fini(store_consumers *cs);
/* Adds a consumer (the caller checked exclusivity and LIMIT_QUEUE_CONSUMERS_MAX). */
store_consumer *store_consumers_add(store_consumers *cs, const store_consumer_params *params);
store_consumer *store_consumers_find(const store_consumers *cs, uint64_t consumer_id);
void store_consumers_remove(store_consumers *cs, store_consumer *consumer);
/* The consumer the next delivery goes to, or NULL when none is active with credit. */
store_consumer *store_consumers_next(const store_consumers *cs);
/* Records a delivery to consumer (the one store_consumers_next returned): takes one credit and
 * moves it behind its equals. */
void store_consumers_charge(store_consumers *cs, store_consumer *consumer);
void store_consumers_credit(store_consumers *cs, store_consumer *consumer, uint32_t credit);
void store_consumers_set_active(store_consumers *cs, store_consumer *consumer, bool active);
/* The i-th live consumer slot, for iteration: NULL for a free slot; i < slots_used. */
static inline store_consumer *store_consumers_slot(const store_consumers *cs, uint32_t i)
{
    return cs->slots[i];
}

#endif
