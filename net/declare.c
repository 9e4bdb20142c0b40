/*
 * exchange.declare/delete/bind/unbind and queue.declare/bind/unbind/delete.
 * Passive declares are answered from this shard's replica. Changes go to
 * the topology sequencer (route/topo.c); the channel waits, and the
 * connection's input is held, until every shard has applied the change:
 * then declare-ok (or the error) goes out and input resumes. A waiting
 * channel is named by a cookie (connection slab index, generation, channel)
 * so an answer for a connection that has gone is dropped.
 */
#include "net/session_internal.h"
#include "net/declare.h"
#include "net/amqp_table.h"

#include "core/assert.h"
#include "core/config.h"
#include "core/log.h"
#include "core/runtime.h"
#include "route/topo.h"
#include "store/queues.h"

#include <mimalloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

enum {
    DECLARE_STAGE_TOPO = 1,  /* waiting for every shard to apply a change */
    DECLARE_STAGE_STATS = 2, /* waiting for a queue owner's counts */
};

static uint64_t declare_cookie(const conn *c, uint16_t channel)
{
    return ((uint64_t)(c->generation & 0xFFFFFF) << 40) | ((uint64_t)c->index << 16) | channel;
}

static conn *declare_cookie_conn(shard *s, uint64_t cookie, uint16_t *channel)
{
    uint32_t index = (uint32_t)(cookie >> 16) & 0xFFFFFF;
    uint32_t generation = (uint32_t)(cookie >> 40) & 0xFFFFFF;
    *channel = (uint16_t)cookie;
    if (index >= LIMIT_CONNS_PER_SHARD) return NULL;
    conn *c = s->conns[index];
    if (c == NULL || (c->generation & 0xFFFFFF) != generation) return NULL;
    return c;
}

static route_vhost *declare_vhost(conn *c)
{
    route_vhost *vh = topo_vhost(c->shard->topo, amqp_cstr(session_of(c)->vhost));
    ASSERT(vh != NULL); /* connection.open checked the vhost */
    return vh;
}

/* A soft error closes the channel, a hard one the connection. */
static void declare_fail(conn *c, session_channel *ch, uint32_t method, uint16_t code,
                         const char *text)
{
    if (amqp_reply_code_is_hard(code))
        session_close_connection(c, code, method, "%s", text);
    else
        session_close_channel(c, ch, code, method, "%s", text);
}

static void declare_wait(conn *c, session_channel *ch, uint32_t method, bool nowait,
                         amqp_bytes name, const topo_request *req)
{
    ASSERT(ch->wait.method == 0 || ch->wait.method == method);
    ch->wait.method = method;
    ch->wait.stage = DECLARE_STAGE_TOPO;
    ch->wait.nowait = nowait;
    ch->wait.name_len = (uint8_t)name.len;
    memmove(ch->wait.name, name.data, name.len);
    topo_submit(c->shard, req, declare_cookie(c, ch->id));
    /* Hold input only while the answer is still out (a lone shard answers at once). */
    if (ch->wait.method != 0 && !session_of(c)->input_blocked) session_block_input(c);
}

static void declare_send_queue_ok(conn *c, session_channel *ch, amqp_bytes name,
                                  uint32_t messages, uint32_t consumers)
{
    amqp_method m = {.id = AMQP_QUEUE_DECLARE_OK};
    m.a.queue_declare_ok.queue = name;
    m.a.queue_declare_ok.message_count = messages;
    m.a.queue_declare_ok.consumer_count = consumers;
    session_send_method(c, ch->id, &m);
}

/* ---- exchanges ---- */

static void declare_exchange(conn *c, session_channel *ch, const amqp_exchange_declare *a)
{
    route_vhost *vh = declare_vhost(c);
    if (a->passive && a->exchange.len == 0) {
        session_close_channel(c, ch, AMQP_REPLY_ACCESS_REFUSED, AMQP_EXCHANGE_DECLARE,
                              "operation not permitted on the default exchange");
        return;
    }
    if (a->passive) {
        route_exchange *x;
        route_error err;
        if (!route_exchange_lookup(vh, a->exchange, &x, &err))
            return declare_fail(c, ch, AMQP_EXCHANGE_DECLARE, err.reply_code, err.text);
        if (!a->nowait) {
            amqp_method m = {.id = AMQP_EXCHANGE_DECLARE_OK};
            session_send_method(c, ch->id, &m);
        }
        return;
    }
    topo_request req = {.op = TOPO_EXCHANGE_DECLARE,
                        .vhost = amqp_cstr(session_of(c)->vhost),
                        .name = a->exchange,
                        .type = a->type,
                        .arguments = a->arguments,
                        .durable = a->durable,
                        .auto_delete = a->auto_delete,
                        .internal = a->internal,
                        .conn_id = session_conn_id(c)};
    declare_wait(c, ch, AMQP_EXCHANGE_DECLARE, a->nowait, a->exchange, &req);
}

