/*
 * Unit tests for store/queue: FIFO order and sequences, requeue to the original position in
 * several interleavings, redelivered flags, per-id ack and reject, requeue of a consumer's and
 * of a channel's or connection's unacked deliveries in original order, consumers (round robin,
 * priorities, credit, no_ack, exclusive, active flag, ids), basic.get with counts, purge, delete,
 * refcounts across queues, budgeted dispatch, and growth of the ring, heap and unacked table.
 * Every test runs on a private heap that must be empty at the end.
 */
#include "tests/store/store_util.h"

#include <stdlib.h>

#include "core/limits.h"

static util_log LOG;

#define OWNER_A util_owner(0, 1, 1)
#define OWNER_B util_owner(0, 1, 2)

static void log_reset(void)
{
    LOG.count = 0;
}

static uint32_t dispatch(store_queue *q, uint32_t budget)
{
    return store_queue_dispatch(q, util_deliver, &LOG, budget);
}

/* The message numbers delivered since the last reset must be exactly expected[]. */
static void expect_numbers(const uint64_t *expected, size_t count)
{
    assert_int_equal(LOG.count, count);
    for (size_t i = 0; i < count; i++) assert_int_equal(LOG.d[i].msg_n, expected[i]);
}

#define EXPECT_NUMBERS(...)                                                                        \
    do {                                                                                           \
        const uint64_t expected_[] = {__VA_ARGS__};                                                \
        expect_numbers(expected_, ARRAY_LEN(expected_));                                           \
    } while (0)

/* Drains the ready messages by basic.get (no_ack) and checks their numbers. */
static void expect_gets(store_queue *q, const uint64_t *expected, size_t count)
{
    for (size_t i = 0; i < count; i++) assert_int_equal(util_get(q, true, NULL, NULL), expected[i]);
    assert_int_equal(store_queue_ready_count(q), 0);
}

#define EXPECT_GETS(q, ...)                                                                        \
    do {                                                                                           \
        const uint64_t expected_[] = {__VA_ARGS__};                                                \
        expect_gets(q, expected_, ARRAY_LEN(expected_));                                           \
    } while (0)

/* --- FIFO, sequences, ack ------------------------------------------------------------------ */

static void test_empty_queue(void **state)
{
    store_queue *q = util_queue(*state);
    assert_int_equal(store_queue_ready_count(q), 0);
    assert_int_equal(store_queue_unacked_count(q), 0);
    assert_int_equal(store_queue_consumer_count(q), 0);
    store_get g;
    store_owner o = OWNER_A;
    assert_false(store_queue_get(q, &o, false, &g));
    assert_null(g.msg);
    log_reset();
    assert_int_equal(dispatch(q, 100), 0);
    assert_false(store_queue_dispatchable(q));
    assert_int_equal(store_queue_delete(q), 0);
}

static void test_fifo_by_get(void **state)
{
    store_queue *q = util_queue(*state);
    util_push_range(*state, q, 1, 5);
    assert_int_equal(store_queue_ready_count(q), 5);
    EXPECT_GETS(q, 1, 2, 3, 4, 5);
    store_queue_delete(q);
}

static void test_sequences_monotonic_across_purge(void **state)
{
    store_queue *q = util_queue(*state);
    for (uint64_t i = 0; i < 5; i++) {
        store_msg *m = util_msg(*state, i);
        assert_int_equal(store_queue_push(q, m), i);
        store_msg_unref(m);
    }
    assert_int_equal(store_queue_purge(q), 5);
    store_msg *m = util_msg(*state, 9);
    assert_int_equal(store_queue_push(q, m), 5);
    store_msg_unref(m);
    store_queue_delete(q);
}

static void test_fifo_by_dispatch(void **state)
{
    store_queue *q = util_queue(*state);
    util_consume(q, "c", 0, STORE_CREDIT_UNLIMITED, false, OWNER_A);
    util_push_range(*state, q, 1, 6);
    log_reset();
    assert_int_equal(dispatch(q, 100), 6);
    EXPECT_NUMBERS(1, 2, 3, 4, 5, 6);
    for (size_t i = 0; i < LOG.count; i++) {
        assert_false(LOG.d[i].redelivered);
        assert_int_equal(LOG.d[i].delivery_id, i + 1); /* monotonic from 1 */
    }
    assert_int_equal(store_queue_unacked_count(q), 6);
    assert_int_equal(store_queue_ready_count(q), 0);
    store_queue_delete(q);
}

static void test_ack_removes_from_unacked(void **state)
{
    store_queue *q = util_queue(*state);
    util_consume(q, "c", 0, STORE_CREDIT_UNLIMITED, false, OWNER_A);
    util_push_range(*state, q, 1, 3);
    log_reset();
    dispatch(q, 10);
    assert_true(store_queue_ack(q, LOG.d[1].delivery_id));
    assert_int_equal(store_queue_unacked_count(q), 2);
    assert_true(store_queue_ack(q, LOG.d[0].delivery_id));
    assert_true(store_queue_ack(q, LOG.d[2].delivery_id));
    assert_int_equal(store_queue_unacked_count(q), 0);
    assert_int_equal(util_heap_blocks(*state) > 0, 1); /* the queue itself */
    store_queue_delete(q);
}

static void test_ack_unknown_and_twice(void **state)
{
    store_queue *q = util_queue(*state);
    util_push_range(*state, q, 1, 1);
    uint64_t id;
    util_get(q, false, &id, NULL);
    assert_false(store_queue_ack(q, 0));
    assert_false(store_queue_ack(q, 1000)); /* never issued: e.g. from before a re-declare */
    assert_false(store_queue_reject(q, 1000, true));
    assert_false(store_queue_consumer_remove(q, 0, false, NULL));
    assert_false(store_queue_credit(q, 0, 1));
    assert_true(store_queue_ack(q, id));
    assert_false(store_queue_ack(q, id));
    assert_false(store_queue_reject(q, id, true));
    assert_int_equal(store_queue_ready_count(q), 0);
    store_queue_delete(q);
}

