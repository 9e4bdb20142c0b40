/* Unit tests for net/amqp_frame.c: the protocol header, frame parsing and its
 * errors, frame_max at its boundary, many frames per buffer, reassembly of a
 * stream split at every offset, and the frame writers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/limits.h"
#include "net/amqp_frame.h"
#include "net/amqp_props.h"
#include "tests/net/codec_util.h"

enum { FRAME_MAX = LIMIT_FRAME_BYTES_MIN };

/* ---- protocol header ---- */

static void test_protocol_header_ok(void **state)
{
    (void)state;
    amqp_error err;
    assert_int_equal(amqp_protocol_header_parse((const uint8_t *)"AMQP\0\0\x09\x01xyz", 11, &err),
                     8);
}

static void test_protocol_header_need_more(void **state)
{
    (void)state;
    amqp_error err;
    for (size_t k = 0; k < 8; k++) {
        uint8_t *part = test_dup((const uint8_t *)AMQP_PROTOCOL_HEADER, k);
        assert_int_equal(amqp_protocol_header_parse(part, k, &err), 0);
        free(part);
    }
}

static void test_protocol_header_wrong_version(void **state)
{
    (void)state;
    amqp_error err;
    /* AMQP 0-10 and the 0-9-1 header with the old "class 1" byte. */
    assert_int_equal(amqp_protocol_header_parse((const uint8_t *)"AMQP\1\1\0\x0a", 8, &err), -1);
    assert_int_equal(err.reply_code, AMQP_REPLY_FRAME_ERROR);
    assert_int_equal(amqp_protocol_header_parse((const uint8_t *)"AMQP\1\1\0\x09", 8, &err), -1);
    assert_int_equal(amqp_protocol_header_parse((const uint8_t *)"AMQP\0\0\x09\x00", 8, &err), -1);
}

static void test_protocol_header_garbage_early(void **state)
{
    (void)state;
    amqp_error err;
    /* Refused from the first differing byte, without waiting for eight. */
    assert_int_equal(amqp_protocol_header_parse((const uint8_t *)"GET", 3, &err), -1);
    assert_int_equal(amqp_protocol_header_parse((const uint8_t *)"AMQX", 4, &err), -1);
}

/* ---- parsing ---- */

static size_t put_frame(uint8_t *out, uint8_t type, uint16_t channel, const void *payload,
                        uint32_t len)
{
    amqp_frame_put_header(out, type, channel, len);
    if (len > 0) memcpy(out + 7, payload, len);
    out[7 + len] = AMQP_FRAME_END;
    return 8 + (size_t)len;
}

static void test_parse_method_frame(void **state)
{
    (void)state;
    static const uint8_t w[] = {1, 0, 1, 0, 0, 0, 4, 0, 90, 0, 10, 0xCE, 0x55};
    amqp_frame f;
    amqp_error err;
    assert_int_equal(amqp_frame_parse(w, sizeof(w), FRAME_MAX, &f, &err), 12);
    assert_int_equal(f.type, AMQP_FRAME_METHOD);
    assert_int_equal(f.channel, 1);
    assert_int_equal(f.payload_len, 4);
    assert_ptr_equal(f.payload, w + 7);
}

static void test_parse_heartbeat(void **state)
{
    (void)state;
    static const uint8_t w[] = {8, 0, 0, 0, 0, 0, 0, 0xCE};
    amqp_frame f;
    amqp_error err;
    assert_int_equal(amqp_frame_parse(w, sizeof(w), FRAME_MAX, &f, &err), 8);
    assert_int_equal(f.type, AMQP_FRAME_HEARTBEAT);
    assert_int_equal(f.payload_len, 0);
}

static void test_parse_heartbeat_with_payload_refused(void **state)
{
    (void)state;
    static const uint8_t w[] = {8, 0, 0, 0, 0, 0, 1, 0, 0xCE};
    amqp_frame f;
    amqp_error err;
    assert_int_equal(amqp_frame_parse(w, sizeof(w), FRAME_MAX, &f, &err), -1);
    assert_int_equal(err.reply_code, AMQP_REPLY_FRAME_ERROR);
}