static void declare_exchange_delete(conn *c, session_channel *ch, const amqp_exchange_delete *a)
{
    topo_request req = {.op = TOPO_EXCHANGE_DELETE,
                        .vhost = amqp_cstr(session_of(c)->vhost),
                        .name = a->exchange,
                        .if_unused = a->if_unused,
                        .conn_id = session_conn_id(c)};
    declare_wait(c, ch, AMQP_EXCHANGE_DELETE, a->nowait, a->exchange, &req);
}

static void declare_bind(conn *c, session_channel *ch, uint32_t method, amqp_bytes source,
                         amqp_bytes destination, bool to_exchange, amqp_bytes key,
                         amqp_table arguments, bool nowait)
{
    bool bind = method == AMQP_EXCHANGE_BIND || method == AMQP_QUEUE_BIND;
    topo_request req = {.op = bind ? TOPO_BIND : TOPO_UNBIND,
                        .vhost = amqp_cstr(session_of(c)->vhost),
                        .name = source,
                        .destination = destination,
                        .destination_is_exchange = to_exchange,
                        .routing_key = key,
                        .arguments = arguments,
                        .conn_id = session_conn_id(c)};
    declare_wait(c, ch, method, nowait, destination, &req);
}

/* ---- queues ---- */

static void declare_queue_passive(conn *c, session_channel *ch, const amqp_queue_declare *a)
{
    const route_queue_info *qi = session_queue_lookup(c, ch, AMQP_QUEUE_DECLARE, a->queue);
    if (qi == NULL) return;
    ch->wait.method = AMQP_QUEUE_DECLARE;
    ch->wait.stage = DECLARE_STAGE_STATS;
    ch->wait.nowait = a->nowait;
    ch->wait.name_len = (uint8_t)a->queue.len;
    memcpy(ch->wait.name, a->queue.data, a->queue.len);
    queues_stats_request(c->shard, qi->shard, qi->queue_id, declare_cookie(c, ch->id));
    if (ch->wait.method != 0 && !session_of(c)->input_blocked) session_block_input(c);
}


/* RabbitMQ's checks of queue arguments at declare: 406 "invalid arg". */
static bool declare_check_queue_args(conn *c, session_channel *ch, amqp_bytes name, amqp_table args)
{
    static const struct {
        const char *key;
        int64_t min, max; /* integer range; min > max: a string argument */
    } rules[] = {
        {"x-message-ttl", 0, INT64_MAX}, {"x-expires", 1, INT64_MAX},
        {"x-max-length", 0, INT64_MAX},  {"x-max-length-bytes", 0, INT64_MAX},
        {"x-max-priority", 0, 255},      {"x-dead-letter-exchange", 1, 0},
        {"x-dead-letter-routing-key", 1, 0}, {"x-overflow", 1, 0},
        {"x-queue-mode", 1, 0},
    };
    const char *why = NULL;
    char detail[128];
    size_t i;
    amqp_field v;
    for (i = 0; i < ARRAY_LEN(rules) && why == NULL; i++) {
        if (!amqp_table_get(args, amqp_cstr(rules[i].key), &v)) continue;
        int64_t n;
        bool wants_string = rules[i].min > rules[i].max;
        if (wants_string && v.type != AMQP_FIELD_LONGSTR) {
            session_close_channel(c, ch, AMQP_REPLY_PRECONDITION_FAILED, AMQP_QUEUE_DECLARE,
                                  "invalid type '%s' for arg '%s' for queue '%.*s' in vhost '%s'",
                                  amqp_field_type_name(v.type), rules[i].key, (int)name.len,
                                  (const char *)name.data, session_of(c)->vhost);
            return false;
        }
        if (!wants_string && !amqp_field_int64(&v, &n)) {
            snprintf(detail, sizeof(detail), "{unacceptable_type,%s}", amqp_field_type_name(v.type));
            why = detail;
            continue;
        }
        if (wants_string) continue;
        if (n < rules[i].min || n > rules[i].max) {
            snprintf(detail, sizeof(detail), "value %lld out of range", (long long)n);
            why = detail;
        }
    }
    if (why == NULL && amqp_table_get(args, amqp_cstr("x-overflow"), &v) &&
        !amqp_bytes_equal(v.v.bytes, amqp_cstr("drop-head")) &&
        !amqp_bytes_equal(v.v.bytes, amqp_cstr("reject-publish")) &&
        !amqp_bytes_equal(v.v.bytes, amqp_cstr("reject-publish-dlx")))
        why = "invalid value", i = 8;
    if (why == NULL && amqp_table_get(args, amqp_cstr("x-queue-mode"), &v) &&
        !amqp_bytes_equal(v.v.bytes, amqp_cstr("default")) &&
        !amqp_bytes_equal(v.v.bytes, amqp_cstr("lazy")))
        why = "invalid value", i = 9;
    if (why == NULL && amqp_table_get(args, amqp_cstr("x-dead-letter-routing-key"), &v) &&
        !amqp_table_get(args, amqp_cstr("x-dead-letter-exchange"), &v))
        why = "routing key without a dead-letter exchange", i = 7;
    if (why == NULL) return true;
    session_close_channel(c, ch, AMQP_REPLY_PRECONDITION_FAILED, AMQP_QUEUE_DECLARE,
                          "invalid arg '%s' for queue '%.*s' in vhost '%s': %s", rules[i - 1].key,
                          (int)name.len, (const char *)name.data, session_of(c)->vhost, why);
    return false;
}

