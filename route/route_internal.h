/*
 * Internal layout of the routing replica, shared by the route_*.c files only. Other
 * modules see route/route.h. Double-underscore functions are exported
 * between route/ files and are not part of the API.
 */
#ifndef RINGMQ_ROUTE_INTERNAL_H
#define RINGMQ_ROUTE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "net/amqp_table.h"
#include "net/amqp_types.h"
#include "route/route.h"
#include "route/route_map.h"

typedef struct route_binding route_binding;
typedef struct route_topic_node route_topic_node;

typedef enum route_xmatch {
    ROUTE_XMATCH_ALL = 0,
    ROUTE_XMATCH_ANY,
    ROUTE_XMATCH_ALL_WITH_X,
    ROUTE_XMATCH_ANY_WITH_X,
} route_xmatch;

/* One table entry, key and value pointing into a table's bytes. */
typedef struct route_header_entry {
    amqp_bytes key;
    amqp_field value;
} route_header_entry;

struct route_binding {
    route_exchange *source;
    route_exchange *dest_x; /* exactly one of dest_x, dest_q is set */
    route_queue *dest_q;
    uint64_t identity_hash; /* vh->bindings */
    uint64_t key_hash;      /* vh->direct, for direct sources */
    route_binding *src_prev, *src_next; /* the source's bindings */
    route_binding *dst_prev, *dst_next; /* the destination's bindings */
    route_binding *node_prev, *node_next; /* the topic node's bindings */
    route_topic_node *node;                /* topic sources only */
    route_header_entry *pattern;           /* headers sources: args sorted by key */
    uint32_t pattern_count;
    uint8_t xmatch; /* route_xmatch */
    uint8_t key_len;
    uint8_t key[LIMIT_NAME_BYTES_MAX];
    uint8_t *args; /* arguments, entries stably sorted by key (RabbitMQ's keysort) */
    uint32_t args_len;
};

struct route_exchange {
    route_exchange_info info; /* first: info_of is a cast-free field access */
    uint8_t name_buf[LIMIT_NAME_BYTES_MAX];
    uint8_t *args; /* copy of the declared arguments; info slices point here */
    route_binding *src_head;
    uint32_t src_count;
    route_binding *dst_head;
    uint32_t dst_count;
    route_topic_node *topic_root; /* topic exchanges only */
    uint64_t visit_epoch;         /* last publish that reached this exchange */
    bool is_default;
    bool dying; /* being deleted: cascades must not delete it again */
};

struct route_queue {
    route_queue_info info;
    uint8_t name_buf[LIMIT_NAME_BYTES_MAX];
    uint8_t *args;
    route_binding *dst_head;
    uint32_t dst_count;
    uint64_t visit_epoch; /* last publish that delivered here: dedup */
};

struct route_vhost {
    uint8_t name_buf[LIMIT_NAME_BYTES_MAX];
    amqp_bytes name;
    route_map exchanges;   /* hash(name) -> route_exchange */
    route_map queues;      /* hash(name) -> route_queue */
    route_map bindings;    /* identity hash -> route_binding */
    route_map direct;      /* hash(source, key) -> route_binding, direct sources */
    route_map topic_edges; /* hash(parent node, word) -> route_topic_node */
    route_exchange *default_x;
    route_exchange **worklist; /* publish scratch: one slot per exchange */
    uint32_t worklist_cap;
    route_topic_node **topic_sets; /* publish scratch: two NFA state sets */
    uint32_t topic_set_cap;        /* per set; >= topic_nodes */
    uint32_t topic_nodes;          /* trie nodes in all topic exchanges */
    uint64_t epoch;                /* publishes so far */
    uint64_t topic_stamp;          /* NFA steps so far */
    route_exchange_deleted_fn *deleted_fn;
    void *deleted_ctx;
};

/* Publish state handed to the per-type matchers. */
typedef struct route_ctx {
    route_vhost *vh;
    route_result *out;
    uint64_t epoch;
    uint32_t worklist_count;
    uint32_t emitted; /* destinations the current exchange matched */
    amqp_table headers;
    route_header_entry *headers_sorted; /* lazily filled, NULL until needed */
    uint32_t headers_sorted_count;     /* UINT32_MAX: too many to sort */
    bool headers_ready;
} route_ctx;

/* route_match.c: one matched binding's destination joins the result. */
void route__emit(route_ctx *ctx, const route_binding *b);

/* route_topic.c */
void route__topic_init(route_vhost *vh, route_exchange *x);
void route__topic_fini(route_vhost *vh, route_exchange *x);
void route__topic_add(route_vhost *vh, route_exchange *x, route_binding *b);
void route__topic_remove(route_vhost *vh, route_binding *b);
void route__topic_match(route_ctx *ctx, const route_exchange *x, amqp_bytes routing_key);
/* Splits a key on '.', RabbitMQ's way: "" has no words; returns the count. */
uint32_t route__topic_split(amqp_bytes key, amqp_bytes *words, uint32_t words_max);

/* route_headers.c */
/* A malloc'd copy of t's entries stably sorted by key. */
uint8_t *route__args_sorted_copy(amqp_table t, uint32_t *len_out);
/* 406 text for a bad x-match; true if valid. */
bool route__headers_validate(route_vhost *vh, amqp_table args, route_error *err);
/* Builds b->pattern and b->xmatch from b->args. */
void route__headers_prepare(route_binding *b);
bool route__headers_match(const route_binding *b, route_ctx *ctx);
bool route__field_equal(const amqp_field *a, const amqp_field *b);
int route__bytes_compare(amqp_bytes a, amqp_bytes b);

/* route_error.c: formatted replies */
bool route__fail(route_error *err, uint16_t reply_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* route_binding.c: binding removal used by deletes */
void route__bindings_drop_for_exchange(route_vhost *vh, route_exchange *x);
void route__bindings_drop_for_queue(route_vhost *vh, route_queue *q);

/* route_exchange.c */
route_exchange *route__exchange_new(route_vhost *vh, amqp_bytes name);
void route__exchange_insert(route_vhost *vh, route_exchange *x);
/* Drops x's bindings (cascading auto-deletes), unlinks and frees x. */
void route__exchange_free(route_vhost *vh, route_exchange *x, bool notify);
/* Deletes x if it is auto-delete and has no binding left as a source. */
void route__maybe_auto_delete(route_vhost *vh, route_exchange *x);

#define ROUTE_BYTES_FMT(b) (int)(b).len, (const char *)(b).data

#endif
