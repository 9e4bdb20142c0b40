/*
 * The queues a shard owns, and the data path to them from every shard: the
 * queue structures (store/queue.h) by queue id, and the mailbox records that
 * carry publishes in, deliveries out to consumers' connections, acks and
 * credit back, basic.get, consumer changes and queue counts. A call that
 * names a queue on this shard runs at once; one that names another shard's
 * queue becomes a record, and its answer comes back as a call into net/
 * (declared at the end of this header) on the requesting shard.
 */
#ifndef RINGMQ_STORE_QUEUES_H
#define RINGMQ_STORE_QUEUES_H

#include "core/shard.h"
#include "net/amqp_types.h"
#include "route/route.h"
#include "store/msg.h"
#include "store/queue_types.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct queues queues;

void queues_register(void); /* mailbox handlers; once, before the shards start */
queues *queues_create(shard *s);
void queues_destroy(queues *qs);
/* End of turn: deliver from queues that became dispatchable (bounded). */
void queues_run(shard *s);
/* Whether queues wait for the next turn (a dispatch that used its budget): no sleeping then. */
bool queues_pending(const shard *s);

/* Topology callback on the owner shard: a queue of ours was created or removed. */
void queues_on_topology(shard *s, amqp_bytes vhost, const route_queue_info *q, bool created);
/* At start, from the segment log: msg goes back to durable queue queue_id (false: no such
 * durable queue here). The queue takes its own reference. */
bool queues_recover(shard *s, uint64_t queue_id, store_msg *msg);
/* Tells a publisher's shard that this shard took (or refused) its confirmed publish. */
void queues_send_publish_ack(shard *s, uint32_t to, uint64_t conn_id, uint16_t channel,
                             uint64_t confirm_seq, bool refused);

/* Counts of a queue; answer: declare_stats_done(). */
void queues_stats_request(shard *s, uint32_t owner, uint64_t queue_id, uint64_t cookie);

/*
 * A publish routed to queues: msg (this shard's, one reference kept by the
 * caller) goes to every queue in r; queues of other shards get a copy
 * through the mailbox. confirm_seq != 0 asks for publish_confirmed() once
 * every shard involved has taken it. *refused tells whether a queue of this
 * shard refused it. Returns false when a target shard's ring is full: the
 * caller holds the publisher and retries next turn.
 */
typedef struct {
    uint64_t conn_id;
    uint16_t channel;
    uint64_t confirm_seq; /* 0: no confirm wanted */
} queues_publisher;
bool queues_publish(shard *s, const route_result *r, store_msg *msg, const queues_publisher *pub,
                    uint32_t *shards_involved, bool *refused);

/* basic.consume; answer: consume_started(). */
typedef struct {
    uint64_t queue_id;
    uint32_t owner_shard;
    store_owner owner; /* shard id, connection id, channel */
    const char *tag;
    uint8_t tag_bytes;
    int32_t priority;
    uint32_t credit;
    bool no_ack;
    bool exclusive;
    uint64_t cookie;
} queues_consume_params;
void queues_consume(shard *s, const queues_consume_params *p);
/* basic.cancel from the client (unacked deliveries stay unacked). */
void queues_cancel(shard *s, uint32_t owner_shard, uint64_t queue_id, uint64_t consumer_id);

/* Settling one delivery, and giving credit back to its consumer. */
typedef enum {
    QUEUES_ACK = 1,
    QUEUES_REQUEUE = 2,
    QUEUES_DROP = 3,
    QUEUES_CREDIT_ONLY = 4, /* delivery_id 0: one credit to consumer_id */
    QUEUES_PAUSE = 5,       /* the consumer's connection is backlogged: no deliveries */
    QUEUES_RESUME = 6,
} queues_settle;
void queues_settle_delivery(shard *s, uint32_t owner_shard, uint64_t queue_id, uint64_t consumer_id,
                            uint64_t delivery_id, queues_settle how);

/* basic.get; answer: get_answered(). */
void queues_get(shard *s, uint32_t owner_shard, uint64_t queue_id, const store_owner *owner,
                bool no_ack, uint64_t cookie);

/* queue.purge; answer: purge_answered(). */
void queues_purge(shard *s, uint32_t owner_shard, uint64_t queue_id, uint64_t cookie);

/* A channel (or with channel 0, a whole connection) is gone: on every shard,
 * its consumers go and its unacked deliveries are requeued. */
void queues_owner_gone(shard *s, const store_owner *owner, store_owner_match match);

/* ---- answers, implemented in net/ ---- */

typedef struct {
    uint64_t conn_id;
    uint16_t channel;
    uint32_t queue_shard;
    uint64_t queue_id;
    uint64_t consumer_id;
    uint64_t delivery_id; /* 0: no ack expected */
    bool redelivered;
    uint64_t message_count; /* basic.get-ok */
    amqp_bytes exchange;
    amqp_bytes routing_key;
    amqp_bytes props;
    const uint8_t *body;
    uint64_t body_bytes;
} queues_delivery;

void declare_stats_done(shard *s, uint64_t cookie, bool found, uint32_t messages,
                        uint32_t consumers);
void consume_started(shard *s, uint64_t cookie, uint64_t consumer_id, uint16_t code,
                     const char *text);
void consume_deliver(shard *s, const queues_delivery *d);
/* The queue went away under a consumer (basic.cancel from the server). */
void consume_cancelled(shard *s, uint64_t conn_id, uint16_t channel, uint64_t queue_id,
                       uint64_t consumer_id);
/* d == NULL: basic.get-empty. */
void get_answered(shard *s, uint64_t cookie, const queues_delivery *d);
void purge_answered(shard *s, uint64_t cookie, bool found, uint64_t purged);
/* accepted false: a queue refused it (x-overflow reject-publish): basic.nack. */
void publish_confirmed(shard *s, uint64_t conn_id, uint16_t channel, uint64_t confirm_seq,
                       bool accepted);

#endif
