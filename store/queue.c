/*
 * One queue on its owner shard: the ready structure (store/ready.c), the unacked set
 * (store/unacked.c) and the consumers (store/consumers.c), and the operations that move
 * messages between them. Single-threaded: only the owner shard's thread calls in.
 *
 * Invariants: every message reference the queue holds sits in exactly one of ready or unacked;
 * a delivery id is issued once and is unacked until ack, reject or a requeue; a requeue puts a
 * message back under its original sequence, flagged redelivered; no operation runs while a
 * dispatch callback is on the stack (the callbacks must not re-enter).
 */
#include "store/queue.h"

#include <stdio.h>
#include <string.h>

#include "core/limits.h"
#include "store/consumers.h"
#include "store/mem.h"
#include "store/ready.h"
#include "store/unacked.h"

struct store_queue {
    mi_heap_t *heap;
    store_ready ready;
    store_unacked unacked;
    store_consumers consumers;
    uint64_t delivery_id_next; /* starts at 1: 0 means "no ack expected" */
    uint64_t ready_bytes;      /* body bytes of the ready messages */
    bool dispatching;
    uint8_t vhost_bytes;
    uint8_t name_bytes;
    char vhost[LIMIT_NAME_BYTES_MAX + 1];
    char name[LIMIT_NAME_BYTES_MAX + 1];
};

bool store_owner_matches(const store_owner *a, const store_owner *b, store_owner_match match)
{
    ASSERT(a != NULL && b != NULL);
    ASSERT(match == STORE_OWNER_CHANNEL || match == STORE_OWNER_CONNECTION);
    if (a->shard_id != b->shard_id || a->conn_id != b->conn_id) return false;
    return match == STORE_OWNER_CONNECTION || a->channel_id == b->channel_id;
}

store_queue *store_queue_new(mi_heap_t *heap, const char *vhost, size_t vhost_bytes,
                             const char *name, size_t name_bytes, const store_queue_paging *paging)
{
    ASSERT(vhost_bytes <= LIMIT_NAME_BYTES_MAX && name_bytes <= LIMIT_NAME_BYTES_MAX);
    ASSERT((vhost != NULL || vhost_bytes == 0) && (name != NULL || name_bytes == 0));
    store_queue *q = store_mem_zalloc(heap, sizeof(*q));
    q->heap = heap;
    store_ready_init(&q->ready, heap, paging);
    store_unacked_init(&q->unacked, heap);
    store_consumers_init(&q->consumers, heap);
    q->delivery_id_next = 1;
    q->vhost_bytes = (uint8_t)vhost_bytes;
    q->name_bytes = (uint8_t)name_bytes;
    if (vhost_bytes > 0) memcpy(q->vhost, vhost, vhost_bytes);
    if (name_bytes > 0) memcpy(q->name, name, name_bytes);
    ASSERT(store_queue_ready_count(q) == 0);
    return q;
}

uint64_t store_queue_delete(store_queue *q)
{
    ASSERT(q != NULL);
    ASSERT(!q->dispatching);
    uint64_t ready_count = store_ready_count(&q->ready);
    store_consumers_fini(&q->consumers);
    store_unacked_fini(&q->unacked);
    store_ready_fini(&q->ready);
    store_mem_free(q);
    return ready_count;
}

bool store_queue_would_spill(const store_queue *q, const store_msg *msg)
{
    ASSERT(q != NULL && msg != NULL);
    return store_ready_would_spill(&q->ready, msg);
}

uint64_t store_queue_push(store_queue *q, store_msg *msg)
{
    ASSERT(!q->dispatching);
    ASSERT(msg != NULL);
    q->ready_bytes += msg->body_bytes;
    if (store_ready_would_spill(&q->ready, msg))
        return store_ready_push_spill(&q->ready, msg, NULL);
    return store_ready_push(&q->ready, store_msg_ref(msg));
}

uint64_t store_queue_push_spill(store_queue *q, const store_msg *msg, const store_msg_slot *slot)
{
    ASSERT(!q->dispatching);
    ASSERT(store_ready_would_spill(&q->ready, msg));
    q->ready_bytes += msg->body_bytes;
    return store_ready_push_spill(&q->ready, msg, slot);
}

/* Moves a popped message into the unacked set under a new delivery id (the reference passes). */
static uint64_t queue_unacked_add(store_queue *q, const store_ready_entry *e, uint64_t consumer_id,
                                  const store_owner *owner)
{
    ASSERT(q->delivery_id_next != 0);
    uint64_t delivery_id = q->delivery_id_next++;
    store_unacked_entry entry = {
        .delivery_id = delivery_id,
        .msg = e->msg,
        .seq = e->seq,
        .consumer_id = consumer_id,
        .owner = *owner,
        .redelivered = e->redelivered,
    };
    store_unacked_insert(&q->unacked, &entry);
    return delivery_id;
}

