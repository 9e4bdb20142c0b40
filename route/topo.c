/*
 * Topology changes across shards (see route/topo.h for the protocol). Each
 * shard owns one `topo`: its replicas (one route_vhost per vhost) and the
 * changes it requested that are still waiting for other shards. Records:
 *   REQ    requester -> shard 0: a change to validate and apply first;
 *   APPLY  shard 0 -> every other shard: apply it; to the requester it also
 *          carries the outcome and how many DONE records to wait for;
 *   RESULT shard 0 -> requester: an error, or a change that altered nothing;
 *   DONE   any shard -> requester: "applied".
 * The requester completes when it has applied the change itself and every
 * other shard has said DONE.
 */
#include "route/topo.h"

#include "core/assert.h"
#include "core/auth.h"
#include "core/log.h"
#include "core/runtime.h"
#include "net/amqp_table.h"
#include "net/amqp_types.h"
#include "route/route_map.h"

#include <mimalloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum {
    TOPO_KIND_REQ = 1,
    TOPO_KIND_APPLY = 2,
    TOPO_KIND_RESULT = 3,
    TOPO_KIND_DONE = 4,
    TOPO_SEQUENCER_SHARD = 0,
};

enum {
    TOPO_F_DURABLE = 1u << 0,
    TOPO_F_AUTO_DELETE = 1u << 1,
    TOPO_F_INTERNAL = 1u << 2,
    TOPO_F_EXCLUSIVE = 1u << 3,
    TOPO_F_IF_UNUSED = 1u << 4,
    TOPO_F_DEST_EXCHANGE = 1u << 5,
    TOPO_F_CREATED = 1u << 6,
    TOPO_F_QUIET = 1u << 7,
};

/* The record as it crosses the mailbox: this header, then vhost, name,
 * destination, routing key, type, arguments and reply text, back to back. */
typedef struct {
    uint8_t op;
    uint8_t flags;
    uint16_t reply_code;
    uint32_t origin;
    uint64_t req_id;
    uint64_t conn_id;
    uint64_t queue_id;
    uint32_t queue_shard;
    uint32_t expected;
    uint8_t vhost_len, name_len, destination_len, routing_key_len, type_len, text_len;
    uint8_t server_named;
    uint8_t pad;
    uint32_t arguments_len;
} topo_wire;

#define TOPO_WIRE_BYTES_MAX (sizeof(topo_wire) + 6u * 256u + LIMIT_TOPO_ARGUMENTS_BYTES_MAX)

typedef struct {
    uint64_t req_id;
    uint64_t cookie;
    uint32_t expected; /* DONE records to wait for; known once applied */
    uint32_t done;
    bool applied;
    bool quiet;
    topo_reply reply;
} topo_pending;

struct topo {
    shard *s;
    route_vhost **vhosts;
    uint32_t vhost_count;
    route_map pending;
    uint64_t req_id_next;
    uint64_t queue_id_next; /* shard 0 only */
};

static topo_done_fn topo_done_cb;
static topo_queue_fn topo_queue_cb;

void topo_set_callbacks(topo_done_fn done, topo_queue_fn queue)
{
    ASSERT(done != NULL && queue != NULL);
    topo_done_cb = done;
    topo_queue_cb = queue;
}

topo *topo_create(shard *s)
{
    topo *t = mi_heap_zalloc(s->heap, sizeof(*t));
    ASSERT(t != NULL);
    t->s = s;
    uint32_t n = auth_vhosts_count(s->auth);
    t->vhosts = mi_heap_zalloc(s->heap, sizeof(*t->vhosts) * (n ? n : 1));
    ASSERT(t->vhosts != NULL);
    for (uint32_t i = 0; i < n; i++) t->vhosts[i] = route_vhost_create(amqp_cstr(auth_vhost_at(s->auth, i)));
    t->vhost_count = n;
    route_map_init(&t->pending);
    t->req_id_next = 1;
    t->queue_id_next = 1;
    return t;
}

void topo_destroy(topo *t)
{
    for (uint32_t i = 0; i < t->vhost_count; i++) route_vhost_destroy(t->vhosts[i]);
    mi_free(t->vhosts);
    route_map_iter it;
    (void)it;
    route_map_free(&t->pending); /* pending entries die with the shard heap */
    mi_free(t);
}

