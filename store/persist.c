/*
 * The shard's durability glue (see store/persist.h). Invariants: at most one group commit is in
 * flight; held confirms are kept in log order (sequence numbers only grow), so a completed sync
 * releases a prefix of them; a message in the log keeps its record's position in its header and
 * acks the record's slots when its last reference goes (store_msg's release hook), i.e. when no
 * queue of this shard holds it any more. Acks are per record, not per queue: after a crash, a
 * message that one queue had acked and another had not comes back to both, flagged redelivered.
 */
#include "store/persist.h"

#include "core/assert.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/runtime.h"
#include "store/log.h"
#include "store/queues.h"

#include <errno.h>
#include <mimalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PERSIST_CHECKPOINT_MS 200u /* ack bitmaps written this often while acks happen */
#define PERSIST_DISK_RETRY_MS 500u /* while the disk is full, look for space this often */

typedef struct persist_confirm {
    uint64_t log_seq;
    uint64_t conn_id;
    uint64_t confirm_seq;
    uint32_t reply_shard;
    uint16_t channel;
    bool refused;
} persist_confirm;

struct persist {
    shard *s;
    store_log *log;
    persist_confirm *confirms; /* ring, in log_seq order */
    uint32_t confirms_head, confirms_count, confirms_capacity;
    store_log_io io;
    int results[STORE_LOG_IO_OPS_MAX];
    int sync_results[STORE_LOG_IO_OPS_MAX];
    uint32_t cqes_left; /* of the flush in flight */
    bool in_flight;
    bool appended; /* records since the last flush began */
    bool acked;    /* acks since the last checkpoint */
    timer checkpoint_timer;
    timer disk_timer; /* armed while the log is full */
    uint64_t syncs, synced_records, last_synced_seq;
};

static _Thread_local persist *persist_self; /* the release hook's way back to its shard */

/* ---- acks ---- */

static void persist_release(store_msg *msg)
{
    persist *p = persist_self;
    if (p == NULL || p->log == NULL) return;
    store_log_pos pos = {
        .segment = msg->log_segment, .offset = msg->log_offset, .slot = msg->log_slot};
    for (uint16_t i = 0; i < msg->log_queues; i++) store_log_ack(p->log, pos, i);
    if (!p->acked) {
        p->acked = true;
        if (!timer_armed(&p->checkpoint_timer))
            timer_arm(&p->s->timers, &p->checkpoint_timer, p->s->now_ms + PERSIST_CHECKPOINT_MS);
    }
}

/* ---- disk full ---- */

static void persist_disk_check(persist *p)
{
    bool full = store_log_full(p->log);
    runtime_disk_alarm(p->s->rt, &p->s->ring, p->s->id, full);
    if (full && !timer_armed(&p->disk_timer))
        timer_arm(&p->s->timers, &p->disk_timer, p->s->now_ms + PERSIST_DISK_RETRY_MS);
}

static void persist_on_disk_timer(timer *t, uint64_t now_ms)
{
    (void)now_ms;
    persist *p = (persist *)((char *)t - offsetof(persist, disk_timer));
    store_log_checkpoint(p->log); /* acks may have emptied segments: their deletion frees space */
    (void)store_log_retry(p->log);
    persist_disk_check(p);
}

static void persist_on_checkpoint(timer *t, uint64_t now_ms)
{
    (void)now_ms;
    persist *p = (persist *)((char *)t - offsetof(persist, checkpoint_timer));
    p->acked = false;
    store_log_checkpoint(p->log);
}

/* ---- open / replay ---- */

typedef struct {
    shard *s;
    persist_recover_fn *recover;
    uint64_t messages, bad;
} persist_replay_ctx;

/* One message per live slot, acking only that slot when it goes: a queue may keep a recovered
 * message in memory or page it out (store/spill.c), independently of the record's other queues. */
