/*
 * The queues a shard owns and the records that reach them (see
 * store/queues.h); the publish path is in store/queues_publish.c, the types
 * both share in store/queues_int.h. Ownership: a queue structure lives on its
 * owner shard only; messages are copied by value into mailbox records when
 * they cross shards, so every store_msg belongs to the shard whose heap made
 * it. Queues that may have work (new messages, new credit, a new consumer)
 * are marked and dispatched at the end of the turn with a bounded budget.
 * Each queue pages its backlog out past its in-memory window
 * ([storage] queue_memory_bytes) to the shard's spill directory, which is
 * emptied when the shard starts.
 */
#include "store/queues.h"
#include "store/queues_int.h"

#include "core/assert.h"
#include "core/log.h"
#include "core/runtime.h"
#include "route/route_map.h"
#include "route/topo.h"
#include "net/amqp_table.h"
#include "store/dead_letter.h"
#include "store/queue.h"
#include "store/spill.h"

#include <errno.h>
#include <mimalloc.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    uint64_t conn_id;
    uint64_t queue_id;
    uint64_t consumer_id;
    uint16_t channel;
} queues_cancelled_rec;

owned_queue *queues__find(queues *qs, uint64_t queue_id)
{
    route_map_iter it;
    for (owned_queue *o = route_map_first(&qs->by_id, queue_id, &it); o; o = route_map_next(&it))
        if (o->queue_id == queue_id) return o;
    return NULL;
}

void queues__mark(queues *qs, owned_queue *o)
{
    if (o->marked) return;
    o->marked = true;
    o->next_marked = qs->marked_head;
    qs->marked_head = o;
}

queues *queues_create(shard *s)
{
    queues *qs = mi_heap_zalloc(s->heap, sizeof(*qs));
    ASSERT(qs != NULL);
    qs->s = s;
    route_map_init(&qs->by_id);
    /* Before any queue exists: what a previous run paged out is stale (the log has the rest). */
    qs->spill_dir_fd = store_spill_dir_open(s->cfg->data_dir, s->id);
    if (qs->spill_dir_fd < 0) {
        LOG_ERROR("cannot open the spill directory in %s: %s", s->cfg->data_dir, strerror(errno));
        exit(1);
    }
    return qs;
}

void queues_destroy(queues *qs)
{
    for (uint32_t i = 0; i < qs->by_id.slots_count; i++) {
        owned_queue *o = qs->by_id.slots[i].value;
        if (o == NULL) continue;
        store_queue_delete(o->q);
        mi_free(o->consumers);
        mi_free(o);
    }
    route_map_free(&qs->by_id);
    close(qs->spill_dir_fd); /* a directory: nothing to flush */
    mi_free(qs->deferred);
    mi_free(qs);
}

/* ---- message wire form (store/msg.h): what mailbox records and log records carry ---- */

static uint32_t queues_msg_wire_size(const store_msg *m)
{
    return store_msg_wire_bytes(m);
}

static void queues_msg_write(uint8_t *out, const store_msg *m)
{
    store_msg_wire_write(out, m);
}

/* A message record seen as slices of the record (valid during the handler). Mailbox records
 * come from this process, so their form is trusted. */
void queues__msg_view(const uint8_t *in, queues_delivery *d, store_msg_params *p)
{
    store_msg_params local;
    store_msg_params *q = p != NULL ? p : &local;
    bool ok = store_msg_wire_read(in, SIZE_MAX, q);
    ASSERT(ok);
    d->exchange = (amqp_bytes){q->exchange, q->exchange_bytes};
    d->routing_key = (amqp_bytes){q->routing_key, q->routing_key_bytes};
    d->props = (amqp_bytes){q->props, q->props_bytes};
    d->body = q->body;
    d->body_bytes = (uint32_t)q->body_bytes;
}

static void queues_delivery_from_msg(queues_delivery *d, const store_msg *m)
{
    d->exchange = (amqp_bytes){store_msg_exchange(m), m->exchange_bytes};
    d->routing_key = (amqp_bytes){store_msg_routing_key(m), m->routing_key_bytes};
    d->props = (amqp_bytes){store_msg_props(m), m->props_bytes};
    d->body = store_msg_body(m);
    d->body_bytes = m->body_bytes;
}

/* Sends a fixed header plus an optional message as one record. */
void queues__send(shard *s, uint32_t to, uint16_t kind, const void *head, uint32_t head_bytes,
                        const store_msg *m)
{
    uint32_t bytes = head_bytes + (m ? queues_msg_wire_size(m) : 0);
    uint8_t stack[4096];
    uint8_t *buf = bytes <= sizeof(stack) ? stack : mi_heap_malloc(s->heap, bytes);
    ASSERT(buf != NULL);
    memcpy(buf, head, head_bytes);
    if (m) queues_msg_write(buf + head_bytes, m);
    shard_mbox_send_control(s, to, kind, buf, bytes);
    if (buf != stack) mi_free(buf);
}

