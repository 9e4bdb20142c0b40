/*
 * AMQP framing over byte spans. amqp_frame_parse() is a pure function of
 * its input: it never copies, the payload it returns points into the span,
 * and it decides frame type and size from the 7-byte header alone, so an
 * oversized frame is refused before its payload is read. The one copy the
 * receive path makes is in the assembler, for the frame that straddles two
 * receive buffers; its buffer is the caller's and holds at most frame_max
 * bytes. Writers encode straight into the caller's output buffer.
 */
#include "net/amqp_frame.h"

#include <string.h>

#include "core/assert.h"
#include "core/limits.h"
#include "net/amqp_wire.h"

STATIC_ASSERT(LIMIT_FRAME_OVERHEAD_BYTES == AMQP_FRAME_HEADER_BYTES + 1, "frame overhead");
STATIC_ASSERT(sizeof(AMQP_PROTOCOL_HEADER) - 1 == AMQP_PROTOCOL_HEADER_BYTES, "protocol header");

enum { CONTENT_HEADER_FIXED_BYTES = 12 }; /* class-id, weight, body-size */

static ssize_t no_space(amqp_error *err)
{
    amqp_error_set(err, AMQP_REPLY_INTERNAL_ERROR, 0, 0, "no space");
    return -1;
}

ssize_t amqp_protocol_header_parse(const uint8_t *p, size_t len, amqp_error *err)
{
    ASSERT(p != NULL || len == 0);
    size_t n = len < AMQP_PROTOCOL_HEADER_BYTES ? len : AMQP_PROTOCOL_HEADER_BYTES;
    if (n > 0 && memcmp(p, AMQP_PROTOCOL_HEADER, n) != 0) {
        amqp_error_set(err, AMQP_REPLY_FRAME_ERROR, 0, 0, "bad protocol header");
        return -1;
    }
    ASSERT(n <= AMQP_PROTOCOL_HEADER_BYTES);
    return n == AMQP_PROTOCOL_HEADER_BYTES ? AMQP_PROTOCOL_HEADER_BYTES : 0;
}

/* Checks a 7-byte frame header and fills *out (payload still NULL). */
static bool frame_header_read(const uint8_t *p, uint32_t frame_max, amqp_frame *out,
                              amqp_error *err)
{
    ASSERT(p != NULL && out != NULL);
    ASSERT(frame_max >= LIMIT_FRAME_BYTES_MIN);
    uint8_t type = p[0];
    uint32_t payload_len = amqp_wire_get_u32(p + 3);
    switch (type) {
    case AMQP_FRAME_METHOD:
    case AMQP_FRAME_HEADER:
    case AMQP_FRAME_BODY:
        break;
    case AMQP_FRAME_HEARTBEAT:
        if (payload_len != 0)
            return amqp_error_set(err, AMQP_REPLY_FRAME_ERROR, 0, 0, "heartbeat with payload");
        break;
    default:
        return amqp_error_set(err, AMQP_REPLY_FRAME_ERROR, 0, 0, "unknown frame type");
    }
    if (payload_len > frame_max - LIMIT_FRAME_OVERHEAD_BYTES)
        return amqp_error_set(err, AMQP_REPLY_FRAME_ERROR, 0, 0, "frame larger than frame_max");
    out->type = type;
    out->channel = amqp_wire_get_u16(p + 1);
    out->payload_len = payload_len;
    out->payload = NULL;
    return true;
}

ssize_t amqp_frame_parse(const uint8_t *p, size_t len, uint32_t frame_max, amqp_frame *out,
                         amqp_error *err)
{
    ASSERT(p != NULL || len == 0);
    ASSERT(out != NULL);
    if (len < AMQP_FRAME_HEADER_BYTES) return 0;
    if (!frame_header_read(p, frame_max, out, err)) return -1;
    size_t frame_size = (size_t)out->payload_len + LIMIT_FRAME_OVERHEAD_BYTES;
    if (len < frame_size) return 0;
    if (p[frame_size - 1] != AMQP_FRAME_END) {
        amqp_error_set(err, AMQP_REPLY_FRAME_ERROR, 0, 0, "bad frame end octet");
        return -1;
    }
    out->payload = p + AMQP_FRAME_HEADER_BYTES;
    ASSERT(frame_size <= frame_max);
    return (ssize_t)frame_size;
}

