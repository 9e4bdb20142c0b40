/*
 * basic.publish as it arrives: the method, then a content header, then body
 * frames up to the announced size, with RabbitMQ's errors for frames out of
 * that order (505), oversized messages and a forged user-id (406). The
 * method's names and the properties are copied on arrival (their receive
 * buffers go back to the kernel); the body is gathered once.
 */
#include "net/session_internal.h"

#include "core/assert.h"
#include "core/log.h"
#include "net/amqp_frame.h"
#include "net/amqp_method.h"
#include "net/channel.h"
#include "net/conn.h"
#include "net/reply_to.h"
#include "net/tx.h"
#include "net/consume.h"
#include "route/topo.h"
#include "store/queues.h"

#include <mimalloc.h>
#include <stdio.h>
#include <string.h>

/* ---- publishing: method, content header, body frames ---- */

void session_on_publish(conn *c, session_channel *ch, const amqp_basic_publish *a)
{
    if (a->immediate) {
        session_close_connection(c, AMQP_REPLY_NOT_IMPLEMENTED, AMQP_BASIC_PUBLISH,
                                 "immediate=true");
        return;
    }
    channel_publish *pub = &ch->pub;
    ASSERT(pub->state == PUBLISH_IDLE && pub->msg == NULL);
    pub->mandatory = a->mandatory;
    pub->exchange_len = (uint8_t)a->exchange.len;
    memcpy(pub->exchange, a->exchange.data, a->exchange.len);
    pub->routing_key_len = (uint8_t)a->routing_key.len;
    memcpy(pub->routing_key, a->routing_key.data, a->routing_key.len);
    pub->body_received = 0;
    pub->state = PUBLISH_HEADER;
}

static void session_publish_reset(channel_publish *pub)
{
    if (pub->msg != NULL) store_msg_unref(pub->msg);
    pub->msg = NULL;
    pub->body_received = 0;
    pub->state = PUBLISH_IDLE;
}

/* basic.return: the method, then the message's own properties and body. */
static void publish_send_return(conn *c, session_channel *ch, const store_msg *msg, uint16_t code,
                                const char *text)
{
    amqp_method m = {.id = AMQP_BASIC_RETURN};
    m.a.basic_return.reply_code = code;
    m.a.basic_return.reply_text = amqp_cstr(text);
    m.a.basic_return.exchange = (amqp_bytes){store_msg_exchange(msg), msg->exchange_bytes};
    m.a.basic_return.routing_key = (amqp_bytes){store_msg_routing_key(msg), msg->routing_key_bytes};
    session_send_method(c, ch->id, &m);
    session_send_content(c, ch->id, (amqp_bytes){store_msg_props(msg), msg->props_bytes},
                         store_msg_body(msg), msg->body_bytes);
}

/* Routes msg on this shard's replica and hands it to the queues it reaches
 * (other shards' through the mailbox). False when the channel was closed. */
static bool publish_route(conn *c, session_channel *ch, store_msg *msg, bool mandatory,
                          amqp_table headers)
{
    session *s = session_of(c);
    amqp_bytes exchange = {store_msg_exchange(msg), msg->exchange_bytes};
    amqp_bytes routing_key = {store_msg_routing_key(msg), msg->routing_key_bytes};
    if (reply_to_route(c->shard, exchange, routing_key, msg)) {
        if (ch->confirm_mode) consume_confirm_publish(c, ch, ++ch->publish_seq_last, 0, false);
        return true;
    }
    route_vhost *vh = topo_vhost(c->shard->topo, amqp_cstr(s->vhost));
    route_exchange *x;
    route_error err;
    if (!route_exchange_lookup(vh, exchange, &x, &err)) {
        session_close_channel(c, ch, err.reply_code, AMQP_BASIC_PUBLISH, "%s", err.text);
        return false;
    }
    if (route_exchange_info_of(x)->internal) {
        session_close_channel(c, ch, AMQP_REPLY_ACCESS_REFUSED, AMQP_BASIC_PUBLISH,
                              "cannot publish to internal exchange '%.*s' in vhost '%s'",
                              (int)exchange.len, (const char *)exchange.data, s->vhost);
        return false;
    }
    static _Thread_local const route_queue_info *targets[LIMIT_PUBLISH_QUEUES_MAX];
    route_result r;
    route_result_init(&r, targets, LIMIT_PUBLISH_QUEUES_MAX);
    if (!route_publish(vh, x, routing_key, headers, &r))
        LOG_WARN("publish to exchange '%.*s' reached more than %u queues; the rest are skipped",
                 (int)exchange.len, (const char *)exchange.data, LIMIT_PUBLISH_QUEUES_MAX);
    uint64_t seq = ch->confirm_mode ? ch->publish_seq_last + 1 : 0;
    uint32_t shards_involved = 0;
    bool refused_here = false;
    if (r.count == 0) {
        if (mandatory) publish_send_return(c, ch, msg, AMQP_REPLY_NO_ROUTE, "NO_ROUTE");
    } else {
        msg->publish_seq = seq;
        queues_publisher who = {.conn_id = session_conn_id(c), .channel = ch->id, .confirm_seq = seq};
        if (!queues_publish(c->shard, &r, msg, &who, &shards_involved, &refused_here)) {
            /* A target shard's ring is full: hold this publisher (its socket
             * is not read) and retry when the ring has room. */
            ch->pub.state = PUBLISH_PAUSED;
            session_of(c)->paused_channel = ch->id;
            if (!session_of(c)->input_blocked) session_block_input(c);
            shard_mbox_wait(c->shard, c);
            return false;
        }
    }
    if (seq != 0) {
        ch->publish_seq_last = seq;
        consume_confirm_publish(c, ch, seq, shards_involved, refused_here);
    }
    return true;
}

