/*
 * The per-shard append-only segment log (see docs/ARCHITECTURE.md, "The segment log"). One log
 * per shard, owned by that shard's thread; nothing here is thread-safe. The log knows records and
 * slots, not queues or AMQP: the caller encodes the message bytes and keeps, for every queued
 * copy of a persistent message, the store_log_pos it was given.
 *
 * Files, in the shard's directory: segments "%016llx.seg" (the segment number, never reused),
 * preallocated to segment_bytes; each segment's ack bitmap "%016llx.ack", written lazily by
 * store_log_checkpoint. A segment holds records back to back from offset 0 (store/record.h); the
 * zeros after the last record end it. A record larger than segment_bytes gets a segment of its own
 * that is as large as it needs.
 *
 * Slots: every STORE_RECORD_MSG record has one slot per target queue; slots are numbered per
 * segment from 0 in append order, and the record stores its first slot, so a skipped corrupt
 * record does not shift the numbering. Acking a slot is store_log_ack. A segment's live count is
 * its slots minus its acked slots; a sealed segment (not the one being appended to) whose live
 * count reaches zero is deleted, with its ack file.
 *
 * Group commit: appends only copy into the log's write buffer. Once per turn the shard calls
 * store_log_flush_begin; if it returns true, the shard submits io.op_count writes (each followed,
 * when op.sync is set, by a linked fdatasync of op.fd) and, when every one completed, calls
 * store_log_flush_end with the results. At most one flush is in flight. A record appended with
 * needs_sync makes its flush sync. store_log_durable_seq then covers it.
 */
#ifndef RINGMQ_STORE_LOG_H
#define RINGMQ_STORE_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "store/record.h"

typedef struct store_log store_log;

typedef struct store_log_config {
    const char *dir;   /* the shard's log directory; created (with parents' fsync) if missing */
    uint32_t shard_id; /* for log lines only */
    uint64_t segment_bytes; /* a multiple of 4096, >= 1 MiB (tests may use 64 KiB) */
    bool direct_io; /* try O_DIRECT; the log falls back to buffered I/O when the filesystem refuses
                     */
} store_log_config;

/* Where a record lives. slot is the first of the record's slots (MSG records only). */
typedef struct store_log_pos {
    uint64_t segment;
    uint32_t offset; /* bytes from the start of the segment file */
    uint32_t slot;
} store_log_pos;

/* A MSG record as recovery reports it. The payload is queue_count little-endian u64 queue ids
 * followed by the caller's message bytes. */
typedef struct store_log_msg_view {
    store_log_pos pos;
    uint64_t seq;
    uint16_t queue_count;
    const uint8_t *queue_ids; /* queue_count * 8 bytes, little-endian u64 each */
    const uint8_t *body;      /* the caller's message bytes */
    uint32_t body_bytes;
} store_log_msg_view;

/* Called once per live (not acked) slot found at open, in log order: queue_index selects the
 * queue id within the record (slot = view->pos.slot + queue_index). The callback returns false
 * when it does not want the slot (its queue is gone); the log then acks it. Pointers are valid
 * only during the call. */
typedef bool store_log_replay_fn(void *ctx, const store_log_msg_view *view, uint16_t queue_index);

typedef struct store_log_open_stats {
    uint64_t segments;        /* segment files found */
    uint64_t records;         /* valid records read */
    uint64_t live_slots;      /* slots handed to the replay callback */
    uint64_t corrupt_records; /* skipped in the middle of a segment (logged) */
    uint64_t torn_bytes;      /* cut from the tail of the newest segment */
    uint64_t bytes_read;
    uint64_t seq_last; /* the highest sequence number found, 0 when empty */
    bool direct_io;    /* O_DIRECT in use */
} store_log_open_stats;

/* Opens (creating if needed) and recovers the log: replays every segment in order, verifies
 * checksums, truncates a torn tail, skips and logs a corrupt record in the middle, loads the ack
 * bitmaps, deletes segments with nothing live, and starts a fresh segment for new appends. NULL
 * with errno set when the directory or a file cannot be used (the broker refuses to start). */
