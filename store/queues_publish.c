/*
 * The publish path of the shard's queue host (see store/queues.h and store/queues_int.h): a
 * routed message goes to this shard's queues directly and to other shards' as one mailbox record
 * per shard, which stores it once however many of its queues it reaches. A persistent message
 * that durable queues take is appended to the shard's segment log first, with its slots ordered
 * so that each queue's copy, in memory or paged out (store/spill.c), acks exactly its own; the
 * publisher's confirm then waits for the log's sync. Runs on the receiving shard's thread.
 */
#include "store/queues_int.h"

#include "core/assert.h"
#include "core/runtime.h"
#include "store/persist.h"

#include <mimalloc.h>
#include <string.h>

/* ---- publish ---- */

typedef struct {
    uint64_t conn_id;
    uint64_t confirm_seq;
    uint16_t channel;
    uint16_t queues_count;
    uint32_t pad;
    /* uint64_t queue_ids[queues_count], then the message */
} queues_publish_rec;

/* Whether o is full for a new message under a reject-publish overflow. */
static bool queues_full(const owned_queue *o, const store_msg *msg)
{
    if (o->overflow == QUEUES_OVERFLOW_DROP_HEAD) return false;
    return (o->has_max_length && store_queue_ready_count(o->q) >= o->max_length) ||
           (o->has_max_bytes && store_queue_ready_bytes(o->q) + msg->body_bytes > o->max_bytes);
}

/* How one target queue takes a publish, decided before anything changes. */
typedef enum {
    QUEUES_TAKE_MEMORY,  /* the message itself, one more reference */
    QUEUES_TAKE_SPILL,   /* a paged-out copy */
    QUEUES_TAKE_REFUSED, /* x-overflow reject-publish: full */
} queues_take;

typedef struct queues_target {
    owned_queue *o;
    queues_take take;
} queues_target;

/* One publish's targets on this shard. */
typedef struct queues_targets {
    queues_target *t;
    uint32_t count;
    uint32_t durable_memory; /* durable targets keeping the message in memory */
    uint32_t durable_spill;  /* durable targets paging it out */
} queues_targets;

#define QUEUES_TARGETS_ON_STACK 32u

static bool queues_target_durable(const queues_target *t)
{
    return t->o->durable && t->take != QUEUES_TAKE_REFUSED;
}

/* Finds the queues of ids[0 .. n) and how each takes msg; no queue changes here. */
static void queues_targets_decide(shard *s, const uint64_t *ids, uint32_t n, const store_msg *msg,
                                  queues_targets *ts, bool *refused)
{
    ASSERT(ts->count == 0 && ts->durable_memory == 0 && ts->durable_spill == 0);
    for (uint32_t i = 0; i < n; i++) {
        owned_queue *o = queues__find(s->queues, ids[i]);
        if (o == NULL || o->deleting) continue; /* deleted since routing: dropped, as in RabbitMQ */
        queues_take take = QUEUES_TAKE_MEMORY;
        if (queues_full(o, msg))
            take = QUEUES_TAKE_REFUSED;
        else if (store_queue_would_spill(o->q, msg))
            take = QUEUES_TAKE_SPILL;
        ts->t[ts->count] = (queues_target){o, take};
        if (take == QUEUES_TAKE_REFUSED) *refused = true;
        if (queues_target_durable(&ts->t[ts->count])) {
            if (take == QUEUES_TAKE_MEMORY) ts->durable_memory++;
            else ts->durable_spill++;
        }
        ts->count++;
    }
    ASSERT(ts->count <= n);
}

/* Appends msg to the log for the durable targets, in-memory ones first: msg acks those
 * (log_queues of them) when freed; *first is the record's first slot, the paged-out copies own
 * the ones after. Returns the log sequence, 0 when the log refused it. */
static uint64_t queues_targets_log(shard *s, const queues_targets *ts, store_msg *msg,
                                   store_msg_slot *first)
{
    static _Thread_local uint64_t ids[LIMIT_PUBLISH_QUEUES_MAX];
    uint32_t n = ts->durable_memory + ts->durable_spill;
    ASSERT(n > 0 && n <= LIMIT_PUBLISH_QUEUES_MAX && store_msg_persistent(msg));
    uint32_t memory_at = 0, spill_at = ts->durable_memory;
    for (uint32_t i = 0; i < ts->count; i++) {
        if (!queues_target_durable(&ts->t[i])) continue;
        uint32_t at = ts->t[i].take == QUEUES_TAKE_MEMORY ? memory_at++ : spill_at++;
        ids[at] = ts->t[i].o->queue_id;
    }
    ASSERT(memory_at == ts->durable_memory && spill_at == n);
    uint64_t log_seq = persist_message(s, msg, ids, (uint16_t)n);
    if (log_seq == 0) return 0;
    ASSERT(msg->log_queues == n);
    *first = (store_msg_slot){msg->log_segment, msg->log_offset, msg->log_slot};
    msg->log_queues = (uint16_t)ts->durable_memory;
    return log_seq;
}

