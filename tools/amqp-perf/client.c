/*
 * amqp-perf's client connection: a non-blocking TCP socket, one receive
 * buffer parsed in place and one send buffer written in as few calls as
 * possible. The owner thread is the only user. Waiting is done with poll()
 * and always reads while it waits to write, so a broker that stops reading
 * a peer that does not read never deadlocks with us.
 *
 * Frames handed out by perf_conn_next_frame() point into the receive buffer
 * and stay valid until the next perf_conn_fill() (which may compact it).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/assert.h"
#include "net/amqp_table.h"
#include "tools/amqp-perf/perf.h"

STATIC_ASSERT(PERF_RBUF_BYTES >= 2 * PERF_FRAME_BYTES, "receive buffer holds two frames");
STATIC_ASSERT(PERF_WBUF_BYTES >= 2 * PERF_BATCH_BYTES, "send buffer holds two batches");

uint64_t perf_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void perf_sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

__attribute__((format(printf, 2, 3))) static int conn_fail(perf_conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
    return -1;
}

static int conn_connect(perf_conn *c, const perf_uri *u)
{
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)u->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(u->host, port, &hints, &res);
    if (rc != 0) return conn_fail(c, "%s: %s", u->host, gai_strerror(rc));
    int fd = -1, err = 0;
    for (struct addrinfo *a = res; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) return conn_fail(c, "connect %s:%u: %s", u->host, u->port, strerror(err));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        close(fd);
        return conn_fail(c, "fcntl: %s", strerror(errno));
    }
    c->fd = fd;
    return 0;
}

size_t perf_conn_wroom(const perf_conn *c)
{
    return PERF_WBUF_BYTES - c->wlen;
}

int perf_conn_flush_some(perf_conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c->woff += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        return conn_fail(c, "send: %s", n < 0 ? strerror(errno) : "closed");
    }
    if (c->woff == c->wlen) c->woff = c->wlen = 0;
    return 0;
}

/* Moves unparsed bytes to the front when the tail has less than a frame. */
static void conn_compact(perf_conn *c)
{
    if (c->rhead == c->rtail) {
        c->rhead = c->rtail = 0;
    } else if (PERF_RBUF_BYTES - c->rtail < c->frame_max + 64) {
        memmove(c->rbuf, c->rbuf + c->rhead, c->rtail - c->rhead);
        c->rtail -= c->rhead;
        c->rhead = 0;
    }
}

static long conn_recv(perf_conn *c)
{
    conn_compact(c);
    if (c->rtail == PERF_RBUF_BYTES) return 0;
    for (;;) {
        ssize_t n = recv(c->fd, c->rbuf + c->rtail, PERF_RBUF_BYTES - c->rtail, MSG_DONTWAIT);
        if (n > 0) {
            c->rtail += (size_t)n;
            return n;
        }
        if (n == 0) return conn_fail(c, "connection closed by the broker");
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return conn_fail(c, "recv: %s", strerror(errno));
    }
}

long perf_conn_fill(perf_conn *c, int timeout_ms)
{
    ASSERT(c->fd >= 0);
    long n = conn_recv(c);
    if (n != 0 || timeout_ms == 0) return n;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (c->woff < c->wlen) p.events |= POLLOUT;
    if (poll(&p, 1, timeout_ms) < 0 && errno != EINTR) return conn_fail(c, "poll: %s", strerror(errno));
    if ((p.revents & POLLOUT) && perf_conn_flush_some(c) != 0) return -1;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) return conn_recv(c);
    return 0;
}

int perf_conn_flush(perf_conn *c)
{
    for (;;) {
        if (perf_conn_flush_some(c) != 0) return -1;
        if (c->wlen == 0) return 0;
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        if (c->rtail - c->rhead < PERF_RBUF_BYTES / 2) p.events |= POLLIN;
        if (poll(&p, 1, PERF_RPC_TIMEOUT_MS) == 0) return conn_fail(c, "send timed out");
        if ((p.revents & POLLIN) && conn_recv(c) < 0) return -1;
    }
}

int perf_conn_put_method(perf_conn *c, uint16_t channel, const amqp_method *m)
{
    if (perf_conn_wroom(c) < PERF_FRAME_BYTES && perf_conn_flush(c) != 0) return -1;
    amqp_error err;
    ssize_t n = amqp_frame_write_method(c->wbuf + c->wlen, perf_conn_wroom(c), channel, m, &err);
    if (n < 0) return conn_fail(c, "encode %s: %s", amqp_method_name(m->id), err.text);
    c->wlen += (size_t)n;
    return 0;
}

