/*
 * The framing of every record ringmq writes to disk: the per-shard segment log (store/log.h) and
 * the definitions journal (store/defs.h). A record is a 24-byte header and a payload, padded with
 * zeros to a multiple of 8 bytes, little-endian:
 *
 *   u64 checksum       XXH3-64 (seed STORE_RECORD_SEED) of bytes 8 .. 24 + payload_bytes
 *   u32 payload_bytes
 *   u8  kind           STORE_RECORD_* (never 0: a zero header marks the end of written data)
 *   u8  flags          kind-specific
 *   u16 version        STORE_RECORD_VERSION
 *   u64 seq            the writer's sequence number, strictly increasing within one file stream
 *
 * Records are self-describing and sequence-numbered so that a reader (recovery, later a replica)
 * needs nothing but the bytes. store_record_read is a pure function over a byte span: it tells a
 * clean end (zeros), a record cut short (a torn tail) and a corrupt record apart.
 */
#ifndef RINGMQ_STORE_RECORD_H
#define RINGMQ_STORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/assert.h"

#define STORE_RECORD_HEADER_BYTES 24u
#define STORE_RECORD_ALIGN_BYTES  8u
#define STORE_RECORD_VERSION      1u
#define STORE_RECORD_SEED         0x72696e676d71ull /* "ringmq" */

/* Record kinds. New kinds get new numbers; a number is never reused. */
enum {
    STORE_RECORD_MSG = 1, /* a message and the durable queues it was routed to (store/log) */
    STORE_RECORD_DEF = 2, /* a definition change or snapshot entry (store/defs) */
    STORE_RECORD_PAD = 3, /* filler to the end of a segment; payload is zeros */
    STORE_RECORD_KIND_MAX = 3,
};

typedef enum store_record_status {
    STORE_RECORD_OK,        /* a whole, valid record */
    STORE_RECORD_END,       /* a zero header: nothing was written here */
    STORE_RECORD_TRUNCATED, /* the span ends inside the record: a torn tail if at the end of data */
    STORE_RECORD_CORRUPT,   /* checksum, kind, version or length wrong */
} store_record_status;

typedef struct store_record_view {
    uint8_t kind;
    uint8_t flags;
    uint64_t seq;
    const uint8_t *payload; /* points into the span given to store_record_read */
    uint32_t payload_bytes;
    uint32_t record_bytes; /* header + payload + padding: the offset of the next record */
} store_record_view;

static inline uint32_t store_record_bytes(uint32_t payload_bytes)
{
    uint64_t total = (uint64_t)STORE_RECORD_HEADER_BYTES + payload_bytes;
    total = (total + STORE_RECORD_ALIGN_BYTES - 1) & ~(uint64_t)(STORE_RECORD_ALIGN_BYTES - 1);
    ASSERT(total <= UINT32_MAX);
    return (uint32_t)total;
}

/* Writes one record at dst (store_record_bytes(sum of iov lengths) bytes, dst 8-byte aligned) and
 * returns its size. kind in 1 .. STORE_RECORD_KIND_MAX. */
uint32_t store_record_write(uint8_t *dst, uint8_t kind, uint8_t flags, uint64_t seq,
                            const struct iovec *iov, int iov_count);

/* Reads the record at the start of src[0 .. avail). payload_bytes_max bounds a plausible length
 * (a larger one is CORRUPT, not TRUNCATED, so garbage cannot make a reader wait for gigabytes). */
store_record_status store_record_read(const uint8_t *src, size_t avail, uint32_t payload_bytes_max,
                                      store_record_view *out);

/* Little-endian field access for payload codecs. */
static inline void store_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8);
}
static inline void store_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void store_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t store_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t store_get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static inline uint64_t store_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

#endif