/* --- requeue to the original position ----------------------------------------------------- */

static void test_reject_requeue_goes_back_in_place(void **state)
{
    store_queue *q = util_queue(*state);
    util_push_range(*state, q, 1, 5);
    uint64_t id1, id2, id3;
    util_get(q, false, &id1, NULL);
    util_get(q, false, &id2, NULL);
    util_get(q, false, &id3, NULL);
    assert_true(store_queue_reject(q, id2, true));
    assert_int_equal(store_queue_ready_count(q), 3);
    bool redelivered;
    assert_int_equal(util_get(q, true, NULL, &redelivered), 2);
    assert_true(redelivered);
    assert_int_equal(util_get(q, true, NULL, &redelivered), 4);
    assert_false(redelivered);
    EXPECT_GETS(q, 5);
    assert_int_equal(store_queue_unacked_count(q), 2);
    store_queue_delete(q);
}

static void test_requeue_interleaved_with_acks(void **state)
{
    store_queue *q = util_queue(*state);
    util_push_range(*state, q, 1, 8);
    uint64_t ids[9];
    for (int n = 1; n <= 6; n++) assert_int_equal(util_get(q, false, &ids[n], NULL), n);
    assert_true(store_queue_ack(q, ids[1]));
    assert_true(store_queue_reject(q, ids[5], true));
    assert_true(store_queue_ack(q, ids[3]));
    assert_true(store_queue_reject(q, ids[2], true));
    assert_true(store_queue_reject(q, ids[6], true));
    assert_true(store_queue_reject(q, ids[4], false));
    util_push_range(*state, q, 9, 10); /* new arrivals go after everything */
    EXPECT_GETS(q, 2, 5, 6, 7, 8, 9, 10);
    store_queue_delete(q);
}

static void test_requeue_ahead_of_new_arrivals(void **state)
{
    store_queue *q = util_queue(*state);
    util_push_range(*state, q, 1, 2);
    uint64_t id1, id2;
    util_get(q, false, &id1, NULL);
    util_get(q, false, &id2, NULL);
    util_push_range(*state, q, 3, 4);
    assert_true(store_queue_reject(q, id2, true));
    assert_true(store_queue_reject(q, id1, true));
    util_push_range(*state, q, 5, 5);
    EXPECT_GETS(q, 1, 2, 3, 4, 5);
    store_queue_delete(q);
}

static void test_requeue_twice_and_redelivered_again(void **state)
{
    store_queue *q = util_queue(*state);
    util_push_range(*state, q, 1, 3);
    uint64_t id;
    bool redelivered;
    assert_int_equal(util_get(q, false, &id, &redelivered), 1);
    assert_false(redelivered);
    store_queue_reject(q, id, true);
    assert_int_equal(util_get(q, false, &id, &redelivered), 1);
    assert_true(redelivered);
    store_queue_reject(q, id, true);
    assert_int_equal(util_get(q, false, &id, &redelivered), 1);
    assert_true(redelivered);
    assert_true(store_queue_ack(q, id));
    assert_int_equal(util_get(q, true, NULL, &redelivered), 2);
    assert_false(redelivered);
    store_queue_delete(q);
}

static void test_reject_drop_frees(void **state)
{
    mi_heap_t *heap = *state;
    store_queue *q = util_queue(heap);
    size_t blocks_empty = util_heap_blocks(heap);
    util_push_range(heap, q, 1, 1);
    uint64_t id;
    util_get(q, false, &id, NULL);
    assert_int_equal(util_heap_blocks(heap), blocks_empty + 2); /* message + unacked table */
    assert_true(store_queue_reject(q, id, false));
    assert_int_equal(store_queue_ready_count(q) + store_queue_unacked_count(q), 0);
    assert_int_equal(util_heap_blocks(heap), blocks_empty + 1); /* the table stays */
    store_queue_delete(q);
}

static void test_redelivered_flag_in_dispatch(void **state)
{
    store_queue *q = util_queue(*state);
    uint64_t c = util_consume(q, "c", 0, 2, false, OWNER_A);
    util_push_range(*state, q, 1, 4);
    log_reset();
    assert_int_equal(dispatch(q, 10), 2);
    assert_true(store_queue_reject(q, LOG.d[0].delivery_id, true));
    store_queue_credit(q, c, 3);
    log_reset();
    assert_int_equal(dispatch(q, 10), 3);
    EXPECT_NUMBERS(1, 3, 4);
    assert_true(LOG.d[0].redelivered);
    assert_false(LOG.d[1].redelivered);
    assert_false(LOG.d[2].redelivered);
    store_queue_delete(q);
}

static void test_many_requeues_come_back_sorted(void **state)
{
    store_queue *q = util_queue(*state);
    enum { N = 500 };
    util_push_range(*state, q, 0, N - 1);
    uint64_t ids[N];
    for (int n = 0; n < N; n++) assert_int_equal(util_get(q, false, &ids[n], NULL), n);
    /* Requeue in a scrambled order (a permutation: stride coprime with N). */
    for (int k = 0; k < N; k++) assert_true(store_queue_reject(q, ids[(k * 211) % N], true));
    for (int n = 0; n < N; n++) {
        bool redelivered;
        assert_int_equal(util_get(q, true, NULL, &redelivered), n);
        assert_true(redelivered);
    }
    store_queue_delete(q);
}

