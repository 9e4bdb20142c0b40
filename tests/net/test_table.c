/* Unit tests for net/amqp_table.c: every field type on the wire, nesting and
 * its bound, validation failures, the iterator and the builder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "net/amqp_table.h"
#include "tests/net/codec_util.h"

/* Decodes one value from its wire bytes (exact-size copy), checks the
 * consumed length, and re-encodes it to the same bytes. */
static amqp_field field_check(const uint8_t *wire, size_t n)
{
    uint8_t *copy = test_dup(wire, n);
    amqp_field f;
    assert_int_equal(amqp_field_decode(copy, n, &f), n);
    assert_int_equal(f.type, wire[0]);
    uint8_t out[64];
    assert_int_equal(amqp_field_encode(&f, out, sizeof(out)), n);
    assert_memory_equal(out, wire, n);
    /* Every shorter span is refused. */
    for (size_t k = 0; k < n; k++) {
        amqp_field g;
        uint8_t *part = test_dup(wire, k);
        assert_int_equal(amqp_field_decode(part, k, &g), 0);
        free(part);
    }
    /* Inside a one-entry table it validates. */
    uint8_t table[80] = {1, 'k'};
    memcpy(table + 2, wire, n);
    assert_true(amqp_table_validate((amqp_table){table, (uint32_t)(2 + n)}, NULL));
    free(copy);
    /* Slices must outlive the copy: hand back the decode of the caller's bytes. */
    assert_int_equal(amqp_field_decode(wire, n, &f), n);
    return f;
}

static void test_field_bool(void **state)
{
    (void)state;
    static const uint8_t w[] = {'t', 1};
    assert_true(field_check(w, sizeof(w)).v.boolean);
    static const uint8_t w0[] = {'t', 0};
    assert_false(field_check(w0, sizeof(w0)).v.boolean);
}

static void test_field_int8(void **state)
{
    (void)state;
    static const uint8_t w[] = {'b', 0x80};
    assert_int_equal(field_check(w, sizeof(w)).v.i8, -128);
}

static void test_field_uint8(void **state)
{
    (void)state;
    static const uint8_t w[] = {'B', 0xFF};
    assert_int_equal(field_check(w, sizeof(w)).v.u8, 255);
}

static void test_field_int16(void **state)
{
    (void)state;
    static const uint8_t w[] = {'s', 0xFF, 0xFE};
    assert_int_equal(field_check(w, sizeof(w)).v.i16, -2);
}

static void test_field_uint16(void **state)
{
    (void)state;
    static const uint8_t w[] = {'u', 0xFF, 0xFE};
    assert_int_equal(field_check(w, sizeof(w)).v.u16, 65534);
}

static void test_field_int32(void **state)
{
    (void)state;
    static const uint8_t w[] = {'I', 0x80, 0, 0, 0};
    assert_int_equal(field_check(w, sizeof(w)).v.i32, INT32_MIN);
}

static void test_field_uint32(void **state)
{
    (void)state;
    static const uint8_t w[] = {'i', 0xFF, 0xFF, 0xFF, 0xFF};
    assert_int_equal(field_check(w, sizeof(w)).v.u32, UINT32_MAX);
}

static void test_field_int64(void **state)
{
    (void)state;
    static const uint8_t w[] = {'l', 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFD};
    assert_true(field_check(w, sizeof(w)).v.i64 == -3);
}

static void test_field_float(void **state)
{
    (void)state;
    static const uint8_t w[] = {'f', 0x3F, 0xC0, 0, 0}; /* 1.5f */
    assert_true(field_check(w, sizeof(w)).v.f32 == 1.5f);
}

static void test_field_double(void **state)
{
    (void)state;
    static const uint8_t w[] = {'d', 0xC0, 0x04, 0, 0, 0, 0, 0, 0}; /* -2.5 */
    assert_true(field_check(w, sizeof(w)).v.f64 == -2.5);
}

static void test_field_decimal(void **state)
{
    (void)state;
    static const uint8_t w[] = {'D', 2, 0, 0, 0x30, 0x39}; /* 123.45 */
    amqp_field f = field_check(w, sizeof(w));
    assert_int_equal(f.v.decimal.scale, 2);
    assert_int_equal(f.v.decimal.value, 12345);
}

static void test_field_longstr(void **state)
{
    (void)state;
    static const uint8_t w[] = {'S', 0, 0, 0, 3, 'a', 'b', 'c'};
    amqp_field f = field_check(w, sizeof(w));
    assert_int_equal(f.v.bytes.len, 3);
    assert_memory_equal(f.v.bytes.data, "abc", 3);
    static const uint8_t empty[] = {'S', 0, 0, 0, 0};
    assert_int_equal(field_check(empty, sizeof(empty)).v.bytes.len, 0);
}

