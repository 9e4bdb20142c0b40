/*
 * The shard loop. One thread, one ring, created on this thread with
 * SINGLE_ISSUER | DEFER_TASKRUN | SUBMIT_ALL. A turn: copy out a bounded batch
 * of CQEs and run their handlers; run due timers; flush every dirty
 * connection (one send each); give receive buffers back; then sleep in
 * io_uring_submit_and_wait_timeout until a completion, a wake-up message or
 * the next timer. Work per turn is bounded so one connection cannot starve
 * the rest. Connections live in a slab owned by this shard; a slot is reused
 * only after every operation on it has completed.
 */
#include "core/shard.h"

#include "core/assert.h"
#include "core/log.h"
#include "core/mbox.h"
#include "core/runtime.h"
#include "net/conn.h"
#include "route/topo.h"
#include "store/persist.h"
#include "store/queues.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SHARD_BUFFER_GROUP 0

static void shard_fatal(shard *s, const char *what, int err)
{
    LOG_ERROR("%s failed: %s", what, strerror(err));
    (void)s;
    abort();
}

struct io_uring_sqe *shard_sqe(shard *s)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
    if (sqe == NULL) {
        int rc = io_uring_submit(&s->ring);
        if (rc < 0 && rc != -EBUSY && rc != -EAGAIN) shard_fatal(s, "io_uring_submit", -rc);
        sqe = io_uring_get_sqe(&s->ring);
    }
    ASSERT(sqe != NULL);
    return sqe;
}

static void shard_pin(shard *s)
{
    char name[16];
    snprintf(name, sizeof(name), "shard-%u", s->id);
    pthread_setname_np(pthread_self(), name);
    if (s->cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(s->cpu, &set);
    int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (rc != 0) LOG_WARN("cannot pin shard %u to CPU %d: %s", s->id, s->cpu, strerror(rc));
}

static void shard_ring_setup(shard *s)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL |
              IORING_SETUP_CQSIZE;
    p.cq_entries = LIMIT_RING_ENTRIES * 2;
    int rc = io_uring_queue_init_params(LIMIT_RING_ENTRIES, &s->ring, &p);
    if (rc < 0) shard_fatal(s, "io_uring_queue_init_params", -rc);
    s->ring_fd = s->ring.ring_fd;

    size_t ring_bytes = sizeof(struct io_uring_buf) * LIMIT_RECV_BUFFERS;
    void *ring_mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (ring_mem == MAP_FAILED) shard_fatal(s, "mmap buffer ring", errno);
    s->buf_ring = ring_mem;
    io_uring_buf_ring_init(s->buf_ring);
    struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)ring_mem,
                                   .ring_entries = LIMIT_RECV_BUFFERS,
                                   .bgid = SHARD_BUFFER_GROUP};
    rc = io_uring_register_buf_ring(&s->ring, &reg, 0);
    if (rc < 0) shard_fatal(s, "io_uring_register_buf_ring", -rc);
    size_t data_bytes = (size_t)LIMIT_RECV_BUFFERS * LIMIT_RECV_BUFFER_BYTES;
    s->buf_base = mmap(NULL, data_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (s->buf_base == MAP_FAILED) shard_fatal(s, "mmap receive buffers", errno);
    int mask = io_uring_buf_ring_mask(LIMIT_RECV_BUFFERS);
    for (uint32_t i = 0; i < LIMIT_RECV_BUFFERS; i++)
        io_uring_buf_ring_add(s->buf_ring, shard_buffer(s, (uint16_t)i), LIMIT_RECV_BUFFER_BYTES,
                              (unsigned short)i, mask, (int)i);
    io_uring_buf_ring_advance(s->buf_ring, LIMIT_RECV_BUFFERS);
}

void shard_buffer_return(shard *s, uint16_t buffer_id)
{
    ASSERT(buffer_id < LIMIT_RECV_BUFFERS);
    io_uring_buf_ring_add(s->buf_ring, shard_buffer(s, buffer_id), LIMIT_RECV_BUFFER_BYTES,
                          buffer_id, io_uring_buf_ring_mask(LIMIT_RECV_BUFFERS),
                          (int)s->buf_returned);
    s->buf_returned++;
    ASSERT(s->buf_returned <= LIMIT_RECV_BUFFERS);
}

