/*
 * The consuming side of a channel: basic.qos, basic.consume/cancel,
 * deliveries from queues (on this shard or through the mailbox) written as
 * basic.deliver, delivery tags and the unacked ring, basic.ack/nack/reject/
 * recover settling deliveries with their queues (which also gives credit
 * back for prefetch), basic.get, queue.purge, and publisher confirms.
 * Answers from queues name the connection by its id; one that arrives for a
 * connection or channel that has gone is settled back (requeued) or dropped.
 */
#include "net/session_internal.h"

#include "core/assert.h"
#include "core/log.h"
#include "core/runtime.h"
#include "net/amqp_table.h"
#include "net/consume.h"
#include "net/reply_to.h"
#include "net/tx.h"
#include "route/topo.h"
#include "store/queues.h"

#include <mimalloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

/* ---- finding the connection and channel an answer is for ---- */

static conn *consume_conn(shard *s, uint64_t conn_id)
{
    uint32_t index = (uint32_t)(conn_id >> 32) & 0xFFFFFF;
    if ((conn_id >> 56) != s->id || index >= LIMIT_CONNS_PER_SHARD) return NULL;
    conn *c = s->conns[index];
    if (c == NULL || c->generation != (uint32_t)conn_id || c->closing) return NULL;
    return c;
}

static session_channel *consume_channel(conn *c, uint16_t channel)
{
    if (c == NULL) return NULL;
    session_channel *ch = session_channel_get(session_of(c), channel);
    return ch != NULL && ch->phase == CHANNEL_OPEN ? ch : NULL;
}

static uint64_t consume_cookie(const conn *c, uint16_t channel)
{
    return ((uint64_t)(c->generation & 0xFFFFFF) << 40) | ((uint64_t)c->index << 16) | channel;
}

static session_channel *consume_cookie_channel(shard *s, uint64_t cookie, conn **out)
{
    uint32_t index = (uint32_t)(cookie >> 16) & 0xFFFFFF;
    uint32_t generation = (uint32_t)(cookie >> 40) & 0xFFFFFF;
    *out = NULL;
    if (index >= LIMIT_CONNS_PER_SHARD) return NULL;
    conn *c = s->conns[index];
    if (c == NULL || (c->generation & 0xFFFFFF) != generation) return NULL;
    *out = c;
    return session_channel_get(session_of(c), (uint16_t)cookie);
}

static void consume_wait(conn *c, session_channel *ch, uint32_t method, bool nowait)
{
    (void)c;
    ch->wait.method = method;
    ch->wait.nowait = nowait;
}

/* After the request went out: hold input only while the answer is still out. */
static void consume_hold(conn *c, session_channel *ch)
{
    if (ch->wait.method != 0 && !session_of(c)->input_blocked) session_block_input(c);
}

static void consume_finish(conn *c, session_channel *ch)
{
    if (ch != NULL) ch->wait.method = 0;
    if (c != NULL && session_of(c)->input_blocked) session_resume_input(c);
}

static store_owner consume_owner(const conn *c, uint16_t channel)
{
    return (store_owner){.shard_id = c->shard->id, .conn_id = session_conn_id(c), .channel_id = channel};
}

static route_vhost *consume_vhost(conn *c)
{
    return topo_vhost(c->shard->topo, amqp_cstr(session_of(c)->vhost));
}

/* The queue a method names, with RabbitMQ's 404 and 405 on the channel. */
const route_queue_info *session_queue_lookup(conn *c, session_channel *ch, uint32_t method,
                                             amqp_bytes name)
{
    route_queue *q = route_queue_find(consume_vhost(c), name);
    if (q == NULL) {
        session_close_channel(c, ch, AMQP_REPLY_NOT_FOUND, method, "no queue '%.*s' in vhost '%s'",
                              (int)name.len, (const char *)name.data, session_of(c)->vhost);
        return NULL;
    }
    const route_queue_info *qi = route_queue_info_of(q);
    if (qi->exclusive && qi->owner_conn_id != session_conn_id(c)) {
        session_close_channel(c, ch, AMQP_REPLY_RESOURCE_LOCKED, method,
                              "cannot obtain exclusive access to locked queue '%.*s' in vhost "
                              "'%s'. It could be originally declared on another connection or "
                              "the exclusive property value does not match that of the original "
                              "declaration.",
                              (int)name.len, (const char *)name.data, session_of(c)->vhost);
        return NULL;
    }
    return qi;
}

