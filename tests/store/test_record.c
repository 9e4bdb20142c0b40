/*
 * store/record: round trips, the end marker, torn and corrupt records. Every single-bit flip of
 * a record must read as CORRUPT (or TRUNCATED when it inflates the length), never as OK.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "store/record.h"

static _Alignas(8) uint8_t buf[4096];

static uint32_t write_text(uint8_t *dst, uint64_t seq, const char *text)
{
    struct iovec iov[2] = {{(void *)text, strlen(text) / 2},
                           {(void *)(text + strlen(text) / 2), strlen(text) - strlen(text) / 2}};
    return store_record_write(dst, STORE_RECORD_MSG, 7, seq, iov, 2);
}

static void test_round_trip(void **state)
{
    (void)state;
    memset(buf, 0, sizeof(buf));
    uint32_t n1 = write_text(buf, 41, "hello, segment");
    uint32_t n2 = write_text(buf + n1, 42, "");
    assert_int_equal(n1, store_record_bytes(14));
    assert_int_equal(n1 % 8, 0);
    assert_int_equal(n2, STORE_RECORD_HEADER_BYTES);

    store_record_view v;
    assert_int_equal(store_record_read(buf, sizeof(buf), 1024, &v), STORE_RECORD_OK);
    assert_int_equal(v.kind, STORE_RECORD_MSG);
    assert_int_equal(v.flags, 7);
    assert_int_equal(v.seq, 41);
    assert_int_equal(v.payload_bytes, 14);
    assert_memory_equal(v.payload, "hello, segment", 14);
    assert_int_equal(v.record_bytes, n1);
    assert_int_equal(store_record_read(buf + n1, sizeof(buf) - n1, 1024, &v), STORE_RECORD_OK);
    assert_int_equal(v.seq, 42);
    assert_int_equal(v.payload_bytes, 0);
    assert_int_equal(store_record_read(buf + n1 + n2, sizeof(buf) - n1 - n2, 1024, &v),
                     STORE_RECORD_END);
}

static void test_end_and_truncated(void **state)
{
    (void)state;
    memset(buf, 0, sizeof(buf));
    store_record_view v;
    assert_int_equal(store_record_read(buf, 0, 1024, &v), STORE_RECORD_END);
    assert_int_equal(store_record_read(buf, 10, 1024, &v), STORE_RECORD_END);
    uint32_t n = write_text(buf, 1, "0123456789abcdef0123456789");
    for (uint32_t cut = 1; cut < n; cut++)
        assert_int_equal(store_record_read(buf, cut, 1024, &v), STORE_RECORD_TRUNCATED);
    assert_int_equal(store_record_read(buf, n, 1024, &v), STORE_RECORD_OK);
}

static void test_every_bit_flip_detected(void **state)
{
    (void)state;
    memset(buf, 0, sizeof(buf));
    uint32_t n = write_text(buf, 99, "a payload of some length");
    uint32_t covered = STORE_RECORD_HEADER_BYTES + 24; /* padding is not covered */
    for (uint32_t bit = 0; bit < covered * 8; bit++) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        store_record_view v;
        store_record_status st = store_record_read(buf, sizeof(buf), 1024, &v);
        assert_true(st == STORE_RECORD_CORRUPT || st == STORE_RECORD_TRUNCATED);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    store_record_view v;
    assert_int_equal(store_record_read(buf, n, 1024, &v), STORE_RECORD_OK);
}

static void test_implausible_length_is_corrupt(void **state)
{
    (void)state;
    memset(buf, 0, sizeof(buf));
    write_text(buf, 5, "xyz");
    store_put_u32(buf + 8, 1u << 30);
    store_record_view v;
    assert_int_equal(store_record_read(buf, sizeof(buf), 1u << 20, &v), STORE_RECORD_CORRUPT);
    memset(buf, 0, sizeof(buf));
    write_text(buf, 5, "xyz");
    buf[12] = 0; /* kind 0 */
    assert_int_equal(store_record_read(buf, sizeof(buf), 1024, &v), STORE_RECORD_CORRUPT);
}

static void test_le_helpers(void **state)
{
    (void)state;
    uint8_t b[8];
    store_put_u64(b, 0x0102030405060708ull);
    assert_int_equal(b[0], 8);
    assert_int_equal(store_get_u64(b), 0x0102030405060708ull);
    store_put_u32(b, 0xa1b2c3d4u);
    assert_int_equal(store_get_u32(b), 0xa1b2c3d4u);
    store_put_u16(b, 0xbeef);
    assert_int_equal(store_get_u16(b), 0xbeef);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_end_and_truncated),
        cmocka_unit_test(test_every_bit_flip_detected),
        cmocka_unit_test(test_implausible_length_is_corrupt),
        cmocka_unit_test(test_le_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