static void shard_listen(shard *s)
{
    const config *cfg = s->cfg;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t len;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, cfg->bind_address, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(cfg->port);
        len = sizeof(*in4);
    } else {
        ASSERT(inet_pton(AF_INET6, cfg->bind_address, &in6->sin6_addr) == 1);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(cfg->port);
        len = sizeof(*in6);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) shard_fatal(s, "socket", errno);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        shard_fatal(s, "SO_REUSEPORT", errno);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
        LOG_ERROR("cannot bind %s:%u: %s", cfg->bind_address, cfg->port, strerror(errno));
        exit(1);
    }
    if (listen(fd, LIMIT_LISTEN_BACKLOG) != 0) shard_fatal(s, "listen", errno);
    s->listen_fd = fd;
}

static void shard_arm_accept(shard *s)
{
    if (s->accept_armed || s->stopping || s->listen_fd < 0) return;
    struct io_uring_sqe *sqe = shard_sqe(s);
    io_uring_prep_multishot_accept(sqe, s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, shard_user_data(SHARD_OP_ACCEPT, 0, 0));
    s->accept_armed = true;
}

static void shard_on_accept(shard *s, const struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE)) s->accept_armed = false;
    if (cqe->res < 0) {
        switch (-cqe->res) {
        case ECANCELED:
            return;
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
            LOG_WARN("accept: %s", strerror(-cqe->res));
            return; /* re-armed at the end of the turn */
        case ECONNABORTED:
        case EINTR:
        case EAGAIN:
            return;
        default:
            if (s->stopping) return; /* the listener was shut down */
            shard_fatal(s, "accept", -cqe->res);
        }
    }
    int fd = cqe->res;
    if (s->stopping || conn_open(s, fd) == NULL) close(fd);
}

void shard_conn_dirty(shard *s, conn *c)
{
    if (c->dirty) return;
    c->dirty = true;
    c->dirty_next = s->dirty_head;
    s->dirty_head = c;
}

static conn *shard_conn_lookup(shard *s, uint64_t ud)
{
    uint32_t index = shard_user_data_index(ud);
    ASSERT(index < LIMIT_CONNS_PER_SHARD);
    conn *c = s->conns[index];
    ASSERT(c != NULL);
    ASSERT(c->generation == shard_user_data_generation(ud));
    return c;
}

static void shard_dispatch(shard *s, const struct io_uring_cqe *cqe)
{
    uint64_t ud = cqe->user_data;
    switch (shard_user_data_op(ud)) {
    case SHARD_OP_ACCEPT:
        shard_on_accept(s, cqe);
        break;
    case SHARD_OP_RECV:
        conn_on_recv_cqe(shard_conn_lookup(s, ud), cqe);
        break;
    case SHARD_OP_SEND:
        conn_on_send_cqe(shard_conn_lookup(s, ud), cqe);
        break;
    case SHARD_OP_CANCEL:
        conn_on_cancel_cqe(shard_conn_lookup(s, ud), cqe);
        break;
    case SHARD_OP_LOG:
        persist_on_cqe(s, cqe);
        break;
    case SHARD_OP_WAKE:
    case SHARD_OP_NONE:
        break;
    default:
        UNREACHABLE();
    }
}

static void shard_reap(shard *s)
{
    struct io_uring_cqe *batch[LIMIT_CQES_PER_TURN];
    struct io_uring_cqe copies[LIMIT_CQES_PER_TURN];
    unsigned n = io_uring_peek_batch_cqe(&s->ring, batch, LIMIT_CQES_PER_TURN);
    /* Copy first and mark seen, so handlers may submit freely. */
    for (unsigned i = 0; i < n; i++) copies[i] = *batch[i];
    io_uring_cq_advance(&s->ring, n);
    for (unsigned i = 0; i < n; i++) shard_dispatch(s, &copies[i]);
}