static bool persist_replay(void *arg, const store_log_msg_view *v, uint16_t queue_index)
{
    persist_replay_ctx *ctx = arg;
    ASSERT(queue_index < v->queue_count);
    store_msg_params params;
    if (!store_msg_wire_read(v->body, v->body_bytes, &params)) {
        ctx->bad++;
        LOG_WARN("segment %llu offset %u: message record does not decode; dropped",
                 (unsigned long long)v->pos.segment, v->pos.offset);
        return false;
    }
    params.arrival_ms = ctx->s->now_ms;
    params.publisher_shard = (uint16_t)ctx->s->id;
    store_msg *m = store_msg_new(ctx->s->heap, &params);
    if (m == NULL) {
        LOG_ERROR("out of memory recovering messages");
        exit(1);
    }
    ASSERT(v->pos.segment <= UINT32_MAX);
    m->flags |= STORE_MSG_RECOVERED;
    m->log_segment = (uint32_t)v->pos.segment;
    m->log_offset = v->pos.offset;
    m->log_slot = v->pos.slot + queue_index; /* this copy's own slot */
    m->log_queues = 1;
    ctx->messages++;
    uint64_t queue_id = store_get_u64(v->queue_ids + 8u * queue_index);
    bool taken = ctx->recover(ctx->s, queue_id, m);
    if (!taken) m->log_queues = 0; /* the log acks the slot itself */
    store_msg_unref(m);
    return taken;
}

static void persist_mkdir(const char *path)
{
    if (mkdir(path, 0750) != 0 && errno != EEXIST) {
        LOG_ERROR("cannot create %s: %s", path, strerror(errno));
        exit(1);
    }
}

void persist_open(shard *s, persist_recover_fn *recover)
{
    ASSERT(s->persist == NULL && recover != NULL);
    persist *p = mi_heap_zalloc(s->heap, sizeof(*p));
    ASSERT(p != NULL);
    p->s = s;
    timer_init(&p->checkpoint_timer, persist_on_checkpoint);
    timer_init(&p->disk_timer, persist_on_disk_timer);
    s->persist = p;
    persist_self = p;
    store_msg_set_release_hook(persist_release);

    char dir[LIMIT_PATH_BYTES_MAX + 32];
    snprintf(dir, sizeof(dir), "%s/log", s->cfg->data_dir);
    persist_mkdir(dir);
    snprintf(dir, sizeof(dir), "%s/log/shard-%u", s->cfg->data_dir, s->id);
    store_log_config cfg = {.dir = dir,
                            .shard_id = s->id,
                            .segment_bytes = s->cfg->segment_bytes,
                            .direct_io = s->cfg->direct_io};
    persist_replay_ctx ctx = {.s = s, .recover = recover};
    store_log_open_stats st;
    memset(&st, 0, sizeof(st));
    uint64_t t0 = timer_now_ms();
    p->log = store_log_open(&cfg, persist_replay, &ctx, &st);
    if (p->log == NULL) {
        LOG_ERROR("cannot open the segment log in %s: %s", dir, strerror(errno));
        exit(1);
    }
    if (store_log_full(p->log)) {
        /* Before the loop runs: the other shards see the bit on their first turn. */
        atomic_fetch_or(&s->rt->disk_alarm, 1ull << s->id);
        timer_arm(&s->timers, &p->disk_timer, s->now_ms + PERSIST_DISK_RETRY_MS);
    }
    if (st.records > 0 || st.segments > 1)
        LOG_INFO("recovered %llu messages (%llu live slots, %llu records, %llu segments, %llu MiB) "
                 "in %llu ms; %llu corrupt records skipped, %llu torn bytes cut; %s I/O",
                 (unsigned long long)ctx.messages, (unsigned long long)st.live_slots,
                 (unsigned long long)st.records, (unsigned long long)st.segments,
                 (unsigned long long)(st.bytes_read >> 20),
                 (unsigned long long)(timer_now_ms() - t0), (unsigned long long)st.corrupt_records,
                 (unsigned long long)st.torn_bytes, st.direct_io ? "direct" : "buffered");
}

