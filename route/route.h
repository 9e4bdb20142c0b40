/*
 * The routing replica: one vhost's exchanges, queue directory and bindings,
 * and the publish-time match that turns (exchange, routing key, headers)
 * into the set of destination queues. Every shard holds its own copy and
 * applies the same metadata operations in the same order, so all copies
 * stay identical; nothing here does I/O or takes locks.
 *
 * Operations that a client can get wrong (declare, delete, bind, unbind)
 * return false and fill a route_error with RabbitMQ's reply code and reply
 * text. Applying an operation that succeeded on the owning shard to another
 * replica succeeds identically. Names are byte slices of at most 255 bytes.
 *
 * Pointers to exchanges and queues stay valid until the object is deleted;
 * a route_result is meant to be consumed in the turn that produced it.
 */
#ifndef RINGMQ_ROUTE_ROUTE_H
#define RINGMQ_ROUTE_ROUTE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/limits.h"
#include "net/amqp_types.h"

typedef struct route_vhost route_vhost;
typedef struct route_exchange route_exchange;
typedef struct route_queue route_queue;

typedef enum route_exchange_type {
    ROUTE_EXCHANGE_DIRECT = 1,
    ROUTE_EXCHANGE_FANOUT = 2,
    ROUTE_EXCHANGE_TOPIC = 3,
    ROUTE_EXCHANGE_HEADERS = 4,
} route_exchange_type;

/* What a failed operation answers: reply code (AMQP_REPLY_*) and text. */
typedef struct route_error {
    uint16_t reply_code;
    char text[LIMIT_ROUTE_ERROR_TEXT_BYTES]; /* NUL-terminated, at most 255 bytes */
} route_error;

/* Read-only view of an exchange; slices point into the replica's copies. */
typedef struct route_exchange_info {
    amqp_bytes name;
    route_exchange_type type;
    bool durable;
    bool auto_delete;
    bool internal;
    amqp_table arguments;         /* as declared */
    amqp_bytes alternate_exchange; /* "alternate-exchange" longstr; len 0: none */
} route_exchange_info;

/* Read-only view of a queue directory entry. */
typedef struct route_queue_info {
    amqp_bytes name;
    uint64_t queue_id;
    uint32_t shard; /* owner shard */
    bool durable;
    bool exclusive;
    bool auto_delete;
    uint64_t owner_conn_id; /* meaningful when exclusive */
    amqp_table arguments;
} route_queue_info;

typedef struct route_exchange_spec {
    amqp_bytes name;
    amqp_bytes type; /* "direct", "fanout", "topic", "headers" as on the wire */
    bool passive;
    bool durable;
    bool auto_delete;
    bool internal;
    amqp_table arguments; /* validated table entries */
} route_exchange_spec;

typedef struct route_queue_spec {
    amqp_bytes name;
    uint64_t queue_id;
    uint32_t shard;
    bool durable;
    bool exclusive;
    bool auto_delete;
    uint64_t owner_conn_id;
    amqp_table arguments;
} route_queue_spec;

/* Requester of a bind/unbind that may skip the exclusive-queue owner check
 * (replicas applying a broadcast, recovery). */
#define ROUTE_CONN_ANY UINT64_MAX

typedef struct route_binding_spec {
    amqp_bytes source;        /* exchange name */
    amqp_bytes destination;   /* queue or exchange name */
    bool destination_is_exchange;
    amqp_bytes routing_key;
    amqp_table arguments;     /* validated table entries */
    uint64_t conn_id;         /* requesting connection, or ROUTE_CONN_ANY */
    bool keep_source;         /* remove: never auto-delete the source (taking back a bind) */
} route_binding_spec;

/* Called for every exchange deleted by a cascade (auto-delete) just before it
 * is freed, and for queue/exchange deletions' side effects, so the caller
 * can log it and drop its durable definition. */
typedef void route_exchange_deleted_fn(void *ctx, const route_exchange_info *x);

/* --- vhost ------------------------------------------------------------- */

/* Creates a vhost with the predeclared exchanges: "" (default, direct),
 * amq.direct, amq.fanout, amq.topic, amq.headers, amq.match; all durable. */
route_vhost *route_vhost_create(amqp_bytes vhost_name);
void route_vhost_destroy(route_vhost *vh);
void route_vhost_set_deleted_hook(route_vhost *vh, route_exchange_deleted_fn *fn, void *ctx);
amqp_bytes route_vhost_name(const route_vhost *vh);
uint32_t route_vhost_exchange_count(const route_vhost *vh);
uint32_t route_vhost_queue_count(const route_vhost *vh);
uint32_t route_vhost_binding_count(const route_vhost *vh);

