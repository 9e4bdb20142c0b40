/* Unit tests for net/amqp_method.c: a generated round trip for every method
 * of the table, hand-written wire encodings, truncation at every offset and
 * malformed arguments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/amqp_method.h"
#include "net/amqp_table.h"
#include "tests/net/codec_util.h"

/* A small valid table ({"k": S "v", "n": I 7}) for table arguments. */
static const uint8_t table_bytes[] = {1, 'k', 'S', 0, 0, 0, 1, 'v', 1, 'n', 'I', 0, 0, 0, 7};
static const char long_text[] = "a longer string value used as longstr";

/* ---- generated fill / compare ---- */

static void fill_bit(bool *v, unsigned *seed)
{
    *v = ((*seed)++ % 3) != 1;
}
static void fill_octet(uint8_t *v, unsigned *seed)
{
    *v = (uint8_t)(0xA0 + (*seed)++);
}
static void fill_short(uint16_t *v, unsigned *seed)
{
    *v = (uint16_t)(0xBEEF + (*seed)++);
}
static void fill_long(uint32_t *v, unsigned *seed)
{
    *v = 0xDEADBEEFu + (*seed)++;
}
static void fill_longlong(uint64_t *v, unsigned *seed)
{
    *v = 0x0102030405060708ull + (*seed)++;
}
static void fill_shortstr(amqp_bytes *v, unsigned *seed)
{
    static const char *names[] = {"amq.direct", "", "q", "routing.key.#"};
    *v = amqp_cstr(names[(*seed)++ % 4]);
}
static void fill_longstr(amqp_bytes *v, unsigned *seed)
{
    (*seed)++;
    *v = amqp_cstr(long_text);
}
static void fill_table(amqp_table *v, unsigned *seed)
{
    (*seed)++;
    *v = (amqp_table){.data = table_bytes, .len = sizeof(table_bytes)};
}

static void cmp_bit(bool a, bool b)
{
    assert_int_equal(a, b);
}
static void cmp_octet(uint8_t a, uint8_t b)
{
    assert_int_equal(a, b);
}
static void cmp_short(uint16_t a, uint16_t b)
{
    assert_int_equal(a, b);
}
static void cmp_long(uint32_t a, uint32_t b)
{
    assert_int_equal(a, b);
}
static void cmp_longlong(uint64_t a, uint64_t b)
{
    assert_true(a == b);
}
static void cmp_shortstr(amqp_bytes a, amqp_bytes b)
{
    assert_true(amqp_bytes_equal(a, b));
}
static void cmp_longstr(amqp_bytes a, amqp_bytes b)
{
    assert_true(amqp_bytes_equal(a, b));
}
static void cmp_table(amqp_table a, amqp_table b)
{
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
}

#define FILL_FIELD(type, field) fill_##type(&a->field, &seed);
#define CMP_FIELD(type, field)  cmp_##type(x->field, y->field);
#define CMP_CASE(E, n, s, c, m, sync, content)                                                     \
    case AMQP_##E: {                                                                               \
        const amqp_##n *x = &a->a.n, *y = &b->a.n;                                                 \
        (void)x, (void)y;                                                                          \
        AMQP_ARGS_##n(CMP_FIELD) break;                                                            \
    }

static void method_compare(const amqp_method *a, const amqp_method *b)
{
    assert_int_equal(a->id, b->id);
    switch (a->id) {
        AMQP_METHOD_LIST(CMP_CASE)
    default:
        fail();
    }
}

/* Encode, check the size, decode from an exact-size copy, compare, and
 * re-encode the decoded method to the same bytes. */