/* ---- the unacked ring ---- */

static channel_unacked *consume_unacked_at(session_channel *ch, uint32_t i)
{
    return &ch->unacked[(ch->unacked_head + i) & (ch->unacked_capacity - 1)];
}

static bool consume_unacked_push(conn *c, session_channel *ch, const channel_unacked *u)
{
    if (ch->unacked_count == ch->unacked_capacity) {
        uint32_t capacity = ch->unacked_capacity ? ch->unacked_capacity * 2 : 64;
        channel_unacked *ring = mi_heap_malloc(c->shard->heap, capacity * sizeof(*ring));
        if (ring == NULL) return false;
        for (uint32_t i = 0; i < ch->unacked_count; i++) ring[i] = *consume_unacked_at(ch, i);
        mi_free(ch->unacked);
        ch->unacked = ring;
        ch->unacked_head = 0;
        ch->unacked_capacity = capacity;
    }
    *consume_unacked_at(ch, ch->unacked_count++) = *u;
    return true;
}

/* Index of the entry with this tag, by binary search (tags ascend). */
static int64_t consume_unacked_find(session_channel *ch, uint64_t tag)
{
    uint32_t lo = 0, hi = ch->unacked_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint64_t t = consume_unacked_at(ch, mid)->tag;
        if (t == tag) return mid;
        if (t < tag) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

static void consume_unacked_trim(session_channel *ch)
{
    while (ch->unacked_count > 0 && consume_unacked_at(ch, 0)->settled) {
        ch->unacked_head = (ch->unacked_head + 1) & (ch->unacked_capacity - 1);
        ch->unacked_count--;
    }
}

static void consume_settle_one(conn *c, session_channel *ch, channel_unacked *u, queues_settle how)
{
    ASSERT(!u->settled);
    u->settled = true;
    uint64_t credit_to = u->consumer_id;
    if (ch->global_prefetch != 0 && credit_to != 0) {
        /* The credit comes back to the channel, which hands it out again. */
        credit_to = 0;
        ch->global_credit++;
    }
    queues_settle_delivery(c->shard, u->queue_shard, u->queue_id, credit_to, u->delivery_id, how);
}

/* Hands the channel's free credit to its consumers, one at a time, round robin. */
static void consume_global_grant(conn *c, session_channel *ch)
{
    if (ch->global_prefetch == 0) return;
    uint32_t eligible = 0;
    for (channel_consumer *k = ch->consumers; k != NULL; k = k->next)
        if (k->consumer_id != 0 && !k->no_ack) eligible++;
    while (ch->global_credit > 0 && eligible > 0) {
        uint32_t pick = ch->grant_next++ % eligible, i = 0;
        for (channel_consumer *k = ch->consumers; k != NULL; k = k->next) {
            if (k->consumer_id == 0 || k->no_ack) continue;
            if (i++ != pick) continue;
            queues_settle_delivery(c->shard, k->queue_shard, k->queue_id, k->consumer_id, 0,
                                   QUEUES_CREDIT_ONLY);
            ch->global_credit--;
            break;
        }
    }
}

/* basic.ack / nack / reject: tag 0 with multiple means every unacked delivery. */
void consume_settle_now(conn *c, session_channel *ch, uint32_t method, uint64_t tag,
                           bool multiple, queues_settle how)
{
    if (multiple) {
        bool any = false;
        for (uint32_t i = 0; i < ch->unacked_count; i++) {
            channel_unacked *u = consume_unacked_at(ch, i);
            if (tag != 0 && u->tag > tag) break;
            if (!u->settled) {
                consume_settle_one(c, ch, u, how);
                any = true;
            }
        }
        consume_unacked_trim(ch);
        consume_global_grant(c, ch);
        if (any || tag == 0) return;
    } else {
        int64_t i = consume_unacked_find(ch, tag);
        if (i >= 0 && !consume_unacked_at(ch, (uint32_t)i)->settled) {
            consume_settle_one(c, ch, consume_unacked_at(ch, (uint32_t)i), how);
            consume_unacked_trim(ch);
            consume_global_grant(c, ch);
            return;
        }
    }
    session_close_channel(c, ch, AMQP_REPLY_PRECONDITION_FAILED, method, "unknown delivery tag %llu",
                          (unsigned long long)tag);
}

static void consume_settle(conn *c, session_channel *ch, uint32_t method, uint64_t tag,
                           bool multiple, queues_settle how)
{
    if (ch->tx_mode) return tx_add_settle(c, ch, method, tag, multiple, how);
    consume_settle_now(c, ch, method, tag, multiple, how);
}

/* ---- basic.consume / basic.cancel ---- */

static channel_consumer *consume_find_tag(session_channel *ch, amqp_bytes tag)
{
    for (channel_consumer *k = ch->consumers; k != NULL; k = k->next)
        if (k->tag_len == tag.len && memcmp(k->tag, tag.data, tag.len) == 0) return k;
    return NULL;
}

static void consume_remove(session_channel *ch, channel_consumer *k)
{
    channel_consumer **pp = &ch->consumers;
    while (*pp != k) pp = &(*pp)->next;
    *pp = k->next;
    mi_free(k);
}

static void consume_basic_consume(conn *c, session_channel *ch, const amqp_basic_consume *a)
{
    if (reply_to_is_queue(a->queue)) {
        reply_to_consume(c, ch, a);
        return;
    }
    const route_queue_info *qi = session_queue_lookup(c, ch, AMQP_BASIC_CONSUME, a->queue);
    if (qi == NULL) return;
    amqp_bytes tag = a->consumer_tag;
    char generated[32];
    if (tag.len == 0) {
        /* "amq.ctag-" and 22 random characters, as RabbitMQ generates them. */
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        uint8_t rnd[22] = {0};
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) rnd[0] ^= (uint8_t)c->index;
        memcpy(generated, "amq.ctag-", 9);
        for (size_t i = 0; i < sizeof(rnd); i++) generated[9 + i] = alphabet[rnd[i] & 63];
        tag = (amqp_bytes){(const uint8_t *)generated, 9 + sizeof(rnd)};
    } else if (consume_find_tag(ch, tag) != NULL) {
        session_close_connection(c, AMQP_REPLY_NOT_ALLOWED, AMQP_BASIC_CONSUME,
                                 "attempt to reuse consumer tag '%.*s'", (int)tag.len,
                                 (const char *)tag.data);
        return;
    }
    int32_t priority = 0;
    amqp_field v;
    if (amqp_table_get(a->arguments, amqp_cstr("x-priority"), &v)) {
        int64_t n;
        if (!amqp_field_int64(&v, &n) || n < INT32_MIN || n > INT32_MAX) {
            session_close_channel(c, ch, AMQP_REPLY_PRECONDITION_FAILED, AMQP_BASIC_CONSUME,
                                  "invalid arg 'x-priority' for queue '%.*s': not an integer",
                                  (int)a->queue.len, (const char *)a->queue.data);
            return;
        }
        priority = (int32_t)n;
    }
    channel_consumer *k = mi_heap_zalloc(c->shard->heap, sizeof(*k));
    if (k == NULL) return conn_abort(c);
    k->queue_id = qi->queue_id;
    k->queue_shard = qi->shard;
    k->no_ack = a->no_ack;
    k->tag_len = (uint8_t)tag.len;
    memcpy(k->tag, tag.data, tag.len);
    k->next = ch->consumers;
    ch->consumers = k;
    queues_consume_params p = {.queue_id = qi->queue_id,
                               .owner_shard = qi->shard,
                               .owner = consume_owner(c, ch->id),
                               .tag = k->tag,
                               .tag_bytes = k->tag_len,
                               .priority = priority,
                               .credit = a->no_ack                 ? STORE_CREDIT_UNLIMITED
                                         : ch->global_prefetch != 0 ? 0
                                         : ch->prefetch_count == 0  ? STORE_CREDIT_UNLIMITED
                                                                    : ch->prefetch_count,
                               .no_ack = a->no_ack,
                               .exclusive = a->exclusive,
                               .cookie = consume_cookie(c, ch->id)};
    ch->wait.name_len = k->tag_len;
    memcpy(ch->wait.name, k->tag, k->tag_len);
    consume_wait(c, ch, AMQP_BASIC_CONSUME, a->nowait);
    queues_consume(c->shard, &p);
    consume_hold(c, ch);
}