/* --- requeue by consumer and by owner ------------------------------------------------------ */

static void test_requeue_consumer_in_original_order(void **state)
{
    store_queue *q = util_queue(*state);
    uint64_t a = util_consume(q, "a", 0, STORE_CREDIT_UNLIMITED, false, OWNER_A);
    uint64_t b = util_consume(q, "b", 0, STORE_CREDIT_UNLIMITED, false, OWNER_B);
    util_push_range(*state, q, 1, 6);
    log_reset();
    dispatch(q, 100);
    EXPECT_NUMBERS(1, 2, 3, 4, 5, 6); /* a: 1 3 5, b: 2 4 6 */
    assert_int_equal(LOG.d[0].consumer_id, a);
    assert_int_equal(LOG.d[1].consumer_id, b);
    assert_true(store_queue_ack(q, LOG.d[2].delivery_id)); /* a acks 3 */
    assert_int_equal(store_queue_requeue_consumer(q, a), 2);
    assert_int_equal(store_queue_unacked_count(q), 3);
    util_push_range(*state, q, 7, 7);
    store_queue_consumer_set_active(q, a, false);
    store_queue_consumer_set_active(q, b, false);
    EXPECT_GETS(q, 1, 5, 7);
    store_queue_delete(q);
}

static void test_cancel_keeps_unacked_then_requeue_by_id(void **state)
{
    store_queue *q = util_queue(*state);
    uint64_t a = util_consume(q, "a", 0, STORE_CREDIT_UNLIMITED, false, OWNER_A);
    util_push_range(*state, q, 1, 3);
    log_reset();
    dispatch(q, 100);
    bool last;
    assert_true(store_queue_consumer_remove(q, a, false, &last));
    assert_true(last);
    assert_int_equal(store_queue_unacked_count(q), 3);     /* RabbitMQ: cancel does not requeue */
    assert_true(store_queue_ack(q, LOG.d[1].delivery_id)); /* the channel may still ack */
    assert_int_equal(store_queue_requeue_consumer(q, a), 2);
    EXPECT_GETS(q, 1, 3);
    store_queue_delete(q);
}

static void test_cancel_with_requeue(void **state)
{
    store_queue *q = util_queue(*state);
    uint64_t a = util_consume(q, "a", 0, STORE_CREDIT_UNLIMITED, false, OWNER_A);
    util_push_range(*state, q, 1, 3);
    log_reset();
    dispatch(q, 2);
    assert_true(store_queue_consumer_remove(q, a, true, NULL));
    assert_int_equal(store_queue_unacked_count(q), 0);
    EXPECT_GETS(q, 1, 2, 3);
    store_queue_delete(q);
}

static void test_requeue_owner_channel(void **state)
{
    store_queue *q = util_queue(*state);
    util_consume(q, "a", 0, STORE_CREDIT_UNLIMITED, false, OWNER_A);
    uint64_t b = util_consume(q, "b", 0, STORE_CREDIT_UNLIMITED, false, OWNER_B);
    util_push_range(*state, q, 1, 6);
    log_reset();
    dispatch(q, 100);
    store_owner o = OWNER_A;
    assert_int_equal(store_queue_requeue_owner(q, &o, STORE_OWNER_CHANNEL), 3);
    assert_int_equal(store_queue_unacked_count(q), 3);
    assert_int_equal(store_queue_requeue_owner(q, &o, STORE_OWNER_CHANNEL), 0);
    assert_int_equal(store_queue_consumer_remove_owner(q, &o, STORE_OWNER_CHANNEL, NULL), 1);
    store_queue_consumer_set_active(q, b, false);
    EXPECT_GETS(q, 1, 3, 5);
    store_queue_delete(q);
}

static void test_requeue_owner_connection(void **state)
{
    store_queue *q = util_queue(*state);
    util_consume(q, "a", 0, STORE_CREDIT_UNLIMITED, false, util_owner(0, 1, 1));
    util_consume(q, "b", 0, STORE_CREDIT_UNLIMITED, false, util_owner(0, 1, 2));
    util_consume(q, "c", 0, STORE_CREDIT_UNLIMITED, false, util_owner(1, 1, 1)); /* other shard */
    util_push_range(*state, q, 1, 6);
    log_reset();
    dispatch(q, 100);
    store_owner conn = util_owner(0, 1, 999);
    bool last;
    assert_int_equal(store_queue_consumer_remove_owner(q, &conn, STORE_OWNER_CONNECTION, &last), 2);
    assert_false(last);
    assert_int_equal(store_queue_consumer_count(q), 1);
    assert_int_equal(store_queue_requeue_owner(q, &conn, STORE_OWNER_CONNECTION), 4);
    assert_int_equal(store_queue_unacked_count(q), 2); /* c's 3 and 6 */
    store_owner other = util_owner(1, 1, 1);
    assert_int_equal(store_queue_consumer_remove_owner(q, &other, STORE_OWNER_CHANNEL, &last), 1);
    assert_true(last);
    assert_int_equal(store_queue_requeue_owner(q, &other, STORE_OWNER_CONNECTION), 2);
    EXPECT_GETS(q, 1, 2, 3, 4, 5, 6);
    store_queue_delete(q);
}

static void test_requeue_owner_includes_basic_get(void **state)
{
    store_queue *q = util_queue(*state);
    util_push_range(*state, q, 1, 3);
    store_owner a = OWNER_A, b = OWNER_B;
    store_get g;
    assert_true(store_queue_get(q, &a, false, &g));
    store_msg_unref(g.msg);
    assert_true(store_queue_get(q, &b, false, &g));
    store_msg_unref(g.msg);
    assert_int_equal(store_queue_requeue_owner(q, &a, STORE_OWNER_CHANNEL), 1);
    assert_int_equal(store_queue_unacked_count(q), 1);
    EXPECT_GETS(q, 1, 3);
    store_queue_delete(q);
}

