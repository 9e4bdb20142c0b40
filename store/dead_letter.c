/*
 * Dead-lettering (see store/dead_letter.h). Runs on the queue's owner shard:
 * the message's properties are decoded, its headers rebuilt with an x-death
 * entry for (queue, reason) at the front (its count incremented if the
 * message died here for the same reason before), x-first-death-* set the
 * first time, and the message is routed through the dead-letter exchange on
 * this shard's replica like any publish. A missing exchange drops it, as in
 * RabbitMQ.
 */
#include "store/dead_letter.h"

#include "core/assert.h"
#include "core/log.h"
#include "net/amqp_props.h"
#include "net/amqp_table.h"
#include "route/topo.h"
#include "store/queues.h"

#include <mimalloc.h>
#include <string.h>
#include <time.h>

static void dead_letter_key(char *out, amqp_bytes key)
{
    memcpy(out, key.data, key.len);
    out[key.len] = '\0';
}

static bool dead_letter_entry_matches(amqp_table entry, amqp_bytes queue, const char *reason)
{
    amqp_field q, r;
    return amqp_table_get(entry, amqp_cstr("queue"), &q) && q.type == AMQP_FIELD_LONGSTR &&
           amqp_bytes_equal(q.v.bytes, queue) && amqp_table_get(entry, amqp_cstr("reason"), &r) &&
           r.type == AMQP_FIELD_LONGSTR && amqp_bytes_equal(r.v.bytes, amqp_cstr(reason));
}

/* Writes the x-death array: the entry for (queue, reason) first, then the older ones. */
static void dead_letter_x_death(amqp_table_builder *b, amqp_table old_headers, const dead_letter_target *t,
                                const store_msg *msg, const char *reason, amqp_bytes expiration)
{
    int64_t count = 1;
    amqp_field old;
    bool have_old = amqp_table_get(old_headers, amqp_cstr("x-death"), &old) && old.type == AMQP_FIELD_ARRAY;
    amqp_table_iter it;
    amqp_field v;
    if (have_old) {
        amqp_array_iter_init(&it, old.v.array);
        while (amqp_array_iter_next(&it, &v))
            if (v.type == AMQP_FIELD_TABLE && dead_letter_entry_matches(v.v.table, t->queue, reason)) {
                amqp_field n;
                if (amqp_table_get(v.v.table, amqp_cstr("count"), &n) && n.type == AMQP_FIELD_INT64)
                    count = n.v.i64 + 1;
            }
    }
    amqp_table_open_array(b, "x-death");
    amqp_table_open_table(b, NULL);
    amqp_table_add_int64(b, "count", count);
    amqp_table_add_cstr(b, "reason", reason);
    amqp_table_add_longstr(b, "queue", t->queue);
    amqp_field ts = {.type = AMQP_FIELD_TIMESTAMP, .v.timestamp_s = (uint64_t)time(NULL)};
    amqp_table_add(b, "time", &ts);
    amqp_table_add_longstr(b, "exchange", (amqp_bytes){store_msg_exchange(msg), msg->exchange_bytes});
    if (expiration.data != NULL) amqp_table_add_longstr(b, "original-expiration", expiration);
    amqp_table_open_array(b, "routing-keys");
    amqp_field rk = {.type = AMQP_FIELD_LONGSTR,
                     .v.bytes = {store_msg_routing_key(msg), msg->routing_key_bytes}};
    amqp_table_add(b, NULL, &rk);
    amqp_table_close(b);
    amqp_table_close(b);
    if (have_old) {
        amqp_array_iter_init(&it, old.v.array);
        while (amqp_array_iter_next(&it, &v))
            if (!(v.type == AMQP_FIELD_TABLE && dead_letter_entry_matches(v.v.table, t->queue, reason)))
                amqp_table_add(b, NULL, &v);
    }
    amqp_table_close(b);
}

