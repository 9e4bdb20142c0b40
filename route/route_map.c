/*
 * Open-addressing hash multimap with linear probing and backward-shift
 * deletion (no tombstones), keyed by XXH3-64 hashes computed by the caller.
 * Invariants: slots_count is zero or a power of two; the load stays at or
 * below one half, so every probe sequence ends at an empty slot; an entry
 * sits at or after its home slot with no empty slot in between. The map owns
 * only its slot array; the values belong to the caller.
 */
#include "route/route_map.h"

#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "core/assert.h"
#include "core/limits.h"

void route_map_init(route_map *m)
{
    ASSERT(m != NULL);
    memset(m, 0, sizeof(*m));
}

void route_map_free(route_map *m)
{
    ASSERT(m != NULL);
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

static uint32_t map_home(const route_map *m, uint64_t hash)
{
    return (uint32_t)hash & (m->slots_count - 1u);
}

static void map_place(route_map *m, uint64_t hash, void *value)
{
    uint32_t i = map_home(m, hash);
    while (m->slots[i].value != NULL) i = (i + 1u) & (m->slots_count - 1u);
    m->slots[i].hash = hash;
    m->slots[i].value = value;
}

static void map_grow(route_map *m)
{
    uint32_t slots_count_old = m->slots_count;
    route_map_slot *old = m->slots;
    uint32_t slots_count = slots_count_old == 0 ? LIMIT_ROUTE_MAP_SLOTS_MIN : slots_count_old * 2u;
    ASSERT(slots_count > slots_count_old);
    m->slots = calloc(slots_count, sizeof(*m->slots));
    ASSERT(m->slots != NULL);
    m->slots_count = slots_count;
    for (uint32_t i = 0; i < slots_count_old; i++) {
        if (old[i].value != NULL) map_place(m, old[i].hash, old[i].value);
    }
    free(old);
}

void route_map_insert(route_map *m, uint64_t hash, void *value)
{
    ASSERT(value != NULL);
    if ((m->count + 1u) * 2u > m->slots_count) map_grow(m);
    ASSERT((m->count + 1u) * 2u <= m->slots_count);
    map_place(m, hash, value);
    m->count++;
}

/* Backward-shift deletion: pull later entries of the cluster into the hole
 * whenever the hole lies on their probe path (between home and position). */
static void map_erase_at(route_map *m, uint32_t hole)
{
    uint32_t mask = m->slots_count - 1u;
    uint32_t i = (hole + 1u) & mask;
    while (m->slots[i].value != NULL) {
        uint32_t home = map_home(m, m->slots[i].hash);
        bool movable = ((i - home) & mask) >= ((i - hole) & mask);
        if (movable) {
            m->slots[hole] = m->slots[i];
            hole = i;
        }
        i = (i + 1u) & mask;
    }
    m->slots[hole].value = NULL;
    m->slots[hole].hash = 0;
}

bool route_map_remove(route_map *m, uint64_t hash, const void *value)
{
    ASSERT(value != NULL);
    if (m->count == 0) return false;
    uint32_t mask = m->slots_count - 1u;
    for (uint32_t i = map_home(m, hash);; i = (i + 1u) & mask) {
        if (m->slots[i].value == NULL) return false;
        if (m->slots[i].value == value) {
            ASSERT(m->slots[i].hash == hash);
            map_erase_at(m, i);
            m->count--;
            return true;
        }
    }
}

void *route_map_first(const route_map *m, uint64_t hash, route_map_iter *it)
{
    ASSERT(m != NULL && it != NULL);
    it->map = m;
    it->hash = hash;
    it->probed = 0;
    if (m->slots_count == 0) {
        it->index = 0;
        it->probed = 1; /* nothing to walk */
        return NULL;
    }
    it->index = map_home(m, hash);
    return route_map_next(it);
}

void *route_map_next(route_map_iter *it)
{
    const route_map *m = it->map;
    if (m->slots_count == 0) return NULL;
    uint32_t mask = m->slots_count - 1u;
    while (it->probed < m->slots_count) {
        const route_map_slot *s = &m->slots[it->index];
        if (s->value == NULL) {
            it->probed = m->slots_count; /* the cluster ended */
            return NULL;
        }
        it->index = (it->index + 1u) & mask;
        it->probed++;
        if (s->hash == it->hash) return s->value;
    }
    return NULL;
}

uint64_t route_hash_bytes(amqp_bytes b)
{
    ASSERT(b.data != NULL || b.len == 0);
    return XXH3_64bits(b.data, b.len);
}

uint64_t route_hash_owned(const void *owner, amqp_bytes key)
{
    ASSERT(owner != NULL);
    ASSERT(key.data != NULL || key.len == 0);
    uint64_t seed = (uint64_t)(uintptr_t)owner;
    return XXH3_64bits_withSeed(key.data, key.len, seed);
}