/* ---- queue lifecycle (topology callback) ---- */

/* A non-negative integer argument of any integer wire type. */
static bool queues_int_argument(amqp_table args, const char *key, uint64_t *out)
{
    amqp_field v;
    int64_t n;
    if (!amqp_table_get(args, amqp_cstr(key), &v) || !amqp_field_int64(&v, &n)) return false;
    if (n < 0) return false;
    *out = (uint64_t)n;
    return true;
}

static void queues_read_arguments(owned_queue *o, amqp_table args)
{
    o->has_ttl = queues_int_argument(args, "x-message-ttl", &o->ttl_ms);
    o->has_max_length = queues_int_argument(args, "x-max-length", &o->max_length);
    o->has_max_bytes = queues_int_argument(args, "x-max-length-bytes", &o->max_bytes);
    o->has_expires = queues_int_argument(args, "x-expires", &o->expires_ms) && o->expires_ms > 0;
    amqp_field v;
    o->single_active = amqp_table_get(args, amqp_cstr("x-single-active-consumer"), &v) &&
                       v.type == AMQP_FIELD_BOOL && v.v.boolean;
    if (amqp_table_get(args, amqp_cstr("x-overflow"), &v) && v.type == AMQP_FIELD_LONGSTR) {
        if (amqp_bytes_equal(v.v.bytes, amqp_cstr("reject-publish")))
            o->overflow = QUEUES_OVERFLOW_REJECT_PUBLISH;
        else if (amqp_bytes_equal(v.v.bytes, amqp_cstr("reject-publish-dlx")))
            o->overflow = QUEUES_OVERFLOW_REJECT_PUBLISH_DLX;
    }
    if (amqp_table_get(args, amqp_cstr("x-dead-letter-exchange"), &v) && v.type == AMQP_FIELD_LONGSTR &&
        v.v.bytes.len <= LIMIT_NAME_BYTES_MAX) {
        o->dlx = true;
        o->dlx_exchange_len = (uint8_t)v.v.bytes.len;
        memcpy(o->dlx_exchange, v.v.bytes.data, v.v.bytes.len);
    }
    if (amqp_table_get(args, amqp_cstr("x-dead-letter-routing-key"), &v) &&
        v.type == AMQP_FIELD_LONGSTR && v.v.bytes.len <= LIMIT_NAME_BYTES_MAX) {
        o->dlx_has_routing_key = true;
        o->dlx_routing_key_len = (uint8_t)v.v.bytes.len;
        memcpy(o->dlx_routing_key, v.v.bytes.data, v.v.bytes.len);
    }
}

/* When the message expires in o, or UINT64_MAX: the shorter of the queue's
 * x-message-ttl and the message's expiration, from its arrival. */
static uint64_t queues_deadline_ms(const owned_queue *o, const store_msg *m)
{
    uint64_t ttl = UINT64_MAX;
    if (o->has_ttl) ttl = o->ttl_ms;
    if ((m->flags & STORE_MSG_HAS_EXPIRATION) && m->expiration_ms < ttl) ttl = m->expiration_ms;
    return ttl == UINT64_MAX ? UINT64_MAX : m->arrival_ms + ttl;
}

/* Drops expired messages at the head (RabbitMQ expires at the head only), and
 * arms the timer for the next one. */
void queues__expire(shard *s, owned_queue *o)
{
    store_msg *head;
    while ((head = store_queue_peek(o->q)) != NULL) {
        uint64_t deadline = queues_deadline_ms(o, head);
        if (deadline == UINT64_MAX) break;
        if (deadline >= s->now_ms) {
            timer_arm(&s->timers, &o->ttl_timer, deadline + 1);
            return;
        }
        store_msg *dead = store_queue_drop_head(o->q);
        queues__dead_letter(s, o, dead, "expired");
        store_msg_unref(dead);
    }
    timer_cancel(&s->timers, &o->ttl_timer);
}

/* x-max-length / x-max-length-bytes with RabbitMQ's default overflow: drop the oldest. */
void queues__enforce_length(shard *s, owned_queue *o)
{
    while ((o->has_max_length && store_queue_ready_count(o->q) > o->max_length) ||
           (o->has_max_bytes && store_queue_ready_bytes(o->q) > o->max_bytes)) {
        store_msg *dead = store_queue_drop_head(o->q);
        if (dead == NULL) break;
        queues__dead_letter(s, o, dead, "maxlen");
        store_msg_unref(dead);
    }
}

