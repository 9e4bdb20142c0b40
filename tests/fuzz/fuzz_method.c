/*
 * libFuzzer target for the method codec (net/amqp_method.c). The input is a
 * method frame payload (exact-size heap copy). When it decodes, the method
 * is re-encoded into an exact-size buffer, decoded again and re-encoded
 * again: both encodings must be equal and as long as the input (only the
 * unused bits of a bit octet may differ from it), every table argument must
 * walk cleanly, and an encode into one byte less must fail with "no space"
 * without writing past the buffer.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/amqp_method.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walks every table argument of a decoded method. */
#define WALK_ARG_table(field) fuzz_walk_table(a->field, 1);
#define WALK_ARG_bit(field)
#define WALK_ARG_octet(field)
#define WALK_ARG_short(field)
#define WALK_ARG_long(field)
#define WALK_ARG_longlong(field)
#define WALK_ARG_timestamp(field)
#define WALK_ARG_shortstr(field) FUZZ_CHECK(a->field.len <= LIMIT_SHORTSTR_BYTES_MAX);
#define WALK_ARG_longstr(field) fuzz_touch(a->field.data, a->field.len);
#define WALK_ARG(type, field) WALK_ARG_##type(field)
#define WALK_CASE(E, n, s, c, m, sync, content)                                                    \
    case AMQP_##E: {                                                                               \
        const amqp_##n *a = &meth->a.n;                                                            \
        (void)a;                                                                                   \
        AMQP_ARGS_##n(WALK_ARG) break;                                                             \
    }

static void walk_method(const amqp_method *meth)
{
    switch (meth->id) {
        AMQP_METHOD_LIST(WALK_CASE)
    default: FUZZ_CHECK(!"decoded an unknown method");
    }
}

/* Encodes into an exact-size heap buffer; the caller frees it. */
static uint8_t *encode_exact(const amqp_method *m, size_t *len)
{
    size_t n = amqp_method_size(m);
    uint8_t *out = malloc(n);
    FUZZ_CHECK(out != NULL);
    amqp_error err;
    ssize_t w = amqp_method_encode(m, out, n, &err);
    FUZZ_CHECK(w >= 0 && (size_t)w == n);
    /* One byte short: refused, nothing written past the buffer (ASan). */
    uint8_t *small = malloc(n - 1);
    FUZZ_CHECK(small != NULL);
    FUZZ_CHECK(amqp_method_encode(m, small, n - 1, &err) < 0);
    FUZZ_CHECK(err.reply_code == AMQP_REPLY_INTERNAL_ERROR);
    free(small);
    *len = n;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *in = fuzz_dup(data, size);
    amqp_method m;
    amqp_error err;
    if (!amqp_method_decode(in, size, &m, &err)) {
        FUZZ_CHECK(err.reply_code == AMQP_REPLY_SYNTAX_ERROR ||
                   err.reply_code == AMQP_REPLY_COMMAND_INVALID);
        FUZZ_CHECK(err.text != NULL);
        free(in);
        return 0;
    }
    FUZZ_CHECK(amqp_method_known(m.id));
    FUZZ_CHECK(amqp_method_name(m.id)[0] != '?');
    fuzz_sink += amqp_method_is_synchronous(m.id) + amqp_method_has_content(m.id);
    walk_method(&m);

    size_t len1, len2;
    uint8_t *enc1 = encode_exact(&m, &len1);
    FUZZ_CHECK(len1 == size);
    amqp_method m2;
    FUZZ_CHECK(amqp_method_decode(enc1, len1, &m2, &err));
    FUZZ_CHECK(m2.id == m.id);
    uint8_t *enc2 = encode_exact(&m2, &len2);
    FUZZ_CHECK(len1 == len2 && memcmp(enc1, enc2, len1) == 0);
    free(enc2);
    free(enc1);
    free(in);
    return 0;
}
