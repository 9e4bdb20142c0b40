/*
 * Bindings of the routing replica: queue.bind/exchange.bind and their
 * unbinds with RabbitMQ's checks, and the removal of every binding of an
 * exchange or queue being deleted, with auto-delete of sources left
 * without bindings. A binding is owned by the vhost and linked into its
 * source's list, its destination's list, the identity map, and the
 * source type's index (the direct map or a topic trie node).
 * Invariants: at most one binding per (source, destination, key, sorted
 * arguments); src_count and dst_count equal the lengths of the lists.
 */
#include "route/route_internal.h"

#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "core/assert.h"

typedef struct binding_ends {
    route_exchange *source;
    route_exchange *dest_x;
    route_queue *dest_q;
} binding_ends;

static amqp_bytes binding_key(const route_binding *b) { return (amqp_bytes){b->key, b->key_len}; }

static const void *ends_dest(const binding_ends *e)
{
    return e->dest_q != NULL ? (const void *)e->dest_q : (const void *)e->dest_x;
}

static uint64_t binding_identity_hash(const binding_ends *e, amqp_bytes key, const uint8_t *args,
                                      uint32_t args_len)
{
    ASSERT(e->source != NULL && ends_dest(e) != NULL);
    uint64_t seed = route_hash_owned(e->source, key) ^ (uint64_t)(uintptr_t)ends_dest(e);
    return XXH3_64bits_withSeed(args, args_len, seed);
}

/* Source and destination of a spec, with RabbitMQ's binding_action checks
 * in its order: default exchange (403), missing source then destination
 * (404), exclusive queue of another connection (405). */
static bool binding_resolve(const route_vhost *vh, const route_binding_spec *spec, binding_ends *e,
                            route_error *err)
{
    ASSERT(vh != NULL && spec != NULL);
    memset(e, 0, sizeof(*e));
    if (spec->source.len == 0 || (spec->destination_is_exchange && spec->destination.len == 0))
        return route__fail(err, AMQP_REPLY_ACCESS_REFUSED,
                           "operation not permitted on the default exchange");
    e->source = route_exchange_find(vh, spec->source);
    if (spec->destination_is_exchange)
        e->dest_x = route_exchange_find(vh, spec->destination);
    else
        e->dest_q = route_queue_find(vh, spec->destination);
    if (e->source == NULL)
        return route__fail(err, AMQP_REPLY_NOT_FOUND, "no exchange '%.*s' in vhost '%.*s'",
                           ROUTE_BYTES_FMT(spec->source), ROUTE_BYTES_FMT(vh->name));
    if (e->dest_x == NULL && e->dest_q == NULL)
        return route__fail(err, AMQP_REPLY_NOT_FOUND, "no %s '%.*s' in vhost '%.*s'",
                           spec->destination_is_exchange ? "exchange" : "queue",
                           ROUTE_BYTES_FMT(spec->destination), ROUTE_BYTES_FMT(vh->name));
    const route_queue *q = e->dest_q;
    if (q != NULL && q->info.exclusive && spec->conn_id != ROUTE_CONN_ANY &&
        q->info.owner_conn_id != spec->conn_id)
        return route__fail(err, AMQP_REPLY_RESOURCE_LOCKED,
                           "cannot obtain exclusive access to locked queue '%.*s' in vhost '%.*s'. "
                           "It could be originally declared on another connection or the "
                           "exclusive property value does not match that of the original "
                           "declaration.",
                           ROUTE_BYTES_FMT(q->info.name), ROUTE_BYTES_FMT(vh->name));
    return true;
}

static route_binding *binding_find(const route_vhost *vh, const binding_ends *e, amqp_bytes key,
                                   const uint8_t *args, uint32_t args_len)
{
    uint64_t hash = binding_identity_hash(e, key, args, args_len);
    route_map_iter it;
    for (route_binding *b = route_map_first(&vh->bindings, hash, &it); b != NULL;
         b = route_map_next(&it)) {
        if (b->source == e->source && b->dest_x == e->dest_x && b->dest_q == e->dest_q &&
            amqp_bytes_equal(binding_key(b), key) && b->args_len == args_len &&
            (args_len == 0 || memcmp(b->args, args, args_len) == 0))
            return b;
    }
    return NULL;
}

static void binding_link(route_vhost *vh, route_binding *b)
{
    route_exchange *x = b->source;
    b->src_next = x->src_head;
    if (x->src_head != NULL) x->src_head->src_prev = b;
    x->src_head = b;
    x->src_count++;
    route_binding **dst_head = b->dest_q != NULL ? &b->dest_q->dst_head : &b->dest_x->dst_head;
    b->dst_next = *dst_head;
    if (*dst_head != NULL) (*dst_head)->dst_prev = b;
    *dst_head = b;
    if (b->dest_q != NULL)
        b->dest_q->dst_count++;
    else
        b->dest_x->dst_count++;
    route_map_insert(&vh->bindings, b->identity_hash, b);
    switch (x->info.type) {
    case ROUTE_EXCHANGE_DIRECT:
        b->key_hash = route_hash_owned(x, binding_key(b));
        route_map_insert(&vh->direct, b->key_hash, b);
        break;
    case ROUTE_EXCHANGE_TOPIC: route__topic_add(vh, x, b); break;
    case ROUTE_EXCHANGE_HEADERS: route__headers_prepare(b); break;
    case ROUTE_EXCHANGE_FANOUT: break;
    }
}

