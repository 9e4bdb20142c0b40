/*
 * The cross-core mailbox: a mesh of single-producer/single-consumer byte rings, one per ordered
 * pair of shards, plus one "sleeping" flag per shard. The mesh is allocated once at start-up and
 * owned by the process; ring i->j is written only by shard i and read only by shard j, so each
 * index has exactly one writer and nothing takes a lock.
 *
 * Positions (tail, head) are byte counts that only grow (64 bits never wrap); the offset in the
 * buffer is position & mask. Invariants: head <= tail <= head + ring_bytes; every record starts
 * 8-byte aligned with an mbox_record header; a record never straddles the end of the buffer: a
 * record that does not fit before the end is preceded by a SKIP record covering the rest.
 *
 * Each side keeps a private copy of its own index (tail_local, head_local), the last value it
 * published, and a cached copy of the other side's index; it reads the other side's cache line
 * only when its cached copy says the ring is full (producer) or empty (consumer). The published
 * tail and the published head sit on separate cache lines, away from the private fields.
 * Payload bytes are plain memory: the release store of the tail and the acquire load by the
 * consumer order them (and the release store of the head orders the reuse the other way).
 *
 * Wake-up protocol (Dekker). A shard about to sleep stores sleeping=1, then loads the published
 * tail of every inbound ring; a producer stores its tail, then loads the target's sleeping flag.
 * All four are seq_cst operations, so they fall in one total order S: if the producer's load of
 * the flag precedes the shard's store of the flag in S, then the producer's tail store precedes
 * the shard's tail load, which therefore sees the record and the shard stays awake; otherwise the
 * producer sees sleeping=1. Either the sleeper sees the record or the producer sees the sleeper;
 * both may happen (a spurious wake, harmless), neither cannot. (This is the "store / seq_cst
 * fence / load" pattern; a seq_cst store and a seq_cst load need no separate fence: on x86 the
 * store is one XCHG, on arm64 STLR followed by LDAR is not reordered.) The producer that sees
 * sleeping=1 takes the flag with an exchange to 0, so one producer sends the wake, not all.
 * The same argument, with the producer_blocked flag and the published head, lets a consumer tell
 * a producer that found the ring full that space is free again.
 */
#include "core/mbox.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"

/* Hardware constant: the unit of coherence traffic between cores on x86-64 and arm64. */
#define MBOX_CACHE_LINE_BYTES 64

struct mbox_ring {
    /* Producer's private fields. */
    alignas(MBOX_CACHE_LINE_BYTES) uint64_t tail_local; /* end of the last committed record */
    uint64_t tail_published;                            /* last value stored to tail */
    uint64_t head_cached;                               /* producer's view of head */
    uint32_t reserved_payload_bytes;                    /* of the open reservation */
    bool reservation_open;

    /* Written by the producer, read by the consumer. */
    alignas(MBOX_CACHE_LINE_BYTES) _Atomic uint64_t tail;
    _Atomic uint32_t producer_blocked; /* set by a failed reserve, taken by mbox_release */

    /* Written by the consumer, read by the producer. */
    alignas(MBOX_CACHE_LINE_BYTES) _Atomic uint64_t head;

    /* Consumer's private fields. */
    alignas(MBOX_CACHE_LINE_BYTES) uint64_t head_local; /* start of the next record to read */
    uint64_t head_published;                            /* last value stored to head */
    uint64_t tail_cached;                               /* consumer's view of tail */

    /* Read-only after creation (shared by both sides without traffic). */
    alignas(MBOX_CACHE_LINE_BYTES) uint8_t *buffer;
    _Atomic uint32_t *consumer_sleeping;
    uint32_t ring_bytes;
    uint32_t mask;
    uint32_t payload_bytes_max;
};

typedef struct {
    alignas(MBOX_CACHE_LINE_BYTES) _Atomic uint32_t sleeping;
} mbox_shard_state;