/* ---- reassembly of straddling frames ---- */

void amqp_frame_assembler_init(amqp_frame_assembler *a, uint8_t *buf, size_t cap)
{
    ASSERT(a != NULL && buf != NULL);
    ASSERT(cap >= LIMIT_FRAME_BYTES_MIN && cap <= UINT32_MAX);
    a->buf = buf;
    a->cap = (uint32_t)cap;
    a->used = 0;
    a->frame_size = 0;
}

bool amqp_frame_assembler_busy(const amqp_frame_assembler *a)
{
    ASSERT(a != NULL);
    ASSERT(a->used <= a->cap);
    return a->used > 0;
}

void amqp_frame_assembler_reset(amqp_frame_assembler *a)
{
    ASSERT(a != NULL);
    ASSERT(a->buf != NULL);
    a->used = 0;
    a->frame_size = 0;
}

/* Copies up to `want` bytes of p[0..len) into the partial frame. */
static size_t assembler_take(amqp_frame_assembler *a, const uint8_t *p, size_t len, size_t want)
{
    size_t n = len < want ? len : want;
    ASSERT(a->used + n <= a->cap);
    if (n > 0) memcpy(a->buf + a->used, p, n);
    a->used += (uint32_t)n;
    return n;
}

ssize_t amqp_frame_assembler_feed(amqp_frame_assembler *a, const uint8_t *p, size_t len,
                                  uint32_t frame_max, amqp_frame *out, bool *complete,
                                  amqp_error *err)
{
    ASSERT(a != NULL && out != NULL && complete != NULL);
    ASSERT(a->cap >= frame_max);
    ASSERT(p != NULL || len == 0);
    *complete = false;
    size_t taken = 0;
    if (a->frame_size == 0) {
        taken = assembler_take(a, p, len, AMQP_FRAME_HEADER_BYTES - a->used);
        if (a->used < AMQP_FRAME_HEADER_BYTES) return (ssize_t)taken;
        if (!frame_header_read(a->buf, frame_max, out, err)) {
            amqp_frame_assembler_reset(a);
            return -1;
        }
        a->frame_size = out->payload_len + LIMIT_FRAME_OVERHEAD_BYTES;
    }
    taken += assembler_take(a, p + taken, len - taken, a->frame_size - a->used);
    if (a->used < a->frame_size) return (ssize_t)taken;
    ssize_t n = amqp_frame_parse(a->buf, a->used, frame_max, out, err);
    amqp_frame_assembler_reset(a);
    if (n < 0) return -1;
    ASSERT(n > 0 && out->payload == a->buf + AMQP_FRAME_HEADER_BYTES);
    *complete = true;
    return (ssize_t)taken;
}

/* ---- writers ---- */

void amqp_frame_put_header(uint8_t *out, uint8_t type, uint16_t channel, uint32_t payload_len)
{
    ASSERT(out != NULL);
    ASSERT(type == AMQP_FRAME_METHOD || type == AMQP_FRAME_HEADER || type == AMQP_FRAME_BODY ||
           type == AMQP_FRAME_HEARTBEAT);
    out[0] = type;
    amqp_wire_put_u16(out + 1, channel);
    amqp_wire_put_u32(out + 3, payload_len);
}