static void test_field_byte_array(void **state)
{
    (void)state;
    static const uint8_t w[] = {'x', 0, 0, 0, 2, 0x00, 0xFF};
    amqp_field f = field_check(w, sizeof(w));
    assert_int_equal(f.v.bytes.len, 2);
    assert_int_equal(f.v.bytes.data[1], 0xFF);
}

static void test_field_array(void **state)
{
    (void)state;
    static const uint8_t w[] = {'A', 0, 0, 0, 7, 't', 1, 'I', 0, 0, 0, 9};
    amqp_field f = field_check(w, sizeof(w));
    assert_int_equal(f.v.array.len, 7);
    amqp_table_iter it;
    amqp_field v;
    amqp_array_iter_init(&it, f.v.array);
    assert_true(amqp_array_iter_next(&it, &v));
    assert_int_equal(v.type, 't');
    assert_true(amqp_array_iter_next(&it, &v));
    assert_int_equal(v.v.i32, 9);
    assert_false(amqp_array_iter_next(&it, &v));
}

static void test_field_timestamp(void **state)
{
    (void)state;
    static const uint8_t w[] = {'T', 0, 0, 0, 0, 0x65, 0x5B, 0x5A, 0x00};
    assert_true(field_check(w, sizeof(w)).v.timestamp_s == 0x655B5A00u);
}

static void test_field_nested_table(void **state)
{
    (void)state;
    static const uint8_t w[] = {'F', 0, 0, 0, 3, 1, 'z', 'V'};
    amqp_field f = field_check(w, sizeof(w));
    assert_int_equal(f.v.table.len, 3);
    assert_int_equal(amqp_table_count(f.v.table), 1);
}

static void test_field_void(void **state)
{
    (void)state;
    static const uint8_t w[] = {'V'};
    assert_int_equal(field_check(w, sizeof(w)).type, AMQP_FIELD_VOID);
}

/* ---- validation ---- */

static void expect_invalid(const uint8_t *entries, size_t n, const char *text)
{
    uint8_t *copy = test_dup(entries, n);
    amqp_error err = {0};
    assert_false(amqp_table_validate((amqp_table){copy, (uint32_t)n}, &err));
    assert_int_equal(err.reply_code, AMQP_REPLY_SYNTAX_ERROR);
    if (text != NULL) assert_string_equal(err.text, text);
    free(copy);
}

static void test_unknown_type_refused(void **state)
{
    (void)state;
    static const uint8_t w[] = {1, 'k', 'Z', 0, 0};
    expect_invalid(w, sizeof(w), "unknown field type");
    /* 'L' and 'U' are in the 0-9-1 spec but not in RabbitMQ's set. */
    static const uint8_t w2[] = {1, 'k', 'U', 0, 0};
    expect_invalid(w2, sizeof(w2), "unknown field type");
}

static void test_name_overrun_refused(void **state)
{
    (void)state;
    static const uint8_t w[] = {9, 'k', 't', 1};
    expect_invalid(w, sizeof(w), "truncated field name");
}

static void test_name_without_value_refused(void **state)
{
    (void)state;
    static const uint8_t w[] = {1, 'k'};
    expect_invalid(w, sizeof(w), "truncated field name");
}

static void test_value_overrun_refused(void **state)
{
    (void)state;
    static const uint8_t w[] = {1, 'k', 'S', 0, 0, 0, 9, 'a'};
    expect_invalid(w, sizeof(w), "truncated field value");
}

static void test_bad_nested_table_refused(void **state)
{
    (void)state;
    /* The inner table's entry has an unknown type. */
    static const uint8_t w[] = {1, 'o', 'F', 0, 0, 0, 4, 1, 'i', '?', 0};
    expect_invalid(w, sizeof(w), NULL);
    /* Inner length runs past the outer table. */
    static const uint8_t w2[] = {1, 'o', 'F', 0, 0, 0, 9, 1, 'i', 'V'};
    expect_invalid(w2, sizeof(w2), "truncated field value");
}

static void test_bad_array_element_refused(void **state)
{
    (void)state;
    static const uint8_t w[] = {1, 'a', 'A', 0, 0, 0, 3, 't', 1, 'q'};
    expect_invalid(w, sizeof(w), "unknown field type");
}