static void test_parse_zero_length_body(void **state)
{
    (void)state;
    static const uint8_t w[] = {3, 0, 5, 0, 0, 0, 0, 0xCE};
    amqp_frame f;
    amqp_error err;
    assert_int_equal(amqp_frame_parse(w, sizeof(w), FRAME_MAX, &f, &err), 8);
    assert_int_equal(f.type, AMQP_FRAME_BODY);
    assert_int_equal(f.channel, 5);
    assert_int_equal(f.payload_len, 0);
    assert_non_null(f.payload);
}

static void test_parse_bad_frame_end(void **state)
{
    (void)state;
    static const uint8_t w[] = {3, 0, 1, 0, 0, 0, 2, 'h', 'i', 0xCD};
    amqp_frame f;
    amqp_error err;
    assert_int_equal(amqp_frame_parse(w, sizeof(w), FRAME_MAX, &f, &err), -1);
    assert_int_equal(err.reply_code, AMQP_REPLY_FRAME_ERROR);
    assert_string_equal(err.text, "bad frame end octet");
}

static void test_parse_unknown_frame_types(void **state)
{
    (void)state;
    static const uint8_t types[] = {0, 4, 5, 7, 9, 'A', 0xFF};
    for (size_t i = 0; i < sizeof(types); i++) {
        uint8_t w[8] = {types[i], 0, 0, 0, 0, 0, 0, 0xCE};
        amqp_frame f;
        amqp_error err;
        /* Decided from the 7-byte header alone. */
        assert_int_equal(amqp_frame_parse(w, 7, FRAME_MAX, &f, &err), -1);
        assert_int_equal(err.reply_code, AMQP_REPLY_FRAME_ERROR);
        assert_string_equal(err.text, "unknown frame type");
    }
}

static void test_parse_need_more_every_prefix(void **state)
{
    (void)state;
    uint8_t w[64];
    size_t n = put_frame(w, AMQP_FRAME_BODY, 3, "0123456789", 10);
    for (size_t k = 0; k < n; k++) {
        uint8_t *part = test_dup(w, k);
        amqp_frame f;
        amqp_error err;
        assert_int_equal(amqp_frame_parse(part, k, FRAME_MAX, &f, &err), 0);
        if (k >= 7) {
            assert_int_equal(f.payload_len, 10);
            assert_null(f.payload);
        }
        free(part);
    }
}

static void test_frame_max_exact_accepted(void **state)
{
    (void)state;
    static uint8_t w[FRAME_MAX];
    memset(w, 'b', sizeof(w));
    amqp_frame_put_header(w, AMQP_FRAME_BODY, 1, FRAME_MAX - 8);
    w[FRAME_MAX - 1] = AMQP_FRAME_END;
    amqp_frame f;
    amqp_error err;
    assert_int_equal(amqp_frame_parse(w, sizeof(w), FRAME_MAX, &f, &err), FRAME_MAX);
    assert_int_equal(f.payload_len, FRAME_MAX - 8);
}

static void test_frame_max_plus_one_refused_from_header(void **state)
{
    (void)state;
    uint8_t w[7];
    amqp_frame_put_header(w, AMQP_FRAME_BODY, 1, FRAME_MAX - 7);
    amqp_frame f;
    amqp_error err;
    /* Only the header is there: refused before any payload arrives. */
    assert_int_equal(amqp_frame_parse(w, sizeof(w), FRAME_MAX, &f, &err), -1);
    assert_int_equal(err.reply_code, AMQP_REPLY_FRAME_ERROR);
    assert_string_equal(err.text, "frame larger than frame_max");
    amqp_frame_put_header(w, AMQP_FRAME_METHOD, 0, UINT32_MAX);
    assert_int_equal(amqp_frame_parse(w, sizeof(w), FRAME_MAX, &f, &err), -1);
    /* A larger negotiated frame_max lets the same header through. */
    amqp_frame_put_header(w, AMQP_FRAME_BODY, 1, FRAME_MAX - 7);
    assert_int_equal(amqp_frame_parse(w, sizeof(w), FRAME_MAX + 1, &f, &err), 0);
}

/* ---- a test stream of mixed frames ---- */