static void roundtrip_check(const amqp_method *in)
{
    uint8_t buf[1024];
    amqp_error err = {0};
    ssize_t n = amqp_method_encode(in, buf, sizeof(buf), &err);
    assert_true(n >= 4);
    assert_int_equal((size_t)n, amqp_method_size(in));
    uint8_t *copy = test_dup(buf, (size_t)n);
    amqp_method out;
    memset(&out, 0xAA, sizeof(out));
    assert_true(amqp_method_decode(copy, (size_t)n, &out, &err));
    method_compare(in, &out);
    uint8_t again[1024];
    assert_int_equal(amqp_method_encode(&out, again, sizeof(again), &err), n);
    assert_memory_equal(buf, again, (size_t)n);
    /* One byte short of the space needed is refused. */
    assert_int_equal(amqp_method_encode(in, buf, (size_t)n - 1, &err), -1);
    assert_int_equal(err.reply_code, AMQP_REPLY_INTERNAL_ERROR);
    free(copy);
}

#define RT_TEST(E, n, s, c, m, sync, content)                                                      \
    static void test_roundtrip_##n(void **state)                                                   \
    {                                                                                              \
        (void)state;                                                                               \
        amqp_method in;                                                                            \
        memset(&in, 0, sizeof(in));                                                                \
        in.id = AMQP_##E;                                                                          \
        amqp_##n *a = &in.a.n;                                                                     \
        unsigned seed = (c)*1000u + (m);                                                           \
        (void)a, (void)seed;                                                                       \
        AMQP_ARGS_##n(FILL_FIELD) roundtrip_check(&in);                                            \
    }
AMQP_METHOD_LIST(RT_TEST)

/* ---- hand-written encodings from the spec ---- */

static void expect_encoding(const amqp_method *m, const uint8_t *wire, size_t wire_len)
{
    uint8_t buf[512];
    amqp_error err;
    ssize_t n = amqp_method_encode(m, buf, sizeof(buf), &err);
    assert_int_equal(n, (ssize_t)wire_len);
    assert_memory_equal(buf, wire, wire_len);
    amqp_method out;
    assert_true(amqp_method_decode(wire, wire_len, &out, &err));
    method_compare(m, &out);
}

static void test_wire_basic_publish(void **state)
{
    (void)state;
    amqp_method m = {.id = AMQP_BASIC_PUBLISH};
    m.a.basic_publish.routing_key = amqp_cstr("q");
    m.a.basic_publish.mandatory = true;
    static const uint8_t wire[] = {0, 60, 0, 40, 0, 0, 0, 1, 'q', 0x01};
    expect_encoding(&m, wire, sizeof(wire));
}

static void test_wire_connection_tune(void **state)
{
    (void)state;
    amqp_method m = {.id = AMQP_CONNECTION_TUNE};
    m.a.connection_tune = (amqp_connection_tune){2047, 131072, 60};
    static const uint8_t wire[] = {0, 10, 0, 30, 0x07, 0xFF, 0, 2, 0, 0, 0, 60};
    expect_encoding(&m, wire, sizeof(wire));
}

static void test_wire_queue_declare_bits(void **state)
{
    (void)state;
    amqp_method m = {.id = AMQP_QUEUE_DECLARE};
    m.a.queue_declare.queue = amqp_cstr("hello");
    m.a.queue_declare.durable = true;
    m.a.queue_declare.auto_delete = true;
    /* passive(0) durable(1) exclusive(0) auto-delete(1) nowait(0) -> 0x0A */
    static const uint8_t wire[] = {0,   50,  0,   10,   0, 0, 5, 'h', 'e',
                                   'l', 'l', 'o', 0x0A, 0, 0, 0, 0};
    expect_encoding(&m, wire, sizeof(wire));
}

static void test_wire_basic_ack(void **state)
{
    (void)state;
    amqp_method m = {.id = AMQP_BASIC_ACK};
    m.a.basic_ack = (amqp_basic_ack){.delivery_tag = 5, .multiple = true};
    static const uint8_t wire[] = {0, 60, 0, 80, 0, 0, 0, 0, 0, 0, 0, 5, 1};
    expect_encoding(&m, wire, sizeof(wire));
}

static void test_wire_basic_nack(void **state)
{
    (void)state;
    amqp_method m = {.id = AMQP_BASIC_NACK};
    m.a.basic_nack = (amqp_basic_nack){.delivery_tag = 0x1122, .multiple = false, .requeue = true};
    static const uint8_t wire[] = {0, 60, 0, 120, 0, 0, 0, 0, 0, 0, 0x11, 0x22, 0x02};
    expect_encoding(&m, wire, sizeof(wire));
}

