/*
 * Helpers for the store/ unit tests: a private mimalloc heap per test whose live blocks are
 * counted at the end (mimalloc memory is not seen by ASan's leak check, so the tests count it
 * themselves), messages numbered by their publish_seq, and a dispatch callback that records
 * what it was given.
 */
#ifndef RINGMQ_TESTS_STORE_UTIL_H
#define RINGMQ_TESTS_STORE_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <mimalloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "store/msg.h"
#include "store/queue.h"

static inline bool util_count_block(const mi_heap_t *heap, const mi_heap_area_t *area, void *block,
                                    size_t block_size, void *arg)
{
    (void)heap, (void)area, (void)block_size;
    if (block != NULL) (*(size_t *)arg)++;
    return true;
}

/* Live blocks in heap. */
static inline size_t util_heap_blocks(mi_heap_t *heap)
{
    size_t blocks = 0;
    mi_heap_visit_blocks(heap, true, util_count_block, &blocks);
    return blocks;
}

static inline int util_heap_setup(void **state)
{
    *state = mi_heap_new();
    return *state == NULL ? -1 : 0;
}

/* Fails the test when anything allocated on the test's heap is still alive. */
static inline int util_heap_teardown(void **state)
{
    mi_heap_t *heap = *state;
    size_t blocks = util_heap_blocks(heap);
    mi_heap_destroy(heap);
    if (blocks != 0) fprintf(stderr, "leak: %zu live blocks\n", blocks);
    return blocks == 0 ? 0 : -1;
}

/* A message whose number (publish_seq) is n, its body "m<n>". */
static inline store_msg *util_msg(mi_heap_t *heap, uint64_t n)
{
    char body[32];
    int body_bytes = snprintf(body, sizeof(body), "m%llu", (unsigned long long)n);
    store_msg_params p = {
        .exchange = "amq.direct",
        .exchange_bytes = 10,
        .routing_key = "rk",
        .routing_key_bytes = 2,
        .body = body,
        .body_bytes = (size_t)body_bytes,
        .publish_seq = n,
    };
    store_msg *m = store_msg_new(heap, &p);
    assert_non_null(m);
    return m;
}

/* Pushes messages first..last (numbers) and drops the test's own references. */
static inline void util_push_range(mi_heap_t *heap, store_queue *q, uint64_t first, uint64_t last)
{
    for (uint64_t n = first; n <= last; n++) {
        store_msg *m = util_msg(heap, n);
        store_queue_push(q, m);
        store_msg_unref(m);
    }
}

static inline store_queue *util_queue(mi_heap_t *heap)
{
    store_queue *q = store_queue_new(heap, "/", 1, "q", 1, NULL);
    assert_non_null(q);
    return q;
}

#define UTIL_DELIVERIES_MAX 4096

typedef struct util_delivery {
    uint64_t consumer_id;
    uint64_t msg_n;
    uint64_t delivery_id;
    bool redelivered;
} util_delivery;

typedef struct util_log {
    util_delivery d[UTIL_DELIVERIES_MAX];
    size_t count;
} util_log;

static inline void util_deliver(void *ctx, const store_consumer *consumer, store_msg *msg,
                                uint64_t delivery_id, bool redelivered)
{
    util_log *log = ctx;
    assert_true(log->count < UTIL_DELIVERIES_MAX);
    assert_true(msg->refs >= 1);
    log->d[log->count++] = (util_delivery){
        .consumer_id = consumer->id,
        .msg_n = msg->publish_seq,
        .delivery_id = delivery_id,
        .redelivered = redelivered,
    };
}

static inline store_owner util_owner(uint64_t shard, uint64_t conn, uint64_t channel)
{
    return (store_owner){.shard_id = shard, .conn_id = conn, .channel_id = channel};
}

/* Adds a consumer that must be accepted. */
static inline uint64_t util_consume(store_queue *q, const char *tag, int32_t priority,
                                    uint32_t credit, bool no_ack, store_owner owner)
{
    store_consumer_params p = {
        .tag = tag,
        .tag_bytes = strlen(tag),
        .owner = owner,
        .priority = priority,
        .credit = credit,
        .no_ack = no_ack,
    };
    store_reply reply;
    uint64_t id = store_queue_consumer_add(q, &p, &reply);
    assert_int_not_equal(id, 0);
    assert_int_equal(reply.code, 0);
    return id;
}

/* basic.get that must find a message; returns its number and drops the caller's reference. */
static inline uint64_t util_get(store_queue *q, bool no_ack, uint64_t *delivery_id,
                                bool *redelivered)
{
    store_owner owner = util_owner(0, 1, 1);
    store_get g;
    assert_true(store_queue_get(q, &owner, no_ack, &g));
    uint64_t n = g.msg->publish_seq;
    if (delivery_id != NULL) *delivery_id = g.delivery_id;
    if (redelivered != NULL) *redelivered = g.redelivered;
    store_msg_unref(g.msg);
    return n;
}

#endif
