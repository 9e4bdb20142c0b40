/*
 * A client connection's socket side, owned by one shard for its whole life:
 * multishot receive into the shard's provided buffers, output accumulated
 * during the turn and sent with one send in flight, backpressure both ways,
 * and the close sequence (cancel, shutdown, close). The AMQP protocol state
 * (net/amqp_conn.c) sits on top and is embedded here.
 */
#ifndef RINGMQ_NET_CONN_H
#define RINGMQ_NET_CONN_H

#include "core/shard.h"
#include "core/timer.h"
#include "net/session.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct {
    uint8_t *data;
    uint32_t len;      /* bytes written */
    uint32_t sent;     /* bytes already sent (flight buffer only) */
    uint32_t capacity; /* bytes allocated */
} conn_buffer;

struct conn {
    shard *shard;
    uint32_t index;
    uint32_t generation;
    int fd;
    struct sockaddr_storage peer;
    struct sockaddr_storage local;
    char peer_name[64]; /* "addr:port" for logs */
    bool peer_loopback;

    uint32_t ops_inflight;
    bool recv_armed;
    uint8_t recv_hold;   /* CONN_HOLD_* reasons not to read from the socket */
    bool recv_eof;       /* peer closed or reset: no more input */
    bool send_inflight;
    bool closing;        /* no more input is processed; close once output is flushed */
    bool close_now;      /* flush abandoned: close without waiting */
    bool fd_shut;
    bool dirty;
    conn *dirty_next;
    bool mbox_waiting; /* on the shard's list of connections paused for mailbox space */
    conn *mbox_wait_next;
    bool yielded;      /* on the shard's list of connections resumed next turn */
    conn *yield_next;

    conn_buffer out_flight; /* being sent */
    conn_buffer out_pend;   /* filled during the turn */

    uint64_t last_recv_ms;
    uint64_t last_send_ms;
    uint64_t close_deadline_ms;
    timer heartbeat_timer;
    timer close_timer; /* gives up flushing at close_deadline_ms */

    session sess;
};

/* Take a freshly accepted socket onto the shard. Returns NULL if refused. */
conn *conn_open(shard *s, int fd);
void conn_on_recv_cqe(conn *c, const struct io_uring_cqe *cqe);
void conn_on_send_cqe(conn *c, const struct io_uring_cqe *cqe);
void conn_on_cancel_cqe(conn *c, const struct io_uring_cqe *cqe);
/* End of turn: send pending output, re-arm receive, finish closes. */
void conn_flush(conn *c);

/* Output: reserve room for n bytes at the end of the pending buffer. */
uint8_t *conn_out_reserve(conn *c, uint32_t n);
void conn_out_commit(conn *c, uint32_t n);
static inline uint32_t conn_out_unsent(const conn *c)
{
    return c->out_flight.len - c->out_flight.sent + c->out_pend.len;
}

/* Stop reading; close after pending output is sent (or at the deadline). */
void conn_close_after_flush(conn *c, uint32_t grace_ms);
/* Drop the connection at once. */
void conn_abort(conn *c);
/* Reasons to stop reading from the socket; reading resumes when none holds. */
enum {
    CONN_HOLD_OUTPUT = 1,  /* unsent output above the high watermark */
    CONN_HOLD_BLOCKED = 2, /* a resource alarm blocks this publisher */
    CONN_HOLD_PENDING = 4, /* a channel waits for another shard's answer */
};
void conn_recv_hold(conn *c, uint8_t reason, bool on);

#endif
