/*
 * The consumers of one queue. Each consumer is its own allocation (made at basic.consume, not
 * per message) reached through a slot table, so an id finds it in O(1): the id is the slot's
 * generation in the high 32 bits and the slot index in the low 32; a freed slot's generation is
 * bumped, so a stale id finds nothing rather than a later consumer.
 *
 * Dispatch order (RabbitMQ consumer priorities): consumers are grouped in levels by priority,
 * highest first. Each level keeps a ready list: its consumers that are active and have credit,
 * in round-robin order. The next delivery goes to the head of the first level whose ready list
 * is not empty; after a delivery the consumer moves to the tail of its list, or leaves it when
 * its credit is spent, and rejoins at the tail when credit comes back. Invariant: a consumer is
 * in its level's ready list iff active && credit > 0 (asserted at every transition).
 */
#include "store/consumers.h"

#include <string.h>

#include "core/limits.h"
#include "store/mem.h"

#define CONSUMER_SLOT_MASK 0xffffffffull

void store_consumers_init(store_consumers *cs, mi_heap_t *heap)
{
    ASSERT(cs != NULL);
    *cs = (store_consumers){.heap = heap};
    ASSERT(cs->count == 0 && cs->level_count == 0);
}

void store_consumers_fini(store_consumers *cs)
{
    ASSERT(cs != NULL);
    for (uint32_t i = 0; i < cs->slots_used; i++) {
        if (cs->slots[i] != NULL) store_consumers_remove(cs, cs->slots[i]);
    }
    ASSERT(cs->count == 0 && cs->level_count == 0);
    store_mem_free(cs->slots);
    store_mem_free(cs->slot_gens);
    store_mem_free(cs->free_slots);
    store_mem_free(cs->levels);
    *cs = (store_consumers){0};
}

static void *consumers_realloc(mi_heap_t *heap, void *old, size_t old_bytes, size_t bytes)
{
    ASSERT(bytes > old_bytes);
    void *p = store_mem_alloc(heap, bytes);
    if (old_bytes > 0) memcpy(p, old, old_bytes);
    store_mem_free(old);
    return p;
}

static uint32_t consumers_slot_take(store_consumers *cs)
{
    if (cs->free_count > 0) return cs->free_slots[--cs->free_count];
    if (cs->slots_used == cs->slot_capacity) {
        uint32_t old = cs->slot_capacity;
        uint32_t capacity = old == 0 ? LIMIT_QUEUE_CONSUMER_SLOTS_MIN : 2 * old;
        ASSERT(capacity > old);
        cs->slots = consumers_realloc(cs->heap, cs->slots, old * sizeof(*cs->slots),
                                      capacity * sizeof(*cs->slots));
        cs->slot_gens = consumers_realloc(cs->heap, cs->slot_gens, old * sizeof(*cs->slot_gens),
                                          capacity * sizeof(*cs->slot_gens));
        cs->free_slots = consumers_realloc(cs->heap, cs->free_slots, old * sizeof(*cs->free_slots),
                                           capacity * sizeof(*cs->free_slots));
        for (uint32_t i = old; i < capacity; i++) {
            cs->slots[i] = NULL;
            cs->slot_gens[i] = 1;
        }
        cs->slot_capacity = capacity;
    }
    ASSERT(cs->slots_used < cs->slot_capacity);
    return cs->slots_used++;
}

/* The level of priority, created in order when absent. */
static store_consumer_level *consumers_level(store_consumers *cs, int32_t priority, bool create)
{
    uint32_t i = 0;
    while (i < cs->level_count && cs->levels[i].priority > priority) i++;
    if (i < cs->level_count && cs->levels[i].priority == priority) return &cs->levels[i];
    ASSERT(create);
    if (cs->level_count == cs->level_capacity) {
        uint32_t old = cs->level_capacity;
        uint32_t capacity = old == 0 ? 2 : 2 * old;
        cs->levels = consumers_realloc(cs->heap, cs->levels, old * sizeof(*cs->levels),
                                       capacity * sizeof(*cs->levels));
        cs->level_capacity = capacity;
    }
    memmove(&cs->levels[i + 1], &cs->levels[i], (cs->level_count - i) * sizeof(*cs->levels));
    cs->levels[i] = (store_consumer_level){.priority = priority};
    cs->level_count++;
    return &cs->levels[i];
}

static void consumers_link_tail(store_consumer_level *level, store_consumer *c)
{
    ASSERT(!c->in_ready);
    ASSERT(c->active && c->credit > 0);
    c->ready_prev = level->ready_tail;
    c->ready_next = NULL;
    if (level->ready_tail != NULL) {
        level->ready_tail->ready_next = c;
    } else {
        level->ready_head = c;
    }
    level->ready_tail = c;
    c->in_ready = true;
}

static void consumers_unlink(store_consumer_level *level, store_consumer *c)
{
    ASSERT(c->in_ready);
    ASSERT(level->ready_head != NULL);
    if (c->ready_prev != NULL) {
        c->ready_prev->ready_next = c->ready_next;
    } else {
        level->ready_head = c->ready_next;
    }
    if (c->ready_next != NULL) {
        c->ready_next->ready_prev = c->ready_prev;
    } else {
        level->ready_tail = c->ready_prev;
    }
    c->ready_prev = c->ready_next = NULL;
    c->in_ready = false;
}