/* x-expires: a use restarts the countdown; while it has consumers it is in use. */
static void queues_touch(shard *s, owned_queue *o)
{
    if (!o->has_expires || o->deleting) return;
    if (store_queue_consumer_count(o->q) > 0)
        timer_cancel(&s->timers, &o->expires_timer);
    else
        timer_arm(&s->timers, &o->expires_timer, s->now_ms + o->expires_ms);
}

static void queues_on_expires_timer(timer *t, uint64_t now_ms)
{
    owned_queue *o = (owned_queue *)((char *)t - offsetof(owned_queue, expires_timer));
    (void)now_ms;
    if (o->deleting || store_queue_consumer_count(o->q) > 0) return;
    o->deleting = true;
    topo_request req = {.op = TOPO_QUEUE_DELETE,
                        .vhost = {(const uint8_t *)o->vhost, o->vhost_len},
                        .name = {(const uint8_t *)o->name, o->name_len},
                        .conn_id = ROUTE_CONN_ANY};
    topo_submit_quiet(o->shard, &req);
}

static void queues_on_ttl_timer(timer *t, uint64_t now_ms)
{
    owned_queue *o = (owned_queue *)((char *)t - offsetof(owned_queue, ttl_timer));
    (void)now_ms;
    queues__expire(o->shard, o);
}

void queues__dead_letter(shard *s, owned_queue *o, store_msg *msg, const char *reason)
{
    if (!o->dlx) return;
    dead_letter_target t = {.vhost = {(const uint8_t *)o->vhost, o->vhost_len},
                            .queue = {(const uint8_t *)o->name, o->name_len},
                            .exchange = {(const uint8_t *)o->dlx_exchange, o->dlx_exchange_len},
                            .routing_key = {(const uint8_t *)o->dlx_routing_key, o->dlx_routing_key_len},
                            .has_routing_key = o->dlx_has_routing_key};
    dead_letter(s, &t, msg, reason);
}

void queues_on_topology(shard *s, amqp_bytes vhost, const route_queue_info *qi, bool created)
{
    queues *qs = s->queues;
    if (created) {
        owned_queue *o = mi_heap_zalloc(s->heap, sizeof(*o));
        ASSERT(o != NULL && queues__find(qs, qi->queue_id) == NULL);
        o->queue_id = qi->queue_id;
        o->auto_delete = qi->auto_delete;
        o->durable = qi->durable && !qi->exclusive;
        o->name_len = (uint8_t)qi->name.len;
        memcpy(o->name, qi->name.data, qi->name.len);
        o->vhost_len = (uint8_t)vhost.len;
        memcpy(o->vhost, vhost.data, vhost.len);
        store_queue_paging paging = {.dir_fd = qs->spill_dir_fd,
                                     .queue_id = qi->queue_id,
                                     .chunk_bytes = LIMIT_SPILL_CHUNK_BYTES,
                                     .memory_messages_max = LIMIT_QUEUE_MEMORY_MESSAGES,
                                     .memory_bytes_max = s->cfg->queue_memory_bytes};
        o->q = store_queue_new(s->heap, o->vhost, o->vhost_len, o->name, o->name_len, &paging);
        ASSERT(o->q != NULL);
        queues_read_arguments(o, qi->arguments);
        o->shard = s;
        timer_init(&o->ttl_timer, queues_on_ttl_timer);
        timer_init(&o->expires_timer, queues_on_expires_timer);
        queues_touch(s, o);
        route_map_insert(&qs->by_id, o->queue_id, o);
        return;
    }
    owned_queue *o = queues__find(qs, qi->queue_id);
    if (o == NULL) return;
    /* Consumers hear basic.cancel (consumer_cancel_notify), as in RabbitMQ. */
    for (uint32_t i = 0; i < o->consumers_count; i++) {
        const queues_consumer_ref *ref = &o->consumers[i];
        if (ref->owner.shard_id == s->id) {
            consume_cancelled(s, ref->owner.conn_id, (uint16_t)ref->owner.channel_id, o->queue_id,
                              ref->consumer_id);
        } else {
            queues_cancelled_rec rec = {.conn_id = ref->owner.conn_id,
                                        .queue_id = o->queue_id,
                                        .consumer_id = ref->consumer_id,
                                        .channel = (uint16_t)ref->owner.channel_id};
            queues__send(s, (uint32_t)ref->owner.shard_id, Q_KIND_CANCELLED, &rec, sizeof(rec),
                        NULL);
        }
    }
    mi_free(o->consumers);
    timer_cancel(&s->timers, &o->ttl_timer);
    timer_cancel(&s->timers, &o->expires_timer);
    route_map_remove(&qs->by_id, o->queue_id, o);
    if (o->marked) {
        owned_queue **pp = &qs->marked_head;
        while (*pp != o) pp = &(*pp)->next_marked;
        *pp = o->next_marked;
    }
    store_queue_delete(o->q);
    mi_free(o);
}