route_vhost *topo_vhost(const topo *t, amqp_bytes vhost)
{
    for (uint32_t i = 0; i < t->vhost_count; i++)
        if (amqp_bytes_equal(route_vhost_name(t->vhosts[i]), vhost)) return t->vhosts[i];
    return NULL;
}

/* ---- wire ---- */

static uint32_t topo_encode(const topo_request *req, const topo_wire *head, const char *text,
                            uint8_t *out)
{
    topo_wire *w = (topo_wire *)out;
    *w = *head;
    w->op = (uint8_t)req->op;
    w->vhost_len = (uint8_t)req->vhost.len;
    w->name_len = (uint8_t)req->name.len;
    w->destination_len = (uint8_t)req->destination.len;
    w->routing_key_len = (uint8_t)req->routing_key.len;
    w->type_len = (uint8_t)req->type.len;
    size_t text_len = text ? strlen(text) : 0;
    w->text_len = (uint8_t)(text_len > 255 ? 255 : text_len);
    w->arguments_len = req->arguments.len;
    w->flags |= (uint8_t)((req->durable ? TOPO_F_DURABLE : 0) | (req->auto_delete ? TOPO_F_AUTO_DELETE : 0) |
                          (req->internal ? TOPO_F_INTERNAL : 0) | (req->exclusive ? TOPO_F_EXCLUSIVE : 0) |
                          (req->if_unused ? TOPO_F_IF_UNUSED : 0) |
                          (req->destination_is_exchange ? TOPO_F_DEST_EXCHANGE : 0));
    w->conn_id = req->conn_id;
    w->server_named = req->server_named;
    if (head->queue_shard == 0 && head->queue_id == 0) w->queue_shard = req->queue_shard;
    uint8_t *p = out + sizeof(*w);
    const amqp_bytes parts[] = {req->vhost, req->name, req->destination, req->routing_key, req->type,
                                {req->arguments.data, req->arguments.len}};
    for (size_t i = 0; i < ARRAY_LEN(parts); i++) {
        if (parts[i].len) memcpy(p, parts[i].data, parts[i].len);
        p += parts[i].len;
    }
    if (w->text_len) memcpy(p, text, w->text_len);
    p += w->text_len;
    return (uint32_t)(p - out);
}

static const char *topo_decode(const uint8_t *in, uint32_t len, topo_request *req, const topo_wire **head)
{
    ASSERT(len >= sizeof(topo_wire));
    const topo_wire *w = (const topo_wire *)in;
    *head = w;
    memset(req, 0, sizeof(*req));
    req->op = (topo_op)w->op;
    const uint8_t *p = in + sizeof(*w);
    req->vhost = (amqp_bytes){p, w->vhost_len};
    p += w->vhost_len;
    req->name = (amqp_bytes){p, w->name_len};
    p += w->name_len;
    req->destination = (amqp_bytes){p, w->destination_len};
    p += w->destination_len;
    req->routing_key = (amqp_bytes){p, w->routing_key_len};
    p += w->routing_key_len;
    req->type = (amqp_bytes){p, w->type_len};
    p += w->type_len;
    req->arguments = (amqp_table){p, w->arguments_len};
    p += w->arguments_len;
    ASSERT((uint32_t)(p - in) + w->text_len <= len);
    req->durable = w->flags & TOPO_F_DURABLE;
    req->auto_delete = w->flags & TOPO_F_AUTO_DELETE;
    req->internal = w->flags & TOPO_F_INTERNAL;
    req->exclusive = w->flags & TOPO_F_EXCLUSIVE;
    req->if_unused = w->flags & TOPO_F_IF_UNUSED;
    req->destination_is_exchange = w->flags & TOPO_F_DEST_EXCHANGE;
    req->conn_id = w->conn_id;
    req->queue_shard = w->queue_shard;
    req->server_named = w->server_named;
    return (const char *)p;
}

static void topo_send(shard *s, uint32_t to, uint16_t kind, const topo_request *req,
                      const topo_wire *head, const char *text)
{
    uint8_t buf[TOPO_WIRE_BYTES_MAX];
    uint32_t n = topo_encode(req, head, text, buf);
    shard_mbox_send_control(s, to, kind, buf, n);
}

/* ---- applying a change to one replica ---- */

static void topo_error(route_error *err, uint16_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void topo_error(route_error *err, uint16_t code, const char *fmt, ...)
{
    err->reply_code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof(err->text), fmt, ap);
    va_end(ap);
}

