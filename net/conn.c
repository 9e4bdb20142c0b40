/*
 * Socket side of a connection. Ownership: the shard's slab holds the conn;
 * the conn owns its fd and its two output buffers. Invariants:
 *  - at most one multishot recv and one send are in flight (recv_armed,
 *    send_inflight), and ops_inflight counts every SQE whose CQE is still due
 *    (a multishot recv counts once, until its final CQE without F_MORE);
 *  - out_flight is what the kernel may be reading: it is never written or
 *    moved while send_inflight; new output goes to out_pend;
 *  - the conn is freed only when closing and ops_inflight == 0, so no CQE
 *    can ever refer to a freed slot.
 * Close is cancel (all ops on the fd), shutdown, then close(2) once the last
 * CQE is in.
 */
#include "net/conn.h"

#include "core/assert.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool shard_conn_attach(shard *s, conn *c);

static void conn_format_addr(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
        port = ntohs(in4->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
    }
    snprintf(out, cap, "%s:%u", host, port);
}

static bool conn_addr_is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)ss;
        return (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) return in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

static void conn_arm_recv(conn *c)
{
    ASSERT(!c->recv_armed);
    struct io_uring_sqe *sqe = shard_sqe(c->shard);
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = 0;
    io_uring_sqe_set_data64(sqe, shard_user_data(SHARD_OP_RECV, c->index, c->generation));
    c->recv_armed = true;
    c->ops_inflight++;
}

static void conn_on_close_timer(timer *t, uint64_t now_ms)
{
    conn *c = (conn *)((char *)t - offsetof(conn, close_timer));
    (void)now_ms;
    ASSERT(c->closing);
    c->close_now = true; /* the peer did not take its output in time */
    shard_conn_dirty(c->shard, c);
}

conn *conn_open(shard *s, int fd)
{
    static _Thread_local uint32_t generation_next = 1;
    conn *c = mi_heap_zalloc(s->heap, sizeof(*c));
    if (c == NULL) return NULL;
    if (!shard_conn_attach(s, c)) {
        LOG_WARN("connection refused: shard holds %u connections", LIMIT_CONNS_PER_SHARD);
        mi_free(c);
        return NULL;
    }
    c->shard = s;
    c->fd = fd;
    c->generation = generation_next++;
    socklen_t len = sizeof(c->peer);
    getpeername(fd, (struct sockaddr *)&c->peer, &len);
    len = sizeof(c->local);
    getsockname(fd, (struct sockaddr *)&c->local, &len);
    conn_format_addr(&c->peer, c->peer_name, sizeof(c->peer_name));
    c->peer_loopback = conn_addr_is_loopback(&c->peer);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char local_name[64];
    conn_format_addr(&c->local, local_name, sizeof(local_name));
    LOG_INFO("accepting AMQP connection %s -> %s on shard %u", c->peer_name, local_name, s->id);
    c->last_recv_ms = c->last_send_ms = s->now_ms;
    timer_init(&c->close_timer, conn_on_close_timer);
    session_init(c);
    conn_arm_recv(c);
    return c;
}

static bool conn_buffer_reserve(shard *s, conn_buffer *b, uint32_t n)
{
    if (b->capacity - b->len >= n) return true;
    uint64_t need = (uint64_t)b->len + n;
    if (b->data == NULL && need <= LIMIT_OUTPUT_BUFFER_BYTES) {
        b->data = shard_out_buffer_take(s);
        if (b->data == NULL) return false;
        b->capacity = LIMIT_OUTPUT_BUFFER_BYTES;
        return true;
    }
    uint64_t capacity = b->capacity ? b->capacity : LIMIT_OUTPUT_BUFFER_BYTES;
    while (capacity < need) capacity *= 2;
    if (capacity > UINT32_MAX) return false;
    uint8_t *data = mi_heap_realloc(s->heap, b->data, capacity);
    if (data == NULL) return false;
    b->data = data;
    b->capacity = (uint32_t)capacity;
    return true;
}

