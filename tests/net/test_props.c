/* Unit tests for net/amqp_props.c: the 14 basic properties (full encode and
 * decode), the broker's content header view, flag errors and truncation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "net/amqp_props.h"
#include "net/amqp_table.h"
#include "tests/net/codec_util.h"

static const uint8_t headers_bytes[] = {3, 'h', 'd', 'r', 'I', 0, 0, 0, 42};

static amqp_basic_props props_all(void)
{
    amqp_basic_props p = {.flags = AMQP_PROP_ALL};
    p.content_type = amqp_cstr("application/json");
    p.content_encoding = amqp_cstr("gzip");
    p.headers = (amqp_table){headers_bytes, sizeof(headers_bytes)};
    p.delivery_mode = 2;
    p.priority = 9;
    p.correlation_id = amqp_cstr("corr-1");
    p.reply_to = amqp_cstr("amq.rabbitmq.reply-to");
    p.expiration = amqp_cstr("60000");
    p.message_id = amqp_cstr("msg-1");
    p.timestamp = 1700000000;
    p.type = amqp_cstr("order.created");
    p.user_id = amqp_cstr("guest");
    p.app_id = amqp_cstr("perf");
    p.cluster_id = amqp_cstr("c1");
    return p;
}

#define CMP_PROP_shortstr(a, b)  assert_true(amqp_bytes_equal(a, b))
#define CMP_PROP_octet(a, b)     assert_int_equal(a, b)
#define CMP_PROP_timestamp(a, b) assert_true((a) == (b))
#define CMP_PROP_table(a, b)                                                                       \
    do {                                                                                           \
        assert_int_equal((a).len, (b).len);                                                        \
        assert_memory_equal((a).data, (b).data, (a).len);                                          \
    } while (0)
#define CMP_PROP(F, bit, type, field)                                                              \
    if (a->flags & AMQP_PROP_##F) CMP_PROP_##type(a->field, b->field);

static void props_compare(const amqp_basic_props *a, const amqp_basic_props *b)
{
    assert_int_equal(a->flags, b->flags);
    AMQP_BASIC_PROPS(CMP_PROP)
}

static size_t props_roundtrip(const amqp_basic_props *in, uint8_t *buf, size_t cap)
{
    amqp_error err;
    ssize_t n = amqp_props_encode(in, buf, cap, &err);
    assert_true(n >= 2);
    assert_int_equal((size_t)n, amqp_props_size(in));
    uint8_t *copy = test_dup(buf, (size_t)n);
    amqp_basic_props out;
    assert_true(amqp_props_decode(copy, (size_t)n, &out, &err));
    props_compare(in, &out);
    free(copy);
    return (size_t)n;
}

static void test_props_all_fourteen(void **state)
{
    (void)state;
    amqp_basic_props p = props_all();
    uint8_t buf[512];
    size_t n = props_roundtrip(&p, buf, sizeof(buf));
    assert_int_equal(buf[0], 0xFF);
    assert_int_equal(buf[1], 0xFC);
    assert_true(n > 100);
}

static void test_props_none(void **state)
{
    (void)state;
    amqp_basic_props p = {.flags = 0};
    uint8_t buf[8];
    assert_int_equal(props_roundtrip(&p, buf, sizeof(buf)), 2);
    assert_int_equal(buf[0], 0);
    assert_int_equal(buf[1], 0);
}

static void test_props_each_alone(void **state)
{
    (void)state;
    amqp_basic_props all = props_all();
    for (int bit = 15; bit >= 2; bit--) {
        amqp_basic_props p = all;
        p.flags = (uint16_t)(1u << bit);
        uint8_t buf[256];
        size_t n = props_roundtrip(&p, buf, sizeof(buf));
        assert_int_equal(buf[0], (uint8_t)(p.flags >> 8));
        assert_int_equal(buf[1], (uint8_t)p.flags);
        assert_true(n > 2);
    }
}

static void test_props_wire_bytes(void **state)
{
    (void)state;
    amqp_basic_props p = {.flags = AMQP_PROP_CONTENT_TYPE | AMQP_PROP_DELIVERY_MODE};
    p.content_type = amqp_cstr("text/plain");
    p.delivery_mode = 2;
    static const uint8_t want[] = {0x90, 0x00, 10,  't', 'e', 'x', 't',
                                   '/',  'p',  'l', 'a', 'i', 'n', 0x02};
    uint8_t buf[64];
    amqp_error err;
    assert_int_equal(amqp_props_encode(&p, buf, sizeof(buf), &err), sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
}

static void test_props_continuation_flag_refused(void **state)
{
    (void)state;
    static const uint8_t w1[] = {0x00, 0x01};
    static const uint8_t w2[] = {0x00, 0x02};
    amqp_basic_props out;
    amqp_error err;
    assert_false(amqp_props_decode(w1, sizeof(w1), &out, &err));
    assert_int_equal(err.reply_code, AMQP_REPLY_SYNTAX_ERROR);
    assert_false(amqp_props_decode(w2, sizeof(w2), &out, &err));
    assert_int_equal(err.reply_code, AMQP_REPLY_SYNTAX_ERROR);
    amqp_basic_props p = {.flags = 1};
    uint8_t buf[8];
    assert_int_equal(amqp_props_encode(&p, buf, sizeof(buf), &err), -1);
}

static void test_props_encode_long_shortstr_refused(void **state)
{
    (void)state;
    static char s[300];
    memset(s, 'r', sizeof(s) - 1);
    amqp_basic_props p = {.flags = AMQP_PROP_REPLY_TO};
    p.reply_to = amqp_cstr(s);
    uint8_t buf[512];
    amqp_error err;
    assert_int_equal(amqp_props_encode(&p, buf, sizeof(buf), &err), -1);
    assert_int_equal(err.reply_code, AMQP_REPLY_SYNTAX_ERROR);
    p.reply_to.len = 255;
    assert_int_equal(amqp_props_encode(&p, buf, sizeof(buf), &err), 2 + 1 + 255);
}

static void test_props_no_space(void **state)
{
    (void)state;
    amqp_basic_props p = props_all();
    uint8_t buf[512];
    size_t n = amqp_props_size(&p);
    amqp_error err;
    assert_int_equal(amqp_props_encode(&p, buf, n - 1, &err), -1);
    assert_int_equal(err.reply_code, AMQP_REPLY_INTERNAL_ERROR);
    assert_int_equal(amqp_props_encode(&p, buf, n, &err), (ssize_t)n);
}

static void test_props_truncated_every_offset(void **state)
{
    (void)state;
    amqp_basic_props p = props_all();
    uint8_t buf[512];
    amqp_error err;
    ssize_t n = amqp_props_encode(&p, buf, sizeof(buf), &err);
    assert_true(n > 0);
    for (size_t k = 0; k < (size_t)n; k++) {
        uint8_t *part = test_dup(buf, k);
        amqp_basic_props out;
        assert_false(amqp_props_decode(part, k, &out, &err));
        assert_int_equal(err.reply_code, AMQP_REPLY_SYNTAX_ERROR);
        free(part);
    }
}

static void test_props_trailing_bytes_refused(void **state)
{
    (void)state;
    static const uint8_t w[] = {0x08, 0x00, 5, 0xEE};
    amqp_basic_props out;
    amqp_error err;
    assert_false(amqp_props_decode(w, sizeof(w), &out, &err));
    assert_int_equal(err.reply_code, AMQP_REPLY_SYNTAX_ERROR);
    assert_true(amqp_props_decode(w, 3, &out, &err));
    assert_int_equal(out.priority, 5);
}

static void test_props_bad_headers_table_refused(void **state)
{
    (void)state;
    static const uint8_t w[] = {0x20, 0x00, 0, 0, 0, 4, 1, 'h', '!', 0};
    amqp_basic_props out;
    amqp_error err;
    assert_false(amqp_props_decode(w, sizeof(w), &out, &err));
    assert_int_equal(err.reply_code, AMQP_REPLY_SYNTAX_ERROR);
    assert_int_equal(err.class_id, 60);
}

/* ---- content header frame payload ---- */