/* Two argument values are equal when they are the same number (whatever the
 * integer width) or the same bytes of the same type, as Erlang's == sees them. */
static bool topo_field_equal(const amqp_field *a, const amqp_field *b)
{
    int64_t ia = 0, ib = 0;
    bool a_int = amqp_field_int64(a, &ia), b_int = amqp_field_int64(b, &ib);
    if (a_int || b_int) return a_int && b_int && ia == ib;
    if (a->type != b->type) return false;
    switch (a->type) {
    case AMQP_FIELD_LONGSTR:
    case AMQP_FIELD_BYTES:
        return amqp_bytes_equal(a->v.bytes, b->v.bytes);
    case AMQP_FIELD_BOOL:
        return a->v.boolean == b->v.boolean;
    default:
        return memcmp(&a->v, &b->v, sizeof(a->v)) == 0;
    }
}

/* "the value '1000' of type 'signedint'" or "none", as RabbitMQ words it. */
static void topo_field_describe(const amqp_field *f, char *out, size_t cap)
{
    int64_t n;
    if (f == NULL)
        snprintf(out, cap, "none");
    else if (amqp_field_int64(f, &n))
        snprintf(out, cap, "the value '%lld' of type '%s'", (long long)n, amqp_field_type_name(f->type));
    else if (f->type == AMQP_FIELD_LONGSTR)
        snprintf(out, cap, "the value '%.*s' of type 'longstr'",
                 (int)(f->v.bytes.len > 64 ? 64 : f->v.bytes.len), (const char *)f->v.bytes.data);
    else if (f->type == AMQP_FIELD_BOOL)
        snprintf(out, cap, "the value '%s' of type 'bool'", f->v.boolean ? "true" : "false");
    else
        snprintf(out, cap, "a value of type '%s'", amqp_field_type_name(f->type));
}

/* RabbitMQ's equivalence check for a redeclared queue. */
static bool topo_queue_equivalent(const route_queue_info *q, const topo_request *req,
                                  amqp_bytes vhost, route_error *err)
{
    if (q->exclusive && q->owner_conn_id != req->conn_id) {
        topo_error(err, AMQP_REPLY_RESOURCE_LOCKED,
                   "cannot obtain exclusive access to locked queue '%.*s' in vhost '%.*s'. It "
                   "could be originally declared on another connection or the exclusive "
                   "property value does not match that of the original declaration.",
                   (int)q->name.len, (const char *)q->name.data, (int)vhost.len,
                   (const char *)vhost.data);
        return false;
    }
    const char *arg = NULL;
    bool have = false, want = false;
    if (q->durable != req->durable) {
        arg = "durable", have = q->durable, want = req->durable;
    } else if (q->auto_delete != req->auto_delete) {
        arg = "auto_delete", have = q->auto_delete, want = req->auto_delete;
    } else if (q->exclusive != req->exclusive) {
        topo_error(err, AMQP_REPLY_RESOURCE_LOCKED,
                   "cannot obtain exclusive access to locked queue '%.*s' in vhost '%.*s'. It "
                   "could be originally declared on another connection or the exclusive "
                   "property value does not match that of the original declaration.",
                   (int)q->name.len, (const char *)q->name.data, (int)vhost.len,
                   (const char *)vhost.data);
        return false;
    }
    if (arg != NULL) {
        topo_error(err, AMQP_REPLY_PRECONDITION_FAILED,
                   "inequivalent arg '%s' for queue '%.*s' in vhost '%.*s': received '%s' but "
                   "current is '%s'",
                   arg, (int)q->name.len, (const char *)q->name.data, (int)vhost.len,
                   (const char *)vhost.data, want ? "true" : "false", have ? "true" : "false");
        return false;
    }
    /* RabbitMQ compares the arguments it knows, by value; others may differ. */
    static const char *const keys[] = {
        "x-expires",          "x-message-ttl",       "x-dead-letter-exchange",
        "x-dead-letter-routing-key", "x-max-length", "x-max-length-bytes",
        "x-max-priority",     "x-overflow",          "x-queue-mode",
        "x-queue-type",       "x-single-active-consumer",
    };
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        amqp_field have_v, want_v;
        bool have_k = amqp_table_get(q->arguments, amqp_cstr(keys[i]), &have_v);
        bool want_k = amqp_table_get(req->arguments, amqp_cstr(keys[i]), &want_v);
        if (have_k == want_k && (!have_k || topo_field_equal(&have_v, &want_v))) continue;
        char want_text[128], have_text[128];
        topo_field_describe(want_k ? &want_v : NULL, want_text, sizeof(want_text));
        topo_field_describe(have_k ? &have_v : NULL, have_text, sizeof(have_text));
        topo_error(err, AMQP_REPLY_PRECONDITION_FAILED,
                   "inequivalent arg '%s' for queue '%.*s' in vhost '%.*s': received %s but current "
                   "is %s",
                   keys[i], (int)q->name.len, (const char *)q->name.data, (int)vhost.len,
                   (const char *)vhost.data, want_text, have_text);
        return false;
    }
    return true;
}