/* ---- stats ---- */

typedef struct {
    uint64_t cookie;
    uint64_t queue_id;
    uint32_t messages;
    uint32_t consumers;
    uint8_t found;
} queues_stats_rec;

void queues_stats_request(shard *s, uint32_t owner, uint64_t queue_id, uint64_t cookie)
{
    queues_stats_rec r = {.cookie = cookie, .queue_id = queue_id};
    if (owner == s->id) {
        owned_queue *o = queues__find(s->queues, queue_id);
        if (o != NULL) queues__expire(s, o), queues_touch(s, o);
        uint32_t messages = o ? (uint32_t)store_queue_ready_count(o->q) : 0;
        uint32_t consumers = o ? store_queue_consumer_count(o->q) : 0;
        declare_stats_done(s, cookie, o != NULL, messages, consumers);
        return;
    }
    queues__send(s, owner, Q_KIND_STATS_REQ, &r, sizeof(r), NULL);
}

static void queues_on_stats_req(shard *s, uint32_t from, const void *payload, uint32_t bytes)
{
    ASSERT(bytes == sizeof(queues_stats_rec));
    queues_stats_rec r = *(const queues_stats_rec *)payload;
    owned_queue *o = queues__find(s->queues, r.queue_id);
    if (o != NULL) queues__expire(s, o), queues_touch(s, o);
    r.found = o != NULL;
    r.messages = o ? (uint32_t)store_queue_ready_count(o->q) : 0;
    r.consumers = o ? store_queue_consumer_count(o->q) : 0;
    queues__send(s, from, Q_KIND_STATS_REP, &r, sizeof(r), NULL);
}

static void queues_on_stats_rep(shard *s, uint32_t from, const void *payload, uint32_t bytes)
{
    (void)from;
    ASSERT(bytes == sizeof(queues_stats_rec));
    const queues_stats_rec *r = payload;
    declare_stats_done(s, r->cookie, r->found, r->messages, r->consumers);
}

static void queues_consumer_ref_add(shard *s, owned_queue *o, uint64_t consumer_id,
                                    const store_owner *owner)
{
    if (o->consumers_count == o->consumers_capacity) {
        uint32_t capacity = o->consumers_capacity ? o->consumers_capacity * 2 : 4;
        queues_consumer_ref *c = mi_heap_realloc(s->heap, o->consumers, capacity * sizeof(*c));
        ASSERT(c != NULL);
        o->consumers = c;
        o->consumers_capacity = capacity;
    }
    o->consumers[o->consumers_count++] = (queues_consumer_ref){consumer_id, *owner};
}

/* Single active consumer: the oldest remaining consumer takes over. */
static void queues_sac_handover(owned_queue *o)
{
    if (!o->single_active) return;
    bool still_there = false;
    for (uint32_t i = 0; i < o->consumers_count; i++)
        if (o->consumers[i].consumer_id == o->active_consumer_id) still_there = true;
    if (still_there) return;
    o->active_consumer_id = o->consumers_count ? o->consumers[0].consumer_id : 0;
    if (o->active_consumer_id != 0) store_queue_consumer_set_active(o->q, o->active_consumer_id, true);
}

static void queues_consumer_ref_remove(owned_queue *o, uint64_t consumer_id)
{
    for (uint32_t i = 0; i < o->consumers_count; i++) {
        if (o->consumers[i].consumer_id != consumer_id) continue;
        memmove(&o->consumers[i], &o->consumers[i + 1],
                (o->consumers_count - i - 1) * sizeof(*o->consumers)); /* keep arrival order */
        o->consumers_count--;
        queues_sac_handover(o);
        return;
    }
}

/* An auto-delete queue goes once it has had a consumer and has none left. */
static void queues_maybe_auto_delete(shard *s, owned_queue *o)
{
    if (!o->auto_delete || !o->had_consumer || o->deleting) return;
    if (store_queue_consumer_count(o->q) > 0) return;
    o->deleting = true;
    topo_request req = {.op = TOPO_QUEUE_DELETE,
                        .vhost = {(const uint8_t *)o->vhost, o->vhost_len},
                        .name = {(const uint8_t *)o->name, o->name_len},
                        .conn_id = ROUTE_CONN_ANY};
    topo_submit_quiet(s, &req);
}