uint32_t store_queue_dispatch(store_queue *q, store_deliver_fn *deliver, void *ctx, uint32_t budget)
{
    ASSERT(deliver != NULL);
    ASSERT(!q->dispatching);
    q->dispatching = true;
    uint32_t delivered = 0;
    while (delivered < budget && store_ready_count(&q->ready) > 0) {
        store_consumer *c = store_consumers_next(&q->consumers);
        if (c == NULL) break;
        store_ready_entry e;
        bool popped = store_ready_pop(&q->ready, &e);
        ASSERT(popped);
        q->ready_bytes -= e.msg->body_bytes;
        store_consumers_charge(&q->consumers, c);
        uint64_t delivery_id = c->no_ack ? 0 : queue_unacked_add(q, &e, c->id, &c->owner);
        deliver(ctx, c, e.msg, delivery_id, e.redelivered);
        if (c->no_ack) store_msg_unref(e.msg);
        delivered++;
    }
    q->dispatching = false;
    ASSERT(delivered <= budget);
    return delivered;
}

bool store_queue_dispatchable(const store_queue *q)
{
    ASSERT(q != NULL);
    return store_ready_count(&q->ready) > 0 && store_consumers_next(&q->consumers) != NULL;
}

bool store_queue_get(store_queue *q, const store_owner *owner, bool no_ack, store_get *out)
{
    ASSERT(!q->dispatching);
    ASSERT(owner != NULL && out != NULL);
    store_ready_entry e;
    if (!store_ready_pop(&q->ready, &e)) {
        *out = (store_get){0};
        return false;
    }
    q->ready_bytes -= e.msg->body_bytes;
    uint64_t delivery_id = 0;
    if (!no_ack) {
        delivery_id = queue_unacked_add(q, &e, 0, owner);
        store_msg_ref(e.msg); /* the caller's; the unacked set keeps its own */
    }
    *out = (store_get){
        .msg = e.msg,
        .delivery_id = delivery_id,
        .ready_count = store_ready_count(&q->ready),
        .redelivered = e.redelivered,
    };
    return true;
}

bool store_queue_ack(store_queue *q, uint64_t delivery_id)
{
    ASSERT(!q->dispatching);
    /* An id this queue never issued is not asserted on: a settle can cross a queue's deletion and
     * re-declaration (ids restart at 1) in the mailbox. */
    store_unacked_entry e;
    if (!store_unacked_take(&q->unacked, delivery_id, &e)) return false;
    ASSERT(e.delivery_id == delivery_id && delivery_id < q->delivery_id_next);
    store_msg_unref(e.msg);
    return true;
}

bool store_queue_reject(store_queue *q, uint64_t delivery_id, bool requeue)
{
    ASSERT(!q->dispatching);
    store_unacked_entry e;
    if (!store_unacked_take(&q->unacked, delivery_id, &e)) return false;
    ASSERT(e.delivery_id == delivery_id && delivery_id < q->delivery_id_next);
    if (requeue) {
        q->ready_bytes += e.msg->body_bytes;
        store_ready_requeue(&q->ready, e.msg, e.seq);
    } else {
        store_msg_unref(e.msg);
    }
    return true;
}

store_msg *store_queue_peek(const store_queue *q)
{
    return store_ready_peek(&q->ready);
}

store_msg *store_queue_drop_head(store_queue *q)
{
    ASSERT(!q->dispatching);
    store_ready_entry e;
    if (!store_ready_pop(&q->ready, &e)) return NULL;
    ASSERT(q->ready_bytes >= e.msg->body_bytes);
    q->ready_bytes -= e.msg->body_bytes;
    return e.msg;
}

uint64_t store_queue_ready_bytes(const store_queue *q)
{
    return q->ready_bytes;
}

store_msg *store_queue_reject_take(store_queue *q, uint64_t delivery_id)
{
    ASSERT(!q->dispatching);
    store_unacked_entry e;
    if (!store_unacked_take(&q->unacked, delivery_id, &e)) return NULL;
    ASSERT(e.delivery_id == delivery_id && e.msg != NULL);
    return e.msg; /* the queue's reference passes to the caller */
}

static void queue_requeue_sink(void *ctx, const store_unacked_entry *entry)
{
    store_queue *q = ctx;
    q->ready_bytes += entry->msg->body_bytes;
    store_ready_requeue(&q->ready, entry->msg, entry->seq);
}

static bool queue_match_consumer(const void *arg, const store_unacked_entry *entry)
{
    return entry->consumer_id == *(const uint64_t *)arg;
}

typedef struct queue_owner_filter {
    const store_owner *owner;
    store_owner_match match;
} queue_owner_filter;

static bool queue_match_owner(const void *arg, const store_unacked_entry *entry)
{
    const queue_owner_filter *filter = arg;
    return store_owner_matches(&entry->owner, filter->owner, filter->match);
}

uint64_t store_queue_requeue_consumer(store_queue *q, uint64_t consumer_id)
{
    ASSERT(!q->dispatching);
    ASSERT(consumer_id != 0);
    uint64_t ready_before = store_ready_count(&q->ready);
    uint64_t n = store_unacked_take_matching(&q->unacked, queue_match_consumer, &consumer_id,
                                             queue_requeue_sink, q);
    ASSERT(store_ready_count(&q->ready) == ready_before + n);
    return n;
}