static bool topo_apply_queue_declare(topo *t, route_vhost *vh, const topo_request *req,
                                     topo_reply *reply, route_error *err)
{
    route_queue *q = route_queue_find(vh, req->name);
    if (q != NULL) {
        const route_queue_info *qi = route_queue_info_of(q);
        if (!topo_queue_equivalent(qi, req, req->vhost, err)) return false;
        reply->queue_id = qi->queue_id;
        reply->queue_shard = qi->shard;
        reply->created = false;
        return true;
    }
    if (req->name.len >= 4 && memcmp(req->name.data, "amq.", 4) == 0 && !req->server_named) {
        topo_error(err, AMQP_REPLY_ACCESS_REFUSED,
                   "queue name '%.*s' contains reserved prefix 'amq.*'", (int)req->name.len,
                   (const char *)req->name.data);
        return false;
    }
    if (reply->queue_id == 0) reply->queue_id = t->queue_id_next++; /* the sequencer assigns */
    reply->queue_shard = req->queue_shard;
    route_queue_spec spec = {.name = req->name,
                             .queue_id = reply->queue_id,
                             .shard = req->queue_shard,
                             .durable = req->durable,
                             .exclusive = req->exclusive,
                             .auto_delete = req->auto_delete,
                             .owner_conn_id = req->conn_id,
                             .arguments = req->arguments};
    q = route_queue_add(vh, &spec);
    ASSERT(q != NULL);
    reply->created = true;
    if (spec.shard == t->s->id) topo_queue_cb(t->s, req->vhost, route_queue_info_of(q), true);
    return true;
}

static bool topo_apply_queue_delete(topo *t, route_vhost *vh, const topo_request *req,
                                    topo_reply *reply, route_error *err)
{
    route_queue *q = route_queue_find(vh, req->name);
    reply->created = false;
    if (q == NULL) return true; /* RabbitMQ: deleting a missing queue is fine */
    const route_queue_info *qi = route_queue_info_of(q);
    if (qi->exclusive && req->conn_id != ROUTE_CONN_ANY && qi->owner_conn_id != req->conn_id) {
        topo_error(err, AMQP_REPLY_RESOURCE_LOCKED,
                   "cannot obtain exclusive access to locked queue '%.*s' in vhost '%.*s'",
                   (int)qi->name.len, (const char *)qi->name.data, (int)req->vhost.len,
                   (const char *)req->vhost.data);
        return false;
    }
    reply->queue_id = qi->queue_id;
    reply->queue_shard = qi->shard;
    reply->created = true; /* "something changed" */
    if (qi->shard == t->s->id) topo_queue_cb(t->s, req->vhost, qi, false);
    route_queue_remove(vh, q);
    return true;
}

/* Applies req to this shard's replica. On the sequencer this validates; on
 * the other shards the same change succeeds identically. */