typedef struct stream {
    uint8_t bytes[2048];
    size_t len;
    size_t frames;
} stream;

static void stream_build(stream *s)
{
    static uint8_t big[600];
    memset(big, 'z', sizeof(big));
    amqp_method m = {.id = AMQP_BASIC_PUBLISH};
    m.a.basic_publish.exchange = amqp_cstr("amq.direct");
    m.a.basic_publish.routing_key = amqp_cstr("key");
    amqp_error err;
    s->len = 0;
    s->frames = 0;
    ssize_t n = amqp_frame_write_method(s->bytes, sizeof(s->bytes), 1, &m, &err);
    assert_true(n > 0);
    s->len += (size_t)n, s->frames++;
    static const uint8_t props[] = {0x10, 0x00, 2};
    n = amqp_frame_write_content(s->bytes + s->len, sizeof(s->bytes) - s->len, 1, FRAME_MAX, 60,
                                 (amqp_bytes){props, sizeof(props)},
                                 (const uint8_t *)"0123456789abcdef", 16, &err);
    assert_true(n > 0);
    s->len += (size_t)n, s->frames += 2;
    n = amqp_frame_write_heartbeat(s->bytes + s->len, sizeof(s->bytes) - s->len, &err);
    s->len += (size_t)n, s->frames++;
    s->len += put_frame(s->bytes + s->len, AMQP_FRAME_BODY, 7, NULL, 0), s->frames++;
    s->len += put_frame(s->bytes + s->len, AMQP_FRAME_BODY, 2, big, sizeof(big)), s->frames++;
    s->len += put_frame(s->bytes + s->len, AMQP_FRAME_METHOD, 0, "\0\x0a\0\x33", 4), s->frames++;
    assert_true(s->len <= sizeof(s->bytes));
}

/* Frames seen by a receiver, payloads copied (assembled payloads do not
 * outlive the next feed). */
typedef struct seen {
    uint8_t type[32];
    uint16_t channel[32];
    uint32_t len[32];
    uint32_t off[32];
    uint8_t payload[4096];
    size_t count;
    size_t used;
} seen;

static void seen_add(seen *s, const amqp_frame *f)
{
    assert_true(s->count < 32 && s->used + f->payload_len <= sizeof(s->payload));
    s->type[s->count] = f->type;
    s->channel[s->count] = f->channel;
    s->len[s->count] = f->payload_len;
    s->off[s->count] = (uint32_t)s->used;
    if (f->payload_len > 0) memcpy(s->payload + s->used, f->payload, f->payload_len);
    s->used += f->payload_len;
    s->count++;
}

static void seen_equal(const seen *a, const seen *b)
{
    assert_int_equal(a->count, b->count);
    assert_int_equal(a->used, b->used);
    assert_memory_equal(a->type, b->type, a->count);
    assert_memory_equal(a->channel, b->channel, a->count * sizeof(a->channel[0]));
    assert_memory_equal(a->len, b->len, a->count * sizeof(a->len[0]));
    assert_memory_equal(a->payload, b->payload, a->used);
}

/* The receive loop documented in amqp_frame.h, over one buffer. */
static void receive(amqp_frame_assembler *a, const uint8_t *buf, size_t len, seen *out)
{
    amqp_frame f;
    amqp_error err;
    bool done;
    size_t off = 0;
    if (amqp_frame_assembler_busy(a)) {
        ssize_t n = amqp_frame_assembler_feed(a, buf, len, FRAME_MAX, &f, &done, &err);
        assert_true(n >= 0);
        off = (size_t)n;
        if (done)
            seen_add(out, &f);
        else
            assert_int_equal(off, len);
    }
    while (off < len) {
        ssize_t n = amqp_frame_parse(buf + off, len - off, FRAME_MAX, &f, &err);
        assert_true(n >= 0);
        if (n == 0) {
            ssize_t t =
                amqp_frame_assembler_feed(a, buf + off, len - off, FRAME_MAX, &f, &done, &err);
            assert_int_equal(t, (ssize_t)(len - off));
            assert_false(done);
            break;
        }
        assert_ptr_equal(f.payload, buf + off + 7); /* whole frames: zero-copy */
        seen_add(out, &f);
        off += (size_t)n;
    }
}