static shard_mbox_fn shard_mbox_handlers[SHARD_MBOX_KINDS_MAX];

void shard_mbox_register(uint16_t kind, shard_mbox_fn fn)
{
    ASSERT(kind < SHARD_MBOX_KINDS_MAX && fn != NULL);
    shard_mbox_handlers[kind] = fn;
}

typedef struct shard_mbox_overflow {
    struct shard_mbox_overflow *next;
    uint16_t kind;
    uint32_t payload_bytes;
    uint8_t payload[];
} shard_mbox_overflow;

bool shard_mbox_send(shard *s, uint32_t to_shard, uint16_t kind, const void *payload,
                     uint32_t payload_bytes)
{
    ASSERT(to_shard != s->id && to_shard < s->rt->shard_count);
    ASSERT(kind < SHARD_MBOX_KINDS_MAX && shard_mbox_handlers[kind] != NULL);
    if (s->overflow_head[to_shard] != NULL) return false;
    if (!mbox_push(mbox_mesh_ring(s->mesh, s->id, to_shard), kind, payload, payload_bytes))
        return false;
    s->mbox_records_sent++;
    s->mbox_dirty |= 1ull << to_shard;
    return true;
}

/* A record too large for a ring travels by reference: the receiver runs the
 * real kind's handler on the copy and frees it (mimalloc frees across threads). */
typedef struct {
    uint16_t kind;
    uint32_t payload_bytes;
    void *payload;
} shard_mbox_byref;

static void shard_mbox_on_byref(shard *s, uint32_t from, const void *payload, uint32_t bytes)
{
    ASSERT(bytes == sizeof(shard_mbox_byref));
    const shard_mbox_byref *r = payload;
    ASSERT(r->kind < SHARD_MBOX_KINDS_MAX && shard_mbox_handlers[r->kind] != NULL);
    shard_mbox_handlers[r->kind](s, from, r->payload, r->payload_bytes);
    mi_free(r->payload);
}

static void shard_mbox_on_ping(shard *s, uint32_t from, const void *payload, uint32_t bytes)
{
    (void)s, (void)from, (void)payload, (void)bytes; /* a wake-up with nothing to do */
}

void shard_mbox_register_builtin(void)
{
    shard_mbox_register(SHARD_MBOX_KIND_PING, shard_mbox_on_ping);
    shard_mbox_register(SHARD_MBOX_KIND_BYREF, shard_mbox_on_byref);
}

void shard_mbox_send_control(shard *s, uint32_t to_shard, uint16_t kind, const void *payload,
                             uint32_t payload_bytes)
{
    if (payload_bytes > LIMIT_MBOX_INLINE_BYTES_MAX) {
        shard_mbox_byref r = {.kind = kind, .payload_bytes = payload_bytes};
        r.payload = mi_heap_malloc(s->heap, payload_bytes);
        if (r.payload == NULL) shard_fatal(s, "mailbox record allocation", ENOMEM);
        memcpy(r.payload, payload, payload_bytes);
        kind = SHARD_MBOX_KIND_BYREF;
        payload = &r;
        payload_bytes = sizeof(r);
        shard_mbox_send_control(s, to_shard, kind, payload, payload_bytes);
        return;
    }
    if (shard_mbox_send(s, to_shard, kind, payload, payload_bytes)) return;
    shard_mbox_overflow *o = mi_heap_malloc(s->heap, sizeof(*o) + payload_bytes);
    if (o == NULL) shard_fatal(s, "mailbox overflow allocation", ENOMEM);
    o->next = NULL;
    o->kind = kind;
    o->payload_bytes = payload_bytes;
    memcpy(o->payload, payload, payload_bytes);
    if (s->overflow_tail[to_shard] != NULL)
        s->overflow_tail[to_shard]->next = o;
    else
        s->overflow_head[to_shard] = o;
    s->overflow_tail[to_shard] = o;
}