static void test_owner_matches(void **state)
{
    (void)state;
    store_owner a = util_owner(1, 2, 3);
    store_owner same = util_owner(1, 2, 3), chan = util_owner(1, 2, 4), conn = util_owner(1, 5, 3),
                shard = util_owner(2, 2, 3);
    assert_true(store_owner_matches(&a, &same, STORE_OWNER_CHANNEL));
    assert_false(store_owner_matches(&a, &chan, STORE_OWNER_CHANNEL));
    assert_true(store_owner_matches(&a, &chan, STORE_OWNER_CONNECTION));
    assert_false(store_owner_matches(&a, &conn, STORE_OWNER_CONNECTION));
    assert_false(store_owner_matches(&a, &shard, STORE_OWNER_CONNECTION));
}

/* --- consumers: round robin, priorities, credit -------------------------------------------- */

static void test_round_robin(void **state)
{
    store_queue *q = util_queue(*state);
    uint64_t c[3];
    c[0] = util_consume(q, "a", 0, STORE_CREDIT_UNLIMITED, false, OWNER_A);
    c[1] = util_consume(q, "b", 0, STORE_CREDIT_UNLIMITED, false, OWNER_A);
    c[2] = util_consume(q, "c", 0, STORE_CREDIT_UNLIMITED, false, OWNER_B);
    util_push_range(*state, q, 1, 9);
    log_reset();
    assert_int_equal(dispatch(q, 100), 9);
    for (size_t i = 0; i < 9; i++) assert_int_equal(LOG.d[i].consumer_id, c[i % 3]);
    store_queue_delete(q);
}

static void test_round_robin_continues_across_dispatches(void **state)
{
    store_queue *q = util_queue(*state);
    uint64_t a = util_consume(q, "a", 0, STORE_CREDIT_UNLIMITED, false, OWNER_A);
    uint64_t b = util_consume(q, "b", 0, STORE_CREDIT_UNLIMITED, false, OWNER_A);
    util_push_range(*state, q, 1, 1);
    log_reset();
    dispatch(q, 10);
    util_push_range(*state, q, 2, 2);
    dispatch(q, 10);
    util_push_range(*state, q, 3, 3);
    dispatch(q, 10);
    assert_int_equal(LOG.count, 3);
    assert_int_equal(LOG.d[0].consumer_id, a);
    assert_int_equal(LOG.d[1].consumer_id, b);
    assert_int_equal(LOG.d[2].consumer_id, a);
    store_queue_delete(q);
}

static void test_round_robin_skips_consumer_without_credit(void **state)
{
    store_queue *q = util_queue(*state);
    uint64_t a = util_consume(q, "a", 0, 1, false, OWNER_A);
    uint64_t b = util_consume(q, "b", 0, STORE_CREDIT_UNLIMITED, false, OWNER_A);
    uint64_t c = util_consume(q, "c", 0, 0, false, OWNER_A); /* no credit at all */
    util_push_range(*state, q, 1, 5);
    log_reset();
    assert_int_equal(dispatch(q, 100), 5);
    assert_int_equal(LOG.d[0].consumer_id, a);
    for (size_t i = 1; i < 5; i++) assert_int_equal(LOG.d[i].consumer_id, b);
    assert_int_equal(store_queue_consumer(q, c)->delivered_count, 0);
    assert_int_equal(store_queue_consumer(q, a)->credit, 0);
    store_queue_delete(q);
}

static void test_priority_highest_first(void **state)
{
    store_queue *q = util_queue(*state);
    uint64_t low = util_consume(q, "low", 0, STORE_CREDIT_UNLIMITED, false, OWNER_A);
    uint64_t high = util_consume(q, "high", 10, STORE_CREDIT_UNLIMITED, false, OWNER_A);
    util_push_range(*state, q, 1, 5);
    log_reset();
    dispatch(q, 100);
    for (size_t i = 0; i < 5; i++) assert_int_equal(LOG.d[i].consumer_id, high);
    assert_int_equal(store_queue_consumer(q, low)->delivered_count, 0);
    store_queue_delete(q);
}

static void test_priority_falls_back_when_blocked(void **state)
{
    store_queue *q = util_queue(*state);
    uint64_t low = util_consume(q, "low", -5, STORE_CREDIT_UNLIMITED, false, OWNER_A);
    uint64_t high = util_consume(q, "high", 5, 2, false, OWNER_A);
    util_push_range(*state, q, 1, 4);
    log_reset();
    dispatch(q, 100);
    assert_int_equal(LOG.d[0].consumer_id, high);
    assert_int_equal(LOG.d[1].consumer_id, high);
    assert_int_equal(LOG.d[2].consumer_id, low);
    assert_int_equal(LOG.d[3].consumer_id, low);
    /* Credit back: the higher priority consumer is served first again. */
    store_queue_credit(q, high, 1);
    util_push_range(*state, q, 5, 6);
    log_reset();
    dispatch(q, 100);
    assert_int_equal(LOG.d[0].consumer_id, high);
    assert_int_equal(LOG.d[1].consumer_id, low);
    store_queue_delete(q);
}