/* ---- consumers ---- */

typedef struct {
    uint64_t cookie;
    uint64_t queue_id;
    store_owner owner;
    int32_t priority;
    uint32_t credit;
    uint8_t no_ack;
    uint8_t exclusive;
    uint8_t tag_bytes;
    char tag[LIMIT_CONSUMER_TAG_BYTES_MAX];
} queues_consume_rec;

typedef struct {
    uint64_t cookie;
    uint64_t consumer_id;
    uint16_t code;
    char text[256];
} queues_consume_rep;

static void queues_consume_local(shard *s, const queues_consume_rec *r, queues_consume_rep *rep)
{
    rep->cookie = r->cookie;
    rep->consumer_id = 0;
    rep->code = 0;
    rep->text[0] = '\0';
    owned_queue *o = queues__find(s->queues, r->queue_id);
    if (o == NULL || o->deleting) {
        rep->code = 404;
        snprintf(rep->text, sizeof(rep->text), "no queue");
        return;
    }
    store_consumer_params p = {.tag = r->tag,
                               .tag_bytes = r->tag_bytes,
                               .owner = r->owner,
                               .priority = r->priority,
                               .credit = r->credit,
                               .no_ack = r->no_ack,
                               .exclusive = r->exclusive,
                               .inactive = o->single_active && o->consumers_count > 0};
    store_reply reply;
    uint64_t id = store_queue_consumer_add(o->q, &p, &reply);
    if (id == 0) {
        rep->code = reply.code;
        snprintf(rep->text, sizeof(rep->text), "%.*s", reply.text_bytes, reply.text);
        return;
    }
    rep->consumer_id = id;
    o->had_consumer = true;
    if (o->single_active && o->consumers_count == 0) o->active_consumer_id = id;
    queues_consumer_ref_add(s, o, id, &r->owner);
    queues_touch(s, o);
    queues__mark(s->queues, o);
}

void queues_consume(shard *s, const queues_consume_params *p)
{
    queues_consume_rec r = {.cookie = p->cookie,
                            .queue_id = p->queue_id,
                            .owner = p->owner,
                            .priority = p->priority,
                            .credit = p->credit,
                            .no_ack = p->no_ack,
                            .exclusive = p->exclusive,
                            .tag_bytes = p->tag_bytes};
    memcpy(r.tag, p->tag, p->tag_bytes);
    if (p->owner_shard == s->id) {
        queues_consume_rep rep;
        queues_consume_local(s, &r, &rep);
        consume_started(s, rep.cookie, rep.consumer_id, rep.code, rep.text);
        return;
    }
    queues__send(s, p->owner_shard, Q_KIND_CONSUME, &r, sizeof(r), NULL);
}

static void queues_on_consume(shard *s, uint32_t from, const void *payload, uint32_t bytes)
{
    ASSERT(bytes == sizeof(queues_consume_rec));
    queues_consume_rep rep;
    queues_consume_local(s, payload, &rep);
    queues__send(s, from, Q_KIND_CONSUME_REP, &rep, sizeof(rep), NULL);
}

static void queues_on_consume_rep(shard *s, uint32_t from, const void *payload, uint32_t bytes)
{
    (void)from;
    ASSERT(bytes == sizeof(queues_consume_rep));
    const queues_consume_rep *rep = payload;
    consume_started(s, rep->cookie, rep->consumer_id, rep->code, rep->text);
}

typedef struct {
    uint64_t queue_id;
    uint64_t consumer_id;
} queues_cancel_rec;

static void queues_cancel_local(shard *s, uint64_t queue_id, uint64_t consumer_id)
{
    owned_queue *o = queues__find(s->queues, queue_id);
    if (o == NULL) return;
    if (!store_queue_consumer_remove(o->q, consumer_id, false, NULL)) return;
    queues_consumer_ref_remove(o, consumer_id);
    queues_touch(s, o);
    queues_maybe_auto_delete(s, o);
}

void queues_cancel(shard *s, uint32_t owner_shard, uint64_t queue_id, uint64_t consumer_id)
{
    if (owner_shard == s->id) return queues_cancel_local(s, queue_id, consumer_id);
    queues_cancel_rec r = {queue_id, consumer_id};
    queues__send(s, owner_shard, Q_KIND_CANCEL, &r, sizeof(r), NULL);
}

static void queues_on_cancel(shard *s, uint32_t from, const void *payload, uint32_t bytes)
{
    (void)from;
    ASSERT(bytes == sizeof(queues_cancel_rec));
    const queues_cancel_rec *r = payload;
    queues_cancel_local(s, r->queue_id, r->consumer_id);
}