store_consumer *store_consumers_add(store_consumers *cs, const store_consumer_params *params)
{
    ASSERT(params->tag_bytes <= LIMIT_CONSUMER_TAG_BYTES_MAX);
    ASSERT(params->tag != NULL || params->tag_bytes == 0);
    ASSERT(cs->count < LIMIT_QUEUE_CONSUMERS_MAX);
    ASSERT(cs->exclusive_count == 0 && (!params->exclusive || cs->count == 0));

    uint32_t slot = consumers_slot_take(cs);
    ASSERT(cs->slots[slot] == NULL);
    store_consumer *c = store_mem_zalloc(cs->heap, sizeof(*c));
    c->id = ((uint64_t)cs->slot_gens[slot] << 32) | slot;
    c->owner = params->owner;
    c->priority = params->priority;
    c->credit = params->credit;
    c->no_ack = params->no_ack;
    c->exclusive = params->exclusive;
    c->active = !params->inactive;
    c->tag_bytes = (uint8_t)params->tag_bytes;
    if (params->tag_bytes > 0) memcpy(c->tag, params->tag, params->tag_bytes);
    c->tag[params->tag_bytes] = '\0';
    cs->slots[slot] = c;
    cs->count++;
    if (c->exclusive) cs->exclusive_count++;

    store_consumer_level *level = consumers_level(cs, c->priority, true);
    level->consumer_count++;
    if (c->active && c->credit > 0) consumers_link_tail(level, c);
    ASSERT(c->id != 0 && store_consumers_find(cs, c->id) == c);
    return c;
}

store_consumer *store_consumers_find(const store_consumers *cs, uint64_t consumer_id)
{
    uint64_t slot = consumer_id & CONSUMER_SLOT_MASK;
    if (slot >= cs->slots_used) return NULL;
    store_consumer *c = cs->slots[slot];
    if (c == NULL || c->id != consumer_id) return NULL;
    ASSERT((c->id >> 32) == cs->slot_gens[slot]);
    return c;
}

void store_consumers_remove(store_consumers *cs, store_consumer *c)
{
    uint32_t slot = (uint32_t)(c->id & CONSUMER_SLOT_MASK);
    ASSERT(slot < cs->slots_used && cs->slots[slot] == c);
    ASSERT(cs->count > 0);
    store_consumer_level *level = consumers_level(cs, c->priority, false);
    if (c->in_ready) consumers_unlink(level, c);
    ASSERT(level->consumer_count > 0);
    if (--level->consumer_count == 0) {
        ASSERT(level->ready_head == NULL && level->ready_tail == NULL);
        uint32_t i = (uint32_t)(level - cs->levels);
        memmove(&cs->levels[i], &cs->levels[i + 1], (cs->level_count - i - 1) * sizeof(*level));
        cs->level_count--;
    }
    if (c->exclusive) cs->exclusive_count--;
    cs->count--;
    cs->slots[slot] = NULL;
    cs->slot_gens[slot] = cs->slot_gens[slot] == UINT32_MAX ? 1 : cs->slot_gens[slot] + 1;
    cs->free_slots[cs->free_count++] = slot;
    store_mem_free(c);
}

store_consumer *store_consumers_next(const store_consumers *cs)
{
    for (uint32_t i = 0; i < cs->level_count; i++) {
        store_consumer *c = cs->levels[i].ready_head;
        if (c == NULL) continue;
        ASSERT(c->in_ready && c->active && c->credit > 0);
        return c;
    }
    return NULL;
}

void store_consumers_charge(store_consumers *cs, store_consumer *c)
{
    ASSERT(c->in_ready);
    ASSERT(c->active && c->credit > 0);
    store_consumer_level *level = consumers_level(cs, c->priority, false);
    if (c->credit != STORE_CREDIT_UNLIMITED) c->credit--;
    c->delivered_count++;
    consumers_unlink(level, c);
    if (c->credit > 0) consumers_link_tail(level, c);
}

void store_consumers_credit(store_consumers *cs, store_consumer *c, uint32_t credit)
{
    ASSERT(c != NULL);
    ASSERT(c->in_ready == (c->active && c->credit > 0));
    if (c->credit == STORE_CREDIT_UNLIMITED || credit == 0) return;
    /* Saturate below UNLIMITED: returned credit never lifts the limit. */
    uint64_t sum = (uint64_t)c->credit + credit;
    c->credit = sum >= STORE_CREDIT_UNLIMITED ? STORE_CREDIT_UNLIMITED - 1 : (uint32_t)sum;
    if (c->active && !c->in_ready) consumers_link_tail(consumers_level(cs, c->priority, false), c);
}

void store_consumers_set_active(store_consumers *cs, store_consumer *c, bool active)
{
    ASSERT(c != NULL);
    ASSERT(c->in_ready == (c->active && c->credit > 0));
    if (c->active == active) return;
    store_consumer_level *level = consumers_level(cs, c->priority, false);
    c->active = active;
    if (!active && c->in_ready) consumers_unlink(level, c);
    if (active && c->credit > 0) consumers_link_tail(level, c);
    ASSERT(c->in_ready == (c->active && c->credit > 0));
}