bool shard_mbox_room(shard *s, uint32_t to_shard, uint32_t payload_bytes)
{
    ASSERT(to_shard != s->id && to_shard < s->rt->shard_count);
    uint32_t need = payload_bytes > LIMIT_MBOX_INLINE_BYTES_MAX ? (uint32_t)sizeof(shard_mbox_byref)
                                                                : payload_bytes;
    mbox_ring *ring = mbox_mesh_ring(s->mesh, s->id, to_shard);
    if (s->overflow_head[to_shard] != NULL) return false; /* its flush already waits for space */
    if (mbox_space_bytes(ring) >= need) return true;
    /* A failed reservation registers this shard to be woken when space frees.
     * If space freed meanwhile, the reservation becomes an empty ping. */
    if (mbox_reserve(ring, SHARD_MBOX_KIND_PING, need) == NULL) return false;
    mbox_commit(ring, 0);
    s->mbox_dirty |= 1ull << to_shard;
    return true;
}

void shard_mbox_wait(shard *s, conn *c)
{
    if (c->mbox_waiting) return;
    c->mbox_waiting = true;
    c->mbox_wait_next = s->mbox_waiters;
    s->mbox_waiters = c;
}

void shard_yield(shard *s, conn *c)
{
    if (c->yielded) return;
    c->yielded = true;
    c->yield_next = s->yielded;
    s->yielded = c;
}

static void shard_resume_yielded(shard *s)
{
    conn *c = s->yielded;
    s->yielded = NULL;
    while (c != NULL) {
        conn *next = c->yield_next;
        c->yielded = false;
        c->yield_next = NULL;
        session_yield_end(c);
        c = next;
    }
}

void shard_mbox_unwait(shard *s, conn *c)
{
    if (c->yielded) {
        conn **pp = &s->yielded;
        while (*pp != c) pp = &(*pp)->yield_next;
        *pp = c->yield_next;
        c->yielded = false;
        c->yield_next = NULL;
    }
    if (!c->mbox_waiting) return;
    conn **pp = &s->mbox_waiters;
    while (*pp != c) pp = &(*pp)->mbox_wait_next;
    *pp = c->mbox_wait_next;
    c->mbox_waiting = false;
    c->mbox_wait_next = NULL;
}

/* Retries the connections paused for mailbox space (they may pause again). */
static void shard_mbox_retry_waiters(shard *s)
{
    conn *c = s->mbox_waiters;
    s->mbox_waiters = NULL;
    while (c != NULL) {
        conn *next = c->mbox_wait_next;
        c->mbox_waiting = false;
        c->mbox_wait_next = NULL;
        session_mbox_retry(c);
        c = next;
    }
}

/* Moves waiting control records into their rings while there is room. */
static void shard_mbox_overflow_flush(shard *s)
{
    for (uint32_t to = 0; to < s->rt->shard_count; to++) {
        shard_mbox_overflow *o;
        while ((o = s->overflow_head[to]) != NULL) {
            if (!mbox_push(mbox_mesh_ring(s->mesh, s->id, to), o->kind, o->payload, o->payload_bytes))
                break;
            s->mbox_dirty |= 1ull << to;
            s->mbox_records_sent++;
            s->overflow_head[to] = o->next;
            if (o->next == NULL) s->overflow_tail[to] = NULL;
            mi_free(o);
        }
    }
}

typedef struct {
    shard *s;
    uint32_t from;
} shard_mbox_ctx;

static void shard_mbox_dispatch(void *ctx, const mbox_record *record)
{
    shard_mbox_ctx *mc = ctx;
    ASSERT(record->kind < SHARD_MBOX_KINDS_MAX);
    shard_mbox_fn fn = shard_mbox_handlers[record->kind];
    ASSERT(fn != NULL);
    fn(mc->s, mc->from, mbox_record_payload(record), record->payload_bytes);
}

/* Inbound: a bounded batch from every other shard, then give the space back. */
static void shard_mbox_drain(shard *s)
{
    for (uint32_t from = 0; from < s->rt->shard_count; from++) {
        if (from == s->id) continue;
        mbox_ring *ring = mbox_mesh_ring(s->mesh, from, s->id);
        shard_mbox_ctx ctx = {.s = s, .from = from};
        uint32_t drained = mbox_drain(ring, shard_mbox_dispatch, &ctx, LIMIT_MBOX_DRAIN_RECORDS_MAX);
        if (drained == 0) continue;
        s->mbox_records_received += drained;
        /* The producer found the ring full: wake it so it resumes its paused sources. */
        if (mbox_release(ring)) runtime_wake_shard(s->rt, &s->ring, from);
    }
}

