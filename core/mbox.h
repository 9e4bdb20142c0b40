/*
 * The cross-core mailbox: one single-producer/single-consumer byte ring per ordered pair of
 * shards. Ring i->j is written only by shard i and read only by shard j. Records are variable
 * size (an 8-byte header, then the payload, 8-byte aligned). The producer commits records
 * locally and publishes its tail once per loop turn; the consumer drains a bounded batch and
 * publishes its head so the producer can reuse the space. A full ring never grows: reserve
 * returns NULL and the caller pauses the source. See core/mbox.c for the memory-order argument.
 */
#ifndef RINGMQ_CORE_MBOX_H
#define RINGMQ_CORE_MBOX_H

#include <stdbool.h>
#include <stdint.h>

#include "core/assert.h"

typedef struct mbox_ring mbox_ring;
typedef struct mbox_mesh mbox_mesh;

/* The record header as it lies in the ring; the payload follows at the next 8-byte boundary. */
typedef struct {
    uint32_t payload_bytes; /* exact payload length, without the alignment padding */
    uint16_t kind;          /* caller's record type; MBOX_KIND_SKIP is reserved */
    uint16_t magic;         /* MBOX_RECORD_MAGIC: proves the consumer is on a record boundary */
} mbox_record;

#define MBOX_RECORD_ALIGN_BYTES 8u
#define MBOX_RECORD_MAGIC       0x6d62u /* "mb" */
#define MBOX_KIND_SKIP          0xffffu /* padding to the end of the ring; never seen by callers */

static inline const void *mbox_record_payload(const mbox_record *record)
{
    return (const void *)(record + 1);
}

/* Called by mbox_drain once per record; the record is valid only during the call. */
typedef void (*mbox_record_fn)(void *ctx, const mbox_record *record);

/*
 * The mesh: shard_count * (shard_count - 1) rings of ring_bytes each (a power of two between
 * LIMIT_MBOX_RING_BYTES_MIN and _MAX) and one sleeping flag per shard. Allocated once at
 * start-up; returns NULL when memory is short. Destroy only after every shard has stopped.
 */
mbox_mesh *mbox_mesh_create(uint32_t shard_count, uint32_t ring_bytes);
void mbox_mesh_destroy(mbox_mesh *mesh);
uint32_t mbox_mesh_shard_count(const mbox_mesh *mesh);
/* The ring that from_shard writes and to_shard reads; from_shard != to_shard. */
mbox_ring *mbox_mesh_ring(mbox_mesh *mesh, uint32_t from_shard, uint32_t to_shard);

/* Ring properties (constant for the ring's life). */
uint32_t mbox_ring_bytes(const mbox_ring *ring);
/* The largest payload this ring accepts: min(LIMIT_MBOX_PAYLOAD_BYTES_MAX, ring_bytes/4 - 8). */
uint32_t mbox_ring_payload_bytes_max(const mbox_ring *ring);

/*
 * Producer side (the source shard only).
 * mbox_reserve: room for one record of up to payload_bytes, or NULL when the ring is full (the
 * ring then remembers that its producer is blocked, see mbox_release). At most one reservation
 * is open at a time. mbox_commit closes it with the exact length (<= the reserved length); the
 * record stays invisible to the consumer until mbox_publish.
 * mbox_publish: one release store of the tail, once per loop turn. Returns true when the consumer
 * shard was asleep and this call took the duty to wake it (IORING_OP_MSG_RING to its ring).
 * mbox_space_bytes: the largest payload that mbox_reserve would accept right now.
 */
void *mbox_reserve(mbox_ring *ring, uint16_t kind, uint32_t payload_bytes);
void mbox_commit(mbox_ring *ring, uint32_t payload_bytes);
bool mbox_push(mbox_ring *ring, uint16_t kind, const void *payload, uint32_t payload_bytes);
bool mbox_publish(mbox_ring *ring);
uint32_t mbox_space_bytes(mbox_ring *ring);

/*
 * Consumer side (the target shard only).
 * mbox_peek: the oldest published record not yet popped, or NULL. mbox_pop: step past it.
 * mbox_drain: peek/callback/pop up to records_max records; returns how many.
 * mbox_release: one release store of the head, giving the popped space back. Returns true when
 * the producer had found the ring full and this call took the duty to tell the producer shard
 * that space is free (the caller wakes that shard so it resumes its paused sources).
 */
const mbox_record *mbox_peek(mbox_ring *ring);
void mbox_pop(mbox_ring *ring);
uint32_t mbox_drain(mbox_ring *ring, mbox_record_fn fn, void *ctx, uint32_t records_max);
bool mbox_release(mbox_ring *ring);

/*
 * Sleep protocol for a shard (called by that shard only).
 * mbox_sleep_prepare: marks the shard asleep, then re-checks every inbound ring; returns true
 * when the shard may block in io_uring_submit_and_wait, false (flag cleared) when a published
 * record is already waiting. mbox_sleep_end: after waking, whatever woke it.
 * mbox_mesh_pending: whether any inbound ring holds a published record not yet popped.
 */
bool mbox_sleep_prepare(mbox_mesh *mesh, uint32_t shard);
void mbox_sleep_end(mbox_mesh *mesh, uint32_t shard);
bool mbox_mesh_pending(mbox_mesh *mesh, uint32_t shard);

#endif