void consume_started(shard *s, uint64_t cookie, uint64_t consumer_id, uint16_t code, const char *text)
{
    conn *c;
    session_channel *ch = consume_cookie_channel(s, cookie, &c);
    channel_consumer *k = NULL;
    if (ch != NULL)
        k = consume_find_tag(ch, (amqp_bytes){(const uint8_t *)ch->wait.name, ch->wait.name_len});
    if (k == NULL || ch->phase != CHANNEL_OPEN) {
        /* The channel closed meanwhile: its close reached the queue after this
         * consume (the mailbox is FIFO), so the queue has dropped the consumer. */
        return consume_finish(c, ch);
    }
    if (code != 0) {
        consume_remove(ch, k);
        session_close_channel(c, ch, code, AMQP_BASIC_CONSUME, "%s", text);
        return consume_finish(c, ch);
    }
    k->consumer_id = consumer_id;
    consume_global_grant(c, ch);
    if (!ch->wait.nowait) {
        amqp_method m = {.id = AMQP_BASIC_CONSUME_OK};
        m.a.basic_consume_ok.consumer_tag = (amqp_bytes){(const uint8_t *)k->tag, k->tag_len};
        session_send_method(c, ch->id, &m);
    }
    consume_finish(c, ch);
}

static void consume_basic_cancel(conn *c, session_channel *ch, const amqp_basic_cancel *a)
{
    channel_consumer *k = reply_to_cancel(c, ch, a->consumer_tag) ? NULL : consume_find_tag(ch, a->consumer_tag);
    if (k != NULL) {
        if (k->consumer_id != 0) queues_cancel(c->shard, k->queue_shard, k->queue_id, k->consumer_id);
        consume_remove(ch, k);
    }
    if (!a->nowait) {
        amqp_method m = {.id = AMQP_BASIC_CANCEL_OK};
        m.a.basic_cancel_ok.consumer_tag = a->consumer_tag;
        session_send_method(c, ch->id, &m);
    }
}