/* Nests `levels` tables (the outermost being the top-level one) holding
 * a single void at the bottom; returns the entries length. */
static size_t build_nested(uint8_t *buf, size_t cap, unsigned levels)
{
    amqp_table_builder b;
    amqp_table_builder_init(&b, buf, cap);
    for (unsigned i = 1; i < levels; i++) amqp_table_open_table(&b, "n");
    amqp_field v = {.type = AMQP_FIELD_VOID};
    amqp_table_add(&b, "leaf", &v);
    for (unsigned i = 1; i < levels; i++) amqp_table_close(&b);
    amqp_table t;
    assert_true(amqp_table_builder_finish(&b, &t));
    return t.len;
}

static void test_depth_bound(void **state)
{
    (void)state;
    uint8_t buf[1024];
    size_t n = build_nested(buf, sizeof(buf), LIMIT_TABLE_DEPTH_MAX);
    amqp_error err;
    assert_true(amqp_table_validate((amqp_table){buf, (uint32_t)n}, &err));
    /* One level more, written by hand: wrap the maximal table in another. */
    uint8_t deeper[1100] = {1, 'n', 'F'};
    deeper[3] = (uint8_t)(n >> 24), deeper[4] = (uint8_t)(n >> 16);
    deeper[5] = (uint8_t)(n >> 8), deeper[6] = (uint8_t)n;
    memcpy(deeper + 7, buf, n);
    assert_false(amqp_table_validate((amqp_table){deeper, (uint32_t)(n + 7)}, &err));
    assert_int_equal(err.reply_code, AMQP_REPLY_SYNTAX_ERROR);
    assert_string_equal(err.text, "field table nesting too deep");
}

static void test_depth_bound_through_arrays(void **state)
{
    (void)state;
    /* 20 nested arrays inside a table: refused without deep recursion. */
    uint8_t w[3 + 20 * 5 + 1];
    size_t at = 0;
    w[at++] = 1, w[at++] = 'a';
    for (int i = 0; i < 20; i++) {
        uint32_t inner = (uint32_t)((19 - i) * 5 + 1);
        w[at++] = 'A';
        w[at++] = 0, w[at++] = 0, w[at++] = (uint8_t)(inner >> 8), w[at++] = (uint8_t)inner;
    }
    w[at++] = 'V';
    expect_invalid(w, at, "field table nesting too deep");
}

static void test_table_read_length_prefix(void **state)
{
    (void)state;
    static const uint8_t w[] = {0, 0, 0, 3, 1, 'k', 'V', 0xEE};
    amqp_table t;
    amqp_error err;
    assert_int_equal(amqp_table_read(w, sizeof(w), &t, &err), 7);
    assert_ptr_equal(t.data, w + 4);
    assert_int_equal(t.len, 3);
    assert_int_equal(amqp_table_read(w, 3, &t, &err), 0);
    assert_int_equal(amqp_table_read(w, 6, &t, &err), 0);
    assert_int_equal(err.reply_code, AMQP_REPLY_SYNTAX_ERROR);
}

static void test_truncated_table_every_offset(void **state)
{
    (void)state;
    uint8_t buf[256];
    amqp_table_builder b;
    amqp_table_builder_init(&b, buf + 4, sizeof(buf) - 4);
    amqp_table_add_cstr(&b, "x-queue-type", "quorum");
    amqp_table_add_int64(&b, "x-max-length", 1000);
    amqp_table_open_array(&b, "list");
    amqp_table_add_bool(&b, NULL, true);
    amqp_table_add_int32(&b, NULL, -1);
    amqp_table_close(&b);
    amqp_table t;
    assert_true(amqp_table_builder_finish(&b, &t));
    buf[0] = 0, buf[1] = 0, buf[2] = 0, buf[3] = (uint8_t)t.len;
    size_t total = 4 + t.len;
    for (size_t k = 0; k < total; k++) {
        uint8_t *part = test_dup(buf, k);
        amqp_table out;
        amqp_error err;
        assert_int_equal(amqp_table_read(part, k, &out, &err), 0);
        assert_int_equal(err.reply_code, AMQP_REPLY_SYNTAX_ERROR);
        free(part);
    }
    amqp_table out;
    assert_int_equal(amqp_table_read(buf, total, &out, NULL), total);
}

static void test_empty_table(void **state)
{
    (void)state;
    amqp_table t = {NULL, 0};
    assert_true(amqp_table_validate(t, NULL));
    assert_int_equal(amqp_table_count(t), 0);
    amqp_field v;
    assert_false(amqp_table_get(t, amqp_cstr("k"), &v));
}