int perf_conn_next_frame(perf_conn *c, amqp_frame *f)
{
    amqp_error err;
    ssize_t n = amqp_frame_parse(c->rbuf + c->rhead, c->rtail - c->rhead, c->frame_max, f, &err);
    if (n < 0) return conn_fail(c, "bad frame from the broker: %s", err.text);
    if (n == 0) return 0;
    c->rhead += (size_t)n;
    return 1;
}

bool perf_conn_check_close(perf_conn *c, const amqp_frame *f)
{
    if (f->type != AMQP_FRAME_METHOD) return false;
    amqp_method m;
    amqp_error err;
    if (!amqp_method_decode(f->payload, f->payload_len, &m, &err)) return false;
    if (m.id == AMQP_CONNECTION_CLOSE) {
        const amqp_connection_close *a = &m.a.connection_close;
        conn_fail(c, "connection closed by the broker: %u %.*s", a->reply_code,
                  (int)a->reply_text.len, (const char *)a->reply_text.data);
        amqp_method ok = {.id = AMQP_CONNECTION_CLOSE_OK};
        if (perf_conn_put_method(c, 0, &ok) == 0) perf_conn_flush_some(c);
        return true;
    }
    if (m.id == AMQP_CHANNEL_CLOSE) {
        const amqp_channel_close *a = &m.a.channel_close;
        conn_fail(c, "channel %u closed by the broker: %u %.*s", f->channel, a->reply_code,
                  (int)a->reply_text.len, (const char *)a->reply_text.data);
        amqp_method ok = {.id = AMQP_CHANNEL_CLOSE_OK};
        if (perf_conn_put_method(c, f->channel, &ok) == 0) perf_conn_flush_some(c);
        return true;
    }
    return false;
}

/* Reads until a method `want` arrives on `channel`; *out points into rbuf. */
static int conn_wait_method(perf_conn *c, uint16_t channel, amqp_method_id want, amqp_method *out)
{
    uint64_t deadline_ns = perf_now_ns() + (uint64_t)PERF_RPC_TIMEOUT_MS * 1000000u;
    for (;;) {
        amqp_frame f;
        int r;
        while ((r = perf_conn_next_frame(c, &f)) == 1) {
            if (f.type != AMQP_FRAME_METHOD) continue;
            if (perf_conn_check_close(c, &f)) return -1;
            amqp_error err;
            if (!amqp_method_decode(f.payload, f.payload_len, out, &err))
                return conn_fail(c, "undecodable method from the broker: %s", err.text);
            if (out->id == AMQP_CONNECTION_BLOCKED) c->blocked = true;
            if (out->id == AMQP_CONNECTION_UNBLOCKED) c->blocked = false;
            if (out->id == want && f.channel == channel) return 0;
        }
        if (r < 0) return -1;
        if (perf_now_ns() > deadline_ns)
            return conn_fail(c, "no %s from the broker in %d ms", amqp_method_name(want),
                             PERF_RPC_TIMEOUT_MS);
        if (perf_conn_fill(c, 100) < 0) return -1;
    }
}

int perf_conn_rpc(perf_conn *c, uint16_t channel, const amqp_method *req, amqp_method_id reply,
                  amqp_method *out)
{
    amqp_method scratch;
    if (perf_conn_put_method(c, channel, req) != 0 || perf_conn_flush(c) != 0) return -1;
    return conn_wait_method(c, channel, reply, out != NULL ? out : &scratch);
}

int perf_conn_channel_open(perf_conn *c, uint16_t channel)
{
    amqp_method m = {.id = AMQP_CHANNEL_OPEN};
    return perf_conn_rpc(c, channel, &m, AMQP_CHANNEL_OPEN_OK, NULL);
}

static int conn_start_ok(perf_conn *c, const perf_uri *u, const char *name)
{
    uint8_t props[512], resp[2 * PERF_NAME_BYTES_MAX + 2];
    amqp_table_builder b;
    amqp_table_builder_init(&b, props, sizeof props);
    amqp_table_add_cstr(&b, "product", "amqp-perf");
    amqp_table_add_cstr(&b, "platform", "C");
    amqp_table_add_cstr(&b, "connection_name", name);
    amqp_table_open_table(&b, "capabilities");
    amqp_table_add_bool(&b, "publisher_confirms", true);
    amqp_table_add_bool(&b, "basic.nack", true);
    amqp_table_add_bool(&b, "consumer_cancel_notify", true);
    amqp_table_add_bool(&b, "connection.blocked", true);
    amqp_table_add_bool(&b, "exchange_exchange_bindings", true);
    amqp_table_close(&b);
    amqp_method m = {.id = AMQP_CONNECTION_START_OK};
    if (!amqp_table_builder_finish(&b, &m.a.connection_start_ok.client_properties))
        return conn_fail(c, "client properties do not fit");
    size_t ul = strlen(u->user), pl = strlen(u->pass);
    resp[0] = 0;
    memcpy(resp + 1, u->user, ul);
    resp[1 + ul] = 0;
    memcpy(resp + 2 + ul, u->pass, pl);
    m.a.connection_start_ok.mechanism = amqp_cstr("PLAIN");
    m.a.connection_start_ok.response = (amqp_bytes){resp, (uint32_t)(2 + ul + pl)};
    m.a.connection_start_ok.locale = amqp_cstr("en_US");
    return perf_conn_put_method(c, 0, &m);
}

