/*
 * The publish path: from (exchange, routing key, headers) to the set of
 * destination queues, as rabbit_exchange:route/3 computes it. Exchanges are
 * processed from a worklist; each contributes the destinations its type
 * matches (queues join the result, exchanges join the worklist), and an
 * exchange whose own bindings matched nothing sends the message on to its
 * alternate exchange when that exists. Every exchange is processed at most
 * once per publish and every queue appears once in the result: both carry
 * the epoch of the last publish that reached them, so cycles and diamonds
 * cost nothing extra and no set needs clearing. Nothing here allocates:
 * the worklist is the vhost's (one slot per exchange), the result is the
 * caller's.
 */
#include "route/route_internal.h"

#include <string.h>

#include "core/assert.h"

void route_result_init(route_result *r, const route_queue_info **buf, uint32_t cap)
{
    ASSERT(r != NULL);
    ASSERT(buf != NULL || cap == 0);
    r->queues = buf;
    r->count = 0;
    r->cap = cap;
    r->overflow = false;
}

static void emit_queue(route_ctx *ctx, route_queue *q)
{
    if (q->visit_epoch == ctx->epoch) return;
    q->visit_epoch = ctx->epoch;
    route_result *r = ctx->out;
    if (r->count == r->cap) {
        r->overflow = true;
        return;
    }
    r->queues[r->count++] = &q->info;
}

static void emit_exchange(route_ctx *ctx, route_exchange *x)
{
    if (x->visit_epoch == ctx->epoch) return;
    x->visit_epoch = ctx->epoch;
    ASSERT(ctx->worklist_count < ctx->vh->worklist_cap);
    ctx->vh->worklist[ctx->worklist_count++] = x;
}

void route__emit(route_ctx *ctx, const route_binding *b)
{
    ASSERT((b->dest_q == NULL) != (b->dest_x == NULL));
    ctx->emitted++;
    if (b->dest_q != NULL)
        emit_queue(ctx, b->dest_q);
    else
        emit_exchange(ctx, b->dest_x);
}

static void match_direct(route_ctx *ctx, const route_exchange *x, amqp_bytes key)
{
    route_map_iter it;
    for (const route_binding *b = route_map_first(&ctx->vh->direct, route_hash_owned(x, key), &it);
         b != NULL; b = route_map_next(&it)) {
        if (b->source == x && amqp_bytes_equal((amqp_bytes){b->key, b->key_len}, key))
            route__emit(ctx, b);
    }
}

/* One exchange's own matches, by type. */
static void match_exchange(route_ctx *ctx, const route_exchange *x, amqp_bytes key)
{
    if (x->is_default) {
        route_queue *q = route_queue_find(ctx->vh, key);
        ctx->emitted += q != NULL;
        if (q != NULL) emit_queue(ctx, q);
        return;
    }
    switch (x->info.type) {
    case ROUTE_EXCHANGE_DIRECT: match_direct(ctx, x, key); break;
    case ROUTE_EXCHANGE_FANOUT:
        for (const route_binding *b = x->src_head; b != NULL; b = b->src_next) route__emit(ctx, b);
        break;
    case ROUTE_EXCHANGE_TOPIC: route__topic_match(ctx, x, key); break;
    case ROUTE_EXCHANGE_HEADERS:
        for (const route_binding *b = x->src_head; b != NULL; b = b->src_next) {
            if (route__headers_match(b, ctx)) route__emit(ctx, b);
        }
        break;
    }
}

bool route_publish(route_vhost *vh, const route_exchange *x, amqp_bytes routing_key,
                   amqp_table headers, route_result *r)
{
    ASSERT(vh != NULL && x != NULL && r != NULL);
    ASSERT(route_exchange_find(vh, x->info.name) == x);
    ASSERT(routing_key.len <= LIMIT_SHORTSTR_BYTES_MAX);
    r->count = 0;
    r->overflow = false;
    route_header_entry headers_sorted[LIMIT_ROUTE_HEADERS_SORTED_MAX];
    route_ctx ctx = {
        .vh = vh,
        .out = r,
        .epoch = ++vh->epoch,
        .headers = headers,
        .headers_sorted = headers_sorted,
    };
    emit_exchange(&ctx, (route_exchange *)x);
    while (ctx.worklist_count > 0) {
        route_exchange *cur = vh->worklist[--ctx.worklist_count];
        ctx.emitted = 0;
        match_exchange(&ctx, cur, routing_key);
        if (ctx.emitted == 0 && cur->info.alternate_exchange.len > 0) {
            route_exchange *ae = route_exchange_find(vh, cur->info.alternate_exchange);
            if (ae != NULL) emit_exchange(&ctx, ae);
        }
    }
    ASSERT(r->count <= r->cap);
    return !r->overflow;
}

void route_result_group_by_shard(const route_result *r, uint32_t shard_count,
                                 const route_queue_info **sorted, uint32_t *offsets)
{
    ASSERT(r != NULL && sorted != NULL && offsets != NULL);
    ASSERT(shard_count > 0 && shard_count <= LIMIT_SHARDS_MAX);
    memset(offsets, 0, (shard_count + 1u) * sizeof(*offsets));
    for (uint32_t i = 0; i < r->count; i++) {
        ASSERT(r->queues[i]->shard < shard_count);
        offsets[r->queues[i]->shard + 1u]++;
    }
    for (uint32_t s = 0; s < shard_count; s++) offsets[s + 1u] += offsets[s];
    uint32_t fill[LIMIT_SHARDS_MAX];
    memcpy(fill, offsets, shard_count * sizeof(*fill));
    for (uint32_t i = 0; i < r->count; i++) sorted[fill[r->queues[i]->shard]++] = r->queues[i];
    ASSERT(offsets[shard_count] == r->count);
}