void persist_close(shard *s)
{
    persist *p = s->persist;
    if (p == NULL) return;
    /* The kernel may still be writing from the log's buffer: wait for that commit. Other
     * completions at this point belong to connections already torn down. */
    while (p->in_flight) {
        struct io_uring_cqe *cqe;
        int rc = io_uring_wait_cqe(&s->ring, &cqe);
        if (rc == -EINTR) continue;
        ASSERT(rc == 0);
        struct io_uring_cqe copy = *cqe;
        io_uring_cqe_seen(&s->ring, cqe);
        if (shard_user_data_op(copy.user_data) == SHARD_OP_LOG) persist_on_cqe(s, &copy);
    }
    if (p->log != NULL) {
        if (!p->in_flight && !store_log_failed(p->log)) (void)store_log_flush_sync(p->log);
        store_log_checkpoint(p->log);
        if (p->syncs > 0)
            LOG_INFO("segment log: %llu syncs, %.1f records per sync", (unsigned long long)p->syncs,
                     (double)p->synced_records / (double)p->syncs);
    }
    timer_cancel(&s->timers, &p->checkpoint_timer);
    timer_cancel(&s->timers, &p->disk_timer);
    persist_self = NULL;
    store_msg_set_release_hook(NULL);
    /* Messages still queued are freed with the shard: their slots stay live, as they must. */
    store_log *log = p->log;
    p->log = NULL;
    if (log != NULL) store_log_close(log);
    mi_free(p->confirms);
    mi_free(p);
    s->persist = NULL;
}

/* ---- appends ---- */

uint64_t persist_message(shard *s, store_msg *msg, const uint64_t *ids, uint16_t n)
{
    persist *p = s->persist;
    ASSERT(p != NULL && n > 0 && msg->log_queues == 0);
    uint32_t wire_bytes = store_msg_wire_bytes(msg);
    uint8_t stack[512];
    uint8_t *wire = wire_bytes <= sizeof(stack) ? stack : mi_heap_malloc(s->heap, wire_bytes);
    if (wire == NULL) return 0;
    store_msg_wire_write(wire, msg);
    struct iovec iov = {wire, wire_bytes};
    store_log_pos pos;
    uint64_t seq = 0;
    bool ok = store_log_append_msg(p->log, ids, n, &iov, 1, true, &pos, &seq);
    if (wire != stack) mi_free(wire);
    if (!ok) {
        if (store_log_full(p->log)) persist_disk_check(p);
        return 0;
    }
    ASSERT(seq != 0 && pos.segment <= UINT32_MAX);
    msg->log_segment = (uint32_t)pos.segment;
    msg->log_offset = pos.offset;
    msg->log_slot = pos.slot;
    msg->log_queues = n;
    p->appended = true;
    return seq;
}

/* ---- confirms ---- */

void persist_hold_confirm(shard *s, uint64_t log_seq, uint32_t reply_shard, uint64_t conn_id,
                          uint16_t channel, uint64_t confirm_seq, bool refused)
{
    persist *p = s->persist;
    ASSERT(log_seq != 0 && confirm_seq != 0);
    if (p->confirms_count == p->confirms_capacity) {
        uint32_t capacity = p->confirms_capacity ? p->confirms_capacity * 2 : 256;
        persist_confirm *ring = mi_heap_malloc(s->heap, capacity * sizeof(*ring));
        ASSERT(ring != NULL);
        for (uint32_t i = 0; i < p->confirms_count; i++)
            ring[i] = p->confirms[(p->confirms_head + i) % p->confirms_capacity];
        mi_free(p->confirms);
        p->confirms = ring;
        p->confirms_head = 0;
        p->confirms_capacity = capacity;
    }
    persist_confirm *last =
        p->confirms_count == 0
            ? NULL
            : &p->confirms[(p->confirms_head + p->confirms_count - 1) % p->confirms_capacity];
    ASSERT(last == NULL || last->log_seq <= log_seq);
    p->confirms[(p->confirms_head + p->confirms_count) % p->confirms_capacity] =
        (persist_confirm){log_seq, conn_id, confirm_seq, reply_shard, channel, refused};
    p->confirms_count++;
}

