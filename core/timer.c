/*
 * Binary min-heap of intrusive timers. Invariants: items[i]->heap_index == i
 * for every armed timer; a parent's deadline is <= its children's. A timer
 * callback may re-arm or cancel any timer, itself included, because the due
 * timer is removed from the heap before its callback runs.
 */
#include "core/timer.h"

#include "core/assert.h"

#include <stdlib.h>
#include <time.h>

enum { TIMER_HEAP_CAPACITY_INITIAL = 64 };

void timer_heap_init(timer_heap *heap)
{
    ASSERT(heap != NULL);
    heap->items = NULL;
    heap->count = 0;
    heap->capacity = 0;
}

void timer_heap_deinit(timer_heap *heap)
{
    ASSERT(heap != NULL);
    free(heap->items);
    heap->items = NULL;
    heap->count = heap->capacity = 0;
}

void timer_init(timer *t, timer_fn fn)
{
    ASSERT(t != NULL && fn != NULL);
    t->deadline_ms = 0;
    t->fn = fn;
    t->heap_index = TIMER_INDEX_NONE;
}

static void timer_heap_set(timer_heap *heap, uint32_t i, timer *t)
{
    heap->items[i] = t;
    t->heap_index = i;
}

static void timer_heap_sift_up(timer_heap *heap, uint32_t i)
{
    timer *t = heap->items[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (heap->items[parent]->deadline_ms <= t->deadline_ms) break;
        timer_heap_set(heap, i, heap->items[parent]);
        i = parent;
    }
    timer_heap_set(heap, i, t);
}

static void timer_heap_sift_down(timer_heap *heap, uint32_t i)
{
    timer *t = heap->items[i];
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= heap->count) break;
        if (child + 1 < heap->count &&
            heap->items[child + 1]->deadline_ms < heap->items[child]->deadline_ms)
            child++;
        if (t->deadline_ms <= heap->items[child]->deadline_ms) break;
        timer_heap_set(heap, i, heap->items[child]);
        i = child;
    }
    timer_heap_set(heap, i, t);
}

static void timer_heap_remove_at(timer_heap *heap, uint32_t i)
{
    ASSERT(i < heap->count);
    timer *removed = heap->items[i];
    heap->count--;
    if (i != heap->count) {
        timer_heap_set(heap, i, heap->items[heap->count]);
        timer_heap_sift_down(heap, i);
        timer_heap_sift_up(heap, heap->items[i]->heap_index);
    }
    removed->heap_index = TIMER_INDEX_NONE;
}

bool timer_arm(timer_heap *heap, timer *t, uint64_t deadline_ms)
{
    ASSERT(heap != NULL && t != NULL && t->fn != NULL);
    if (timer_armed(t)) timer_heap_remove_at(heap, t->heap_index);
    if (heap->count == heap->capacity) {
        uint32_t capacity = heap->capacity ? heap->capacity * 2 : TIMER_HEAP_CAPACITY_INITIAL;
        timer **items = realloc(heap->items, sizeof(*items) * capacity);
        if (items == NULL) return false;
        heap->items = items;
        heap->capacity = capacity;
    }
    t->deadline_ms = deadline_ms;
    heap->count++;
    timer_heap_set(heap, heap->count - 1, t);
    timer_heap_sift_up(heap, heap->count - 1);
    DEBUG_ASSERT(heap->items[t->heap_index] == t);
    return true;
}

void timer_cancel(timer_heap *heap, timer *t)
{
    ASSERT(heap != NULL && t != NULL);
    if (!timer_armed(t)) return;
    ASSERT(t->heap_index < heap->count && heap->items[t->heap_index] == t);
    timer_heap_remove_at(heap, t->heap_index);
}

uint64_t timer_next_deadline_ms(const timer_heap *heap)
{
    ASSERT(heap != NULL);
    return heap->count ? heap->items[0]->deadline_ms : UINT64_MAX;
}

uint32_t timer_run_due(timer_heap *heap, uint64_t now_ms, uint32_t budget)
{
    ASSERT(heap != NULL);
    uint32_t ran = 0;
    while (ran < budget && heap->count > 0 && heap->items[0]->deadline_ms <= now_ms) {
        timer *t = heap->items[0];
        timer_heap_remove_at(heap, 0);
        ASSERT(!timer_armed(t));
        t->fn(t, now_ms);
        ran++;
    }
    return ran;
}

uint64_t timer_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
