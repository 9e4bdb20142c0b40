/*
 * libFuzzer target for frame splitting (net/amqp_frame.c). The first input
 * byte seeds the chunk sizes; the rest is a byte stream. The stream is
 * parsed twice: whole, in place with amqp_frame_parse(), and as a sequence
 * of receive buffers (exact-size heap copies, so ASan sees any read past a
 * buffer) driven the way amqp_frame.h documents, the assembler taking the
 * frames that straddle buffers. Both must see the same frames and stop on
 * the same outcome: the bytes consumed add up, each frame's payload lies
 * inside its span and ends with the frame-end octet, and the assembler
 * never takes a byte past the frame it holds.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "net/amqp_frame.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { FRAMES_MAX = 4096 };
static const uint32_t frame_max = LIMIT_FRAME_BYTES_MIN; /* small: oversize is reachable */

typedef struct frame_seen {
    uint8_t type;
    uint16_t channel;
    uint32_t payload_len;
    size_t offset; /* of the frame in the whole stream */
} frame_seen;

typedef struct outcome {
    frame_seen frames[FRAMES_MAX];
    size_t count;
    size_t consumed; /* bytes of whole frames */
    bool failed;     /* a frame error stopped the stream */
} outcome;

static outcome whole, split;

/* Checks one frame found at stream offset `at` against the stream itself. */
static void frame_check(const uint8_t *stream, size_t stream_len, size_t at, const amqp_frame *f,
                        outcome *o)
{
    FUZZ_CHECK(f->payload != NULL);
    FUZZ_CHECK(f->payload_len <= frame_max - LIMIT_FRAME_OVERHEAD_BYTES);
    FUZZ_CHECK(at + f->payload_len + LIMIT_FRAME_OVERHEAD_BYTES <= stream_len);
    FUZZ_CHECK(stream[at] == f->type);
    FUZZ_CHECK(memcmp(f->payload, stream + at + AMQP_FRAME_HEADER_BYTES, f->payload_len) == 0);
    FUZZ_CHECK(stream[at + AMQP_FRAME_HEADER_BYTES + f->payload_len] == AMQP_FRAME_END);
    FUZZ_CHECK(f->type != AMQP_FRAME_HEARTBEAT || f->payload_len == 0);
    FUZZ_CHECK(o->count < FRAMES_MAX);
    o->frames[o->count++] = (frame_seen){f->type, f->channel, f->payload_len, at};
    o->consumed += f->payload_len + LIMIT_FRAME_OVERHEAD_BYTES;
}

static void parse_whole(const uint8_t *stream, size_t len)
{
    whole.count = whole.consumed = 0;
    whole.failed = false;
    uint8_t *copy = fuzz_dup(stream, len);
    size_t off = 0;
    for (;;) {
        amqp_frame f;
        amqp_error err;
        ssize_t n = amqp_frame_parse(copy + off, len - off, frame_max, &f, &err);
        if (n < 0) {
            FUZZ_CHECK(err.reply_code == AMQP_REPLY_FRAME_ERROR);
            whole.failed = true;
            break;
        }
        if (n == 0) {
            FUZZ_CHECK(len - off < (size_t)f.payload_len + LIMIT_FRAME_OVERHEAD_BYTES ||
                       len - off < AMQP_FRAME_HEADER_BYTES);
            break;
        }
        FUZZ_CHECK((size_t)n == f.payload_len + LIMIT_FRAME_OVERHEAD_BYTES);
        FUZZ_CHECK((size_t)n <= len - off);
        FUZZ_CHECK(f.payload == copy + off + AMQP_FRAME_HEADER_BYTES);
        frame_check(stream, len, off, &f, &whole);
        off += (size_t)n;
        FUZZ_CHECK(off == whole.consumed);
    }
    free(copy);
}

/* Feeds one receive buffer as amqp_frame.h's usage block does. Returns
 * false once a frame error has stopped the stream. */
static bool feed_buffer(amqp_frame_assembler *a, const uint8_t *stream, size_t stream_len,
                        size_t buf_at, const uint8_t *buf, size_t len)
{
    size_t off = 0;
    amqp_frame f;
    amqp_error err;
    bool done;
    if (amqp_frame_assembler_busy(a)) {
        size_t held = a->used;
        ssize_t n = amqp_frame_assembler_feed(a, buf, len, frame_max, &f, &done, &err);
        if (n < 0) return false;
        FUZZ_CHECK((size_t)n <= len);
        FUZZ_CHECK(done || (size_t)n == len);
        if (done) frame_check(stream, stream_len, buf_at - held, &f, &split);
        off = (size_t)n;
    }
    ssize_t n = 0;
    while (off < len) {
        n = amqp_frame_parse(buf + off, len - off, frame_max, &f, &err);
        if (n < 0) return false;
        if (n == 0) break;
        FUZZ_CHECK(f.payload >= buf && f.payload + f.payload_len < buf + len);
        frame_check(stream, stream_len, buf_at + off, &f, &split);
        off += (size_t)n;
    }
    if (off < len) {
        FUZZ_CHECK(!amqp_frame_assembler_busy(a));
        ssize_t m = amqp_frame_assembler_feed(a, buf + off, len - off, frame_max, &f, &done, &err);
        if (m < 0) return false;
        FUZZ_CHECK(!done && (size_t)m == len - off);
        FUZZ_CHECK(a->used == len - off);
    }
    return true;
}

static void parse_split(const uint8_t *stream, size_t len, uint8_t seed)
{
    split.count = split.consumed = 0;
    split.failed = false;
    uint8_t *abuf = malloc(frame_max);
    FUZZ_CHECK(abuf != NULL);
    amqp_frame_assembler a;
    amqp_frame_assembler_init(&a, abuf, frame_max);
    uint32_t rng = seed * 2654435761u + 1;
    size_t stride_max = 1 + (seed & 0x3F);
    size_t at = 0;
    while (at < len) {
        rng = rng * 1103515245u + 12345u;
        size_t chunk = 1 + (rng >> 16) % stride_max;
        if (seed & 0x80) chunk = stride_max; /* fixed splits too */
        if (chunk > len - at) chunk = len - at;
        uint8_t *buf = fuzz_dup(stream + at, chunk);
        bool ok = feed_buffer(&a, stream, len, at, buf, chunk);
        free(buf);
        if (!ok) {
            split.failed = true;
            break;
        }
        at += chunk;
    }
    if (!split.failed) FUZZ_CHECK(split.consumed + a.used == len);
    free(abuf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const uint8_t *stream = data + 1;
    size_t len = size - 1;
    parse_whole(stream, len);
    parse_split(stream, len, data[0]);
    FUZZ_CHECK(whole.count == split.count);
    FUZZ_CHECK(whole.consumed == split.consumed);
    FUZZ_CHECK(whole.failed == split.failed);
    for (size_t i = 0; i < whole.count; i++) {
        FUZZ_CHECK(whole.frames[i].type == split.frames[i].type);
        FUZZ_CHECK(whole.frames[i].channel == split.frames[i].channel);
        FUZZ_CHECK(whole.frames[i].payload_len == split.frames[i].payload_len);
        FUZZ_CHECK(whole.frames[i].offset == split.frames[i].offset);
    }
    return 0;
}
