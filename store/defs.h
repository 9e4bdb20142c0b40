/*
 * The definitions journal: durable exchanges, queues and bindings, so that a restart rebuilds
 * exactly what was declared (docs/ARCHITECTURE.md, "Durable definitions").
 *
 * One file, DIR/definitions.log, of store/record.h records of kind STORE_RECORD_DEF, each one
 * change (below). Replaying the records in order gives the live set; a store_defs holds that live
 * set in memory, in creation order, and keeps it equal to what the file replays to.
 *
 *   - store_defs_open reads the file once (checksums verified; a torn tail is truncated; a corrupt
 *     record in the middle is skipped and logged; a leftover definitions.log.tmp from a compaction
 *     cut short is removed).
 *   - store_defs_commit applies changes to the live set and appends them durably (pwrite, then
 *     fdatasync) before it returns. The first write creates the file and fsyncs the directory.
 *   - When the file holds more than twice the records of the live set (and at least a minimum),
 *     a commit compacts it: a snapshot of the live set goes to definitions.log.tmp, is fsynced, is
 *     renamed over definitions.log, and the directory is fsynced.
 *
 * The journal does blocking I/O and is not thread-safe: the runtime's main thread opens it before
 * the shards start, every shard reads the live set (store_defs_each) while it builds its replica
 * before the start barrier, and from then on only shard 0 (the topology sequencer) commits.
 *
 * The live set is kept consistent the way the routing replica is: deleting an exchange deletes
 * the bindings it is the source or destination of, deleting a queue deletes the bindings to it.
 * Auto-delete cascades are not inferred: the caller commits each deleted exchange explicitly.
 * Bindings are identified by (vhost, source, destination kind, destination, routing key,
 * arguments bytes): the caller writes binding arguments in one canonical order.
 */
#ifndef RINGMQ_STORE_DEFS_H
#define RINGMQ_STORE_DEFS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/limits.h"
#include "net/amqp_types.h"

typedef struct store_defs store_defs;

/* A change, as committed and as recorded. Numbers are on disk: never reuse one. */
typedef enum store_defs_op {
    STORE_DEFS_EXCHANGE_DECLARE = 1, /* a new exchange, or new properties for an existing one */
    STORE_DEFS_EXCHANGE_DELETE = 2,
    STORE_DEFS_QUEUE_DECLARE = 3, /* a new queue, or new properties (owner shard) for one */
    STORE_DEFS_QUEUE_DELETE = 4,
    STORE_DEFS_BIND = 5,
    STORE_DEFS_UNBIND = 6,
    STORE_DEFS_QUEUE_IDS = 7, /* queue ids below queue_id are taken: never hand them out again */
    STORE_DEFS_OP_MAX = 7,
} store_defs_op;

/* Slices are borrowed: commit copies them. Unused fields are zero / empty. */
typedef struct store_defs_change {
    store_defs_op op;
    amqp_bytes vhost;
    amqp_bytes name;        /* exchange or queue; the source exchange of a binding */
    amqp_bytes destination; /* binding: queue or exchange name */
    amqp_bytes routing_key; /* binding */
    amqp_bytes type;        /* exchange: "direct", "fanout", "topic", "headers" */
    amqp_bytes arguments;   /* field table entries (no length prefix), as declared or bound */
    bool destination_is_exchange;
    bool durable, auto_delete, internal;
    uint64_t queue_id;    /* queue declare/delete; QUEUE_IDS: the first id not taken */
    uint32_t queue_shard; /* queue declare: the owner shard */
} store_defs_change;

typedef struct store_defs_error {
    char text[320];
} store_defs_error;

typedef struct store_defs_config {
    const char *dir;              /* the data directory; must exist */
    uint32_t compact_records_min; /* 0: LIMIT_DEFS_COMPACT_RECORDS_MIN (tests use small ones) */
} store_defs_config;

/* What store_defs_open found, for logs and tests. */
typedef struct store_defs_load_stats {
    uint64_t records;         /* whole, valid records replayed */
    uint64_t corrupt_regions; /* skipped stretches between valid records */
    uint64_t corrupt_bytes;
    uint64_t torn_bytes;      /* cut off the end */
    uint64_t rejected;        /* valid records whose change made no sense (logged, ignored) */
    bool tmp_removed;         /* a definitions.log.tmp was left over and removed */
} store_defs_load_stats;

/* Reads DIR/definitions.log (a missing file is an empty journal). NULL and err on an I/O error
 * the broker must not start with (the caller refuses to start rather than lose definitions). */
store_defs *store_defs_open(const store_defs_config *cfg, store_defs_error *err);
void store_defs_close(store_defs *d);
const store_defs_load_stats *store_defs_stats(const store_defs *d);

/*
 * Applies changes[0 .. count) to the live set and makes them durable before returning. All
 * fit one write and one fdatasync. On failure (err says why) the file is cut back to its last
 * good record and the next commit rewrites it whole; declares and binds of this call are taken
 * back out of the live set, deletes stay applied (the caller cannot undo them either) and become
 * durable with the next successful write. A call's deletes are applied before its declares and
 * binds, so one call never declares and deletes the same thing; its slices must not point into
 * the live set (store_defs_each's): copy them first.
 */
bool store_defs_commit(store_defs *d, const store_defs_change *changes, uint32_t count,
                       store_defs_error *err);
/* Rewrites the file as a snapshot of the live set (tmp, fsync, rename, fsync dir). */
bool store_defs_compact(store_defs *d, store_defs_error *err);

/* The live set: exchanges, then queues, then bindings, each in the order they were created. def
 * is a declare or a bind; its slices live until the next commit. */
typedef void store_defs_visit_fn(void *ctx, const store_defs_change *def);
void store_defs_each(const store_defs *d, store_defs_visit_fn *fn, void *ctx);

uint32_t store_defs_live_count(const store_defs *d);
uint64_t store_defs_file_records(const store_defs *d); /* records in the file now */
/* One past every queue id ever recorded or reserved: where the sequencer continues. */
uint64_t store_defs_queue_id_next(const store_defs *d);

/* Tests: the next write fails with this errno as if the disk said so (0: no injection). */
void store_defs__fail_next_write(store_defs *d, int err_no);

#endif