static void test_many_frames_one_buffer(void **state)
{
    (void)state;
    static stream s;
    stream_build(&s);
    static uint8_t abuf[FRAME_MAX];
    amqp_frame_assembler a;
    amqp_frame_assembler_init(&a, abuf, sizeof(abuf));
    static seen got;
    memset(&got, 0, sizeof(got));
    uint8_t *copy = test_dup(s.bytes, s.len);
    receive(&a, copy, s.len, &got);
    free(copy);
    assert_int_equal(got.count, s.frames);
    assert_false(amqp_frame_assembler_busy(&a));
    assert_int_equal(got.type[0], AMQP_FRAME_METHOD);
    assert_int_equal(got.type[1], AMQP_FRAME_HEADER);
    assert_int_equal(got.type[2], AMQP_FRAME_BODY);
    assert_int_equal(got.len[2], 16);
    assert_int_equal(got.type[3], AMQP_FRAME_HEARTBEAT);
    assert_int_equal(got.len[5], 600);
}

static void test_hundred_frames_one_buffer(void **state)
{
    (void)state;
    static uint8_t buf[100 * 12];
    size_t len = 0;
    for (uint16_t i = 0; i < 100; i++) {
        uint8_t payload[4] = {(uint8_t)i, 1, 2, 3};
        len += put_frame(buf + len, AMQP_FRAME_BODY, i, payload, 4);
    }
    size_t off = 0, count = 0;
    amqp_frame f;
    amqp_error err;
    ssize_t n;
    while ((n = amqp_frame_parse(buf + off, len - off, FRAME_MAX, &f, &err)) > 0) {
        assert_int_equal(f.channel, count);
        assert_int_equal(f.payload[0], (uint8_t)count);
        off += (size_t)n, count++;
    }
    assert_int_equal(n, 0);
    assert_int_equal(off, len);
    assert_int_equal(count, 100);
}

static void test_split_at_every_offset(void **state)
{
    (void)state;
    static stream s;
    stream_build(&s);
    static uint8_t abuf[FRAME_MAX];
    static seen want, got;
    amqp_frame_assembler a;
    memset(&want, 0, sizeof(want));
    amqp_frame_assembler_init(&a, abuf, sizeof(abuf));
    receive(&a, s.bytes, s.len, &want);
    for (size_t k = 0; k <= s.len; k++) {
        memset(&got, 0, sizeof(got));
        amqp_frame_assembler_init(&a, abuf, sizeof(abuf));
        uint8_t *b1 = test_dup(s.bytes, k);
        uint8_t *b2 = test_dup(s.bytes + k, s.len - k);
        receive(&a, b1, k, &got);
        receive(&a, b2, s.len - k, &got);
        assert_false(amqp_frame_assembler_busy(&a));
        seen_equal(&want, &got);
        free(b1);
        free(b2);
    }
}

static void test_split_byte_by_byte(void **state)
{
    (void)state;
    static stream s;
    stream_build(&s);
    static uint8_t abuf[FRAME_MAX];
    static seen want, got;
    amqp_frame_assembler a;
    memset(&want, 0, sizeof(want));
    memset(&got, 0, sizeof(got));
    amqp_frame_assembler_init(&a, abuf, sizeof(abuf));
    receive(&a, s.bytes, s.len, &want);
    for (size_t i = 0; i < s.len; i++) {
        uint8_t *b = test_dup(s.bytes + i, 1);
        receive(&a, b, 1, &got);
        free(b);
    }
    seen_equal(&want, &got);
}

static void test_assembler_refuses_oversized_frame(void **state)
{
    (void)state;
    static uint8_t abuf[FRAME_MAX];
    amqp_frame_assembler a;
    amqp_frame_assembler_init(&a, abuf, sizeof(abuf));
    uint8_t hdr[7];
    amqp_frame_put_header(hdr, AMQP_FRAME_BODY, 1, FRAME_MAX);
    amqp_frame f;
    amqp_error err;
    bool done;
    assert_int_equal(amqp_frame_assembler_feed(&a, hdr, 3, FRAME_MAX, &f, &done, &err), 3);
    assert_true(amqp_frame_assembler_busy(&a));
    assert_int_equal(amqp_frame_assembler_feed(&a, hdr + 3, 4, FRAME_MAX, &f, &done, &err), -1);
    assert_int_equal(err.reply_code, AMQP_REPLY_FRAME_ERROR);
    assert_false(amqp_frame_assembler_busy(&a));
}