static void test_wire_exchange_unbind_ok_is_51(void **state)
{
    (void)state;
    amqp_method m = {.id = AMQP_EXCHANGE_UNBIND_OK};
    static const uint8_t wire[] = {0, 40, 0, 51};
    expect_encoding(&m, wire, sizeof(wire));
    assert_string_equal(amqp_method_name(AMQP_METHOD_ID(40, 51)), "exchange.unbind-ok");
}

static void test_wire_connection_close(void **state)
{
    (void)state;
    amqp_method m = {.id = AMQP_CONNECTION_CLOSE};
    m.a.connection_close = (amqp_connection_close){320, amqp_cstr("bye"), 60, 40};
    static const uint8_t wire[] = {0, 10, 0, 50, 0x01, 0x40, 3, 'b', 'y', 'e', 0, 60, 0, 40};
    expect_encoding(&m, wire, sizeof(wire));
}

static void test_wire_access_request_five_bits(void **state)
{
    (void)state;
    amqp_method m = {.id = AMQP_ACCESS_REQUEST};
    m.a.access_request = (amqp_access_request){amqp_cstr("/data"), true, false, true, true, true};
    static const uint8_t wire[] = {0, 30, 0, 10, 5, '/', 'd', 'a', 't', 'a', 0x1D};
    expect_encoding(&m, wire, sizeof(wire));
}

static void test_wire_basic_deliver_bit_between_strings(void **state)
{
    (void)state;
    amqp_method m = {.id = AMQP_BASIC_DELIVER};
    m.a.basic_deliver =
        (amqp_basic_deliver){amqp_cstr("ct"), 9, true, amqp_cstr("x"), amqp_cstr("rk")};
    static const uint8_t wire[] = {0, 60, 0, 60, 2, 'c', 't', 0, 0,   0,  0,
                                   0, 0,  0, 9,  1, 1,   'x', 2, 'r', 'k'};
    expect_encoding(&m, wire, sizeof(wire));
}

static void test_wire_connection_start_ok(void **state)
{
    (void)state;
    amqp_method m = {.id = AMQP_CONNECTION_START_OK};
    static const uint8_t props[] = {1, 'p', 't', 1};
    m.a.connection_start_ok = (amqp_connection_start_ok){
        {props, sizeof(props)}, amqp_cstr("PLAIN"), amqp_cstr("\0u\0p"), amqp_cstr("en_US")};
    m.a.connection_start_ok.response.len = 4;
    static const uint8_t wire[] = {0, 10,  0,   11,  0,   0,   0,   4,   1,   'p', 't',
                                   1, 5,   'P', 'L', 'A', 'I', 'N', 0,   0,   0,   4,
                                   0, 'u', 0,   'p', 5,   'e', 'n', '_', 'U', 'S'};
    expect_encoding(&m, wire, sizeof(wire));
}

static void test_wire_no_argument_methods(void **state)
{
    (void)state;
    static const amqp_method_id ids[] = {AMQP_CONNECTION_CLOSE_OK, AMQP_TX_SELECT,
                                         AMQP_TX_COMMIT_OK, AMQP_CONFIRM_SELECT_OK,
                                         AMQP_BASIC_RECOVER_OK};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        amqp_method m = {.id = ids[i]};
        uint8_t wire[4] = {0, (uint8_t)(ids[i] >> 16), 0, (uint8_t)ids[i]};
        expect_encoding(&m, wire, 4);
    }
}

/* A bit run ends at the next non-bit argument: exchange.declare's five bits
 * share one octet and its table starts on the next. */
static void test_bits_end_at_other_type(void **state)
{
    (void)state;
    amqp_method m = {.id = AMQP_EXCHANGE_DECLARE};
    m.a.exchange_declare.exchange = amqp_cstr("e");
    m.a.exchange_declare.type = amqp_cstr("topic");
    m.a.exchange_declare.passive = true;
    m.a.exchange_declare.nowait = true;
    static const uint8_t wire[] = {0,   40,  0,   10,  0,    0, 1, 'e', 5, 't',
                                   'o', 'p', 'i', 'c', 0x11, 0, 0, 0,   0};
    expect_encoding(&m, wire, sizeof(wire));
}

