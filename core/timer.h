/*
 * Per-shard timers: an intrusive binary min-heap keyed by deadline in
 * milliseconds of CLOCK_MONOTONIC. Each shard owns one heap and only its own
 * thread touches it. A timer is embedded in its owner (a connection, later a
 * queue) so arming and cancelling never allocate beyond the heap's array,
 * which grows in steps and never shrinks.
 */
#ifndef RINGMQ_CORE_TIMER_H
#define RINGMQ_CORE_TIMER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct timer timer;
typedef void (*timer_fn)(timer *t, uint64_t now_ms);

struct timer {
    uint64_t deadline_ms;
    timer_fn fn;
    uint32_t heap_index; /* TIMER_INDEX_NONE while not armed */
};

#define TIMER_INDEX_NONE UINT32_MAX

typedef struct {
    timer **items;
    uint32_t count;
    uint32_t capacity;
} timer_heap;

void timer_heap_init(timer_heap *heap);
void timer_heap_deinit(timer_heap *heap);

void timer_init(timer *t, timer_fn fn);
/* Arms or re-arms t for deadline_ms. Returns false only if out of memory. */
bool timer_arm(timer_heap *heap, timer *t, uint64_t deadline_ms);
void timer_cancel(timer_heap *heap, timer *t);
static inline bool timer_armed(const timer *t) { return t->heap_index != 0xFFFFFFFFu; }

/* Earliest deadline, or UINT64_MAX when no timer is armed. */
uint64_t timer_next_deadline_ms(const timer_heap *heap);
/* Runs every timer whose deadline is <= now_ms, at most budget of them; returns how many ran. */
uint32_t timer_run_due(timer_heap *heap, uint64_t now_ms, uint32_t budget);

uint64_t timer_now_ms(void);

#endif