static bool topo_apply(topo *t, const topo_request *req, topo_reply *reply, route_error *err)
{
    route_vhost *vh = topo_vhost(t, req->vhost);
    if (vh == NULL) {
        topo_error(err, AMQP_REPLY_NOT_FOUND, "no vhost '%.*s'", (int)req->vhost.len,
                   (const char *)req->vhost.data);
        return false;
    }
    switch (req->op) {
    case TOPO_EXCHANGE_DECLARE: {
        route_exchange_spec spec = {.name = req->name,
                                    .type = req->type,
                                    .durable = req->durable,
                                    .auto_delete = req->auto_delete,
                                    .internal = req->internal,
                                    .arguments = req->arguments};
        return route_exchange_declare(vh, &spec, NULL, &reply->created, err);
    }
    case TOPO_EXCHANGE_DELETE:
        return route_exchange_delete(vh, req->name, req->if_unused, &reply->created, err);
    case TOPO_QUEUE_DECLARE:
        return topo_apply_queue_declare(t, vh, req, reply, err);
    case TOPO_QUEUE_DELETE:
        return topo_apply_queue_delete(t, vh, req, reply, err);
    case TOPO_BIND:
    case TOPO_UNBIND: {
        route_binding_spec spec = {.source = req->name,
                                   .destination = req->destination,
                                   .destination_is_exchange = req->destination_is_exchange,
                                   .routing_key = req->routing_key,
                                   .arguments = req->arguments,
                                   .conn_id = req->conn_id};
        if (req->op == TOPO_BIND) return route_binding_add(vh, &spec, &reply->created, err);
        return route_binding_remove(vh, &spec, &reply->created, err);
    }
    }
    UNREACHABLE();
}

/* ---- the requester's side ---- */

static topo_pending *topo_pending_find(topo *t, uint64_t req_id)
{
    route_map_iter it;
    for (topo_pending *p = route_map_first(&t->pending, req_id, &it); p; p = route_map_next(&it))
        if (p->req_id == req_id) return p;
    return NULL;
}

static void topo_pending_maybe_complete(topo *t, topo_pending *p)
{
    if (!p->applied || p->done < p->expected) return;
    ASSERT(p->done == p->expected);
    route_map_remove(&t->pending, p->req_id, p);
    if (!p->quiet) topo_done_cb(t->s, p->cookie, &p->reply);
    mi_free(p);
}

/* ---- the sequencer (shard 0) ---- */

/* Validates and applies req on shard 0, then spreads it. */
static void topo_sequence(topo *t, const topo_request *req, uint32_t origin, uint64_t req_id,
                          bool quiet)
{
    shard *s = t->s;
    ASSERT(s->id == TOPO_SEQUENCER_SHARD);
    topo_reply reply;
    memset(&reply, 0, sizeof(reply));
    route_error err;
    err.reply_code = AMQP_REPLY_SUCCESS;
    err.text[0] = '\0';
    topo_wire head;
    memset(&head, 0, sizeof(head));
    head.origin = origin;
    head.req_id = req_id;
    head.flags = quiet ? TOPO_F_QUIET : 0;
    bool ok = topo_apply(t, req, &reply, &err);
    reply.reply_code = ok ? AMQP_REPLY_SUCCESS : err.reply_code;
    snprintf(reply.text, sizeof(reply.text), "%s", ok ? "" : err.text);
    head.reply_code = reply.reply_code;
    head.queue_id = reply.queue_id;
    head.queue_shard = reply.queue_shard;
    if (reply.created) head.flags |= TOPO_F_CREATED;
    uint32_t shards = s->rt->shard_count;
    if (!ok || !reply.created) {
        /* Nothing changed: only the requester hears back. */
        if (origin == s->id) {
            topo_pending *p = topo_pending_find(t, req_id);
            ASSERT(p != NULL);
            p->reply = reply;
            p->applied = true;
            p->expected = 0;
            topo_pending_maybe_complete(t, p);
        } else {
            topo_send(s, origin, TOPO_KIND_RESULT, req, &head, reply.text);
        }
        return;
    }
    for (uint32_t to = 0; to < shards; to++) {
        if (to == s->id) continue;
        head.expected = to == origin ? shards - 2 : 0;
        topo_send(s, to, TOPO_KIND_APPLY, req, &head, NULL);
    }
    if (origin == s->id) {
        topo_pending *p = topo_pending_find(t, req_id);
        ASSERT(p != NULL);
        p->reply = reply;
        p->applied = true;
        p->expected = shards - 1;
        topo_pending_maybe_complete(t, p);
    }
}

/* ---- mailbox handlers ---- */

static void topo_on_req(shard *s, uint32_t from, const void *payload, uint32_t bytes)
{
    (void)from;
    topo_request req;
    const topo_wire *w;
    topo_decode(payload, bytes, &req, &w);
    topo_sequence(s->topo, &req, w->origin, w->req_id, w->flags & TOPO_F_QUIET);
}

