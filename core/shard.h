/*
 * A shard: one thread pinned to one CPU, with its own io_uring ring, its own
 * provided-buffer ring for socket receives, its own listener (SO_REUSEPORT),
 * its own connections, timers and mimalloc heap. Nothing here is touched by
 * another thread except the fields marked atomic, which the runtime and other
 * shards use to ask this shard to stop or to wake it.
 */
#ifndef RINGMQ_CORE_SHARD_H
#define RINGMQ_CORE_SHARD_H

#include "core/config.h"
#include "core/timer.h"

#include <liburing.h>
#include <mimalloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct conn conn;
typedef struct mbox_mesh mbox_mesh;
typedef struct mbox_ring mbox_ring;
typedef struct runtime runtime;
typedef struct auth_store auth_store;

/* What a completion is for: the low byte of its user_data. */
typedef enum {
    SHARD_OP_NONE = 0,
    SHARD_OP_ACCEPT = 1,
    SHARD_OP_RECV = 2,
    SHARD_OP_SEND = 3,
    SHARD_OP_CANCEL = 4,
    SHARD_OP_WAKE = 5,
    SHARD_OP_LOG = 6, /* segment log write or fdatasync (store/persist.c) */
} shard_op;

/* user_data = op | index << 8 | generation << 32. */
static inline uint64_t shard_user_data(shard_op op, uint32_t index, uint32_t generation)
{
    return (uint64_t)op | ((uint64_t)index << 8) | ((uint64_t)generation << 32);
}
static inline shard_op shard_user_data_op(uint64_t ud) { return (shard_op)(ud & 0xFF); }
static inline uint32_t shard_user_data_index(uint64_t ud) { return (uint32_t)(ud >> 8) & 0xFFFFFF; }
static inline uint32_t shard_user_data_generation(uint64_t ud) { return (uint32_t)(ud >> 32); }

typedef struct shard {
    uint32_t id;
    int32_t cpu; /* -1: not pinned */
    runtime *rt;
    const config *cfg;
    const auth_store *auth;
    pthread_t thread;

    struct io_uring ring;
    int ring_fd; /* published to other threads for IORING_OP_MSG_RING */

    /* Provided receive buffers (buffer group id 0 of this ring). */
    struct io_uring_buf_ring *buf_ring;
    uint8_t *buf_base;
    uint32_t buf_returned; /* buffers given back this turn, not yet published */

    int listen_fd;
    bool accept_armed;

    /* Connections: a slab indexed by the user_data index field. */
    conn **conns;
    uint32_t *conn_free; /* stack of free slab indexes */
    uint32_t conn_free_count;
    uint32_t conn_count;
    conn *dirty_head; /* connections with output to flush or work pending this turn */

    /* Memory: this shard's own mimalloc heap, and a pool of output buffers that
     * connections take while they have output and give back when it is sent,
     * so an idle connection holds no buffer. */
    mi_heap_t *heap;
    void **out_pool;
    uint32_t out_pool_count;

    timer_heap timers;
    uint64_t now_ms; /* loop time, refreshed once per turn */

    bool stopping;
    bool stop_closed_counted; /* counted in runtime.stop_closed: our connections are closed */
    bool tearing_down; /* the loop has ended: no more mailbox traffic */
    uint64_t stop_deadline_ms;
    bool alarm_seen; /* the resource alarm state this shard last acted on */

    /* Cross-core mailbox: rings to and from every other shard. */
    mbox_mesh *mesh;
    uint64_t mbox_dirty; /* bit i: records committed to shard i, tail not yet published */
    /* Control records that found a ring full wait here, in order, per target. */
    struct shard_mbox_overflow *overflow_head[LIMIT_SHARDS_MAX];
    struct shard_mbox_overflow *overflow_tail[LIMIT_SHARDS_MAX];
    conn *mbox_waiters;         /* connections paused until mailbox space frees */
    conn *yielded;              /* connections that used their turn's share: resumed next turn */
    uint64_t turn;              /* loop turns so far */
    uint64_t mbox_records_sent; /* counters, logged when the shard stops */
    uint64_t mbox_wakeups_sent;
    uint64_t mbox_records_received;

    struct topo *topo;     /* replicas of the topology (route/topo.c) */
    struct queues *queues; /* the queues this shard owns (store/queues.c) */
    struct persist *persist; /* its segment log and held confirms (store/persist.c) */

    _Atomic bool stop_requested;
} shard;

/* Mailbox record kinds and their handlers, run on the receiving shard. */
typedef void (*shard_mbox_fn)(shard *s, uint32_t from_shard, const void *payload,
                              uint32_t payload_bytes);
enum { SHARD_MBOX_KIND_PING = 0, SHARD_MBOX_KIND_BYREF = 31, SHARD_MBOX_KINDS_MAX = 32 };
/* Before the shards start: the handler for one kind. */
void shard_mbox_register(uint16_t kind, shard_mbox_fn fn);
/* Before the shards start: the mailbox's own kinds (records sent by reference). */
void shard_mbox_register_builtin(void);
/*
 * Sends one record to another shard; visible to it after this turn. Returns
 * false when the ring is full: the caller pauses its source and retries on a
 * later turn (the ring never grows).
 */
bool shard_mbox_send(shard *s, uint32_t to_shard, uint16_t kind, const void *payload,
                     uint32_t payload_bytes);
/*
 * Sends a control record that must not be dropped: if the ring is full it
 * waits in this shard's overflow list for that target and goes out, in
 * order, on a later turn. Data sends (shard_mbox_send) to that target fail
 * while anything waits there, so order between the two is kept.
 */
void shard_mbox_send_control(shard *s, uint32_t to_shard, uint16_t kind, const void *payload,
                             uint32_t payload_bytes);
/*
 * Whether a data record of payload_bytes fits the ring to to_shard now. When
 * it does not, the ring remembers that this shard waits, and the consumer
 * wakes it when space frees; the caller pauses its source meanwhile
 * (shard_mbox_wait) instead of queueing without bound.
 */
bool shard_mbox_room(shard *s, uint32_t to_shard, uint32_t payload_bytes);
/* A connection paused for mailbox space: retried at the start of a later turn. */
void shard_mbox_wait(shard *s, conn *c);
void shard_mbox_unwait(shard *s, conn *c); /* a connection that goes away */
/* A connection that did its share of work this turn: its input resumes next turn. */
void shard_yield(shard *s, conn *c);

/* The thread body; arg is the shard. */
void *shard_main(void *arg);

/* Any thread: ask the shard to stop (it closes connections with 320 first). */
void shard_request_stop(shard *s);

/* The shard's own thread: get an SQE, submitting first if the queue is full. */
struct io_uring_sqe *shard_sqe(shard *s);
/* Give a provided receive buffer back to the kernel (published at end of turn). */
void shard_buffer_return(shard *s, uint16_t buffer_id);
static inline uint8_t *shard_buffer(shard *s, uint16_t buffer_id)
{
    return s->buf_base + (size_t)buffer_id * LIMIT_RECV_BUFFER_BYTES;
}
/* Output buffers of LIMIT_OUTPUT_BUFFER_BYTES from the shard's pool. */
void *shard_out_buffer_take(shard *s);
void shard_out_buffer_give(shard *s, void *buffer);
/* Mark a connection as having work for the end of this turn (output to flush). */
void shard_conn_dirty(shard *s, conn *c);
/* Release a connection's slab slot; called by net/ once every op has completed. */
void shard_conn_release(shard *s, conn *c);

#endif
