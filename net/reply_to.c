/*
 * Direct reply-to (amq.rabbitmq.reply-to), as RabbitMQ does it: a channel
 * consumes from the pseudo-queue amq.rabbitmq.reply-to (no-ack only); a
 * request it publishes with reply_to = amq.rabbitmq.reply-to gets that
 * property rewritten to amq.rabbitmq.reply-to.<id>, where <id> names this
 * channel (shard, connection id, channel); a reply published to the default
 * exchange with that routing key goes straight to the channel, on whatever
 * shard it lives, with no queue in between. Replies to a channel that has
 * gone are dropped.
 */
#include "net/reply_to.h"

#include "core/assert.h"
#include "core/log.h"
#include "net/amqp_props.h"
#include "net/session_internal.h"
#include "core/runtime.h"

#include <inttypes.h>
#include <mimalloc.h>
#include <stdio.h>
#include <string.h>

#define REPLY_TO_QUEUE "amq.rabbitmq.reply-to"
#define REPLY_TO_PREFIX "amq.rabbitmq.reply-to."

enum { REPLY_TO_KIND_DELIVER = 24 };

bool reply_to_is_queue(amqp_bytes name)
{
    return amqp_bytes_equal(name, amqp_cstr(REPLY_TO_QUEUE));
}

bool reply_to_consume(conn *c, session_channel *ch, const amqp_basic_consume *a)
{
    if (!a->no_ack) {
        session_close_channel(c, ch, AMQP_REPLY_PRECONDITION_FAILED, AMQP_BASIC_CONSUME,
                              "reply consumer cannot acknowledge");
        return true;
    }
    if (ch->reply_tag_len != 0) {
        session_close_channel(c, ch, AMQP_REPLY_PRECONDITION_FAILED, AMQP_BASIC_CONSUME,
                              "reply consumer already set");
        return true;
    }
    amqp_bytes tag = a->consumer_tag;
    char generated[32];
    if (tag.len == 0) {
        int n = snprintf(generated, sizeof(generated), "amq.ctag-reply-%" PRIx64,
                         session_conn_id(c) ^ ((uint64_t)ch->id << 40));
        tag = (amqp_bytes){(const uint8_t *)generated, (uint32_t)n};
    }
    ch->reply_tag_len = (uint8_t)tag.len;
    memcpy(ch->reply_tag, tag.data, tag.len);
    if (!a->nowait) {
        amqp_method m = {.id = AMQP_BASIC_CONSUME_OK};
        m.a.basic_consume_ok.consumer_tag = tag;
        session_send_method(c, ch->id, &m);
    }
    return true;
}

bool reply_to_cancel(conn *c, session_channel *ch, amqp_bytes tag)
{
    if (ch->reply_tag_len == 0 || tag.len != ch->reply_tag_len ||
        memcmp(tag.data, ch->reply_tag, tag.len) != 0)
        return false;
    ch->reply_tag_len = 0;
    (void)c;
    return true;
}

/* Rewrites reply_to into props_out; returns the new length, 0 when props need no change,
 * -1 after closing the channel (no reply consumer). */
int32_t reply_to_rewrite(conn *c, session_channel *ch, const amqp_content_header *h,
                         uint8_t *props_out, uint32_t cap)
{
    if (!(h->flags & AMQP_PROP_REPLY_TO) || !amqp_bytes_equal(h->reply_to, amqp_cstr(REPLY_TO_QUEUE)))
        return 0;
    if (ch->reply_tag_len == 0) {
        session_close_channel(c, ch, AMQP_REPLY_PRECONDITION_FAILED, AMQP_BASIC_PUBLISH,
                              "fast reply consumer does not exist");
        return -1;
    }
    amqp_basic_props props;
    amqp_error err;
    if (!amqp_props_decode(h->props_raw.data, h->props_raw.len, &props, &err)) return 0;
    char addr[64];
    int n = snprintf(addr, sizeof(addr), REPLY_TO_PREFIX "%016" PRIx64 ".%04x", session_conn_id(c),
                     ch->id);
    props.reply_to = (amqp_bytes){(const uint8_t *)addr, (uint32_t)n};
    ssize_t len = amqp_props_encode(&props, props_out, cap, &err);
    ASSERT(len > 0);
    return (int32_t)len;
}