/* ---- metadata ---- */

static void test_table_metadata(void **state)
{
    (void)state;
    assert_int_equal(AMQP_METHOD_COUNT, 66);
    for (uint32_t i = 0; i < AMQP_METHOD_COUNT; i++) {
        amqp_method_id id = amqp_method_at(i);
        assert_true(amqp_method_known(id));
        assert_true(strchr(amqp_method_name(id), '.') != NULL);
    }
    assert_true(amqp_method_is_synchronous(AMQP_QUEUE_DECLARE));
    assert_false(amqp_method_is_synchronous(AMQP_QUEUE_DECLARE_OK));
    assert_false(amqp_method_is_synchronous(AMQP_BASIC_PUBLISH));
    assert_true(amqp_method_has_content(AMQP_BASIC_PUBLISH));
    assert_true(amqp_method_has_content(AMQP_BASIC_DELIVER));
    assert_true(amqp_method_has_content(AMQP_BASIC_GET_OK));
    assert_true(amqp_method_has_content(AMQP_BASIC_RETURN));
    assert_false(amqp_method_has_content(AMQP_BASIC_ACK));
    assert_false(amqp_method_known(AMQP_METHOD_ID(60, 41)));
    assert_string_equal(amqp_method_name(AMQP_BASIC_PUBLISH), "basic.publish");
    assert_int_equal(amqp_method_class_id(AMQP_BASIC_NACK), 60);
    assert_int_equal(amqp_method_method_id(AMQP_BASIC_NACK), 120);
}

/* ---- boundaries ---- */

static void test_shortstr_255_accepted_256_refused(void **state)
{
    (void)state;
    static char name[257];
    memset(name, 'n', 256);
    amqp_method m = {.id = AMQP_QUEUE_DELETE};
    m.a.queue_delete.queue = (amqp_bytes){(const uint8_t *)name, 255};
    uint8_t buf[512];
    amqp_error err;
    ssize_t n = amqp_method_encode(&m, buf, sizeof(buf), &err);
    assert_int_equal(n, 4 + 2 + 1 + 255 + 1);
    assert_int_equal(buf[6], 255);
    amqp_method out;
    assert_true(amqp_method_decode(buf, (size_t)n, &out, &err));
    assert_int_equal(out.a.queue_delete.queue.len, 255);
    m.a.queue_delete.queue.len = 256;
    assert_int_equal(amqp_method_encode(&m, buf, sizeof(buf), &err), -1);
    assert_int_equal(err.reply_code, AMQP_REPLY_SYNTAX_ERROR);
    assert_int_equal(err.class_id, 50);
    assert_int_equal(err.method_id, 40);
}

static void test_empty_strings(void **state)
{
    (void)state;
    amqp_method m = {.id = AMQP_CONNECTION_OPEN};
    amqp_method out;
    uint8_t buf[64];
    amqp_error err;
    ssize_t n = amqp_method_encode(&m, buf, sizeof(buf), &err);
    assert_int_equal(n, 4 + 1 + 1 + 1);
    assert_true(amqp_method_decode(buf, (size_t)n, &out, &err));
    assert_int_equal(out.a.connection_open.virtual_host.len, 0);
    assert_false(out.a.connection_open.insist);
}

static void test_decode_is_zero_copy(void **state)
{
    (void)state;
    static const uint8_t wire[] = {0, 60, 0, 40, 0, 0, 3, 'e', 'x', 'n', 2, 'r', 'k', 0};
    amqp_method out;
    amqp_error err;
    assert_true(amqp_method_decode(wire, sizeof(wire), &out, &err));
    assert_ptr_equal(out.a.basic_publish.exchange.data, wire + 7);
    assert_ptr_equal(out.a.basic_publish.routing_key.data, wire + 11);
}

