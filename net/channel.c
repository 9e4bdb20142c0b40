/*
 * Channels of a connection: the table of open channels (open addressing by
 * channel id), channel.open/close/flow, and the dispatch of every method
 * that arrives on an open channel. RabbitMQ counts channel_max against the
 * number of open channels, not their ids. After a channel error the
 * channel is CLOSING: its frames are dropped until close-ok.
 */
#include "net/session_internal.h"

#include "core/assert.h"
#include "core/log.h"
#include "net/amqp_frame.h"
#include "net/amqp_method.h"
#include "net/channel.h"
#include "net/conn.h"
#include "net/consume.h"
#include "store/msg.h"

#include <mimalloc.h>
#include <stdio.h>
#include <string.h>

static uint32_t session_channel_slot(uint16_t id, uint32_t slots)
{
    return (uint32_t)(id * 2654435761u) & (slots - 1);
}

session_channel *session_channel_get(session *s, uint16_t id)
{
    if (id == 0 || s->channel_slots == 0) return NULL;
    for (uint32_t i = session_channel_slot(id, s->channel_slots);; i = (i + 1) & (s->channel_slots - 1)) {
        session_channel *ch = s->channels[i];
        if (ch == NULL || ch->id == id) return ch;
    }
}

/* ---- channels ---- */

static void session_channel_put(session *s, session_channel *ch)
{
    uint32_t i = session_channel_slot(ch->id, s->channel_slots);
    while (s->channels[i] != NULL) i = (i + 1) & (s->channel_slots - 1);
    s->channels[i] = ch;
}

/* Inserts a new channel, growing the table to keep it at most half full. */
static bool session_channel_insert(conn *c, session_channel *ch)
{
    session *s = session_of(c);
    ASSERT(session_channel_get(s, ch->id) == NULL);
    if ((s->channels_open + 1) * 2 > s->channel_slots) {
        uint32_t slots = s->channel_slots ? s->channel_slots * 2 : LIMIT_CHANNEL_SLOTS_INITIAL;
        session_channel **old = s->channels;
        uint32_t old_slots = s->channel_slots;
        s->channels = mi_heap_zalloc(c->shard->heap, slots * sizeof(*s->channels));
        if (s->channels == NULL) {
            s->channels = old;
            return false;
        }
        s->channel_slots = slots;
        for (uint32_t i = 0; i < old_slots; i++)
            if (old[i] != NULL) session_channel_put(s, old[i]);
        mi_free(old);
    }
    session_channel_put(s, ch);
    s->channels_open++;
    return true;
}

/* Removes ch, shifting back the entries of its probe run (no tombstones). */
static void session_channel_remove(session *s, session_channel *ch)
{
    uint32_t mask = s->channel_slots - 1;
    uint32_t i = session_channel_slot(ch->id, s->channel_slots);
    while (s->channels[i] != ch) i = (i + 1) & mask;
    s->channels[i] = NULL;
    for (uint32_t j = (i + 1) & mask; s->channels[j] != NULL; j = (j + 1) & mask) {
        session_channel *moved = s->channels[j];
        s->channels[j] = NULL;
        session_channel_put(s, moved);
    }
    ASSERT(s->channels_open > 0);
    s->channels_open--;
}

static void session_on_channel_open(conn *c, uint16_t id)
{
    session *s = session_of(c);
    ASSERT(session_channel_get(s, id) == NULL);
    if (s->channels_open >= s->channel_max) {
        session_close_connection(c, AMQP_REPLY_NOT_ALLOWED, AMQP_CHANNEL_OPEN,
                                 "number of channels opened (%u) has reached the negotiated "
                                 "channel_max (%u)",
                                 s->channels_open, s->channel_max);
        return;
    }
    session_channel *ch = mi_heap_zalloc(c->shard->heap, sizeof(*ch));
    if (ch == NULL) {
        session_close_connection(c, AMQP_REPLY_RESOURCE_ERROR, AMQP_CHANNEL_OPEN,
                                 "out of memory for channel %u", id);
        return;
    }
    ch->id = id;
    ch->phase = CHANNEL_OPEN;
    if (!session_channel_insert(c, ch)) {
        mi_free(ch);
        session_close_connection(c, AMQP_REPLY_RESOURCE_ERROR, AMQP_CHANNEL_OPEN,
                                 "out of memory for channel %u", id);
        return;
    }
    amqp_method m = {.id = AMQP_CHANNEL_OPEN_OK};
    m.a.channel_open_ok.channel_id = amqp_cstr("");
    session_send_method(c, id, &m);
}

void session_channel_free(conn *c, session_channel *ch)
{
    consume_channel_closed(c, ch);
    mi_free(ch->pub.props);
    if (ch->pub.msg != NULL) store_msg_unref(ch->pub.msg);
    mi_free(ch);
}