struct mbox_mesh {
    mbox_ring *rings; /* shard_count * shard_count, [from * shard_count + to]; diagonal unused */
    mbox_shard_state *shards;
    uint32_t shard_count;
    uint32_t ring_bytes;
};

STATIC_ASSERT_SIZE(mbox_record, MBOX_RECORD_ALIGN_BYTES);
STATIC_ASSERT(sizeof(mbox_ring) % MBOX_CACHE_LINE_BYTES == 0, "rings do not share cache lines");
STATIC_ASSERT(sizeof(mbox_shard_state) == MBOX_CACHE_LINE_BYTES, "one flag per cache line");
STATIC_ASSERT(LIMIT_MBOX_PAYLOAD_BYTES_MAX % MBOX_RECORD_ALIGN_BYTES == 0, "payload max aligned");
STATIC_ASSERT(LIMIT_MBOX_RING_BYTES_MIN / 4u > 2u * MBOX_RECORD_ALIGN_BYTES, "min ring too small");

static uint32_t mbox_record_bytes(uint32_t payload_bytes)
{
    uint32_t padded_bytes =
        (payload_bytes + MBOX_RECORD_ALIGN_BYTES - 1) & ~(MBOX_RECORD_ALIGN_BYTES - 1);
    return (uint32_t)sizeof(mbox_record) + padded_bytes;
}

static mbox_record *mbox_record_at(const mbox_ring *ring, uint64_t position)
{
    uint32_t offset = (uint32_t)(position & ring->mask);
    ASSERT(offset % MBOX_RECORD_ALIGN_BYTES == 0);
    return (mbox_record *)(void *)(ring->buffer + offset);
}

static bool mbox_ring_init(mbox_ring *ring, uint32_t ring_bytes, _Atomic uint32_t *sleeping)
{
    ASSERT(ring_bytes >= LIMIT_MBOX_RING_BYTES_MIN && ring_bytes <= LIMIT_MBOX_RING_BYTES_MAX);
    ASSERT((ring_bytes & (ring_bytes - 1)) == 0);
    memset(ring, 0, sizeof(*ring));
    atomic_init(&ring->tail, 0);
    atomic_init(&ring->head, 0);
    atomic_init(&ring->producer_blocked, 0);
    ring->buffer = aligned_alloc(MBOX_CACHE_LINE_BYTES, ring_bytes);
    if (ring->buffer == NULL) return false;
    ring->consumer_sleeping = sleeping;
    ring->ring_bytes = ring_bytes;
    ring->mask = ring_bytes - 1;
    ring->payload_bytes_max = ring_bytes / 4u - (uint32_t)sizeof(mbox_record);
    if (ring->payload_bytes_max > LIMIT_MBOX_PAYLOAD_BYTES_MAX) {
        ring->payload_bytes_max = LIMIT_MBOX_PAYLOAD_BYTES_MAX;
    }
    ASSERT(mbox_record_bytes(ring->payload_bytes_max) <= ring_bytes / 4u);
    return true;
}

mbox_mesh *mbox_mesh_create(uint32_t shard_count, uint32_t ring_bytes)
{
    ASSERT(shard_count >= 1 && shard_count <= LIMIT_SHARDS_MAX);
    ASSERT((ring_bytes & (ring_bytes - 1)) == 0);
    mbox_mesh *mesh = calloc(1, sizeof(*mesh));
    if (mesh == NULL) return NULL;
    mesh->shard_count = shard_count;
    mesh->ring_bytes = ring_bytes;
    size_t ring_count = (size_t)shard_count * shard_count;
    mesh->rings = aligned_alloc(MBOX_CACHE_LINE_BYTES, ring_count * sizeof(mbox_ring));
    mesh->shards = aligned_alloc(MBOX_CACHE_LINE_BYTES, shard_count * sizeof(mbox_shard_state));
    if (mesh->rings == NULL || mesh->shards == NULL) goto fail;
    memset(mesh->rings, 0, ring_count * sizeof(mbox_ring)); /* buffer == NULL: not made yet */
    for (uint32_t s = 0; s < shard_count; s++) atomic_init(&mesh->shards[s].sleeping, 0);
    for (uint32_t from = 0; from < shard_count; from++) {
        for (uint32_t to = 0; to < shard_count; to++) {
            if (from == to) continue; /* same shard: a direct call, no mailbox */
            mbox_ring *ring = &mesh->rings[(size_t)from * shard_count + to];
            if (!mbox_ring_init(ring, ring_bytes, &mesh->shards[to].sleeping)) goto fail;
        }
    }
    return mesh;
fail:
    mbox_mesh_destroy(mesh);
    return NULL;
}