ssize_t amqp_frame_write_method(uint8_t *out, size_t cap, uint16_t channel, const amqp_method *m,
                                amqp_error *err)
{
    ASSERT(out != NULL || cap == 0);
    ASSERT(m != NULL);
    if (cap < LIMIT_FRAME_OVERHEAD_BYTES) return no_space(err);
    ssize_t n =
        amqp_method_encode(m, out + AMQP_FRAME_HEADER_BYTES, cap - LIMIT_FRAME_OVERHEAD_BYTES, err);
    if (n < 0) return -1;
    ASSERT((size_t)n <= UINT32_MAX);
    amqp_frame_put_header(out, AMQP_FRAME_METHOD, channel, (uint32_t)n);
    out[AMQP_FRAME_HEADER_BYTES + n] = AMQP_FRAME_END;
    return n + LIMIT_FRAME_OVERHEAD_BYTES;
}

ssize_t amqp_frame_write_heartbeat(uint8_t *out, size_t cap, amqp_error *err)
{
    ASSERT(out != NULL || cap == 0);
    if (cap < LIMIT_FRAME_OVERHEAD_BYTES) return no_space(err);
    amqp_frame_put_header(out, AMQP_FRAME_HEARTBEAT, 0, 0);
    out[AMQP_FRAME_HEADER_BYTES] = AMQP_FRAME_END;
    return LIMIT_FRAME_OVERHEAD_BYTES;
}

size_t amqp_frame_content_size(uint32_t frame_max, size_t props_raw_len, uint64_t body_len)
{
    ASSERT(frame_max >= LIMIT_FRAME_BYTES_MIN);
    ASSERT(props_raw_len >= 2);
    uint64_t chunk = frame_max - LIMIT_FRAME_OVERHEAD_BYTES;
    uint64_t body_frames = (body_len + chunk - 1) / chunk;
    return LIMIT_FRAME_OVERHEAD_BYTES + CONTENT_HEADER_FIXED_BYTES + props_raw_len +
           body_frames * LIMIT_FRAME_OVERHEAD_BYTES + body_len;
}

ssize_t amqp_frame_write_content(uint8_t *out, size_t cap, uint16_t channel, uint32_t frame_max,
                                 uint16_t class_id, amqp_bytes props_raw, const uint8_t *body,
                                 uint64_t body_len, amqp_error *err)
{
    ASSERT(out != NULL || cap == 0);
    ASSERT(body != NULL || body_len == 0);
    ASSERT(props_raw.data != NULL && props_raw.len >= 2);
    size_t header_payload = CONTENT_HEADER_FIXED_BYTES + (size_t)props_raw.len;
    if (header_payload > frame_max - LIMIT_FRAME_OVERHEAD_BYTES) {
        amqp_error_set(err, AMQP_REPLY_FRAME_ERROR, class_id, 0,
                       "content header larger than frame_max");
        return -1;
    }
    size_t total = amqp_frame_content_size(frame_max, props_raw.len, body_len);
    if (cap < total) return no_space(err);
    uint8_t *p = out;
    amqp_frame_put_header(p, AMQP_FRAME_HEADER, channel, (uint32_t)header_payload);
    p += AMQP_FRAME_HEADER_BYTES;
    amqp_wire_put_u16(p, class_id);
    amqp_wire_put_u16(p + 2, 0); /* weight */
    amqp_wire_put_u64(p + 4, body_len);
    memcpy(p + CONTENT_HEADER_FIXED_BYTES, props_raw.data, props_raw.len);
    p += header_payload;
    *p++ = AMQP_FRAME_END;
    uint64_t chunk_max = frame_max - LIMIT_FRAME_OVERHEAD_BYTES;
    for (uint64_t off = 0; off < body_len;) {
        uint32_t chunk = (uint32_t)(body_len - off < chunk_max ? body_len - off : chunk_max);
        amqp_frame_put_header(p, AMQP_FRAME_BODY, channel, chunk);
        memcpy(p + AMQP_FRAME_HEADER_BYTES, body + off, chunk);
        p += AMQP_FRAME_HEADER_BYTES + chunk;
        *p++ = AMQP_FRAME_END;
        off += chunk;
    }
    ASSERT((size_t)(p - out) == total);
    return (ssize_t)total;
}