void consume_cancelled(shard *s, uint64_t conn_id, uint16_t channel, uint64_t queue_id,
                       uint64_t consumer_id)
{
    conn *c = consume_conn(s, conn_id);
    session_channel *ch = consume_channel(c, channel);
    if (ch == NULL) return;
    for (channel_consumer *k = ch->consumers; k != NULL; k = k->next) {
        if (k->queue_id != queue_id || k->consumer_id != consumer_id) continue;
        if (session_of(c)->cap_consumer_cancel_notify) {
            amqp_method m = {.id = AMQP_BASIC_CANCEL};
            m.a.basic_cancel.consumer_tag = (amqp_bytes){(const uint8_t *)k->tag, k->tag_len};
            m.a.basic_cancel.nowait = true;
            session_send_method(c, ch->id, &m);
        }
        consume_remove(ch, k);
        return;
    }
}

/* ---- deliveries ---- */

/* basic.deliver or basic.get-ok, then the content. */
static void consume_write(conn *c, session_channel *ch, const amqp_method *m, const queues_delivery *d)
{
    session_send_method(c, ch->id, m);
    session_send_content(c, ch->id, d->props, d->body, d->body_bytes);
}

void consume_deliver(shard *s, const queues_delivery *d)
{
    conn *c = consume_conn(s, d->conn_id);
    session_channel *ch = consume_channel(c, d->channel);
    channel_consumer *k = NULL;
    if (ch != NULL)
        for (k = ch->consumers; k != NULL; k = k->next)
            if (k->consumer_id == d->consumer_id && k->queue_id == d->queue_id) break;
    if (k == NULL) {
        /* Cancelled or closed while the delivery travelled: back to its queue. */
        if (d->delivery_id != 0)
            queues_settle_delivery(s, d->queue_shard, d->queue_id, d->consumer_id, d->delivery_id,
                                   QUEUES_REQUEUE);
        return;
    }
    uint64_t tag = ++ch->delivery_tag_last;
    if (d->delivery_id != 0) {
        channel_unacked u = {.tag = tag,
                             .queue_id = d->queue_id,
                             .consumer_id = d->consumer_id,
                             .delivery_id = d->delivery_id,
                             .queue_shard = d->queue_shard};
        if (!consume_unacked_push(c, ch, &u)) return conn_abort(c);
    }
    amqp_method m = {.id = AMQP_BASIC_DELIVER};
    m.a.basic_deliver.consumer_tag = (amqp_bytes){(const uint8_t *)k->tag, k->tag_len};
    m.a.basic_deliver.delivery_tag = tag;
    m.a.basic_deliver.redelivered = d->redelivered;
    m.a.basic_deliver.exchange = d->exchange;
    m.a.basic_deliver.routing_key = d->routing_key;
    consume_write(c, ch, &m, d);
}