/* A whole message has arrived on ch: route it now, or keep it for tx.commit. */
/* The message's one allocation, made when its content header arrives: the
 * body frames are copied straight into it (the one copy of the body). */
static store_msg *session_publish_msg_new(conn *c, session_channel *ch)
{
    channel_publish *pub = &ch->pub;
    static _Thread_local uint8_t rewritten[LIMIT_FRAME_BYTES_MAX];
    int32_t rewritten_len = reply_to_rewrite(c, ch, &pub->header, rewritten, sizeof(rewritten));
    if (rewritten_len < 0) return NULL;
    store_msg_params p = {.exchange = pub->exchange,
                          .exchange_bytes = pub->exchange_len,
                          .routing_key = pub->routing_key,
                          .routing_key_bytes = pub->routing_key_len,
                          .props = rewritten_len ? rewritten : pub->header.props_raw.data,
                          .props_bytes = rewritten_len ? (size_t)rewritten_len : pub->header.props_raw.len,
                          .body = NULL,
                          .body_bytes = pub->header.body_size,
                          .persistent = pub->header.delivery_mode == 2,
                          .priority = pub->header.priority,
                          .publisher_shard = (uint16_t)c->shard->id,
                          .has_expiration = pub->has_expiration,
                          .expiration_ms = pub->expiration_ms,
                          .arrival_ms = c->shard->now_ms};
    store_msg *msg = store_msg_new(c->shard->heap, &p);
    if (msg == NULL)
        session_close_connection(c, AMQP_REPLY_RESOURCE_ERROR, AMQP_BASIC_PUBLISH,
                                 "out of memory for a %llu-byte message",
                                 (unsigned long long)pub->header.body_size);
    return msg;
}

/* A whole message has arrived on ch: route it now, or keep it for tx.commit. */
static void session_publish_complete(conn *c, session_channel *ch)
{
    channel_publish *pub = &ch->pub;
    ASSERT(pub->body_received == pub->header.body_size && pub->msg != NULL);
    store_msg *msg = pub->msg;
    if (ch->tx_mode) {
        /* The exchange must exist now (RabbitMQ checks at publish); routing waits for commit. */
        route_vhost *vh = topo_vhost(c->shard->topo, amqp_cstr(session_of(c)->vhost));
        route_exchange *x;
        route_error err;
        amqp_bytes exchange = {(const uint8_t *)pub->exchange, pub->exchange_len};
        if (!route_exchange_lookup(vh, exchange, &x, &err)) {
            session_close_channel(c, ch, err.reply_code, AMQP_BASIC_PUBLISH, "%s", err.text);
        } else {
            tx_add_publish(c, ch, store_msg_ref(msg), pub->mandatory);
        }
        return session_publish_reset(pub);
    }
    if (!publish_route(c, ch, msg, pub->mandatory, pub->header.headers) &&
        pub->state == PUBLISH_PAUSED)
        return; /* kept for session_mbox_retry */
    session_publish_reset(pub);
    /* Fairness: a connection takes in at most a turn's share of publishes,
     * then its input waits for the next turn, so the queues it feeds
     * deliver to their consumers in between (a publisher cannot starve them). */
    session *s = session_of(c);
    if (s->publish_turn != c->shard->turn) {
        s->publish_turn = c->shard->turn;
        s->publishes_in_turn = 0;
    }
    if (++s->publishes_in_turn >= LIMIT_PUBLISHES_PER_TURN && !s->input_blocked) {
        session_block_input(c);
        shard_yield(c->shard, c);
    }
}

void session_yield_end(conn *c)
{
    session *s = session_of(c);
    if (s->input_blocked && !c->closing && !c->mbox_waiting) session_resume_input(c);
}

void session_mbox_retry(conn *c)
{
    session *s = session_of(c);
    session_channel *ch = session_channel_get(s, s->paused_channel);
    if (c->closing || ch == NULL || ch->phase != CHANNEL_OPEN || ch->pub.state != PUBLISH_PAUSED) {
        if (ch != NULL && ch->pub.state == PUBLISH_PAUSED) session_publish_reset(&ch->pub);
        if (s->input_blocked && !c->closing) session_resume_input(c);
        return;
    }
    ch->pub.state = PUBLISH_BODY; /* as it was when the last body frame arrived */
    session_publish_complete(c, ch);
    if (ch->pub.state != PUBLISH_PAUSED && s->input_blocked) session_resume_input(c);
}