/* ---- truncation at every offset ---- */

static void truncate_every_offset(const amqp_method *m)
{
    uint8_t buf[1024];
    amqp_error err;
    ssize_t n = amqp_method_encode(m, buf, sizeof(buf), &err);
    assert_true(n > 4);
    for (size_t k = 0; k < (size_t)n; k++) {
        uint8_t *copy = test_dup(buf, k);
        amqp_method out;
        memset(&err, 0, sizeof(err));
        assert_false(amqp_method_decode(copy, k, &out, &err));
        assert_int_equal(err.reply_code, AMQP_REPLY_SYNTAX_ERROR);
        assert_non_null(err.text);
        if (k >= 4) assert_int_equal(err.class_id, amqp_method_class_id(m->id));
        free(copy);
    }
}

static void test_truncated_basic_publish(void **state)
{
    (void)state;
    amqp_method m = {.id = AMQP_BASIC_PUBLISH};
    m.a.basic_publish = (amqp_basic_publish){0, amqp_cstr("amq.topic"), amqp_cstr("a.b.c"), 1, 1};
    truncate_every_offset(&m);
}

static void test_truncated_queue_declare_with_table(void **state)
{
    (void)state;
    amqp_method m = {.id = AMQP_QUEUE_DECLARE};
    m.a.queue_declare.queue = amqp_cstr("orders");
    m.a.queue_declare.durable = true;
    m.a.queue_declare.arguments = (amqp_table){table_bytes, sizeof(table_bytes)};
    truncate_every_offset(&m);
}

static void test_truncated_connection_start(void **state)
{
    (void)state;
    amqp_method m = {.id = AMQP_CONNECTION_START};
    m.a.connection_start = (amqp_connection_start){
        0, 9, {table_bytes, sizeof(table_bytes)}, amqp_cstr("PLAIN AMQPLAIN"), amqp_cstr("en_US")};
    truncate_every_offset(&m);
}

static void test_truncated_basic_deliver(void **state)
{
    (void)state;
    amqp_method m = {.id = AMQP_BASIC_DELIVER};
    m.a.basic_deliver =
        (amqp_basic_deliver){amqp_cstr("ctag"), 77, true, amqp_cstr("ex"), amqp_cstr("key")};
    truncate_every_offset(&m);
}

static void test_truncated_channel_close(void **state)
{
    (void)state;
    amqp_method m = {.id = AMQP_CHANNEL_CLOSE};
    m.a.channel_close = (amqp_channel_close){404, amqp_cstr("NOT_FOUND - no queue"), 50, 10};
    truncate_every_offset(&m);
}

static void test_truncated_basic_nack(void **state)
{
    (void)state;
    amqp_method m = {.id = AMQP_BASIC_NACK};
    m.a.basic_nack = (amqp_basic_nack){123456789, true, true};
    truncate_every_offset(&m);
}

/* ---- malformed ---- */

static void test_unknown_method_is_command_invalid(void **state)
{
    (void)state;
    static const uint8_t wire[] = {0, 60, 0x03, 0xE7};
    amqp_method out;
    amqp_error err;
    assert_false(amqp_method_decode(wire, sizeof(wire), &out, &err));
    assert_int_equal(err.reply_code, AMQP_REPLY_COMMAND_INVALID);
    assert_int_equal(err.class_id, 60);
    assert_int_equal(err.method_id, 999);
}

static void test_unknown_class_is_command_invalid(void **state)
{
    (void)state;
    static const uint8_t wire[] = {0, 99, 0, 10, 1, 2, 3};
    amqp_method out;
    amqp_error err;
    assert_false(amqp_method_decode(wire, sizeof(wire), &out, &err));
    assert_int_equal(err.reply_code, AMQP_REPLY_COMMAND_INVALID);
    assert_int_equal(err.class_id, 99);
}

