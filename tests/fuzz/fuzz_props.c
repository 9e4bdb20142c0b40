/*
 * libFuzzer target for content headers and basic properties
 * (net/amqp_props.c). The input is a content header frame payload
 * (exact-size heap copy). amqp_content_header_decode() and the full
 * amqp_props_decode() of its property bytes must agree; the slices the
 * broker keeps must match the full decode; the headers table must walk
 * cleanly; and the full properties must re-encode to exactly the bytes
 * they came from (properties have no bit fields, so the encoding is
 * canonical), with an encode one byte short refused.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/amqp_props.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { CONTENT_HEADER_FIXED_BYTES = 12 }; /* class-id, weight, body-size */

static void props_reencode(const amqp_basic_props *p, const uint8_t *raw, size_t len)
{
    size_t n = amqp_props_size(p);
    FUZZ_CHECK(n == len);
    uint8_t *out = malloc(n);
    FUZZ_CHECK(out != NULL);
    amqp_error err;
    FUZZ_CHECK(amqp_props_encode(p, out, n, &err) == (ssize_t)n);
    FUZZ_CHECK(memcmp(out, raw, n) == 0);
    FUZZ_CHECK(amqp_props_encode(p, out, n - 1, &err) < 0);
    FUZZ_CHECK(err.reply_code == AMQP_REPLY_INTERNAL_ERROR);
    free(out);
}

static void props_check(const uint8_t *raw, size_t len)
{
    amqp_basic_props p;
    amqp_error err;
    if (!amqp_props_decode(raw, len, &p, &err)) {
        FUZZ_CHECK(err.reply_code == AMQP_REPLY_SYNTAX_ERROR);
        return;
    }
    FUZZ_CHECK((p.flags & ~AMQP_PROP_ALL) == 0);
    if (p.flags & AMQP_PROP_HEADERS) fuzz_walk_table(p.headers, 1);
    props_reencode(&p, raw, len);
}

static void header_check(const uint8_t *in, size_t size)
{
    amqp_content_header h;
    amqp_error err;
    bool ok = amqp_content_header_decode(in, size, &h, &err);
    if (size < CONTENT_HEADER_FIXED_BYTES + 2) {
        FUZZ_CHECK(!ok && err.reply_code == AMQP_REPLY_SYNTAX_ERROR);
        return;
    }
    const uint8_t *raw = in + CONTENT_HEADER_FIXED_BYTES;
    size_t raw_len = size - CONTENT_HEADER_FIXED_BYTES;
    amqp_basic_props p;
    bool props_ok = amqp_props_decode(raw, raw_len, &p, NULL);
    bool basic = in[0] == 0 && in[1] == AMQP_BASIC_CLASS_ID;
    FUZZ_CHECK(ok == (basic && props_ok));
    if (!ok) {
        FUZZ_CHECK(err.reply_code == (basic ? AMQP_REPLY_SYNTAX_ERROR : AMQP_REPLY_UNEXPECTED_FRAME));
        return;
    }
    FUZZ_CHECK(h.class_id == AMQP_BASIC_CLASS_ID);
    FUZZ_CHECK(h.props_raw.data == raw && h.props_raw.len == raw_len);
    FUZZ_CHECK(h.flags == p.flags);
    FUZZ_CHECK(h.delivery_mode == p.delivery_mode && h.priority == p.priority);
    FUZZ_CHECK(amqp_bytes_equal(h.expiration, p.expiration));
    FUZZ_CHECK(amqp_bytes_equal(h.reply_to, p.reply_to));
    FUZZ_CHECK(amqp_bytes_equal(h.user_id, p.user_id));
    FUZZ_CHECK(h.headers.data == p.headers.data && h.headers.len == p.headers.len);
    uint64_t body_size = 0;
    for (int i = 4; i < 12; i++) body_size = body_size << 8 | in[i];
    FUZZ_CHECK(h.body_size == body_size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *in = fuzz_dup(data, size);
    header_check(in, size);
    free(in);
    /* The same bytes as a bare flags word + property list. */
    in = fuzz_dup(data, size);
    props_check(in, size);
    free(in);
    return 0;
}