static void queues_on_cancelled(shard *s, uint32_t from, const void *payload, uint32_t bytes)
{
    (void)from;
    ASSERT(bytes == sizeof(queues_cancelled_rec));
    const queues_cancelled_rec *r = payload;
    consume_cancelled(s, r->conn_id, r->channel, r->queue_id, r->consumer_id);
}

/* ---- deliveries ---- */

typedef struct {
    uint64_t conn_id;
    uint64_t queue_id;
    uint64_t consumer_id;
    uint64_t delivery_id;
    uint64_t message_count;
    uint64_t cookie; /* basic.get */
    uint16_t channel;
    uint8_t redelivered;
    uint8_t found;
} queues_deliver_rec;

typedef struct {
    shard *s;
    uint64_t queue_id;
} queues_dispatch_ctx;

static void queues_deliver_one(void *ctx, const store_consumer *consumer, store_msg *msg,
                               uint64_t delivery_id, bool redelivered)
{
    queues_dispatch_ctx *dc = ctx;
    shard *s = dc->s;
    if (consumer->owner.shard_id == s->id) {
        queues_delivery d = {.conn_id = consumer->owner.conn_id,
                             .channel = (uint16_t)consumer->owner.channel_id,
                             .queue_shard = s->id,
                             .queue_id = dc->queue_id,
                             .consumer_id = consumer->id,
                             .delivery_id = delivery_id,
                             .redelivered = redelivered};
        queues_delivery_from_msg(&d, msg);
        consume_deliver(s, &d);
        return;
    }
    queues_deliver_rec r = {.conn_id = consumer->owner.conn_id,
                            .queue_id = dc->queue_id,
                            .consumer_id = consumer->id,
                            .delivery_id = delivery_id,
                            .channel = (uint16_t)consumer->owner.channel_id,
                            .redelivered = redelivered};
    queues__send(s, (uint32_t)consumer->owner.shard_id, Q_KIND_DELIVER, &r, sizeof(r), msg);
}

static void queues_on_deliver(shard *s, uint32_t from, const void *payload, uint32_t bytes)
{
    ASSERT(bytes >= sizeof(queues_deliver_rec) + sizeof(store_msg_wire));
    const queues_deliver_rec *r = payload;
    queues_delivery d = {.conn_id = r->conn_id,
                         .channel = r->channel,
                         .queue_shard = from,
                         .queue_id = r->queue_id,
                         .consumer_id = r->consumer_id,
                         .delivery_id = r->delivery_id,
                         .redelivered = r->redelivered};
    queues__msg_view((const uint8_t *)(r + 1), &d, NULL);
    consume_deliver(s, &d);
}

static void queues_settle_local(shard *s, const queues_settle_rec *r);

void queues_run(shard *s)
{
    queues *qs = s->queues;
    owned_queue *o = qs->marked_head;
    qs->marked_head = NULL;
    while (o != NULL) {
        owned_queue *next = o->next_marked;
        o->marked = false;
        o->next_marked = NULL;
        queues_dispatch_ctx ctx = {.s = s, .queue_id = o->queue_id};
        queues__expire(s, o);
        qs->dispatching = true;
        store_queue_dispatch(o->q, queues_deliver_one, &ctx, LIMIT_QUEUE_DISPATCH_PER_TURN);
        qs->dispatching = false;
        if (store_queue_dispatchable(o->q)) queues__mark(qs, o); /* more next turn */
        /* Settles made during the dispatch (pauses); they may mark queues too. */
        for (uint32_t i = 0; i < qs->deferred_count; i++) queues_settle_local(s, &qs->deferred[i]);
        qs->deferred_count = 0;
        o = next;
    }
}

bool queues_pending(const shard *s)
{
    return s->queues != NULL && s->queues->marked_head != NULL;
}

/* ---- settling, basic.get, purge ---- */


static void queues_settle_local(shard *s, const queues_settle_rec *r)
{
    owned_queue *o = queues__find(s->queues, r->queue_id);
    if (o == NULL) return; /* the queue is gone: nothing to settle */
    switch ((queues_settle)r->how) {
    case QUEUES_ACK:
        store_queue_ack(o->q, r->delivery_id);
        break;
    case QUEUES_REQUEUE:
        store_queue_reject(o->q, r->delivery_id, true);
        if (o->has_max_length || o->has_max_bytes) queues__enforce_length(s, o);
        break;
    case QUEUES_DROP: {
        store_msg *msg = store_queue_reject_take(o->q, r->delivery_id);
        if (msg != NULL) {
            queues__dead_letter(s, o, msg, "rejected");
            store_msg_unref(msg);
        }
        break;
    }
    case QUEUES_CREDIT_ONLY:
        break;
    case QUEUES_PAUSE:
    case QUEUES_RESUME:
        if (r->how == QUEUES_RESUME && o->single_active && r->consumer_id != o->active_consumer_id)
            return; /* a waiting single-active consumer stays inactive */
        store_queue_consumer_set_active(o->q, r->consumer_id, r->how == QUEUES_RESUME);
        queues__mark(s->queues, o);
        return;
    }
    if (r->consumer_id != 0) store_queue_credit(o->q, r->consumer_id, 1);
    queues__mark(s->queues, o);
}

