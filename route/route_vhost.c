/*
 * The routing replica's vhost: the exchange table (with the predeclared
 * exchanges), the queue directory and the publish scratch space. A vhost
 * owns every exchange, queue entry, binding and trie node reachable from its
 * maps and frees them in route_vhost_destroy. Invariants: the default
 * exchange always exists and is never deleted; the worklist has a slot for
 * every exchange, so a publish never allocates.
 */
#include "route/route_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

bool route__fail(route_error *err, uint16_t reply_code, const char *fmt, ...)
{
    ASSERT(reply_code >= 300);
    ASSERT(fmt != NULL);
    if (err == NULL) return false;
    err->reply_code = reply_code;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->text, sizeof(err->text), fmt, ap);
    va_end(ap);
    ASSERT(n >= 0);
    return false;
}

static const struct {
    const char *name;
    const char *type;
} vhost_predeclared[] = {
    {"", "direct"},
    {"amq.direct", "direct"},
    {"amq.fanout", "fanout"},
    {"amq.topic", "topic"},
    {"amq.headers", "headers"},
    {"amq.match", "headers"},
};

route_vhost *route_vhost_create(amqp_bytes vhost_name)
{
    ASSERT(vhost_name.len <= LIMIT_NAME_BYTES_MAX);
    route_vhost *vh = calloc(1, sizeof(*vh));
    ASSERT(vh != NULL);
    memcpy(vh->name_buf, vhost_name.data, vhost_name.len);
    vh->name = (amqp_bytes){vh->name_buf, vhost_name.len};
    route_map_init(&vh->exchanges);
    route_map_init(&vh->queues);
    route_map_init(&vh->bindings);
    route_map_init(&vh->direct);
    route_map_init(&vh->topic_edges);
    for (size_t i = 0; i < ARRAY_LEN(vhost_predeclared); i++) {
        route_exchange *x = route__exchange_new(vh, amqp_cstr(vhost_predeclared[i].name));
        bool ok = route_exchange_type_parse(amqp_cstr(vhost_predeclared[i].type), &x->info.type);
        ASSERT(ok);
        x->info.durable = true;
        x->is_default = (i == 0);
        route__exchange_insert(vh, x);
    }
    vh->default_x = route_exchange_find(vh, amqp_cstr(""));
    ASSERT(vh->default_x != NULL && vh->default_x->is_default);
    return vh;
}

void route_vhost_destroy(route_vhost *vh)
{
    if (vh == NULL) return;
    /* Queues first: their bindings go, then every exchange without notice. */
    while (vh->queues.count > 0) {
        route_queue *q = NULL;
        for (uint32_t i = 0; q == NULL; i++) q = vh->queues.slots[i].value;
        route_queue_remove(vh, q);
    }
    vh->deleted_fn = NULL;
    while (vh->exchanges.count > 0) {
        route_exchange *x = NULL;
        for (uint32_t i = 0; x == NULL; i++) x = vh->exchanges.slots[i].value;
        route__exchange_free(vh, x, false);
    }
    ASSERT(vh->bindings.count == 0 && vh->topic_nodes == 0);
    route_map_free(&vh->exchanges);
    route_map_free(&vh->queues);
    route_map_free(&vh->bindings);
    route_map_free(&vh->direct);
    route_map_free(&vh->topic_edges);
    free(vh->worklist);
    free(vh->topic_sets);
    free(vh);
}

void route_vhost_set_deleted_hook(route_vhost *vh, route_exchange_deleted_fn *fn, void *ctx)
{
    ASSERT(vh != NULL);
    vh->deleted_fn = fn;
    vh->deleted_ctx = ctx;
}

amqp_bytes route_vhost_name(const route_vhost *vh) { return vh->name; }
uint32_t route_vhost_exchange_count(const route_vhost *vh) { return vh->exchanges.count; }
uint32_t route_vhost_queue_count(const route_vhost *vh) { return vh->queues.count; }
uint32_t route_vhost_binding_count(const route_vhost *vh) { return vh->bindings.count; }

/* --- queue directory --------------------------------------------------- */

route_queue *route_queue_find(const route_vhost *vh, amqp_bytes name)
{
    ASSERT(vh != NULL);
    if (name.len > LIMIT_NAME_BYTES_MAX) return NULL;
    route_map_iter it;
    for (route_queue *q = route_map_first(&vh->queues, route_hash_bytes(name), &it); q != NULL;
         q = route_map_next(&it)) {
        if (amqp_bytes_equal(q->info.name, name)) return q;
    }
    return NULL;
}

route_queue *route_queue_add(route_vhost *vh, const route_queue_spec *spec)
{
    ASSERT(vh != NULL && spec != NULL);
    ASSERT(spec->name.len <= LIMIT_NAME_BYTES_MAX);
    ASSERT(spec->shard < LIMIT_SHARDS_MAX);
    if (route_queue_find(vh, spec->name) != NULL) return NULL;
    route_queue *q = calloc(1, sizeof(*q));
    ASSERT(q != NULL);
    memcpy(q->name_buf, spec->name.data, spec->name.len);
    q->info.name = (amqp_bytes){q->name_buf, spec->name.len};
    q->info.queue_id = spec->queue_id;
    q->info.shard = spec->shard;
    q->info.durable = spec->durable;
    q->info.exclusive = spec->exclusive;
    q->info.auto_delete = spec->auto_delete;
    q->info.owner_conn_id = spec->owner_conn_id;
    if (spec->arguments.len > 0) {
        q->args = malloc(spec->arguments.len);
        ASSERT(q->args != NULL);
        memcpy(q->args, spec->arguments.data, spec->arguments.len);
    }
    q->info.arguments = (amqp_table){q->args, spec->arguments.len};
    route_map_insert(&vh->queues, route_hash_bytes(q->info.name), q);
    return q;
}

void route_queue_remove(route_vhost *vh, route_queue *q)
{
    ASSERT(vh != NULL && q != NULL);
    ASSERT(route_queue_find(vh, q->info.name) == q);
    route__bindings_drop_for_queue(vh, q);
    ASSERT(q->dst_head == NULL && q->dst_count == 0);
    bool removed = route_map_remove(&vh->queues, route_hash_bytes(q->info.name), q);
    ASSERT(removed);
    free(q->args);
    free(q);
}

const route_queue_info *route_queue_info_of(const route_queue *q) { return &q->info; }
uint32_t route_queue_binding_count(const route_queue *q) { return q->dst_count; }
