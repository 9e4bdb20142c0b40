/*
 * A queue's paged-out tail (internal to store/; see store/spill.c): the ready messages that
 * arrived while the queue's in-memory window was full, oldest first, as records in chunk files
 * of the shard's spill directory. Not durable: a cache that the shard empties at start. A
 * persistent message's copy carries the one segment-log slot it owns, so the log keeps it alive
 * across a restart and the copy acks it when it goes.
 *
 * Ownership: one spill per queue, owned by the queue's ready structure, on the owner shard's
 * thread and heap. Push copies the message (the caller keeps its reference); pop hands out new
 * messages, one reference each.
 */
#ifndef RINGMQ_STORE_SPILL_H
#define RINGMQ_STORE_SPILL_H

#include <mimalloc.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/msg.h"

typedef struct store_spill store_spill;

typedef struct store_spill_config {
    int dir_fd;           /* the shard's spill directory (store_spill_dir_open); borrowed */
    uint64_t queue_id;    /* names the chunk files: unique among the shard's live queues */
    uint64_t chunk_bytes; /* a chunk is sealed once it holds this many bytes (tests use little) */
} store_spill_config;

/* DATA_DIR/spill/shard-N, created if missing and emptied (what a previous run left is stale).
 * Returns the directory's fd, or -1 with errno set. */
int store_spill_dir_open(const char *data_dir, uint32_t shard_id);

/* No file and no buffer until the first push. */
store_spill *store_spill_new(mi_heap_t *heap, const store_spill_config *config);
/* Removes the spill's files and frees it; the records go unread (no slot is released: see
 * store_spill_drop_all for that). */
void store_spill_free(store_spill *spill);

/* Appends a copy of msg (its bytes, flags, arrival time and publisher fields). slot, when not
 * NULL, is the segment-log slot this copy owns. Never fails: a disk that refuses the write
 * leaves the records in memory until a later flush gets them out. */
void store_spill_push(store_spill *spill, const store_msg *msg, const store_msg_slot *slot);

/* Receives each message read back, with its reference. */
typedef void store_spill_sink_fn(void *ctx, store_msg *msg);
/* Reads the oldest records back as messages on the spill's heap, in order, handing each to sink:
 * at least one (the spill must not be empty), at most count_max, and no more once the messages'
 * memory (header and bytes) reaches bytes_max. A copy with a slot comes back owning it
 * (log_slot, log_queues 1). Returns how many. */
uint32_t store_spill_pop_batch(store_spill *spill, uint32_t count_max, uint64_t bytes_max,
                               store_spill_sink_fn *sink, void *ctx);

/* Receives the slot of each dropped copy that owned one. */
typedef void store_spill_drop_fn(void *ctx, const store_msg_slot *slot);
/* Drops every record, calling drop (when not NULL) for each slot; records without slots are not
 * read. Returns how many records were dropped. */
uint64_t store_spill_drop_all(store_spill *spill, store_spill_drop_fn *drop, void *ctx);

uint64_t store_spill_count(const store_spill *spill);
uint64_t store_spill_bytes(const store_spill *spill); /* record bytes not yet read back */
uint64_t store_spill_files(const store_spill *spill); /* chunk files it holds now */

#endif