static void declare_queue(conn *c, session_channel *ch, const amqp_queue_declare *a)
{
    if (!a->passive && !declare_check_queue_args(c, ch, a->queue, a->arguments)) return;
    if (a->passive && a->queue.len > 0) return declare_queue_passive(c, ch, a);
    char name[LIMIT_SHORTSTR_BYTES_MAX];
    amqp_bytes qname = a->queue;
    uint32_t owner;
    bool server_named = qname.len == 0;
    if (server_named) {
        /* "amq.gen-" and 22 characters of randomness, as RabbitMQ names them. */
        static const char alphabet[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        uint8_t rnd[22];
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
            for (size_t i = 0; i < sizeof(rnd); i++) rnd[i] = (uint8_t)(c->shard->now_ms >> (i % 8) ^ i * 31u);
        memcpy(name, "amq.gen-", 8);
        for (size_t i = 0; i < sizeof(rnd); i++) name[8 + i] = alphabet[rnd[i] & 63];
        qname = (amqp_bytes){(const uint8_t *)name, 8 + sizeof(rnd)};
        owner = c->shard->id; /* server-named queues live with their declarer */
    } else {
        owner = topo_queue_placement(c->shard->cfg, c->shard->rt->shard_count,
                                     amqp_cstr(session_of(c)->vhost), qname);
    }
    topo_request req = {.op = TOPO_QUEUE_DECLARE,
                        .vhost = amqp_cstr(session_of(c)->vhost),
                        .name = qname,
                        .arguments = a->arguments,
                        .durable = a->durable,
                        .auto_delete = a->auto_delete,
                        .exclusive = a->exclusive,
                        .server_named = server_named,
                        .conn_id = session_conn_id(c),
                        .queue_shard = owner};
    ch->wait.exclusive = a->exclusive; /* before: a lone shard answers inside declare_wait */
    declare_wait(c, ch, AMQP_QUEUE_DECLARE, a->nowait, qname, &req);
}

/* queue.delete asks the owner for the counts first (if-unused, if-empty and
 * delete-ok's message count), then removes the queue everywhere. */
static void declare_queue_delete(conn *c, session_channel *ch, const amqp_queue_delete *a)
{
    route_queue *q = route_queue_find(declare_vhost(c), a->queue);
    if (q == NULL) { /* RabbitMQ: deleting a missing queue is fine */
        if (!a->nowait) {
            amqp_method m = {.id = AMQP_QUEUE_DELETE_OK};
            session_send_method(c, ch->id, &m);
        }
        return;
    }
    const route_queue_info *qi = route_queue_info_of(q);
    ch->wait.method = AMQP_QUEUE_DELETE;
    ch->wait.stage = DECLARE_STAGE_STATS;
    ch->wait.nowait = a->nowait;
    ch->wait.if_unused = a->if_unused;
    ch->wait.if_empty = a->if_empty;
    ch->wait.name_len = (uint8_t)a->queue.len;
    memcpy(ch->wait.name, a->queue.data, a->queue.len);
    queues_stats_request(c->shard, qi->shard, qi->queue_id, declare_cookie(c, ch->id));
    if (ch->wait.method != 0 && !session_of(c)->input_blocked) session_block_input(c);
}

bool declare_method(conn *c, session_channel *ch, const amqp_method *m)
{
    switch (m->id) {
    case AMQP_EXCHANGE_DECLARE:
        declare_exchange(c, ch, &m->a.exchange_declare);
        return true;
    case AMQP_EXCHANGE_DELETE:
        declare_exchange_delete(c, ch, &m->a.exchange_delete);
        return true;
    case AMQP_EXCHANGE_BIND: {
        const amqp_exchange_bind *a = &m->a.exchange_bind;
        declare_bind(c, ch, m->id, a->source, a->destination, true, a->routing_key, a->arguments,
                     a->nowait);
        return true;
    }
    case AMQP_EXCHANGE_UNBIND: {
        const amqp_exchange_unbind *a = &m->a.exchange_unbind;
        declare_bind(c, ch, m->id, a->source, a->destination, true, a->routing_key, a->arguments,
                     a->nowait);
        return true;
    }
    case AMQP_QUEUE_DECLARE:
        declare_queue(c, ch, &m->a.queue_declare);
        return true;
    case AMQP_QUEUE_BIND: {
        const amqp_queue_bind *a = &m->a.queue_bind;
        declare_bind(c, ch, m->id, a->exchange, a->queue, false, a->routing_key, a->arguments,
                     a->nowait);
        return true;
    }
    case AMQP_QUEUE_UNBIND: {
        const amqp_queue_unbind *a = &m->a.queue_unbind;
        declare_bind(c, ch, m->id, a->exchange, a->queue, false, a->routing_key, a->arguments,
                     false);
        return true;
    }
    case AMQP_QUEUE_DELETE:
        declare_queue_delete(c, ch, &m->a.queue_delete);
        return true;
    default:
        return false;
    }
}

/* ---- exclusive queues: they go with their connection ---- */

static void declare_remember_exclusive(conn *c, amqp_bytes name)
{
    session *s = session_of(c);
    if (s->exclusive_count == s->exclusive_capacity) {
        uint32_t capacity = s->exclusive_capacity ? s->exclusive_capacity * 2 : 4;
        char **names = mi_heap_realloc(c->shard->heap, s->exclusive_names, capacity * sizeof(*names));
        if (names == NULL) return conn_abort(c);
        s->exclusive_names = names;
        s->exclusive_capacity = capacity;
    }
    char *copy = mi_heap_malloc(c->shard->heap, name.len + 1);
    if (copy == NULL) return conn_abort(c);
    memcpy(copy, name.data, name.len);
    copy[name.len] = '\0';
    s->exclusive_names[s->exclusive_count++] = copy;
}

void declare_connection_gone(conn *c)
{
    session *s = session_of(c);
    for (uint32_t i = 0; i < s->exclusive_count; i++) {
        if (c->shard->tearing_down) { /* the process ends: transient queues go with it */
            mi_free(s->exclusive_names[i]);
            continue;
        }
        topo_request req = {.op = TOPO_QUEUE_DELETE,
                            .vhost = amqp_cstr(s->vhost),
                            .name = amqp_cstr(s->exclusive_names[i]),
                            .conn_id = session_conn_id(c)};
        topo_submit_quiet(c->shard, &req);
        mi_free(s->exclusive_names[i]);
    }
    mi_free(s->exclusive_names);
    s->exclusive_names = NULL;
    s->exclusive_count = s->exclusive_capacity = 0;
}

/* ---- answers ---- */

static void declare_finish(conn *c, session_channel *ch)
{
    ch->wait.method = 0;
    ch->wait.stage = 0;
    ch->wait.exclusive = false;
    if (session_of(c)->input_blocked) session_resume_input(c);
}

static void declare_reply_ok(conn *c, session_channel *ch, const topo_reply *reply)
{
    amqp_method m = {.id = 0};
    amqp_bytes name = {(const uint8_t *)ch->wait.name, ch->wait.name_len};
    switch (ch->wait.method) {
    case AMQP_EXCHANGE_DECLARE: m.id = AMQP_EXCHANGE_DECLARE_OK; break;
    case AMQP_EXCHANGE_DELETE: m.id = AMQP_EXCHANGE_DELETE_OK; break;
    case AMQP_EXCHANGE_BIND: m.id = AMQP_EXCHANGE_BIND_OK; break;
    case AMQP_EXCHANGE_UNBIND: m.id = AMQP_EXCHANGE_UNBIND_OK; break;
    case AMQP_QUEUE_BIND: m.id = AMQP_QUEUE_BIND_OK; break;
    case AMQP_QUEUE_UNBIND: m.id = AMQP_QUEUE_UNBIND_OK; break;
    case AMQP_QUEUE_DELETE:
        m.id = AMQP_QUEUE_DELETE_OK;
        m.a.queue_delete_ok.message_count = ch->wait.message_count;
        break;
    case AMQP_QUEUE_DECLARE:
        if (!reply->created) {
            /* An existing queue: declare-ok reports its counts, which its owner knows. */
            ch->wait.stage = DECLARE_STAGE_STATS;
            queues_stats_request(c->shard, reply->queue_shard, reply->queue_id,
                                 declare_cookie(c, ch->id));
            return;
        }
        if (ch->wait.exclusive) declare_remember_exclusive(c, name);
        if (!ch->wait.nowait) declare_send_queue_ok(c, ch, name, 0, 0);
        declare_finish(c, ch);
        return;
    default:
        UNREACHABLE();
    }
    if (!ch->wait.nowait) session_send_method(c, ch->id, &m);
    declare_finish(c, ch);
}

static session_channel *declare_waiting_channel(shard *s, uint64_t cookie, conn **out)
{
    uint16_t channel;
    conn *c = declare_cookie_conn(s, cookie, &channel);
    *out = c;
    if (c == NULL) return NULL; /* the connection is gone */
    session_channel *ch = session_channel_get(session_of(c), channel);
    if (ch == NULL || ch->wait.method == 0) {
        if (session_of(c)->input_blocked) session_resume_input(c);
        return NULL;
    }
    return ch;
}

void declare_topo_done(shard *s, uint64_t cookie, const topo_reply *reply)
{
    conn *c;
    session_channel *ch = declare_waiting_channel(s, cookie, &c);
    if (ch == NULL) return;
    ASSERT(ch->wait.stage == DECLARE_STAGE_TOPO);
    if (ch->phase != CHANNEL_OPEN) return declare_finish(c, ch);
    if (reply->reply_code != AMQP_REPLY_SUCCESS) {
        declare_fail(c, ch, ch->wait.method, reply->reply_code, reply->text);
        return declare_finish(c, ch);
    }
    declare_reply_ok(c, ch, reply);
}

void declare_stats_done(shard *s, uint64_t cookie, bool found, uint32_t messages,
                        uint32_t consumers)
{
    conn *c;
    session_channel *ch = declare_waiting_channel(s, cookie, &c);
    if (ch == NULL) return;
    ASSERT(ch->wait.stage == DECLARE_STAGE_STATS);
    amqp_bytes name = {(const uint8_t *)ch->wait.name, ch->wait.name_len};
    const char *vhost = session_of(c)->vhost;
    if (ch->phase != CHANNEL_OPEN) return declare_finish(c, ch);
    if (ch->wait.method == AMQP_QUEUE_DECLARE) {
        if (!found)
            session_close_channel(c, ch, AMQP_REPLY_NOT_FOUND, AMQP_QUEUE_DECLARE,
                                  "no queue '%.*s' in vhost '%s'", (int)name.len,
                                  (const char *)name.data, vhost);
        else if (!ch->wait.nowait)
            declare_send_queue_ok(c, ch, name, messages, consumers);
        return declare_finish(c, ch);
    }
    ASSERT(ch->wait.method == AMQP_QUEUE_DELETE);
    if (found && ch->wait.if_unused && consumers > 0) {
        session_close_channel(c, ch, AMQP_REPLY_PRECONDITION_FAILED, AMQP_QUEUE_DELETE,
                              "queue '%.*s' in vhost '%s' in use", (int)name.len,
                              (const char *)name.data, vhost);
        return declare_finish(c, ch);
    }
    if (found && ch->wait.if_empty && messages > 0) {
        session_close_channel(c, ch, AMQP_REPLY_PRECONDITION_FAILED, AMQP_QUEUE_DELETE,
                              "queue '%.*s' in vhost '%s' is not empty", (int)name.len,
                              (const char *)name.data, vhost);
        return declare_finish(c, ch);
    }
    ch->wait.message_count = found ? messages : 0;
    topo_request req = {.op = TOPO_QUEUE_DELETE,
                        .vhost = amqp_cstr(vhost),
                        .name = name,
                        .conn_id = session_conn_id(c)};
    declare_wait(c, ch, AMQP_QUEUE_DELETE, ch->wait.nowait, name, &req);
}