static void test_priority_levels_round_robin_within(void **state)
{
    store_queue *q = util_queue(*state);
    uint64_t m1 = util_consume(q, "m1", 1, STORE_CREDIT_UNLIMITED, false, OWNER_A);
    uint64_t h1 = util_consume(q, "h1", 7, 1, false, OWNER_A);
    uint64_t n1 = util_consume(q, "n1", INT32_MIN, STORE_CREDIT_UNLIMITED, false, OWNER_A);
    uint64_t m2 = util_consume(q, "m2", 1, STORE_CREDIT_UNLIMITED, false, OWNER_A);
    uint64_t h2 = util_consume(q, "h2", 7, 1, false, OWNER_A);
    util_push_range(*state, q, 1, 6);
    log_reset();
    dispatch(q, 100);
    const uint64_t expected[] = {h1, h2, m1, m2, m1, m2};
    for (size_t i = 0; i < 6; i++) assert_int_equal(LOG.d[i].consumer_id, expected[i]);
    assert_int_equal(store_queue_consumer(q, n1)->delivered_count, 0);
    /* Remove the middle level: the lowest takes over. */
    store_queue_consumer_remove(q, m1, false, NULL);
    store_queue_consumer_remove(q, m2, false, NULL);
    util_push_range(*state, q, 7, 7);
    log_reset();
    dispatch(q, 100);
    assert_int_equal(LOG.d[0].consumer_id, n1);
    store_queue_delete(q);
}