/* Pushes msg to this shard's queues ids[0 .. n). A persistent message that durable queues take
 * goes to the segment log first (queues_targets_log). Then the pushes, and only then what they
 * set off (length limits, TTLs, dead-lettering, which may publish into these very queues), so
 * every queue takes msg as it was decided. Returns the log sequence to wait for (0: none);
 * *refused when a queue refused it or the log could not take it (the message is then queued but
 * not safe: the confirm is a nack). */
static uint64_t queues_push_all(shard *s, const uint64_t *ids, uint32_t n, store_msg *msg,
                                bool *refused)
{
    ASSERT(n <= LIMIT_PUBLISH_QUEUES_MAX && msg->log_queues == 0);
    queues_target stack[QUEUES_TARGETS_ON_STACK];
    queues_targets ts = {.t = n <= QUEUES_TARGETS_ON_STACK ? stack
                                                           : mi_heap_malloc(s->heap, n * sizeof(*ts.t))};
    ASSERT(ts.t != NULL);
    queues_targets_decide(s, ids, n, msg, &ts, refused);
    uint64_t log_seq = 0;
    store_msg_slot first = {0};
    if (ts.durable_memory + ts.durable_spill > 0 && store_msg_persistent(msg)) {
        log_seq = queues_targets_log(s, &ts, msg, &first);
        if (log_seq == 0) *refused = true;
    }
    uint32_t spill_slot = ts.durable_memory;
    for (uint32_t i = 0; i < ts.count; i++) {
        const queues_target *t = &ts.t[i];
        if (t->take == QUEUES_TAKE_REFUSED) continue;
        ASSERT(store_queue_would_spill(t->o->q, msg) == (t->take == QUEUES_TAKE_SPILL));
        if (t->take == QUEUES_TAKE_SPILL && t->o->durable && log_seq != 0) {
            store_msg_slot own = {first.segment, first.offset, first.slot + spill_slot++};
            store_queue_push_spill(t->o->q, msg, &own);
        } else {
            store_queue_push(t->o->q, msg); /* in memory, or paged out owning no slot */
        }
    }
    ASSERT(log_seq == 0 || spill_slot == ts.durable_memory + ts.durable_spill);
    for (uint32_t i = 0; i < ts.count; i++) {
        owned_queue *o = ts.t[i].o;
        if (ts.t[i].take == QUEUES_TAKE_REFUSED) {
            if (o->overflow == QUEUES_OVERFLOW_REJECT_PUBLISH_DLX)
                queues__dead_letter(s, o, msg, "maxlen");
            continue;
        }
        if (o->has_max_length || o->has_max_bytes) queues__enforce_length(s, o);
        if (o->has_ttl || (msg->flags & STORE_MSG_HAS_EXPIRATION)) queues__expire(s, o);
        queues__mark(s->queues, o);
    }
    if (ts.t != stack) mi_free(ts.t);
    return log_seq;
}

void queues_send_publish_ack(shard *s, uint32_t to, uint64_t conn_id, uint16_t channel,
                             uint64_t confirm_seq, bool refused)
{
    struct {
        uint64_t conn_id, confirm_seq;
        uint16_t channel;
        uint8_t refused;
    } ack = {conn_id, confirm_seq, channel, refused};
    queues__send(s, to, Q_KIND_PUBLISH_ACK, &ack, sizeof(ack), NULL);
}

bool queues_recover(shard *s, uint64_t queue_id, store_msg *msg)
{
    owned_queue *o = queues__find(s->queues, queue_id);
    if (o == NULL || !o->durable) return false;
    ASSERT(msg->log_queues == 1 && msg->refs == 1); /* its own slot, the caller's reference */
    if (store_queue_would_spill(o->q, msg)) {
        /* The paged-out copy takes the slot over; the message itself is freed unacked. */
        store_msg_slot own = {msg->log_segment, msg->log_offset, msg->log_slot};
        msg->log_queues = 0;
        store_queue_push_spill(o->q, msg, &own);
    } else {
        store_queue_push(o->q, msg);
    }
    queues__mark(s->queues, o);
    return true;
}