/* The channel a reply-to address names, or false when it is not one. */
static bool reply_to_parse(amqp_bytes key, uint64_t *conn_id, uint16_t *channel)
{
    size_t prefix = strlen(REPLY_TO_PREFIX);
    if (key.len != prefix + 16 + 1 + 4 || memcmp(key.data, REPLY_TO_PREFIX, prefix) != 0) return false;
    char buf[32];
    memcpy(buf, key.data + prefix, key.len - prefix);
    buf[key.len - prefix] = '\0';
    unsigned ch = 0;
    uint64_t id = 0;
    if (sscanf(buf, "%16" SCNx64 ".%4x", &id, &ch) != 2) return false;
    *conn_id = id;
    *channel = (uint16_t)ch;
    return true;
}

typedef struct {
    uint64_t conn_id;
    uint16_t channel;
} reply_to_rec;

/* Writes the reply to its channel on this shard, if it is still there. */
static void reply_to_deliver_local(shard *s, uint64_t conn_id, uint16_t channel, const store_msg *msg)
{
    uint32_t index = (uint32_t)(conn_id >> 32) & 0xFFFFFF;
    if (index >= LIMIT_CONNS_PER_SHARD) return;
    conn *c = s->conns[index];
    if (c == NULL || c->generation != (uint32_t)conn_id || c->closing) return;
    session_channel *ch = session_channel_get(session_of(c), channel);
    if (ch == NULL || ch->phase != CHANNEL_OPEN || ch->reply_tag_len == 0) return;
    amqp_method m = {.id = AMQP_BASIC_DELIVER};
    m.a.basic_deliver.consumer_tag = (amqp_bytes){(const uint8_t *)ch->reply_tag, ch->reply_tag_len};
    m.a.basic_deliver.delivery_tag = ++ch->delivery_tag_last;
    m.a.basic_deliver.exchange = (amqp_bytes){store_msg_exchange(msg), msg->exchange_bytes};
    m.a.basic_deliver.routing_key = (amqp_bytes){store_msg_routing_key(msg), msg->routing_key_bytes};
    session_send_method(c, ch->id, &m);
    session_send_content(c, ch->id, (amqp_bytes){store_msg_props(msg), msg->props_bytes},
                         store_msg_body(msg), msg->body_bytes);
}

bool reply_to_route(shard *s, amqp_bytes exchange, amqp_bytes routing_key, store_msg *msg)
{
    uint64_t conn_id;
    uint16_t channel;
    if (exchange.len != 0 || !reply_to_parse(routing_key, &conn_id, &channel)) return false;
    uint32_t target = (uint32_t)(conn_id >> 56);
    if (target >= s->rt->shard_count) return true; /* not ours: dropped */
    if (target == s->id) {
        reply_to_deliver_local(s, conn_id, channel, msg);
        return true;
    }
    uint32_t bytes = (uint32_t)sizeof(reply_to_rec) + (uint32_t)sizeof(store_msg) + msg->exchange_bytes +
                     msg->routing_key_bytes + msg->props_bytes + msg->body_bytes;
    uint8_t *buf = mi_heap_malloc(s->heap, bytes);
    if (buf == NULL) return true;
    reply_to_rec r = {conn_id, channel};
    memcpy(buf, &r, sizeof(r));
    memcpy(buf + sizeof(r), msg, bytes - sizeof(r));
    shard_mbox_send_control(s, target, REPLY_TO_KIND_DELIVER, buf, bytes);
    mi_free(buf);
    return true;
}

static void reply_to_on_deliver(shard *s, uint32_t from, const void *payload, uint32_t bytes)
{
    (void)from;
    ASSERT(bytes >= sizeof(reply_to_rec) + sizeof(store_msg));
    reply_to_rec r;
    memcpy(&r, payload, sizeof(r));
    /* The message travels as a whole store_msg image; it is read in place. */
    const store_msg *msg = (const store_msg *)((const uint8_t *)payload + sizeof(r));
    reply_to_deliver_local(s, r.conn_id, r.channel, msg);
}

void reply_to_register(void)
{
    shard_mbox_register(REPLY_TO_KIND_DELIVER, reply_to_on_deliver);
}