/* ---- basic.get, queue.purge ---- */

static void consume_basic_get(conn *c, session_channel *ch, const amqp_basic_get *a)
{
    const route_queue_info *qi = session_queue_lookup(c, ch, AMQP_BASIC_GET, a->queue);
    if (qi == NULL) return;
    ch->wait.no_ack_get = a->no_ack;
    consume_wait(c, ch, AMQP_BASIC_GET, false);
    store_owner owner = consume_owner(c, ch->id);
    queues_get(c->shard, qi->shard, qi->queue_id, &owner, a->no_ack, consume_cookie(c, ch->id));
    consume_hold(c, ch);
}

void get_answered(shard *s, uint64_t cookie, const queues_delivery *d)
{
    conn *c;
    session_channel *ch = consume_cookie_channel(s, cookie, &c);
    if (ch == NULL || ch->phase != CHANNEL_OPEN || ch->wait.method != AMQP_BASIC_GET) {
        if (d != NULL && d->delivery_id != 0) /* nobody to hand it to */
            queues_settle_delivery(s, d->queue_shard, d->queue_id, 0, d->delivery_id, QUEUES_REQUEUE);
        return consume_finish(c, ch);
    }
    if (d == NULL) {
        amqp_method m = {.id = AMQP_BASIC_GET_EMPTY};
        m.a.basic_get_empty.cluster_id = amqp_cstr("");
        session_send_method(c, ch->id, &m);
        return consume_finish(c, ch);
    }
    uint64_t tag = ++ch->delivery_tag_last;
    if (d->delivery_id != 0) {
        channel_unacked u = {.tag = tag,
                             .queue_id = d->queue_id,
                             .delivery_id = d->delivery_id,
                             .queue_shard = d->queue_shard};
        if (!consume_unacked_push(c, ch, &u)) return conn_abort(c);
    }
    amqp_method m = {.id = AMQP_BASIC_GET_OK};
    m.a.basic_get_ok.delivery_tag = tag;
    m.a.basic_get_ok.redelivered = d->redelivered;
    m.a.basic_get_ok.exchange = d->exchange;
    m.a.basic_get_ok.routing_key = d->routing_key;
    m.a.basic_get_ok.message_count = (uint32_t)d->message_count;
    consume_write(c, ch, &m, d);
    consume_finish(c, ch);
}

static void consume_queue_purge(conn *c, session_channel *ch, const amqp_queue_purge *a)
{
    const route_queue_info *qi = session_queue_lookup(c, ch, AMQP_QUEUE_PURGE, a->queue);
    if (qi == NULL) return;
    consume_wait(c, ch, AMQP_QUEUE_PURGE, a->nowait);
    queues_purge(c->shard, qi->shard, qi->queue_id, consume_cookie(c, ch->id));
    consume_hold(c, ch);
}

void purge_answered(shard *s, uint64_t cookie, bool found, uint64_t purged)
{
    conn *c;
    session_channel *ch = consume_cookie_channel(s, cookie, &c);
    if (ch != NULL && ch->phase == CHANNEL_OPEN && ch->wait.method == AMQP_QUEUE_PURGE) {
        (void)found; /* deleted meanwhile: RabbitMQ reports 0 as well */
        if (!ch->wait.nowait) {
            amqp_method m = {.id = AMQP_QUEUE_PURGE_OK};
            m.a.queue_purge_ok.message_count = (uint32_t)purged;
            session_send_method(c, ch->id, &m);
        }
    }
    consume_finish(c, ch);
}