/* tx.commit: route the kept publishes in order. */
void publish_commit(conn *c, session_channel *ch, store_msg *msg, bool mandatory)
{
    amqp_basic_props props;
    amqp_error err;
    amqp_table headers = {NULL, 0};
    if (amqp_props_decode(store_msg_props(msg), msg->props_bytes, &props, &err) &&
        (props.flags & AMQP_PROP_HEADERS))
        headers = props.headers;
    if (ch->phase == CHANNEL_OPEN) publish_route(c, ch, msg, mandatory, headers);
}

static void session_on_content_header(conn *c, session_channel *ch, const amqp_frame *f)
{
    session *s = session_of(c);
    channel_publish *pub = &ch->pub;
    if (f->payload_len > pub->props_capacity) {
        mi_free(pub->props);
        pub->props = mi_heap_malloc(c->shard->heap, f->payload_len);
        pub->props_capacity = pub->props ? f->payload_len : 0;
        if (pub->props == NULL) return conn_abort(c);
    }
    memcpy(pub->props, f->payload, f->payload_len);
    amqp_error err;
    if (!amqp_content_header_decode(pub->props, f->payload_len, &pub->header, &err))
        return session_codec_error(c, &err);
    uint64_t size_max = c->shard->cfg->message_bytes_max;
    if (pub->header.body_size > size_max) {
        session_close_channel(c, ch, AMQP_REPLY_PRECONDITION_FAILED, AMQP_BASIC_PUBLISH,
                              "message size %llu is larger than configured max size %llu",
                              (unsigned long long)pub->header.body_size,
                              (unsigned long long)size_max);
        return session_publish_reset(pub);
    }
    if ((pub->header.flags & AMQP_PROP_USER_ID) &&
        !amqp_bytes_equal(pub->header.user_id, amqp_cstr(s->user))) {
        session_close_channel(c, ch, AMQP_REPLY_PRECONDITION_FAILED, AMQP_BASIC_PUBLISH,
                              "user_id property set to '%.*s' but authenticated user was '%s'",
                              (int)pub->header.user_id.len,
                              (const char *)pub->header.user_id.data, s->user);
        return session_publish_reset(pub);
    }
    pub->has_expiration = false;
    if (pub->header.flags & AMQP_PROP_EXPIRATION) {
        /* RabbitMQ: a non-negative integer of milliseconds, as text. */
        amqp_bytes e = pub->header.expiration;
        uint64_t ms = 0;
        bool ok = e.len > 0 && e.len <= 19;
        for (uint32_t i = 0; ok && i < e.len; i++) {
            ok = e.data[i] >= '0' && e.data[i] <= '9';
            ms = ms * 10 + (uint64_t)(e.data[i] - '0');
        }
        if (!ok) {
            session_close_channel(c, ch, AMQP_REPLY_PRECONDITION_FAILED, AMQP_BASIC_PUBLISH,
                                  "invalid expiration '%.*s'", (int)e.len, (const char *)e.data);
            return session_publish_reset(pub);
        }
        pub->has_expiration = true;
        pub->expiration_ms = ms;
    }
    pub->msg = session_publish_msg_new(c, ch);
    if (pub->msg == NULL) return session_publish_reset(pub);
    if (pub->header.body_size == 0) return session_publish_complete(c, ch);
    pub->state = PUBLISH_BODY;
}

static void session_on_content_body(conn *c, session_channel *ch, const amqp_frame *f)
{
    channel_publish *pub = &ch->pub;
    if (pub->body_received + f->payload_len > pub->header.body_size) {
        session_close_connection(c, AMQP_REPLY_UNEXPECTED_FRAME, AMQP_BASIC_PUBLISH,
                                 "content body larger than the %llu bytes announced",
                                 (unsigned long long)pub->header.body_size);
        return;
    }
    memcpy(store_msg_body_mut(pub->msg) + pub->body_received, f->payload, f->payload_len);
    pub->body_received += f->payload_len;
    if (pub->body_received == pub->header.body_size) session_publish_complete(c, ch);
}

/* A frame on an open channel while a publish is being assembled, or a content frame. */
void session_channel_content(conn *c, session_channel *ch, const amqp_frame *f)
{
    publish_state state = ch->pub.state;
    if (f->type == AMQP_FRAME_HEADER && state == PUBLISH_HEADER) {
        session_on_content_header(c, ch, f);
    } else if (f->type == AMQP_FRAME_BODY && state == PUBLISH_BODY) {
        session_on_content_body(c, ch, f);
    } else if (state == PUBLISH_HEADER) {
        session_close_connection(c, AMQP_REPLY_UNEXPECTED_FRAME, AMQP_BASIC_PUBLISH,
                                 "expected content header for class 60, got non content "
                                 "header frame instead");
    } else if (state == PUBLISH_BODY) {
        session_close_connection(c, AMQP_REPLY_UNEXPECTED_FRAME, AMQP_BASIC_PUBLISH,
                                 "expected content body, got non content body frame instead");
    } else {
        session_close_connection(c, AMQP_REPLY_UNEXPECTED_FRAME, 0,
                                 "expected method frame, got non method frame instead");
    }
}