/* Protocol header through open-ok; heartbeats off, frame_max <= ours. */
static int conn_handshake(perf_conn *c, const perf_uri *u, const char *name)
{
    memcpy(c->wbuf, AMQP_PROTOCOL_HEADER, AMQP_PROTOCOL_HEADER_BYTES);
    c->wlen = AMQP_PROTOCOL_HEADER_BYTES;
    amqp_method m;
    if (perf_conn_flush(c) != 0 || conn_wait_method(c, 0, AMQP_CONNECTION_START, &m) != 0)
        return -1;
    if (conn_start_ok(c, u, name) != 0) return -1;
    if (perf_conn_flush(c) != 0 || conn_wait_method(c, 0, AMQP_CONNECTION_TUNE, &m) != 0)
        return -1;
    uint32_t fmax = m.a.connection_tune.frame_max;
    uint16_t cmax = m.a.connection_tune.channel_max;
    c->frame_max = (fmax == 0 || fmax > PERF_FRAME_BYTES) ? PERF_FRAME_BYTES : fmax;
    c->channel_max = cmax == 0 ? 2047 : cmax;
    amqp_method t = {.id = AMQP_CONNECTION_TUNE_OK};
    t.a.connection_tune_ok = (amqp_connection_tune_ok){c->channel_max, c->frame_max, 0};
    amqp_method o = {.id = AMQP_CONNECTION_OPEN};
    o.a.connection_open.virtual_host = amqp_cstr(u->vhost);
    if (perf_conn_put_method(c, 0, &t) != 0) return -1;
    return perf_conn_rpc(c, 0, &o, AMQP_CONNECTION_OPEN_OK, NULL);
}

int perf_conn_open(perf_conn *c, const perf_uri *u, const char *name)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->frame_max = PERF_FRAME_BYTES;
    c->rbuf = malloc(PERF_RBUF_BYTES);
    c->wbuf = malloc(PERF_WBUF_BYTES);
    if (c->rbuf == NULL || c->wbuf == NULL) return conn_fail(c, "out of memory");
    if (conn_connect(c, u) != 0) return -1;
    return conn_handshake(c, u, name);
}

/* connection.close, a bounded wait for close-ok, then the socket goes. */
void perf_conn_close(perf_conn *c)
{
    if (c->fd >= 0) {
        amqp_method m = {.id = AMQP_CONNECTION_CLOSE};
        m.a.connection_close.reply_code = AMQP_REPLY_SUCCESS;
        m.a.connection_close.reply_text = amqp_cstr("bye");
        if (perf_conn_put_method(c, 0, &m) == 0 && perf_conn_flush(c) == 0) {
            amqp_method ok;
            conn_wait_method(c, 0, AMQP_CONNECTION_CLOSE_OK, &ok);
        }
        close(c->fd);
        c->fd = -1;
    }
    free(c->rbuf);
    free(c->wbuf);
    c->rbuf = c->wbuf = NULL;
}

int perf_conn_write_all(perf_conn *c, const uint8_t *data, size_t len)
{
    if (perf_conn_flush(c) != 0) return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(c->fd, data + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return conn_fail(c, "send: %s", strerror(errno));
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        if (c->rtail - c->rhead < PERF_RBUF_BYTES / 2) p.events |= POLLIN;
        if (poll(&p, 1, PERF_RPC_TIMEOUT_MS) == 0) return conn_fail(c, "send timed out");
        if ((p.revents & POLLIN) && conn_recv(c) < 0) return -1;
    }
    return 0;
}

int perf_conn_adopt(perf_conn *c, int fd)
{
    memset(c, 0, sizeof *c);
    c->fd = fd;
    c->frame_max = PERF_FRAME_BYTES;
    c->rbuf = malloc(PERF_RBUF_BYTES);
    c->wbuf = malloc(PERF_WBUF_BYTES);
    if (c->rbuf == NULL || c->wbuf == NULL) return conn_fail(c, "out of memory");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
        return conn_fail(c, "fcntl: %s", strerror(errno));
    return 0;
}

void perf_conn_drop(perf_conn *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    free(c->rbuf);
    free(c->wbuf);
    c->rbuf = c->wbuf = NULL;
}