/* Unlinks b from every list and index and frees it. */
static void binding_free(route_vhost *vh, route_binding *b)
{
    route_exchange *x = b->source;
    ASSERT(x->src_count > 0);
    if (b->src_prev != NULL) b->src_prev->src_next = b->src_next;
    else x->src_head = b->src_next;
    if (b->src_next != NULL) b->src_next->src_prev = b->src_prev;
    x->src_count--;
    route_binding **dst_head = b->dest_q != NULL ? &b->dest_q->dst_head : &b->dest_x->dst_head;
    if (b->dst_prev != NULL) b->dst_prev->dst_next = b->dst_next;
    else *dst_head = b->dst_next;
    if (b->dst_next != NULL) b->dst_next->dst_prev = b->dst_prev;
    if (b->dest_q != NULL) {
        ASSERT(b->dest_q->dst_count > 0);
        b->dest_q->dst_count--;
    } else {
        ASSERT(b->dest_x->dst_count > 0);
        b->dest_x->dst_count--;
    }
    bool removed = route_map_remove(&vh->bindings, b->identity_hash, b);
    ASSERT(removed);
    if (x->info.type == ROUTE_EXCHANGE_DIRECT) {
        removed = route_map_remove(&vh->direct, b->key_hash, b);
        ASSERT(removed);
    } else if (x->info.type == ROUTE_EXCHANGE_TOPIC) {
        route__topic_remove(vh, b);
    }
    free(b->pattern);
    free(b->args);
    free(b);
}

bool route_binding_add(route_vhost *vh, const route_binding_spec *spec, bool *created,
                       route_error *err)
{
    ASSERT(spec->routing_key.len <= LIMIT_SHORTSTR_BYTES_MAX);
    bool created_local = false;
    if (created == NULL) created = &created_local;
    *created = false;
    binding_ends e;
    if (!binding_resolve(vh, spec, &e, err)) return false;
    if (e.source->info.type == ROUTE_EXCHANGE_HEADERS &&
        !route__headers_validate(vh, spec->arguments, err))
        return false;
    uint32_t args_len = 0;
    uint8_t *args = route__args_sorted_copy(spec->arguments, &args_len);
    if (binding_find(vh, &e, spec->routing_key, args, args_len) != NULL) {
        free(args);
        return true;
    }
    route_binding *b = calloc(1, sizeof(*b));
    ASSERT(b != NULL);
    b->source = e.source;
    b->dest_x = e.dest_x;
    b->dest_q = e.dest_q;
    b->key_len = (uint8_t)spec->routing_key.len;
    memcpy(b->key, spec->routing_key.data, spec->routing_key.len);
    b->args = args;
    b->args_len = args_len;
    b->identity_hash = binding_identity_hash(&e, spec->routing_key, args, args_len);
    binding_link(vh, b);
    ASSERT(binding_find(vh, &e, spec->routing_key, args, args_len) == b);
    *created = true;
    return true;
}

bool route_binding_remove(route_vhost *vh, const route_binding_spec *spec, bool *removed,
                          route_error *err)
{
    ASSERT(spec->routing_key.len <= LIMIT_SHORTSTR_BYTES_MAX);
    bool removed_local = false;
    if (removed == NULL) removed = &removed_local;
    *removed = false;
    binding_ends e;
    if (!binding_resolve(vh, spec, &e, err)) return false;
    uint32_t args_len = 0;
    uint8_t *args = route__args_sorted_copy(spec->arguments, &args_len);
    route_binding *b = binding_find(vh, &e, spec->routing_key, args, args_len);
    free(args);
    if (b == NULL) return true; /* RabbitMQ: unbinding a missing binding is ok */
    binding_free(vh, b);
    *removed = true;
    if (!spec->keep_source) route__maybe_auto_delete(vh, e.source);
    return true;
}

bool route_binding_exists(const route_vhost *vh, const route_binding_spec *spec)
{
    binding_ends e;
    route_binding_spec s = *spec;
    s.conn_id = ROUTE_CONN_ANY;
    if (!binding_resolve(vh, &s, &e, NULL)) return false;
    uint32_t args_len = 0;
    uint8_t *args = route__args_sorted_copy(spec->arguments, &args_len);
    bool found = binding_find(vh, &e, spec->routing_key, args, args_len) != NULL;
    free(args);
    return found;
}

uint8_t *route_binding_arguments_canonical(amqp_table arguments, uint32_t *len_out)
{
    ASSERT(len_out != NULL);
    return route__args_sorted_copy(arguments, len_out);
}

void route__bindings_drop_for_exchange(route_vhost *vh, route_exchange *x)
{
    ASSERT(x->dying);
    while (x->src_head != NULL) binding_free(vh, x->src_head);
    /* Take the head each time: a cascade may free other bindings of x. */
    while (x->dst_head != NULL) {
        route_exchange *source = x->dst_head->source;
        binding_free(vh, x->dst_head);
        route__maybe_auto_delete(vh, source);
    }
    ASSERT(x->src_count == 0 && x->dst_count == 0);
}

void route__bindings_drop_for_queue(route_vhost *vh, route_queue *q)
{
    ASSERT(vh != NULL && q != NULL);
    while (q->dst_head != NULL) {
        route_exchange *source = q->dst_head->source;
        binding_free(vh, q->dst_head);
        route__maybe_auto_delete(vh, source);
    }
    ASSERT(q->dst_count == 0);
}