void mbox_mesh_destroy(mbox_mesh *mesh)
{
    if (mesh == NULL) return;
    if (mesh->rings != NULL) {
        size_t ring_count = (size_t)mesh->shard_count * mesh->shard_count;
        for (size_t r = 0; r < ring_count; r++) free(mesh->rings[r].buffer);
    }
    free(mesh->rings);
    free(mesh->shards);
    free(mesh);
}

uint32_t mbox_mesh_shard_count(const mbox_mesh *mesh)
{
    return mesh->shard_count;
}

mbox_ring *mbox_mesh_ring(mbox_mesh *mesh, uint32_t from_shard, uint32_t to_shard)
{
    ASSERT(from_shard < mesh->shard_count && to_shard < mesh->shard_count);
    ASSERT(from_shard != to_shard);
    mbox_ring *ring = &mesh->rings[(size_t)from_shard * mesh->shard_count + to_shard];
    ASSERT(ring->buffer != NULL);
    return ring;
}

uint32_t mbox_ring_bytes(const mbox_ring *ring)
{
    return ring->ring_bytes;
}

uint32_t mbox_ring_payload_bytes_max(const mbox_ring *ring)
{
    return ring->payload_bytes_max;
}

/* ---- producer side ---- */

static uint64_t mbox_free_bytes(const mbox_ring *ring)
{
    ASSERT(ring->head_cached <= ring->tail_local);
    ASSERT(ring->tail_local - ring->head_cached <= ring->ring_bytes);
    return ring->ring_bytes - (ring->tail_local - ring->head_cached);
}

/*
 * Whether need_bytes are free, reading the consumer's head only when the cached copy says no.
 * When the ring is full it raises producer_blocked and looks once more (the Dekker pair of
 * mbox_release): either this second look sees the space, or the consumer sees the flag.
 */
static bool mbox_room(mbox_ring *ring, uint32_t need_bytes)
{
    ASSERT(need_bytes <= ring->ring_bytes);
    if (mbox_free_bytes(ring) >= need_bytes) return true;
    ring->head_cached = atomic_load_explicit(&ring->head, memory_order_acquire);
    if (mbox_free_bytes(ring) >= need_bytes) return true;
    atomic_store_explicit(&ring->producer_blocked, 1, memory_order_seq_cst);
    ring->head_cached = atomic_load_explicit(&ring->head, memory_order_seq_cst);
    if (mbox_free_bytes(ring) < need_bytes) return false;
    atomic_store_explicit(&ring->producer_blocked, 0, memory_order_relaxed);
    return true;
}

void *mbox_reserve(mbox_ring *ring, uint16_t kind, uint32_t payload_bytes)
{
    ASSERT(!ring->reservation_open);
    ASSERT(kind != MBOX_KIND_SKIP);
    ASSERT(payload_bytes <= ring->payload_bytes_max);
    uint32_t record_bytes = mbox_record_bytes(payload_bytes);
    uint32_t end_bytes = ring->ring_bytes - (uint32_t)(ring->tail_local & ring->mask);
    bool wrap = record_bytes > end_bytes;
    if (!mbox_room(ring, wrap ? end_bytes + record_bytes : record_bytes)) return NULL;
    if (wrap) {
        /* end_bytes >= 8: offsets and ring size are multiples of 8, and end_bytes > 0. */
        mbox_record *skip = mbox_record_at(ring, ring->tail_local);
        *skip = (mbox_record){.payload_bytes = end_bytes - (uint32_t)sizeof(mbox_record),
                              .kind = MBOX_KIND_SKIP,
                              .magic = MBOX_RECORD_MAGIC};
        ring->tail_local += end_bytes;
        ASSERT((ring->tail_local & ring->mask) == 0);
    }
    mbox_record *record = mbox_record_at(ring, ring->tail_local);
    *record =
        (mbox_record){.payload_bytes = payload_bytes, .kind = kind, .magic = MBOX_RECORD_MAGIC};
    ring->reservation_open = true;
    ring->reserved_payload_bytes = payload_bytes;
    return record + 1;
}

