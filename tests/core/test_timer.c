/* Unit tests for core/timer.c: ordering, cancel, re-arm, budgets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/timer.h"

#include <stdlib.h>

typedef struct {
    timer t;
    int fired;
    uint64_t fired_at_ms;
    int order;
} test_timer;

static int test_fire_seq;

static void test_timer_fn(timer *t, uint64_t now_ms)
{
    test_timer *tt = (test_timer *)t;
    tt->fired++;
    tt->fired_at_ms = now_ms;
    tt->order = ++test_fire_seq;
}

static void test_empty_heap_has_no_deadline(void **state)
{
    (void)state;
    timer_heap h;
    timer_heap_init(&h);
    assert_true(timer_next_deadline_ms(&h) == UINT64_MAX);
    assert_int_equal(timer_run_due(&h, 1000, 10), 0);
    timer_heap_deinit(&h);
}

static void test_fires_in_deadline_order(void **state)
{
    (void)state;
    timer_heap h;
    timer_heap_init(&h);
    test_fire_seq = 0;
    enum { N = 200 };
    test_timer *ts = calloc(N, sizeof(*ts));
    for (int i = 0; i < N; i++) {
        timer_init(&ts[i].t, test_timer_fn);
        assert_true(timer_arm(&h, &ts[i].t, (uint64_t)((i * 7919) % N) + 1));
    }
    assert_int_equal(timer_next_deadline_ms(&h), 1);
    assert_int_equal(timer_run_due(&h, N + 1, N), N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(ts[i].fired, 1);
        assert_int_equal(ts[i].order, (int)((i * 7919) % N) + 1);
    }
    free(ts);
    timer_heap_deinit(&h);
}

static void test_not_due_does_not_fire(void **state)
{
    (void)state;
    timer_heap h;
    timer_heap_init(&h);
    test_timer a = {0};
    timer_init(&a.t, test_timer_fn);
    timer_arm(&h, &a.t, 100);
    assert_int_equal(timer_run_due(&h, 99, 10), 0);
    assert_int_equal(a.fired, 0);
    assert_int_equal(timer_run_due(&h, 100, 10), 1);
    assert_int_equal(a.fired, 1);
    assert_false(timer_armed(&a.t));
    timer_heap_deinit(&h);
}

static void test_cancel_and_rearm(void **state)
{
    (void)state;
    timer_heap h;
    timer_heap_init(&h);
    test_timer a = {0}, b = {0}, c = {0};
    timer_init(&a.t, test_timer_fn);
    timer_init(&b.t, test_timer_fn);
    timer_init(&c.t, test_timer_fn);
    timer_arm(&h, &a.t, 10);
    timer_arm(&h, &b.t, 20);
    timer_arm(&h, &c.t, 30);
    timer_cancel(&h, &a.t);
    timer_cancel(&h, &a.t); /* cancelling twice is harmless */
    timer_arm(&h, &c.t, 5); /* re-arm moves it */
    assert_int_equal(timer_next_deadline_ms(&h), 5);
    assert_int_equal(timer_run_due(&h, 100, 10), 2);
    assert_int_equal(a.fired, 0);
    assert_int_equal(b.fired, 1);
    assert_int_equal(c.fired, 1);
    assert_true(c.order < b.order);
    timer_heap_deinit(&h);
}

static void test_budget_bounds_work(void **state)
{
    (void)state;
    timer_heap h;
    timer_heap_init(&h);
    test_timer ts[5];
    for (int i = 0; i < 5; i++) {
        timer_init(&ts[i].t, test_timer_fn);
        ts[i].fired = 0;
        timer_arm(&h, &ts[i].t, 1);
    }
    assert_int_equal(timer_run_due(&h, 1, 3), 3);
    assert_int_equal(timer_run_due(&h, 1, 3), 2);
    timer_heap_deinit(&h);
}

static timer_heap *rearm_heap;
static void test_rearm_self_fn(timer *t, uint64_t now_ms)
{
    test_timer_fn(t, now_ms);
    if (((test_timer *)t)->fired < 3) timer_arm(rearm_heap, t, now_ms + 10);
}

static void test_callback_may_rearm_itself(void **state)
{
    (void)state;
    timer_heap h;
    timer_heap_init(&h);
    rearm_heap = &h;
    test_timer a = {0};
    timer_init(&a.t, test_rearm_self_fn);
    timer_arm(&h, &a.t, 10);
    for (uint64_t now = 10; now <= 100; now += 10) timer_run_due(&h, now, 10);
    assert_int_equal(a.fired, 3);
    assert_false(timer_armed(&a.t));
    timer_heap_deinit(&h);
}

static void test_random_cancel_keeps_heap_order(void **state)
{
    (void)state;
    timer_heap h;
    timer_heap_init(&h);
    enum { N = 1000 };
    test_timer *ts = calloc(N, sizeof(*ts));
    srand(42);
    for (int i = 0; i < N; i++) {
        timer_init(&ts[i].t, test_timer_fn);
        timer_arm(&h, &ts[i].t, (uint64_t)(rand() % 10000));
    }
    for (int i = 0; i < N; i += 3) timer_cancel(&h, &ts[i].t);
    uint64_t last = 0;
    int ran = 0;
    while (timer_next_deadline_ms(&h) != UINT64_MAX) {
        uint64_t d = timer_next_deadline_ms(&h);
        assert_true(d >= last);
        last = d;
        ran += (int)timer_run_due(&h, d, 1);
    }
    assert_int_equal(ran, N - (N + 2) / 3);
    for (int i = 0; i < N; i++) assert_int_equal(ts[i].fired, i % 3 == 0 ? 0 : 1);
    free(ts);
    timer_heap_deinit(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_heap_has_no_deadline),
        cmocka_unit_test(test_fires_in_deadline_order),
        cmocka_unit_test(test_not_due_does_not_fire),
        cmocka_unit_test(test_cancel_and_rearm),
        cmocka_unit_test(test_budget_bounds_work),
        cmocka_unit_test(test_callback_may_rearm_itself),
        cmocka_unit_test(test_random_cancel_keeps_heap_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