/* Outbound: publish each tail written this turn, waking only shards that sleep. */
static void shard_mbox_publish(shard *s)
{
    shard_mbox_overflow_flush(s);
    uint64_t dirty = s->mbox_dirty;
    s->mbox_dirty = 0;
    while (dirty != 0) {
        uint32_t to = (uint32_t)__builtin_ctzll(dirty);
        dirty &= dirty - 1;
        if (mbox_publish(mbox_mesh_ring(s->mesh, s->id, to))) {
            runtime_wake_shard(s->rt, &s->ring, to);
            s->mbox_wakeups_sent++;
        }
    }
}

static void shard_flush(shard *s)
{
    conn *c = s->dirty_head;
    s->dirty_head = NULL;
    while (c != NULL) {
        conn *next = c->dirty_next;
        c->dirty = false;
        c->dirty_next = NULL;
        conn_flush(c); /* may free c, or mark it dirty again */
        c = next;
    }
    if (s->buf_returned) {
        io_uring_buf_ring_advance(s->buf_ring, (int)s->buf_returned);
        s->buf_returned = 0;
    }
    shard_mbox_publish(s);
    shard_arm_accept(s);
}

void *shard_out_buffer_take(shard *s)
{
    if (s->out_pool_count > 0) return s->out_pool[--s->out_pool_count];
    return mi_heap_malloc(s->heap, LIMIT_OUTPUT_BUFFER_BYTES);
}

void shard_out_buffer_give(shard *s, void *buffer)
{
    ASSERT(buffer != NULL);
    if (s->out_pool_count < LIMIT_OUTPUT_POOL_BUFFERS) {
        s->out_pool[s->out_pool_count++] = buffer;
        return;
    }
    mi_free(buffer);
}

static void shard_slab_init(shard *s)
{
    s->heap = mi_heap_new();
    s->out_pool = calloc(LIMIT_OUTPUT_POOL_BUFFERS, sizeof(*s->out_pool));
    if (s->heap == NULL || s->out_pool == NULL) shard_fatal(s, "shard heap", ENOMEM);
    s->conns = calloc(LIMIT_CONNS_PER_SHARD, sizeof(*s->conns));
    s->conn_free = calloc(LIMIT_CONNS_PER_SHARD, sizeof(*s->conn_free));
    if (s->conns == NULL || s->conn_free == NULL) shard_fatal(s, "calloc connection slab", ENOMEM);
    for (uint32_t i = 0; i < LIMIT_CONNS_PER_SHARD; i++)
        s->conn_free[i] = LIMIT_CONNS_PER_SHARD - 1 - i;
    s->conn_free_count = LIMIT_CONNS_PER_SHARD;
}

/* Takes a free slab slot for c; false when the shard is full. */
bool shard_conn_attach(shard *s, conn *c);
bool shard_conn_attach(shard *s, conn *c)
{
    if (s->conn_free_count == 0) return false;
    uint32_t index = s->conn_free[--s->conn_free_count];
    ASSERT(s->conns[index] == NULL);
    s->conns[index] = c;
    c->index = index;
    s->conn_count++;
    return true;
}

void shard_conn_release(shard *s, conn *c)
{
    ASSERT(c->ops_inflight == 0);
    ASSERT(s->conns[c->index] == c);
    s->conns[c->index] = NULL;
    s->conn_free[s->conn_free_count++] = c->index;
    ASSERT(s->conn_free_count <= LIMIT_CONNS_PER_SHARD);
    ASSERT(s->conn_count > 0);
    s->conn_count--;
}

void shard_request_stop(shard *s)
{
    atomic_store(&s->stop_requested, true);
    runtime_wake_shard(s->rt, NULL, s->id);
}