static void persist_release_confirms(persist *p)
{
    bool failed = store_log_failed(p->log);
    uint64_t durable = store_log_durable_seq(p->log);
    while (p->confirms_count > 0) {
        persist_confirm *c = &p->confirms[p->confirms_head];
        if (!failed && c->log_seq > durable) break;
        bool accepted = !failed && !c->refused;
        if (p->s->tearing_down) {
            /* The publishers are gone: nothing to tell. */
        } else if (c->reply_shard == p->s->id)
            publish_confirmed(p->s, c->conn_id, c->channel, c->confirm_seq, accepted);
        else
            queues_send_publish_ack(p->s, c->reply_shard, c->conn_id, c->channel, c->confirm_seq,
                                    !accepted);
        p->confirms_head = (p->confirms_head + 1) % p->confirms_capacity;
        p->confirms_count--;
    }
}

/* ---- group commit ---- */

void persist_flush(shard *s)
{
    persist *p = s->persist;
    if (p == NULL || p->in_flight || !p->appended) return;
    if (!store_log_flush_begin(p->log, &p->io)) {
        p->appended = false;
        if (store_log_failed(p->log)) persist_release_confirms(p);
        return;
    }
    p->appended = false;
    p->in_flight = true;
    p->cqes_left = 0;
    ASSERT(p->io.op_count >= 1 && p->io.op_count <= STORE_LOG_IO_OPS_MAX);
    for (uint32_t i = 0; i < p->io.op_count; i++) {
        const store_log_io_op *op = &p->io.ops[i];
        p->results[i] = 0;
        p->sync_results[i] = 0;
        struct io_uring_sqe *sqe = shard_sqe(s);
        io_uring_prep_write(sqe, op->fd, op->buf, op->bytes, op->offset);
        io_uring_sqe_set_data64(sqe, shard_user_data(SHARD_OP_LOG, i * 2, 0));
        p->cqes_left++;
        if (op->sync) {
            sqe->flags |= IOSQE_IO_LINK;
            sqe = shard_sqe(s);
            io_uring_prep_fsync(sqe, op->fd, IORING_FSYNC_DATASYNC);
            io_uring_sqe_set_data64(sqe, shard_user_data(SHARD_OP_LOG, i * 2 + 1, 0));
            p->cqes_left++;
        }
    }
}

void persist_on_cqe(shard *s, const struct io_uring_cqe *cqe)
{
    persist *p = s->persist;
    ASSERT(p != NULL && p->in_flight && p->cqes_left > 0);
    uint32_t index = shard_user_data_index(cqe->user_data);
    uint32_t op = index / 2;
    ASSERT(op < p->io.op_count);
    if (index % 2 == 0) {
        /* A short write breaks the link like an error; report it as one. */
        int res = cqe->res;
        if (res >= 0 && (uint32_t)res != p->io.ops[op].bytes) res = -EIO;
        p->results[op] = res < 0 ? res : (int)p->io.ops[op].bytes;
    } else {
        p->sync_results[op] = cqe->res;
    }
    if (--p->cqes_left > 0) return;
    p->in_flight = false;
    int rc = store_log_flush_end(p->log, &p->io, p->results, p->sync_results);
    if (rc != 0) LOG_ERROR("segment log write failed: %s; confirms are nacked", strerror(-rc));
    if (p->io.sync && rc == 0) {
        p->syncs++;
        p->synced_records += p->io.seq_last - p->last_synced_seq;
        p->last_synced_seq = p->io.seq_last;
    }
    persist_release_confirms(p);
    if (!store_log_failed(p->log))
        p->appended = true; /* more may have come meanwhile: flush at turn end */
}