static void test_assembler_bad_frame_end(void **state)
{
    (void)state;
    static uint8_t abuf[FRAME_MAX];
    amqp_frame_assembler a;
    amqp_frame_assembler_init(&a, abuf, sizeof(abuf));
    uint8_t w[16];
    size_t n = put_frame(w, AMQP_FRAME_BODY, 1, "abc", 3);
    w[n - 1] = 0;
    amqp_frame f;
    amqp_error err;
    bool done;
    assert_int_equal(amqp_frame_assembler_feed(&a, w, 5, FRAME_MAX, &f, &done, &err), 5);
    assert_int_equal(amqp_frame_assembler_feed(&a, w + 5, n - 5, FRAME_MAX, &f, &done, &err), -1);
    assert_int_equal(err.reply_code, AMQP_REPLY_FRAME_ERROR);
    amqp_frame_assembler_reset(&a);
    assert_false(amqp_frame_assembler_busy(&a));
}

static void test_assembler_takes_only_its_frame(void **state)
{
    (void)state;
    static uint8_t abuf[FRAME_MAX];
    amqp_frame_assembler a;
    amqp_frame_assembler_init(&a, abuf, sizeof(abuf));
    uint8_t w[32];
    size_t n1 = put_frame(w, AMQP_FRAME_BODY, 1, "abc", 3);
    size_t n2 = put_frame(w + n1, AMQP_FRAME_BODY, 2, "de", 2);
    amqp_frame f;
    amqp_error err;
    bool done;
    assert_int_equal(amqp_frame_assembler_feed(&a, w, 2, FRAME_MAX, &f, &done, &err), 2);
    assert_false(done);
    ssize_t t = amqp_frame_assembler_feed(&a, w + 2, n1 + n2 - 2, FRAME_MAX, &f, &done, &err);
    assert_int_equal(t, (ssize_t)(n1 - 2));
    assert_true(done);
    assert_int_equal(f.channel, 1);
    assert_memory_equal(f.payload, "abc", 3);
    assert_ptr_equal(f.payload, abuf + 7);
}

/* ---- writers ---- */

static void test_write_method_frame(void **state)
{
    (void)state;
    amqp_method m = {.id = AMQP_CHANNEL_OPEN_OK};
    uint8_t buf[64];
    amqp_error err;
    ssize_t n = amqp_frame_write_method(buf, sizeof(buf), 3, &m, &err);
    static const uint8_t want[] = {1, 0, 3, 0, 0, 0, 8, 0, 20, 0, 11, 0, 0, 0, 0, 0xCE};
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
    assert_int_equal(amqp_frame_write_method(buf, sizeof(want) - 1, 3, &m, &err), -1);
    assert_int_equal(err.reply_code, AMQP_REPLY_INTERNAL_ERROR);
    assert_int_equal(amqp_frame_write_method(buf, 7, 3, &m, &err), -1);
}

static void test_write_heartbeat(void **state)
{
    (void)state;
    uint8_t buf[8];
    amqp_error err;
    assert_int_equal(amqp_frame_write_heartbeat(buf, sizeof(buf), &err), 8);
    static const uint8_t want[] = {8, 0, 0, 0, 0, 0, 0, 0xCE};
    assert_memory_equal(buf, want, 8);
    assert_int_equal(amqp_frame_write_heartbeat(buf, 7, &err), -1);
}