/* ---- iterator and builder ---- */

static void test_builder_every_type_and_iterate(void **state)
{
    (void)state;
    static const uint8_t bytes[] = {1, 2, 3};
    amqp_field fields[] = {
        {.type = 't', .v.boolean = true},
        {.type = 'b', .v.i8 = -5},
        {.type = 'B', .v.u8 = 250},
        {.type = 's', .v.i16 = -300},
        {.type = 'u', .v.u16 = 60000},
        {.type = 'I', .v.i32 = -70000},
        {.type = 'i', .v.u32 = 4000000000u},
        {.type = 'l', .v.i64 = -5000000000LL},
        {.type = 'f', .v.f32 = 0.25f},
        {.type = 'd', .v.f64 = 1e300},
        {.type = 'D', .v.decimal = {3, 1234}},
        {.type = 'S', .v.bytes = {(const uint8_t *)"str", 3}},
        {.type = 'x', .v.bytes = {bytes, 3}},
        {.type = 'T', .v.timestamp_s = 1700000000},
        {.type = 'V'},
    };
    const size_t count = sizeof(fields) / sizeof(fields[0]);
    uint8_t buf[512];
    amqp_table_builder b;
    amqp_table_builder_init(&b, buf, sizeof(buf));
    char key[16];
    for (size_t i = 0; i < count; i++) {
        key[0] = 'k', key[1] = (char)('a' + i), key[2] = 0;
        amqp_table_add(&b, key, &fields[i]);
    }
    amqp_table_open_table(&b, "tbl");
    amqp_table_add_cstr(&b, "inner", "v");
    amqp_table_close(&b);
    amqp_table_open_array(&b, "arr");
    amqp_table_add_int32(&b, NULL, 1);
    amqp_table_open_table(&b, NULL);
    amqp_table_close(&b);
    amqp_table_close(&b);
    amqp_table t;
    assert_true(amqp_table_builder_finish(&b, &t));
    assert_true(amqp_table_validate(t, NULL));
    assert_int_equal(amqp_table_count(t), count + 2);

    amqp_table_iter it;
    amqp_bytes k;
    amqp_field v;
    amqp_table_iter_init(&it, t);
    for (size_t i = 0; i < count; i++) {
        assert_true(amqp_table_iter_next(&it, &k, &v));
        assert_int_equal(k.len, 2);
        assert_int_equal(k.data[1], 'a' + i);
        assert_int_equal(v.type, fields[i].type);
        uint8_t e1[32], e2[32];
        size_t n1 = amqp_field_encode(&v, e1, sizeof(e1));
        size_t n2 = amqp_field_encode(&fields[i], e2, sizeof(e2));
        assert_true(n1 > 0);
        assert_int_equal(n1, n2);
        assert_memory_equal(e1, e2, n1);
    }
    assert_true(amqp_table_iter_next(&it, &k, &v));
    assert_int_equal(v.type, 'F');
    amqp_field inner;
    assert_true(amqp_table_get(v.v.table, amqp_cstr("inner"), &inner));
    assert_int_equal(inner.v.bytes.len, 1);
    assert_true(amqp_table_iter_next(&it, &k, &v));
    assert_int_equal(v.type, 'A');
    assert_false(amqp_table_iter_next(&it, &k, &v));
}

static void test_table_get(void **state)
{
    (void)state;
    uint8_t buf[128];
    amqp_table_builder b;
    amqp_table_builder_init(&b, buf, sizeof(buf));
    amqp_table_add_int64(&b, "x-message-ttl", 60000);
    amqp_table_add_cstr(&b, "x-dead-letter-exchange", "dlx");
    amqp_table t;
    assert_true(amqp_table_builder_finish(&b, &t));
    amqp_field v;
    assert_true(amqp_table_get(t, amqp_cstr("x-message-ttl"), &v));
    assert_int_equal(v.type, 'l');
    assert_true(v.v.i64 == 60000);
    assert_true(amqp_table_get(t, amqp_cstr("x-dead-letter-exchange"), &v));
    assert_true(amqp_bytes_equal(v.v.bytes, amqp_cstr("dlx")));
    assert_false(amqp_table_get(t, amqp_cstr("x-max-length"), &v));
}

