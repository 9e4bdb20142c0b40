/*
 * The in-memory queue structure, used by the queue's owner shard only (single-threaded, no I/O):
 * ready messages in order, the unacked set, consumers with priorities and credit, dispatch,
 * basic.get, acks, rejects and requeues with RabbitMQ's semantics.
 *
 * Message references: store_queue_push takes its own reference (the caller keeps and drops its
 * own). A message handed to a dispatch callback is borrowed for the callback's duration: take a
 * reference (store_msg_ref) to keep it longer. store_queue_get hands the caller a reference.
 *
 * Ids: sequences (per queue, by push order, monotonic), delivery ids (per queue, monotonic from
 * 1; 0 means "no ack expected"), consumer ids (never 0, never reused while the queue lives).
 * Delivery ids are queue-side; the channel maps them to its own delivery tags.
 *
 * Paging: a queue made with paging keeps at most a window of its ready messages in memory and
 * the rest, in order, on disk (store/spill.h); every call below sees one sequence of ready
 * messages either way, and the counts include paged-out ones. The head is always in memory.
 */
#ifndef RINGMQ_STORE_QUEUE_H
#define RINGMQ_STORE_QUEUE_H

#include <mimalloc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/msg.h"
#include "store/queue_types.h"

typedef struct store_queue store_queue;

/* consumer is the one the message goes to (its credit already charged); delivery_id is 0 for a
 * no_ack consumer (the message is dropped after the callback). The callback must not call back
 * into this queue. */
typedef void store_deliver_fn(void *ctx, const store_consumer *consumer, store_msg *msg,
                              uint64_t delivery_id, bool redelivered);

typedef struct store_get {
    store_msg *msg;       /* a reference the caller owns */
    uint64_t delivery_id; /* 0 for no_ack */
    uint64_t ready_count; /* messages left ready: basic.get-ok's message-count */
    bool redelivered;
} store_get;

/* A queue with its structures on heap (NULL: mimalloc's default heap). vhost and name (each at
 * most LIMIT_NAME_BYTES_MAX bytes) are kept for reply texts. paging (copied; NULL: every ready
 * message stays in memory) lets its backlog go to disk past an in-memory window. */
store_queue *store_queue_new(mi_heap_t *heap, const char *vhost, size_t vhost_bytes,
                             const char *name, size_t name_bytes, const store_queue_paging *paging);
/* Frees the queue, dropping ready and unacked messages and consumers; returns how many messages
 * were ready (queue.delete-ok's message-count). */
uint64_t store_queue_delete(store_queue *q);

/* Whether the next push of msg pages it out: the queue's window is full, or messages are paged
 * out already (they go first). The answer holds until the queue is changed. */
bool store_queue_would_spill(const store_queue *q, const store_msg *msg);
/* Appends msg; returns its sequence. O(1) amortised. In memory, taking a reference, unless
 * store_queue_would_spill: then a copy is paged out that owns no log slot (a transient message,
 * a queue that is not durable, a message the log refused). */
uint64_t store_queue_push(store_queue *q, store_msg *msg);
/* Appends a paged-out copy of msg (store_queue_would_spill must hold; the caller keeps its
 * reference) that owns slot of the segment log: it acks that slot when it goes. */
uint64_t store_queue_push_spill(store_queue *q, const store_msg *msg, const store_msg_slot *slot);
/* Delivers up to budget ready messages to consumers that have credit; returns how many. */
uint32_t store_queue_dispatch(store_queue *q, store_deliver_fn *deliver, void *ctx,
                              uint32_t budget);
/* True when a dispatch would deliver something now. */
bool store_queue_dispatchable(const store_queue *q);
/* basic.get: the next ready message, unacked under owner unless no_ack; false when empty. */
bool store_queue_get(store_queue *q, const store_owner *owner, bool no_ack, store_get *out);

/* basic.ack of one delivery; false when delivery_id is not unacked here (any id is accepted: a
 * settle may outlive the queue instance that issued it). */
bool store_queue_ack(store_queue *q, uint64_t delivery_id);
/* basic.reject / basic.nack of one delivery: back at its original place, flagged redelivered, or
 * dropped; false when delivery_id is not unacked here. */
bool store_queue_reject(store_queue *q, uint64_t delivery_id, bool requeue);
/* The next ready message without taking it (borrowed), or NULL when none is ready. */
store_msg *store_queue_peek(const store_queue *q);
/* Takes the next ready message out (TTL expiry, length limits); the reference passes to the
 * caller. NULL when none is ready. */
store_msg *store_queue_drop_head(store_queue *q);
/* Bytes of ready message bodies (x-max-length-bytes). */
uint64_t store_queue_ready_bytes(const store_queue *q);
/* Rejects without requeue and hands the message (its reference) to the caller, for
 * dead-lettering; NULL when delivery_id is not unacked here. */
store_msg *store_queue_reject_take(store_queue *q, uint64_t delivery_id);
/* Requeues every unacked delivery of a consumer (removed or not; consumer_id != 0) / of an
 * owner's channel or connection (consumer deliveries and basic.get alike), each at its original
 * place; returns how many. */
uint64_t store_queue_requeue_consumer(store_queue *q, uint64_t consumer_id);
uint64_t store_queue_requeue_owner(store_queue *q, const store_owner *owner,
                                   store_owner_match match);
/* queue.purge: drops every ready message (unacked ones stay); returns how many. */
uint64_t store_queue_purge(store_queue *q);

/* basic.consume: returns the new consumer's id, or 0 with reply filled in (ACCESS_REFUSED when
 * an exclusive consumer exists or an exclusive one is asked for while any exists,
 * RESOURCE_ERROR past LIMIT_QUEUE_CONSUMERS_MAX). */
uint64_t store_queue_consumer_add(store_queue *q, const store_consumer_params *params,
                                  store_reply *reply);
/* basic.cancel: false when consumer_id is unknown. Its unacked deliveries stay unacked
 * (RabbitMQ) unless requeue_unacked. *last_out (may be NULL) tells whether this removed the
 * queue's last consumer: an auto-delete queue is deleted then. */
bool store_queue_consumer_remove(store_queue *q, uint64_t consumer_id, bool requeue_unacked,
                                 bool *last_out);
/* Removes every consumer of an owner's channel or connection; returns how many. Unacked
 * deliveries stay: follow with store_queue_requeue_owner when the channel closes. */
uint32_t store_queue_consumer_remove_owner(store_queue *q, const store_owner *owner,
                                           store_owner_match match, bool *last_out);
/* Gives credit back to a consumer (saturating; an unlimited consumer stays unlimited); false
 * when consumer_id is unknown. */
bool store_queue_credit(store_queue *q, uint64_t consumer_id, uint32_t credit);
bool store_queue_consumer_set_active(store_queue *q, uint64_t consumer_id, bool active);
/* The consumer, or NULL; valid until it is removed. */
const store_consumer *store_queue_consumer(const store_queue *q, uint64_t consumer_id);

uint64_t store_queue_ready_count(const store_queue *q);   /* paged-out ones included */
uint64_t store_queue_spilled_count(const store_queue *q); /* ready messages paged out */
uint64_t store_queue_unacked_count(const store_queue *q);
uint32_t store_queue_consumer_count(const store_queue *q);

bool store_owner_matches(const store_owner *a, const store_owner *b, store_owner_match match);

#endif