static void test_write_content_splits_body(void **state)
{
    (void)state;
    enum { CHUNK = FRAME_MAX - 8, BODY = 3 * CHUNK + 5 };
    static uint8_t body[BODY];
    for (size_t i = 0; i < BODY; i++) body[i] = (uint8_t)(i * 7);
    static uint8_t out[BODY + 512];
    static const uint8_t props[] = {0x00, 0x00};
    amqp_error err;
    size_t want = amqp_frame_content_size(FRAME_MAX, sizeof(props), BODY);
    ssize_t n = amqp_frame_write_content(out, sizeof(out), 9, FRAME_MAX, 60, (amqp_bytes){props, 2},
                                         body, BODY, &err);
    assert_int_equal(n, (ssize_t)want);
    assert_int_equal(want, 8 + 14 + 4 * 8 + BODY);
    amqp_frame f;
    size_t off = 0;
    ssize_t r = amqp_frame_parse(out, (size_t)n, FRAME_MAX, &f, &err);
    assert_true(r > 0);
    assert_int_equal(f.type, AMQP_FRAME_HEADER);
    amqp_content_header h;
    assert_true(amqp_content_header_decode(f.payload, f.payload_len, &h, &err));
    assert_true(h.body_size == BODY);
    off += (size_t)r;
    size_t body_off = 0, frames = 0;
    while (off < (size_t)n) {
        r = amqp_frame_parse(out + off, (size_t)n - off, FRAME_MAX, &f, &err);
        assert_true(r > 0);
        assert_int_equal(f.type, AMQP_FRAME_BODY);
        assert_int_equal(f.channel, 9);
        assert_true(f.payload_len <= CHUNK);
        assert_memory_equal(f.payload, body + body_off, f.payload_len);
        body_off += f.payload_len, off += (size_t)r, frames++;
    }
    assert_int_equal(frames, 4);
    assert_int_equal(body_off, BODY);
    assert_int_equal(amqp_frame_write_content(out, want - 1, 9, FRAME_MAX, 60,
                                              (amqp_bytes){props, 2}, body, BODY, &err),
                     -1);
}

static void test_write_content_zero_body(void **state)
{
    (void)state;
    static const uint8_t props[] = {0x10, 0x00, 2};
    uint8_t out[64];
    amqp_error err;
    ssize_t n = amqp_frame_write_content(out, sizeof(out), 1, FRAME_MAX, 60, (amqp_bytes){props, 3},
                                         NULL, 0, &err);
    assert_int_equal(n, 8 + 12 + 3);
    static const uint8_t want[] = {2, 0, 1, 0, 0, 0, 15, 0,    60, 0, 0,   0,
                                   0, 0, 0, 0, 0, 0, 0,  0x10, 0,  2, 0xCE};
    assert_memory_equal(out, want, sizeof(want));
}

static void test_write_content_exact_chunk(void **state)
{
    (void)state;
    enum { CHUNK = FRAME_MAX - 8 };
    static uint8_t body[CHUNK];
    static uint8_t out[FRAME_MAX + 64];
    static const uint8_t props[] = {0, 0};
    amqp_error err;
    ssize_t n = amqp_frame_write_content(out, sizeof(out), 1, FRAME_MAX, 60, (amqp_bytes){props, 2},
                                         body, CHUNK, &err);
    assert_int_equal(n, 8 + 14 + FRAME_MAX);
    amqp_frame f;
    assert_int_equal(amqp_frame_parse(out + 22, (size_t)n - 22, FRAME_MAX, &f, &err), FRAME_MAX);
}

static void test_write_content_header_over_frame_max(void **state)
{
    (void)state;
    static uint8_t props[FRAME_MAX];
    static uint8_t out[2 * FRAME_MAX];
    amqp_error err;
    /* Header payload = 12 + props: exactly FRAME_MAX - 8 fits, one more does not. */
    ssize_t n = amqp_frame_write_content(out, sizeof(out), 1, FRAME_MAX, 60,
                                         (amqp_bytes){props, FRAME_MAX - 20}, NULL, 0, &err);
    assert_int_equal(n, FRAME_MAX);
    n = amqp_frame_write_content(out, sizeof(out), 1, FRAME_MAX, 60,
                                 (amqp_bytes){props, FRAME_MAX - 19}, NULL, 0, &err);
    assert_int_equal(n, -1);
    assert_int_equal(err.reply_code, AMQP_REPLY_FRAME_ERROR);
}

/* ---- the broker's hot path, end to end ---- */