store_log *store_log_open(const store_log_config *config, store_log_replay_fn *replay, void *ctx,
                          store_log_open_stats *stats);
/* Flushes nothing: the caller runs store_log_flush_sync first if it wants the tail written. */
void store_log_close(store_log *log);

/* Appends a MSG record: queue_count (1 .. LIMIT_PUBLISH_QUEUES_MAX) target queue ids and the
 * message bytes (at most LIMIT_LOG_BODY_IOVS_MAX iovecs; the record's payload at most
 * LIMIT_LOG_PAYLOAD_BYTES_MAX). Returns false, appending nothing, when the write buffer is full
 * while a flush is in flight (the caller retries after store_log_flush_end) or the log is failed
 * (or, rarely, when no memory can be had for a huge record). A segment roll creates the next file
 * here, synchronously. */
bool store_log_append_msg(store_log *log, const uint64_t *queue_ids, uint16_t queue_count,
                          const struct iovec *body, int body_iov_count, bool needs_sync,
                          store_log_pos *pos_out, uint64_t *seq_out);

/* Marks one slot acked (idempotent). May delete a sealed segment whose live count drops to 0. */
void store_log_ack(store_log *log, store_log_pos pos, uint16_t queue_index);

#define STORE_LOG_IO_OPS_MAX 2 /* a batch that crosses into a new segment writes two files */

typedef struct store_log_io_op {
    int fd;
    const void *buf; /* aligned to 4096 when the log uses O_DIRECT */
    uint32_t bytes;
    uint64_t offset;
    bool sync; /* follow the write with a linked fdatasync of fd */
} store_log_io_op;

typedef struct store_log_io {
    store_log_io_op ops[STORE_LOG_IO_OPS_MAX];
    uint32_t op_count;
    uint64_t seq_last; /* the last record this flush carries */
    bool sync;         /* whether the last op syncs */
} store_log_io;

/* Describes the next flush, or returns false when nothing is pending or a flush is in flight. The
 * buffers stay valid and untouched until store_log_flush_end. */
bool store_log_flush_begin(store_log *log, store_log_io *io);
/* results[i]: bytes written (or -errno) of op i; sync_results[i]: 0 or -errno of its fdatasync
 * (ignored when !op.sync). Returns 0, or the first -errno; after an error the log is failed: every
 * later append returns false and durable_seq no longer moves (the caller nacks what waits on it).
 */
int store_log_flush_end(store_log *log, const store_log_io *io, const int *results,
                        const int *sync_results);
/* Writes (pwrite) and syncs (fdatasync) everything pending, synchronously: for tests and shutdown.
 */
int store_log_flush_sync(store_log *log);

/* Both start at the open's seq_last: recovered records are on disk (and synced by the open). */
uint64_t store_log_written_seq(const store_log *log); /* last record whose write completed */
uint64_t store_log_durable_seq(const store_log *log); /* last record whose fdatasync completed */
bool store_log_failed(const store_log *log);
/* Disk full: the last segment roll found no space (ENOSPC, EDQUOT). Appends return false, nothing
 * is lost; store_log_retry tries to start the next segment and returns true once appends may
 * resume. A full log is not failed: what was written stays readable and acks go on. */
bool store_log_full(const store_log *log);
bool store_log_retry(store_log *log);

/* Writes the dirty ack bitmaps (pwrite, no fsync: a lost ack is a redelivery, never a loss). */
void store_log_checkpoint(store_log *log);

typedef struct store_log_stats {
    uint64_t segments;   /* segment files on disk */
    uint64_t disk_bytes; /* their allocated size */
    uint64_t live_slots; /* unacked slots, all segments */
    uint64_t appended_records;
    uint64_t flushes;
    uint64_t syncs; /* fdatasyncs completed */
    uint64_t segments_deleted;
} store_log_stats;

void store_log_stats_get(const store_log *log, store_log_stats *out);

#endif