static void session_channel_release(conn *c, session_channel *ch)
{
    session_channel_remove(session_of(c), ch);
    session_channel_free(c, ch);
}

/* Methods only a server sends: a client that sends one gets 503. */
static bool session_method_is_server_only(amqp_method_id id)
{
    switch (id) {
    case AMQP_CHANNEL_OPEN_OK:
    case AMQP_ACCESS_REQUEST_OK:
    case AMQP_EXCHANGE_DECLARE_OK:
    case AMQP_EXCHANGE_DELETE_OK:
    case AMQP_EXCHANGE_BIND_OK:
    case AMQP_EXCHANGE_UNBIND_OK:
    case AMQP_QUEUE_DECLARE_OK:
    case AMQP_QUEUE_BIND_OK:
    case AMQP_QUEUE_PURGE_OK:
    case AMQP_QUEUE_DELETE_OK:
    case AMQP_QUEUE_UNBIND_OK:
    case AMQP_BASIC_QOS_OK:
    case AMQP_BASIC_CONSUME_OK:
    case AMQP_BASIC_RETURN:
    case AMQP_BASIC_DELIVER:
    case AMQP_BASIC_GET_OK:
    case AMQP_BASIC_GET_EMPTY:
    case AMQP_BASIC_RECOVER_OK:
    case AMQP_TX_SELECT_OK:
    case AMQP_TX_COMMIT_OK:
    case AMQP_TX_ROLLBACK_OK:
    case AMQP_CONFIRM_SELECT_OK:
        return true;
    default:
        return false;
    }
}

/* A method on an open channel. */
static void session_channel_method(conn *c, session_channel *ch, const amqp_method *m)
{
    amqp_method reply = {.id = 0};
    switch (m->id) {
    case AMQP_CHANNEL_OPEN:
        session_close_connection(c, AMQP_REPLY_CHANNEL_ERROR, m->id, "second 'channel.open' seen");
        return;
    case AMQP_CHANNEL_CLOSE:
        reply.id = AMQP_CHANNEL_CLOSE_OK;
        session_send_method(c, ch->id, &reply);
        session_channel_release(c, ch);
        return;
    case AMQP_CHANNEL_CLOSE_OK:
        return; /* nothing was asked: RabbitMQ ignores it too */
    case AMQP_CHANNEL_FLOW:
        if (!m->a.channel_flow.active) {
            session_close_connection(c, AMQP_REPLY_NOT_IMPLEMENTED, m->id, "active=false");
            return;
        }
        reply.id = AMQP_CHANNEL_FLOW_OK;
        reply.a.channel_flow_ok.active = true;
        session_send_method(c, ch->id, &reply);
        return;
    case AMQP_BASIC_PUBLISH:
        session_on_publish(c, ch, &m->a.basic_publish);
        return;
    case AMQP_ACCESS_REQUEST:
        reply.id = AMQP_ACCESS_REQUEST_OK;
        reply.a.access_request_ok.ticket = 1;
        session_send_method(c, ch->id, &reply);
        return;
    default:
        break;
    }
    if (declare_method(c, ch, m) || consume_method(c, ch, m)) return;
    uint16_t class_id = amqp_method_class_id(m->id);
    if (class_id == 10 || session_method_is_server_only(m->id)) {
        session_close_connection(c, AMQP_REPLY_COMMAND_INVALID, m->id, "%s not allowed here",
                                 amqp_method_name(m->id));
        return;
    }
    session_close_connection(c, AMQP_REPLY_NOT_IMPLEMENTED, m->id, "%s is not implemented",
                             amqp_method_name(m->id));
}

void session_on_channel_frame_method(conn *c, uint16_t id, const amqp_method *m)
{
    session *s = session_of(c);
    session_channel *ch = session_channel_get(s, id);
    if (ch == NULL || ch->phase == CHANNEL_CLOSED) {
        if (m->id == AMQP_CHANNEL_OPEN) {
            session_on_channel_open(c, id);
            return;
        }
        session_close_connection(c, AMQP_REPLY_CHANNEL_ERROR, m->id,
                                 "expected 'channel.open' on channel %u", id);
        return;
    }
    if (ch->phase == CHANNEL_CLOSING) {
        /* After our channel.close only close and close-ok count. */
        if (m->id == AMQP_CHANNEL_CLOSE_OK) {
            session_channel_release(c, ch);
        } else if (m->id == AMQP_CHANNEL_CLOSE) {
            amqp_method reply = {.id = AMQP_CHANNEL_CLOSE_OK};
            session_send_method(c, id, &reply);
        }
        return;
    }
    session_channel_method(c, ch, m);
}