static void topo_on_apply(shard *s, uint32_t from, const void *payload, uint32_t bytes)
{
    ASSERT(from == TOPO_SEQUENCER_SHARD);
    topo *t = s->topo;
    topo_request req;
    const topo_wire *w;
    topo_decode(payload, bytes, &req, &w);
    if (req.op == TOPO_BIND || req.op == TOPO_UNBIND || req.op == TOPO_QUEUE_DELETE)
        req.conn_id = ROUTE_CONN_ANY; /* checked by the sequencer already */
    topo_reply reply;
    memset(&reply, 0, sizeof(reply));
    reply.queue_id = w->queue_id;
    reply.queue_shard = w->queue_shard;
    req.queue_shard = w->queue_shard;
    route_error err;
    bool ok = topo_apply(t, &req, &reply, &err);
    if (!ok)
        LOG_ERROR("topology replica diverged applying op %d: %s", (int)req.op, err.text);
    ASSERT(ok);
    if (w->origin != s->id) {
        topo_wire head;
        memset(&head, 0, sizeof(head));
        head.req_id = w->req_id;
        head.origin = w->origin;
        topo_request none;
        memset(&none, 0, sizeof(none));
        none.op = req.op;
        topo_send(s, w->origin, TOPO_KIND_DONE, &none, &head, NULL);
        return;
    }
    topo_pending *p = topo_pending_find(t, w->req_id);
    ASSERT(p != NULL);
    p->reply.reply_code = AMQP_REPLY_SUCCESS;
    p->reply.created = w->flags & TOPO_F_CREATED;
    p->reply.queue_id = w->queue_id;
    p->reply.queue_shard = w->queue_shard;
    p->applied = true;
    p->expected = w->expected;
    topo_pending_maybe_complete(t, p);
}

static void topo_on_result(shard *s, uint32_t from, const void *payload, uint32_t bytes)
{
    ASSERT(from == TOPO_SEQUENCER_SHARD);
    topo_request req;
    const topo_wire *w;
    const char *text = topo_decode(payload, bytes, &req, &w);
    topo_pending *p = topo_pending_find(s->topo, w->req_id);
    ASSERT(p != NULL);
    p->reply.reply_code = w->reply_code;
    snprintf(p->reply.text, sizeof(p->reply.text), "%.*s", (int)w->text_len, text);
    p->reply.created = w->flags & TOPO_F_CREATED;
    p->reply.queue_id = w->queue_id;
    p->reply.queue_shard = w->queue_shard;
    p->applied = true;
    p->expected = 0;
    topo_pending_maybe_complete(s->topo, p);
}

static void topo_on_done(shard *s, uint32_t from, const void *payload, uint32_t bytes)
{
    (void)from;
    ASSERT(bytes >= sizeof(topo_wire));
    const topo_wire *w = payload;
    topo_pending *p = topo_pending_find(s->topo, w->req_id);
    ASSERT(p != NULL);
    p->done++;
    topo_pending_maybe_complete(s->topo, p);
}

void topo_register(void)
{
    shard_mbox_register(TOPO_KIND_REQ, topo_on_req);
    shard_mbox_register(TOPO_KIND_APPLY, topo_on_apply);
    shard_mbox_register(TOPO_KIND_RESULT, topo_on_result);
    shard_mbox_register(TOPO_KIND_DONE, topo_on_done);
}

/* ---- submit ---- */

static void topo_submit_common(shard *s, const topo_request *req, uint64_t cookie, bool quiet)
{
    topo *t = s->topo;
    ASSERT(req->arguments.len <= LIMIT_TOPO_ARGUMENTS_BYTES_MAX);
    topo_pending *p = mi_heap_zalloc(s->heap, sizeof(*p));
    ASSERT(p != NULL);
    p->req_id = t->req_id_next++;
    p->cookie = cookie;
    p->quiet = quiet;
    route_map_insert(&t->pending, p->req_id, p);
    if (s->id == TOPO_SEQUENCER_SHARD) {
        topo_sequence(t, req, s->id, p->req_id, quiet);
        return;
    }
    topo_wire head;
    memset(&head, 0, sizeof(head));
    head.origin = s->id;
    head.req_id = p->req_id;
    head.flags = quiet ? TOPO_F_QUIET : 0;
    topo_send(s, TOPO_SEQUENCER_SHARD, TOPO_KIND_REQ, req, &head, NULL);
}

void topo_submit(shard *s, const topo_request *req, uint64_t cookie)
{
    topo_submit_common(s, req, cookie, false);
}

void topo_submit_quiet(shard *s, const topo_request *req)
{
    topo_submit_common(s, req, 0, true);
}
