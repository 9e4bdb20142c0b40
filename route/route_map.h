/*
 * A hash multimap from 64-bit hashes to pointers, for the routing replica.
 * The map stores only (hash, value); the caller keeps the key inside the
 * value and compares it while walking the entries that share a hash, so one
 * map type serves exchanges, queues, bindings and trie edges without
 * callbacks. Lookups never allocate; inserts grow the table by doubling.
 */
#ifndef RINGMQ_ROUTE_MAP_H
#define RINGMQ_ROUTE_MAP_H

#include <stdbool.h>
#include <stdint.h>

#include "net/amqp_types.h"

typedef struct route_map_slot {
    uint64_t hash;
    void *value; /* NULL: empty slot */
} route_map_slot;

typedef struct route_map {
    route_map_slot *slots;
    uint32_t slots_count; /* power of two, or 0 before the first insert */
    uint32_t count;
} route_map;

/* Walks the values stored under one hash. */
typedef struct route_map_iter {
    const route_map *map;
    uint64_t hash;
    uint32_t index;
    uint32_t probed;
} route_map_iter;

void route_map_init(route_map *m);
void route_map_free(route_map *m);
/* Adds (hash, value); value must not be NULL nor already in the map. */
void route_map_insert(route_map *m, uint64_t hash, void *value);
/* Removes the entry holding exactly this value; false if absent. */
bool route_map_remove(route_map *m, uint64_t hash, const void *value);
/* First value stored under hash (NULL if none), then route_map_next. */
void *route_map_first(const route_map *m, uint64_t hash, route_map_iter *it);
void *route_map_next(route_map_iter *it);

/* Hashes: names, and a pointer-qualified byte string (owner + key). */
uint64_t route_hash_bytes(amqp_bytes b);
uint64_t route_hash_owned(const void *owner, amqp_bytes key);

#endif