static size_t header_payload(uint8_t *buf, size_t cap, uint16_t class_id, uint64_t body_size,
                             const amqp_basic_props *p)
{
    amqp_error err;
    assert_true(cap >= 12);
    buf[0] = (uint8_t)(class_id >> 8), buf[1] = (uint8_t)class_id;
    buf[2] = 0, buf[3] = 0;
    for (int i = 0; i < 8; i++) buf[4 + i] = (uint8_t)(body_size >> (56 - 8 * i));
    ssize_t n = amqp_props_encode(p, buf + 12, cap - 12, &err);
    assert_true(n >= 2);
    return 12 + (size_t)n;
}

static void test_content_header_broker_view(void **state)
{
    (void)state;
    amqp_basic_props p = props_all();
    uint8_t buf[512];
    size_t n = header_payload(buf, sizeof(buf), 60, 123456789012ull, &p);
    amqp_content_header h;
    amqp_error err;
    assert_true(amqp_content_header_decode(buf, n, &h, &err));
    assert_int_equal(h.class_id, 60);
    assert_true(h.body_size == 123456789012ull);
    assert_int_equal(h.flags, AMQP_PROP_ALL);
    assert_int_equal(h.delivery_mode, 2);
    assert_int_equal(h.priority, 9);
    assert_true(amqp_bytes_equal(h.expiration, amqp_cstr("60000")));
    assert_true(amqp_bytes_equal(h.reply_to, amqp_cstr("amq.rabbitmq.reply-to")));
    assert_true(amqp_bytes_equal(h.user_id, amqp_cstr("guest")));
    assert_int_equal(h.headers.len, sizeof(headers_bytes));
    /* Raw properties are a slice of the payload, to forward unchanged. */
    assert_ptr_equal(h.props_raw.data, buf + 12);
    assert_int_equal(h.props_raw.len, n - 12);
    assert_true(h.expiration.data > buf && h.expiration.data < buf + n);
}