void mbox_commit(mbox_ring *ring, uint32_t payload_bytes)
{
    ASSERT(ring->reservation_open);
    ASSERT(payload_bytes <= ring->reserved_payload_bytes);
    mbox_record *record = mbox_record_at(ring, ring->tail_local);
    ASSERT(record->magic == MBOX_RECORD_MAGIC && record->kind != MBOX_KIND_SKIP);
    record->payload_bytes = payload_bytes;
    ring->tail_local += mbox_record_bytes(payload_bytes);
    ring->reservation_open = false;
    ASSERT(ring->tail_local - ring->head_cached <= ring->ring_bytes);
}

bool mbox_push(mbox_ring *ring, uint16_t kind, const void *payload, uint32_t payload_bytes)
{
    ASSERT(payload != NULL || payload_bytes == 0);
    void *slot = mbox_reserve(ring, kind, payload_bytes);
    if (slot == NULL) return false;
    if (payload_bytes > 0) memcpy(slot, payload, payload_bytes);
    mbox_commit(ring, payload_bytes);
    return true;
}

bool mbox_publish(mbox_ring *ring)
{
    ASSERT(!ring->reservation_open);
    ASSERT(ring->tail_published <= ring->tail_local);
    if (ring->tail_published == ring->tail_local) return false;
    /* seq_cst: the first half of the Dekker pair with mbox_sleep_prepare (see the top). */
    atomic_store_explicit(&ring->tail, ring->tail_local, memory_order_seq_cst);
    ring->tail_published = ring->tail_local;
    if (atomic_load_explicit(ring->consumer_sleeping, memory_order_seq_cst) == 0) return false;
    return atomic_exchange_explicit(ring->consumer_sleeping, 0, memory_order_acq_rel) == 1;
}

uint32_t mbox_space_bytes(mbox_ring *ring)
{
    ASSERT(!ring->reservation_open);
    ring->head_cached = atomic_load_explicit(&ring->head, memory_order_acquire);
    uint64_t free_bytes = mbox_free_bytes(ring);
    uint64_t end_bytes = ring->ring_bytes - (ring->tail_local & ring->mask);
    /* A record either fits before the end, or follows a SKIP over the end bytes. */
    uint64_t here_bytes = free_bytes < end_bytes ? free_bytes : end_bytes;
    uint64_t wrapped_bytes = free_bytes > end_bytes ? free_bytes - end_bytes : 0;
    uint64_t best_bytes = here_bytes > wrapped_bytes ? here_bytes : wrapped_bytes;
    if (best_bytes < sizeof(mbox_record)) return 0;
    best_bytes -= sizeof(mbox_record);
    return best_bytes < ring->payload_bytes_max ? (uint32_t)best_bytes : ring->payload_bytes_max;
}

/* ---- consumer side ---- */