static void shard_begin_stop(shard *s)
{
    s->stopping = true;
    s->stop_deadline_ms = s->now_ms + LIMIT_SHUTDOWN_GRACE_MS;
    if (s->listen_fd >= 0) {
        /* shutdown() ends the multishot accept with an error CQE. */
        shutdown(s->listen_fd, SHUT_RDWR);
        close(s->listen_fd);
        s->listen_fd = -1;
    }
    LOG_INFO("stopping: closing %u connection(s)", s->conn_count);
    for (uint32_t i = 0; i < LIMIT_CONNS_PER_SHARD && s->conn_count > 0; i++) {
        conn *c = s->conns[i];
        if (c != NULL) session_shutdown(c);
    }
}

static void shard_check_alarm(shard *s)
{
    bool alarm = atomic_load(&s->rt->alarm) || atomic_load(&s->rt->disk_alarm) != 0;
    if (alarm == s->alarm_seen) return;
    s->alarm_seen = alarm;
    for (uint32_t i = 0; i < LIMIT_CONNS_PER_SHARD; i++) {
        conn *c = s->conns[i];
        if (c != NULL) session_alarm(c, alarm);
    }
}

static void shard_wait(shard *s)
{
    uint64_t deadline = timer_next_deadline_ms(&s->timers);
    if (s->stopping && s->stop_deadline_ms < deadline) deadline = s->stop_deadline_ms;
    struct __kernel_timespec ts, *tsp = NULL;
    if (deadline != UINT64_MAX) {
        uint64_t now = timer_now_ms();
        uint64_t wait_ms = deadline > now ? deadline - now : 0;
        ts.tv_sec = (long long)(wait_ms / 1000);
        ts.tv_nsec = (long long)(wait_ms % 1000) * 1000000;
        tsp = &ts;
    }
    /* A queue that used its dispatch budget goes on next turn: nothing else may wake us then. */
    bool work_pending = s->dirty_head != NULL || s->yielded != NULL || io_uring_cq_ready(&s->ring) > 0 ||
                        queues_pending(s) || atomic_load(&s->stop_requested) != s->stopping;
    /* Dekker with the producers: flag asleep, then re-check the inbound rings (core/mbox.c). */
    if (work_pending || !mbox_sleep_prepare(s->mesh, s->id)) {
        /* With DEFER_TASKRUN, completions that arrive as task work (a socket
         * becoming readable under an armed multishot recv, a send finishing)
         * are posted only when the ring is entered with GETEVENTS: a plain
         * submit here would leave a consumer's acks unread for as long as a
         * busy publisher keeps this shard from sleeping. */
        int rc = io_uring_submit_and_get_events(&s->ring);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
            shard_fatal(s, "io_uring_submit_and_get_events", -rc);
        return;
    }
    struct io_uring_cqe *cqe;
    int rc = io_uring_submit_and_wait_timeout(&s->ring, &cqe, 1, tsp, NULL);
    mbox_sleep_end(s->mesh, s->id);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
        shard_fatal(s, "io_uring_submit_and_wait_timeout", -rc);
}

/*
 * A stopping shard leaves its loop once the grace period is over, or once what the closed
 * connections left behind has reached the topology sequencer (shard 0): closing a consumer's
 * connection may delete an auto-delete queue on its owner shard, and a durable one's deletion
 * must be in the definitions journal before the process ends, as RabbitMQ deletes them on a
 * clean stop. So: every shard first closes its connections; once all have, a shard leaves when
 * its inbound rings are empty and no change of its own waits for the sequencer; the sequencer
 * leaves last.
 */
