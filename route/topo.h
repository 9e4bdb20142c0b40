/*
 * Topology changes across shards. Every shard holds a full replica of each
 * vhost's exchanges, queue directory and bindings (route/route.h). Shard 0
 * is the sequencer: every change is validated and applied there first, then
 * broadcast to every other shard through the mailbox; each shard applies it
 * and tells the requesting shard, which answers its client only once every
 * shard has applied the change. So once a client has seen declare-ok or
 * bind-ok, a publish from any connection on any shard routes through it.
 * Because each mailbox ring is FIFO, a reply from shard 0 to a shard always
 * arrives after every change shard 0 broadcast to it before.
 *
 * Reads (passive declares, routing) use the local replica and never wait.
 */
#ifndef RINGMQ_ROUTE_TOPO_H
#define RINGMQ_ROUTE_TOPO_H

#include "core/shard.h"
#include "route/route.h"
#include "store/defs.h"

#include <stdbool.h>
#include <stdint.h>

/* The shard that validates, orders and records every topology change. */
#define TOPO_SEQUENCER_SHARD_ID 0u

typedef enum {
    TOPO_EXCHANGE_DECLARE = 1,
    TOPO_EXCHANGE_DELETE,
    TOPO_QUEUE_DECLARE,
    TOPO_QUEUE_DELETE,
    TOPO_BIND,
    TOPO_UNBIND,
} topo_op;

/* A change as the requester describes it; slices are copied on submit. */
typedef struct {
    topo_op op;
    amqp_bytes vhost;
    amqp_bytes name;        /* exchange or queue; the source for (un)bind */
    amqp_bytes destination; /* (un)bind */
    bool destination_is_exchange;
    amqp_bytes routing_key; /* (un)bind */
    amqp_bytes type;        /* exchange type */
    amqp_table arguments;
    bool durable, auto_delete, internal, exclusive, if_unused;
    bool server_named;      /* queue declare: "amq.gen-..." chosen by the broker */
    uint64_t conn_id;       /* requesting connection (exclusive queues) */
    uint32_t queue_shard;   /* queue declare: the owner chosen by the requester */
} topo_request;

/* What the requester learns when every shard has applied the change. */
typedef struct topo_reply {
    uint16_t reply_code;  /* 200, or the error to send */
    char text[256];
    bool created;
    uint64_t queue_id;    /* queue declare/delete */
    uint32_t queue_shard;
} topo_reply;

/* Called on the requesting shard; cookie is what the requester passed. */
typedef void (*topo_done_fn)(shard *s, uint64_t cookie, const topo_reply *reply);
/* Called on a queue's owner shard when a queue it owns is created or removed. */
typedef void (*topo_queue_fn)(shard *s, amqp_bytes vhost, const route_queue_info *q, bool created);

typedef struct topo topo;

/* Before the shards start: the callbacks (the same for every shard). */
void topo_set_callbacks(topo_done_fn done, topo_queue_fn queue);
/* On the shard's thread, at start: replicas of every vhost of the user store. */
topo *topo_create(shard *s);
void topo_destroy(topo *t);
route_vhost *topo_vhost(const topo *t, amqp_bytes vhost);

/* Submit a change; done() runs on this shard later (never inside this call). */
void topo_submit(shard *s, const topo_request *req, uint64_t cookie);
/* A change nobody waits for (exclusive and auto-delete queue removal). */
void topo_submit_quiet(shard *s, const topo_request *req);
/* No change this shard submitted still waits for the sequencer to apply it (shutdown). */
bool topo_idle(const topo *t);

/* Registers the mailbox handlers; once, before the shards start. */
void topo_register(void);

/* Owner shard of a new queue: a placement pin of the config, else XXH3(vhost NUL name) modulo
 * shard_count. (Server-named queues live on their declarer's shard instead.) */
uint32_t topo_queue_placement(const config *cfg, uint32_t shard_count, amqp_bytes vhost,
                              amqp_bytes name);

/*
 * Durable definitions (route/topo_recover.c). On the main thread, after the journal is open and
 * before the shards start: drops the definitions of vhosts that no longer exist, gives queues
 * whose owner shard no longer exists (fewer shards than when they were declared) a new owner,
 * and applies the whole live set to scratch replicas, dropping what does not apply; each with a
 * log line, and all durably. Then every shard's topo_create applies the same live set to its
 * replicas and creates the queues it owns. False (logged) if the journal cannot be written.
 */
bool topo_recover_prepare(store_defs *defs, const config *cfg, const auth_store *auth,
                          uint32_t shard_count);
/* One definition of the live set into a replica; *queue is the new directory entry of a queue.
 * Internal to route/topo*.c. */
bool topo__apply_def(route_vhost *vh, const store_defs_change *def, const route_queue_info **queue,
                     route_error *err);

#endif