const mbox_record *mbox_peek(mbox_ring *ring)
{
    /* At most two steps: a SKIP is always followed by a record at offset 0. */
    for (uint32_t step = 0; step < 2; step++) {
        if (ring->head_local == ring->tail_cached) {
            ring->tail_cached = atomic_load_explicit(&ring->tail, memory_order_acquire);
            if (ring->head_local == ring->tail_cached) return NULL;
        }
        ASSERT(ring->head_local < ring->tail_cached);
        ASSERT(ring->tail_cached - ring->head_local <= ring->ring_bytes);
        const mbox_record *record = mbox_record_at(ring, ring->head_local);
        uint32_t end_bytes = ring->ring_bytes - (uint32_t)(ring->head_local & ring->mask);
        ASSERT(record->magic == MBOX_RECORD_MAGIC);
        ASSERT(mbox_record_bytes(record->payload_bytes) <= end_bytes);
        if (record->kind != MBOX_KIND_SKIP) return record;
        ASSERT(mbox_record_bytes(record->payload_bytes) == end_bytes);
        ring->head_local += end_bytes;
    }
    UNREACHABLE();
}

void mbox_pop(mbox_ring *ring)
{
    ASSERT(ring->head_local < ring->tail_cached); /* pop follows a peek that found a record */
    const mbox_record *record = mbox_record_at(ring, ring->head_local);
    ASSERT(record->magic == MBOX_RECORD_MAGIC && record->kind != MBOX_KIND_SKIP);
    ring->head_local += mbox_record_bytes(record->payload_bytes);
    ASSERT(ring->head_local <= ring->tail_cached);
}

uint32_t mbox_drain(mbox_ring *ring, mbox_record_fn fn, void *ctx, uint32_t records_max)
{
    ASSERT(fn != NULL);
    ASSERT(records_max > 0 && records_max <= LIMIT_MBOX_DRAIN_RECORDS_MAX);
    uint32_t records = 0;
    while (records < records_max) {
        const mbox_record *record = mbox_peek(ring);
        if (record == NULL) break;
        fn(ctx, record);
        mbox_pop(ring);
        records++;
    }
    return records;
}

bool mbox_release(mbox_ring *ring)
{
    ASSERT(ring->head_published <= ring->head_local);
    ASSERT(ring->head_local <= ring->tail_cached);
    if (ring->head_published == ring->head_local) return false;
    /* seq_cst: the second half of the Dekker pair with the blocked producer in mbox_room. */
    atomic_store_explicit(&ring->head, ring->head_local, memory_order_seq_cst);
    ring->head_published = ring->head_local;
    if (atomic_load_explicit(&ring->producer_blocked, memory_order_seq_cst) == 0) return false;
    return atomic_exchange_explicit(&ring->producer_blocked, 0, memory_order_acq_rel) == 1;
}

/* ---- sleep protocol ---- */

bool mbox_mesh_pending(mbox_mesh *mesh, uint32_t shard)
{
    ASSERT(shard < mesh->shard_count);
    for (uint32_t from = 0; from < mesh->shard_count; from++) {
        if (from == shard) continue;
        mbox_ring *ring = &mesh->rings[(size_t)from * mesh->shard_count + shard];
        /* seq_cst: the second half of the Dekker pair with mbox_publish (see the top). */
        ring->tail_cached = atomic_load_explicit(&ring->tail, memory_order_seq_cst);
        ASSERT(ring->head_local <= ring->tail_cached);
        if (ring->head_local != ring->tail_cached) return true;
    }
    return false;
}

bool mbox_sleep_prepare(mbox_mesh *mesh, uint32_t shard)
{
    ASSERT(shard < mesh->shard_count);
    _Atomic uint32_t *sleeping = &mesh->shards[shard].sleeping;
    /* Only this shard sets the flag, and it clears it before doing anything else on waking. */
    ASSERT(atomic_load_explicit(sleeping, memory_order_relaxed) == 0);
    atomic_store_explicit(sleeping, 1, memory_order_seq_cst);
    if (!mbox_mesh_pending(mesh, shard)) return true;
    atomic_store_explicit(sleeping, 0, memory_order_relaxed);
    return false;
}

void mbox_sleep_end(mbox_mesh *mesh, uint32_t shard)
{
    ASSERT(shard < mesh->shard_count);
    atomic_store_explicit(&mesh->shards[shard].sleeping, 0, memory_order_relaxed);
}