static size_t publish_stream(uint8_t *buf, size_t cap)
{
    amqp_method m = {.id = AMQP_BASIC_PUBLISH};
    m.a.basic_publish.exchange = amqp_cstr("");
    m.a.basic_publish.routing_key = amqp_cstr("perf-queue");
    amqp_error err;
    ssize_t n = amqp_frame_write_method(buf, cap, 1, &m, &err);
    amqp_basic_props p = {.flags = AMQP_PROP_DELIVERY_MODE};
    p.delivery_mode = 2;
    uint8_t props[16];
    ssize_t pn = amqp_props_encode(&p, props, sizeof(props), &err);
    ssize_t c = amqp_frame_write_content(buf + n, cap - (size_t)n, 1, FRAME_MAX, 60,
                                         (amqp_bytes){props, (uint32_t)pn},
                                         (const uint8_t *)"0123456789abcdef", 16, &err);
    assert_true(n > 0 && pn > 0 && c > 0);
    return (size_t)(n + c);
}

/* Parses method + header + body frames and decodes them; returns the body
 * length seen, 0 on any failure. */
static uint32_t publish_decode(const uint8_t *buf, size_t len)
{
    amqp_frame f;
    amqp_error err;
    amqp_method m;
    amqp_content_header h;
    ssize_t a = amqp_frame_parse(buf, len, FRAME_MAX, &f, &err);
    if (a <= 0 || !amqp_method_decode(f.payload, f.payload_len, &m, &err)) return 0;
    ssize_t b = amqp_frame_parse(buf + a, len - (size_t)a, FRAME_MAX, &f, &err);
    if (b <= 0 || !amqp_content_header_decode(f.payload, f.payload_len, &h, &err)) return 0;
    ssize_t c = amqp_frame_parse(buf + a + b, len - (size_t)(a + b), FRAME_MAX, &f, &err);
    if (c <= 0 || h.delivery_mode != 2 || m.a.basic_publish.routing_key.len != 10) return 0;
    return f.payload_len;
}

static void test_publish_decode_end_to_end(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t len = publish_stream(buf, sizeof(buf));
    assert_int_equal(publish_decode(buf, len), 16);
    enum { ITERATIONS = 1000000 };
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    volatile uint32_t sink = 0;
    for (int i = 0; i < ITERATIONS; i++) sink += publish_decode(buf, len);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(sink, 16u * ITERATIONS);
    double ns =
        ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / ITERATIONS;
    /* Informational: the target is < 100 ns in an optimised, unsanitised build. */
    printf("publish+header+16B body decode: %.1f ns\n", ns);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protocol_header_ok),
        cmocka_unit_test(test_protocol_header_need_more),
        cmocka_unit_test(test_protocol_header_wrong_version),
        cmocka_unit_test(test_protocol_header_garbage_early),
        cmocka_unit_test(test_parse_method_frame),
        cmocka_unit_test(test_parse_heartbeat),
        cmocka_unit_test(test_parse_heartbeat_with_payload_refused),
        cmocka_unit_test(test_parse_zero_length_body),
        cmocka_unit_test(test_parse_bad_frame_end),
        cmocka_unit_test(test_parse_unknown_frame_types),
        cmocka_unit_test(test_parse_need_more_every_prefix),
        cmocka_unit_test(test_frame_max_exact_accepted),
        cmocka_unit_test(test_frame_max_plus_one_refused_from_header),
        cmocka_unit_test(test_many_frames_one_buffer),
        cmocka_unit_test(test_hundred_frames_one_buffer),
        cmocka_unit_test(test_split_at_every_offset),
        cmocka_unit_test(test_split_byte_by_byte),
        cmocka_unit_test(test_assembler_refuses_oversized_frame),
        cmocka_unit_test(test_assembler_bad_frame_end),
        cmocka_unit_test(test_assembler_takes_only_its_frame),
        cmocka_unit_test(test_write_method_frame),
        cmocka_unit_test(test_write_heartbeat),
        cmocka_unit_test(test_write_content_splits_body),
        cmocka_unit_test(test_write_content_zero_body),
        cmocka_unit_test(test_write_content_exact_chunk),
        cmocka_unit_test(test_write_content_header_over_frame_max),
        cmocka_unit_test(test_publish_decode_end_to_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
