/*
 * Allocation for the queue structure's own arrays (ring, requeue heap, unacked table, consumer
 * slots): on the owner shard's mimalloc heap, or mimalloc's default heap when heap is NULL.
 * These grow when a queue grows; running out of memory there is fatal (the shard cannot keep
 * its queues consistent without the index), unlike a message allocation, which the caller may
 * refuse. Internal to store/.
 */
#ifndef RINGMQ_STORE_MEM_H
#define RINGMQ_STORE_MEM_H

#include <mimalloc.h>
#include <stddef.h>

#include "core/assert.h"

static inline void *store_mem_alloc(mi_heap_t *heap, size_t bytes)
{
    ASSERT(bytes > 0);
    void *p = heap != NULL ? mi_heap_malloc(heap, bytes) : mi_malloc(bytes);
    ASSERT(p != NULL);
    return p;
}

static inline void *store_mem_zalloc(mi_heap_t *heap, size_t bytes)
{
    ASSERT(bytes > 0);
    void *p = heap != NULL ? mi_heap_zalloc(heap, bytes) : mi_zalloc(bytes);
    ASSERT(p != NULL);
    return p;
}

static inline void store_mem_free(void *p)
{
    mi_free(p);
}

#endif