static void test_credit_exhaustion_and_refill(void **state)
{
    store_queue *q = util_queue(*state);
    uint64_t c = util_consume(q, "c", 0, 3, false, OWNER_A);
    util_push_range(*state, q, 1, 10);
    log_reset();
    assert_int_equal(dispatch(q, 100), 3);
    assert_false(store_queue_dispatchable(q));
    assert_int_equal(dispatch(q, 100), 0);
    assert_int_equal(store_queue_ready_count(q), 7);
    assert_int_equal(store_queue_consumer(q, c)->credit, 0);
    assert_true(store_queue_credit(q, c, 2));
    assert_true(store_queue_dispatchable(q));
    assert_int_equal(dispatch(q, 100), 2);
    assert_true(store_queue_credit(q, c, 100));
    assert_int_equal(dispatch(q, 100), 5);
    assert_int_equal(store_queue_consumer(q, c)->credit, 95);
    EXPECT_NUMBERS(1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
    store_queue_delete(q);
}

static void test_credit_unlimited_and_saturation(void **state)
{
    store_queue *q = util_queue(*state);
    uint64_t u = util_consume(q, "u", 0, STORE_CREDIT_UNLIMITED, false, OWNER_A);
    uint64_t s = util_consume(q, "s", 0, STORE_CREDIT_UNLIMITED - 2, false, OWNER_A);
    util_push_range(*state, q, 1, 4);
    log_reset();
    dispatch(q, 100);
    assert_int_equal(store_queue_consumer(q, u)->credit, STORE_CREDIT_UNLIMITED);
    assert_int_equal(store_queue_consumer(q, s)->credit, STORE_CREDIT_UNLIMITED - 4);
    store_queue_credit(q, s, 1000);
    assert_int_equal(store_queue_consumer(q, s)->credit, STORE_CREDIT_UNLIMITED - 1);
    store_queue_credit(q, u, 5);
    assert_int_equal(store_queue_consumer(q, u)->credit, STORE_CREDIT_UNLIMITED);
    assert_false(store_queue_credit(q, 12345, 1));
    store_queue_delete(q);
}

static void test_inactive_consumer_skipped(void **state)
{
    store_queue *q = util_queue(*state);
    store_consumer_params p = {.tag = "idle", .tag_bytes = 4, .credit = 10, .inactive = true};
    store_reply reply;
    uint64_t idle = store_queue_consumer_add(q, &p, &reply);
    assert_int_not_equal(idle, 0);
    assert_false(store_queue_consumer(q, idle)->active);
    util_push_range(*state, q, 1, 2);
    log_reset();
    assert_int_equal(dispatch(q, 100), 0);
    assert_true(store_queue_consumer_set_active(q, idle, true));
    assert_int_equal(dispatch(q, 100), 2);
    assert_true(store_queue_consumer_set_active(q, idle, false));
    util_push_range(*state, q, 3, 3);
    assert_int_equal(dispatch(q, 100), 0);
    assert_false(store_queue_consumer_set_active(q, 999, true));
    store_queue_delete(q);
}

/* --- no_ack, exclusive, ids, tags --------------------------------------------------------- */

static void test_no_ack_consumer_drops_after_delivery(void **state)
{
    mi_heap_t *heap = *state;
    store_queue *q = util_queue(heap);
    util_consume(q, "c", 0, STORE_CREDIT_UNLIMITED, true, OWNER_A);
    size_t blocks_empty = util_heap_blocks(heap);
    util_push_range(heap, q, 1, 3);
    assert_int_equal(util_heap_blocks(heap), blocks_empty + 3);
    log_reset();
    assert_int_equal(dispatch(q, 100), 3);
    EXPECT_NUMBERS(1, 2, 3);
    for (size_t i = 0; i < 3; i++) assert_int_equal(LOG.d[i].delivery_id, 0);
    assert_int_equal(store_queue_unacked_count(q), 0);
    assert_int_equal(util_heap_blocks(heap), blocks_empty); /* messages freed */
    store_queue_delete(q);
}

static void test_no_ack_with_limited_credit_and_ack_consumers(void **state)
{
    store_queue *q = util_queue(*state);
    uint64_t n = util_consume(q, "n", 0, 1, true, OWNER_A);
    uint64_t a = util_consume(q, "a", 0, STORE_CREDIT_UNLIMITED, false, OWNER_B);
    util_push_range(*state, q, 1, 4);
    log_reset();
    assert_int_equal(dispatch(q, 100), 4);
    assert_int_equal(LOG.d[0].consumer_id, n);
    assert_int_equal(LOG.d[0].delivery_id, 0);
    for (size_t i = 1; i < 4; i++) {
        assert_int_equal(LOG.d[i].consumer_id, a);
        assert_int_not_equal(LOG.d[i].delivery_id, 0);
    }
    assert_int_equal(store_queue_unacked_count(q), 3);
    store_queue_delete(q);
}

static void test_exclusive_refused_when_consumers_exist(void **state)
{
    store_queue *q = util_queue(*state);
    util_consume(q, "a", 0, 1, false, OWNER_A);
    store_consumer_params p = {.tag = "x", .tag_bytes = 1, .credit = 1, .exclusive = true};
    store_reply reply;
    assert_int_equal(store_queue_consumer_add(q, &p, &reply), 0);
    assert_int_equal(reply.code, STORE_REPLY_ACCESS_REFUSED);
    const char *text = "queue 'q' in vhost '/' in exclusive use";
    assert_int_equal(reply.text_bytes, strlen(text));
    assert_string_equal(reply.text, text);
    assert_int_equal(store_queue_consumer_count(q), 1);
    store_queue_delete(q);
}

static void test_exclusive_refuses_others(void **state)
{
    store_queue *q = util_queue(*state);
    store_consumer_params p = {.tag = "x", .tag_bytes = 1, .credit = 1, .exclusive = true};
    store_reply reply;
    uint64_t x = store_queue_consumer_add(q, &p, &reply);
    assert_int_not_equal(x, 0);
    assert_int_equal(reply.code, 0);
    assert_true(store_queue_consumer(q, x)->exclusive);
    p.exclusive = false;
    assert_int_equal(store_queue_consumer_add(q, &p, &reply), 0);
    assert_int_equal(reply.code, STORE_REPLY_ACCESS_REFUSED);
    p.exclusive = true;
    assert_int_equal(store_queue_consumer_add(q, &p, &reply), 0);
    assert_int_equal(reply.code, STORE_REPLY_ACCESS_REFUSED);
    /* Once the exclusive consumer is gone, anyone may consume. */
    assert_true(store_queue_consumer_remove(q, x, false, NULL));
    p.exclusive = false;
    assert_int_not_equal(store_queue_consumer_add(q, &p, &reply), 0);
    assert_int_not_equal(store_queue_consumer_add(q, &p, &reply), 0);
    store_queue_delete(q);
}

static void test_exclusive_reply_text_truncated(void **state)
{
    char name[LIMIT_NAME_BYTES_MAX];
    memset(name, 'n', sizeof(name));
    store_queue *q = store_queue_new(*state, name, sizeof(name), name, sizeof(name), NULL);
    store_consumer_params p = {.tag = "x", .tag_bytes = 1, .exclusive = true};
    store_reply reply;
    assert_int_not_equal(store_queue_consumer_add(q, &p, &reply), 0);
    assert_int_equal(store_queue_consumer_add(q, &p, &reply), 0);
    assert_int_equal(reply.code, STORE_REPLY_ACCESS_REFUSED);
    assert_int_equal(reply.text_bytes, LIMIT_SHORTSTR_BYTES_MAX);
    assert_int_equal(strlen(reply.text), LIMIT_SHORTSTR_BYTES_MAX);
    assert_memory_equal(reply.text, "queue 'nnn", 10);
    store_queue_delete(q);
}

static void test_consumer_ids_and_tags(void **state)
{
    store_queue *q = util_queue(*state);
    char tag[LIMIT_CONSUMER_TAG_BYTES_MAX];
    memset(tag, 't', sizeof(tag));
    store_consumer_params p = {.tag = tag,
                               .tag_bytes = sizeof(tag),
                               .owner = util_owner(3, 4, 5),
                               .priority = -2,
                               .credit = 7};
    store_reply reply;
    uint64_t a = store_queue_consumer_add(q, &p, &reply);
    const store_consumer *c = store_queue_consumer(q, a);
    assert_non_null(c);
    assert_int_equal(c->id, a);
    assert_int_equal(c->tag_bytes, 255);
    assert_memory_equal(c->tag, tag, sizeof(tag));
    assert_int_equal(c->tag[255], '\0');
    assert_int_equal(c->owner.conn_id, 4);
    assert_int_equal(c->priority, -2);
    assert_int_equal(c->credit, 7);
    assert_true(c->active);
    assert_true(store_queue_consumer_remove(q, a, false, NULL));
    assert_null(store_queue_consumer(q, a));
    assert_false(store_queue_consumer_remove(q, a, false, NULL));
    assert_false(store_queue_credit(q, a, 1));
    /* The slot is reused under a new id; the stale id still finds nothing. */
    uint64_t b = store_queue_consumer_add(q, &p, &reply);
    assert_int_not_equal(a, b);
    assert_null(store_queue_consumer(q, a));
    assert_non_null(store_queue_consumer(q, b));
    assert_null(store_queue_consumer(q, 0));
    store_queue_delete(q);
}

static void test_many_consumers(void **state)
{
    store_queue *q = util_queue(*state);
    enum { N = 300 };
    uint64_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = util_consume(q, "c", i % 3, 1, false, OWNER_A);
    for (int i = 0; i < N; i += 2) assert_true(store_queue_consumer_remove(q, ids[i], false, NULL));
    assert_int_equal(store_queue_consumer_count(q), N / 2);
    util_push_range(*state, q, 1, N);
    log_reset();
    assert_int_equal(dispatch(q, 1000), N / 2); /* one credit each */
    /* Priority 2 first, then 1, then 0, round robin within. */
    int32_t prev = INT32_MAX;
    for (size_t i = 0; i < LOG.count; i++) {
        int32_t pr = store_queue_consumer(q, LOG.d[i].consumer_id)->priority;
        assert_true(pr <= prev);
        prev = pr;
    }
    store_queue_delete(q);
}

/* --- basic.get, purge, delete, auto-delete ------------------------------------------------ */

static void test_get_counts(void **state)
{
    store_queue *q = util_queue(*state);
    util_push_range(*state, q, 1, 3);
    store_owner o = OWNER_A;
    store_get g;
    for (uint64_t left = 2;; left--) {
        assert_true(store_queue_get(q, &o, false, &g));
        assert_int_equal(g.ready_count, left);
        assert_int_not_equal(g.delivery_id, 0);
        assert_false(g.redelivered);
        assert_int_equal(g.msg->refs, 2); /* the caller's and the unacked set's */
        store_msg_unref(g.msg);
        if (left == 0) break;
    }
    assert_false(store_queue_get(q, &o, false, &g));
    assert_int_equal(store_queue_unacked_count(q), 3);
    store_queue_delete(q);
}

static void test_get_no_ack_hands_the_reference(void **state)
{
    mi_heap_t *heap = *state;
    store_queue *q = util_queue(heap);
    size_t blocks_empty = util_heap_blocks(heap);
    util_push_range(heap, q, 1, 1);
    store_owner o = OWNER_A;
    store_get g;
    assert_true(store_queue_get(q, &o, true, &g));
    assert_int_equal(g.delivery_id, 0);
    assert_int_equal(g.msg->refs, 1);
    assert_int_equal(store_queue_unacked_count(q), 0);
    store_msg_unref(g.msg);
    assert_int_equal(util_heap_blocks(heap), blocks_empty);
    store_queue_delete(q);
}

static void test_get_after_requeue_is_redelivered(void **state)
{
    store_queue *q = util_queue(*state);
    util_push_range(*state, q, 1, 2);
    uint64_t id;
    util_get(q, false, &id, NULL);
    store_queue_reject(q, id, true);
    store_owner o = OWNER_A;
    store_get g;
    assert_true(store_queue_get(q, &o, false, &g));
    assert_int_equal(g.msg->publish_seq, 1);
    assert_true(g.redelivered);
    assert_int_equal(g.ready_count, 1);
    assert_int_not_equal(g.delivery_id, id); /* a new delivery, a new id */
    store_msg_unref(g.msg);
    store_queue_delete(q);
}

static void test_purge_leaves_unacked(void **state)
{
    store_queue *q = util_queue(*state);
    util_push_range(*state, q, 1, 6);
    uint64_t id1, id2;
    util_get(q, false, &id1, NULL);
    util_get(q, false, &id2, NULL);
    store_queue_reject(q, id1, true); /* a requeued message is purged too */
    assert_int_equal(store_queue_purge(q), 5);
    assert_int_equal(store_queue_ready_count(q), 0);
    assert_int_equal(store_queue_unacked_count(q), 1);
    assert_int_equal(store_queue_purge(q), 0);
    /* The unacked message can still come back, ahead of later arrivals. */
    util_push_range(*state, q, 7, 7);
    assert_true(store_queue_reject(q, id2, true));
    EXPECT_GETS(q, 2, 7);
    store_queue_delete(q);
}

static void test_delete_counts_ready_and_frees_all(void **state)
{
    store_queue *q = util_queue(*state);
    util_consume(q, "c", 0, 2, false, OWNER_A);
    util_push_range(*state, q, 1, 7);
    log_reset();
    dispatch(q, 100);
    assert_int_equal(store_queue_delete(q), 5); /* the 2 unacked are not counted; freed anyway */
}

static void test_last_consumer_reported(void **state)
{
    store_queue *q = util_queue(*state);
    uint64_t a = util_consume(q, "a", 0, 1, false, OWNER_A);
    uint64_t b = util_consume(q, "b", 0, 1, false, OWNER_A);
    bool last = true;
    assert_true(store_queue_consumer_remove(q, a, false, &last));
    assert_false(last);
    assert_false(store_queue_consumer_remove(q, a, false, &last));
    assert_false(last);
    assert_true(store_queue_consumer_remove(q, b, false, &last));
    assert_true(last);
    store_owner o = OWNER_A;
    assert_int_equal(store_queue_consumer_remove_owner(q, &o, STORE_OWNER_CONNECTION, &last), 0);
    assert_false(last); /* nothing removed: not a "last consumer" event */
    assert_int_equal(store_queue_consumer_count(q), 0);
    store_queue_delete(q);
}

/* --- refcounts across queues, budgets ------------------------------------------------------ */

static void test_message_in_three_queues_freed_once(void **state)
{
    mi_heap_t *heap = *state;
    store_queue *qs[3];
    uint64_t cs[3];
    for (int i = 0; i < 3; i++) {
        qs[i] = util_queue(heap);
        cs[i] = util_consume(qs[i], "c", 0, STORE_CREDIT_UNLIMITED, false, OWNER_A);
    }
    size_t blocks_before = util_heap_blocks(heap);
    store_msg *m = util_msg(heap, 42);
    for (int i = 0; i < 3; i++) store_queue_push(qs[i], m);
    store_msg_unref(m); /* the publisher's reference */
    assert_int_equal(m->refs, 3);
    uint64_t ids[3];
    for (int i = 0; i < 3; i++) {
        log_reset();
        assert_int_equal(dispatch(qs[i], 10), 1);
        assert_int_equal(LOG.d[0].msg_n, 42);
        ids[i] = LOG.d[0].delivery_id;
    }
    /* One message, three unacked tables. */
    assert_int_equal(m->refs, 3);
    assert_true(store_queue_ack(qs[0], ids[0]));
    assert_true(store_queue_reject(qs[2], ids[2], false));
    assert_int_equal(m->refs, 1);
    size_t blocks_one_left = util_heap_blocks(heap);
    assert_true(store_queue_ack(qs[1], ids[1]));
    assert_int_equal(util_heap_blocks(heap), blocks_one_left - 1);
    assert_int_equal(util_heap_blocks(heap), blocks_before + 3); /* the three unacked tables */
    for (int i = 0; i < 3; i++) {
        store_queue_consumer_remove(qs[i], cs[i], false, NULL);
        store_queue_delete(qs[i]);
    }
}

static void test_budget_bounds_dispatch(void **state)
{
    store_queue *q = util_queue(*state);
    util_consume(q, "c", 0, STORE_CREDIT_UNLIMITED, false, OWNER_A);
    util_push_range(*state, q, 1, 10);
    log_reset();
    assert_int_equal(dispatch(q, 0), 0);
    assert_int_equal(dispatch(q, 3), 3);
    assert_int_equal(store_queue_ready_count(q), 7);
    assert_true(store_queue_dispatchable(q));
    assert_int_equal(dispatch(q, 3), 3);
    assert_int_equal(dispatch(q, 3), 3);
    assert_int_equal(dispatch(q, 3), 1);
    assert_false(store_queue_dispatchable(q));
    EXPECT_NUMBERS(1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
    store_queue_delete(q);
}

/* --- growth ------------------------------------------------------------------------------- */

static void test_ring_grows_wraps_and_shrinks(void **state)
{
    mi_heap_t *heap = *state;
    store_queue *q = util_queue(heap);
    uint64_t next_in = 0, next_out = 0;
    /* Wrap around the smallest ring many times, then grow to 20000 and drain. */
    for (int round = 0; round < 1000; round++) {
        util_push_range(heap, q, next_in, next_in + 40);
        next_in += 41;
        for (int i = 0; i < 40; i++) assert_int_equal(util_get(q, true, NULL, NULL), next_out++);
    }
    util_push_range(heap, q, next_in, next_in + 19999);
    next_in += 20000;
    while (next_out < next_in) assert_int_equal(util_get(q, true, NULL, NULL), next_out++);
    assert_int_equal(store_queue_ready_count(q), 0);
    store_queue_delete(q);
}

static void test_unacked_many_out_of_order(void **state)
{
    store_queue *q = util_queue(*state);
    enum { N = 5000 };
    util_consume(q, "c", 0, STORE_CREDIT_UNLIMITED, false, OWNER_A);
    util_push_range(*state, q, 0, N - 1);
    static uint64_t ids[N];
    size_t got = 0;
    while (got < N) {
        log_reset();
        uint32_t n = dispatch(q, 1000);
        for (uint32_t i = 0; i < n; i++) ids[got + i] = LOG.d[i].delivery_id;
        got += n;
    }
    assert_int_equal(store_queue_unacked_count(q), N);
    /* Keep every 97th delivery, ack the rest in a scrambled order, then the stragglers. */
    uint32_t x = 12345;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < N; k++) {
            size_t i = (k * 3001 + x) % N;
            if ((i % 97 == 0) != (pass == 1)) continue;
            assert_true(store_queue_ack(q, ids[i]));
        }
        if (pass == 0) assert_int_equal(store_queue_unacked_count(q), (N + 96) / 97);
    }
    assert_int_equal(store_queue_unacked_count(q), 0);
    store_queue_delete(q);
}