/* --- exchanges --------------------------------------------------------- */

/* exchange.declare with RabbitMQ's checks and equivalence rules. On success
 * *out (may be NULL) is the exchange and *created (may be NULL) tells
 * whether it is new. Errors: 503 unknown type, 403 default exchange or
 * reserved "amq." prefix, 406 inequivalent or bad alternate-exchange type,
 * 404 passive and missing. */
bool route_exchange_declare(route_vhost *vh, const route_exchange_spec *spec, route_exchange **out,
                            bool *created, route_error *err);
/* NULL if missing. "" finds the default exchange. */
route_exchange *route_exchange_find(const route_vhost *vh, amqp_bytes name);
/* Like find, with 404 "no exchange 'x' in vhost '/'" when missing. */
bool route_exchange_lookup(const route_vhost *vh, amqp_bytes name, route_exchange **out,
                           route_error *err);
/* exchange.delete: 403 for "" and "amq.*", 406 "... in use" with if_unused
 * and bindings as a source; a missing exchange is ok (*deleted false). The
 * exchange's bindings as source and destination go with it; sources left
 * without bindings that are auto-delete go too (reported by the hook). */
bool route_exchange_delete(route_vhost *vh, amqp_bytes name, bool if_unused, bool *deleted,
                           route_error *err);
const route_exchange_info *route_exchange_info_of(const route_exchange *x);
uint32_t route_exchange_source_count(const route_exchange *x);      /* bindings as source */
uint32_t route_exchange_destination_count(const route_exchange *x); /* bindings as destination */
/* Parses a wire type name; false if unknown. */
bool route_exchange_type_parse(amqp_bytes name, route_exchange_type *out);
const char *route_exchange_type_name(route_exchange_type type);

/* --- queue directory --------------------------------------------------- */

/* Adds a directory entry; NULL if a queue of that name exists. */
route_queue *route_queue_add(route_vhost *vh, const route_queue_spec *spec);
route_queue *route_queue_find(const route_vhost *vh, amqp_bytes name);
/* Removes the entry and its bindings; auto-delete exchanges left without
 * bindings are deleted (reported by the hook). */
void route_queue_remove(route_vhost *vh, route_queue *q);
const route_queue_info *route_queue_info_of(const route_queue *q);
uint32_t route_queue_binding_count(const route_queue *q);

/* --- bindings ---------------------------------------------------------- */

/* queue.bind / exchange.bind. Idempotent: an identical binding (same source,
 * destination, key and arguments, argument order ignored) is ok with
 * *created false. Errors: 403 default exchange as source or destination,
 * 404 missing source or destination, 405 exclusive queue of another
 * connection, 406 invalid x-match for a headers source. */
bool route_binding_add(route_vhost *vh, const route_binding_spec *spec, bool *created,
                       route_error *err);
/* queue.unbind / exchange.unbind. A missing binding is ok (*removed false);
 * errors as for add. Removing a source's last binding deletes it when it is
 * auto-delete. */
bool route_binding_remove(route_vhost *vh, const route_binding_spec *spec, bool *removed,
                          route_error *err);
bool route_binding_exists(const route_vhost *vh, const route_binding_spec *spec);
/* A binding's arguments in the order bindings are compared in (entries stably sorted by key,
 * RabbitMQ's keysort): malloc'd, the caller frees it; NULL for an empty table. */
uint8_t *route_binding_arguments_canonical(amqp_table arguments, uint32_t *len_out);

/* --- publish ----------------------------------------------------------- */

/* Destination queues of one publish, deduplicated, in the caller's array. */
typedef struct route_result {
    const route_queue_info **queues;
    uint32_t count;
    uint32_t cap;
    bool overflow; /* more queues matched than cap: the set is incomplete */
} route_result;

void route_result_init(route_result *r, const route_queue_info **buf, uint32_t cap);
/* Routes through x (and its exchange-to-exchange bindings and alternate
 * exchanges, each exchange at most once). headers may be empty ({NULL, 0}).
 * Appends to r after clearing it; false on overflow. Never allocates. */
bool route_publish(route_vhost *vh, const route_exchange *x, amqp_bytes routing_key,
                   amqp_table headers, route_result *r);
/* Orders r's queues by owner shard into sorted[0..r->count): the queues of
 * shard s are sorted[offsets[s] .. offsets[s + 1]). offsets has
 * shard_count + 1 entries; every queue's shard must be < shard_count. */
void route_result_group_by_shard(const route_result *r, uint32_t shard_count,
                                 const route_queue_info **sorted, uint32_t *offsets);

#endif
