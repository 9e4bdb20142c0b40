/*
 * Messages as a shard stores them: one refcounted allocation per message, however many of the
 * shard's queues it reaches. The header is followed by the variable bytes, contiguous: exchange
 * name, routing key, raw content-header property bytes (flags + property list, forwarded to
 * consumers unchanged) and the body. The fields are read-only once store_msg_new has returned,
 * except the body bytes when the caller asked for room to fill them (params.body == NULL).
 *
 * Ownership: store_msg_new returns one reference; every holder (a queue's ready or unacked
 * structure, a delivery in flight) takes its own with store_msg_ref and drops it with
 * store_msg_unref; the last unref frees. A message belongs to one shard's thread and heap.
 */
#ifndef RINGMQ_STORE_MSG_H
#define RINGMQ_STORE_MSG_H

#include <mimalloc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/assert.h"

#define STORE_MSG_PERSISTENT     0x1u /* delivery-mode 2 */
#define STORE_MSG_HAS_EXPIRATION 0x2u /* expiration property present; expiration_ms holds it */
#define STORE_MSG_RECOVERED      0x4u /* read back from the segment log at start: redelivered */

typedef struct store_msg {
    uint32_t refs;
    uint32_t props_bytes;
    uint32_t body_bytes;
    uint16_t flags;           /* STORE_MSG_* */
    uint16_t publisher_shard; /* shard that received the publish (for confirms) */
    uint8_t priority;         /* basic.properties priority, 0 when absent */
    uint8_t exchange_bytes;
    uint8_t routing_key_bytes;
    uint8_t reserved[5];
    uint64_t publish_seq;   /* the publisher shard's sequence for this publish (for confirms) */
    uint64_t expiration_ms; /* per-message TTL from the expiration property, if HAS_EXPIRATION */
    uint64_t arrival_ms;    /* when this shard stored it (CLOCK_MONOTONIC ms), for TTLs */
    /* Where the shard's segment log holds it (store/log.h), when log_queues > 0: its record's
     * slots are acked when the last reference goes, i.e. when no queue holds it any more. */
    uint32_t log_segment;
    uint32_t log_offset;
    uint32_t log_slot;
    uint16_t log_queues;
    uint16_t reserved2;
    uint8_t data[]; /* exchange, routing key, properties, body */
} store_msg;

STATIC_ASSERT_SIZE(store_msg, 64);

/* Called with a message whose last reference goes while it is in the segment log (log_queues >
 * 0), before it is freed. One per thread: each shard sets its own; NULL (tests) does nothing. */
typedef void store_msg_release_fn(store_msg *msg);
void store_msg_set_release_hook(store_msg_release_fn *fn);
/* Whether this thread has a release hook (a shard with its log open). */
bool store_msg_release_hooked(void);

/* One slot of the segment log: a queue's paged-out copy of a persistent message owns one
 * (store/spill.h) instead of sharing the in-memory message's log_slot .. + log_queues. */
typedef struct store_msg_slot {
    uint32_t segment;
    uint32_t offset;
    uint32_t slot;
} store_msg_slot;

/* A paged-out copy that goes without being read back (purge, queue.delete) releases its slot
 * through the same hook, as an in-memory message of log_queues 1 at that slot would. */
void store_msg_release_slot(const store_msg_slot *slot);

/* What store_msg_new copies. body == NULL leaves body_bytes of room for the caller to fill
 * through store_msg_body_mut (a body assembled from frames is then copied once). */
typedef struct store_msg_params {
    const void *exchange;
    size_t exchange_bytes; /* <= LIMIT_NAME_BYTES_MAX */
    const void *routing_key;
    size_t routing_key_bytes; /* <= LIMIT_SHORTSTR_BYTES_MAX */
    const void *props;
    size_t props_bytes; /* raw content-header property flags + list */
    const void *body;
    size_t body_bytes; /* <= LIMIT_MESSAGE_BYTES_MAX */
    bool persistent;
    bool has_expiration;
    uint8_t priority;
    uint16_t publisher_shard;
    uint64_t publish_seq;
    uint64_t expiration_ms;
    uint64_t arrival_ms;
} store_msg_params;

/* One allocation on heap (NULL: mimalloc's default heap). NULL when memory is exhausted, so
 * that the caller can refuse the publish. */
store_msg *store_msg_new(mi_heap_t *heap, const store_msg_params *params);
store_msg *store_msg_ref(store_msg *msg);
void store_msg_unref(store_msg *msg);

/* The message as bytes, host byte order: the mailbox carries it between shards and the segment
 * log stores it. A fixed header, then exchange, routing key, properties, body. */
typedef struct store_msg_wire {
    uint32_t props_bytes;
    uint32_t body_bytes;
    uint16_t flags;
    uint8_t priority;
    uint8_t exchange_bytes;
    uint8_t routing_key_bytes;
    uint8_t pad[3];
    uint64_t expiration_ms;
} store_msg_wire;

STATIC_ASSERT_SIZE(store_msg_wire, 24);

uint32_t store_msg_wire_bytes(const store_msg *msg);
void store_msg_wire_write(uint8_t *out, const store_msg *msg);
/* Reads the wire form in in[0 .. avail) into params (slices point into in; publisher fields,
 * arrival and sequence left 0). False when it does not describe a message that fits in avail
 * bytes or breaks a limit: a damaged log record. */
bool store_msg_wire_read(const uint8_t *in, size_t avail, store_msg_params *params);

static inline const uint8_t *store_msg_exchange(const store_msg *msg)
{
    return msg->data;
}
static inline const uint8_t *store_msg_routing_key(const store_msg *msg)
{
    return msg->data + msg->exchange_bytes;
}
static inline const uint8_t *store_msg_props(const store_msg *msg)
{
    return msg->data + msg->exchange_bytes + msg->routing_key_bytes;
}
static inline const uint8_t *store_msg_body(const store_msg *msg)
{
    return store_msg_props(msg) + msg->props_bytes;
}
static inline uint8_t *store_msg_body_mut(store_msg *msg)
{
    return msg->data + msg->exchange_bytes + msg->routing_key_bytes + msg->props_bytes;
}
static inline bool store_msg_persistent(const store_msg *msg)
{
    return (msg->flags & STORE_MSG_PERSISTENT) != 0;
}

#endif