/* An empty buffer goes back to the shard: an idle connection holds none. */
static void conn_buffer_release(shard *s, conn_buffer *b)
{
    ASSERT(b->len == 0 && b->sent == 0);
    if (b->data == NULL) return;
    if (b->capacity == LIMIT_OUTPUT_BUFFER_BYTES)
        shard_out_buffer_give(s, b->data);
    else
        mi_free(b->data);
    b->data = NULL;
    b->capacity = 0;
}

uint8_t *conn_out_reserve(conn *c, uint32_t n)
{
    ASSERT(n > 0);
    if (!conn_buffer_reserve(c->shard, &c->out_pend, n)) return NULL;
    return c->out_pend.data + c->out_pend.len;
}

void conn_out_commit(conn *c, uint32_t n)
{
    ASSERT(c->out_pend.len + n <= c->out_pend.capacity);
    c->out_pend.len += n;
    shard_conn_dirty(c->shard, c);
    if (!(c->recv_hold & CONN_HOLD_OUTPUT) && conn_out_unsent(c) > LIMIT_CONN_OUTPUT_BYTES_HIGH) {
        conn_recv_hold(c, CONN_HOLD_OUTPUT, true);
        session_output_backlog(c, true); /* and its consumers stop receiving */
    }
}

static void conn_cancel_all(conn *c)
{
    struct io_uring_sqe *sqe = shard_sqe(c->shard);
    io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, shard_user_data(SHARD_OP_CANCEL, c->index, c->generation));
    c->ops_inflight++;
}

static void conn_cancel_recv(conn *c)
{
    if (c->recv_armed) {
        struct io_uring_sqe *sqe = shard_sqe(c->shard);
        io_uring_prep_cancel64(sqe, shard_user_data(SHARD_OP_RECV, c->index, c->generation), 0);
        io_uring_sqe_set_data64(sqe, shard_user_data(SHARD_OP_CANCEL, c->index, c->generation));
        c->ops_inflight++;
    }
}

void conn_recv_hold(conn *c, uint8_t reason, bool on)
{
    uint8_t hold = on ? (uint8_t)(c->recv_hold | reason) : (uint8_t)(c->recv_hold & ~reason);
    if (hold == c->recv_hold) return;
    c->recv_hold = hold;
    if (hold != 0) conn_cancel_recv(c);
    shard_conn_dirty(c->shard, c); /* re-armed at the end of the turn */
}

void conn_close_after_flush(conn *c, uint32_t grace_ms)
{
    if (c->closing) return;
    c->closing = true;
    c->close_deadline_ms = c->shard->now_ms + grace_ms;
    conn_cancel_recv(c);
    timer_cancel(&c->shard->timers, &c->heartbeat_timer);
    timer_arm(&c->shard->timers, &c->close_timer, c->close_deadline_ms);
    shard_conn_dirty(c->shard, c);
}

void conn_abort(conn *c)
{
    c->close_now = true;
    conn_close_after_flush(c, 0);
}

void conn_on_recv_cqe(conn *c, const struct io_uring_cqe *cqe)
{
    ASSERT(c->recv_armed);
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        c->recv_armed = false;
        ASSERT(c->ops_inflight > 0);
        c->ops_inflight--;
        shard_conn_dirty(c->shard, c);
    }
    if (cqe->res > 0) {
        ASSERT(cqe->flags & IORING_CQE_F_BUFFER);
        uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        c->last_recv_ms = c->shard->now_ms;
        if (!c->closing && !c->recv_eof)
            session_input(c, shard_buffer(c->shard, bid), (uint32_t)cqe->res);
        shard_buffer_return(c->shard, bid);
        return;
    }
    if (cqe->res == 0) {
        c->recv_eof = true;
        session_peer_closed(c, 0);
        return;
    }
    switch (-cqe->res) {
    case ENOBUFS: /* no receive buffer free: flow control, re-armed at the end of the turn */
    case ECANCELED:
        return;
    case ECONNRESET:
    case EPIPE:
    case ETIMEDOUT:
    case EHOSTUNREACH:
    case ENETUNREACH:
        c->recv_eof = true;
        session_peer_closed(c, -cqe->res);
        return;
    default:
        LOG_ERROR("recv from %s: unexpected %s", c->peer_name, strerror(-cqe->res));
        c->recv_eof = true;
        session_peer_closed(c, -cqe->res);
        return;
    }
}