/* ---- publisher confirms ---- */

static void consume_send_confirm(conn *c, session_channel *ch, uint64_t seq, bool multiple, bool nack)
{
    amqp_method m = {.id = nack ? AMQP_BASIC_NACK : AMQP_BASIC_ACK};
    if (nack) {
        m.a.basic_nack.delivery_tag = seq;
        m.a.basic_nack.multiple = multiple;
    } else {
        m.a.basic_ack.delivery_tag = seq;
        m.a.basic_ack.multiple = multiple;
    }
    session_send_method(c, ch->id, &m);
}

static channel_confirm *consume_confirm_at(session_channel *ch, uint32_t i)
{
    return &ch->confirms[(ch->confirms_head + i) & (ch->confirms_capacity - 1)];
}

/* Confirms every leading publish that has all its shards, in order; each run
 * of acks (or nacks) goes out as one method with multiple. */
static void consume_confirms_release(conn *c, session_channel *ch)
{
    while (ch->confirms_count > 0 && consume_confirm_at(ch, 0)->shards_left == 0) {
        bool nack = consume_confirm_at(ch, 0)->nack;
        uint32_t n = 0;
        while (n < ch->confirms_count && consume_confirm_at(ch, n)->shards_left == 0 &&
               consume_confirm_at(ch, n)->nack == nack)
            n++;
        uint64_t last = consume_confirm_at(ch, n - 1)->seq;
        ch->confirms_head = (ch->confirms_head + n) & (ch->confirms_capacity - 1);
        ch->confirms_count -= n;
        consume_send_confirm(c, ch, last, n > 1, nack);
    }
}

void consume_confirm_publish(conn *c, session_channel *ch, uint64_t seq, uint32_t shards_left,
                             bool refused)
{
    if (shards_left == 0 && ch->confirms_count == 0)
        return consume_send_confirm(c, ch, seq, false, refused);
    if (ch->confirms_count == ch->confirms_capacity) {
        uint32_t capacity = ch->confirms_capacity ? ch->confirms_capacity * 2 : 64;
        channel_confirm *ring = mi_heap_malloc(c->shard->heap, capacity * sizeof(*ring));
        if (ring == NULL) return conn_abort(c);
        for (uint32_t i = 0; i < ch->confirms_count; i++) ring[i] = *consume_confirm_at(ch, i);
        mi_free(ch->confirms);
        ch->confirms = ring;
        ch->confirms_head = 0;
        ch->confirms_capacity = capacity;
    }
    *consume_confirm_at(ch, ch->confirms_count++) = (channel_confirm){seq, shards_left, refused};
    consume_confirms_release(c, ch);
}

void publish_confirmed(shard *s, uint64_t conn_id, uint16_t channel, uint64_t confirm_seq,
                       bool accepted)
{
    conn *c = consume_conn(s, conn_id);
    session_channel *ch = consume_channel(c, channel);
    if (ch == NULL || ch->confirms_count == 0) return;
    /* Seqs ascend in the ring: binary search. */
    uint32_t lo = 0, hi = ch->confirms_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (consume_confirm_at(ch, mid)->seq < confirm_seq) lo = mid + 1;
        else hi = mid;
    }
    if (lo == ch->confirms_count || consume_confirm_at(ch, lo)->seq != confirm_seq) return;
    channel_confirm *cf = consume_confirm_at(ch, lo);
    ASSERT(cf->shards_left > 0);
    cf->shards_left--;
    if (!accepted) cf->nack = true;
    consume_confirms_release(c, ch);
}

/* ---- dispatch and cleanup ---- */

