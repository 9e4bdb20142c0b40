/*
 * Record framing (see store/record.h). The checksum covers everything after itself, so a flipped
 * bit anywhere in the header or the payload is caught; padding is not covered (it is never read).
 * A header of 24 zero bytes is the end of written data: preallocated segment space is zeros, and a
 * real record never has kind 0.
 */
#include "store/record.h"

#include <string.h>
#include <xxhash.h>

STATIC_ASSERT(STORE_RECORD_HEADER_BYTES % STORE_RECORD_ALIGN_BYTES == 0, "header keeps alignment");

static uint64_t record_checksum(const uint8_t *rec, uint32_t payload_bytes)
{
    return XXH3_64bits_withSeed(rec + 8, STORE_RECORD_HEADER_BYTES - 8 + (size_t)payload_bytes,
                                STORE_RECORD_SEED);
}

uint32_t store_record_write(uint8_t *dst, uint8_t kind, uint8_t flags, uint64_t seq,
                            const struct iovec *iov, int iov_count)
{
    ASSERT(dst != NULL && ((uintptr_t)dst % STORE_RECORD_ALIGN_BYTES) == 0);
    ASSERT(kind >= 1 && kind <= STORE_RECORD_KIND_MAX);
    ASSERT(iov_count >= 0 && (iov_count == 0 || iov != NULL));
    uint64_t payload_bytes = 0;
    uint8_t *p = dst + STORE_RECORD_HEADER_BYTES;
    for (int i = 0; i < iov_count; i++) {
        if (iov[i].iov_len > 0) memcpy(p + payload_bytes, iov[i].iov_base, iov[i].iov_len);
        payload_bytes += iov[i].iov_len;
    }
    ASSERT(payload_bytes <= UINT32_MAX - 2 * STORE_RECORD_HEADER_BYTES);
    uint32_t total = store_record_bytes((uint32_t)payload_bytes);
    memset(p + payload_bytes, 0, total - STORE_RECORD_HEADER_BYTES - payload_bytes);
    store_put_u32(dst + 8, (uint32_t)payload_bytes);
    dst[12] = kind;
    dst[13] = flags;
    store_put_u16(dst + 14, STORE_RECORD_VERSION);
    store_put_u64(dst + 16, seq);
    store_put_u64(dst, record_checksum(dst, (uint32_t)payload_bytes));
    return total;
}

static bool record_all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0) return false;
    return true;
}

store_record_status store_record_read(const uint8_t *src, size_t avail, uint32_t payload_bytes_max,
                                      store_record_view *out)
{
    ASSERT(src != NULL || avail == 0);
    ASSERT(out != NULL);
    if (avail < STORE_RECORD_HEADER_BYTES) {
        return record_all_zero(src, avail) ? STORE_RECORD_END : STORE_RECORD_TRUNCATED;
    }
    if (record_all_zero(src, STORE_RECORD_HEADER_BYTES)) return STORE_RECORD_END;
    uint32_t payload_bytes = store_get_u32(src + 8);
    uint8_t kind = src[12];
    if (kind == 0 || kind > STORE_RECORD_KIND_MAX ||
        store_get_u16(src + 14) != STORE_RECORD_VERSION || payload_bytes > payload_bytes_max)
        return STORE_RECORD_CORRUPT;
    uint32_t total = store_record_bytes(payload_bytes);
    if (avail < total) return STORE_RECORD_TRUNCATED;
    if (store_get_u64(src) != record_checksum(src, payload_bytes)) return STORE_RECORD_CORRUPT;
    *out = (store_record_view){
        .kind = kind,
        .flags = src[13],
        .seq = store_get_u64(src + 16),
        .payload = src + STORE_RECORD_HEADER_BYTES,
        .payload_bytes = payload_bytes,
        .record_bytes = total,
    };
    return STORE_RECORD_OK;
}