static void test_builder_out_of_space(void **state)
{
    (void)state;
    uint8_t buf[16];
    amqp_table_builder b;
    amqp_table_builder_init(&b, buf, sizeof(buf));
    amqp_table_add_bool(&b, "ok", true); /* 5 bytes */
    amqp_table_open_table(&b, "t");      /* 7 bytes: 12 */
    amqp_table_add_cstr(&b, "long", "does not fit");
    amqp_table_close(&b);
    amqp_table t;
    assert_false(amqp_table_builder_finish(&b, &t));
}

static void test_builder_exact_fit(void **state)
{
    (void)state;
    uint8_t buf[5];
    amqp_table_builder b;
    amqp_table_builder_init(&b, buf, sizeof(buf));
    amqp_table_add_bool(&b, "ok", true);
    amqp_table t;
    assert_true(amqp_table_builder_finish(&b, &t));
    assert_int_equal(t.len, 5);
    static const uint8_t want[] = {2, 'o', 'k', 't', 1};
    assert_memory_equal(t.data, want, 5);
    amqp_table_builder_init(&b, buf, 4);
    amqp_table_add_bool(&b, "ok", true);
    assert_false(amqp_table_builder_finish(&b, &t));
}

static void test_builder_key_too_long(void **state)
{
    (void)state;
    static char key[257];
    memset(key, 'k', 256);
    uint8_t buf[1024];
    amqp_table_builder b;
    amqp_table_builder_init(&b, buf, sizeof(buf));
    amqp_table_add_bool(&b, key, true);
    amqp_table t;
    assert_false(amqp_table_builder_finish(&b, &t));
    key[255] = 0;
    amqp_table_builder_init(&b, buf, sizeof(buf));
    amqp_table_add_bool(&b, key, true);
    assert_true(amqp_table_builder_finish(&b, &t));
    assert_true(amqp_table_validate(t, NULL));
}

static void test_iterator_stops_on_malformed(void **state)
{
    (void)state;
    static const uint8_t w[] = {1, 'a', 't', 1, 1, 'b', 'Z', 0};
    amqp_table_iter it;
    amqp_bytes k;
    amqp_field v;
    amqp_table_iter_init(&it, (amqp_table){w, sizeof(w)});
    assert_true(amqp_table_iter_next(&it, &k, &v));
    assert_false(amqp_table_iter_next(&it, &k, &v));
    assert_false(amqp_table_iter_next(&it, &k, &v));
}

static void test_field_encode_no_space(void **state)
{
    (void)state;
    amqp_field f = {.type = 'l', .v.i64 = 1};
    uint8_t out[8];
    assert_int_equal(amqp_field_encode(&f, out, 8), 0);
    uint8_t out9[9];
    assert_int_equal(amqp_field_encode(&f, out9, 9), 9);
    amqp_field bad = {.type = 'Q'};
    assert_int_equal(amqp_field_encode(&bad, out9, 9), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_field_bool),
        cmocka_unit_test(test_field_int8),
        cmocka_unit_test(test_field_uint8),
        cmocka_unit_test(test_field_int16),
        cmocka_unit_test(test_field_uint16),
        cmocka_unit_test(test_field_int32),
        cmocka_unit_test(test_field_uint32),
        cmocka_unit_test(test_field_int64),
        cmocka_unit_test(test_field_float),
        cmocka_unit_test(test_field_double),
        cmocka_unit_test(test_field_decimal),
        cmocka_unit_test(test_field_longstr),
        cmocka_unit_test(test_field_byte_array),
        cmocka_unit_test(test_field_array),
        cmocka_unit_test(test_field_timestamp),
        cmocka_unit_test(test_field_nested_table),
        cmocka_unit_test(test_field_void),
        cmocka_unit_test(test_unknown_type_refused),
        cmocka_unit_test(test_name_overrun_refused),
        cmocka_unit_test(test_name_without_value_refused),
        cmocka_unit_test(test_value_overrun_refused),
        cmocka_unit_test(test_bad_nested_table_refused),
        cmocka_unit_test(test_bad_array_element_refused),
        cmocka_unit_test(test_depth_bound),
        cmocka_unit_test(test_depth_bound_through_arrays),
        cmocka_unit_test(test_table_read_length_prefix),
        cmocka_unit_test(test_truncated_table_every_offset),
        cmocka_unit_test(test_empty_table),
        cmocka_unit_test(test_builder_every_type_and_iterate),
        cmocka_unit_test(test_table_get),
        cmocka_unit_test(test_builder_out_of_space),
        cmocka_unit_test(test_builder_exact_fit),
        cmocka_unit_test(test_builder_key_too_long),
        cmocka_unit_test(test_iterator_stops_on_malformed),
        cmocka_unit_test(test_field_encode_no_space),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