/* One record to shard sh for its queues sorted[0 .. n). */
static void queues_publish_remote(shard *s, uint32_t sh, const route_queue_info *const *sorted,
                                  uint32_t n, store_msg *msg, const queues_publisher *pub)
{
    ASSERT(sh != s->id && n > 0);
    uint32_t head_bytes = (uint32_t)(sizeof(queues_publish_rec) + n * sizeof(uint64_t));
    uint8_t head[sizeof(queues_publish_rec) + 64 * sizeof(uint64_t)];
    uint8_t *hp = n <= 64 ? head : mi_heap_malloc(s->heap, head_bytes);
    ASSERT(hp != NULL);
    queues_publish_rec *rec = (queues_publish_rec *)hp;
    *rec = (queues_publish_rec){.conn_id = pub->conn_id,
                                .confirm_seq = pub->confirm_seq,
                                .channel = pub->channel,
                                .queues_count = (uint16_t)n};
    uint64_t *ids = (uint64_t *)(hp + sizeof(*rec));
    for (uint32_t i = 0; i < n; i++) ids[i] = sorted[i]->queue_id;
    queues__send(s, sh, Q_KIND_PUBLISH, hp, head_bytes, msg);
    if (hp != head) mi_free(hp);
}

bool queues_publish(shard *s, const route_result *r, store_msg *msg, const queues_publisher *pub,
                    uint32_t *shards_involved, bool *refused)
{
    *refused = false;
    uint32_t shard_count = s->rt->shard_count;
    static _Thread_local const route_queue_info *sorted[LIMIT_PUBLISH_QUEUES_MAX];
    uint32_t offsets[LIMIT_SHARDS_MAX + 1];
    ASSERT(r->count <= ARRAY_LEN(sorted));
    route_result_group_by_shard(r, shard_count, sorted, offsets);
    uint32_t involved = 0;
    /* All or nothing: a full ring to any target shard pauses the publisher. */
    for (uint32_t sh = 0; sh < shard_count; sh++) {
        uint32_t n = offsets[sh + 1] - offsets[sh];
        if (n == 0 || sh == s->id) continue;
        uint32_t bytes = (uint32_t)(sizeof(queues_publish_rec) + n * sizeof(uint64_t)) +
                         store_msg_wire_bytes(msg);
        if (!shard_mbox_room(s, sh, bytes)) return false;
    }
    for (uint32_t sh = 0; sh < shard_count; sh++) {
        uint32_t n = offsets[sh + 1] - offsets[sh];
        if (n == 0 || sh == s->id) continue;
        queues_publish_remote(s, sh, sorted + offsets[sh], n, msg, pub);
        involved++;
    }
    /* This shard's queues last: what their pushes set off (dead-lettering) may publish again,
     * reusing sorted. */
    uint32_t n = offsets[s->id + 1] - offsets[s->id];
    if (n > 0) {
        static _Thread_local uint64_t ids[LIMIT_PUBLISH_QUEUES_MAX];
        for (uint32_t i = 0; i < n; i++) ids[i] = sorted[offsets[s->id] + i]->queue_id;
        uint64_t log_seq = queues_push_all(s, ids, n, msg, refused);
        if (log_seq != 0 && pub->confirm_seq != 0) {
            persist_hold_confirm(s, log_seq, s->id, pub->conn_id, pub->channel, pub->confirm_seq,
                                 false);
            involved++;
        }
    }
    *shards_involved = involved;
    return true;
}

void queues__on_publish(shard *s, uint32_t from, const void *payload, uint32_t bytes)
{
    const queues_publish_rec *rec = payload;
    const uint64_t *ids = (const uint64_t *)(rec + 1);
    const uint8_t *msg_wire = (const uint8_t *)(ids + rec->queues_count);
    ASSERT((const uint8_t *)payload + bytes >= msg_wire + sizeof(store_msg_wire));
    queues_delivery view;
    store_msg_params p;
    queues__msg_view(msg_wire, &view, &p);
    p.publisher_shard = (uint16_t)from;
    p.publish_seq = rec->confirm_seq;
    p.arrival_ms = s->now_ms;
    store_msg *msg = store_msg_new(s->heap, &p);
    ASSERT(msg != NULL);
    bool refused = false;
    uint64_t log_seq = queues_push_all(s, ids, rec->queues_count, msg, &refused);
    store_msg_unref(msg);
    if (rec->confirm_seq == 0) return;
    if (log_seq != 0)
        persist_hold_confirm(s, log_seq, from, rec->conn_id, rec->channel, rec->confirm_seq, refused);
    else
        queues_send_publish_ack(s, from, rec->conn_id, rec->channel, rec->confirm_seq, refused);
}

void queues__on_publish_ack(shard *s, uint32_t from, const void *payload, uint32_t bytes)
{
    (void)from;
    const struct {
        uint64_t conn_id, confirm_seq;
        uint16_t channel;
        uint8_t refused;
    } *ack = payload;
    ASSERT(bytes == sizeof(*ack));
    publish_confirmed(s, ack->conn_id, ack->channel, ack->confirm_seq, !ack->refused);
}