static bool shard_may_exit(shard *s)
{
    runtime *rt = s->rt;
    ASSERT(s->stopping);
    if (s->now_ms >= s->stop_deadline_ms) return true;
    if (s->conn_count > 0) return false;
    if (!s->stop_closed_counted) {
        s->stop_closed_counted = true;
        if (atomic_fetch_add(&rt->stop_closed, 1) + 1 == rt->shard_count)
            for (uint32_t i = 0; i < rt->shard_count; i++)
                if (i != s->id) runtime_wake_shard(rt, &s->ring, i);
    }
    uint32_t closed = atomic_load(&rt->stop_closed);
    ASSERT(closed <= rt->shard_count);
    if (closed < rt->shard_count) return false;
    if (mbox_mesh_pending(s->mesh, s->id) || !topo_idle(s->topo)) return false;
    for (uint32_t to = 0; to < rt->shard_count; to++)
        if (s->overflow_head[to] != NULL) return false;
    if (s->id != TOPO_SEQUENCER_SHARD_ID) return true;
    return atomic_load(&rt->stop_exited) == rt->shard_count - 1;
}

static void shard_turn(shard *s)
{
    s->now_ms = timer_now_ms();
    s->turn++;
    if (s->yielded != NULL) shard_resume_yielded(s);
    shard_reap(s);
    shard_mbox_drain(s);
    if (s->mbox_waiters != NULL) shard_mbox_retry_waiters(s);
    if (atomic_load(&s->stop_requested) && !s->stopping) shard_begin_stop(s);
    shard_check_alarm(s);
    timer_run_due(&s->timers, s->now_ms, LIMIT_TIMERS_PER_TURN);
    queues_run(s);
    persist_flush(s); /* before the sends: a confirm never precedes its sync anyway */
    shard_flush(s);
}

static void shard_teardown(shard *s)
{
    s->tearing_down = true;
    for (uint32_t i = 0; i < LIMIT_CONNS_PER_SHARD; i++) {
        conn *c = s->conns[i];
        if (c != NULL) {
            /* Past the grace period: drop the socket without waiting. */
            s->conns[i] = NULL;
            close(c->fd);
            session_free(c);
            mi_free(c->out_flight.data);
            mi_free(c->out_pend.data);
            mi_free(c);
        }
    }
    persist_close(s);
    queues_destroy(s->queues);
    topo_destroy(s->topo);
    io_uring_queue_exit(&s->ring);
    munmap(s->buf_base, (size_t)LIMIT_RECV_BUFFERS * LIMIT_RECV_BUFFER_BYTES);
    munmap(s->buf_ring, sizeof(struct io_uring_buf) * LIMIT_RECV_BUFFERS);
    free(s->conns);
    free(s->conn_free);
    for (uint32_t i = 0; i < s->out_pool_count; i++) mi_free(s->out_pool[i]);
    free(s->out_pool);
    mi_heap_delete(s->heap); /* anything left migrates to the default heap */
    timer_heap_deinit(&s->timers);
}

void *shard_main(void *arg)
{
    shard *s = arg;
    log_set_shard((int)s->id);
    shard_pin(s);
    shard_ring_setup(s);
    shard_slab_init(s);
    timer_heap_init(&s->timers);
    s->now_ms = timer_now_ms(); /* recovered queues arm their x-expires timers from it */
    s->queues = queues_create(s);
    s->topo = topo_create(s); /* recovers the durable definitions: creates the queues we own */
    /* After the durable queues exist: the log's messages are replayed into them. */
    s->now_ms = timer_now_ms();
    persist_open(s, queues_recover);
    shard_listen(s);
    pthread_barrier_wait(&s->rt->rings_ready);
    s->now_ms = timer_now_ms();
    shard_arm_accept(s);
    LOG_DEBUG("shard started on CPU %d", s->cpu);
    for (;;) {
        shard_turn(s);
        if (s->stopping && shard_may_exit(s)) break;
        shard_wait(s);
    }
    if (s->id != TOPO_SEQUENCER_SHARD_ID) {
        atomic_fetch_add(&s->rt->stop_exited, 1);
        runtime_wake_shard(s->rt, &s->ring, TOPO_SEQUENCER_SHARD_ID);
    }
    LOG_INFO("shard stopped: mailbox records sent %llu, received %llu, wake-ups sent %llu",
             (unsigned long long)s->mbox_records_sent, (unsigned long long)s->mbox_records_received,
             (unsigned long long)s->mbox_wakeups_sent);
    shard_teardown(s);
    return NULL;
}
