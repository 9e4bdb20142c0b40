/*
 * Recovering the topology from the definitions journal (store/defs.h) at start-up. The main
 * thread prepares the journal's live set once, before any shard exists (topo_recover_prepare);
 * every shard then applies the same live set, in the same order, to its own replicas
 * (topo_create), so the replicas start identical and every queue keeps the id and the owner
 * shard it was recorded with. After prepare, every definition names a vhost of the user store
 * and an owner shard below the shard count, and the whole live set applies cleanly to fresh
 * replicas in store_defs_each order: shards assert that.
 */
#include "route/topo.h"

#include "core/assert.h"
#include "core/auth.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool topo__apply_def(route_vhost *vh, const store_defs_change *def, const route_queue_info **queue,
                     route_error *err)
{
    ASSERT(vh != NULL && def != NULL && queue != NULL);
    *queue = NULL;
    amqp_table args = {def->arguments.data, def->arguments.len};
    switch (def->op) {
    case STORE_DEFS_EXCHANGE_DECLARE: {
        route_exchange_spec spec = {.name = def->name,
                                    .type = def->type,
                                    .durable = def->durable,
                                    .auto_delete = def->auto_delete,
                                    .internal = def->internal,
                                    .arguments = args};
        return route_exchange_declare(vh, &spec, NULL, NULL, err);
    }
    case STORE_DEFS_QUEUE_DECLARE: {
        route_queue_spec spec = {.name = def->name,
                                 .queue_id = def->queue_id,
                                 .shard = def->queue_shard,
                                 .durable = def->durable,
                                 .auto_delete = def->auto_delete,
                                 .arguments = args};
        route_queue *q = route_queue_add(vh, &spec);
        if (q == NULL) {
            err->reply_code = AMQP_REPLY_PRECONDITION_FAILED;
            snprintf(err->text, sizeof(err->text), "queue '%.*s' exists already",
                     (int)def->name.len, (const char *)def->name.data);
            return false;
        }
        *queue = route_queue_info_of(q);
        return true;
    }
    case STORE_DEFS_BIND: {
        route_binding_spec spec = {.source = def->name,
                                   .destination = def->destination,
                                   .destination_is_exchange = def->destination_is_exchange,
                                   .routing_key = def->routing_key,
                                   .arguments = args,
                                   .conn_id = ROUTE_CONN_ANY};
        return route_binding_add(vh, &spec, NULL, err);
    }
    default:
        UNREACHABLE(); /* the live set holds declares and binds only */
    }
}

/* Changes collected while walking the live set: deep copies, since committing changes the set
 * their slices would point into. */
typedef struct {
    store_defs_change *changes;
    uint8_t **blocks;
    uint32_t count, capacity;
} topo_batch;

static void topo_batch_add(topo_batch *b, const store_defs_change *c)
{
    if (b->count == b->capacity) {
        b->capacity = b->capacity ? b->capacity * 2 : 16;
        b->changes = realloc(b->changes, b->capacity * sizeof(*b->changes));
        b->blocks = realloc(b->blocks, b->capacity * sizeof(*b->blocks));
        ASSERT(b->changes != NULL && b->blocks != NULL);
    }
    store_defs_change copy = *c;
    amqp_bytes *parts[] = {&copy.vhost, &copy.name, &copy.destination, &copy.routing_key,
                           &copy.type, &copy.arguments};
    size_t bytes = 0;
    for (size_t i = 0; i < ARRAY_LEN(parts); i++) bytes += parts[i]->len;
    uint8_t *block = malloc(bytes ? bytes : 1);
    ASSERT(block != NULL);
    uint8_t *p = block;
    for (size_t i = 0; i < ARRAY_LEN(parts); i++) {
        if (parts[i]->len > 0) memcpy(p, parts[i]->data, parts[i]->len);
        parts[i]->data = p;
        p += parts[i]->len;
    }
    b->changes[b->count] = copy;
    b->blocks[b->count] = block;
    b->count++;
}

static void topo_batch_free(topo_batch *b)
{
    for (uint32_t i = 0; i < b->count; i++) free(b->blocks[i]);
    free(b->changes);
    free(b->blocks);
}

typedef struct {
    const config *cfg;
    const auth_store *auth;
    uint32_t shard_count;
    route_vhost **vhosts; /* scratch replicas, one per vhost of the user store */
    uint32_t vhost_count;
    topo_batch drops; /* deletes and unbinds */
    topo_batch moves; /* queues with a new owner shard */
} topo_prepare;