/* New properties: the old ones with the headers rebuilt. Returns the length, 0 on failure. */
static size_t dead_letter_props(const store_msg *msg, const dead_letter_target *t, const char *reason,
                                uint8_t *table_buf, size_t table_cap, uint8_t *out, size_t cap)
{
    amqp_basic_props props;
    amqp_error err;
    if (!amqp_props_decode(store_msg_props(msg), msg->props_bytes, &props, &err)) return 0;
    amqp_table old = (props.flags & AMQP_PROP_HEADERS) ? props.headers : (amqp_table){NULL, 0};
    amqp_table_builder b;
    amqp_table_builder_init(&b, table_buf, table_cap);
    amqp_table_iter it;
    amqp_bytes key;
    amqp_field v;
    bool first_death = false;
    amqp_table_iter_init(&it, old);
    while (amqp_table_iter_next(&it, &key, &v)) {
        if (amqp_bytes_equal(key, amqp_cstr("x-death"))) continue;
        if (amqp_bytes_equal(key, amqp_cstr("x-first-death-reason"))) first_death = true;
        char k[LIMIT_SHORTSTR_BYTES_MAX + 1];
        dead_letter_key(k, key);
        amqp_table_add(&b, k, &v);
    }
    /* RabbitMQ moves the expiration into the x-death entry, so a message that
     * expired does not expire again in the dead-letter queue. */
    amqp_bytes expiration = {NULL, 0};
    if (props.flags & AMQP_PROP_EXPIRATION) {
        expiration = props.expiration;
        props.flags &= (uint16_t)~AMQP_PROP_EXPIRATION;
    }
    dead_letter_x_death(&b, old, t, msg, reason, expiration);
    if (!first_death) {
        amqp_table_add_cstr(&b, "x-first-death-reason", reason);
        amqp_table_add_longstr(&b, "x-first-death-queue", t->queue);
        amqp_table_add_longstr(&b, "x-first-death-exchange",
                               (amqp_bytes){store_msg_exchange(msg), msg->exchange_bytes});
    }
    if (!amqp_table_builder_finish(&b, &props.headers)) return 0;
    props.flags |= AMQP_PROP_HEADERS;
    ssize_t n = amqp_props_encode(&props, out, cap, &err);
    return n > 0 ? (size_t)n : 0;
}

void dead_letter(shard *s, const dead_letter_target *t, const store_msg *msg, const char *reason)
{
    ASSERT(t->exchange.data != NULL || t->exchange.len == 0);
    route_vhost *vh = topo_vhost(s->topo, t->vhost);
    route_exchange *x = vh ? route_exchange_find(vh, t->exchange) : NULL;
    if (x == NULL) return; /* RabbitMQ drops it when the exchange is missing */
    size_t cap = (size_t)msg->props_bytes + 1024;
    uint8_t *table_buf = mi_heap_malloc(s->heap, cap);
    uint8_t *props = mi_heap_malloc(s->heap, cap);
    size_t props_len = table_buf && props ? dead_letter_props(msg, t, reason, table_buf, cap, props, cap) : 0;
    if (props_len == 0) {
        LOG_WARN("dead-lettering a message from queue '%.*s' failed: properties too large",
                 (int)t->queue.len, (const char *)t->queue.data);
        mi_free(table_buf);
        mi_free(props);
        return;
    }
    amqp_bytes rk = t->has_routing_key ? t->routing_key
                                       : (amqp_bytes){store_msg_routing_key(msg), msg->routing_key_bytes};
    store_msg_params p = {.exchange = t->exchange.data,
                          .exchange_bytes = t->exchange.len,
                          .routing_key = rk.data,
                          .routing_key_bytes = rk.len,
                          .props = props,
                          .props_bytes = props_len,
                          .body = store_msg_body(msg),
                          .body_bytes = msg->body_bytes,
                          .persistent = store_msg_persistent(msg),
                          .priority = msg->priority,
                          .publisher_shard = (uint16_t)s->id,
                          .arrival_ms = s->now_ms};
    store_msg *dead = store_msg_new(s->heap, &p);
    mi_free(table_buf);
    mi_free(props);
    if (dead == NULL) return;
    static _Thread_local const route_queue_info *targets[LIMIT_PUBLISH_QUEUES_MAX];
    route_result r;
    route_result_init(&r, targets, LIMIT_PUBLISH_QUEUES_MAX);
    amqp_basic_props view;
    amqp_error err;
    amqp_table headers = {NULL, 0};
    if (amqp_props_decode(store_msg_props(dead), dead->props_bytes, &view, &err)) headers = view.headers;
    route_publish(vh, x, rk, headers, &r);
    if (r.count > 0) {
        queues_publisher none = {0};
        uint32_t involved = 0;
        bool refused;
        /* Dead-lettering never waits: a full ring drops it, as a full queue would. */
        if (!queues_publish(s, &r, dead, &none, &involved, &refused))
            LOG_WARN("dead-lettered message dropped: mailbox full");
    }
    store_msg_unref(dead);
}