static void test_trailing_bytes_refused(void **state)
{
    (void)state;
    static const uint8_t wire[] = {0, 60, 0, 80, 0, 0, 0, 0, 0, 0, 0, 5, 1, 0xFF};
    amqp_method out;
    amqp_error err;
    assert_false(amqp_method_decode(wire, sizeof(wire), &out, &err));
    assert_int_equal(err.reply_code, AMQP_REPLY_SYNTAX_ERROR);
    assert_int_equal(err.method_id, 80);
}

static void test_shortstr_overrun_refused(void **state)
{
    (void)state;
    /* basic.publish: exchange length 200 in a 14-byte payload. */
    static const uint8_t wire[] = {0, 60, 0, 40, 0, 0, 200, 'e', 'x', 'n', 2, 'r', 'k', 0};
    amqp_method out;
    amqp_error err;
    assert_false(amqp_method_decode(wire, sizeof(wire), &out, &err));
    assert_int_equal(err.reply_code, AMQP_REPLY_SYNTAX_ERROR);
}

static void test_longstr_overrun_refused(void **state)
{
    (void)state;
    static const uint8_t wire[] = {0, 10, 0, 21, 0xFF, 0xFF, 0xFF, 0xFF, 'x'};
    amqp_method out;
    amqp_error err;
    assert_false(amqp_method_decode(wire, sizeof(wire), &out, &err));
    assert_int_equal(err.reply_code, AMQP_REPLY_SYNTAX_ERROR);
}

static void test_bad_table_in_arguments_refused(void **state)
{
    (void)state;
    /* queue.bind with an arguments table holding an unknown type 'Z'. */
    static const uint8_t wire[] = {0, 50, 0, 20, 0, 0, 1, 'q', 1,   'e',
                                   0, 0,  0, 0,  0, 4, 1, 'k', 'Z', 0};
    amqp_method out;
    amqp_error err;
    assert_false(amqp_method_decode(wire, sizeof(wire), &out, &err));
    assert_int_equal(err.reply_code, AMQP_REPLY_SYNTAX_ERROR);
    assert_int_equal(err.class_id, 50);
    assert_int_equal(err.method_id, 20);
    assert_string_equal(err.text, "unknown field type");
}

#define RT_ENTRY(E, n, s, c, m, sync, content) cmocka_unit_test(test_roundtrip_##n),

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* clang-format off */
        AMQP_METHOD_LIST(RT_ENTRY) /* a generated round trip per method */
        /* clang-format on */
        cmocka_unit_test(test_wire_basic_publish),
        cmocka_unit_test(test_wire_connection_tune),
        cmocka_unit_test(test_wire_queue_declare_bits),
        cmocka_unit_test(test_wire_basic_ack),
        cmocka_unit_test(test_wire_basic_nack),
        cmocka_unit_test(test_wire_exchange_unbind_ok_is_51),
        cmocka_unit_test(test_wire_connection_close),
        cmocka_unit_test(test_wire_access_request_five_bits),
        cmocka_unit_test(test_wire_basic_deliver_bit_between_strings),
        cmocka_unit_test(test_wire_connection_start_ok),
        cmocka_unit_test(test_wire_no_argument_methods),
        cmocka_unit_test(test_bits_end_at_other_type),
        cmocka_unit_test(test_table_metadata),
        cmocka_unit_test(test_shortstr_255_accepted_256_refused),
        cmocka_unit_test(test_empty_strings),
        cmocka_unit_test(test_decode_is_zero_copy),
        cmocka_unit_test(test_truncated_basic_publish),
        cmocka_unit_test(test_truncated_queue_declare_with_table),
        cmocka_unit_test(test_truncated_connection_start),
        cmocka_unit_test(test_truncated_basic_deliver),
        cmocka_unit_test(test_truncated_channel_close),
        cmocka_unit_test(test_truncated_basic_nack),
        cmocka_unit_test(test_unknown_method_is_command_invalid),
        cmocka_unit_test(test_unknown_class_is_command_invalid),
        cmocka_unit_test(test_trailing_bytes_refused),
        cmocka_unit_test(test_shortstr_overrun_refused),
        cmocka_unit_test(test_longstr_overrun_refused),
        cmocka_unit_test(test_bad_table_in_arguments_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