void queues_settle_delivery(shard *s, uint32_t owner_shard, uint64_t queue_id, uint64_t consumer_id,
                            uint64_t delivery_id, queues_settle how)
{
    queues_settle_rec r = {queue_id, consumer_id, delivery_id, (uint32_t)how};
    queues *qs = s->queues;
    if (owner_shard == s->id && qs->dispatching) {
        if (qs->deferred_count == qs->deferred_capacity) {
            uint32_t capacity = qs->deferred_capacity ? qs->deferred_capacity * 2 : 16;
            queues_settle_rec *d = mi_heap_realloc(s->heap, qs->deferred, capacity * sizeof(*d));
            ASSERT(d != NULL);
            qs->deferred = d;
            qs->deferred_capacity = capacity;
        }
        qs->deferred[qs->deferred_count++] = r;
        return;
    }
    if (owner_shard == s->id) return queues_settle_local(s, &r);
    queues__send(s, owner_shard, Q_KIND_SETTLE, &r, sizeof(r), NULL);
}

static void queues_on_settle(shard *s, uint32_t from, const void *payload, uint32_t bytes)
{
    (void)from;
    ASSERT(bytes == sizeof(queues_settle_rec));
    queues_settle_local(s, payload);
}

typedef struct {
    uint64_t cookie;
    uint64_t queue_id;
    store_owner owner;
    uint8_t no_ack;
} queues_get_rec;

/* Answers a basic.get on the owner shard: to net/ here, or as a record. */
static void queues_get_local(shard *s, uint32_t to, const queues_get_rec *r)
{
    owned_queue *o = queues__find(s->queues, r->queue_id);
    if (o != NULL) queues__expire(s, o), queues_touch(s, o);
    store_get got;
    bool found = o != NULL && store_queue_get(o->q, &r->owner, r->no_ack, &got);
    queues_deliver_rec rec = {.queue_id = r->queue_id, .cookie = r->cookie, .found = found};
    if (found) {
        rec.delivery_id = got.delivery_id;
        rec.message_count = got.ready_count;
        rec.redelivered = got.redelivered;
    }
    if (to == s->id) {
        queues_delivery d = {.queue_shard = s->id,
                             .queue_id = r->queue_id,
                             .delivery_id = rec.delivery_id,
                             .redelivered = rec.redelivered,
                             .message_count = rec.message_count};
        if (found) queues_delivery_from_msg(&d, got.msg);
        get_answered(s, r->cookie, found ? &d : NULL);
    } else {
        queues__send(s, to, Q_KIND_GET_REP, &rec, sizeof(rec), found ? got.msg : NULL);
    }
    if (found) store_msg_unref(got.msg);
}

void queues_get(shard *s, uint32_t owner_shard, uint64_t queue_id, const store_owner *owner,
                bool no_ack, uint64_t cookie)
{
    queues_get_rec r = {.cookie = cookie, .queue_id = queue_id, .owner = *owner, .no_ack = no_ack};
    if (owner_shard == s->id) return queues_get_local(s, s->id, &r);
    queues__send(s, owner_shard, Q_KIND_GET, &r, sizeof(r), NULL);
}

static void queues_on_get(shard *s, uint32_t from, const void *payload, uint32_t bytes)
{
    ASSERT(bytes == sizeof(queues_get_rec));
    queues_get_local(s, from, payload);
}

static void queues_on_get_rep(shard *s, uint32_t from, const void *payload, uint32_t bytes)
{
    const queues_deliver_rec *r = payload;
    ASSERT(bytes >= sizeof(*r));
    if (!r->found) return get_answered(s, r->cookie, NULL);
    queues_delivery d = {.queue_shard = from,
                         .queue_id = r->queue_id,
                         .delivery_id = r->delivery_id,
                         .redelivered = r->redelivered,
                         .message_count = r->message_count};
    queues__msg_view((const uint8_t *)(r + 1), &d, NULL);
    get_answered(s, r->cookie, &d);
}

typedef struct {
    uint64_t cookie;
    uint64_t queue_id;
    uint64_t purged;
    uint8_t found;
} queues_purge_rec;

