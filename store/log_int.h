/*
 * The segment log's private types, shared by store/log.c (appends, group commit, acks, segment
 * life) and store/log_open.c (directory scan and recovery). Nothing outside those two files
 * includes this header; the interface is store/log.h.
 *
 * The write stream: the active buffer holds, from a block-aligned start, the bytes the next flush
 * writes. It is a list of extents, one per segment the bytes go to, each starting at a block-
 * aligned buffer offset and a block-aligned file offset; the first one begins with the carried
 * head of the current segment's last partial block (already written once, zero-padded, and
 * rewritten now with what follows). Invariant: the active buffer's last extent is the current
 * segment's, and its file_offset + bytes is that segment's end. The other buffer is the one a
 * flush in flight writes from; nothing touches it until store_log_flush_end.
 */
#ifndef RINGMQ_STORE_LOG_INT_H
#define RINGMQ_STORE_LOG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"
#include "store/log.h"

#define STORE_LOG__MSG_FIXED_BYTES  8u  /* u32 first_slot, u16 queue_count, u16 reserved */
#define STORE_LOG__NAME_BYTES       32u /* "%016llx.seg" and its NUL, with room to spare */
#define STORE_LOG__ACK_MAGIC        0x31304b4341514d52ull /* "RMQACK01" little-endian */
#define STORE_LOG__ACK_HEADER_BYTES 32u           /* magic, segment, slots, reserved, checksum */
#define STORE_LOG__ACK_SEED         0x61636b73ull /* "acks": seed of the ack header's checksum */

STATIC_ASSERT(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "queue ids and ack bitmaps are written from memory as little-endian words");

typedef struct store_log_segment {
    uint64_t number;
    uint64_t file_bytes; /* allocated size of the .seg file */
    uint64_t end;        /* bytes of records: where the next record goes while current */
    uint64_t *acked;     /* one bit per slot, words of 64 */
    uint32_t acked_words;
    uint32_t slots; /* first_slot + queue_count of the last record, i.e. the next slot */
    uint32_t live;  /* slots of readable records that are not acked */
    int fd;         /* -1 once no write will go to it (sealed and unreferenced, or recovered) */
    bool sealed;    /* no more appends: every segment but the current one */
    bool unsynced;  /* a write without fdatasync was started since the last synced one */
    bool ack_dirty; /* acks not yet written by store_log_checkpoint */
    bool ack_file;  /* an ack file may exist on disk */
    bool damaged;   /* recovery could not read all of it: never deleted, for the operator */
} store_log_segment;

typedef struct store_log_extent {
    store_log_segment *seg;
    uint64_t file_offset; /* block-aligned */
    size_t buf_offset;    /* block-aligned */
    uint32_t bytes;       /* carried head + records */
    uint64_t seq_last;    /* the last record in it; 0 when it holds only carried bytes */
    bool needs_sync;      /* a record appended with needs_sync */
} store_log_extent;

typedef struct store_log_buffer {
    uint8_t *base;   /* block-aligned, capacity bytes */
    size_t capacity; /* a multiple of the block */
    size_t used;
    store_log_extent *extents;
    uint32_t extent_count, extent_capacity;
} store_log_buffer;

struct store_log {
    char *dir;
    int dir_fd;
    uint32_t shard_id;
    uint64_t segment_bytes;
    bool direct_io;
    bool failed;
    bool full; /* the last segment roll found no space (ENOSPC, EDQUOT): appends refused until store_log_retry */
    bool in_flight;
    bool dir_dirty; /* unlinks not yet made durable by a directory fsync */
    bool ack_warned;
    store_log_segment **segments; /* sorted by number; the last is the current one */
    uint32_t segment_count, segment_capacity;
    store_log_segment *current;
    store_log_buffer buffers[2];
    uint32_t active;     /* index of the buffer appends go to */
    store_log_io flight; /* what the flush in flight writes, as flush_begin described it */
    uint64_t seq_last;   /* the last sequence number given out */
    uint64_t written_seq;
    uint64_t durable_seq;
    uint64_t live_slots;
    store_log_stats stats;
};

/* "%016llx.<ext>" into out (STORE_LOG__NAME_BYTES). */
void store_log__name(char *out, uint64_t number, const char *ext);
/* The log fails once: logs why and refuses appends and flushes from now on. */
void store_log__fail(store_log *log, int err, const char *what);
/* fsync of the log directory; 0 or -errno (a filesystem without directory fsync counts as 0). */
int store_log__sync_dir(store_log *log);
/* Inserts a segment struct for number into log->segments (sorted). NULL when out of memory. */
store_log_segment *store_log__segment_add(store_log *log, uint64_t number);
/* Creates and preallocates segment file number (above every existing one) and registers it;
 * the directory is fsynced before it returns. NULL with errno set. */
store_log_segment *store_log__segment_create(store_log *log, uint64_t number, uint64_t file_bytes);
/* Closes a sealed segment's fd once no buffer references it, and deletes it once nothing is
 * live in it. seg may be freed. */
void store_log__settle(store_log *log, store_log_segment *seg);
/* Makes the ack bitmap hold slots bits. false when out of memory. */
bool store_log__acked_reserve(store_log_segment *seg, uint32_t slots);
/* Sets an ack bit; returns whether it was clear. */
bool store_log__acked_set(store_log_segment *seg, uint32_t slot);
static inline bool store_log__acked_get(const store_log_segment *seg, uint32_t slot)
{
    return slot / 64 < seg->acked_words && ((seg->acked[slot / 64] >> (slot % 64)) & 1u) != 0;
}
/* Frees everything, closing every fd. */
void store_log__free(store_log *log);
/* pwrite of all bytes (EINTR and short writes retried); 0 or -errno. */
int store_log__pwrite_all(int fd, const void *buf, size_t bytes, uint64_t offset);
/* fdatasync; 0 or -errno. */
int store_log__fdatasync(int fd);
/* Sets up the write buffers for appends to log->current (after open). false when out of memory. */
bool store_log__buffers_init(store_log *log);

static inline uint64_t store_log__round_up(uint64_t bytes)
{
    return (bytes + LIMIT_LOG_BLOCK_BYTES - 1) & ~(uint64_t)(LIMIT_LOG_BLOCK_BYTES - 1);
}

#endif