static void test_content_header_minimal(void **state)
{
    (void)state;
    static const uint8_t w[] = {0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0};
    amqp_content_header h;
    amqp_error err;
    assert_true(amqp_content_header_decode(w, sizeof(w), &h, &err));
    assert_true(h.body_size == 16);
    assert_int_equal(h.flags, 0);
    assert_int_equal(h.delivery_mode, 0);
    assert_int_equal(h.props_raw.len, 2);
}

static void test_content_header_wrong_class(void **state)
{
    (void)state;
    static const uint8_t w[] = {0, 50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0};
    amqp_content_header h;
    amqp_error err;
    assert_false(amqp_content_header_decode(w, sizeof(w), &h, &err));
    assert_int_equal(err.reply_code, AMQP_REPLY_UNEXPECTED_FRAME);
}

static void test_content_header_truncated_every_offset(void **state)
{
    (void)state;
    amqp_basic_props p = props_all();
    uint8_t buf[512];
    size_t n = header_payload(buf, sizeof(buf), 60, 5, &p);
    for (size_t k = 0; k < n; k++) {
        uint8_t *part = test_dup(buf, k);
        amqp_content_header h;
        amqp_error err;
        assert_false(amqp_content_header_decode(part, k, &h, &err));
        assert_int_equal(err.reply_code, AMQP_REPLY_SYNTAX_ERROR);
        free(part);
    }
}

static void test_content_header_continuation_refused(void **state)
{
    (void)state;
    static const uint8_t w[] = {0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x10, 0x01, 2, 0, 0};
    amqp_content_header h;
    amqp_error err;
    assert_false(amqp_content_header_decode(w, sizeof(w), &h, &err));
    assert_int_equal(err.reply_code, AMQP_REPLY_SYNTAX_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_props_all_fourteen),
        cmocka_unit_test(test_props_none),
        cmocka_unit_test(test_props_each_alone),
        cmocka_unit_test(test_props_wire_bytes),
        cmocka_unit_test(test_props_continuation_flag_refused),
        cmocka_unit_test(test_props_encode_long_shortstr_refused),
        cmocka_unit_test(test_props_no_space),
        cmocka_unit_test(test_props_truncated_every_offset),
        cmocka_unit_test(test_props_trailing_bytes_refused),
        cmocka_unit_test(test_props_bad_headers_table_refused),
        cmocka_unit_test(test_content_header_broker_view),
        cmocka_unit_test(test_content_header_minimal),
        cmocka_unit_test(test_content_header_wrong_class),
        cmocka_unit_test(test_content_header_truncated_every_offset),
        cmocka_unit_test(test_content_header_continuation_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