static void queues_purge_local(shard *s, queues_purge_rec *r)
{
    owned_queue *o = queues__find(s->queues, r->queue_id);
    r->found = o != NULL;
    r->purged = o ? store_queue_purge(o->q) : 0;
}

void queues_purge(shard *s, uint32_t owner_shard, uint64_t queue_id, uint64_t cookie)
{
    queues_purge_rec r = {.cookie = cookie, .queue_id = queue_id};
    if (owner_shard == s->id) {
        queues_purge_local(s, &r);
        return purge_answered(s, cookie, r.found, r.purged);
    }
    queues__send(s, owner_shard, Q_KIND_PURGE, &r, sizeof(r), NULL);
}

static void queues_on_purge(shard *s, uint32_t from, const void *payload, uint32_t bytes)
{
    ASSERT(bytes == sizeof(queues_purge_rec));
    queues_purge_rec r = *(const queues_purge_rec *)payload;
    queues_purge_local(s, &r);
    queues__send(s, from, Q_KIND_PURGE_REP, &r, sizeof(r), NULL);
}

static void queues_on_purge_rep(shard *s, uint32_t from, const void *payload, uint32_t bytes)
{
    (void)from;
    ASSERT(bytes == sizeof(queues_purge_rec));
    const queues_purge_rec *r = payload;
    purge_answered(s, r->cookie, r->found, r->purged);
}

/* ---- a channel or connection goes away ---- */

typedef struct {
    store_owner owner;
    uint32_t match;
} queues_gone_rec;

static void queues_owner_gone_local(shard *s, const store_owner *owner, store_owner_match match)
{
    queues *qs = s->queues;
    for (uint32_t i = 0; i < qs->by_id.slots_count; i++) {
        owned_queue *o = qs->by_id.slots[i].value;
        if (o == NULL) continue;
        bool last = false;
        if (store_queue_consumer_remove_owner(o->q, owner, match, &last) > 0) {
            uint32_t kept = 0;
            for (uint32_t k = 0; k < o->consumers_count; k++)
                if (!store_owner_matches(&o->consumers[k].owner, owner, match))
                    o->consumers[kept++] = o->consumers[k];
            o->consumers_count = kept;
            queues_sac_handover(o);
            queues_touch(s, o);
        }
        if (store_queue_requeue_owner(o->q, owner, match) > 0) {
            if (o->has_max_length || o->has_max_bytes) queues__enforce_length(s, o);
            queues__mark(qs, o);
        }
        queues_maybe_auto_delete(s, o);
    }
}

void queues_owner_gone(shard *s, const store_owner *owner, store_owner_match match)
{
    queues_gone_rec r = {*owner, (uint32_t)match};
    for (uint32_t sh = 0; sh < s->rt->shard_count; sh++) {
        if (sh == s->id)
            queues_owner_gone_local(s, owner, match);
        else
            queues__send(s, sh, Q_KIND_OWNER_GONE, &r, sizeof(r), NULL);
    }
}

static void queues_on_owner_gone(shard *s, uint32_t from, const void *payload, uint32_t bytes)
{
    (void)from;
    ASSERT(bytes == sizeof(queues_gone_rec));
    const queues_gone_rec *r = payload;
    queues_owner_gone_local(s, &r->owner, (store_owner_match)r->match);
}

void queues_register(void)
{
    shard_mbox_register(Q_KIND_STATS_REQ, queues_on_stats_req);
    shard_mbox_register(Q_KIND_STATS_REP, queues_on_stats_rep);
    shard_mbox_register(Q_KIND_PUBLISH, queues__on_publish);
    shard_mbox_register(Q_KIND_PUBLISH_ACK, queues__on_publish_ack);
    shard_mbox_register(Q_KIND_CONSUME, queues_on_consume);
    shard_mbox_register(Q_KIND_CONSUME_REP, queues_on_consume_rep);
    shard_mbox_register(Q_KIND_DELIVER, queues_on_deliver);
    shard_mbox_register(Q_KIND_SETTLE, queues_on_settle);
    shard_mbox_register(Q_KIND_CANCEL, queues_on_cancel);
    shard_mbox_register(Q_KIND_GET, queues_on_get);
    shard_mbox_register(Q_KIND_GET_REP, queues_on_get_rep);
    shard_mbox_register(Q_KIND_PURGE, queues_on_purge);
    shard_mbox_register(Q_KIND_PURGE_REP, queues_on_purge_rep);
    shard_mbox_register(Q_KIND_OWNER_GONE, queues_on_owner_gone);
    shard_mbox_register(Q_KIND_CANCELLED, queues_on_cancelled);
}