void conn_on_send_cqe(conn *c, const struct io_uring_cqe *cqe)
{
    ASSERT(c->send_inflight && c->ops_inflight > 0);
    c->send_inflight = false;
    c->ops_inflight--;
    shard_conn_dirty(c->shard, c);
    if (cqe->res < 0) {
        if (cqe->res != -ECANCELED && cqe->res != -EPIPE && cqe->res != -ECONNRESET)
            LOG_WARN("send to %s: %s", c->peer_name, strerror(-cqe->res));
        c->out_flight.len = c->out_flight.sent = 0;
        c->out_pend.len = 0;
        if (!c->recv_eof) session_peer_closed(c, -cqe->res);
        c->recv_eof = true;
        conn_abort(c);
        return;
    }
    c->out_flight.sent += (uint32_t)cqe->res;
    ASSERT(c->out_flight.sent <= c->out_flight.len);
    c->last_send_ms = c->shard->now_ms;
    if (c->out_flight.sent == c->out_flight.len) {
        c->out_flight.len = c->out_flight.sent = 0;
        conn_buffer_release(c->shard, &c->out_flight);
    }
    if ((c->recv_hold & CONN_HOLD_OUTPUT) && conn_out_unsent(c) < LIMIT_CONN_OUTPUT_BYTES_LOW) {
        conn_recv_hold(c, CONN_HOLD_OUTPUT, false);
        session_output_backlog(c, false);
    }
}

void conn_on_cancel_cqe(conn *c, const struct io_uring_cqe *cqe)
{
    (void)cqe; /* -ENOENT (nothing to cancel) and -EALREADY are both fine */
    ASSERT(c->ops_inflight > 0);
    c->ops_inflight--;
    shard_conn_dirty(c->shard, c);
}

static void conn_send_some(conn *c)
{
    ASSERT(!c->send_inflight);
    if (c->out_flight.len == 0 && c->out_pend.len > 0) {
        conn_buffer t = c->out_flight;
        c->out_flight = c->out_pend;
        c->out_pend = t;
        c->out_pend.len = c->out_pend.sent = 0;
    }
    if (c->out_flight.len == c->out_flight.sent) return;
    struct io_uring_sqe *sqe = shard_sqe(c->shard);
    io_uring_prep_send(sqe, c->fd, c->out_flight.data + c->out_flight.sent,
                       c->out_flight.len - c->out_flight.sent, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, shard_user_data(SHARD_OP_SEND, c->index, c->generation));
    c->send_inflight = true;
    c->ops_inflight++;
}

static void conn_finish_close(conn *c)
{
    shard *s = c->shard;
    if (!c->fd_shut) {
        c->fd_shut = true;
        shutdown(c->fd, SHUT_RDWR);
        if (c->ops_inflight > 0) conn_cancel_all(c);
    }
    if (c->ops_inflight > 0) return; /* back here when the last CQE is in */
    timer_cancel(&s->timers, &c->close_timer);
    timer_cancel(&s->timers, &c->heartbeat_timer);
    shard_mbox_unwait(s, c);
    session_free(c);
    close(c->fd);
    LOG_DEBUG("connection %s closed", c->peer_name);
    mi_free(c->out_flight.data);
    mi_free(c->out_pend.data);
    shard_conn_release(s, c);
    mi_free(c);
}

void conn_flush(conn *c)
{
    if (c->closing) {
        bool output_left = conn_out_unsent(c) > 0;
        if (c->close_now || c->recv_eof || !output_left) {
            conn_finish_close(c);
            return;
        }
        if (!c->send_inflight) conn_send_some(c);
        return;
    }
    if (!c->send_inflight) conn_send_some(c);
    if (!c->recv_armed && c->recv_hold == 0 && !c->recv_eof) conn_arm_recv(c);
}
