/*
 * Unit tests for store/msg: the contiguous layout of names, properties and body, a body filled
 * in after allocation, the flags, the longest names, and reference counting down to the free
 * (counted on a private mimalloc heap).
 */
#include "tests/store/store_util.h"

#include "core/limits.h"

static void test_layout_holds_every_field(void **state)
{
    mi_heap_t *heap = *state;
    const uint8_t props[] = {0x90, 0x00, 0x0a, 't', 'e', 'x', 't', '/', 'p', 'l', 'a', 'i', 'n'};
    store_msg_params p = {
        .exchange = "ex",
        .exchange_bytes = 2,
        .routing_key = "a.b.c",
        .routing_key_bytes = 5,
        .props = props,
        .props_bytes = sizeof(props),
        .body = "hello",
        .body_bytes = 5,
        .publisher_shard = 3,
        .publish_seq = 77,
    };
    store_msg *m = store_msg_new(heap, &p);
    assert_non_null(m);
    assert_int_equal(m->refs, 1);
    assert_memory_equal(store_msg_exchange(m), "ex", 2);
    assert_int_equal(m->exchange_bytes, 2);
    assert_memory_equal(store_msg_routing_key(m), "a.b.c", 5);
    assert_int_equal(m->routing_key_bytes, 5);
    assert_memory_equal(store_msg_props(m), props, sizeof(props));
    assert_int_equal(m->props_bytes, sizeof(props));
    assert_memory_equal(store_msg_body(m), "hello", 5);
    assert_int_equal(m->body_bytes, 5);
    assert_int_equal(m->publisher_shard, 3);
    assert_int_equal(m->publish_seq, 77);
    assert_false(store_msg_persistent(m));
    assert_int_equal(util_heap_blocks(heap), 1); /* one allocation per message */
    store_msg_unref(m);
}

static void test_body_filled_after_allocation(void **state)
{
    mi_heap_t *heap = *state;
    store_msg_params p = {.routing_key = "k", .routing_key_bytes = 1, .body_bytes = 4096};
    store_msg *m = store_msg_new(heap, &p);
    assert_non_null(m);
    memset(store_msg_body_mut(m), 0xab, 4096);
    assert_ptr_equal(store_msg_body(m), store_msg_body_mut(m));
    assert_int_equal(store_msg_body(m)[0], 0xab);
    assert_int_equal(store_msg_body(m)[4095], 0xab);
    assert_memory_equal(store_msg_routing_key(m), "k", 1);
    store_msg_unref(m);
}

static void test_empty_fields(void **state)
{
    store_msg_params p = {0};
    store_msg *m = store_msg_new(*state, &p);
    assert_non_null(m);
    assert_int_equal(m->exchange_bytes + m->routing_key_bytes + m->props_bytes + m->body_bytes, 0);
    assert_ptr_equal(store_msg_body(m), m->data);
    store_msg_unref(m);
}

static void test_flags_priority_expiration(void **state)
{
    store_msg_params p = {
        .persistent = true, .priority = 9, .has_expiration = true, .expiration_ms = 60000};
    store_msg *m = store_msg_new(*state, &p);
    assert_true(store_msg_persistent(m));
    assert_true(m->flags & STORE_MSG_HAS_EXPIRATION);
    assert_int_equal(m->expiration_ms, 60000);
    assert_int_equal(m->priority, 9);
    store_msg_unref(m);

    store_msg_params q = {.expiration_ms = 5}; /* ignored without has_expiration */
    m = store_msg_new(*state, &q);
    assert_false(m->flags & STORE_MSG_HAS_EXPIRATION);
    assert_int_equal(m->expiration_ms, 0);
    store_msg_unref(m);
}

static void test_longest_names(void **state)
{
    char name[LIMIT_NAME_BYTES_MAX];
    memset(name, 'x', sizeof(name));
    char key[LIMIT_SHORTSTR_BYTES_MAX];
    memset(key, 'y', sizeof(key));
    store_msg_params p = {.exchange = name,
                          .exchange_bytes = sizeof(name),
                          .routing_key = key,
                          .routing_key_bytes = sizeof(key),
                          .body = "b",
                          .body_bytes = 1};
    store_msg *m = store_msg_new(*state, &p);
    assert_int_equal(m->exchange_bytes, 255);
    assert_int_equal(m->routing_key_bytes, 255);
    assert_memory_equal(store_msg_exchange(m), name, sizeof(name));
    assert_memory_equal(store_msg_routing_key(m), key, sizeof(key));
    assert_int_equal(store_msg_body(m)[0], 'b');
    store_msg_unref(m);
}

static void test_refcount_frees_on_last_unref(void **state)
{
    mi_heap_t *heap = *state;
    store_msg *m = util_msg(heap, 1);
    assert_ptr_equal(store_msg_ref(m), m);
    store_msg_ref(m);
    assert_int_equal(m->refs, 3);
    store_msg_unref(m);
    store_msg_unref(m);
    assert_int_equal(util_heap_blocks(heap), 1);
    store_msg_unref(m);
    assert_int_equal(util_heap_blocks(heap), 0);
}

static void test_default_heap(void **state)
{
    (void)state;
    store_msg_params p = {.body = "x", .body_bytes = 1};
    store_msg *m = store_msg_new(NULL, &p);
    assert_non_null(m);
    assert_int_equal(store_msg_body(m)[0], 'x');
    store_msg_unref(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_layout_holds_every_field, util_heap_setup,
                                        util_heap_teardown),
        cmocka_unit_test_setup_teardown(test_body_filled_after_allocation, util_heap_setup,
                                        util_heap_teardown),
        cmocka_unit_test_setup_teardown(test_empty_fields, util_heap_setup, util_heap_teardown),
        cmocka_unit_test_setup_teardown(test_flags_priority_expiration, util_heap_setup,
                                        util_heap_teardown),
        cmocka_unit_test_setup_teardown(test_longest_names, util_heap_setup, util_heap_teardown),
        cmocka_unit_test_setup_teardown(test_refcount_frees_on_last_unref, util_heap_setup,
                                        util_heap_teardown),
        cmocka_unit_test(test_default_heap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