static const char *topo_def_what(const store_defs_change *def)
{
    switch (def->op) {
    case STORE_DEFS_EXCHANGE_DECLARE: return "exchange";
    case STORE_DEFS_QUEUE_DECLARE: return "queue";
    default: return "binding from exchange";
    }
}

static void topo_drop(topo_prepare *pr, const store_defs_change *def)
{
    store_defs_change c = *def;
    switch (def->op) {
    case STORE_DEFS_EXCHANGE_DECLARE: c.op = STORE_DEFS_EXCHANGE_DELETE; break;
    case STORE_DEFS_QUEUE_DECLARE: c.op = STORE_DEFS_QUEUE_DELETE; break;
    case STORE_DEFS_BIND: c.op = STORE_DEFS_UNBIND; break;
    default: UNREACHABLE();
    }
    topo_batch_add(&pr->drops, &c);
}

static route_vhost *topo_prepare_vhost(const topo_prepare *pr, amqp_bytes name)
{
    for (uint32_t i = 0; i < pr->vhost_count; i++)
        if (amqp_bytes_equal(route_vhost_name(pr->vhosts[i]), name)) return pr->vhosts[i];
    return NULL;
}

/* One definition of the live set: kept, moved to a shard that exists, or dropped. */
static void topo_prepare_def(void *ctx, const store_defs_change *def)
{
    topo_prepare *pr = ctx;
    route_vhost *vh = topo_prepare_vhost(pr, def->vhost);
    if (vh == NULL) {
        LOG_WARN("durable %s '%.*s' of vhost '%.*s' dropped: the vhost no longer exists",
                 topo_def_what(def), (int)def->name.len, (const char *)def->name.data,
                 (int)def->vhost.len, (const char *)def->vhost.data);
        topo_drop(pr, def);
        return;
    }
    store_defs_change moved = *def;
    if (def->op == STORE_DEFS_QUEUE_DECLARE && def->queue_shard >= pr->shard_count) {
        moved.queue_shard = topo_queue_placement(pr->cfg, pr->shard_count, def->vhost, def->name);
    }
    const route_queue_info *qi;
    route_error err;
    if (!topo__apply_def(vh, &moved, &qi, &err)) {
        LOG_ERROR("durable %s '%.*s' of vhost '%.*s' dropped: it does not apply: %s",
                  topo_def_what(def), (int)def->name.len, (const char *)def->name.data,
                  (int)def->vhost.len, (const char *)def->vhost.data, err.text);
        topo_drop(pr, def);
        return;
    }
    if (moved.queue_shard == def->queue_shard) return;
    LOG_WARN("durable queue '%.*s' of vhost '%.*s' was owned by shard %u; with %u shard(s) it "
             "moves to shard %u", (int)def->name.len, (const char *)def->name.data,
             (int)def->vhost.len, (const char *)def->vhost.data, def->queue_shard,
             pr->shard_count, moved.queue_shard);
    topo_batch_add(&pr->moves, &moved);
}

bool topo_recover_prepare(store_defs *defs, const config *cfg, const auth_store *auth,
                          uint32_t shard_count)
{
    ASSERT(defs != NULL && cfg != NULL && auth != NULL);
    ASSERT(shard_count >= 1 && shard_count <= LIMIT_SHARDS_MAX);
    topo_prepare pr = {.cfg = cfg, .auth = auth, .shard_count = shard_count};
    pr.vhost_count = auth_vhosts_count(auth);
    pr.vhosts = calloc(pr.vhost_count ? pr.vhost_count : 1, sizeof(*pr.vhosts));
    ASSERT(pr.vhosts != NULL);
    for (uint32_t i = 0; i < pr.vhost_count; i++)
        pr.vhosts[i] = route_vhost_create(amqp_cstr(auth_vhost_at(auth, i)));
    store_defs_each(defs, topo_prepare_def, &pr);
    for (uint32_t i = 0; i < pr.vhost_count; i++) route_vhost_destroy(pr.vhosts[i]);
    free(pr.vhosts);
    store_defs_error err;
    bool ok = true;
    /* Drops first: a failed write leaves them applied in memory, durable with the next one. */
    if (pr.drops.count > 0 && !store_defs_commit(defs, pr.drops.changes, pr.drops.count, &err))
        LOG_WARN("definitions journal: dropped definitions not recorded yet: %s", err.text);
    if (pr.moves.count > 0 && !store_defs_commit(defs, pr.moves.changes, pr.moves.count, &err)) {
        LOG_ERROR("definitions journal: cannot record the queues' new owner shards: %s", err.text);
        ok = false;
    }
    topo_batch_free(&pr.drops);
    topo_batch_free(&pr.moves);
    return ok;
}