bool consume_method(conn *c, session_channel *ch, const amqp_method *m)
{
    amqp_method reply = {.id = 0};
    switch (m->id) {
    case AMQP_BASIC_QOS:
        /* prefetch_size is not supported by RabbitMQ either. */
        if (m->a.basic_qos.global) {
            uint32_t held = ch->global_prefetch ? ch->global_prefetch - ch->global_credit : 0;
            ch->global_prefetch = m->a.basic_qos.prefetch_count;
            ch->global_credit = ch->global_prefetch > held ? ch->global_prefetch - held : 0;
            consume_global_grant(c, ch);
        } else {
            ch->prefetch_count = m->a.basic_qos.prefetch_count;
        }
        reply.id = AMQP_BASIC_QOS_OK;
        session_send_method(c, ch->id, &reply);
        return true;
    case AMQP_BASIC_CONSUME:
        consume_basic_consume(c, ch, &m->a.basic_consume);
        return true;
    case AMQP_BASIC_CANCEL:
        consume_basic_cancel(c, ch, &m->a.basic_cancel);
        return true;
    case AMQP_BASIC_GET:
        consume_basic_get(c, ch, &m->a.basic_get);
        return true;
    case AMQP_BASIC_ACK:
        consume_settle(c, ch, m->id, m->a.basic_ack.delivery_tag, m->a.basic_ack.multiple, QUEUES_ACK);
        return true;
    case AMQP_BASIC_NACK:
        consume_settle(c, ch, m->id, m->a.basic_nack.delivery_tag, m->a.basic_nack.multiple,
                       m->a.basic_nack.requeue ? QUEUES_REQUEUE : QUEUES_DROP);
        return true;
    case AMQP_BASIC_REJECT:
        consume_settle(c, ch, m->id, m->a.basic_reject.delivery_tag, false,
                       m->a.basic_reject.requeue ? QUEUES_REQUEUE : QUEUES_DROP);
        return true;
    case AMQP_BASIC_RECOVER:
    case AMQP_BASIC_RECOVER_ASYNC: {
        bool requeue = m->id == AMQP_BASIC_RECOVER ? m->a.basic_recover.requeue
                                                   : m->a.basic_recover_async.requeue;
        if (!requeue) {
            session_close_connection(c, AMQP_REPLY_NOT_IMPLEMENTED, m->id, "requeue=false");
            return true;
        }
        for (uint32_t i = 0; i < ch->unacked_count; i++) {
            channel_unacked *u = consume_unacked_at(ch, i);
            if (!u->settled) consume_settle_one(c, ch, u, QUEUES_REQUEUE);
        }
        consume_unacked_trim(ch);
        consume_global_grant(c, ch);
        if (m->id == AMQP_BASIC_RECOVER) {
            reply.id = AMQP_BASIC_RECOVER_OK;
            session_send_method(c, ch->id, &reply);
        }
        return true;
    }
    case AMQP_QUEUE_PURGE:
        consume_queue_purge(c, ch, &m->a.queue_purge);
        return true;
    case AMQP_CONFIRM_SELECT:
        if (ch->tx_mode) {
            session_close_channel(c, ch, AMQP_REPLY_PRECONDITION_FAILED, m->id,
                                  "cannot switch from tx to confirm mode");
            return true;
        }
        ch->confirm_mode = true;
        if (!m->a.confirm_select.nowait) {
            reply.id = AMQP_CONFIRM_SELECT_OK;
            session_send_method(c, ch->id, &reply);
        }
        return true;
    default:
        return tx_method(c, ch, m);
    }
}

void consume_channel_backlog(conn *c, session_channel *ch, bool high)
{
    for (channel_consumer *k = ch->consumers; k != NULL; k = k->next)
        if (k->consumer_id != 0)
            queues_settle_delivery(c->shard, k->queue_shard, k->queue_id, k->consumer_id, 0,
                                   high ? QUEUES_PAUSE : QUEUES_RESUME);
}

void consume_channel_closed(conn *c, session_channel *ch)
{
    if ((ch->consumers != NULL || ch->unacked_count > 0) && !c->shard->tearing_down) {
        /* Every queue drops this channel's consumers and requeues its unacked
         * deliveries, in their original order. */
        store_owner owner = consume_owner(c, ch->id);
        queues_owner_gone(c->shard, &owner, STORE_OWNER_CHANNEL);
    }
    while (ch->consumers != NULL) consume_remove(ch, ch->consumers);
    mi_free(ch->unacked);
    ch->unacked = NULL;
    ch->unacked_count = ch->unacked_capacity = ch->unacked_head = 0;
    tx_free(ch);
    mi_free(ch->confirms);
    ch->confirms = NULL;
    ch->confirms_count = ch->confirms_capacity = ch->confirms_head = 0;
}
