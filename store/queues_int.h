/*
 * Internal to store/queues.c and store/queues_publish.c: the shard's queue host (see
 * store/queues.h) split in two files, the publish path (routing a message into this shard's
 * queues, the segment log, confirms) apart from the rest (queue life, consumers, deliveries,
 * settles, basic.get, purge). The types and helpers here are shared by the two only.
 */
#ifndef RINGMQ_STORE_QUEUES_INT_H
#define RINGMQ_STORE_QUEUES_INT_H

#include "core/timer.h"
#include "route/route_map.h"
#include "store/msg.h"
#include "store/queue.h"
#include "store/queues.h"

#include <stdbool.h>
#include <stdint.h>

enum {
    Q_KIND_STATS_REQ = 8,
    Q_KIND_STATS_REP,
    Q_KIND_PUBLISH,
    Q_KIND_PUBLISH_ACK,
    Q_KIND_CONSUME,
    Q_KIND_CONSUME_REP,
    Q_KIND_DELIVER,
    Q_KIND_SETTLE,
    Q_KIND_CANCEL,
    Q_KIND_GET,
    Q_KIND_GET_REP,
    Q_KIND_PURGE,
    Q_KIND_PURGE_REP,
    Q_KIND_OWNER_GONE,
    Q_KIND_CANCELLED,
};

/* A consumer as this shard remembers it, to tell its channel when the queue goes. */
typedef struct {
    uint64_t consumer_id;
    store_owner owner;
} queues_consumer_ref;

enum {
    QUEUES_OVERFLOW_DROP_HEAD = 0,
    QUEUES_OVERFLOW_REJECT_PUBLISH = 1,
    QUEUES_OVERFLOW_REJECT_PUBLISH_DLX = 2,
};

/* A queue this shard owns. */
typedef struct owned_queue {
    queues_consumer_ref *consumers;
    uint32_t consumers_count;
    uint32_t consumers_capacity;
    uint64_t queue_id;
    store_queue *q;
    bool auto_delete;
    bool durable; /* persistent messages to it go to the segment log */
    bool had_consumer;
    bool marked; /* on the dispatch list */
    bool deleting;
    struct owned_queue *next_marked;
    uint8_t vhost_len, name_len;
    char vhost[LIMIT_NAME_BYTES_MAX];
    char name[LIMIT_NAME_BYTES_MAX];
    /* x-dead-letter-exchange / -routing-key, when declared */
    bool dlx;
    bool dlx_has_routing_key;
    uint8_t dlx_exchange_len, dlx_routing_key_len;
    char dlx_exchange[LIMIT_NAME_BYTES_MAX];
    char dlx_routing_key[LIMIT_NAME_BYTES_MAX];
    /* x-message-ttl, x-max-length, x-max-length-bytes (x-overflow drop-head) */
    bool has_ttl;
    uint8_t overflow; /* QUEUES_OVERFLOW_* */
    bool has_max_length;
    bool has_max_bytes;
    uint64_t ttl_ms;
    uint64_t max_length;
    uint64_t max_bytes;
    timer ttl_timer; /* armed at the head message's expiry while it has one */
    /* x-expires: deleted after that long unused (no consumer, get or declare) */
    bool has_expires;
    uint64_t expires_ms;
    timer expires_timer;
    /* x-single-active-consumer: only the oldest consumer receives */
    bool single_active;
    uint64_t active_consumer_id;
    shard *shard;
} owned_queue;

typedef struct queues_settle_rec {
    uint64_t queue_id;
    uint64_t consumer_id;
    uint64_t delivery_id;
    uint32_t how;
} queues_settle_rec;

struct queues {
    shard *s;
    route_map by_id;
    int spill_dir_fd; /* DATA_DIR/spill/shard-N: the queues' paged-out messages */
    owned_queue *marked_head;
    /* While a queue dispatches, a delivery can make its connection pause
     * consumers (output backlog): such settles wait here until it is done. */
    bool dispatching;
    queues_settle_rec *deferred;
    uint32_t deferred_count, deferred_capacity;
};

owned_queue *queues__find(queues *qs, uint64_t queue_id);
/* Puts o on the list that queues_run dispatches at the end of the turn. */
void queues__mark(queues *qs, owned_queue *o);
/* Sends a fixed header plus an optional message (its wire form) as one control record. */
void queues__send(shard *s, uint32_t to, uint16_t kind, const void *head, uint32_t head_bytes,
                  const store_msg *m);
/* A message record seen as slices of the record (valid during the handler); p may be NULL. */
void queues__msg_view(const uint8_t *in, queues_delivery *d, store_msg_params *p);
/* Drops expired messages at o's head and arms its TTL timer for the next one. */
void queues__expire(shard *s, owned_queue *o);
/* x-max-length / x-max-length-bytes with drop-head: drops (and dead-letters) the oldest. */
void queues__enforce_length(shard *s, owned_queue *o);
/* A message leaves o unconsumed: to its dead-letter exchange, if it has one. */
void queues__dead_letter(shard *s, owned_queue *o, store_msg *msg, const char *reason);

/* Mailbox handlers of store/queues_publish.c, registered by queues_register. */
void queues__on_publish(shard *s, uint32_t from, const void *payload, uint32_t bytes);
void queues__on_publish_ack(shard *s, uint32_t from, const void *payload, uint32_t bytes);

#endif
