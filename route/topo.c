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
 *
 * Durability: the sequencer writes every change that creates or removes
 * something durable to the definitions journal (store/defs.h) after applying
 * it and before spreading it, auto-delete cascades included. A declare or
 * bind it cannot write is taken back and answered 541; a delete it cannot
 * write is spread (every replica must agree) and answered 541. At start every
 * shard applies the journal's live set to its replicas (topo_create, see
 * route/topo_recover.c), so replicas start identical.
 */
#include "route/topo.h"

#include "core/assert.h"
#include "core/auth.h"
#include "core/log.h"
#include "core/runtime.h"
#include "net/amqp_table.h"
#include "net/amqp_types.h"
#include "route/route_map.h"
#include "store/defs.h"

#include <mimalloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

enum {
    TOPO_KIND_REQ = 1,
    TOPO_KIND_APPLY = 2,
    TOPO_KIND_RESULT = 3,
    TOPO_KIND_DONE = 4,
    TOPO_SEQUENCER_SHARD = TOPO_SEQUENCER_SHARD_ID,
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

/* An exchange deleted by an auto-delete cascade while the sequencer applied a change. */
typedef struct {
    uint8_t name_len;
    uint8_t name[LIMIT_NAME_BYTES_MAX];
} topo_cascade;

struct topo {
    shard *s;
    route_vhost **vhosts;
    uint32_t vhost_count;
    route_map pending;
    uint64_t req_id_next;
    /* Shard 0 only: */
    uint64_t queue_id_next;
    uint64_t queue_ids_reserved; /* ids below this are recorded as taken in the journal */
    store_defs *defs;            /* NULL: nothing is durable (no journal) */
    bool capturing;              /* record durable exchanges deleted by cascades */
    topo_cascade *cascades;
    uint32_t cascades_count, cascades_capacity;
    bool reserve_warned;
};

static topo_done_fn topo_done_cb;
static topo_queue_fn topo_queue_cb;

void topo_set_callbacks(topo_done_fn done, topo_queue_fn queue)
{
    ASSERT(done != NULL && queue != NULL);
    topo_done_cb = done;
    topo_queue_cb = queue;
}

/* The vhost hook on the sequencer: a durable exchange that an auto-delete cascade removed must
 * leave the journal with it. The name is copied: the exchange is freed right after. */
static void topo_on_exchange_deleted(void *ctx, const route_exchange_info *x)
{
    topo *t = ctx;
    if (!t->capturing || !x->durable) return;
    if (t->cascades_count == t->cascades_capacity) {
        uint32_t capacity = t->cascades_capacity ? t->cascades_capacity * 2 : 4;
        topo_cascade *c = mi_heap_realloc(t->s->heap, t->cascades, capacity * sizeof(*c));
        ASSERT(c != NULL);
        t->cascades = c;
        t->cascades_capacity = capacity;
    }
    topo_cascade *c = &t->cascades[t->cascades_count++];
    ASSERT(x->name.len <= LIMIT_NAME_BYTES_MAX);
    c->name_len = (uint8_t)x->name.len;
    memcpy(c->name, x->name.data, x->name.len);
}

/* Every shard: the journal's live set goes into the replicas, in the journal's order, so every
 * replica ends up the same; the queues this shard owns are created (before any connection). */
static void topo_recover_def(void *ctx, const store_defs_change *def)
{
    topo *t = ctx;
    route_vhost *vh = topo_vhost(t, def->vhost);
    ASSERT(vh != NULL); /* topo_recover_prepare dropped the vhosts that are gone */
    const route_queue_info *qi = NULL;
    route_error err;
    if (!topo__apply_def(vh, def, &qi, &err)) {
        LOG_ERROR("recovering a definition in vhost '%.*s' failed after its dry run: %s",
                  (int)def->vhost.len, (const char *)def->vhost.data, err.text);
        UNREACHABLE(); /* the dry run applied the same definitions to the same replicas */
    }
    if (qi == NULL || qi->shard != t->s->id) return;
    LOG_DEBUG("recovered durable queue '%.*s' in vhost '%.*s' (id %llu)", (int)qi->name.len,
              (const char *)qi->name.data, (int)def->vhost.len, (const char *)def->vhost.data,
              (unsigned long long)qi->queue_id);
    topo_queue_cb(t->s, def->vhost, qi, true);
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
    store_defs *defs = s->rt != NULL ? s->rt->defs : NULL;
    if (defs == NULL) return t;
    store_defs_each(defs, topo_recover_def, t);
    if (s->id == TOPO_SEQUENCER_SHARD) {
        t->defs = defs;
        t->queue_id_next = store_defs_queue_id_next(defs);
        ASSERT(t->queue_id_next >= 1);
        t->queue_ids_reserved = t->queue_id_next; /* the next queue reserves a block */
        for (uint32_t i = 0; i < n; i++)
            route_vhost_set_deleted_hook(t->vhosts[i], topo_on_exchange_deleted, t);
    }
    return t;
}

void topo_destroy(topo *t)
{
    for (uint32_t i = 0; i < t->vhost_count; i++) route_vhost_destroy(t->vhosts[i]);
    mi_free(t->vhosts);
    mi_free(t->cascades);
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

/* ---- the journal (shard 0) ---- */

static bool topo_exchange_durable(const route_vhost *vh, amqp_bytes name)
{
    const route_exchange *x = route_exchange_find(vh, name);
    return x != NULL && route_exchange_info_of(x)->durable;
}

/* Exclusive queues go with their connection, even when declared durable: never recorded. */
static bool topo_queue_durable(const route_vhost *vh, amqp_bytes name)
{
    const route_queue *q = route_queue_find(vh, name);
    if (q == NULL) return false;
    const route_queue_info *qi = route_queue_info_of(q);
    return qi->durable && !qi->exclusive;
}

/* Whether req creates or removes something the journal holds; asked before applying it (what
 * a delete removes is gone after). Bindings are durable when both their ends are. */
static bool topo_durable_target(const topo *t, const topo_request *req)
{
    const route_vhost *vh = t->defs != NULL ? topo_vhost(t, req->vhost) : NULL;
    if (vh == NULL) return false;
    switch (req->op) {
    case TOPO_EXCHANGE_DECLARE: return req->durable;
    case TOPO_QUEUE_DECLARE: return req->durable && !req->exclusive;
    case TOPO_EXCHANGE_DELETE: return topo_exchange_durable(vh, req->name);
    case TOPO_QUEUE_DELETE: return topo_queue_durable(vh, req->name);
    case TOPO_BIND:
    case TOPO_UNBIND:
        return topo_exchange_durable(vh, req->name) &&
               (req->destination_is_exchange ? topo_exchange_durable(vh, req->destination)
                                             : topo_queue_durable(vh, req->destination));
    }
    UNREACHABLE();
}

static bool topo_op_creates(topo_op op)
{
    return op == TOPO_EXCHANGE_DECLARE || op == TOPO_QUEUE_DECLARE || op == TOPO_BIND;
}

/* The journal's form of an applied change. Binding arguments are canonical (*owned, to free). */
static store_defs_change topo_change_of(const topo_request *req, const topo_reply *reply,
                                        uint8_t **owned)
{
    static const store_defs_op ops[] = {
        [TOPO_EXCHANGE_DECLARE] = STORE_DEFS_EXCHANGE_DECLARE,
        [TOPO_EXCHANGE_DELETE] = STORE_DEFS_EXCHANGE_DELETE,
        [TOPO_QUEUE_DECLARE] = STORE_DEFS_QUEUE_DECLARE,
        [TOPO_QUEUE_DELETE] = STORE_DEFS_QUEUE_DELETE,
        [TOPO_BIND] = STORE_DEFS_BIND,
        [TOPO_UNBIND] = STORE_DEFS_UNBIND,
    };
    ASSERT(req->op >= TOPO_EXCHANGE_DECLARE && req->op <= TOPO_UNBIND);
    store_defs_change c = {.op = ops[req->op], .vhost = req->vhost, .name = req->name};
    *owned = NULL;
    switch (req->op) {
    case TOPO_EXCHANGE_DECLARE:
    case TOPO_QUEUE_DECLARE:
        c.type = req->type;
        c.arguments = (amqp_bytes){req->arguments.data, req->arguments.len};
        c.durable = req->durable;
        c.auto_delete = req->auto_delete;
        c.internal = req->internal;
        c.queue_id = reply->queue_id;
        c.queue_shard = reply->queue_shard;
        break;
    case TOPO_QUEUE_DELETE: c.queue_id = reply->queue_id; break;
    case TOPO_EXCHANGE_DELETE: break;
    case TOPO_BIND:
    case TOPO_UNBIND: {
        uint32_t len = 0;
        *owned = route_binding_arguments_canonical(req->arguments, &len);
        c.destination = req->destination;
        c.destination_is_exchange = req->destination_is_exchange;
        c.routing_key = req->routing_key;
        c.arguments = (amqp_bytes){*owned, len};
        break;
    }
    }
    return c;
}

/* Takes back a declare or bind that could not be recorded: the replica is as before it. */
static void topo_take_back(topo *t, const topo_request *req)
{
    route_vhost *vh = topo_vhost(t, req->vhost);
    route_error err;
    bool ok = false, changed = false;
    switch (req->op) {
    case TOPO_EXCHANGE_DECLARE: /* new: no bindings yet, nothing cascades */
        ok = route_exchange_delete(vh, req->name, false, &changed, &err);
        break;
    case TOPO_QUEUE_DECLARE: { /* new: no bindings, no messages; its owner drops it */
        topo_request del = {.op = TOPO_QUEUE_DELETE, .vhost = req->vhost, .name = req->name,
                            .conn_id = ROUTE_CONN_ANY};
        topo_reply r;
        memset(&r, 0, sizeof(r));
        ok = topo_apply_queue_delete(t, vh, &del, &r, &err);
        changed = r.created;
        break;
    }
    case TOPO_BIND: {
        route_binding_spec spec = {.source = req->name,
                                   .destination = req->destination,
                                   .destination_is_exchange = req->destination_is_exchange,
                                   .routing_key = req->routing_key,
                                   .arguments = req->arguments,
                                   .conn_id = ROUTE_CONN_ANY,
                                   .keep_source = true};
        ok = route_binding_remove(vh, &spec, &changed, &err);
        break;
    }
    default: UNREACHABLE();
    }
    ASSERT(ok && changed);
}

static void topo_journal_failed(topo *t, const topo_request *req, bool durable, topo_reply *reply,
                                const char *why)
{
    if (!durable && t->cascades_count == 0) {
        /* Only the id reservation of a transient queue: it stands; ids may repeat after a
         * restart until a reservation is written (transient queues leave nothing behind). */
        if (!t->reserve_warned) LOG_ERROR("definitions journal: cannot reserve queue ids: %s", why);
        t->reserve_warned = true;
        return;
    }
    static const char *const verbs[] = {
        [TOPO_EXCHANGE_DECLARE] = "declare exchange", [TOPO_EXCHANGE_DELETE] = "delete exchange",
        [TOPO_QUEUE_DECLARE] = "declare queue",       [TOPO_QUEUE_DELETE] = "delete queue",
        [TOPO_BIND] = "bind to exchange",             [TOPO_UNBIND] = "unbind from exchange",
    };
    bool take_back = topo_op_creates(req->op);
    LOG_ERROR("definitions journal: cannot record: %s '%.*s' in vhost '%.*s' (%s): %s",
              verbs[req->op], (int)req->name.len, (const char *)req->name.data,
              (int)req->vhost.len, (const char *)req->vhost.data,
              take_back ? "refused" : "done in memory only until the journal is written again",
              why);
    reply->reply_code = AMQP_REPLY_INTERNAL_ERROR;
    snprintf(reply->text, sizeof(reply->text),
             "cannot %s '%.*s' in vhost '%.*s' durably: the definitions journal failed (%.64s)",
             verbs[req->op], (int)req->name.len, (const char *)req->name.data,
             (int)req->vhost.len, (const char *)req->vhost.data, why);
    if (!take_back) return; /* a delete has happened: every replica must see it */
    topo_take_back(t, req);
    reply->created = false;
}

/* Records an applied change (and the exchanges its cascade deleted) durably. On failure reply
 * becomes 541, and a declare or bind is taken back (reply->created false). */
static void topo_journal(topo *t, const topo_request *req, bool durable, topo_reply *reply)
{
    ASSERT(t->defs != NULL && reply->created);
    uint32_t capacity = 2 + t->cascades_count;
    store_defs_change stack[8];
    store_defs_change *changes = capacity <= ARRAY_LEN(stack) ? stack : malloc(capacity * sizeof(*changes));
    ASSERT(changes != NULL);
    uint32_t n = 0;
    uint8_t *owned = NULL;
    uint64_t reserve = 0;
    if (req->op == TOPO_QUEUE_DECLARE && reply->queue_id >= t->queue_ids_reserved) {
        reserve = reply->queue_id + LIMIT_DEFS_QUEUE_ID_BLOCK;
        changes[n++] = (store_defs_change){.op = STORE_DEFS_QUEUE_IDS, .queue_id = reserve};
    }
    if (durable) changes[n++] = topo_change_of(req, reply, &owned);
    for (uint32_t i = 0; i < t->cascades_count; i++)
        changes[n++] = (store_defs_change){
            .op = STORE_DEFS_EXCHANGE_DELETE,
            .vhost = req->vhost,
            .name = {t->cascades[i].name, t->cascades[i].name_len},
        };
    ASSERT(n <= capacity);
    store_defs_error err;
    bool ok = n == 0 || store_defs_commit(t->defs, changes, n, &err);
    free(owned);
    if (changes != stack) free(changes);
    if (ok && reserve != 0) t->queue_ids_reserved = reserve;
    if (!ok) return topo_journal_failed(t, req, durable, reply, err.text);
    if (durable && req->op == TOPO_QUEUE_DECLARE)
        LOG_DEBUG("recorded durable queue '%.*s' in vhost '%.*s' (id %llu, shard %u)",
                  (int)req->name.len, (const char *)req->name.data, (int)req->vhost.len,
                  (const char *)req->vhost.data, (unsigned long long)reply->queue_id,
                  reply->queue_shard);
}

/* ---- the sequencer (shard 0) ---- */

/* Tells the requester (and, when something changed, every other shard). */
static void topo_spread(topo *t, const topo_request *req, const topo_reply *reply,
                        topo_wire *head)
{
    shard *s = t->s;
    uint32_t origin = head->origin, shards = s->rt->shard_count;
    head->reply_code = reply->reply_code;
    head->queue_id = reply->queue_id;
    head->queue_shard = reply->queue_shard;
    if (reply->created) head->flags |= TOPO_F_CREATED;
    if (reply->created) {
        for (uint32_t to = 0; to < shards; to++) {
            if (to == s->id) continue;
            head->expected = to == origin ? shards - 2 : 0;
            topo_send(s, to, TOPO_KIND_APPLY, req, head, to == origin ? reply->text : NULL);
        }
    } else if (origin != s->id) {
        /* Nothing changed: only the requester hears back. */
        topo_send(s, origin, TOPO_KIND_RESULT, req, head, reply->text);
    }
    if (origin != s->id) return;
    topo_pending *p = topo_pending_find(t, head->req_id);
    ASSERT(p != NULL);
    p->reply = *reply;
    p->applied = true;
    p->expected = reply->created ? shards - 1 : 0;
    topo_pending_maybe_complete(t, p);
}

/* Validates and applies req on shard 0, records it if durable, then spreads it. */
static void topo_sequence(topo *t, const topo_request *req, uint32_t origin, uint64_t req_id,
                          bool quiet)
{
    ASSERT(t->s->id == TOPO_SEQUENCER_SHARD);
    topo_reply reply;
    memset(&reply, 0, sizeof(reply));
    route_error err;
    err.reply_code = AMQP_REPLY_SUCCESS;
    err.text[0] = '\0';
    bool durable = topo_durable_target(t, req);
    t->cascades_count = 0;
    t->capturing = t->defs != NULL;
    bool ok = topo_apply(t, req, &reply, &err);
    t->capturing = false;
    reply.reply_code = ok ? AMQP_REPLY_SUCCESS : err.reply_code;
    snprintf(reply.text, sizeof(reply.text), "%s", ok ? "" : err.text);
    if (!ok) reply.created = false;
    if (reply.created && t->defs != NULL) topo_journal(t, req, durable, &reply);
    topo_wire head;
    memset(&head, 0, sizeof(head));
    head.origin = origin;
    head.req_id = req_id;
    head.flags = quiet ? TOPO_F_QUIET : 0;
    topo_spread(t, req, &reply, &head);
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
    const char *text = topo_decode(payload, bytes, &req, &w);
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
    p->reply.reply_code = w->reply_code; /* 541: applied, but not recorded in the journal */
    snprintf(p->reply.text, sizeof(p->reply.text), "%.*s", (int)w->text_len, text);
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

bool topo_idle(const topo *t)
{
    for (uint32_t i = 0; i < t->pending.slots_count; i++) {
        const topo_pending *p = t->pending.slots[i].value;
        if (p != NULL && !p->applied) return false;
    }
    return true;
}

uint32_t topo_queue_placement(const config *cfg, uint32_t shard_count, amqp_bytes vhost,
                              amqp_bytes name)
{
    ASSERT(shard_count >= 1 && vhost.len <= LIMIT_NAME_BYTES_MAX && name.len <= LIMIT_NAME_BYTES_MAX);
    for (uint32_t i = 0; i < cfg->placement_pins_count; i++) {
        const config_placement_pin *pin = &cfg->placement_pins[i];
        if (amqp_bytes_equal(amqp_cstr(pin->vhost), vhost) &&
            amqp_bytes_equal(amqp_cstr(pin->queue), name)) {
            ASSERT(pin->shard < shard_count); /* config_validate */
            return pin->shard;
        }
    }
    uint8_t key[2 * LIMIT_NAME_BYTES_MAX + 1];
    if (vhost.len > 0) memcpy(key, vhost.data, vhost.len);
    key[vhost.len] = 0; /* the NUL separates vhost and name */
    if (name.len > 0) memcpy(key + vhost.len + 1, name.data, name.len);
    return (uint32_t)(XXH3_64bits(key, vhost.len + 1 + name.len) % shard_count);
}