uint64_t store_queue_requeue_owner(store_queue *q, const store_owner *owner,
                                   store_owner_match match)
{
    ASSERT(!q->dispatching);
    ASSERT(owner != NULL);
    uint64_t ready_before = store_ready_count(&q->ready);
    queue_owner_filter filter = {.owner = owner, .match = match};
    uint64_t n =
        store_unacked_take_matching(&q->unacked, queue_match_owner, &filter, queue_requeue_sink, q);
    ASSERT(store_ready_count(&q->ready) == ready_before + n);
    return n;
}

uint64_t store_queue_purge(store_queue *q)
{
    ASSERT(!q->dispatching);
    uint64_t unacked_before = q->unacked.count;
    uint64_t n = store_ready_purge(&q->ready);
    q->ready_bytes = 0;
    ASSERT(q->unacked.count == unacked_before);
    return n;
}

static void queue_reply(const store_queue *q, store_reply *reply, uint16_t code, const char *what)
{
    ASSERT(reply != NULL);
    ASSERT(code != 0);
    int n = snprintf(reply->text, sizeof(reply->text), "queue '%.*s' in vhost '%.*s' %s",
                     (int)q->name_bytes, q->name, (int)q->vhost_bytes, q->vhost, what);
    ASSERT(n > 0);
    reply->code = code;
    reply->text_bytes =
        (uint8_t)((size_t)n < sizeof(reply->text) ? (size_t)n : sizeof(reply->text) - 1);
}

uint64_t store_queue_consumer_add(store_queue *q, const store_consumer_params *params,
                                  store_reply *reply)
{
    ASSERT(!q->dispatching);
    ASSERT(params != NULL && reply != NULL);
    *reply = (store_reply){0};
    if (q->consumers.exclusive_count > 0 || (params->exclusive && q->consumers.count > 0)) {
        queue_reply(q, reply, STORE_REPLY_ACCESS_REFUSED, "in exclusive use");
        return 0;
    }
    if (q->consumers.count >= LIMIT_QUEUE_CONSUMERS_MAX) {
        queue_reply(q, reply, STORE_REPLY_RESOURCE_ERROR, "has too many consumers");
        return 0;
    }
    store_consumer *c = store_consumers_add(&q->consumers, params);
    ASSERT(c->id != 0);
    return c->id;
}

bool store_queue_consumer_remove(store_queue *q, uint64_t consumer_id, bool requeue_unacked,
                                 bool *last_out)
{
    ASSERT(!q->dispatching);
    if (last_out != NULL) *last_out = false;
    store_consumer *c = store_consumers_find(&q->consumers, consumer_id);
    if (c == NULL) return false;
    ASSERT(consumer_id != 0 && c->id == consumer_id);
    store_consumers_remove(&q->consumers, c);
    if (requeue_unacked) store_queue_requeue_consumer(q, consumer_id);
    if (last_out != NULL) *last_out = q->consumers.count == 0;
    ASSERT(store_consumers_find(&q->consumers, consumer_id) == NULL);
    return true;
}

uint32_t store_queue_consumer_remove_owner(store_queue *q, const store_owner *owner,
                                           store_owner_match match, bool *last_out)
{
    ASSERT(!q->dispatching);
    ASSERT(owner != NULL);
    uint32_t removed = 0;
    for (uint32_t i = 0; i < q->consumers.slots_used; i++) {
        store_consumer *c = store_consumers_slot(&q->consumers, i);
        if (c == NULL || !store_owner_matches(&c->owner, owner, match)) continue;
        store_consumers_remove(&q->consumers, c);
        removed++;
    }
    if (last_out != NULL) *last_out = removed > 0 && q->consumers.count == 0;
    return removed;
}

bool store_queue_credit(store_queue *q, uint64_t consumer_id, uint32_t credit)
{
    ASSERT(!q->dispatching);
    store_consumer *c = store_consumers_find(&q->consumers, consumer_id);
    if (c == NULL) return false; /* cancelled while the credit was in the mailbox */
    ASSERT(c->id == consumer_id);
    store_consumers_credit(&q->consumers, c, credit);
    return true;
}

bool store_queue_consumer_set_active(store_queue *q, uint64_t consumer_id, bool active)
{
    ASSERT(!q->dispatching);
    store_consumer *c = store_consumers_find(&q->consumers, consumer_id);
    if (c == NULL) return false;
    ASSERT(c->id == consumer_id);
    store_consumers_set_active(&q->consumers, c, active);
    return true;
}

const store_consumer *store_queue_consumer(const store_queue *q, uint64_t consumer_id)
{
    ASSERT(q != NULL);
    return store_consumers_find(&q->consumers, consumer_id);
}

uint64_t store_queue_ready_count(const store_queue *q)
{
    return store_ready_count(&q->ready);
}
uint64_t store_queue_spilled_count(const store_queue *q)
{
    return q->ready.spilled;
}
uint64_t store_queue_unacked_count(const store_queue *q)
{
    return q->unacked.count;
}
uint32_t store_queue_consumer_count(const store_queue *q)
{
    return q->consumers.count;
}