#define T(f) cmocka_unit_test_setup_teardown(f, util_heap_setup, util_heap_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_empty_queue),
        T(test_fifo_by_get),
        T(test_sequences_monotonic_across_purge),
        T(test_fifo_by_dispatch),
        T(test_ack_removes_from_unacked),
        T(test_ack_unknown_and_twice),
        T(test_reject_requeue_goes_back_in_place),
        T(test_requeue_interleaved_with_acks),
        T(test_requeue_ahead_of_new_arrivals),
        T(test_requeue_twice_and_redelivered_again),
        T(test_reject_drop_frees),
        T(test_redelivered_flag_in_dispatch),
        T(test_many_requeues_come_back_sorted),
        T(test_requeue_consumer_in_original_order),
        T(test_cancel_keeps_unacked_then_requeue_by_id),
        T(test_cancel_with_requeue),
        T(test_requeue_owner_channel),
        T(test_requeue_owner_connection),
        T(test_requeue_owner_includes_basic_get),
        T(test_owner_matches),
        T(test_round_robin),
        T(test_round_robin_continues_across_dispatches),
        T(test_round_robin_skips_consumer_without_credit),
        T(test_priority_highest_first),
        T(test_priority_falls_back_when_blocked),
        T(test_priority_levels_round_robin_within),
        T(test_credit_exhaustion_and_refill),
        T(test_credit_unlimited_and_saturation),
        T(test_inactive_consumer_skipped),
        T(test_no_ack_consumer_drops_after_delivery),
        T(test_no_ack_with_limited_credit_and_ack_consumers),
        T(test_exclusive_refused_when_consumers_exist),
        T(test_exclusive_refuses_others),
        T(test_exclusive_reply_text_truncated),
        T(test_consumer_ids_and_tags),
        T(test_many_consumers),
        T(test_get_counts),
        T(test_get_no_ack_hands_the_reference),
        T(test_get_after_requeue_is_redelivered),
        T(test_purge_leaves_unacked),
        T(test_delete_counts_ready_and_frees_all),
        T(test_last_consumer_reported),
        T(test_message_in_three_queues_freed_once),
        T(test_budget_bounds_dispatch),
        T(test_ring_grows_wraps_and_shrinks),
        T(test_unacked_many_out_of_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
